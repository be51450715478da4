//! The client commands: connect with the global options, send one operation built with
//! the typed builders, print the reply.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use netconf_blocking::operations::{
    CancelCommit, Commit, CopyConfig, CreateSubscription, Datastore, DeleteConfig, DiscardChanges,
    EditConfig, Filter, Get, GetConfig, GetData, GetSchema, InlineConfig, KillSession, Lock,
    Operation, Source, Unlock, Validate,
};
use netconf_blocking::tls::ClientTlsOptions;
use netconf_blocking::{Client, ClientOptions, Error, ReplyContent};

use clap::Parser as _;

use crate::args::{BatchLine, Cli, Command, FilterArgs, Format, Global, Transport};
use crate::errors::{self, CliError, Target};
use crate::output::{self, print};
use crate::stream::{self, OutFile};
use crate::{input, ssh};

/// Runs a client command (everything but `serve`, `demo`, `batch` and `listen`).
pub fn run(cli: &Cli) -> Result<(), CliError> {
    let g = &cli.global;
    let target = target(g);
    // Arguments are read before connecting, so a bad file costs no connection.
    let prepared = prepare(&cli.command)?;
    let client = connect(g, &target)?;
    let result = execute(&client, &cli.command, prepared, g.format, &target);
    close(client);
    result
}

/// Ends the session politely; a failure is only a note.
pub fn close(client: Client) {
    if let Err(e) = client.close() {
        eprintln!("netconf: note: closing the session: {e}");
    }
}

/// One line of a batch, checked and its files read.
#[derive(Debug)]
pub struct Step {
    line: usize,
    command: Command,
    prepared: Prepared,
}

/// `netconf batch`: the commands in `input` (a file or `-`), one per line, in one session.
pub fn run_batch(cli: &Cli, input: &str, keep_going: bool) -> Result<(), CliError> {
    let g = &cli.global;
    let target = target(g);
    let steps = read_batch(input)?;
    let client = connect(g, &target)?;
    run_steps(client, steps, keep_going, g.format, &target)
}

/// The lines of a batch (a file or `-`), each parsed and prepared: a bad line or file is
/// an error before any connection.
pub fn read_batch(input: &str) -> Result<Vec<Step>, CliError> {
    let text = if input == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| CliError::fatal(format!("cannot read the batch from stdin: {e}")))?;
        s
    } else {
        std::fs::read_to_string(input)
            .map_err(|e| CliError::fatal(format!("cannot read batch file {input}: {e}")))?
    };
    let mut steps = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |what: String| CliError::fatal(format!("batch line {}: {what}", n + 1));
        let words = shlex::split(line).ok_or_else(|| at("unbalanced quotes".into()))?;
        let parsed = BatchLine::try_parse_from(&words)
            .map_err(|e| at(e.render().to_string().trim_end().to_owned()))?;
        if matches!(
            parsed.command,
            Command::Serve(_)
                | Command::Demo
                | Command::Batch { .. }
                | Command::Subscribe { .. }
                | Command::Listen(_)
        ) {
            return Err(at(format!("{:?} cannot run in a batch", words[0])));
        }
        let prepared = prepare(&parsed.command).map_err(|e| match e {
            CliError::Fatal(m) => at(m),
            other => other,
        })?;
        steps.push(Step {
            line: n + 1,
            command: parsed.command,
            prepared,
        });
    }
    Ok(steps)
}

/// Runs the steps of a batch in order on `client`, then closes it.
pub fn run_steps(
    client: Client,
    steps: Vec<Step>,
    keep_going: bool,
    asked: Option<Format>,
    target: &Target<'_>,
) -> Result<(), CliError> {
    let mut first_failure = None;
    for Step {
        line,
        command,
        prepared,
    } in steps
    {
        if let Err(e) = execute(&client, &command, prepared, asked, target) {
            match &e {
                CliError::Rpc(errors) => {
                    eprint!("batch line {line}: {}", output::rpc_error_lines(errors))
                }
                CliError::Fatal(m) => eprintln!("netconf: batch line {line}: {m}"),
                CliError::Reported(_) => {}
            }
            let fatal = matches!(e, CliError::Fatal(_));
            first_failure.get_or_insert(e);
            if fatal || !keep_going {
                break;
            }
        }
    }
    close(client);
    match first_failure {
        // Already printed with its line number: exit with its status only.
        Some(e) => Err(CliError::Reported(e.exit_code())),
        None => Ok(()),
    }
}

