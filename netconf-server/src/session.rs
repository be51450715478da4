//! Who sent a request, as the server needs to know it.

use std::net::IpAddr;

/// A client session: its id (for locks and confirmed commits) and who is behind it (for
/// the `changed-by` of RFC 6470 notifications).
///
/// The adapters' own `SessionInfo` carries the same facts; build this from it in the
/// handler (see the crate docs).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    pub session_id: u32,
    /// The NETCONF username (RFC 7589: from the client certificate).
    pub username: Option<String>,
    /// The client's address.
    pub source_host: Option<IpAddr>,
}

impl SessionInfo {
    pub fn new(session_id: u32) -> Self {
        SessionInfo {
            session_id,
            username: None,
            source_host: None,
        }
    }

    pub fn with_username(mut self, username: impl Into<Option<String>>) -> Self {
        self.username = username.into();
        self
    }

    pub fn with_source_host(mut self, host: impl Into<Option<IpAddr>>) -> Self {
        self.source_host = host.into();
        self
    }
}
