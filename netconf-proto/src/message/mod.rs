//! The NETCONF envelope: `<hello>`, `<rpc>`, `<rpc-reply>` and `<notification>`, parsed
//! with quick-xml (namespace-aware) and written back out.
//!
//! Only the envelope is tokenized. Payloads (`<data>` content, an rpc's operation element,
//! notification content) stay raw XML slices of the message buffer, so a 500 MB `<data>`
//! costs one UTF-8 validation, not a tokenization (see the `parse` module).

mod encode;
mod fast_path;
mod parse;
mod payload;
mod plain_attributes;
mod rpc_error;

use bytes::Bytes;

use crate::capabilities::Capabilities;

pub(crate) use encode::{reply_parts, ReplyEnvelope};
pub use encode::{write_hello, write_notification, write_rpc};
#[cfg(test)]
pub(crate) use parse::parse_message;
#[cfg(test)]
pub(crate) use parse::Parsed;
pub(crate) use parse::{parse_message_with, ParseError, ParseLimits, ParseScratch};
pub use payload::{NamespaceBinding, XmlPayload};
pub use rpc_error::{ErrorMessage, ErrorSeverity, ErrorTag, ErrorType, RpcError};

/// A decoded message, before the session interprets it.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Hello(Hello),
    Rpc(Request),
    RpcReply(RpcReply),
    Notification(Notification),
}

/// A `<hello>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub capabilities: Capabilities,
    /// Present in a server's hello only.
    pub session_id: Option<u32>,
}

/// The qualified name of an operation element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OperationName {
    pub namespace: String,
    pub name: String,
}

impl OperationName {
    /// True when this is `name` in the base namespace.
    pub fn is_base(&self, name: &str) -> bool {
        self.namespace == crate::xml::NS_BASE && self.name == name
    }
}

/// An `<rpc>` received by a server.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The message-id attribute, verbatim (RFC 6241 treats it as an opaque string).
    pub message_id: String,
    /// The operation element's resolved name, e.g. `get-config` in the base namespace.
    pub operation: OperationName,
    /// The whole operation element, raw.
    pub body: XmlPayload,
    /// The reply's start and end tags.
    pub(crate) reply_envelope: ReplyEnvelope,
}

/// What an `<rpc-reply>` carries besides errors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyContent {
    /// `<ok/>`.
    Ok,
    /// The content of `<data>` (in any namespace: RFC 6022 and RFC 8526 define their own).
    Data(XmlPayload),
    /// Any other output, raw (the output of a custom RPC).
    Other(XmlPayload),
    /// Nothing but `<rpc-error>`s.
    Empty,
}

/// An `<rpc-reply>` received by a client.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcReply {
    pub message_id: Option<String>,
    pub content: ReplyContent,
    /// Every `<rpc-error>`, warnings included.
    pub errors: Vec<RpcError>,
    /// The whole message, for callers who want to parse it themselves.
    pub raw: Bytes,
}

impl RpcReply {
    /// True when any `<rpc-error>` has severity `error`.
    pub fn has_errors(&self) -> bool {
        self.errors.iter().any(RpcError::is_error)
    }

    /// The `<data>` payload, if the reply has one.
    pub fn data(&self) -> Option<&XmlPayload> {
        match &self.content {
            ReplyContent::Data(d) => Some(d),
            _ => None,
        }
    }
}

/// An RFC 5277 `<notification>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `<eventTime>`, an RFC 3339 date-time as sent.
    pub event_time: String,
    /// Everything after `<eventTime>`, raw.
    pub content: XmlPayload,
}

/// What a server sends back for a request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reply {
    /// `<ok/>`.
    Ok,
    /// `<data>` with this XML inside (checked for well-formedness when built).
    Data(Bytes),
    /// `<rpc-error>`s.
    Errors(Vec<RpcError>),
    /// Raw reply content (checked when built).
    Raw(Bytes),
}

impl Reply {
    /// A `<data>` reply; the XML must be a well-formed fragment.
    pub fn data(xml: impl Into<String>) -> Result<Self, crate::UsageError> {
        let xml = xml.into();
        crate::xml::check_fragment(&xml)?;
        Ok(Reply::Data(Bytes::from(xml)))
    }

    /// A `<data>` reply from bytes the caller vouches for (no check: for large, generated data).
    pub fn data_unchecked(xml: Bytes) -> Self {
        Reply::Data(xml)
    }

    /// A reply whose content is the given raw XML fragment.
    pub fn raw(xml: impl Into<String>) -> Result<Self, crate::UsageError> {
        let xml = xml.into();
        crate::xml::check_fragment(&xml)?;
        Ok(Reply::Raw(Bytes::from(xml)))
    }

    /// A single `<rpc-error>`.
    pub fn error(error: RpcError) -> Self {
        Reply::Errors(vec![error])
    }
}

#[cfg(test)]
mod tests;
