//! `Server::handle` on a `Request` as a netconf-proto server session delivers it.
// Tests start their virtual clock from the real one; the library never reads it.
#![allow(clippy::disallowed_methods)]

use std::time::Instant;

use netconf_proto::operations::{Datastore, EditConfig, GetConfig, InlineConfig, Operation};
use netconf_proto::{Config, Event, Output, Reply, Request, Session};
use netconf_server::{tree, MemoryBackend, Server, SessionInfo};

/// Moves bytes from one session to the other; returns the events `from` produced.
fn pump(from: &mut Session, to: &mut Session, now: Instant) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        match from.poll_output() {
            Output::Transmit(bytes) => to.handle_input(&bytes, now).expect("valid peer"),
            Output::Event(ev) => events.push(ev),
            Output::Wait(_) => return events,
            other => panic!("{other:?}"),
        }
    }
}

/// The request the server session receives for `op`.
fn request_for(op: &dyn Operation) -> Request {
    let now = Instant::now();
    let mut client = Session::client(Config::client(), now);
    let mut server = Session::server(Config::server(), 7, now);
    pump(&mut client, &mut server, now);
    pump(&mut server, &mut client, now);
    pump(&mut client, &mut server, now);
    let body = netconf_proto::operations::render(op);
    client
        .send_rpc(&netconf_proto::operations::RpcBody::raw(body).unwrap(), now)
        .unwrap();
    pump(&mut client, &mut server, now);
    pump(&mut server, &mut client, now)
        .into_iter()
        .find_map(|ev| match ev {
            Event::Rpc { request, .. } => Some(request),
            _ => None,
        })
        .expect("the server session delivers the rpc")
}

#[test]
fn requests_from_a_session_are_answered() {
    let seed = tree::parse(r#"<a xmlns="urn:a"><b>1</b></a>"#, &[], 8).unwrap();
    let mut server = Server::new(MemoryBackend::new(seed));
    let me = SessionInfo::new(7);
    let now = Instant::now();
    let change = InlineConfig::new(r#"<a xmlns="urn:a"><b>2</b></a>"#).unwrap();
    let edit = request_for(&EditConfig::new(Datastore::Candidate, change));
    assert_eq!(server.handle(&me, &edit, now), Reply::Ok);
    let get = request_for(&GetConfig::new(Datastore::Candidate));
    match server.handle(&me, &get, now) {
        Reply::Data(d) => assert_eq!(&d[..], br#"<a xmlns="urn:a"><b>2</b></a>"#),
        other => panic!("{other:?}"),
    }
}
