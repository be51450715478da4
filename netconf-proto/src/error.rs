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
    /// The TLS (or SSH) handshake did not finish in time.
    #[error("the TLS handshake did not finish within the handshake timeout")]
    HandshakeTimeout,
    /// The peer's hello did not arrive before the hello timeout.
    #[error("the peer's <hello> did not arrive within the hello timeout")]
    HelloTimeout,
    /// The peer sent nothing for the stall timeout while in the middle of a message
    /// ([`Config::with_stall_timeout`](crate::Config::with_stall_timeout)).
    #[error("the peer stalled in the middle of a message: nothing for {idle:?} ({received} bytes of it received, starting at byte {offset})")]
    StalledMidMessage {
        offset: u64,
        received: usize,
        idle: std::time::Duration,
    },
    /// The peer's `<hello>` grew past [`Config::with_max_hello_size`](crate::Config::with_max_hello_size).
    #[error("the peer's <hello> exceeds the limit of {limit} bytes")]
    HelloTooLarge { limit: usize },
    /// The peer's `<hello>` lists more capabilities than
    /// [`Config::with_max_capabilities`](crate::Config::with_max_capabilities) allows.
    #[error("the peer's <hello> lists more than {limit} capabilities")]
    TooManyCapabilities { limit: usize },
    /// Strict mode ([`Config::strict`](crate::Config::strict)) refuses what is otherwise
    /// tolerated.
    #[error("strict mode: {} (message at byte {offset})", quirk.describe())]
    Quirk {
        offset: u64,
        quirk: crate::quirks::Quirk,
    },
    /// The TLS layer failed (bad record, bad certificate, truncated stream, ...).
    #[error("TLS: {0}")]
    Tls(TlsError),
}

/// A TLS failure: what went wrong, and the rustls error behind it when there is one.
#[derive(Debug, Clone)]
pub struct TlsError {
    what: String,
    #[cfg(feature = "rustls")]
    source: Option<rustls::Error>,
}

impl TlsError {
    /// A failure described in words (an EOF inside a record, a handshake cut short).
    pub fn new(what: impl Into<String>) -> Self {
        TlsError {
            what: what.into(),
            #[cfg(feature = "rustls")]
            source: None,
        }
    }

    /// A failure rustls reported.
    #[cfg(feature = "rustls")]
    pub fn from_rustls(error: rustls::Error) -> Self {
        TlsError {
            what: error.to_string(),
            source: Some(error),
        }
    }

    /// The rustls error, when rustls reported it.
    #[cfg(feature = "rustls")]
    pub fn rustls_error(&self) -> Option<&rustls::Error> {
        self.source.as_ref()
    }
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        #[cfg(feature = "rustls")]
        if let Some(e) = &self.source {
            return Some(e);
        }
        None
    }
}

impl PartialEq for TlsError {
    fn eq(&self, other: &Self) -> bool {
        self.what == other.what
    }
}

impl Eq for TlsError {}

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
    /// `send_reply` named a request that is not waiting for a reply (already answered, or
    /// from another session).
    #[error("request {0} is not waiting for a reply")]
    UnknownRequest(crate::session::RequestId),
    /// The message holds `]]>]]>`, which under base:1.0 framing would end it early (and let
    /// the rest pass for another message). Nothing was sent.
    #[error("the message contains the end-of-message delimiter ]]>]]>, which base:1.0 framing cannot carry")]
    DelimiterInMessage,
    /// A streamed reply is being sent: nothing else can go out until it ends.
    #[error("a streamed reply is being sent; wait for its end")]
    StreamInProgress,
    /// The message-id was never sent, or its reply was already delivered.
    #[error("no RPC with message-id {0} is waiting for a reply")]
    UnknownMessageId(u64),
    /// A capability the operation needs was not advertised by the peer.
    #[error("the peer did not advertise {0}")]
    MissingCapability(String),
}
