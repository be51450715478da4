//! Typed builders for NETCONF operations: each produces the operation element that
//! becomes the single child of `<rpc>`.
//!
//! Builders validate at construction (text is escaped when written; caller XML fragments are
//! checked with [`check_fragment`](crate::xml::check_fragment)), so writing is infallible and a
//! malformed request is a [`UsageError`] before anything reaches the wire.

use bytes::Bytes;

use crate::error::UsageError;

mod commit;
mod config;
mod datastore;
mod edit;
mod filter;
mod lock;
mod monitoring;
mod nmda;
mod notification;
mod retrieval;
mod session;
mod util;
mod with_defaults;

#[cfg(test)]
mod testutil;

pub use commit::{CancelCommit, Commit, DiscardChanges};
pub use config::{InlineConfig, Source};
pub use datastore::Datastore;
pub use edit::{
    CopyConfig, DefaultOperation, DeleteConfig, EditConfig, ErrorOption, TestOption, Validate,
};
pub use filter::Filter;
pub use lock::{Lock, Unlock};
pub use monitoring::{GetSchema, SchemaFormat};
pub use nmda::{DatastoreIdentity, EditData, GetData, NmdaDatastore, Origin};
pub use notification::CreateSubscription;
pub use retrieval::{Get, GetConfig};
pub use session::{CloseSession, KillSession};
pub use with_defaults::WithDefaults;

/// An operation that can be sent inside `<rpc>`.
pub trait Operation {
    /// Appends the operation element (e.g. `<get-config>...</get-config>`) to `out`,
    /// with the namespace declarations it needs on that element.
    fn write_xml(&self, out: &mut String);
}

/// Renders an operation element to a new string (what [`RpcBody::from_operation`] stores).
pub fn render(op: &dyn Operation) -> String {
    let mut out = String::new();
    op.write_xml(&mut out);
    out
}

/// A pre-rendered, already checked operation element.
///
/// Adapters render an operation in the caller's task and hand this to the connection
/// driver, so the driver never re-validates; it is also the raw-XML escape hatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcBody(Bytes);

impl RpcBody {
    /// Renders a typed operation.
    pub fn from_operation(op: &(impl Operation + ?Sized)) -> Self {
        let mut out = String::new();
        op.write_xml(&mut out);
        RpcBody(Bytes::from(out))
    }

    /// Wraps caller-supplied XML after checking that it is a well-formed fragment.
    pub fn raw(xml: impl Into<String>) -> Result<Self, UsageError> {
        let xml = xml.into();
        crate::xml::check_fragment(&xml)?;
        Ok(RpcBody(Bytes::from(xml)))
    }

    /// The operation element as UTF-8 XML.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl Operation for RpcBody {
    fn write_xml(&self, out: &mut String) {
        out.push_str(self.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_and_body_agree() {
        let ops: Vec<Box<dyn Operation>> = vec![
            Box::new(GetConfig::new(Datastore::Running)),
            Box::new(Lock::new(Datastore::Candidate)),
            Box::new(RpcBody::raw("<my-op xmlns='urn:x'/>").unwrap()),
        ];
        let rendered: Vec<String> = ops.iter().map(|op| render(op.as_ref())).collect();
        assert_eq!(
            rendered,
            [
                "<get-config><source><running/></source></get-config>",
                "<lock><target><candidate/></target></lock>",
                "<my-op xmlns='urn:x'/>",
            ]
        );
        for (op, text) in ops.iter().zip(&rendered) {
            assert_eq!(RpcBody::from_operation(op.as_ref()).as_str(), text);
        }
        assert!(matches!(
            RpcBody::raw("<a>"),
            Err(UsageError::MalformedXml(_))
        ));
    }
}
