//! The [`Server`]: every RFC 6241 operation on top of a [`Backend`], with the protocol
//! state shared by all sessions (locks, the pending confirmed commit, candidate changes).

mod commit;
mod editing;
mod locking;
mod params;
mod retrieval;

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use netconf_proto::message::{ErrorTag, ErrorType, RpcError};
use netconf_proto::xml::{NS_BASE, NS_MONITORING, NS_NMDA, NS_NOTIFICATION};
use netconf_proto::{Reply, Request};

use crate::backend::{Backend, MemoryBackend};
use crate::datastore::Datastore;
use crate::errors::not_supported;
use crate::locks::Locks;
use crate::notification::{ChangedBy, Notification};
use crate::options::Options;
use crate::session::SessionInfo;
use crate::tree::{self, Element, ParseError};

pub(crate) use commit::PendingCommit;

/// What a handler answers before it becomes a [`Reply`].
type Answer = Result<Reply, Vec<RpcError>>;

/// The datastore logic of a NETCONF server, for every session at once.
///
/// Sans-IO: it reads no clock (time comes in as `now`), opens nothing and spawns nothing.
/// A runtime adapter drives it:
/// * [`handle`](Self::handle) each request and send the [`Reply`] it returns;
/// * after every call, drain [`poll_notification`](Self::poll_notification) and send each
///   to the subscribed sessions;
/// * call [`handle_timeout`](Self::handle_timeout) once [`next_deadline`](Self::next_deadline)
///   has passed (a confirmed commit that was not confirmed in time is rolled back);
/// * call [`session_ended`](Self::session_ended) when a session ends however it ends, so its
///   locks are released and its unconfirmed commit rolled back.
///
/// State lives behind `&mut self`; share one server between sessions with a mutex.
#[derive(Debug)]
pub struct Server<B = MemoryBackend> {
    backend: B,
    options: Options,
    locks: Locks,
    pending: Option<PendingCommit>,
    /// Candidate was changed since the last commit or discard-changes (RFC 6241 section
    /// 7.5: such a candidate cannot be locked).
    candidate_modified: bool,
    /// The sessions seen, for naming them in notifications after they end.
    sessions: HashMap<u32, SessionInfo>,
    notifications: VecDeque<Notification>,
    notifications_dropped: u64,
}

impl<B: Backend> Server<B> {
    pub fn new(backend: B) -> Self {
        Server::with_options(backend, Options::default())
    }

