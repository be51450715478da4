//! `netconf demo`: the whole thing working with nothing installed. An SSH host key and a
//! throwaway PKI in memory, the `serve` datastores on 127.0.0.1 on free ports over SSH and
//! TLS, a client over SSH and each step printed: hello and capabilities, get-config,
//! edit-config on candidate and commit, get-config again showing the change, the
//! notification the commit caused; then a second client over mutual TLS sees the change;
//! close.

use std::time::{Duration, Instant};

use netconf_blocking::operations::{
    Commit, CreateSubscription, Datastore, EditConfig, Filter, GetConfig, InlineConfig,
};
use netconf_blocking::ssh::{SshClientOptions, SshServer, SshServerOptions, StaticAuth};
use netconf_blocking::tls::{ClientTlsOptions, PemSource, ServerTlsOptions};
use netconf_blocking::{Client, ClientOptions};

use crate::args::{Format, Transport};
use crate::errors::{self, CliError, Target};
use crate::output::{self, print};
use crate::pki::Pki;
use crate::{sample, serve};

/// The demo's SSH login (loopback only, for this run only).
const USER: &str = "admin";
const PASSWORD: &str = "demo-password";

/// The change the demo makes: bring up eth1 as the link to the core, with jumbo frames.
const EDIT: &str = r#"<interfaces xmlns="urn:example:netconf-cli-demo">
  <interface>
    <name>eth1</name>
    <description>link to core</description>
    <enabled>true</enabled>
    <mtu>9000</mtu>
  </interface>
</interfaces>"#;

/// The subtree filter that shows the changed interface.
const FILTER: &str = r#"<interfaces xmlns="urn:example:netconf-cli-demo"><interface><name>eth1</name></interface></interfaces>"#;

/// How long the demo waits for the notification its commit causes.
const NOTIFICATION_WAIT: Duration = Duration::from_secs(5);

fn step(n: u32, title: &str) {
    print(&format!("\n== {n}. {title}\n"));
}

fn indented(text: &str) -> String {
    text.lines().map(|l| format!("   {l}\n")).collect()
}

fn fatal(what: &str) -> impl FnOnce(netconf_blocking::Error) -> CliError + '_ {
    move |e| CliError::fatal(format!("demo: {what}: {e}"))
}

