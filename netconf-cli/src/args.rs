//! The command line: global connection options (also from `NETCONF_*` variables) and one
//! subcommand per NETCONF operation, plus `serve` and `demo`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use netconf_blocking::operations::Datastore;
use netconf_blocking::operations::{
    DefaultOperation, ErrorOption, NmdaDatastore, SchemaFormat, TestOption, WithDefaults,
};

const AFTER_HELP: &str = "\
Exit status: 0 success, 1 the server answered with <rpc-error>, 2 anything else
(connection, SSH, TLS, timeout, bad arguments or files).

Transport: SSH (RFC 6242, port 830) unless --tls, --ca or --cert is given (or NETCONF_CA /
NETCONF_CERT set): then TLS with mutual X.509 (RFC 7589, port 6513). --ssh forces SSH.
SSH host keys are checked against ~/.ssh/known_hosts (or --known-hosts FILE); an unknown
host is refused unless --accept-new-host-key, a changed key always.

Try it with nothing installed:
  netconf demo
Against a device over SSH:
  export NETCONF_HOST=192.0.2.1 NETCONF_USER=admin NETCONF_PASSWORD=secret
  netconf --accept-new-host-key hello       (the first time: records the host key)
  netconf hello
Over TLS instead:
  export NETCONF_HOST=192.0.2.1 NETCONF_CA=ca.pem NETCONF_CERT=me.pem NETCONF_KEY=me.key
  netconf hello
  netconf get-config --source running --subtree '<interfaces xmlns=\"urn:ietf:params:xml:ns:yang:ietf-interfaces\"/>'
  netconf edit-config --target candidate --config change.xml --lock --commit
  netconf batch steps.txt       (several commands in one session: netconf batch --help)
  netconf get-config -o running.xml    (streamed: any size in a few MiB)
A device that calls home (RFC 8071; netconf listen --help):
  netconf listen --ssh --host-key-fingerprint SHA256:... get-config";

/// NETCONF over SSH or TLS from the shell.
#[derive(Debug, Parser)]
#[command(name = "netconf", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach and authenticate to the server, and how to print.
#[derive(Debug, Args)]
pub struct Global {
    /// Server host name or address.
    #[arg(long, env = "NETCONF_HOST", default_value = "localhost", global = true)]
    pub host: String,
    /// Server port [default: 830 over SSH, 6513 over TLS].
    #[arg(long, env = "NETCONF_PORT", global = true)]
    pub port: Option<u16>,
    /// Use SSH (RFC 6242), even when TLS options are set in the environment. With serve:
    /// serve SSH.
    #[arg(long, global = true)]
    pub ssh: bool,
    /// Use TLS with mutual X.509 authentication (RFC 7589) instead of SSH. With serve: serve
    /// TLS too (the default when --ssh is not given).
    #[arg(long, global = true)]
    pub tls: bool,
    /// SSH: user name to log in as [default: $USER].
    #[arg(long, env = "NETCONF_USER", value_name = "NAME", global = true)]
    pub user: Option<String>,
    /// SSH: password (also answers keyboard-interactive password prompts).
    #[arg(long, env = "NETCONF_PASSWORD", hide_env_values = true, global = true)]
    pub password: Option<String>,
    /// Private key: over SSH the key to log in with (OpenSSH or PEM); over TLS the key of
    /// the client certificate --cert (PEM).
    #[arg(long, env = "NETCONF_KEY", value_name = "FILE", global = true)]
    pub key: Option<PathBuf>,
    /// SSH: passphrase of an encrypted --key.
    #[arg(
        long,
        env = "NETCONF_KEY_PASSPHRASE",
        hide_env_values = true,
        value_name = "PASS",
        global = true
    )]
    pub key_passphrase: Option<String>,
    /// SSH: known_hosts file to check the server's host key against
    /// [default: ~/.ssh/known_hosts].
    #[arg(long, env = "NETCONF_KNOWN_HOSTS", value_name = "FILE", global = true)]
    pub known_hosts: Option<PathBuf>,
    /// SSH: trust a host that has no known_hosts entry yet and record its key (like
    /// StrictHostKeyChecking=accept-new). A changed key is refused all the same.
    #[arg(long, env = "NETCONF_ACCEPT_NEW_HOST_KEY", global = true)]
    pub accept_new_host_key: bool,
    /// SSH: accept exactly the host key with this fingerprint (SHA256:..., as ssh-keygen -l
    /// prints it) instead of looking in known_hosts.
    #[arg(long, env = "NETCONF_HOST_KEY_FINGERPRINT", value_name = "SHA256:...",
          global = true, conflicts_with_all = ["known_hosts", "accept_new_host_key"])]
    pub host_key_fingerprint: Option<String>,
    /// SSH: subsystem to start (some NX-OS releases use xmlagent).
    #[arg(
        long,
        env = "NETCONF_SUBSYSTEM",
        value_name = "NAME",
        default_value = "netconf",
        global = true
    )]
    pub subsystem: String,
    /// TLS: CA certificate(s) (PEM) that signed the server's certificate. Selects TLS.
    #[arg(long, env = "NETCONF_CA", value_name = "FILE", global = true)]
    pub ca: Option<PathBuf>,
    /// TLS: client certificate (PEM) presented to the server. Selects TLS.
    #[arg(long, env = "NETCONF_CERT", value_name = "FILE", global = true)]
    pub cert: Option<PathBuf>,
    /// TLS: name to verify the server certificate against (default: --host).
    #[arg(long, env = "NETCONF_SERVER_NAME", value_name = "NAME", global = true)]
    pub server_name: Option<String>,
    /// Seconds allowed for connecting (each SSH step: connect, login, subsystem), the hello
    /// exchange and each reply.
    #[arg(long, env = "NETCONF_TIMEOUT", value_name = "SECS", global = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Output format [default: pretty on a terminal, else xml (also with -o FILE)].
    #[arg(long, value_enum, env = "NETCONF_FORMAT", global = true)]
    pub format: Option<Format>,
}

