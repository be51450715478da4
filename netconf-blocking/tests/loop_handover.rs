//! A session's loop runs its requests' handlers on its own thread, parks itself while they
//! run, and the watchdog hands it to another thread once a handler has held it for a grace
//! (2 ms); the first thread takes the loop back when its handlers are done, unless the loop
//! went on elsewhere. Here handlers take from nothing to a few graces, at random, on four
//! pipelining sessions at once, so that hand-overs race with take-backs on every side: every
//! request must get its own reply, in every session, and shutdown must end them all.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netconf_blocking::operations::RpcBody;
use netconf_blocking::server::ServerOptions;
use netconf_blocking::{Client, ClientOptions, Reply, Server};
use netconf_tests::certs::Pki;
use netconf_tests::deadline::with_deadline;

const NS: &str = "urn:test:handover";

/// A handler's time for request `n`: none for most, up to three graces for some.
fn hold(n: u64) -> Duration {
    // A fixed mix (no randomness to reproduce): every third request is quick, the others
    // straddle the grace.
    let micros = (n.wrapping_mul(2_654_435_761) >> 7) % 6_000;
    if n.is_multiple_of(3) {
        Duration::ZERO
    } else {
        Duration::from_micros(micros)
    }
}

#[test]
fn loops_handed_over_mid_handler_lose_no_request() {
    const SESSIONS: usize = 4;
    const REQUESTS: u64 = 150;
    const WINDOW: usize = 8;
    with_deadline(120, || {
        let pki = Pki::generate();
        let handled = Arc::new(AtomicUsize::new(0));
        let counted = handled.clone();
        let server = Server::new(ServerOptions::new(), move |request, _info| {
            let n: u64 = request
                .body
                .child_text("n")
                .and_then(|n| n.parse().ok())
                .expect("every request says its number");
            std::thread::sleep(hold(n));
            counted.fetch_add(1, Ordering::SeqCst);
            Reply::data(format!("<echo xmlns=\"{NS}\"><n>{n}</n></echo>")).expect("well-formed")
        });
        let addr = server
            .listen_tls("127.0.0.1:0", &pki.server_tls_options())
            .expect("listening")
            .to_string();
        std::thread::scope(|scope| {
            for session in 0..SESSIONS as u64 {
                let (pki, addr) = (&pki, &addr);
                scope.spawn(move || {
                    let options = ClientOptions::new().rpc_timeout(Some(Duration::from_secs(30)));
                    let client =
                        Client::connect_tls_with(addr, &pki.client_tls_options(), &options)
                            .expect("connect");
                    let mut in_flight = std::collections::VecDeque::new();
                    for i in 0..REQUESTS {
                        let n = session * 1_000_000 + i;
                        let body = RpcBody::raw(format!("<echo xmlns=\"{NS}\"><n>{n}</n></echo>"))
                            .expect("well-formed");
                        in_flight.push_back((n, client.send(&body).expect("send")));
                        if in_flight.len() == WINDOW || i + 1 == REQUESTS {
                            while let Some((n, id)) = in_flight.pop_front() {
                                let reply = client.recv(id).expect("every request is answered");
                                let data = reply.data().expect("data");
                                assert!(
                                    data.as_str().contains(&format!("<n>{n}</n>")),
                                    "request {n} got {}",
                                    data.as_str()
                                );
                            }
                        }
                    }
                    client.close().expect("close");
                });
            }
        });
        assert_eq!(handled.load(Ordering::SeqCst), SESSIONS * REQUESTS as usize);
        // Every loop, wherever it ended up, ends with its session.
        server.shutdown();
        assert!(server.sessions().is_empty(), "{:?}", server.sessions());
    });
}
