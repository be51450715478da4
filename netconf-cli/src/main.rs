//! `netconf`: NETCONF (RFC 6241) from the shell, over SSH (RFC 6242, the default) or TLS
//! (RFC 7589), on the blocking client of `netconf-blocking`; `listen`, the manager's side
//! of call home (RFC 8071); plus `serve`, a loopback server on in-memory datastores (which
//! can call home too), and `demo`, which shows everything working with nothing installed.
//!
//! Exit status: 0 success, 1 an `<rpc-error>` reply, 2 anything else.

mod args;
mod commands;
mod demo;
mod errors;
mod input;
mod listen;
mod output;
mod pki;
mod pretty;
mod sample;
mod serve;
mod ssh;
mod stream;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use args::{Cli, Command};
use errors::CliError;

/// Whether `id` was given on the command line (not from the environment or a default),
/// before or after the subcommand.
fn on_command_line(matches: &ArgMatches, id: &str) -> bool {
    let here = matches.value_source(id) == Some(ValueSource::CommandLine);
    let below = matches
        .subcommand()
        .is_some_and(|(_, sub)| sub.value_source(id) == Some(ValueSource::CommandLine));
    here || below
}

/// `serve` takes --port/--ca/--cert/--key from the command line only: the NETCONF_*
/// variables describe the client side and would hand a server the client's certificate.
fn serve_options(cli: &Cli, matches: &ArgMatches) -> serve::Options {
    let g = &cli.global;
    let pick = |id: &str, v: &Option<PathBuf>| v.clone().filter(|_| on_command_line(matches, id));
    serve::Options {
        port: g.port.filter(|_| on_command_line(matches, "port")),
        ca: pick("ca", &g.ca),
        cert: pick("cert", &g.cert),
        key: pick("key", &g.key),
        ssh: g.ssh,
        tls: g.tls,
    }
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match &cli.command {
        Command::Demo => demo::run(),
        Command::Serve(args) => serve::run(&serve_options(&cli, &matches), args),
        Command::Batch { input, keep_going } => commands::run_batch(&cli, input, *keep_going),
        Command::Listen(args) => {
            let port = cli
                .global
                .port
                .filter(|_| on_command_line(&matches, "port"));
            listen::run(&cli.global, port, args)
        }
        _ => commands::run(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match &e {
                CliError::Rpc(errors) => eprint!("{}", output::rpc_error_lines(errors)),
                CliError::Fatal(message) => eprintln!("netconf: {message}"),
                CliError::Reported(_) => {}
            }
            ExitCode::from(e.exit_code())
        }
    }
}