/// The transport a client command uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Ssh,
    Tls,
}

impl Global {
    /// SSH unless TLS is asked for: `--tls`, or a CA or client certificate (a `--key`
    /// alone is an SSH key). `--ssh` wins over TLS options.
    pub fn transport(&self) -> Transport {
        if self.ssh {
            Transport::Ssh
        } else if self.tls || self.ca.is_some() || self.cert.is_some() {
            Transport::Tls
        } else {
            Transport::Ssh
        }
    }

    /// The port given, or the transport's standard one.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.transport() {
            Transport::Ssh => netconf_blocking::ssh::NETCONF_SSH_PORT,
            Transport::Tls => netconf_blocking::DEFAULT_TLS_PORT,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The reply's XML as received.
    Xml,
    /// Indented XML and readable summaries (streamed replies are indented as they arrive).
    Pretty,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the session-id and the server's capabilities, grouped.
    Hello,
    /// <get>: configuration and state data (streamed: see --help).
    #[command(after_help = STREAMED_HELP)]
    Get {
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, value_name = "MODE", value_parser = with_defaults_values())]
        with_defaults: Option<WithDefaults>,
        /// Write the content of <data> to FILE instead of stdout (byte for byte unless
        /// --format pretty); FILE is replaced only once the whole reply has arrived.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// <get-config>: configuration of one datastore (streamed: see --help).
    #[command(after_help = STREAMED_HELP)]
    GetConfig {
        #[arg(long, default_value = "running", value_parser = parse_datastore)]
        source: Datastore,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, value_name = "MODE", value_parser = with_defaults_values())]
        with_defaults: Option<WithDefaults>,
        /// Write the content of <data> to FILE instead of stdout (byte for byte unless
        /// --format pretty); FILE is replaced only once the whole reply has arrived.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// <get-data> (RFC 8526): one NMDA datastore (streamed: see --help).
    #[command(after_help = STREAMED_HELP)]
    GetData {
        #[arg(long, value_name = "DS", value_parser = parse_nmda_datastore)]
        datastore: NmdaDatastore,
        #[command(flatten)]
        filter: FilterArgs,
        /// Only configuration (true) or only state (false).
        #[arg(long, value_name = "BOOL")]
        config_filter: Option<bool>,
        #[arg(long, value_name = "N")]
        max_depth: Option<u16>,
        #[arg(long, value_name = "MODE", value_parser = with_defaults_values())]
        with_defaults: Option<WithDefaults>,
        /// Write the content of <data> to FILE instead of stdout (byte for byte unless
        /// --format pretty); FILE is replaced only once the whole reply has arrived.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// <edit-config>: change a datastore.
    EditConfig {
        #[arg(long, default_value = "running", value_parser = parse_datastore)]
        target: Datastore,
        /// The configuration: a FILE, '-' for stdin, or inline XML. A <config> wrapper is optional.
        #[arg(long, value_name = "FILE|-")]
        config: String,
        #[arg(long, value_parser = default_operation_values())]
        default_operation: Option<DefaultOperation>,
        #[arg(long, value_parser = test_option_values())]
        test_option: Option<TestOption>,
        #[arg(long, value_parser = error_option_values())]
        error_option: Option<ErrorOption>,
        /// Lock the target first and unlock it at the end, all in this one session.
        #[arg(long)]
        lock: bool,
        /// After the edit, <validate> the target.
        #[arg(long)]
        validate: bool,
        /// After the edit (and validate), <commit> (the target must be candidate).
        #[arg(long)]
        commit: bool,
    },
    /// <copy-config>: replace a datastore with another or with a configuration.
    CopyConfig {
        #[arg(long, value_parser = parse_datastore)]
        target: Datastore,
        /// The source datastore.
        #[arg(long, value_parser = parse_datastore, required_unless_present = "config",
              conflicts_with = "config")]
        source: Option<Datastore>,
        /// A configuration to copy instead: FILE, '-' or inline XML.
        #[arg(long, value_name = "FILE|-")]
        config: Option<String>,
    },
    /// <delete-config>: delete a datastore (not running).
    DeleteConfig {
        #[arg(long, value_parser = parse_datastore)]
        target: Datastore,
    },
    /// <lock>: lock a datastore for this session (released when the command exits).
    Lock {
        #[arg(long, default_value = "running", value_parser = parse_datastore)]
        target: Datastore,
    },
    /// <unlock>.
    Unlock {
        #[arg(long, default_value = "running", value_parser = parse_datastore)]
        target: Datastore,
    },
    /// <validate>: check a datastore or a configuration.
    Validate {
        #[arg(long, default_value = "candidate", value_parser = parse_datastore,
              conflicts_with = "config")]
        source: Datastore,
        /// A configuration to validate instead: FILE, '-' or inline XML.
        #[arg(long, value_name = "FILE|-")]
        config: Option<String>,
    },
    /// <commit>: candidate becomes running.
    Commit {
        /// A confirmed commit: rolled back unless confirmed in time.
        #[arg(long)]
        confirmed: bool,
        #[arg(long, value_name = "SECS", requires = "confirmed")]
        confirm_timeout: Option<u32>,
        /// Token that makes the confirmed commit outlive this session.
        #[arg(long, value_name = "ID", requires = "confirmed")]
        persist: Option<String>,
        /// Confirms a persistent confirmed commit.
        #[arg(long, value_name = "ID")]
        persist_id: Option<String>,
        /// Lock running around the commit (no other session changes it meanwhile).
        #[arg(long)]
        lock: bool,
    },
    /// <cancel-commit>: roll back a pending confirmed commit.
    CancelCommit {
        #[arg(long, value_name = "ID")]
        persist_id: Option<String>,
    },
    /// <discard-changes>: candidate goes back to running.
    DiscardChanges,
    /// <kill-session>: end another session.
    KillSession {
        #[arg(value_name = "ID")]
        session_id: u32,
    },
    /// <get-schema> (RFC 6022): fetch a YANG module.
    GetSchema {
        #[arg(value_name = "ID")]
        identifier: String,
        #[arg(long, value_name = "V")]
        version: Option<String>,
        #[arg(long, value_name = "FORMAT", value_parser = schema_format_values())]
        schema_format: Option<SchemaFormat>,
        /// Write the schema to FILE instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Send raw XML (the operation element, or a whole <rpc>) and print the reply.
    Rpc {
        /// FILE, '-' for stdin, or inline XML.
        #[arg(value_name = "FILE|-")]
        input: String,
    },
    /// <create-subscription> (RFC 5277): print notifications as they arrive, until Ctrl-C.
    Subscribe {
        #[arg(long, value_name = "NAME")]
        stream: Option<String>,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, value_name = "DATE-TIME")]
        start_time: Option<String>,
        #[arg(long, value_name = "DATE-TIME", requires = "start_time")]
        stop_time: Option<String>,
        /// Exit after N notifications.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Run a loopback (127.0.0.1) NETCONF server, over SSH and/or TLS, on in-memory
    /// datastores.
    #[command(long_about = SERVE_HELP)]
    Serve(ServeArgs),
    /// Show the whole thing working: a server on loopback, clients over SSH and TLS, step by
    /// step.
    Demo,
    /// Wait for a device to call home (RFC 8071), run a command against it, and exit.
    #[command(long_about = LISTEN_HELP)]
    Listen(ListenArgs),
    /// Run several commands in one session, one per line, from FILE or '-' (stdin).
    #[command(long_about = BATCH_HELP)]
    Batch {
        /// The commands, one per line: a FILE, or '-' for stdin.
        #[arg(value_name = "FILE|-")]
        input: String,
        /// Run the remaining lines after one fails (exit status: the first failure's).
        #[arg(long)]
        keep_going: bool,
    },
}

