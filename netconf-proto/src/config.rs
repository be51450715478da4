//! Session limits and our advertised capabilities.

use std::time::Duration;

use crate::capabilities::{Capabilities, BASE_1_0, BASE_1_1};

/// Everything a [`Session`](crate::Session) is configured with. Time values are durations;
/// the session turns them into deadlines from the `now` it is given.
#[derive(Debug, Clone)]
pub struct Config {
    /// The capabilities we advertise in our `<hello>`.
    pub capabilities: Capabilities,
    /// Largest message accepted from the peer, in bytes (default 1 GiB). Checked as bytes
    /// arrive and against chunk headers before their data, so a peer's claim is never allocated.
    pub max_message_size: usize,
    /// How long the peer has to send its `<hello>` (default 30 s).
    pub hello_timeout: Duration,
    /// Default time an RPC may wait for its reply (default 60 s); `None` waits forever.
    pub rpc_timeout: Option<Duration>,
}

impl Config {
    /// Client defaults: base:1.0 and base:1.1.
    pub fn client() -> Self {
        Config {
            capabilities: Capabilities::new([BASE_1_0, BASE_1_1]),
            max_message_size: 1 << 30,
            hello_timeout: Duration::from_secs(30),
            rpc_timeout: Some(Duration::from_secs(60)),
        }
    }

    /// Server defaults: base:1.0 and base:1.1; add what the server implements.
    pub fn server() -> Self {
        Config {
            rpc_timeout: None,
            ..Config::client()
        }
    }

    /// Adds a capability URI to advertise.
    pub fn with_capability(mut self, uri: impl Into<String>) -> Self {
        self.capabilities.push(uri.into());
        self
    }

    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    pub fn with_hello_timeout(mut self, timeout: Duration) -> Self {
        self.hello_timeout = timeout;
        self
    }

    pub fn with_rpc_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.rpc_timeout = timeout;
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::client()
    }
}
