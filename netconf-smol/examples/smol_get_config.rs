//! Connects over TLS, prints the session-id and the running configuration, and closes.
//!
//! ```text
//! cargo run -p netconf-smol --example smol_get_config -- ADDR CA_PEM CERT_PEM KEY_PEM
//! ```

use std::process::ExitCode;

use netconf_smol::operations::{Datastore, GetConfig};
use netconf_smol::tls::ClientTlsOptions;
use netconf_smol::{Client, Error};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, ca, cert, key] = args.as_slice() else {
        eprintln!("usage: get_config ADDR CA_PEM CERT_PEM KEY_PEM");
        return ExitCode::from(2);
    };
    match smol::block_on(run(addr, ca, cert, key)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(addr: &str, ca: &str, cert: &str, key: &str) -> Result<(), Error> {
    let tls = ClientTlsOptions::new()
        .ca_file(ca)
        .client_cert_files(cert, key);
    let client = Client::connect_tls(addr, &tls).await?;
    println!("session-id {}", client.session_id());
    let data = client.call(&GetConfig::new(Datastore::Running)).await?;
    println!("{data}");
    client.close().await
}
