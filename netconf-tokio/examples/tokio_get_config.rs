//! Connects over TLS, prints the session-id and the running configuration, and closes.
//!
//! ```text
//! cargo run -p netconf-tokio --example tokio_get_config -- ADDR CA_PEM CERT_PEM KEY_PEM
//! ```

use std::process::ExitCode;

use netconf_tokio::operations::{Datastore, GetConfig};
use netconf_tokio::tls::ClientTlsOptions;
use netconf_tokio::{Client, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, ca, cert, key] = args.as_slice() else {
        eprintln!("usage: get_config ADDR CA_PEM CERT_PEM KEY_PEM");
        return ExitCode::from(2);
    };
    match run(addr, ca, cert, key).await {
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
