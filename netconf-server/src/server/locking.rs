//! `<lock>`, `<unlock>` (RFC 6241 sections 7.5, 7.6) and `<discard-changes>` (8.3.4.2).

use netconf_proto::message::ErrorTag;
use netconf_proto::Reply;

use super::{params, Answer, Server};
use crate::backend::Backend;
use crate::datastore::Datastore;
use crate::errors::{held_by, protocol};
use crate::tree::Element;

impl<B: Backend> Server<B> {
    pub(super) fn lock(&mut self, op: &Element, me: u32) -> Answer {
        let target = params::datastore_in(op, "target")?;
        if target == Datastore::Candidate
            && self.candidate_modified
            && self.locks.holder(target).is_none()
        {
            return Err(vec![held_by(
                protocol(
                    ErrorTag::LockDenied,
                    "candidate has uncommitted changes: commit or discard-changes first",
                ),
                0,
            )]);
        }
        self.locks.lock(target, me)?;
        Ok(Reply::Ok)
    }

    /// Unlocking a candidate with uncommitted changes discards them (RFC 6241 section
    /// 8.3.5.2): the next holder starts from running.
    pub(super) fn unlock(&mut self, op: &Element, me: u32) -> Answer {
        let target = params::datastore_in(op, "target")?;
        self.locks.unlock(target, me)?;
        if target == Datastore::Candidate && self.candidate_modified {
            self.reset_candidate()?;
        }
        Ok(Reply::Ok)
    }

    pub(super) fn discard_changes(&mut self, me: u32) -> Answer {
        self.locks.check(Datastore::Candidate, me)?;
        self.reset_candidate()
    }
}
