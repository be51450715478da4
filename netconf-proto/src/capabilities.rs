//! Capabilities exchanged in `<hello>` (RFC 6241 section 8), parsed into types once so
//! callers ask `caps.has_candidate()` instead of comparing URI strings.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

/// `urn:ietf:params:netconf:base:1.0`
pub const BASE_1_0: &str = "urn:ietf:params:netconf:base:1.0";
/// `urn:ietf:params:netconf:base:1.1`
pub const BASE_1_1: &str = "urn:ietf:params:netconf:base:1.1";

const CAP_PREFIX: &str = "urn:ietf:params:netconf:capability:";

/// The base URN before RFC 4741 was published, still offered by older Junos releases
/// (as the XML namespace it also is, it may carry `?module=` for ietf-netconf).
pub const PRE_RFC_BASE_1_0: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";
/// The capability prefix before RFC 4741 (`urn:ietf:params:xml:ns:netconf:capability:`).
pub const PRE_RFC_CAP_PREFIX: &str = "urn:ietf:params:xml:ns:netconf:capability:";

/// A NETCONF base protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BaseVersion {
    /// RFC 4741 / RFC 6241 with end-of-message framing.
    V1_0,
    /// RFC 6241 with chunked framing.
    V1_1,
}

/// RFC 6243 with-defaults modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DefaultsMode {
    ReportAll,
    ReportAllTagged,
    Trim,
    Explicit,
}

impl DefaultsMode {
    /// The mode's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultsMode::ReportAll => "report-all",
            DefaultsMode::ReportAllTagged => "report-all-tagged",
            DefaultsMode::Trim => "trim",
            DefaultsMode::Explicit => "explicit",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "report-all" => DefaultsMode::ReportAll,
            "report-all-tagged" => DefaultsMode::ReportAllTagged,
            "trim" => DefaultsMode::Trim,
            "explicit" => DefaultsMode::Explicit,
            _ => return None,
        })
    }
}

/// A YANG module announced as a capability (RFC 6020 section 5.6.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModuleCapability {
    /// The module's XML namespace (the URI before `?`).
    pub namespace: String,
    pub module: String,
    pub revision: Option<String>,
    pub features: Vec<String>,
    pub deviations: Vec<String>,
}

/// One capability, typed where RFC 6241 and its companions define it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Capability {
    Base(BaseVersion),
    WritableRunning,
    Candidate,
    /// `:confirmed-commit:1.0` or `:1.1` (the latter adds persist/persist-id).
    ConfirmedCommit {
        version: BaseVersion,
    },
    RollbackOnError,
    Validate {
        version: BaseVersion,
    },
    Startup,
    /// `:url:1.0?scheme=...`
    Url {
        schemes: Vec<String>,
    },
    XPath,
    /// RFC 5277 `:notification:1.0`.
    Notification,
    /// RFC 5277 `:interleave:1.0`.
    Interleave,
    /// RFC 6243 `:with-defaults:1.0?basic-mode=..&also-supported=..`.
    WithDefaults {
        basic_mode: Option<DefaultsMode>,
        also_supported: Vec<DefaultsMode>,
    },
    /// A YANG module with `?module=`.
    Module(ModuleCapability),
    /// Anything else, kept verbatim.
    Other(String),
}

