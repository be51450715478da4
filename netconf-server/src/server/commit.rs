//! `<commit>` with confirmed commit (RFC 6241 sections 8.3.4.1 and 8.4) and
//! `<cancel-commit>`, and the rollback when a confirmation does not come.

use std::time::{Duration, Instant};

use netconf_proto::message::ErrorTag;
use netconf_proto::message::RpcError;
use netconf_proto::Reply;

use super::{Answer, Server};
use crate::backend::Backend;
use crate::datastore::Datastore;
use crate::errors::{held_by, invalid, protocol};
use crate::notification::{confirmed_commit, ChangedBy, ConfirmEvent};
use crate::session::SessionInfo;
use crate::tree::Element;

/// A confirmed commit waiting for its confirmation.
#[derive(Debug)]
pub(crate) struct PendingCommit {
    /// Running as it was before the first confirmed commit of this series.
    backup: Element,
    /// The `persist` token: the commit outlives its session and is confirmed by token.
    pub(crate) persist: Option<String>,
    pub(crate) session_id: u32,
    deadline: Instant,
}

impl<B: Backend> Server<B> {
    /// When [`handle_timeout`](Self::handle_timeout) must next be called: the deadline of
    /// the pending confirmed commit, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.deadline)
    }

    /// Rolls back a confirmed commit whose deadline has passed (RFC 6241 section 8.4.1).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.pending.as_ref().is_some_and(|p| p.deadline <= now) {
            self.roll_back(&ChangedBy::Server, ConfirmEvent::Timeout);
        }
    }

    pub(super) fn commit(&mut self, session: &SessionInfo, op: &Element, now: Instant) -> Answer {
        let me = session.session_id;
        let confirmed = op.child("confirmed").is_some();
        let persist = op.child_text("persist").map(str::to_owned);
        let persist_id = op.child_text("persist-id").map(str::to_owned);
        let timeout = match op.child_text("confirm-timeout") {
            None => self.options.default_confirm_timeout,
            Some(t) => t
                .parse::<u32>()
                .ok()
                .filter(|&t| t > 0)
                .map(|t| Duration::from_secs(t.into()))
                .ok_or_else(|| vec![invalid(format!("bad confirm-timeout {t:?}"))])?,
        };
        self.locks.check(Datastore::Running, me)?;
        self.locks.check(Datastore::Candidate, me)?;
        if let Some(p) = &self.pending {
            may_confirm(p, persist_id.as_deref(), me)?;
        }
        let candidate = self.backend.load(Datastore::Candidate)?.into_owned();
        self.backend.validate(&candidate)?;
        let before = self.backend.load(Datastore::Running)?.into_owned();
        let by = self.changed_by(me);
        self.store(&by, Datastore::Running, candidate)?;
        self.candidate_modified = false;
        let previous = self.pending.take();
        if !confirmed {
            if previous.is_some() {
                self.queue(confirmed_commit(&by, ConfirmEvent::Complete));
            }
            return Ok(Reply::Ok);
        }
        let secs = u32::try_from(timeout.as_secs()).unwrap_or(u32::MAX);
        let event = if previous.is_some() {
            ConfirmEvent::Extend { timeout: secs }
        } else {
            ConfirmEvent::Start { timeout: secs }
        };
        self.pending = Some(PendingCommit {
            backup: previous.map_or(before, |p| p.backup),
            persist,
            session_id: me,
            deadline: now + timeout,
        });
        self.queue(confirmed_commit(&by, event));
        Ok(Reply::Ok)
    }

    pub(super) fn cancel_commit(&mut self, session: &SessionInfo, op: &Element) -> Answer {
        let me = session.session_id;
        let persist_id = op.child_text("persist-id");
        let Some(p) = &self.pending else {
            return Err(vec![protocol(
                ErrorTag::OperationFailed,
                "no confirmed commit is in progress",
            )]);
        };
        may_confirm(p, persist_id, me)?;
        let by = self.changed_by(me);
        self.roll_back(&by, ConfirmEvent::Cancel);
        Ok(Reply::Ok)
    }

    /// Restores running from the pending confirmed commit's backup.
    pub(super) fn roll_back(&mut self, by: &ChangedBy, event: ConfirmEvent) {
        let Some(p) = self.pending.take() else {
            return;
        };
        // The change is the server's own doing whoever asked for it.
        let _ = self.store(&ChangedBy::Server, Datastore::Running, p.backup);
        self.queue(confirmed_commit(by, event));
    }
}

/// Whether a session may confirm or cancel the pending commit `p` (RFC 6241 section 8.4:
/// the same session, or any session with the persist token).
fn may_confirm(p: &PendingCommit, persist_id: Option<&str>, me: u32) -> Result<(), Vec<RpcError>> {
    match (&p.persist, persist_id) {
        (Some(token), Some(given)) if token == given => Ok(()),
        (Some(_), _) => Err(vec![invalid(
            "a persistent confirmed commit is pending: give its persist-id",
        )]),
        (None, Some(_)) => Err(vec![invalid(
            "the pending confirmed commit has no persist token",
        )]),
        (None, None) if p.session_id == me => Ok(()),
        (None, None) => Err(vec![held_by(
            protocol(
                ErrorTag::InUse,
                format!("a confirmed commit of session {} is pending", p.session_id),
            ),
            p.session_id,
        )]),
    }
}
