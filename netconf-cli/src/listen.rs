//! `netconf listen`: the manager's side of call home (RFC 8071). Waits for one device to
//! call, verifies it as a dialled connection would (CA over TLS; known_hosts under
//! `[address]:830` or a pinned fingerprint over SSH), says who called, runs one command (or
//! a batch) on the session and exits.
//!
//! The blocking adapter's `CallHomeListener` does the work; the listener is dropped as soon
//! as the device is there, so nobody else calling meanwhile gets a session.

use std::time::Duration;

use clap::Parser as _;
use netconf_blocking::call_home::{
    CallHomeListener, CallHomeOptions, DeviceError, DeviceIdentity, CALL_HOME_SSH_PORT,
    CALL_HOME_TLS_PORT,
};

use crate::args::{Command, Global, ListenArgs, ListenLine, Transport};
use crate::commands::{self, Prepared, Step};
use crate::errors::{self, CliError, Target};
use crate::{pki, ssh};

/// What runs once the device is there.
enum Plan {
    One(Box<Command>, Prepared),
    Batch(Vec<Step>, bool),
}

/// The command after `listen`, parsed and its files read.
fn plan(words: &[String]) -> Result<Plan, CliError> {
    let line = match ListenLine::try_parse_from(words) {
        Ok(line) => line,
        Err(e) if !e.use_stderr() => e.exit(), // --help
        Err(e) => {
            let hint = if e.kind() == clap::error::ErrorKind::UnknownArgument {
                "\n(global options such as --tls, --ca, --user or --timeout go before the command)"
            } else {
                ""
            };
            return Err(CliError::fatal(format!(
                "{}{hint}",
                e.render().to_string().trim_end()
            )));
        }
    };
    match line.command {
        Command::Serve(_) | Command::Demo | Command::Listen(_) => Err(CliError::fatal(format!(
            "listen runs a client command against the device that calls: {:?} cannot run there",
            words[0]
        ))),
        Command::Batch { input, keep_going } => {
            Ok(Plan::Batch(commands::read_batch(&input)?, keep_going))
        }
        command => {
            let prepared = commands::prepare(&command)?;
            Ok(Plan::One(Box::new(command), prepared))
        }
    }
}

/// `netconf listen`. `port` is --port from the command line (NETCONF_PORT is the port a
/// dialled device listens on, not ours).
pub fn run(g: &Global, port: Option<u16>, args: &ListenArgs) -> Result<(), CliError> {
    if g.ssh && g.tls {
        return Err(CliError::fatal("--ssh and --tls: choose one transport"));
    }
    // Everything is checked before listening: a bad argument costs no device its call.
    let plan = plan(&args.command)?;
    let transport = g.transport();
    let client_options = commands::client_options(g);
    let (options, name, default_port) = match transport {
        Transport::Tls => (
            CallHomeOptions::tls(commands::tls_options(g)?),
            "TLS",
            CALL_HOME_TLS_PORT,
        ),
        Transport::Ssh => (
            CallHomeOptions::ssh(ssh::client_options(g)?),
            "SSH",
            CALL_HOME_SSH_PORT,
        ),
    };
    let options = options.client_options(client_options);
    let port = port.unwrap_or(default_port);
    let listener = CallHomeListener::bind((args.bind.as_str(), port), &options).map_err(|e| {
        CliError::fatal(format!(
            "cannot listen for call home on {}: {e}",
            host_port(&args.bind, port)
        ))
    })?;
    let local = listener.local_addr();
    eprintln!("listening for call home over {name} on {local}");
    let arrival = match args.wait {
        None => listener.accept(),
        Some(secs) => listener
            .accept_timeout(Duration::from_secs(secs))
            .ok_or_else(|| {
                CliError::fatal(format!(
                    "no device called home to {local} within {secs} s (--wait)"
                ))
            })?,
    };
    // One device is all we serve.
    drop(listener);
    let called = arrival.map_err(|DeviceError { peer, error }| {
        let host = peer.ip().to_string();
        match errors::connect_error(error, &target(g, &host, peer.port(), transport)) {
            CliError::Fatal(why) => CliError::fatal(format!("call home from {peer} failed: {why}")),
            other => other,
        }
    })?;
    let peer = called.device.peer;
    eprintln!(
        "call home from {peer}: {}",
        identity(&called.device.identity)
    );
    let host = peer.ip().to_string();
    let target = target(g, &host, peer.port(), transport);
    match plan {
        Plan::One(command, prepared) => {
            let result = commands::execute(&called.client, &command, prepared, g.format, &target);
            commands::close(called.client);
            result
        }
        Plan::Batch(steps, keep_going) => {
            commands::run_steps(called.client, steps, keep_going, g.format, &target)
        }
    }
}

/// The device, for messages: where it called from, how it was verified.
fn target<'a>(g: &'a Global, host: &'a str, port: u16, transport: Transport) -> Target<'a> {
    Target {
        host,
        port,
        transport,
        ca: g.ca.as_deref(),
        cert: g.cert.as_deref(),
        key: g.key.as_deref(),
        server_name: g.server_name.as_deref(),
        timeout: g.timeout,
    }
}

/// Who the device proved to be.
fn identity(identity: &DeviceIdentity) -> String {
    match identity {
        DeviceIdentity::Certificate(der) => format!("certificate {}", pki::describe(der)),
        DeviceIdentity::HostKey {
            fingerprint,
            openssh,
        } => {
            let kind = openssh.split_whitespace().next().unwrap_or("unknown type");
            format!("host key {fingerprint} ({kind})")
        }
        other => format!("{other:?}"),
    }
}

/// `host:port`, `[v6]:port` for an IPv6 address.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
