//! Session limits and our advertised capabilities.

use std::time::Duration;

use crate::capabilities::{Capabilities, BASE_1_0, BASE_1_1};

/// Everything a [`Session`](crate::Session) is configured with, built with methods so that
/// new limits can be added without breaking callers. Time values are durations; the session
/// turns them into deadlines from the `now` it is given.
///
/// The defaults differ by role where the threat differs: a client asked for its replies and
/// accepts large ones (1 GiB); a server takes requests from anyone who completed the TLS or
/// SSH handshake and accepts 16 MiB unless told otherwise.
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) capabilities: Capabilities,
    pub(crate) max_message_size: usize,
    pub(crate) max_hello_size: usize,
    pub(crate) max_capabilities: usize,
    pub(crate) max_pending_requests: usize,
    pub(crate) hello_timeout: Duration,
    pub(crate) rpc_timeout: Option<Duration>,
    pub(crate) close_timeout: Duration,
    pub(crate) stall_timeout: Option<Duration>,
    pub(crate) strict: bool,
}

/// Default `max_hello_size`: a hello with a few thousand module capabilities is ~1 MiB.
pub const DEFAULT_MAX_HELLO_SIZE: usize = 4 << 20;
/// Default `max_capabilities`: real devices announce hundreds to a few thousand.
pub const DEFAULT_MAX_CAPABILITIES: usize = 16_384;

impl Config {
    /// Client defaults: base:1.0 and base:1.1, messages up to 1 GiB, RPCs time out after
    /// 60 s, close-session after 10 s, a peer silent mid-message for 120 s is stalled.
    pub fn client() -> Self {
        Config {
            capabilities: Capabilities::new([BASE_1_0, BASE_1_1]),
            max_message_size: 1 << 30,
            max_hello_size: DEFAULT_MAX_HELLO_SIZE,
            max_capabilities: DEFAULT_MAX_CAPABILITIES,
            max_pending_requests: 64,
            hello_timeout: Duration::from_secs(30),
            rpc_timeout: Some(Duration::from_secs(60)),
            close_timeout: Duration::from_secs(10),
            stall_timeout: Some(Duration::from_secs(120)),
            strict: false,
        }
    }

    /// Server defaults: base:1.0 and base:1.1 (add what the server implements), requests up
    /// to 16 MiB, at most 64 requests waiting for their replies.
    pub fn server() -> Self {
        Config {
            max_message_size: 16 << 20,
            rpc_timeout: None,
            ..Config::client()
        }
    }

    /// Adds a capability URI to advertise.
    pub fn with_capability(mut self, uri: impl Into<String>) -> Self {
        self.capabilities.push(uri.into());
        self
    }

    /// Replaces the advertised capabilities.
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Largest message accepted from the peer, in bytes. Checked as bytes arrive and against
    /// chunk headers before their data, so a peer's claim is never allocated.
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Largest `<hello>` accepted from the peer (the hello is parsed before any limit the
    /// application could apply, so it has its own, smaller one).
    pub fn with_max_hello_size(mut self, bytes: usize) -> Self {
        self.max_hello_size = bytes;
        self
    }

    /// Most capabilities accepted in the peer's `<hello>`.
    pub fn with_max_capabilities(mut self, n: usize) -> Self {
        self.max_capabilities = n;
        self
    }

    /// Server: requests that may wait for their replies at once. Beyond it the session
    /// answers `resource-denied` itself, so a client that pipelines without bound cannot grow
    /// the server's memory.
    pub fn with_max_pending_requests(mut self, n: usize) -> Self {
        self.max_pending_requests = n.max(1);
        self
    }

    /// How long the peer has to send its `<hello>`.
    pub fn with_hello_timeout(mut self, timeout: Duration) -> Self {
        self.hello_timeout = timeout;
        self
    }

    /// Default time an RPC may wait for its reply; `None` waits forever. A timed-out RPC
    /// fails alone: the session and every other RPC go on.
    pub fn with_rpc_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.rpc_timeout = timeout;
        self
    }

    /// How long `close()` waits for the reply to `<close-session>`, whatever the RPC timeout.
    pub fn with_close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// How long the peer may send nothing while in the middle of a message before the
    /// session is declared stalled and closed; `None`: never.
    pub fn with_stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// Refuse what real devices get wrong but whose meaning is unambiguous, instead of
    /// tolerating it: for those who test servers.
    pub fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    pub fn max_hello_size(&self) -> usize {
        self.max_hello_size
    }

    pub fn max_capabilities(&self) -> usize {
        self.max_capabilities
    }

    pub fn max_pending_requests(&self) -> usize {
        self.max_pending_requests
    }

    pub fn hello_timeout(&self) -> Duration {
        self.hello_timeout
    }

    pub fn rpc_timeout(&self) -> Option<Duration> {
        self.rpc_timeout
    }

    pub fn close_timeout(&self) -> Duration {
        self.close_timeout
    }

    pub fn stall_timeout(&self) -> Option<Duration> {
        self.stall_timeout
    }

    pub fn is_strict(&self) -> bool {
        self.strict
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::client()
    }
}
