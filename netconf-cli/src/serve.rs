//! `netconf serve`: a loopback NETCONF-over-TLS server on the in-memory datastores of
//! [`crate::backend`], for trying clients and for tests.
//!
//! It binds 127.0.0.1 only. Without --ca/--cert/--key it makes a throwaway PKI, writes it to
//! a temporary directory and prints the client-side paths, one per line after the address:
//!
//! ```text
//! listening on 127.0.0.1:PORT
//! ca: DIR/ca.pem
//! cert: DIR/client.pem
//! key: DIR/client.key
//! ```
//!
//! The edit rule it applies is documented in [`crate::datastore`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use netconf_blocking::tls::{PemSource, ServerTlsOptions};
use netconf_blocking::{Config, Server, ServerHandle};
use netconf_proto::xml::NS_BASE;

use crate::args::ServeArgs;
use crate::backend::{self, Backend};
use crate::errors::CliError;
use crate::output::print;
use crate::pki::{self, Pki};
use crate::sample;
use crate::xmltree::{self, Element};

/// The connection options `serve` takes, from the command line only.
#[derive(Debug, Default)]
pub struct Options {
    pub port: Option<u16>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

/// A running server; dropping it shuts the server down.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    handle: Arc<ServerHandle>,
}

impl Running {
    pub fn shutdown(self) {
        if let Ok(handle) = Arc::try_unwrap(self.handle) {
            handle.shutdown();
        }
    }
}

/// The session configuration: base 1.0/1.1 and what the backend implements.
pub fn config() -> Config {
    backend::CAPABILITIES
        .iter()
        .fold(Config::server(), |c, uri| c.with_capability(*uri))
}

/// Starts a server on 127.0.0.1:`port` (0: any free port) over datastores seeded with `seed`.
pub fn start(
    seed: Element,
    tls: ServerTlsOptions,
    port: u16,
    log: bool,
) -> Result<Running, netconf_blocking::Error> {
    let backend = Arc::new(Backend::new(seed, log));
    let handler = backend.clone();
    let ended = backend.clone();
    let server = Server::builder(tls)
        .config(config())
        .cert_to_name(|chain| {
            let cn = chain.first().and_then(|c| backend::common_name(c));
            Some(cn.unwrap_or_else(|| "unknown".into()))
        })
        .on_session_end(move |info| ended.session_ended(info.session_id))
        .bind(("127.0.0.1", port), move |request, info| {
            handler.handle(request, info)
        })?;
    let addr = server.local_addr();
    let handle = Arc::new(server.spawn());
    backend.attach(&handle);
    Ok(Running { addr, handle })
}

/// The datastore content in `xml`: its top-level elements, or those inside a single
/// `<data>` or `<config>` wrapper (base namespace or none).
pub fn seed(xml: &str) -> Result<Element, String> {
    let root = xmltree::parse(xml, &[])?;
    if let [only] = root.children.as_slice() {
        if matches!(only.name.as_str(), "data" | "config")
            && (only.ns.is_empty() || only.ns == NS_BASE)
        {
            return Ok(Element {
                children: only.children.clone(),
                ..Element::root()
            });
        }
    }
    Ok(root)
}

fn read(option: &str, path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path)
        .map_err(|e| CliError::fatal(format!("cannot read {option} {}: {e}", path.display())))
}

/// `netconf serve`: runs until the process is stopped.
pub fn run(options: &Options, args: &ServeArgs) -> Result<(), CliError> {
    let seed_xml = match &args.data {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::fatal(format!("cannot read --data {}: {e}", path.display())))?,
        None => sample::DATA.to_owned(),
    };
    let data = seed(&seed_xml).map_err(|e| {
        let name = args
            .data
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        CliError::fatal(format!("--data {name}: not well-formed XML: {e}"))
    })?;

    let mut client_files = None;
    let tls = match (&options.ca, &options.cert, &options.key) {
        (Some(ca), Some(cert), Some(key)) => ServerTlsOptions::new(
            PemSource::pem(read("--cert", cert)?),
            PemSource::pem(read("--key", key)?),
            PemSource::pem(read("--ca", ca)?),
        ),
        (None, None, None) => {
            let pki = Pki::generate()
                .map_err(|e| CliError::fatal(format!("cannot generate certificates: {e}")))?;
            let dir = match &args.pki_dir {
                Some(dir) => dir.clone(),
                None => pki::temp_dir("netconf-serve").map_err(|e| {
                    CliError::fatal(format!("cannot create a temporary directory: {e}"))
                })?,
            };
            let files = pki.write_to(&dir).map_err(|e| {
                CliError::fatal(format!(
                    "cannot write certificates to {}: {e}",
                    dir.display()
                ))
            })?;
            client_files = Some(files);
            ServerTlsOptions::new(
                PemSource::pem(pki.server_cert_pem),
                PemSource::pem(pki.server_key_pem),
                PemSource::pem(pki.ca_pem),
            )
        }
        _ => {
            return Err(CliError::fatal(
                "serve needs all of --ca (for client certificates), --cert and --key, or none \
                 (then it makes a throwaway PKI)",
            ))
        }
    };

    let port = options.port.unwrap_or(netconf_blocking::DEFAULT_TLS_PORT);
    let running = start(data, tls, port, !args.quiet).map_err(|e| match e {
        netconf_blocking::Error::Io(io) => {
            CliError::fatal(format!("cannot listen on 127.0.0.1:{port}: {io}"))
        }
        netconf_blocking::Error::TlsConfig(c) => {
            CliError::fatal(format!("bad server certificate, key or CA: {c}"))
        }
        other => CliError::fatal(other.to_string()),
    })?;

    let mut banner = format!("listening on {}\n", running.addr);
    if let Some(files) = &client_files {
        banner.push_str(&format!(
            "ca: {}\ncert: {}\nkey: {}\n\nconnect with:\n  netconf --port {} --ca {} --cert {} --key {} hello\n",
            files.ca.display(),
            files.client_cert.display(),
            files.client_key.display(),
            running.addr.port(),
            files.ca.display(),
            files.client_cert.display(),
            files.client_key.display(),
        ));
    }
    print(&banner);
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_unwraps_data_and_config() {
        let a = seed(&format!(
            "<data xmlns=\"{NS_BASE}\"><x xmlns=\"urn:x\"/></data>"
        ))
        .unwrap();
        let b = seed("<config><x xmlns=\"urn:x\"/></config>").unwrap();
        let c = seed("<x xmlns=\"urn:x\"/>").unwrap();
        assert_eq!(a, b);
        assert_eq!(b, c);
        assert!(seed("<data xmlns=\"urn:mine\"/>").unwrap().children[0].name == "data");
        assert!(seed(sample::DATA).is_ok());
    }
}
