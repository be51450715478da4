//! Typed builders for NETCONF operations: each produces the operation element that
//! becomes the single child of `<rpc>`.
//!
//! Builders validate at construction (text is escaped when written; caller XML fragments are
//! checked with [`check_fragment`](crate::xml::check_fragment)), so writing is infallible and a
//! malformed request is a [`UsageError`] before anything reaches the wire.

use bytes::Bytes;

use crate::error::UsageError;

/// An operation that can be sent inside `<rpc>`.
pub trait Operation {
    /// Appends the operation element (e.g. `<get-config>...</get-config>`) to `out`,
    /// with the namespace declarations it needs on that element.
    fn write_xml(&self, out: &mut String);
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
