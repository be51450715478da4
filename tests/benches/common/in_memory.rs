//! The sans-IO cores and raw rustls wired back to back in memory, on one thread: what a
//! round trip costs in CPU alone (`core_in_memory`'s criterion groups, and
//! `bench_rpc_cost`'s `core_*` modes, whose instruction counts are exact under valgrind).

use std::io::{Read, Write};
use std::time::Instant;

use bytes::Bytes;
use netconf_proto::client::{ClientCore, ClientOptions, ClientOutput};
use netconf_proto::server::{ServerOptions, ServerOutput, ServerSession, SessionInfo};
use netconf_proto::{Config, Machine, Reply, Session, TlsSession};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, Connection, ServerConnection};

use super::{op, TlsSetup, TINY_DATA};

/// A client core and a server session wired back to back.
pub struct CorePair {
    client: ClientCore<u64>,
    server: ServerSession,
    next: u64,
}

impl CorePair {
    /// Over TLS sessions, the handshake done.
    pub fn tls(tls: &TlsSetup) -> Self {
        let now = Instant::now();
        let client = TlsSession::client(
            tls.client_config.clone(),
            ServerName::try_from("localhost").expect("name"),
            Config::client(),
            now,
        )
        .expect("TLS client");
        let server = TlsSession::server(tls.pki.server_config(true), Config::server(), 1, now)
            .expect("TLS server");
        CorePair::new(Box::new(client), Box::new(server))
    }

    /// Over plaintext sessions (what an SSH channel carries).
    pub fn plaintext() -> Self {
        let now = Instant::now();
        CorePair::new(
            Box::new(Session::client(Config::client(), now)),
            Box::new(Session::server(Config::server(), 1, now)),
        )
    }

    fn new(client: Box<dyn Machine + Send>, server: Box<dyn Machine + Send>) -> Self {
        let now = Instant::now();
        let mut pair = CorePair {
            client: ClientCore::new(client, &ClientOptions::new()),
            server: ServerSession::new(
                server,
                SessionInfo::new(1, None),
                &ServerOptions::new(),
                now,
            ),
            next: 0,
        };
        // The handshake (TLS, then the hellos), and a few calls so the message-ids have
        // the digits of a long run's.
        for _ in 0..8 {
            pair.pump();
        }
        for _ in 0..100 {
            pair.round_trip();
        }
        pair
    }

    /// Moves everything each side has to say to the other; the result that completed.
    fn pump(&mut self) -> Option<u64> {
        let now = Instant::now();
        let mut done = None;
        loop {
            let mut moved = false;
            loop {
                match self.client.poll() {
                    ClientOutput::Transmit(bytes) => {
                        self.server.handle_read(Ok(&bytes), now);
                        moved = true;
                    }
                    ClientOutput::Complete(waiter, result) => {
                        result.expect("the tiny get-config succeeds");
                        done = Some(waiter);
                    }
                    ClientOutput::Wait(_) => break,
                    ClientOutput::Established => {}
                    other => panic!("client: {other:?}"),
                }
            }
            loop {
                match self.server.poll() {
                    ServerOutput::Transmit(bytes) => {
                        self.client.handle_read(Ok(&bytes), now);
                        moved = true;
                    }
                    ServerOutput::Dispatch { id, .. } => {
                        self.server
                            .reply(id, Reply::data_unchecked(Bytes::from_static(TINY_DATA)));
                        moved = true;
                    }
                    ServerOutput::Wait(_) => break,
                    other => panic!("server: {other:?}"),
                }
            }
            if !moved {
                return done;
            }
        }
    }

    pub fn round_trip(&mut self) {
        self.next += 1;
        let request = op("");
        self.client
            .submit(&request, None, self.next, Instant::now())
            .expect("submitted");
        assert_eq!(self.pump(), Some(self.next));
    }
}

/// A rustls connection pair in memory, handshake done.
pub struct RawPair {
    client: Connection,
    server: Connection,
    wire: Vec<u8>,
    buf: Vec<u8>,
}

impl RawPair {
    pub fn new(tls: &TlsSetup) -> Self {
        let client = ClientConnection::new(
            tls.client_config.clone(),
            ServerName::try_from("localhost").expect("name"),
        )
        .expect("client");
        let server = ServerConnection::new(tls.pki.server_config(true)).expect("server");
        let mut pair = RawPair {
            client: client.into(),
            server: server.into(),
            wire: Vec::new(),
            buf: vec![0; 64 * 1024],
        };
        while pair.client.is_handshaking() || pair.server.is_handshaking() {
            deliver(
                &mut pair.client,
                &mut pair.server,
                &mut pair.wire,
                &mut pair.buf,
            );
            deliver(
                &mut pair.server,
                &mut pair.client,
                &mut pair.wire,
                &mut pair.buf,
            );
        }
        pair
    }

    pub fn round_trip(&mut self, request: &[u8], reply: &[u8]) {
        let RawPair {
            client,
            server,
            wire,
            buf,
        } = self;
        client.writer().write_all(request).expect("request");
        assert_eq!(deliver(client, server, wire, buf), request.len());
        server.writer().write_all(reply).expect("reply");
        assert_eq!(deliver(server, client, wire, buf), reply.len());
    }
}

/// Moves `from`'s records to `to`; the plaintext `to` read out of them.
fn deliver(
    from: &mut Connection,
    to: &mut Connection,
    wire: &mut Vec<u8>,
    buf: &mut [u8],
) -> usize {
    wire.clear();
    while from.wants_write() {
        from.write_tls(wire).expect("write_tls");
    }
    to.read_tls(&mut &wire[..]).expect("read_tls");
    to.process_new_packets().expect("records");
    read_all(&mut to.reader(), buf)
}

fn read_all(reader: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut total = 0;
    loop {
        match reader.read(buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return total,
            Err(e) => panic!("plaintext: {e}"),
        }
    }
}