const STREAMED_HELP: &str = "\
The reply streams: the content of <data> goes to stdout (or -o FILE) as it arrives, so a
reply of any size takes a few MiB of memory. On a terminal, stderr shows a progress line
(bytes received, rate) while it arrives.

--format xml (the default for a pipe or -o FILE) writes the content exactly as received;
stdout gets a final newline, FILE does not. --format pretty (the default on a terminal)
indents as it streams, holding one tag or one run of text at a time.

With -o FILE the content goes to a temporary file beside FILE, renamed over FILE when the
reply is complete: a reply that breaks off (exit status 2) leaves FILE as it was.";

const BATCH_HELP: &str = "\
Run several commands in one NETCONF session, so a lock holds across them.

Each line is one command as you would type it after `netconf` (no global options: those
come from the command line or NETCONF_* variables), split like a POSIX shell splits words:
quote arguments with spaces or XML. Empty lines and lines starting with # are skipped.
serve, demo, batch and subscribe are not allowed. Every line is checked (and its files
read) before connecting; the lines then run in order and the first failure stops the
batch unless --keep-going.

Example (netconf batch change.txt):
  # lock, edit, check and commit candidate; nobody else can touch it meanwhile
  lock --target candidate
  edit-config --target candidate --config change.xml
  validate --source candidate
  commit
  unlock --target candidate";

