//! The request handler behind `serve` and `demo`: running, candidate and startup kept as
//! XML trees in memory, with per-session locks, (confirmed) commit and a
//! `<netconf-config-change>` notification to subscribers on every change of running.
//!
//! The edit rule is in [`crate::datastore`], subtree filtering in [`crate::filter`].

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use netconf_blocking::{Reply, Request, RpcError, ServerHandle, SessionInfo};
use netconf_proto::message::{ErrorTag, ErrorType};
use netconf_proto::xml::{escape_text, NS_BASE, NS_MONITORING, NS_NOTIFICATION};

use crate::datastore::{self, EditOp};
use crate::filter;
use crate::notify::{self, ChangedBy};
use crate::sample;
use crate::xmltree::{self, Element};

/// How long a confirmed commit waits for its confirmation unless told otherwise.
const DEFAULT_CONFIRM_TIMEOUT: u64 = 600;

/// The capabilities `serve` advertises besides base 1.0 and 1.1.
pub const CAPABILITIES: &[&str] = &[
    "urn:ietf:params:netconf:capability:writable-running:1.0",
    "urn:ietf:params:netconf:capability:candidate:1.0",
    "urn:ietf:params:netconf:capability:confirmed-commit:1.1",
    "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
    "urn:ietf:params:netconf:capability:validate:1.1",
    "urn:ietf:params:netconf:capability:startup:1.0",
    "urn:ietf:params:netconf:capability:notification:1.0",
    "urn:ietf:params:netconf:capability:interleave:1.0",
    "urn:ietf:params:netconf:capability:with-defaults:1.0?basic-mode=explicit&also-supported=report-all,trim",
    "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring?module=ietf-netconf-monitoring&revision=2010-10-04",
    "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications?module=ietf-netconf-notifications&revision=2012-02-06",
    "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda?module=ietf-netconf-nmda&revision=2019-01-07",
    "urn:example:netconf-cli-demo?module=netconf-cli-demo&revision=2025-01-01",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Ds {
    Running,
    Candidate,
    Startup,
}

impl Ds {
    fn name(self) -> &'static str {
        match self {
            Ds::Running => "running",
            Ds::Candidate => "candidate",
            Ds::Startup => "startup",
        }
    }

    fn parse(name: &str) -> Option<Ds> {
        match name {
            "running" => Some(Ds::Running),
            "candidate" => Some(Ds::Candidate),
            "startup" => Some(Ds::Startup),
            _ => None,
        }
    }
}

/// A `<source>`: a datastore or inline `<config>` (as a root).
enum Source {
    Ds(Ds),
    Config(Element),
}

/// A confirmed commit waiting for its confirmation.
struct Pending {
    backup: Element,
    persist: Option<String>,
    session: u32,
    generation: u64,
}

struct Store {
    running: Element,
    candidate: Element,
    startup: Element,
    locks: HashMap<Ds, u32>,
    pending: Option<Pending>,
    generation: u64,
    /// Candidate was changed since the last commit or discard-changes.
    candidate_dirty: bool,
}

impl Store {
    fn get(&self, ds: Ds) -> &Element {
        match ds {
            Ds::Running => &self.running,
            Ds::Candidate => &self.candidate,
            Ds::Startup => &self.startup,
        }
    }

    fn get_mut(&mut self, ds: Ds) -> &mut Element {
        self.candidate_dirty |= ds == Ds::Candidate;
        match ds {
            Ds::Running => &mut self.running,
            Ds::Candidate => &mut self.candidate,
            Ds::Startup => &mut self.startup,
        }
    }
}

/// What one request produced: the reply and, if running changed, a notification.
type Outcome = Result<(Reply, Option<String>), Vec<RpcError>>;

/// The shared state of a serving process.
pub struct Backend {
    store: Mutex<Store>,
    /// Wakes confirmed-commit timers when the pending commit changes.
    wake: Condvar,
    handle: OnceLock<Weak<ServerHandle>>,
    log: bool,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

fn error(error_type: ErrorType, tag: ErrorTag, message: impl Into<String>) -> RpcError {
    RpcError::new(error_type, tag).with_message(message)
}

fn protocol(tag: ErrorTag, message: impl Into<String>) -> RpcError {
    error(ErrorType::Protocol, tag, message)
}

fn with_session_info(e: RpcError, holder: u32) -> RpcError {
    let info = format!("<session-id>{holder}</session-id>");
    e.clone().with_info_xml(&info).unwrap_or(e)
}

impl Backend {
    /// A backend whose three datastores start as `seed` (a root).
    pub fn new(seed: Element, log: bool) -> Self {
        Backend {
            store: Mutex::new(Store {
                running: seed.clone(),
                candidate: seed.clone(),
                startup: seed,
                locks: HashMap::new(),
                pending: None,
                generation: 0,
                candidate_dirty: false,
            }),
            wake: Condvar::new(),
            handle: OnceLock::new(),
            log,
        }
    }