impl Capability {
    /// Parses one capability URI. Never fails: unknown URIs become [`Capability::Other`].
    /// The pre-RFC 4741 spellings (`urn:ietf:params:xml:ns:netconf:base:1.0`,
    /// `urn:ietf:params:xml:ns:netconf:capability:NAME:1.0`) are aliases of the RFC ones.
    pub fn parse(uri: &str) -> Capability {
        let uri = uri.trim();
        match uri {
            BASE_1_0 | PRE_RFC_BASE_1_0 => return Capability::Base(BaseVersion::V1_0),
            BASE_1_1 => return Capability::Base(BaseVersion::V1_1),
            _ => {}
        }
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let name = path
            .strip_prefix(CAP_PREFIX)
            .or_else(|| path.strip_prefix(PRE_RFC_CAP_PREFIX));
        if let Some(name) = name {
            let known = match name {
                "writable-running:1.0" => Some(Capability::WritableRunning),
                "candidate:1.0" => Some(Capability::Candidate),
                "confirmed-commit:1.0" => Some(Capability::ConfirmedCommit {
                    version: BaseVersion::V1_0,
                }),
                "confirmed-commit:1.1" => Some(Capability::ConfirmedCommit {
                    version: BaseVersion::V1_1,
                }),
                "rollback-on-error:1.0" => Some(Capability::RollbackOnError),
                "validate:1.0" => Some(Capability::Validate {
                    version: BaseVersion::V1_0,
                }),
                "validate:1.1" => Some(Capability::Validate {
                    version: BaseVersion::V1_1,
                }),
                "startup:1.0" => Some(Capability::Startup),
                "url:1.0" => Some(Capability::Url {
                    schemes: query_param(query, "scheme")
                        .map(split_list)
                        .unwrap_or_default(),
                }),
                "xpath:1.0" => Some(Capability::XPath),
                "notification:1.0" => Some(Capability::Notification),
                "interleave:1.0" => Some(Capability::Interleave),
                "with-defaults:1.0" => Some(Capability::WithDefaults {
                    basic_mode: query_param(query, "basic-mode").and_then(DefaultsMode::parse),
                    also_supported: query_param(query, "also-supported")
                        .map(|l| l.split(',').filter_map(DefaultsMode::parse).collect())
                        .unwrap_or_default(),
                }),
                _ => None,
            };
            if let Some(cap) = known {
                return cap;
            }
        }
        if let Some(module) = query_param(query, "module") {
            return Capability::Module(ModuleCapability {
                namespace: path.to_owned(),
                module: module.to_owned(),
                revision: query_param(query, "revision").map(str::to_owned),
                features: query_param(query, "features")
                    .map(split_list)
                    .unwrap_or_default(),
                deviations: query_param(query, "deviations")
                    .map(split_list)
                    .unwrap_or_default(),
            });
        }
        Capability::Other(uri.to_owned())
    }
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| match kv.split_once('=') {
        Some((k, v)) if k == key => Some(v),
        _ => None,
    })
}

fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The capability set of one side of a session: the URIs as sent, and their typed form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    uris: Vec<Arc<str>>,
    parsed: Vec<Capability>,
    /// The URIs again, for de-duplication in constant time (a hello may list tens of
    /// thousands).
    seen: HashSet<Arc<str>>,
}

impl Capabilities {
    /// Builds a set from URIs, dropping exact duplicates.
    pub fn new<I, S>(uris: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut caps = Capabilities::default();
        for uri in uris {
            caps.push(uri.into());
        }
        caps
    }

    /// The client default: base 1.0 and 1.1.
    pub fn client_default() -> Self {
        Capabilities::new([BASE_1_0, BASE_1_1])
    }

    /// Adds one URI (ignored when already present).
    pub fn push(&mut self, uri: String) {
        let trimmed = uri.trim();
        if trimmed.is_empty() || self.seen.contains(trimmed) {
            return;
        }
        let uri: Arc<str> = Arc::from(trimmed);
        self.parsed.push(Capability::parse(&uri));
        self.seen.insert(uri.clone());
        self.uris.push(uri);
    }

    /// The URIs, in the order the peer sent them.
    pub fn uris(&self) -> impl Iterator<Item = &str> {
        self.uris.iter().map(|u| &**u)
    }

    /// The typed capabilities, in the same order.
    pub fn iter(&self) -> impl Iterator<Item = &Capability> {
        self.parsed.iter()
    }

    pub fn len(&self) -> usize {
        self.uris.len()
    }

    pub fn is_empty(&self) -> bool {
        self.uris.is_empty()
    }