    pub fn with_options(backend: B, options: Options) -> Self {
        Server {
            backend,
            options,
            locks: Locks::default(),
            pending: None,
            candidate_modified: false,
            sessions: HashMap::new(),
            notifications: VecDeque::new(),
            notifications_dropped: 0,
        }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, for changes made outside NETCONF (no notification is generated).
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The capabilities this server implements, besides base:1.0 and base:1.1: advertise
    /// them in the session's `<hello>`.
    pub fn capabilities(&self) -> Vec<String> {
        let mut caps: Vec<String> = [
            "urn:ietf:params:netconf:capability:writable-running:1.0",
            "urn:ietf:params:netconf:capability:candidate:1.0",
            "urn:ietf:params:netconf:capability:confirmed-commit:1.1",
            "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
            "urn:ietf:params:netconf:capability:validate:1.1",
            "urn:ietf:params:netconf:capability:startup:1.0",
            "urn:ietf:params:netconf:capability:notification:1.0",
            "urn:ietf:params:netconf:capability:interleave:1.0",
            "urn:ietf:params:netconf:capability:with-defaults:1.0?basic-mode=explicit&also-supported=report-all,report-all-tagged,trim",
            "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring?module=ietf-netconf-monitoring&revision=2010-10-04",
            "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications?module=ietf-netconf-notifications&revision=2012-02-06",
            "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda?module=ietf-netconf-nmda&revision=2019-01-07",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        caps.extend(self.backend.schemas().iter().map(|s| s.capability()));
        caps
    }

    /// Answers one request of `session`.
    pub fn handle(&mut self, session: &SessionInfo, request: &Request, now: Instant) -> Reply {
        let scope: Vec<(String, String)> = request
            .body
            .namespaces()
            .iter()
            .map(|b| (b.prefix.clone(), b.uri.clone()))
            .collect();
        self.handle_operation(session, request.body.as_str(), &scope, now)
    }

    /// Answers one operation element given as XML, with the namespace declarations in
    /// force around it (prefix "" for the default namespace): [`handle`](Self::handle)
    /// for callers that have the XML but no [`Request`].
    pub fn handle_operation(
        &mut self,
        session: &SessionInfo,
        xml: &str,
        scope: &[(String, String)],
        now: Instant,
    ) -> Reply {
        self.sessions
            .entry(session.session_id)
            .or_insert_with(|| session.clone());
        let root = match tree::parse(xml, scope, self.options.max_depth) {
            Ok(root) => root,
            Err(ParseError::TooDeep { limit }) => {
                return Reply::error(
                    RpcError::new(ErrorType::Rpc, ErrorTag::TooBig).with_message(format!(
                        "the request nests elements more than {limit} levels deep"
                    )),
                )
            }
            Err(e) => {
                return Reply::error(
                    RpcError::new(ErrorType::Rpc, ErrorTag::MalformedMessage)
                        .with_message(e.to_string()),
                )
            }
        };
        let Some(op) = root.children.first() else {
            return Reply::error(not_supported("the <rpc> holds no operation"));
        };
        match self.dispatch(session, op, now) {
            Ok(reply) => reply,
            Err(errors) => Reply::Errors(errors),
        }
    }

    fn dispatch(&mut self, session: &SessionInfo, op: &Element, now: Instant) -> Answer {
        let me = session.session_id;
        match (op.namespace.as_str(), op.name.as_str()) {
            (NS_BASE, "get") => self.get(op),
            (NS_BASE, "get-config") => self.get_config(op),
            (NS_NMDA, "get-data") => self.get_data(op),
            (NS_BASE, "edit-config") => {
                let target = params::datastore_in(op, "target")?;
                self.edit(session, op, target)
            }
            (NS_NMDA, "edit-data") => self.edit_data(session, op),
            (NS_BASE, "copy-config") => self.copy_config(session, op),
            (NS_BASE, "delete-config") => self.delete_config(session, op),
            (NS_BASE, "validate") => self.validate(op),
            (NS_BASE, "lock") => self.lock(op, me),
            (NS_BASE, "unlock") => self.unlock(op, me),
            (NS_BASE, "commit") => self.commit(session, op, now),
            (NS_BASE, "cancel-commit") => self.cancel_commit(session, op),
            (NS_BASE, "discard-changes") => self.discard_changes(me),
            (NS_MONITORING, "get-schema") => self.get_schema(op),
            (NS_NOTIFICATION, "create-subscription") => create_subscription(op),
            (NS_BASE, "kill-session" | "close-session") => Err(vec![not_supported(
                "close-session and kill-session are answered by the session layer",
            )]),
            (ns, name) => match self.backend.rpc(session, op) {
                Some(reply) => Ok(reply),
                None => Err(vec![not_supported(format!(
                    "this server does not implement <{name}> in {ns}"
                ))]),
            },
        }
    }

    /// A session ended (close-session, kill-session, a dropped connection): its locks are
    /// released, changes it made to a candidate it had locked are discarded (RFC 6241
    /// section 8.3.5.2), and a confirmed commit it made without `persist` is rolled back
    /// (section 8.4.1).
    pub fn session_ended(&mut self, session_id: u32, now: Instant) {
        let _ = now;
        let released = self.locks.release(session_id);
        if released.contains(&Datastore::Candidate) && self.candidate_modified {
            let _ = self.reset_candidate();
        }
        let orphaned = self
            .pending
            .as_ref()
            .is_some_and(|p| p.persist.is_none() && p.session_id == session_id);
        if orphaned {
            let by = self.changed_by(session_id);
            self.roll_back(&by, crate::notification::ConfirmEvent::Cancel);
        }
        self.sessions.remove(&session_id);
    }

    /// The next notification to send to the subscribed sessions, oldest first.
    pub fn poll_notification(&mut self) -> Option<Notification> {
        self.notifications.pop_front()
    }

    /// Notifications dropped because the queue was full (nobody polled).
    pub fn notifications_dropped(&self) -> u64 {
        self.notifications_dropped
    }

    fn queue(&mut self, n: Notification) {
        if self.notifications.len() >= self.options.max_queued_notifications {
            self.notifications.pop_front();
            self.notifications_dropped += 1;
        }
        self.notifications.push_back(n);
    }

    fn changed_by(&self, session_id: u32) -> ChangedBy {
        let info = self.sessions.get(&session_id);
        ChangedBy::Session {
            username: info
                .and_then(|s| s.username.clone())
                .unwrap_or_else(|| "unknown".to_owned()),
            session_id,
            source_host: info.and_then(|s| s.source_host),
        }
    }

    /// Prefixes for notification paths: each schema's own.
    fn prefixes(&self) -> Vec<(String, String)> {
        self.backend
            .schemas()
            .iter()
            .map(|s| (s.prefix.clone(), s.namespace.clone()))
            .collect()
    }

    /// Stores `content` in `datastore` and, for running and startup, queues a
    /// `<netconf-config-change>` listing what changed.
    fn store(&mut self, by: &ChangedBy, datastore: Datastore, content: Element) -> Answer {
        let note = if matches!(datastore, Datastore::Running | Datastore::Startup) {
            let before = self.backend.load(datastore)?;
            let changes = crate::diff::diff(&before, &content, self.options.max_listed_edits);
            (!changes.is_empty()).then(|| {
                crate::notification::config_change(by, datastore, &changes, &self.prefixes())
            })
        } else {
            None
        };
        self.backend.store(datastore, content)?;
        if datastore == Datastore::Candidate {
            self.candidate_modified = true;
        }
        if let Some(n) = note {
            self.queue(n);
        }
        Ok(Reply::Ok)
    }

    /// Candidate back to running (discard-changes and its implicit forms).
    fn reset_candidate(&mut self) -> Answer {
        let running = self.backend.load(Datastore::Running)?.into_owned();
        self.backend.store(Datastore::Candidate, running)?;
        self.candidate_modified = false;
        Ok(Reply::Ok)
    }
}

/// RFC 5277: the NETCONF stream, live only (no replay, so no startTime; no filter).
fn create_subscription(op: &Element) -> Answer {
    let stream = op.child_text("stream").unwrap_or("NETCONF");
    if stream != "NETCONF" {
        return Err(vec![crate::errors::invalid(format!(
            "no stream {stream:?}; this server has NETCONF"
        ))]);
    }
    if op.child("filter").is_some() || op.child("startTime").is_some() {
        return Err(vec![not_supported(
            "this server sends every notification: no filter, no replay (startTime)",
        )]);
    }
    Ok(Reply::Ok)
}
