//! Notifications the server generates, as values the caller sends (RFC 5277): RFC 6470
//! `<netconf-config-change>` and `<netconf-confirmed-commit>`.

use std::fmt;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::SystemTime;

use netconf_proto::xml::{escape_attr, escape_text};

use crate::datastore::Datastore;
use crate::diff::Change;

/// The ietf-netconf-notifications namespace (RFC 6470).
pub const NS_NETCONF_NOTIFICATIONS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications";

/// The content of one `<notification>`, after `<eventTime>`: hand it to the adapter's
/// notify call with [`event_time`] of the moment it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    content: String,
}

impl Notification {
    /// The notification content (well-formed XML, namespaces declared).
    pub fn content(&self) -> &str {
        &self.content
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.content)
    }
}

/// `at` as an RFC 3339 date-time in UTC, the form of `<eventTime>`.
pub fn event_time(at: SystemTime) -> String {
    let at = time::OffsetDateTime::from(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// Who caused a change: RFC 6470's `changed-by` (and `common-session-parms`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangedBy {
    /// The server itself (a confirmed commit timed out, say).
    Server,
    /// A client session.
    Session {
        username: String,
        session_id: u32,
        source_host: Option<IpAddr>,
    },
}

impl ChangedBy {
    fn write_session_params(&self, out: &mut String) {
        if let ChangedBy::Session {
            username,
            session_id,
            source_host,
        } = self
        {
            let _ = write!(
                out,
                "<username>{}</username><session-id>{session_id}</session-id>",
                escape_text(username)
            );
            if let Some(host) = source_host {
                let _ = write!(out, "<source-host>{host}</source-host>");
            }
        }
    }
}

/// What happened to a confirmed commit (RFC 6470 `confirm-event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfirmEvent {
    /// A confirmed commit began; carries its timeout in seconds.
    Start { timeout: u32 },
    /// It was cancelled with `<cancel-commit>` (or its session ended).
    Cancel,
    /// The timeout passed: the server rolled back.
    Timeout,
    /// A follow-up confirmed commit extended it; carries the new timeout.
    Extend { timeout: u32 },
    /// A plain commit confirmed it.
    Complete,
}

impl ConfirmEvent {
    fn as_str(self) -> &'static str {
        match self {
            ConfirmEvent::Start { .. } => "start",
            ConfirmEvent::Cancel => "cancel",
            ConfirmEvent::Timeout => "timeout",
            ConfirmEvent::Extend { .. } => "extend",
            ConfirmEvent::Complete => "complete",
        }
    }
}

/// `<netconf-config-change>` for `changes` to `datastore` (running or startup).
/// `prefixes` suggests prefixes for namespaces in the edit targets (a module's own prefix
/// reads better than one made from its namespace).
pub fn config_change(
    by: &ChangedBy,
    datastore: Datastore,
    changes: &[Change],
    prefixes: &[(String, String)],
) -> Notification {
    let mut out =
        format!("<netconf-config-change xmlns=\"{NS_NETCONF_NOTIFICATIONS}\"><changed-by>");
    match by {
        ChangedBy::Server => out.push_str("<server/>"),
        ChangedBy::Session { .. } => by.write_session_params(&mut out),
    }
    let _ = write!(out, "</changed-by><datastore>{datastore}</datastore>");
    for c in changes {
        out.push_str("<edit>");
        write_target(&mut out, c, prefixes);
        let _ = write!(out, "<operation>{}</operation></edit>", c.operation);
    }
    out.push_str("</netconf-config-change>");
    Notification { content: out }
}

/// `<netconf-confirmed-commit>`; `by` is left out for a timeout, as RFC 6470 requires.
pub fn confirmed_commit(by: &ChangedBy, event: ConfirmEvent) -> Notification {
    let mut out = format!("<netconf-confirmed-commit xmlns=\"{NS_NETCONF_NOTIFICATIONS}\">");
    if event != ConfirmEvent::Timeout {
        by.write_session_params(&mut out);
    }
    let _ = write!(out, "<confirm-event>{}</confirm-event>", event.as_str());
    if let ConfirmEvent::Start { timeout } | ConfirmEvent::Extend { timeout } = event {
        let _ = write!(out, "<timeout>{timeout}</timeout>");
    }
    out.push_str("</netconf-confirmed-commit>");
    Notification { content: out }
}

