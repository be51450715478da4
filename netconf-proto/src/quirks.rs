//! What real devices get wrong while their meaning stays unambiguous: tolerated (unless
//! [`Config::strict`](crate::Config::strict)), logged once per session and counted, so users
//! can report device bugs and tests of servers can refuse them.

use std::fmt;

/// One kind of tolerated deviation from RFC 6241/6242.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Quirk {
    /// The pre-RFC 4741 base URN `urn:ietf:params:xml:ns:netconf:base:1.0` offered as a
    /// capability (older Junos).
    PreRfcBaseUrn,
    /// A capability spelled `urn:ietf:params:xml:ns:netconf:capability:NAME:1.0`.
    PreRfcCapabilityUrn,
    /// An envelope element (`rpc-reply`, `ok`, `rpc-error`, `hello`, ...) in no namespace.
    NoNamespaceEnvelope,
    /// A prefix that was never declared, on an element recognised by its local name.
    UndeclaredPrefix,
    /// An `<rpc-error>` without one of its mandatory leaves.
    RpcErrorMissingLeaves,
    /// An `<rpc-reply>` without message-id, matched to the only RPC in flight.
    MissingMessageId,
    /// `encoding="ISO-8859-1"` (or US-ASCII) declared on a message whose bytes are ASCII.
    NonUtf8EncodingDeclared,
    /// Text that is not XML before the server's `<hello>` (a login banner).
    BannerBeforeHello,
    /// Text that is not XML after the last message, before the end of the stream.
    TrailingGarbage,
    /// A peer that negotiated base:1.1 but frames its messages with `]]>]]>`.
    EndOfMessageAfterBase11,
}

impl Quirk {
    /// Every quirk, in a fixed order.
    pub const ALL: [Quirk; 10] = [
        Quirk::PreRfcBaseUrn,
        Quirk::PreRfcCapabilityUrn,
        Quirk::NoNamespaceEnvelope,
        Quirk::UndeclaredPrefix,
        Quirk::RpcErrorMissingLeaves,
        Quirk::MissingMessageId,
        Quirk::NonUtf8EncodingDeclared,
        Quirk::BannerBeforeHello,
        Quirk::TrailingGarbage,
        Quirk::EndOfMessageAfterBase11,
    ];

    /// A short name, for logs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Quirk::PreRfcBaseUrn => "pre-rfc-base-urn",
            Quirk::PreRfcCapabilityUrn => "pre-rfc-capability-urn",
            Quirk::NoNamespaceEnvelope => "no-namespace-envelope",
            Quirk::UndeclaredPrefix => "undeclared-prefix",
            Quirk::RpcErrorMissingLeaves => "rpc-error-missing-leaves",
            Quirk::MissingMessageId => "missing-message-id",
            Quirk::NonUtf8EncodingDeclared => "non-utf8-encoding-declared",
            Quirk::BannerBeforeHello => "banner-before-hello",
            Quirk::TrailingGarbage => "trailing-garbage",
            Quirk::EndOfMessageAfterBase11 => "end-of-message-after-base11",
        }
    }

    /// What it is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Quirk::PreRfcBaseUrn => {
                "the peer offers the pre-RFC base URN urn:ietf:params:xml:ns:netconf:base:1.0"
            }
            Quirk::PreRfcCapabilityUrn => {
                "the peer spells capabilities urn:ietf:params:xml:ns:netconf:capability:..."
            }
            Quirk::NoNamespaceEnvelope => {
                "the peer sends NETCONF envelope elements in no namespace"
            }
            Quirk::UndeclaredPrefix => "the peer uses a namespace prefix it never declared",
            Quirk::RpcErrorMissingLeaves => {
                "the peer sends <rpc-error> without its mandatory leaves"
            }
            Quirk::MissingMessageId => "the peer sends <rpc-reply> without message-id",
            Quirk::NonUtf8EncodingDeclared => {
                "the peer declares a non-UTF-8 encoding on ASCII messages"
            }
            Quirk::BannerBeforeHello => "the peer sends text before its <hello>",
            Quirk::TrailingGarbage => "the peer sends text after its last message",
            Quirk::EndOfMessageAfterBase11 => "the peer negotiated base:1.1 but frames with ]]>]]>",
        }
    }

    fn index(self) -> usize {
        Quirk::ALL.iter().position(|q| *q == self).unwrap_or(0)
    }
}

impl fmt::Display for Quirk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How often a session tolerated each quirk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuirkCounts {
    counts: [u64; Quirk::ALL.len()],
}

impl QuirkCounts {
    /// Counts one occurrence; returns whether it was the first (the one to log).
    pub(crate) fn record(&mut self, quirk: Quirk) -> bool {
        let n = &mut self.counts[quirk.index()];
        *n += 1;
        *n == 1
    }

    pub fn count(&self, quirk: Quirk) -> u64 {
        self.counts[quirk.index()]
    }

    /// The quirks seen, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (Quirk, u64)> + '_ {
        Quirk::ALL
            .iter()
            .map(|q| (*q, self.count(*q)))
            .filter(|(_, n)| *n > 0)
    }

    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|n| *n == 0)
    }
}
