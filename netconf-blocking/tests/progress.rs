//! `ClientOptions::on_progress` reports a large reply as it arrives, then 0 when complete.

use std::sync::{Arc, Mutex};

use netconf_blocking::operations::{Datastore, GetConfig};
use netconf_blocking::server::ServerOptions;
use netconf_blocking::{Client, ClientOptions, Reply, Server};
use netconf_tests::certs::Pki;

#[test]
fn progress_grows_while_a_large_reply_arrives() {
    let pki = Pki::generate();
    let data = format!("<big xmlns=\"urn:x\">{}</big>", "y".repeat(4 << 20));
    let reply = Reply::data(data.clone()).unwrap();
    let server = Server::new(ServerOptions::new(), move |_, _| reply.clone());
    let addr = server
        .listen_tls("127.0.0.1:0", &pki.server_tls_options())
        .unwrap();
    let tls = pki.client_tls_options();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let client = Client::connect_tls_with(
        &addr.to_string(),
        &tls,
        &ClientOptions::new().on_progress(move |p| record.lock().unwrap().push(p.received)),
    )
    .unwrap();
    seen.lock().unwrap().clear();
    let got = client.call(&GetConfig::new(Datastore::Running)).unwrap();
    assert_eq!(got.as_str(), data);
    let seen = seen.lock().unwrap().clone();
    let partial: Vec<usize> = seen.iter().copied().filter(|&n| n > 0).collect();
    assert!(
        partial.len() >= 2,
        "expected several progress calls, got {seen:?}"
    );
    assert!(
        partial.windows(2).all(|w| w[0] <= w[1]),
        "progress went backwards: {partial:?}"
    );
    assert!(*partial.last().unwrap() < data.len() + 200);
    assert_eq!(
        seen.last(),
        Some(&0),
        "the last call reports the message complete"
    );
    client.close().unwrap();
    server.shutdown();
}