    /// Whether the exact URI (or, for URIs with a query, its part before `?`) is present.
    pub fn contains_uri(&self, uri: &str) -> bool {
        self.seen.contains(uri)
            || self
                .uris
                .iter()
                .any(|u| u.split_once('?').is_some_and(|(p, _)| p == uri))
    }

    /// Whether `cap` is present, comparing typed values.
    pub fn contains(&self, cap: &Capability) -> bool {
        self.parsed.contains(cap)
    }

    /// The pre-RFC 4741 spellings among the URIs, if any (for quirk reports).
    pub fn pre_rfc_spellings(&self) -> (bool, bool) {
        let base = self.seen.contains(PRE_RFC_BASE_1_0);
        let caps = self.uris.iter().any(|u| u.starts_with(PRE_RFC_CAP_PREFIX));
        (base, caps)
    }

    /// The base versions offered.
    pub fn base_versions(&self) -> Vec<BaseVersion> {
        self.parsed
            .iter()
            .filter_map(|c| match c {
                Capability::Base(v) => Some(*v),
                _ => None,
            })
            .collect()
    }

    pub fn supports(&self, version: BaseVersion) -> bool {
        self.contains(&Capability::Base(version))
    }

    pub fn has_candidate(&self) -> bool {
        self.contains(&Capability::Candidate)
    }

    pub fn has_writable_running(&self) -> bool {
        self.contains(&Capability::WritableRunning)
    }

    pub fn has_startup(&self) -> bool {
        self.contains(&Capability::Startup)
    }

    pub fn has_xpath(&self) -> bool {
        self.contains(&Capability::XPath)
    }

    pub fn has_notification(&self) -> bool {
        self.contains(&Capability::Notification)
    }

    pub fn has_interleave(&self) -> bool {
        self.contains(&Capability::Interleave)
    }

    pub fn has_rollback_on_error(&self) -> bool {
        self.contains(&Capability::RollbackOnError)
    }

    /// The highest `:confirmed-commit` version, if any.
    pub fn confirmed_commit(&self) -> Option<BaseVersion> {
        self.parsed
            .iter()
            .filter_map(|c| match c {
                Capability::ConfirmedCommit { version } => Some(*version),
                _ => None,
            })
            .max()
    }

    /// The highest `:validate` version, if any.
    pub fn validate(&self) -> Option<BaseVersion> {
        self.parsed
            .iter()
            .filter_map(|c| match c {
                Capability::Validate { version } => Some(*version),
                _ => None,
            })
            .max()
    }

    /// The `:url` schemes, if `:url` is present.
    pub fn url_schemes(&self) -> Option<&[String]> {
        self.parsed.iter().find_map(|c| match c {
            Capability::Url { schemes } => Some(schemes.as_slice()),
            _ => None,
        })
    }

    /// The `:with-defaults` capability's modes, if present.
    pub fn with_defaults(&self) -> Option<(Option<DefaultsMode>, &[DefaultsMode])> {
        self.parsed.iter().find_map(|c| match c {
            Capability::WithDefaults {
                basic_mode,
                also_supported,
            } => Some((*basic_mode, also_supported.as_slice())),
            _ => None,
        })
    }

    /// The YANG modules announced.
    pub fn modules(&self) -> impl Iterator<Item = &ModuleCapability> {
        self.parsed.iter().filter_map(|c| match c {
            Capability::Module(m) => Some(m),
            _ => None,
        })
    }

    /// The announced module called `name`.
    pub fn module(&self, name: &str) -> Option<&ModuleCapability> {
        self.modules().find(|m| m.module == name)
    }
}

