//! RFC 6241 candidate-datastore operations: `<commit>` (sections 8.3 and 8.4),
//! `<cancel-commit>` (8.4) and `<discard-changes>` (8.3).

use crate::operations::XmlWriter;

use std::fmt::Write as _;

use super::util::{element, empty};
use super::Operation;
use crate::error::UsageError;
use crate::xml::write_leaf;

/// `<commit>`: makes the candidate configuration the running one (RFC 6241 section 8.3);
/// with `:confirmed-commit` the change is rolled back unless confirmed in time (section 8.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Commit {
    confirmed: bool,
    confirm_timeout: Option<u32>,
    persist: Option<String>,
    persist_id: Option<String>,
}

impl Commit {
    /// A plain commit; also confirms a pending confirmed commit made by this session.
    pub fn new() -> Self {
        Self::default()
    }

    /// A confirmed commit (section 8.4): reverted after the timeout (600 s unless
    /// [`confirm_timeout`](Commit::confirm_timeout) says otherwise) unless a
    /// confirming commit follows.
    pub fn confirmed() -> Self {
        Commit {
            confirmed: true,
            ..Self::default()
        }
    }

    /// Sets the confirmed commit's timeout in seconds (section 8.4.5.1); implies
    /// [`confirmed`](Commit::confirmed). 0 is refused (the range is 1..=4294967295).
    pub fn confirm_timeout(mut self, seconds: u32) -> Result<Self, UsageError> {
        if seconds == 0 {
            return Err(UsageError::InvalidValue {
                what: "confirm-timeout",
                why: "must be at least 1 second".into(),
            });
        }
        self.confirmed = true;
        self.confirm_timeout = Some(seconds);
        Ok(self)
    }

    /// Makes the confirmed commit survive the end of this session: it can then be confirmed
    /// or cancelled from any session that presents `token` as persist-id (section 8.4.1).
    /// Implies [`confirmed`](Commit::confirmed).
    pub fn persist(mut self, token: impl Into<String>) -> Self {
        self.confirmed = true;
        self.persist = Some(token.into());
        self
    }

    /// Confirms (or, with `confirmed`, extends) the persistent confirmed commit made with
    /// [`persist`](Commit::persist)`(token)` (section 8.4.1).
    pub fn persist_id(mut self, token: impl Into<String>) -> Self {
        self.persist_id = Some(token.into());
        self
    }
}

impl Operation for Commit {
    fn write_xml(&self, out: &mut XmlWriter) {
        element(out, "commit", |out| {
            if self.confirmed {
                empty(out, "confirmed");
            }
            if let Some(seconds) = self.confirm_timeout {
                let _ = write!(out, "<confirm-timeout>{seconds}</confirm-timeout>");
            }
            if let Some(token) = &self.persist {
                write_leaf(out, "persist", token);
            }
            if let Some(token) = &self.persist_id {
                write_leaf(out, "persist-id", token);
            }
        });
    }
}

/// `<cancel-commit>`: rolls back a pending confirmed commit now (RFC 6241 section 8.4.4.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CancelCommit {
    persist_id: Option<String>,
}

impl CancelCommit {
    /// Cancels this session's pending confirmed commit.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the persistent confirmed commit made with `persist(token)` instead, from any session.
    pub fn persist_id(mut self, token: impl Into<String>) -> Self {
        self.persist_id = Some(token.into());
        self
    }
}

impl Operation for CancelCommit {
    fn write_xml(&self, out: &mut XmlWriter) {
        element(out, "cancel-commit", |out| {
            if let Some(token) = &self.persist_id {
                write_leaf(out, "persist-id", token);
            }
        });
    }
}

/// `<discard-changes>`: resets the candidate to the running configuration (RFC 6241 section 8.3.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiscardChanges;

impl DiscardChanges {
    /// The one and only form.
    pub fn new() -> Self {
        DiscardChanges
    }
}

impl Operation for DiscardChanges {
    fn write_xml(&self, out: &mut XmlWriter) {
        out.push_str("<discard-changes/>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::testutil::assert_renders;

    /// RFC 6241 sections 8.3.4.1 and 8.3.4.2 examples.
    #[test]
    fn rfc6241_8_3_commit_and_discard() {
        assert_renders(&Commit::new(), "<commit/>");
        assert_renders(&DiscardChanges::new(), "<discard-changes/>");
    }

    /// RFC 6241 section 8.4.5.1 example.
    #[test]
    fn rfc6241_8_4_confirmed_commit() {
        let op = Commit::confirmed().confirm_timeout(120).unwrap();
        assert_renders(
            &op,
            r#"<commit>
                 <confirmed/>
                 <confirm-timeout>120</confirm-timeout>
               </commit>"#,
        );
        assert_eq!(Commit::new().confirm_timeout(120).unwrap(), op);
        assert_renders(&Commit::confirmed(), "<commit><confirmed/></commit>");
        assert!(matches!(
            Commit::confirmed().confirm_timeout(0),
            Err(UsageError::InvalidValue { .. })
        ));
    }

    /// RFC 6241 section 8.4.5.1: persistent confirmed commit, confirmed from another session,
    /// and section 8.4.4.1 cancel-commit.
    #[test]
    fn rfc6241_8_4_persist() {
        assert_renders(
            &Commit::confirmed().persist("IQ,d4668"),
            r#"<commit>
                 <confirmed/>
                 <persist>IQ,d4668</persist>
               </commit>"#,
        );
        assert_renders(
            &Commit::new().persist_id("IQ,d4668"),
            r#"<commit>
                 <persist-id>IQ,d4668</persist-id>
               </commit>"#,
        );
        assert_renders(
            &CancelCommit::new().persist_id("IQ,d4668"),
            r#"<cancel-commit>
                 <persist-id>IQ,d4668</persist-id>
               </cancel-commit>"#,
        );
        assert_renders(&CancelCommit::new(), "<cancel-commit/>");
    }

    #[test]
    fn all_commit_parameters_in_schema_order_and_escaped() {
        let op = Commit::new()
            .persist_id("old<&>")
            .persist("new")
            .confirm_timeout(30)
            .unwrap();
        assert_renders(
            &op,
            "<commit><confirmed/><confirm-timeout>30</confirm-timeout>\
             <persist>new</persist><persist-id>old&lt;&amp;&gt;</persist-id></commit>",
        );
    }
}