fn target(g: &Global) -> Target<'_> {
    Target {
        host: &g.host,
        port: g.port(),
        transport: g.transport(),
        ca: g.ca.as_deref(),
        cert: g.cert.as_deref(),
        key: g.key.as_deref(),
        server_name: g.server_name.as_deref(),
        timeout: g.timeout,
    }
}

fn read_file(option: &str, path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .map_err(|e| CliError::fatal(format!("cannot read {option} {}: {e}", path.display())))
}

/// The session options the global flags describe: timeouts, and the progress line of
/// large replies when stderr is a terminal.
pub fn client_options(g: &Global) -> ClientOptions {
    let mut options = ClientOptions::new();
    if std::io::stderr().is_terminal() {
        options = options.on_progress(output::progress_reporter());
    }
    if let Some(secs) = g.timeout {
        let t = Duration::from_secs(secs);
        options = options
            .connect_timeout(t)
            .hello_timeout(t)
            .rpc_timeout(Some(t));
    }
    options
}

/// Opens the session the global options describe, over SSH or TLS.
pub fn connect(g: &Global, target: &Target<'_>) -> Result<Client, CliError> {
    if g.ssh && g.tls {
        return Err(CliError::fatal("--ssh and --tls: choose one transport"));
    }
    let options = client_options(g);
    match g.transport() {
        Transport::Ssh => ssh::connect(g, target, &options),
        Transport::Tls => {
            let tls = tls_options(g)?;
            Client::connect_tls_with(&target.addr(), &tls, &options)
                .map_err(|e| errors::connect_error(e, target))
        }
    }
}

/// The TLS options the global flags describe: the CA that verifies the server (required),
/// our certificate and key, the name to check.
pub fn tls_options(g: &Global) -> Result<ClientTlsOptions, CliError> {
    let ca = g.ca.as_deref().ok_or_else(|| {
        CliError::fatal(
            "no CA certificate: pass --ca FILE (or set NETCONF_CA) to verify the server",
        )
    })?;
    let mut tls = ClientTlsOptions::new().ca_pem(read_file("--ca", ca)?);
    match (&g.cert, &g.key) {
        (Some(cert), Some(key)) => {
            tls = tls.client_cert_pem(read_file("--cert", cert)?, read_file("--key", key)?);
        }
        (None, None) => {}
        (Some(_), None) => return Err(CliError::fatal("--cert needs --key")),
        (None, Some(_)) => return Err(CliError::fatal("--key needs --cert")),
    }
    if let Some(name) = &g.server_name {
        tls = tls.server_name(name.clone());
    }
    Ok(tls)
}

/// What a command needs from files and arguments, checked before connecting.
#[derive(Debug, Default)]
pub struct Prepared {
    filter: Option<Filter>,
    config: Option<InlineConfig>,
    raw: Option<String>,
    /// `-o FILE`, opened (as a temporary file beside it) before connecting.
    output: Option<OutFile>,
}

pub fn prepare(command: &Command) -> Result<Prepared, CliError> {
    let mut p = Prepared::default();
    match command {
        Command::Get { filter, output, .. }
        | Command::GetConfig { filter, output, .. }
        | Command::GetData { filter, output, .. } => {
            p.filter = build_filter(filter)?;
            if let Some(path) = output {
                p.output = Some(OutFile::create("-o", path)?);
            }
        }
        Command::GetSchema {
            output: Some(path), ..
        } => p.output = Some(OutFile::create("-o", path)?),
        Command::Subscribe { filter, .. } => p.filter = build_filter(filter)?,
        Command::EditConfig {
            config,
            target,
            commit,
            ..
        } => {
            if *commit && *target != Datastore::Candidate {
                return Err(CliError::fatal(
                    "--commit commits candidate: use it with --target candidate",
                ));
            }
            p.config = Some(inline_config("--config", config)?)
        }
        Command::CopyConfig {
            config: Some(config),
            ..
        }
        | Command::Validate {
            config: Some(config),
            ..
        } => p.config = Some(inline_config("--config", config)?),
        Command::Rpc { input: value } => p.raw = Some(raw_rpc(value)?),
        _ => {}
    }
    Ok(p)
}