impl fmt::Display for BaseVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BaseVersion::V1_0 => "1.0",
            BaseVersion::V1_1 => "1.1",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_standard_capabilities() {
        let caps = Capabilities::new([
            BASE_1_0,
            BASE_1_1,
            "urn:ietf:params:netconf:capability:candidate:1.0",
            "urn:ietf:params:netconf:capability:confirmed-commit:1.1",
            "urn:ietf:params:netconf:capability:confirmed-commit:1.0",
            "urn:ietf:params:netconf:capability:rollback-on-error:1.0",
            "urn:ietf:params:netconf:capability:validate:1.1",
            "urn:ietf:params:netconf:capability:startup:1.0",
            "urn:ietf:params:netconf:capability:url:1.0?scheme=http,ftp,file",
            "urn:ietf:params:netconf:capability:xpath:1.0",
            "urn:ietf:params:netconf:capability:notification:1.0",
            "urn:ietf:params:netconf:capability:interleave:1.0",
            "urn:ietf:params:netconf:capability:writable-running:1.0",
            "urn:ietf:params:netconf:capability:with-defaults:1.0?basic-mode=explicit&also-supported=report-all,trim",
        ]);
        assert_eq!(
            caps.base_versions(),
            vec![BaseVersion::V1_0, BaseVersion::V1_1]
        );
        assert!(caps.has_candidate() && caps.has_startup() && caps.has_xpath());
        assert!(caps.has_notification() && caps.has_interleave() && caps.has_rollback_on_error());
        assert!(caps.has_writable_running());
        assert_eq!(caps.confirmed_commit(), Some(BaseVersion::V1_1));
        assert_eq!(caps.validate(), Some(BaseVersion::V1_1));
        assert_eq!(
            caps.url_schemes(),
            Some(&["http".to_owned(), "ftp".into(), "file".into()][..])
        );
        assert_eq!(
            caps.with_defaults(),
            Some((
                Some(DefaultsMode::Explicit),
                &[DefaultsMode::ReportAll, DefaultsMode::Trim][..]
            ))
        );
        assert!(caps.contains_uri("urn:ietf:params:netconf:capability:url:1.0"));
    }

    /// Issue 13: older Junos offers only the pre-RFC URNs; they mean the same.
    #[test]
    fn pre_rfc_urns_are_aliases() {
        let caps = Capabilities::new([
            "urn:ietf:params:xml:ns:netconf:base:1.0",
            "urn:ietf:params:xml:ns:netconf:capability:candidate:1.0",
            "urn:ietf:params:xml:ns:netconf:capability:confirmed-commit:1.0",
            "urn:ietf:params:xml:ns:netconf:capability:validate:1.0",
            "urn:ietf:params:xml:ns:netconf:capability:url:1.0?scheme=http,ftp,file",
        ]);
        assert!(caps.supports(BaseVersion::V1_0));
        assert!(caps.has_candidate());
        assert_eq!(caps.confirmed_commit(), Some(BaseVersion::V1_0));
        assert_eq!(caps.validate(), Some(BaseVersion::V1_0));
        assert_eq!(caps.url_schemes().map(<[String]>::len), Some(3));
        assert_eq!(caps.pre_rfc_spellings(), (true, true));
        // The base namespace with a module query is ietf-netconf's module capability.
        assert!(matches!(
            Capability::parse("urn:ietf:params:xml:ns:netconf:base:1.0?module=ietf-netconf&revision=2011-06-01"),
            Capability::Module(m) if m.module == "ietf-netconf"
        ));
        assert_eq!(
            Capabilities::client_default().pre_rfc_spellings(),
            (false, false)
        );
    }

    #[test]
    fn parses_module_capabilities() {
        let cap = Capability::parse(
            "urn:ietf:params:xml:ns:yang:ietf-interfaces?module=ietf-interfaces&revision=2014-05-08&features=arbitrary-names,pre-provisioning&deviations=acme-dev",
        );
        assert_eq!(
            cap,
            Capability::Module(ModuleCapability {
                namespace: "urn:ietf:params:xml:ns:yang:ietf-interfaces".into(),
                module: "ietf-interfaces".into(),
                revision: Some("2014-05-08".into()),
                features: vec!["arbitrary-names".into(), "pre-provisioning".into()],
                deviations: vec!["acme-dev".into()],
            })
        );
        assert_eq!(
            Capability::parse("http://example.com/x"),
            Capability::Other("http://example.com/x".into())
        );
    }
}