/// A prefix for a namespace: a suggested one, else its last `:` or `/` segment made an
/// NCName, numbered if taken.
fn prefix_for(ns: &str, taken: &[(String, String)], suggested: &[(String, String)]) -> String {
    if let Some((p, _)) = taken.iter().find(|(_, u)| u == ns) {
        return p.clone();
    }
    if let Some((p, _)) = suggested
        .iter()
        .find(|(p, u)| u == ns && !taken.iter().any(|(q, _)| q == p))
    {
        return p.clone();
    }
    let seg = ns
        .trim_end_matches(['/', ':'])
        .rsplit([':', '/'])
        .next()
        .unwrap_or("");
    let mut p: String = seg
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if !p.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        p.insert(0, 'n');
    }
    if p.to_ascii_lowercase().starts_with("xml") {
        p.insert(0, 'n');
    }
    let base = p.clone();
    let mut i = 1;
    while taken.iter().any(|(q, _)| *q == p) {
        i += 1;
        p = format!("{base}{i}");
    }
    p
}

/// The `<target>` element: an instance-identifier with its prefixes declared on it.
fn write_target(out: &mut String, change: &Change, suggested: &[(String, String)]) {
    let mut bindings: Vec<(String, String)> = Vec::new();
    let mut expr = String::new();
    let mut qualify = |ns: &str, name: &str| {
        if ns.is_empty() {
            return name.to_owned();
        }
        let p = prefix_for(ns, &bindings, suggested);
        if !bindings.iter().any(|(q, _)| *q == p) {
            bindings.push((p.clone(), ns.to_owned()));
        }
        format!("{p}:{name}")
    };
    for step in &change.path {
        expr.push('/');
        expr.push_str(&qualify(&step.namespace, &step.name));
        if let Some((kns, kname, value)) = &step.key {
            let kname = qualify(kns, kname);
            let _ = write!(expr, "[{kname}='{}']", value.replace('\'', ""));
        }
    }
    out.push_str("<target");
    for (p, u) in &bindings {
        let _ = write!(out, " xmlns:{p}=\"{}\"", escape_attr(u));
    }
    let _ = write!(out, ">{}</target>", escape_text(&expr));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::parse;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn event_times_are_rfc3339_utc() {
        assert_eq!(event_time(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_164_800_250);
        assert_eq!(event_time(t), "2024-02-29T00:00:00.25Z");
    }

    #[test]
    fn config_change_names_the_session_and_each_edit() {
        let old = parse(
            r#"<if xmlns="urn:x:demo"><i><name>a</name><mtu>1</mtu></i></if>"#,
            &[],
            8,
        )
        .unwrap();
        let new = parse(
            r#"<if xmlns="urn:x:demo"><i><name>a</name><mtu>2</mtu></i></if>"#,
            &[],
            8,
        )
        .unwrap();
        let changes = crate::diff::diff(&old, &new, 32);
        let by = ChangedBy::Session {
            username: "admin".into(),
            session_id: 3,
            source_host: Some([127, 0, 0, 1].into()),
        };
        let n = config_change(
            &by,
            Datastore::Running,
            &changes,
            &[("demo".into(), "urn:x:demo".into())],
        );
        let xml = n.content();
        assert!(xml.contains("<changed-by><username>admin</username><session-id>3</session-id><source-host>127.0.0.1</source-host></changed-by><datastore>running</datastore>"), "{xml}");
        assert!(
            xml.contains(r#"<target xmlns:demo="urn:x:demo">/demo:if/demo:i[demo:name='a']/demo:mtu</target><operation>replace</operation>"#),
            "{xml}"
        );
        netconf_proto::xml::check_fragment(xml).unwrap();
        let server = config_change(&ChangedBy::Server, Datastore::Startup, &[], &[]);
        assert!(server.content().contains("<server/>"));
    }

    #[test]
    fn confirmed_commit_events() {
        let by = ChangedBy::Session {
            username: "u".into(),
            session_id: 9,
            source_host: None,
        };
        let start = confirmed_commit(&by, ConfirmEvent::Start { timeout: 600 });
        assert!(start.content().ends_with("<username>u</username><session-id>9</session-id><confirm-event>start</confirm-event><timeout>600</timeout></netconf-confirmed-commit>"));
        let timeout = confirmed_commit(&by, ConfirmEvent::Timeout);
        assert!(!timeout.content().contains("username"));
    }

    #[test]
    fn prefixes_are_ncnames() {
        assert_eq!(
            prefix_for("urn:ietf:params:xml:ns:yang:ietf-interfaces", &[], &[]),
            "ietf-interfaces"
        );
        assert_eq!(prefix_for("http://example.com/2024/", &[], &[]), "n2024");
        assert_eq!(prefix_for("urn:xmlstuff", &[], &[]), "nxmlstuff");
        let taken = [("a".to_owned(), "urn:other:a".to_owned())];
        assert_eq!(prefix_for("urn:x:a", &taken, &[]), "a2");
    }
}