pub fn run() -> Result<(), CliError> {
    let started = Instant::now();
    print(
        "netconf demo: a NETCONF server and clients on this machine, over SSH and TLS, \
         nothing installed.\n",
    );

    step(
        1,
        "Keys, in memory: an SSH host key and a throwaway PKI for TLS",
    );
    let ssh = SshServer::new(
        SshServerOptions::default(),
        StaticAuth::new().user(USER, PASSWORD),
    )
    .map_err(|e| CliError::fatal(format!("demo: SSH server: {e}")))?;
    let pki = Pki::generate()
        .map_err(|e| CliError::fatal(format!("demo: cannot generate certificates: {e}")))?;
    print(&format!(
        "   SSH host key: ed25519, {}\n   TLS: a CA, a server certificate (SAN IP 127.0.0.1, \
         DNS localhost; serverAuth)\n   and a client certificate (CN admin; clientAuth), all \
         ECDSA P-256\n",
        ssh.host_key_fingerprint()
    ));

    step(
        2,
        "A server on loopback, SSH and TLS (the in-memory datastores of `netconf serve`)",
    );
    let tls = ServerTlsOptions::new(
        PemSource::pem(pki.server_cert_pem.clone()),
        PemSource::pem(pki.server_key_pem.clone()),
        PemSource::pem(pki.ca_pem.clone()),
    );
    let data = serve::seed(sample::DATA).map_err(CliError::fatal)?;
    let listen = serve::Listen {
        tls: Some((tls, 0)),
        ssh: Some((ssh.clone(), 0)),
        call_home: None,
    };
    let server = serve::start(data, listen, false)
        .map_err(|e| CliError::fatal(format!("demo: starting the server: {}", e.message())))?;
    let (Some(ssh_addr), Some(tls_addr)) = (server.ssh_addr, server.tls_addr) else {
        return Err(CliError::fatal("demo: the server has no listener"));
    };
    print(&format!(
        "   SSH: listening on {ssh_addr} (user {USER}, password login)\n   TLS: listening on \
         {tls_addr}\n"
    ));

    step(
        3,
        "Client connects over SSH (host key pinned by its fingerprint); hello exchanged",
    );
    let host = ssh_addr.ip().to_string();
    let target = |transport, port| Target {
        host: &host,
        port,
        transport,
        ca: None,
        cert: None,
        key: None,
        server_name: None,
        timeout: None,
    };
    let options = ClientOptions::new().rpc_timeout(Some(Duration::from_secs(10)));
    let login = SshClientOptions::new(USER)
        .password(PASSWORD)
        .host_key_fingerprint(ssh.host_key_fingerprint());
    let client = Client::connect_ssh_with(&ssh_addr.to_string(), &login, &options)
        .map_err(|e| errors::connect_error(e, &target(Transport::Ssh, ssh_addr.port())))?;
    print(&indented(&output::hello(
        Format::Pretty,
        client.session_id(),
        client.framing(),
        client.capabilities(),
    )));

    step(4, "<get-config> running");
    let config = client
        .call(&GetConfig::new(Datastore::Running))
        .map_err(fatal("get-config"))?;
    print(&indented(&output::xml(Format::Pretty, config.as_str())));

    step(5, "<create-subscription> to the NETCONF stream");
    let notifications = client.notifications();
    client
        .call(&CreateSubscription::new())
        .map_err(fatal("create-subscription"))?;
    print("   ok: configuration changes will arrive as notifications\n");

    step(6, "<edit-config> on candidate, then <commit>");
    print(&indented(EDIT));
    let edit = InlineConfig::new(EDIT).map_err(|e| CliError::fatal(format!("demo: {e}")))?;
    client
        .call(&EditConfig::new(Datastore::Candidate, edit))
        .map_err(fatal("edit-config"))?;
    print("   edit-config: ok\n");
    client.call(&Commit::new()).map_err(fatal("commit"))?;
    print("   commit: ok (candidate is now running)\n");

    step(
        7,
        "<get-config> running again, with a subtree filter for eth1",
    );
    let filter = || Filter::subtree(FILTER).map_err(|e| CliError::fatal(format!("demo: {e}")));
    let changed = client
        .call(&GetConfig::new(Datastore::Running).filter(filter()?))
        .map_err(fatal("get-config"))?;
    print(&indented(&output::xml(Format::Pretty, changed.as_str())));

    step(8, "The notification the commit caused");
    let missing = || {
        CliError::fatal(format!(
            "demo: no notification within {} s of the commit",
            NOTIFICATION_WAIT.as_secs()
        ))
    };
    let notification = match notifications.recv_timeout(NOTIFICATION_WAIT) {
        Ok(Some(Ok(n))) => n,
        Ok(Some(Err(lagged))) => return Err(CliError::fatal(format!("demo: {lagged}"))),
        Ok(None) | Err(_) => return Err(missing()),
    };
    print(&indented(&output::notification(
        Format::Pretty,
        &notification,
    )));

    step(
        9,
        "A second client, over mutual TLS, sees the change (same server, same datastores)",
    );
    let client_tls = ClientTlsOptions::new()
        .ca_pem(pki.ca_pem.clone())
        .client_cert_pem(pki.client_cert_pem.clone(), pki.client_key_pem.clone());
    let tls_client = Client::connect_tls_with(&tls_addr.to_string(), &client_tls, &options)
        .map_err(|e| errors::connect_error(e, &target(Transport::Tls, tls_addr.port())))?;
    print(&format!(
        "   session-id {} over TLS\n",
        tls_client.session_id()
    ));
    let seen = tls_client
        .call(&GetConfig::new(Datastore::Running).filter(filter()?))
        .map_err(fatal("get-config over TLS"))?;
    print(&indented(&output::xml(Format::Pretty, seen.as_str())));
    tls_client
        .close()
        .map_err(fatal("close-session over TLS"))?;

    step(10, "<close-session>");
    client.close().map_err(fatal("close-session"))?;
    server.shutdown();
    print(&format!(
        "   closed; server stopped\n\ndone in {} ms. Next: `netconf serve --ssh` keeps a server \
         running; `netconf --help` lists every command.\n",
        started.elapsed().as_millis()
    ));
    Ok(())
}
