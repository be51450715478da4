//! A server driven by XML strings and a clock the test moves.
#![allow(clippy::disallowed_methods)]
#![allow(dead_code)]

use std::time::{Duration, Instant};

use netconf_proto::message::ErrorTag;
use netconf_proto::{Reply, RpcError};
use netconf_server::{tree, Backend, Datastore, Element, MemoryBackend, Server, SessionInfo};

pub const NC: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";
pub const NS: &str = "urn:example:config";

pub struct Harness {
    pub server: Server,
    pub now: Instant,
}

impl Harness {
    /// A server whose datastores start as `seed` (XML in the `NS` namespace by default).
    pub fn new(seed: &str) -> Harness {
        Harness::with_server(Server::new(MemoryBackend::new(doc(seed))))
    }

    pub fn with_server(server: Server) -> Harness {
        Harness {
            server,
            now: Instant::now(),
        }
    }

    /// Sends `xml` (an operation element; the base namespace is the default, `nc` bound
    /// too) as session `id`.
    pub fn rpc(&mut self, id: u32, xml: &str) -> Reply {
        let scope = [
            (String::new(), NC.to_owned()),
            ("nc".to_owned(), NC.to_owned()),
        ];
        let who = SessionInfo::new(id)
            .with_username(format!("user{id}"))
            .with_source_host(std::net::IpAddr::from([192, 0, 2, 1]));
        self.server.handle_operation(&who, xml, &scope, self.now)
    }

    #[track_caller]
    pub fn ok(&mut self, id: u32, xml: &str) {
        let reply = self.rpc(id, xml);
        assert_eq!(reply, Reply::Ok, "{xml}");
    }

    #[track_caller]
    pub fn errors(&mut self, id: u32, xml: &str) -> Vec<RpcError> {
        match self.rpc(id, xml) {
            Reply::Errors(e) => e,
            other => panic!("expected rpc-errors for {xml}, got {other:?}"),
        }
    }

    #[track_caller]
    pub fn error_tag(&mut self, id: u32, xml: &str) -> ErrorTag {
        self.errors(id, xml)[0].tag.clone()
    }

    /// The `<data>` content of a retrieval.
    #[track_caller]
    pub fn data(&mut self, id: u32, xml: &str) -> String {
        match self.rpc(id, xml) {
            Reply::Data(d) => String::from_utf8(d.to_vec()).unwrap(),
            other => panic!("expected data for {xml}, got {other:?}"),
        }
    }

    pub fn config(&self, ds: Datastore) -> String {
        self.server.backend().load(ds).unwrap().children_xml()
    }

    pub fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
        if self.server.next_deadline().is_some_and(|d| d <= self.now) {
            self.server.handle_timeout(self.now);
        }
    }

    pub fn notifications(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.server.poll_notification())
            .map(|n| n.content().to_owned())
            .collect()
    }
}

pub fn doc(xml: &str) -> Element {
    tree::parse(xml, &[(String::new(), NS.to_owned())], 64).unwrap()
}

pub fn edit(target: &str, config: &str) -> String {
    format!("<edit-config><target><{target}/></target><config>{config}</config></edit-config>")
}

pub fn get_config(source: &str) -> String {
    format!("<get-config><source><{source}/></source></get-config>")
}