const SERVE_HELP: &str = "\
Run a loopback (127.0.0.1 only) NETCONF server for trying clients and for tests: over TLS
(the default, port 6513), over SSH with --ssh (port 830), or both with --ssh --tls.

running, candidate and startup are XML documents in memory (the netconf-server crate),
seeded from --data (default: a small sample). get/get-config/get-data answer from them
with subtree filters and with-defaults; edit-config, copy-config, delete-config,
lock/unlock (per session, released when the session ends), commit (also confirmed, with
persist), cancel-commit, discard-changes, validate, get-schema and create-subscription
work; each change of running or startup is sent to subscribers as <netconf-config-change>,
each step of a confirmed commit as <netconf-confirmed-commit> (RFC 6470). Requests nested
deeper than 256 elements are answered with too-big.

The edit rule (there is no YANG schema): an element in the edit stands for the element at
the same level with the same name and namespace and, when its first child is a leaf called
name, key or id, the same text there (a list entry). merge (the default) merges into it
recursively, a leaf taking the new text, and adds what is missing; nc:operation=\"replace\"
replaces it whole, \"create\" adds it (data-exists if present), \"delete\" removes it
(data-missing if absent), \"remove\" removes it quietly. --default-operation replace
replaces the whole datastore. (nc = urn:ietf:params:xml:ns:netconf:base:1.0)

TLS: --cert/--key are the server's, --ca signs the clients'. They are taken from the
command line only (NETCONF_* variables are for the client). Without them a throwaway PKI
is written to a temporary directory (or --pki-dir) and its client-side paths printed:
  listening on 127.0.0.1:PORT
  ca: DIR/ca.pem
  cert: DIR/client.pem
  key: DIR/client.key

SSH: --ssh-user NAME:PASSWORD (repeatable) says who may log in; --authorized-keys FILE lets
the --ssh-user names log in with the keys of an OpenSSH authorized_keys file too (NAME
alone, without a password, then allows keys only). Without --ssh-user, the user admin
gets a random password, printed. The host key is --host-key FILE (OpenSSH or PEM), else a
new ed25519 key each start. The SSH user name is the NETCONF user name. Printed:
  ssh: listening on 127.0.0.1:PORT
  ssh fingerprint: SHA256:...
  ssh known_hosts: [127.0.0.1]:PORT ssh-ed25519 AAAA...
With both transports, --port is TLS's and --ssh-port SSH's (--port 0: any free port for
both).

