//! What a [`Server`](crate::Server) may be told besides its backend.

use std::time::Duration;

/// The deepest [`Options::max_depth`] may be. The edit and filter walks recurse once per
/// level of the *request*, and this bound keeps that well inside a 2 MiB thread stack
/// (trees themselves are parsed, written, copied and dropped without recursion).
pub const MAX_DEPTH_CEILING: usize = 1024;

/// Limits and defaults of a [`Server`](crate::Server).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// How deep a request's elements may nest, the operation element counting as 1. A deeper
    /// request is answered with `too-big` before any tree is built (default 256).
    pub max_depth: usize,
    /// How long a confirmed commit waits for its confirmation when the client names no
    /// `<confirm-timeout>` (RFC 6241 section 8.4.5: 600 s).
    pub default_confirm_timeout: Duration,
    /// Notifications kept for [`Server::poll_notification`](crate::Server::poll_notification)
    /// before the oldest are dropped: a caller that never polls costs bounded memory.
    pub max_queued_notifications: usize,
    /// `<edit>` entries listed in one `<netconf-config-change>` (RFC 6470 lets a server
    /// list fewer than all).
    pub max_listed_edits: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_depth: crate::tree::DEFAULT_MAX_DEPTH,
            default_confirm_timeout: Duration::from_secs(600),
            max_queued_notifications: 1024,
            max_listed_edits: 32,
        }
    }
}

impl Options {
    /// Sets [`max_depth`](Self::max_depth), capped at [`MAX_DEPTH_CEILING`].
    pub fn with_max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth.clamp(2, MAX_DEPTH_CEILING);
        self
    }

    pub fn with_default_confirm_timeout(mut self, timeout: Duration) -> Self {
        self.default_confirm_timeout = timeout;
        self
    }

    pub fn with_max_queued_notifications(mut self, n: usize) -> Self {
        self.max_queued_notifications = n;
        self
    }

    pub fn with_max_listed_edits(mut self, n: usize) -> Self {
        self.max_listed_edits = n;
        self
    }
}
