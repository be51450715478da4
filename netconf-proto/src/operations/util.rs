//! Small helpers shared by the builders: name checks and element writing.

use crate::operations::XmlWriter;

use crate::error::UsageError;
use crate::xml::{escape_attr, NS_XML};

/// The namespace bound to `xmlns` itself; no prefix may be bound to it.
const NS_XMLNS: &str = "http://www.w3.org/2000/xmlns/";

/// Whether `s` is an XML `NCName` (a Name without colons, Namespaces in XML 1.0 section 3).
/// Prefixes and YANG identifiers must be one, or the element they end up in is malformed.
pub(crate) fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

/// XML 1.0 (fifth edition) production `NameStartChar`, minus `:`.
fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0 (fifth edition) production `NameChar`, minus `:`.
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c,
            '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// Checks a `xmlns:prefix="uri"` declaration the caller asked for, so the element it lands on
/// stays namespace-well-formed (Namespaces in XML 1.0 sections 3 and 5).
pub(crate) fn check_namespace(prefix: &str, uri: &str) -> Result<(), UsageError> {
    let why = if !is_ncname(prefix) {
        format!("{prefix:?} is not an XML NCName")
    } else if prefix == "xml" || prefix == "xmlns" {
        format!("the prefix {prefix:?} is reserved and cannot be declared")
    } else if uri.is_empty() {
        format!("the prefix {prefix:?} cannot be bound to an empty namespace")
    } else if uri == NS_XML || uri == NS_XMLNS {
        format!("{uri:?} is reserved and cannot be bound to {prefix:?}")
    } else {
        return Ok(());
    };
    Err(UsageError::InvalidValue {
        what: "namespace prefix",
        why,
    })
}

/// Adds a checked binding to `bindings`; declaring the same prefix twice would be a duplicate
/// attribute, so a conflicting rebinding is refused (the same binding again is a no-op).
pub(crate) fn add_namespace(
    bindings: &mut Vec<(String, String)>,
    prefix: String,
    uri: String,
) -> Result<(), UsageError> {
    check_namespace(&prefix, &uri)?;
    match bindings.iter().find(|(p, _)| *p == prefix) {
        Some((_, bound)) if *bound == uri => Ok(()),
        Some((_, bound)) => Err(UsageError::InvalidValue {
            what: "namespace prefix",
            why: format!("{prefix:?} is already bound to {bound:?}"),
        }),
        None => {
            bindings.push((prefix, uri));
            Ok(())
        }
    }
}

/// Writes ` xmlns:p="uri"` for each binding.
pub(crate) fn write_namespaces(out: &mut XmlWriter, bindings: &[(String, String)]) {
    for (prefix, uri) in bindings {
        out.push_str(" xmlns:");
        out.push_str(prefix);
        out.push_str("=\"");
        out.push_str(&escape_attr(uri));
        out.push('"');
    }
}

/// Writes `<head>children</name>`, or `<head/>` when `children` writes nothing, where `head`
/// is the element name plus any attributes (already escaped).
pub(crate) fn element(out: &mut XmlWriter, head: &str, children: impl FnOnce(&mut XmlWriter)) {
    out.push('<');
    out.push_str(head);
    out.push('>');
    let mark = out.len();
    children(out);
    if out.len() == mark {
        out.pop();
        out.push_str("/>");
    } else {
        let name = head.split(' ').next().unwrap_or(head);
        out.push_str("</");
        out.push_str(name);
        out.push('>');
    }
}

/// Writes `<name/>`, the encoding of a YANG `empty` leaf or a flag.
pub(crate) fn empty(out: &mut XmlWriter, name: &str) {
    out.push('<');
    out.push_str(name);
    out.push_str("/>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ncnames() {
        for good in ["a", "_x", "t", "if", "a-b.c_1", "é", "ns\u{B7}x"] {
            assert!(is_ncname(good), "{good:?}");
        }
        for bad in ["", "1a", "-a", ".a", "a:b", "a b", "a>", "a\"", "a=b"] {
            assert!(!is_ncname(bad), "{bad:?}");
        }
    }

    #[test]
    fn namespace_checks() {
        assert!(check_namespace("t", "urn:x").is_ok());
        for (p, u) in [
            ("", "urn:x"),
            ("a:b", "urn:x"),
            ("1x", "urn:x"),
            ("xmlns", "urn:x"),
            ("xml", NS_XML),
            ("t", ""),
            ("t", NS_XML),
            ("t", NS_XMLNS),
        ] {
            assert!(
                matches!(check_namespace(p, u), Err(UsageError::InvalidValue { .. })),
                "{p:?} {u:?}"
            );
        }
        let mut b = Vec::new();
        add_namespace(&mut b, "t".into(), "urn:x".into()).unwrap();
        add_namespace(&mut b, "t".into(), "urn:x".into()).unwrap();
        assert!(add_namespace(&mut b, "t".into(), "urn:y".into()).is_err());
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn element_collapses_when_empty() {
        let mut out = XmlWriter::new();
        element(&mut out, "get", |_| {});
        element(&mut out, "a x=\"1\"", |o| o.push_str("<b/>"));
        assert_eq!(out, "<get/><a x=\"1\"><b/></a>");
    }
}
