//! The configuration datastores a server keeps (RFC 6241 sections 5.1, 8.3 and 8.7).

use std::fmt;
use std::str::FromStr;

/// A conventional configuration datastore.
///
/// Not `netconf_proto::operations::Datastore`: that one names what a client may send
/// (a URL too); this one names what a server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Datastore {
    Running,
    Candidate,
    Startup,
}

impl Datastore {
    pub const ALL: [Datastore; 3] = [Datastore::Running, Datastore::Candidate, Datastore::Startup];

    /// The name as it appears on the wire (`<running/>`, `ds:running`).
    pub fn as_str(self) -> &'static str {
        match self {
            Datastore::Running => "running",
            Datastore::Candidate => "candidate",
            Datastore::Startup => "startup",
        }
    }
}

impl fmt::Display for Datastore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not running, candidate or startup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown datastore {0:?}: expected running, candidate or startup")]
pub struct UnknownDatastore(pub String);

impl FromStr for Datastore {
    type Err = UnknownDatastore;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Datastore::ALL
            .into_iter()
            .find(|d| d.as_str() == s.trim())
            .ok_or_else(|| UnknownDatastore(s.to_owned()))
    }
}