Call home (RFC 8071): --call-home HOST[:PORT] dials a manager (e.g. `netconf listen`)
instead of listening, over TLS (port 4335) or with --ssh over SSH (port 4334), and serves
the session as the TLS or SSH server, like a device behind NAT. When the session ends it
calls again at once (--reconnect-period SECS: that much later); failed calls are retried
after 1 s, doubling to 60 s, with jitter, trying each manager in turn, without end unless
--max-attempts N. Give --port (or --ssh-port) to listen as well. Printed:
  calling home over TLS to HOST:PORT
and the client-side files or the SSH fingerprint, as above, for the manager.";

const LISTEN_HELP: &str = "\
Wait for a device to call home (RFC 8071), run one command against it, and exit.

A device behind NAT or a firewall opens the TCP connection to its manager; then the
roles flip back: netconf, which accepted the connection, is the TLS or SSH client and the
NETCONF client, exactly as when it dials. It listens on 0.0.0.0 (--bind), port 4335 for
TLS or 4334 for SSH (--port), prints on stderr who called (address, and the certificate's
subject or the SSH host key's fingerprint), runs the command, closes the session and
exits. Other devices calling meanwhile are not answered.

The device is verified before anything else is sent, as a dialled server would be: over
TLS its certificate must chain to --ca (its name is checked only with --server-name);
over SSH its host key must be in known_hosts under [ADDRESS]:830, the entry a dialled
connection to the device records (--known-hosts, --accept-new-host-key), or match
--host-key-fingerprint. A device that fails the check, or a call that fails otherwise,
ends the command with exit status 2 and the reason.

The command and its options come last, as after `netconf`; global options (--tls, --ca,
--user, --timeout...) go before it. `batch FILE` runs several commands in the session.

Examples:
  netconf listen --tls --ca ca.pem --cert me.pem --key me.key get-config -o running.xml
  netconf listen --ssh --user admin --password secret --host-key-fingerprint SHA256:... hello
  netconf listen --ssh --user admin --key id_ed25519 --wait 600 batch steps.txt";

/// Options of `listen` (besides the global connection options, and --port).
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Address to listen on (the port is --port: 4335 for TLS, 4334 for SSH by default).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0")]
    pub bind: String,
    /// Give up when no device has called within SECS [default: wait as long as it takes].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub wait: Option<u64>,
    /// The command to run against the device that calls, and its options.
    #[arg(
        value_name = "COMMAND",
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

/// The command `listen` runs: a subcommand and its options.
#[derive(Debug, Parser)]
#[command(name = "netconf listen", no_binary_name = true)]
pub struct ListenLine {
    #[command(subcommand)]
    pub command: Command,
}

/// One line of a batch: a subcommand and its options.
#[derive(Debug, Parser)]
#[command(name = "batch line", no_binary_name = true)]
pub struct BatchLine {
    #[command(subcommand)]
    pub command: Command,
}

/// Options of `serve` (besides the global --port, --ca, --cert, --key, --ssh, --tls).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// SSH: who may log in, NAME:PASSWORD, or NAME alone for --authorized-keys only
    /// (repeatable).
    #[arg(long, value_name = "NAME[:PASSWORD]")]
    pub ssh_user: Vec<String>,
    /// SSH: an OpenSSH authorized_keys file whose keys the --ssh-user names may log in with.
    #[arg(long, value_name = "FILE")]
    pub authorized_keys: Option<PathBuf>,
    /// SSH: the server's host key (OpenSSH or PEM private key) [default: a new ed25519 key].
    #[arg(long, value_name = "FILE")]
    pub host_key: Option<PathBuf>,
    /// SSH: port when TLS is served too [default: --port with SSH alone, else 830].
    #[arg(long, value_name = "PORT")]
    pub ssh_port: Option<u16>,
    /// XML to seed the datastores with (top-level elements, optionally in <data>/<config>).
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Where to write the generated PKI (default: a new temporary directory).
    #[arg(long, value_name = "DIR")]
    pub pki_dir: Option<PathBuf>,
    /// Call home (RFC 8071): dial the manager at HOST[:PORT] (port 4335 over TLS, 4334 over
    /// SSH) instead of listening; repeatable or comma-separated: tried in turn.
    #[arg(long, value_name = "HOST[:PORT]", value_delimiter = ',')]
    pub call_home: Vec<String>,
    /// Call home: after a session ends, call again SECS later [default: at once, a
    /// persistent connection].
    #[arg(long, value_name = "SECS", requires = "call_home")]
    pub reconnect_period: Option<u64>,
    /// Call home: stop after N calls in a row failed (then serve exits with status 2 unless
    /// it listens too) [default: never stop].
    #[arg(long, value_name = "N", requires = "call_home",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: Option<u32>,
    /// Do not log requests on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// --subtree / --xpath.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Subtree filter: FILE, '-' for stdin, or inline XML.
    #[arg(long, value_name = "FILE|XML", conflicts_with = "xpath")]
    pub subtree: Option<String>,
    /// XPath filter (the server needs :xpath); bind its prefixes with --ns.
    #[arg(long, value_name = "EXPR")]
    pub xpath: Option<String>,
    /// PREFIX=URI namespace binding for --xpath (repeatable).
    #[arg(long = "ns", value_name = "PREFIX=URI", requires = "xpath")]
    pub ns: Vec<String>,
}

