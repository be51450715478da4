//! Typed builders for NETCONF operations: each produces the operation element that
//! becomes the single child of `<rpc>`.
//!
//! Builders validate at construction (text is escaped when written; caller XML fragments are
//! checked with [`check_fragment`](crate::xml::check_fragment)), so writing is infallible and a
//! malformed request is a [`UsageError`] before anything reaches the wire.

use bytes::Bytes;

use crate::error::UsageError;
use crate::message::{ReplyContent, RpcReply, XmlPayload};

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
mod writer;

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
pub use writer::XmlWriter;

/// An operation that can be sent inside `<rpc>`.
pub trait Operation {
    /// Appends the operation element (e.g. `<get-config>...</get-config>`) to `out`,
    /// with the namespace declarations it needs on that element.
    fn write_xml(&self, out: &mut XmlWriter);
}

/// An operation with a typed result: what `client.call(&op)` returns in every adapter,
/// defined once here. An `<rpc-error>` reply never reaches [`Rpc::output`]: the client has
/// already turned it into [`Error::Rpc`](crate::Error::Rpc).
pub trait Rpc: Operation {
    /// What a successful reply means to the caller.
    type Output;
    /// Extracts the result from a reply without errors.
    fn output(reply: RpcReply) -> Result<Self::Output, crate::Error>;
}

/// `<data>`, empty when the reply had none.
fn data(reply: RpcReply) -> Result<XmlPayload, crate::Error> {
    Ok(match reply.content {
        ReplyContent::Data(d) => d,
        _ => XmlPayload::default(),
    })
}

macro_rules! rpc_output {
    (data: $($op:ty),*) => {$(
        impl Rpc for $op {
            type Output = XmlPayload;
            fn output(reply: RpcReply) -> Result<XmlPayload, crate::Error> {
                data(reply)
            }
        }
    )*};
    (ok: $($op:ty),*) => {$(
        impl Rpc for $op {
            type Output = ();
            fn output(_reply: RpcReply) -> Result<(), crate::Error> {
                Ok(())
            }
        }
    )*};
}

rpc_output!(data: Get, GetConfig, GetData);
rpc_output!(ok: EditConfig, CopyConfig, DeleteConfig, Lock, Unlock, Commit, CancelCommit,
    DiscardChanges, Validate, KillSession, CloseSession, EditData, CreateSubscription);

/// The schema's text (RFC 6022 returns it as the character data of `<data>`).
impl Rpc for GetSchema {
    type Output = String;
    fn output(reply: RpcReply) -> Result<String, crate::Error> {
        Ok(data(reply)?.text()?)
    }
}

/// A raw operation's result is the whole reply.
impl Rpc for RpcBody {
    type Output = RpcReply;
    fn output(reply: RpcReply) -> Result<RpcReply, crate::Error> {
        Ok(reply)
    }
}

impl<T: Rpc + ?Sized> Rpc for &T {
    type Output = T::Output;
    fn output(reply: RpcReply) -> Result<Self::Output, crate::Error> {
        T::output(reply)
    }
}

/// Renders an operation element to a new string.
pub fn render(op: &dyn Operation) -> String {
    let mut out = XmlWriter::new();
    op.write_xml(&mut out);
    out.into_string()
}

/// A pre-rendered, already checked operation element, as the parts its writer produced
/// (a large `<config>` stays the caller's shared buffer).
///
/// Adapters render an operation in the caller's task and hand this to the connection
/// driver, so the driver never re-validates and copies the XML once, into the framed
/// message; it is also the raw-XML escape hatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcBody {
    /// Shared buffers (large configuration), in order, then `tail`.
    parts: Vec<Bytes>,
    /// The text after the last part: all of a small operation, with no part to allocate.
    tail: String,
}

/// The text a small operation usually fits in (`<get-config>` with a datastore and a short
/// filter).
const SMALL_OPERATION: usize = 128;

impl RpcBody {
    /// Renders a typed operation.
    pub fn from_operation(op: &(impl Operation + ?Sized)) -> Self {
        // Room for a small operation from the start: growing to it cost three reallocations.
        let mut out = XmlWriter::reusing(String::with_capacity(SMALL_OPERATION));
        op.write_xml(&mut out);
        let (parts, tail) = out.into_parts_and_tail();
        RpcBody { parts, tail }
    }

    /// Wraps caller-supplied XML after checking that it is a well-formed fragment.
    pub fn raw(xml: impl Into<String>) -> Result<Self, UsageError> {
        let xml = xml.into();
        crate::xml::check_fragment(&xml)?;
        // As `XmlWriter::into_parts_and_tail` splits: large XML is shared, small is text.
        Ok(if xml.len() >= writer::SHARE_AT {
            RpcBody {
                parts: vec![Bytes::from(xml)],
                tail: String::new(),
            }
        } else {
            RpcBody {
                parts: Vec::new(),
                tail: xml,
            }
        })
    }

    /// The operation element as UTF-8 XML (copied when it is in several parts).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(self.len());
        for part in &self.parts {
            out.push_str(std::str::from_utf8(part).unwrap_or_default());
        }
        out.push_str(&self.tail);
        out
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum::<usize>() + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Operation + ?Sized> Operation for &T {
    fn write_xml(&self, out: &mut XmlWriter) {
        (**self).write_xml(out)
    }
}

impl Operation for RpcBody {
    fn write_xml(&self, out: &mut XmlWriter) {
        for part in &self.parts {
            out.push_shared(part);
        }
        out.push_str(&self.tail);
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
            assert_eq!(RpcBody::from_operation(op.as_ref()).to_xml(), *text);
        }
        assert!(matches!(
            RpcBody::raw("<a>"),
            Err(UsageError::MalformedXml(_))
        ));
    }
}
