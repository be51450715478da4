//! The notification `serve` sends on each change of running: RFC 6470
//! `<netconf-config-change>`, with the edits found by comparing running before and after.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use netconf_proto::xml::{escape_attr, escape_text};

use crate::datastore::{key, same_node};
use crate::xmltree::Element;

/// The ietf-netconf-notifications namespace.
pub const NS_NOTIFICATIONS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications";

/// At most this many `<edit>` entries are listed.
const MAX_EDITS: usize = 32;

/// Who made a change.
#[derive(Debug, Clone)]
pub enum ChangedBy {
    /// The server itself (a confirmed commit timed out).
    Server,
    Session {
        username: String,
        session_id: u32,
        source_host: String,
    },
}

/// One changed node: the operation and the path as (namespace, step) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub operation: &'static str,
    pub path: Vec<(String, Element)>,
}

/// The current time as an RFC 3339 UTC date-time with milliseconds.
pub fn event_time() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// What changed from `old` to `new` (roots), at most [`MAX_EDITS`] entries.
pub fn diff(old: &Element, new: &Element) -> Vec<Change> {
    let mut out = Vec::new();
    diff_children(old, new, &mut Vec::new(), &mut out);
    out.truncate(MAX_EDITS);
    out
}

fn shallow(el: &Element) -> Element {
    let mut step = Element::new(&el.ns, &el.name);
    step.children.extend(key(el).cloned());
    step
}

fn diff_children(
    old: &Element,
    new: &Element,
    path: &mut Vec<(String, Element)>,
    out: &mut Vec<Change>,
) {
    for n in &new.children {
        path.push((n.ns.clone(), shallow(n)));
        match old.children.iter().find(|o| same_node(o, n)) {
            None => out.push(Change {
                operation: "create",
                path: path.clone(),
            }),
            Some(o) if o.is_leaf() || n.is_leaf() => {
                if o != n {
                    out.push(Change {
                        operation: "replace",
                        path: path.clone(),
                    });
                }
            }
            Some(o) => diff_children(o, n, path, out),
        }
        path.pop();
    }
    for o in &old.children {
        if !new.children.iter().any(|n| same_node(n, o)) {
            let mut p = path.clone();
            p.push((o.ns.clone(), shallow(o)));
            out.push(Change {
                operation: "delete",
                path: p,
            });
        }
    }
}

/// A prefix for a namespace: its last `:` or `/` segment made an NCName.
fn prefix_for(ns: &str, taken: &[(String, String)]) -> String {
    if let Some((p, _)) = taken.iter().find(|(_, u)| u == ns) {
        return p.clone();
    }
    if ns == crate::sample::NS && !taken.iter().any(|(p, _)| p == crate::sample::PREFIX) {
        return crate::sample::PREFIX.to_owned();
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
fn target_xml(path: &[(String, Element)]) -> String {
    let mut bindings: Vec<(String, String)> = Vec::new();
    let mut expr = String::new();
    let qualify = |ns: &str, name: &str, bindings: &mut Vec<(String, String)>| {
        if ns.is_empty() {
            return name.to_owned();
        }
        let p = prefix_for(ns, bindings);
        if !bindings.iter().any(|(q, _)| *q == p) {
            bindings.push((p.clone(), ns.to_owned()));
        }
        format!("{p}:{name}")
    };
    for (ns, step) in path {
        expr.push('/');
        expr.push_str(&qualify(ns, &step.name, &mut bindings));
        if let Some(k) = step.children.first() {
            let kname = qualify(&k.ns, &k.name, &mut bindings);
            let _ = write!(expr, "[{kname}='{}']", k.text.trim().replace('\'', ""));
        }
    }
    let mut out = String::from("<target");
    for (p, u) in &bindings {
        let _ = write!(out, " xmlns:{p}=\"{}\"", escape_attr(u));
    }
    let _ = write!(out, ">{}</target>", escape_text(&expr));
    out
}

/// The `<netconf-config-change>` notification content.
pub fn config_change(by: &ChangedBy, datastore: &str, changes: &[Change]) -> String {
    let mut out = format!("<netconf-config-change xmlns=\"{NS_NOTIFICATIONS}\"><changed-by>");
    match by {
        ChangedBy::Server => out.push_str("<server/>"),
        ChangedBy::Session {
            username,
            session_id,
            source_host,
        } => {
            let _ = write!(
                out,
                "<username>{}</username><session-id>{session_id}</session-id><source-host>{}</source-host>",
                escape_text(username),
                escape_text(source_host)
            );
        }
    }
    let _ = write!(out, "</changed-by><datastore>{datastore}</datastore>");
    for c in changes {
        let _ = write!(
            out,
            "<edit>{}<operation>{}</operation></edit>",
            target_xml(&c.path),
            c.operation
        );
    }
    out.push_str("</netconf-config-change>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmltree::parse;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        let t = event_time();
        assert_eq!(t.len(), "2024-01-01T00:00:00.000Z".len(), "{t}");
    }

    #[test]
    fn diff_lists_creates_replaces_and_deletes() {
        let old = parse(
            r#"<if xmlns="urn:x:demo"><i><name>a</name><mtu>1</mtu></i><i><name>b</name></i></if>"#,
            &[],
        )
        .unwrap();
        let new = parse(
            r#"<if xmlns="urn:x:demo"><i><name>a</name><mtu>2</mtu></i><i><name>c</name></i></if>"#,
            &[],
        )
        .unwrap();
        let changes = diff(&old, &new);
        let ops: Vec<_> = changes.iter().map(|c| c.operation).collect();
        assert_eq!(ops, ["replace", "create", "delete"]);
        let xml = config_change(
            &ChangedBy::Session {
                username: "admin".into(),
                session_id: 3,
                source_host: "127.0.0.1".into(),
            },
            "running",
            &changes,
        );
        assert!(
            xml.contains(r#"<target xmlns:demo="urn:x:demo">/demo:if/demo:i[demo:name='a']/demo:mtu</target><operation>replace</operation>"#),
            "{xml}"
        );
        netconf_proto::xml::check_fragment(&xml).unwrap();
    }

    #[test]
    fn prefixes_are_ncnames() {
        assert_eq!(
            prefix_for("urn:ietf:params:xml:ns:yang:ietf-interfaces", &[]),
            "ietf-interfaces"
        );
        assert_eq!(prefix_for("http://example.com/2024/", &[]), "n2024");
        assert_eq!(prefix_for("urn:xmlstuff", &[]), "nxmlstuff");
        let taken = [("a".to_owned(), "urn:other:a".to_owned())];
        assert_eq!(prefix_for("urn:x:a", &taken), "a2");
    }
}