    /// Connects the backend to its server, for sending notifications.
    pub fn attach(&self, handle: &Arc<ServerHandle>) {
        let _ = self.handle.set(Arc::downgrade(handle));
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn server(&self) -> Option<Arc<ServerHandle>> {
        self.handle.get().and_then(Weak::upgrade)
    }

    fn notify(&self, content: Option<String>) {
        if let (Some(content), Some(server)) = (content, self.server()) {
            if let Err(e) = server.notify(&notify::event_time(), &content) {
                eprintln!("netconf serve: notification not sent: {e}");
            }
        }
    }

    /// Answers one request (the server's handler).
    pub fn handle(self: &Arc<Self>, request: &Request, info: &SessionInfo) -> Reply {
        let op = &request.operation.name;
        let (reply, note) = match self.dispatch(request, info) {
            Ok(done) => done,
            Err(errors) => (Reply::Errors(errors), None),
        };
        if self.log {
            let outcome = match &reply {
                Reply::Errors(errors) => errors
                    .iter()
                    .map(|e| e.tag.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => "ok".into(),
            };
            eprintln!("session {}: {op}: {outcome}", info.session_id);
        }
        self.notify(note);
        reply
    }

    fn dispatch(self: &Arc<Self>, request: &Request, info: &SessionInfo) -> Outcome {
        let scope: Vec<(String, String)> = request
            .body
            .namespaces()
            .iter()
            .map(|b| (b.prefix.clone(), b.uri.clone()))
            .collect();
        let root = xmltree::parse(request.body.as_str(), &scope)
            .map_err(|e| vec![protocol(ErrorTag::MalformedMessage, e)])?;
        let op = root.children.first().cloned().unwrap_or_default();
        let ns = request.operation.namespace.as_str();
        let me = info.session_id;
        match (ns, request.operation.name.as_str()) {
            (NS_BASE, "get") => self.get(&op, None),
            (NS_BASE, "get-config") => {
                let ds = self.datastore_in(&op, "source")?;
                self.get(&op, Some(ds))
            }
            (netconf_proto::xml::NS_NMDA, "get-data") => self.get_data(&op),
            (NS_BASE, "edit-config") => {
                let target = self.datastore_in(&op, "target")?;
                self.edit(&op, target, info)
            }
            (netconf_proto::xml::NS_NMDA, "edit-data") => {
                let target = nmda_datastore(&op)?;
                self.edit(&op, target, info)
            }
            (NS_BASE, "copy-config") => self.copy_config(&op, info),
            (NS_BASE, "delete-config") => self.delete_config(&op, me),
            (NS_BASE, "lock") => self.lock(&op, me),
            (NS_BASE, "unlock") => self.unlock(&op, me),
            (NS_BASE, "validate") => {
                self.source_in(&op, "source")?;
                Ok((Reply::Ok, None))
            }
            (NS_BASE, "commit") => self.commit(&op, info),
            (NS_BASE, "cancel-commit") => self.cancel_commit(&op, me),
            (NS_BASE, "discard-changes") => {
                let mut store = self.store();
                check_unlocked(&store, Ds::Candidate, me)?;
                store.candidate = store.running.clone();
                store.candidate_dirty = false;
                Ok((Reply::Ok, None))
            }
            (NS_MONITORING, "get-schema") => get_schema(&op),
            (NS_NOTIFICATION, "create-subscription") => create_subscription(&op),
            (_, name) => Err(vec![protocol(
                ErrorTag::OperationNotSupported,
                format!("netconf serve does not implement <{name}> in {ns}"),
            )]),
        }
    }

    /// A session ended (the server's `on_session_end` hook): its locks are released and a
    /// confirmed commit it made without `persist` is rolled back (RFC 6241 sections 7.5, 8.4).
    pub fn session_ended(&self, session_id: u32) {
        let mut store = self.store();
        store.locks.retain(|_, holder| *holder != session_id);
        let orphaned = store
            .pending
            .as_ref()
            .is_some_and(|p| p.persist.is_none() && p.session == session_id);
        let note = if orphaned {
            rollback(&mut store, &self.wake)
        } else {
            None
        };
        drop(store);
        if orphaned && self.log {
            eprintln!("session {session_id} ended before confirming its commit: rolled back");
        }
        self.notify(note);
    }

    fn datastore_in(&self, op: &Element, wrapper: &str) -> Result<Ds, Vec<RpcError>> {
        match self.source_in(op, wrapper)? {
            Source::Ds(ds) => Ok(ds),
            Source::Config(_) => Err(vec![protocol(
                ErrorTag::InvalidValue,
                format!("<{wrapper}> must name a datastore here"),
            )]),
        }
    }

    fn source_in(&self, op: &Element, wrapper: &str) -> Result<Source, Vec<RpcError>> {
        let missing = || {
            vec![protocol(
                ErrorTag::MissingElement,
                format!("<{}> needs <{wrapper}>", op.name),
            )]
        };
        let inner = op.child(wrapper).ok_or_else(missing)?;
        let first = inner.children.first().ok_or_else(missing)?;
        if let Some(ds) = Ds::parse(&first.name) {
            return Ok(Source::Ds(ds));
        }
        match first.name.as_str() {
            "config" => Ok(Source::Config(as_root(first))),
            "url" => Err(vec![protocol(
                ErrorTag::OperationNotSupported,
                "netconf serve has no :url capability",
            )]),
            other => Err(vec![protocol(
                ErrorTag::BadElement,
                format!("unknown datastore <{other}>"),
            )]),
        }
    }

    fn get(&self, op: &Element, ds: Option<Ds>) -> Outcome {
        let data = match ds {
            Some(ds) => self.store().get(ds).clone(),
            None => with_state(self.store().running.clone()),
        };
        let selected = match op.child("filter") {
            None => data,
            Some(f) => match f.attr("", "type").unwrap_or("subtree") {
                "subtree" => filter::subtree(&data, f, NS_BASE),
                "xpath" => return Err(vec![no_xpath()]),
                other => {
                    return Err(vec![protocol(
                        ErrorTag::BadAttribute,
                        format!("unknown filter type {other:?}"),
                    )])
                }
            },
        };
        data_reply(&selected)
    }

    fn get_data(&self, op: &Element) -> Outcome {
        let name = op.child_text("datastore").unwrap_or_default();
        let local = name.rsplit(':').next().unwrap_or_default();
        let data = match local {
            "intended" => self.store().running.clone(),
            "operational" => with_state(self.store().running.clone()),
            other => match Ds::parse(other) {
                Some(ds) => self.store().get(ds).clone(),
                None => {
                    return Err(vec![protocol(
                        ErrorTag::InvalidValue,
                        format!("unknown datastore {name:?}"),
                    )])
                }
            },
        };
        if op.child("xpath-filter").is_some() {
            return Err(vec![no_xpath()]);
        }
        let selected = match op.child("subtree-filter") {
            Some(f) => filter::subtree(&data, f, netconf_proto::xml::NS_NMDA),
            None => data,
        };
        data_reply(&selected)
    }

    fn edit(&self, op: &Element, target: Ds, info: &SessionInfo) -> Outcome {
        if target == Ds::Startup {
            return Err(vec![protocol(
                ErrorTag::OperationNotSupported,
                "startup cannot be edited; copy-config to it",
            )]);
        }
        let default = match op.child_text("default-operation") {
            None => EditOp::Merge,
            Some(s) => match EditOp::parse(s) {
                Some(op @ (EditOp::Merge | EditOp::Replace | EditOp::None)) => op,
                _ => {
                    return Err(vec![protocol(
                        ErrorTag::InvalidValue,
                        format!("unknown default-operation {s:?}"),
                    )])
                }
            },
        };
        let test_only = op.child_text("test-option") == Some("test-only");
        let error_option = op.child_text("error-option").unwrap_or("stop-on-error");
        let config = match op.child("config") {
            Some(c) => as_root(c),
            None if op.child("url").is_some() => {
                return Err(vec![protocol(
                    ErrorTag::OperationNotSupported,
                    "netconf serve has no :url capability",
                )])
            }
            None => {
                return Err(vec![protocol(
                    ErrorTag::MissingElement,
                    "<edit-config> needs <config>",
                )])
            }
        };
        let mut store = self.store();
        check_unlocked(&store, target, info.session_id)?;
        let before = store.get(target).clone();
        let mut work = before.clone();
        let errors = datastore::edit(
            &mut work,
            &config,
            default,
            error_option == "continue-on-error",
        );
        let keep = !test_only && (errors.is_empty() || error_option != "rollback-on-error");
        let mut note = None;
        if keep {
            if target == Ds::Running {
                note = change_note(&before, &work, info);
            }
            *store.get_mut(target) = work;
        }
        if errors.is_empty() {
            return Ok((Reply::Ok, note));
        }
        drop(store);
        self.notify(note);
        Err(errors
            .into_iter()
            .map(|e| error(ErrorType::Application, e.tag, e.message).with_path(e.path))
            .collect())
    }

    fn copy_config(&self, op: &Element, info: &SessionInfo) -> Outcome {
        let target = self.datastore_in(op, "target")?;
        let source = self.source_in(op, "source")?;
        let mut store = self.store();
        check_unlocked(&store, target, info.session_id)?;
        let new = match source {
            Source::Ds(ds) => store.get(ds).clone(),
            Source::Config(c) => c,
        };
        let note = (target == Ds::Running)
            .then(|| change_note(&store.running, &new, info))
            .flatten();
        *store.get_mut(target) = new;
        Ok((Reply::Ok, note))
    }

    fn delete_config(&self, op: &Element, me: u32) -> Outcome {
        let target = self.datastore_in(op, "target")?;
        if target == Ds::Running {
            return Err(vec![protocol(
                ErrorTag::OperationNotSupported,
                "the running datastore cannot be deleted",
            )]);
        }
        let mut store = self.store();
        check_unlocked(&store, target, me)?;
        *store.get_mut(target) = Element::root();
        Ok((Reply::Ok, None))
    }

    fn lock(&self, op: &Element, me: u32) -> Outcome {
        let target = self.datastore_in(op, "target")?;
        let mut store = self.store();
        if let Some(&holder) = store.locks.get(&target) {
            let who = if holder == me {
                "this session".to_owned()
            } else {
                format!("session {holder}")
            };
            return Err(vec![with_session_info(
                protocol(
                    ErrorTag::LockDenied,
                    format!("{} is already locked by {who}", target.name()),
                ),
                holder,
            )]);
        }
        if target == Ds::Candidate && store.candidate_dirty {
            return Err(vec![with_session_info(
                protocol(
                    ErrorTag::LockDenied,
                    "candidate has uncommitted changes: commit or discard-changes first",
                ),
                0,
            )]);
        }
        store.locks.insert(target, me);
        Ok((Reply::Ok, None))
    }

    fn unlock(&self, op: &Element, me: u32) -> Outcome {
        let target = self.datastore_in(op, "target")?;
        let mut store = self.store();
        match store.locks.get(&target).copied() {
            Some(holder) if holder == me => {
                store.locks.remove(&target);
                Ok((Reply::Ok, None))
            }
            Some(holder) => Err(vec![with_session_info(
                protocol(
                    ErrorTag::OperationFailed,
                    format!(
                        "{} is locked by session {holder}, not this one",
                        target.name()
                    ),
                ),
                holder,
            )]),
            None => Err(vec![protocol(
                ErrorTag::OperationFailed,
                format!("{} is not locked", target.name()),
            )]),
        }
    }

    fn commit(self: &Arc<Self>, op: &Element, info: &SessionInfo) -> Outcome {
        let me = info.session_id;
        let confirmed = op.child("confirmed").is_some();
        let persist = op.child_text("persist").map(str::to_owned);
        let persist_id = op.child_text("persist-id").map(str::to_owned);
        let timeout = match op.child_text("confirm-timeout") {
            None => DEFAULT_CONFIRM_TIMEOUT,
            Some(t) => t.parse().ok().filter(|&t| t > 0).ok_or_else(|| {
                vec![protocol(
                    ErrorTag::InvalidValue,
                    format!("bad confirm-timeout {t:?}"),
                )]
            })?,
        };
        let mut store = self.store();
        check_unlocked(&store, Ds::Running, me)?;
        check_unlocked(&store, Ds::Candidate, me)?;
        if let Some(p) = &store.pending {
            check_may_confirm(p, persist_id.as_deref(), me)?;
        }
        let before = store.running.clone();
        store.running = store.candidate.clone();
        store.candidate_dirty = false;
        let note = change_note(&before, &store.running, info);
        if !confirmed {
            store.pending = None;
            self.wake.notify_all();
            return Ok((Reply::Ok, note));
        }
        store.generation += 1;
        let generation = store.generation;
        let backup = match store.pending.take() {
            Some(p) => p.backup,
            None => before,
        };
        store.pending = Some(Pending {
            backup,
            persist,
            session: me,
            generation,
        });
        self.wake.notify_all();
        drop(store);
        self.arm_timer(generation, Duration::from_secs(timeout));
        Ok((Reply::Ok, note))
    }

    fn cancel_commit(&self, op: &Element, me: u32) -> Outcome {
        let persist_id = op.child_text("persist-id");
        let mut store = self.store();
        let Some(p) = &store.pending else {
            return Err(vec![protocol(
                ErrorTag::OperationFailed,
                "no confirmed commit is in progress",
            )]);
        };
        check_may_confirm(p, persist_id, me)?;
        let note = rollback(&mut store, &self.wake);
        Ok((Reply::Ok, note))
    }

    /// Rolls back the confirmed commit `generation` unless confirmed within `timeout`.
    fn arm_timer(self: &Arc<Self>, generation: u64, timeout: Duration) {
        let me = self.clone();
        let deadline = Instant::now() + timeout;
        let spawned = std::thread::Builder::new()
            .name("confirmed-commit".into())
            .spawn(move || {
                let mut store = me.store();
                loop {
                    if store.pending.as_ref().map(|p| p.generation) != Some(generation) {
                        return;
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        let note = rollback(&mut store, &me.wake);
                        drop(store);
                        if me.log {
                            eprintln!("confirmed commit not confirmed in time: rolled back");
                        }
                        me.notify(note);
                        return;
                    }
                    store = me
                        .wake
                        .wait_timeout(store, deadline - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            });
        if let Err(e) = spawned {
            eprintln!("netconf serve: cannot start the confirmed-commit timer: {e}");
        }
    }
}

/// Restores running from a pending confirmed commit's backup.
fn rollback(store: &mut Store, wake: &Condvar) -> Option<String> {
    let p = store.pending.take()?;
    wake.notify_all();
    let changes = notify::diff(&store.running, &p.backup);
    store.running = p.backup;
    (!changes.is_empty()).then(|| notify::config_change(&ChangedBy::Server, "running", &changes))
}

fn check_may_confirm(p: &Pending, persist_id: Option<&str>, me: u32) -> Result<(), Vec<RpcError>> {
    match (&p.persist, persist_id) {
        (Some(token), Some(given)) if token == given => Ok(()),
        (Some(_), _) => Err(vec![protocol(
            ErrorTag::InvalidValue,
            "a persistent confirmed commit is pending: give its --persist-id",
        )]),
        (None, Some(_)) => Err(vec![protocol(
            ErrorTag::InvalidValue,
            "the pending confirmed commit has no persist token",
        )]),
        (None, None) if p.session == me => Ok(()),
        (None, None) => Err(vec![with_session_info(
            protocol(
                ErrorTag::InUse,
                format!("a confirmed commit of session {} is pending", p.session),
            ),
            p.session,
        )]),
    }
}

fn check_unlocked(store: &Store, ds: Ds, me: u32) -> Result<(), Vec<RpcError>> {
    match store.locks.get(&ds) {
        Some(&holder) if holder != me => Err(vec![with_session_info(
            protocol(
                ErrorTag::InUse,
                format!("{} is locked by session {holder}", ds.name()),
            ),
            holder,
        )]),
        _ => Ok(()),
    }
}

fn change_note(before: &Element, after: &Element, info: &SessionInfo) -> Option<String> {
    let changes = notify::diff(before, after);
    if changes.is_empty() {
        return None;
    }
    let by = ChangedBy::Session {
        username: info.username.clone().unwrap_or_else(|| "unknown".into()),
        session_id: info.session_id,
        source_host: info.peer.ip().to_string(),
    };
    Some(notify::config_change(&by, "running", &changes))
}

fn no_xpath() -> RpcError {
    protocol(
        ErrorTag::OperationNotSupported,
        "netconf serve has no :xpath capability; use a subtree filter",
    )
}

/// An element's children under a root (for `<config>` and filters).
fn as_root(el: &Element) -> Element {
    Element {
        children: el.children.clone(),
        ..Element::root()
    }
}

fn nmda_datastore(op: &Element) -> Result<Ds, Vec<RpcError>> {
    let name = op.child_text("datastore").unwrap_or_default();
    Ds::parse(name.rsplit(':').next().unwrap_or_default()).ok_or_else(|| {
        vec![protocol(
            ErrorTag::InvalidValue,
            format!("cannot edit datastore {name:?}"),
        )]
    })
}

fn data_reply(data: &Element) -> Outcome {
    Reply::data(data.children_xml())
        .map(|r| (r, None))
        .map_err(|e| {
            vec![error(
                ErrorType::Application,
                ErrorTag::OperationFailed,
                e.to_string(),
            )]
        })
}

/// Running plus the state data `<get>` adds: ietf-netconf-monitoring's schema list.
fn with_state(mut data: Element) -> Element {
    let leaf = |name: &str, text: &str| Element::leaf(NS_MONITORING, name, text);
    let mut schema = Element::new(NS_MONITORING, "schema")
        .with_child(leaf("identifier", sample::MODULE))
        .with_child(leaf("version", sample::REVISION))
        .with_child(leaf("format", "ncm:yang"))
        .with_child(leaf("namespace", sample::NS))
        .with_child(leaf("location", "NETCONF"));
    // `format` is an identityref: its prefix must be declared.
    schema.prefixes.push(("ncm".into(), NS_MONITORING.into()));
    data.children.push(
        Element::new(NS_MONITORING, "netconf-state")
            .with_child(Element::new(NS_MONITORING, "schemas").with_child(schema)),
    );
    data
}

fn get_schema(op: &Element) -> Outcome {
    let id = op.child_text("identifier").unwrap_or_default();
    let version = op.child_text("version").filter(|v| !v.is_empty());
    let format = op.child_text("format").unwrap_or("yang");
    let format = format.rsplit(':').next().unwrap_or(format);
    if id != sample::MODULE || version.is_some_and(|v| v != sample::REVISION) {
        return Err(vec![protocol(
            ErrorTag::InvalidValue,
            format!(
                "no schema {id:?}{}; this server has {}@{}",
                version.map(|v| format!(" version {v}")).unwrap_or_default(),
                sample::MODULE,
                sample::REVISION
            ),
        )]);
    }
    if format != "yang" {
        return Err(vec![protocol(
            ErrorTag::InvalidValue,
            format!("{id} is only available as yang, not {format}"),
        )]);
    }
    data_text(sample::YANG)
}

fn data_text(text: &str) -> Outcome {
    Reply::data(escape_text(text).into_owned())
        .map(|r| (r, None))
        .map_err(|e| {
            vec![error(
                ErrorType::Application,
                ErrorTag::OperationFailed,
                e.to_string(),
            )]
        })
}

fn create_subscription(op: &Element) -> Outcome {
    let stream = op.child_text("stream").unwrap_or("NETCONF");
    if stream != "NETCONF" {
        return Err(vec![protocol(
            ErrorTag::InvalidValue,
            format!("no stream {stream:?}; this server has NETCONF"),
        )]);
    }
    if op.child("filter").is_some() || op.child("startTime").is_some() {
        return Err(vec![protocol(
            ErrorTag::OperationNotSupported,
            "netconf serve sends every notification: no filter, no replay (startTime)",
        )]);
    }
    Ok((Reply::Ok, None))
}

/// The common name of a DER certificate's subject, for the `<username>` of notifications.
///
/// A deliberately small reader: the subject's CN is the last `2.5.4.3` attribute before
/// the extensions, which holds for the certificates `demo` and `serve` make.
pub fn common_name(der: &[u8]) -> Option<String> {
    const CN_OID: [u8; 5] = [0x06, 0x03, 0x55, 0x04, 0x03];
    let mut found = None;
    let mut at = 0;
    while let Some(pos) = der[at..].windows(5).position(|w| w == CN_OID) {
        let start = at + pos + 5;
        at = start;
        let (Some(&tag), Some(&len)) = (der.get(start), der.get(start + 1)) else {
            break;
        };
        if matches!(tag, 0x0c | 0x13 | 0x16) && len < 0x80 {
            if let Some(value) = der.get(start + 2..start + 2 + usize::from(len)) {
                found = Some(String::from_utf8_lossy(value).into_owned());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_well_formed() {
        let xml = with_state(Element::root()).children_xml();
        netconf_proto::xml::check_fragment(&xml).unwrap();
        assert!(xml.contains("<identifier>netconf-cli-demo</identifier>"));
    }
}
