//! Global configuration locks (RFC 6241 section 7.5), one holder per datastore.

use std::collections::BTreeMap;

use netconf_proto::message::{ErrorTag, RpcError};

use crate::datastore::Datastore;
use crate::errors::{held_by, protocol};

#[derive(Debug, Default)]
pub(crate) struct Locks {
    held: BTreeMap<Datastore, u32>,
}

impl Locks {
    pub(crate) fn holder(&self, ds: Datastore) -> Option<u32> {
        self.held.get(&ds).copied()
    }

    pub(crate) fn lock(&mut self, ds: Datastore, me: u32) -> Result<(), Vec<RpcError>> {
        if let Some(holder) = self.holder(ds) {
            let who = if holder == me {
                "this session".to_owned()
            } else {
                format!("session {holder}")
            };
            return Err(vec![held_by(
                protocol(
                    ErrorTag::LockDenied,
                    format!("{ds} is already locked by {who}"),
                ),
                holder,
            )]);
        }
        self.held.insert(ds, me);
        Ok(())
    }

    pub(crate) fn unlock(&mut self, ds: Datastore, me: u32) -> Result<(), Vec<RpcError>> {
        match self.holder(ds) {
            Some(holder) if holder == me => {
                self.held.remove(&ds);
                Ok(())
            }
            Some(holder) => Err(vec![held_by(
                protocol(
                    ErrorTag::OperationFailed,
                    format!("{ds} is locked by session {holder}, not this one"),
                ),
                holder,
            )]),
            None => Err(vec![protocol(
                ErrorTag::OperationFailed,
                format!("{ds} is not locked"),
            )]),
        }
    }

    /// Fails with `in-use` when another session holds `ds`.
    pub(crate) fn check(&self, ds: Datastore, me: u32) -> Result<(), Vec<RpcError>> {
        match self.holder(ds) {
            Some(holder) if holder != me => Err(vec![held_by(
                protocol(
                    ErrorTag::InUse,
                    format!("{ds} is locked by session {holder}"),
                ),
                holder,
            )]),
            _ => Ok(()),
        }
    }

    /// Releases every lock `session` holds; returns the datastores it held.
    pub(crate) fn release(&mut self, session: u32) -> Vec<Datastore> {
        let mine: Vec<Datastore> = self
            .held
            .iter()
            .filter(|(_, &h)| h == session)
            .map(|(&ds, _)| ds)
            .collect();
        for ds in &mine {
            self.held.remove(ds);
        }
        mine
    }
}