fn build_filter(f: &FilterArgs) -> Result<Option<Filter>, CliError> {
    if let Some(value) = &f.subtree {
        let xml = input::read_xml_arg("--subtree", value)?;
        let xml = strip_declaration(&xml);
        let xml = match input::unwrap(xml, "filter") {
            Some(u) => u.inner.trim().to_owned(),
            None => xml.trim().to_owned(),
        };
        let filter =
            Filter::subtree(xml).map_err(|e| CliError::fatal(format!("--subtree {value}: {e}")))?;
        return Ok(Some(filter));
    }
    let Some(expr) = &f.xpath else {
        return Ok(None);
    };
    let mut filter = Filter::xpath(expr.clone());
    for binding in &f.ns {
        let (prefix, uri) = binding
            .split_once('=')
            .ok_or_else(|| CliError::fatal(format!("--ns {binding:?}: expected PREFIX=URI")))?;
        filter = filter
            .with_namespace(prefix, uri)
            .map_err(|e| CliError::fatal(format!("--ns {binding:?}: {e}")))?;
    }
    Ok(Some(filter))
}

/// Drops a leading `<?xml ...?>` declaration (not allowed inside an `<rpc>`).
fn strip_declaration(xml: &str) -> &str {
    let t = xml.trim_start();
    if t.starts_with("<?xml") {
        if let Some(end) = t.find("?>") {
            return &t[end + 2..];
        }
    }
    xml
}

/// The configuration in `value`, with an optional `<config>` wrapper taken off.
fn inline_config(option: &str, value: &str) -> Result<InlineConfig, CliError> {
    let xml = input::read_xml_arg(option, value)?;
    let xml = strip_declaration(&xml);
    let config = match input::unwrap(xml, "config") {
        Some(u) => InlineConfig::with_namespaces(
            u.declarations.into_iter().filter(|(p, _)| !p.is_empty()),
            u.inner.trim(),
        ),
        None => InlineConfig::new(xml.trim()),
    };
    config.map_err(|e| CliError::fatal(format!("{option} {value}: {e}")))
}

/// The operation element in `value`, taken out of an `<rpc>` envelope if there is one.
fn raw_rpc(value: &str) -> Result<String, CliError> {
    let xml = input::read_xml_arg("rpc input", value)?;
    let xml = strip_declaration(&xml);
    let body = match input::unwrap(xml, "rpc") {
        Some(u) => input::inject_declarations(u.inner.trim(), &u.declarations),
        None => xml.trim().to_owned(),
    };
    netconf_proto::xml::check_fragment(&body)
        .map_err(|e| CliError::fatal(format!("rpc input {value}: {e}")))?;
    Ok(body)
}

/// Why a command failed: the session's error (named by [`errors::from_error`]), or one of
/// ours (an output file, a reply that broke off), already in words.
enum Failed {
    Netconf(Error),
    Cli(CliError),
}

impl From<Error> for Failed {
    fn from(e: Error) -> Failed {
        Failed::Netconf(e)
    }
}

impl From<netconf_blocking::UsageError> for Failed {
    fn from(e: netconf_blocking::UsageError) -> Failed {
        Failed::Netconf(e.into())
    }
}

/// Runs one command on the session. `asked` is --format as given: output to a terminal
/// defaults to pretty, to a pipe or an -o FILE to xml.
pub fn execute(
    client: &Client,
    command: &Command,
    p: Prepared,
    asked: Option<Format>,
    target: &Target<'_>,
) -> Result<(), CliError> {
    match execute_inner(client, command, p, asked, target) {
        Ok(()) => Ok(()),
        Err(Failed::Netconf(e)) => Err(errors::from_error(e, target)),
        Err(Failed::Cli(e)) => Err(e),
    }
}

