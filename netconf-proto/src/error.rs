//! The two kinds of failure a session can report.
//!
//! The split follows h11: a [`ProtocolError`] is the *peer's* fault and is fatal and sticky
//! (the session ends with [`Event::Closed`](crate::Event::Closed)); a [`UsageError`] is the
//! *caller's* fault and leaves the session exactly as it was, so the caller can fix the call
//! and carry on.

use thiserror::Error;

/// The peer broke the protocol.
///
/// Every variant names what was wrong and where: a byte offset into the peer's stream
/// (counted from the first byte the session ever received) or a message-id.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A chunk header (RFC 6242 section 4.2) was malformed.
    #[error("malformed chunk header at byte {offset}: {what}")]
    BadChunkHeader { offset: u64, what: &'static str },
    /// A chunk size did not fit in 1..=4294967295.
    #[error("chunk size out of range at byte {offset}: {what}")]
    ChunkSizeOutOfRange { offset: u64, what: &'static str },
    /// A message grew past [`Config::max_message_size`](crate::Config::max_message_size).
    #[error("message starting at byte {offset} exceeds the limit of {limit} bytes")]
    MessageTooLarge { offset: u64, limit: usize },
    /// The stream ended in the middle of a message.
    #[error("connection closed in the middle of a message ({received} bytes of it received, starting at byte {offset})")]
    TruncatedMessage { offset: u64, received: usize },
    /// The message is not UTF-8 (RFC 6241 section 3 requires it).
    #[error("message starting at byte {offset} is not valid UTF-8 (at byte {error_offset} of the message)")]
    InvalidUtf8 { offset: u64, error_offset: usize },
    /// The message is not well-formed XML, or not the XML NETCONF requires.
    #[error("malformed message starting at byte {offset}: {what}")]
    MalformedMessage { offset: u64, what: String },
    /// The message carries a document type declaration, which NETCONF forbids
    /// (and which would allow entity-expansion attacks).
    #[error("message starting at byte {offset} contains a document type declaration, which NETCONF does not allow")]
    DoctypeNotAllowed { offset: u64 },
    /// A message other than `<hello>` arrived before the peer's hello.
    #[error("received <{element}> before the peer's <hello> (message at byte {offset})")]
    ExpectedHello { offset: u64, element: String },
    /// A second `<hello>` arrived.
    #[error("received a second <hello> (message at byte {offset})")]
    DuplicateHello { offset: u64 },
    /// The hellos share no base protocol version.
    #[error("no common NETCONF base version: the peer offers [{peer}]")]
    NoCommonBase { peer: String },
    /// A server's hello lacked its session-id, or a client's hello carried one.
    #[error("{0}")]
    BadSessionId(String),
    /// The message's root element is not one this role accepts.
    #[error("unexpected <{element}> in namespace {namespace:?} (message at byte {offset})")]
    UnexpectedMessage {
        offset: u64,
        element: String,
        namespace: String,
    },
    /// An `<rpc-reply>` named no message-id at all.
    #[error("<rpc-reply> without a message-id (message at byte {offset})")]
    MissingMessageId { offset: u64 },
    /// An `<rpc-reply>` named a message-id that was never sent.
    #[error("<rpc-reply> for unknown message-id {message_id:?} (message at byte {offset})")]
    UnknownMessageId { offset: u64, message_id: String },
    /// The peer's hello did not arrive before the hello timeout.
    #[error("the peer's <hello> did not arrive within the hello timeout")]
    HelloTimeout,
    /// The peer stopped sending in the middle of a message and an RPC timed out meanwhile.
    #[error("the peer stalled in the middle of a message ({received} bytes of it received, starting at byte {offset})")]
    StalledMidMessage { offset: u64, received: usize },
    /// The TLS layer failed (bad record, bad certificate, ...).
    #[error("TLS: {0}")]
    Tls(String),
}

/// The caller misused the API; the session is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UsageError {
    /// The session has not finished its hello exchange.
    #[error("the session is not established yet (hello exchange still running)")]
    NotEstablished,
    /// The session has closed (or is closing) and takes no more commands.
    #[error("the session is closed")]
    Closed,
    /// The command belongs to the other role.
    #[error("{0} is only available in the {1} role")]
    WrongRole(&'static str, &'static str),
    /// A user-supplied XML fragment is not well-formed.
    #[error("XML fragment is not well-formed: {0}")]
    MalformedXml(String),
    /// A value does not fit where it is used.
    #[error("invalid value for {what}: {why}")]
    InvalidValue { what: &'static str, why: String },
    /// `send_reply` named a request that is not waiting for a reply.
    #[error("no request with message-id {0:?} is waiting for a reply")]
    UnknownRequest(String),
    /// A capability the operation needs was not advertised by the peer.
    #[error("the peer did not advertise {0}")]
    MissingCapability(String),
}