/// A clap parser for a netconf-proto enum that has no `FromStr`/`ValueEnum` of its own:
/// its wire names are the possible values (so `--help` lists them) and each maps back to
/// its variant. (Those traits belong on the netconf-proto enums; until then, this.)
fn wire_values<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    name: fn(T) -> &'static str,
) -> impl clap::builder::TypedValueParser<Value = T> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(all.iter().map(|v| name(*v))).try_map(
        move |s: String| {
            all.iter()
                .copied()
                .find(|v| name(*v) == s)
                .ok_or("not a possible value")
        },
    )
}

fn with_defaults_values() -> impl clap::builder::TypedValueParser<Value = WithDefaults> {
    wire_values(&netconf_server::defaults::MODES, WithDefaults::as_str)
}

fn default_operation_values() -> impl clap::builder::TypedValueParser<Value = DefaultOperation> {
    const ALL: &[DefaultOperation] = &[
        DefaultOperation::Merge,
        DefaultOperation::Replace,
        DefaultOperation::None,
    ];
    wire_values(ALL, DefaultOperation::as_str)
}

fn test_option_values() -> impl clap::builder::TypedValueParser<Value = TestOption> {
    const ALL: &[TestOption] = &[
        TestOption::TestThenSet,
        TestOption::Set,
        TestOption::TestOnly,
    ];
    wire_values(ALL, TestOption::as_str)
}

fn error_option_values() -> impl clap::builder::TypedValueParser<Value = ErrorOption> {
    const ALL: &[ErrorOption] = &[
        ErrorOption::StopOnError,
        ErrorOption::ContinueOnError,
        ErrorOption::RollbackOnError,
    ];
    wire_values(ALL, ErrorOption::as_str)
}

fn schema_format_values() -> impl clap::builder::TypedValueParser<Value = SchemaFormat> {
    const ALL: &[SchemaFormat] = &[
        SchemaFormat::Yang,
        SchemaFormat::Yin,
        SchemaFormat::Xsd,
        SchemaFormat::Rng,
        SchemaFormat::Rnc,
    ];
    wire_values(ALL, SchemaFormat::as_str)
}

/// running, candidate, startup, or a URL (anything with "://").
fn parse_datastore(s: &str) -> Result<Datastore, String> {
    match s {
        "running" => Ok(Datastore::Running),
        "candidate" => Ok(Datastore::Candidate),
        "startup" => Ok(Datastore::Startup),
        url if url.contains("://") => Ok(Datastore::Url(url.to_owned())),
        other => Err(format!(
            "{other:?} is not running, candidate, startup or a URL"
        )),
    }
}

/// running, candidate, startup, intended, operational, or NAMESPACE#NAME.
fn parse_nmda_datastore(s: &str) -> Result<NmdaDatastore, String> {
    Ok(match s {
        "running" => NmdaDatastore::Running,
        "candidate" => NmdaDatastore::Candidate,
        "startup" => NmdaDatastore::Startup,
        "intended" => NmdaDatastore::Intended,
        "operational" => NmdaDatastore::Operational,
        other => match other.rsplit_once('#') {
            Some((ns, name)) => NmdaDatastore::other(ns, name).map_err(|e| e.to_string())?,
            None => {
                return Err(format!(
                    "{other:?} is not running, candidate, startup, intended, operational or NAMESPACE#NAME"
                ))
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn datastores() {
        assert_eq!(parse_datastore("candidate"), Ok(Datastore::Candidate));
        assert_eq!(
            parse_datastore("file:///x.xml"),
            Ok(Datastore::Url("file:///x.xml".into()))
        );
        assert!(parse_datastore("nope").is_err());
        assert!(parse_nmda_datastore("urn:x#mine").is_ok());
        assert!(parse_nmda_datastore("mine").is_err());
    }
}