fn execute_inner(
    client: &Client,
    command: &Command,
    p: Prepared,
    asked: Option<Format>,
    target: &Target<'_>,
) -> Result<(), Failed> {
    let format = output::effective_format(asked);
    // A streamed reply goes to -o FILE as xml unless --format says otherwise.
    let stream_format = match &p.output {
        Some(_) => asked.unwrap_or(Format::Xml),
        None => format,
    };
    let fetch = |op: &dyn Operation, output: Option<OutFile>| {
        stream::fetch(client, op, stream_format, output, target).map_err(Failed::Cli)
    };
    let ok = |r: Result<(), Error>| r.map(|()| print(output::ok(format))).map_err(Failed::from);
    match command {
        Command::Hello => {
            print(&output::hello(
                format,
                client.session_id(),
                client.framing(),
                client.capabilities(),
            ));
            Ok(())
        }
        Command::Get { with_defaults, .. } => {
            let mut op = Get::new();
            if let Some(f) = p.filter {
                op = op.filter(f);
            }
            if let Some(wd) = with_defaults {
                op = op.with_defaults(*wd);
            }
            fetch(&op, p.output)
        }
        Command::GetConfig {
            source,
            with_defaults,
            ..
        } => {
            let mut op = GetConfig::new(source.clone());
            if let Some(f) = p.filter {
                op = op.filter(f);
            }
            if let Some(wd) = with_defaults {
                op = op.with_defaults(*wd);
            }
            fetch(&op, p.output)
        }
        Command::GetData {
            datastore,
            config_filter,
            max_depth,
            with_defaults,
            ..
        } => {
            let mut op = GetData::new(datastore.clone());
            if let Some(f) = p.filter {
                op = op.filter(f);
            }
            if let Some(c) = config_filter {
                op = op.config_filter(*c);
            }
            if let Some(d) = max_depth {
                op = op.max_depth(*d)?;
            }
            if let Some(wd) = with_defaults {
                op = op.with_defaults(*wd);
            }
            fetch(&op, p.output)
        }
        Command::EditConfig {
            target,
            default_operation,
            test_option,
            error_option,
            lock,
            validate,
            commit,
            ..
        } => {
            let config = p.config.expect("prepared");
            let mut op = EditConfig::new(target.clone(), config);
            if let Some(d) = default_operation {
                op = op.default_operation(*d);
            }
            if let Some(t) = test_option {
                op = op.test_option(*t);
            }
            if let Some(e) = error_option {
                op = op.error_option(*e);
            }
            let locked = lock.then(|| target.clone());
            ok(holding(client, locked, |client| {
                client.call(&op)?;
                if *validate {
                    client.call(&Validate::new(Source::from(target.clone())))?;
                }
                if *commit {
                    client.call(&Commit::new())?;
                }
                Ok(())
            }))
        }
        Command::CopyConfig { target, source, .. } => {
            let source = match (source, p.config) {
                (_, Some(config)) => Source::from(config),
                (Some(ds), None) => Source::from(ds.clone()),
                (None, None) => unreachable!("clap requires --source or --config"),
            };
            ok(client.call(&CopyConfig::new(target.clone(), source)))
        }
        Command::DeleteConfig { target } => ok(client.call(&DeleteConfig::new(target.clone()))),
        Command::Lock { target } => ok(client.call(&Lock::new(target.clone()))),
        Command::Unlock { target } => ok(client.call(&Unlock::new(target.clone()))),
        Command::Validate { source, .. } => {
            let source = match p.config {
                Some(config) => Source::from(config),
                None => Source::from(source.clone()),
            };
            ok(client.call(&Validate::new(source)))
        }
        Command::Commit {
            confirmed,
            confirm_timeout,
            persist,
            persist_id,
            lock,
        } => {
            if *confirmed && persist.is_none() {
                eprintln!(
                    "netconf: note: without --persist the server rolls this commit back when \
                     this command's session ends; use --persist ID, then `commit --persist-id ID`"
                );
            }
            let mut op = if *confirmed {
                Commit::confirmed()
            } else {
                Commit::new()
            };
            if let Some(t) = confirm_timeout {
                op = op.confirm_timeout(*t)?;
            }
            if let Some(token) = persist {
                op = op.persist(token.clone());
            }
            if let Some(token) = persist_id {
                op = op.persist_id(token.clone());
            }
            let locked = lock.then_some(Datastore::Running);
            ok(holding(client, locked, |client| client.call(&op)))
        }
        Command::CancelCommit { persist_id } => {
            let mut op = CancelCommit::new();
            if let Some(token) = persist_id {
                op = op.persist_id(token.clone());
            }
            ok(client.call(&op))
        }
        Command::DiscardChanges => ok(client.call(&DiscardChanges::new())),
        Command::KillSession { session_id } => ok(client.call(&KillSession::new(*session_id)?)),
        Command::GetSchema {
            identifier,
            version,
            schema_format,
            ..
        } => {
            let mut op = GetSchema::new(identifier.clone());
            if let Some(v) = version {
                op = op.version(v.clone());
            }
            if let Some(f) = schema_format {
                op = op.format(*f);
            }
            let text = client.call(&op)?;
            match p.output {
                Some(file) => {
                    let path = file.path().display().to_string();
                    file.write_all(text.as_bytes()).map_err(|e| {
                        Failed::Cli(CliError::fatal(format!("cannot write -o {path}: {e}")))
                    })?
                }
                None if text.ends_with('\n') => print(&text),
                None => print(&format!("{text}\n")),
            }
            Ok(())
        }
        Command::Rpc { .. } => {
            let raw = p.raw.expect("prepared");
            let started = Instant::now();
            let reply = client.rpc_raw(&raw)?;
            match &reply.content {
                ReplyContent::Ok => print(output::ok(format)),
                ReplyContent::Data(d) => {
                    output::report_size(d.len(), started.elapsed());
                    print(&output::xml(format, d.as_str()));
                }
                ReplyContent::Other(x) => print(&output::xml(format, x.as_str())),
                _ => {}
            }
            for w in reply.errors.iter().filter(|e| !e.is_error()) {
                eprint!("{}", output::rpc_error_lines(std::slice::from_ref(w)));
            }
            Ok(())
        }
        Command::Subscribe {
            stream,
            start_time,
            stop_time,
            count,
            ..
        } => {
            let mut op = CreateSubscription::new();
            if let Some(s) = stream {
                op = op.stream(s.clone());
            }
            if let Some(f) = p.filter {
                op = op.filter(f);
            }
            if let Some(t) = start_time {
                op = op.start_time(t.clone())?;
            }
            if let Some(t) = stop_time {
                op = op.stop_time(t.clone())?;
            }
            let notifications = client.notifications();
            client.call(&op)?;
            eprintln!(
                "subscribed to {}; waiting for notifications (Ctrl-C to stop)",
                stream.as_deref().unwrap_or("the NETCONF stream")
            );
            let mut seen = 0u64;
            loop {
                if count.is_some_and(|c| seen >= c) {
                    return Ok(());
                }
                match notifications.recv() {
                    Some(Ok(n)) => {
                        print(&output::notification(format, &n));
                        seen += 1;
                    }
                    Some(Err(lagged)) => eprintln!("netconf: {lagged}"),
                    // The session ended: say why (the next call reports it).
                    None => return client.call(&Get::new()).map(drop).map_err(Failed::from),
                }
            }
        }
        Command::Serve(_) | Command::Demo | Command::Batch { .. } | Command::Listen(_) => {
            unreachable!("handled in main")
        }
    }
}

/// Runs `body` holding a lock on `datastore` (when given): lock, body, unlock, in this
/// session. The unlock is tried even when the body failed; the body's error comes first.
fn holding(
    client: &Client,
    datastore: Option<Datastore>,
    body: impl FnOnce(&Client) -> Result<(), Error>,
) -> Result<(), Error> {
    let Some(ds) = datastore else {
        return body(client);
    };
    client.call(&Lock::new(ds.clone()))?;
    let result = body(client);
    let unlocked = client.call(&Unlock::new(ds));
    result.and(unlocked)
}
