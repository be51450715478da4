//! Small XML helpers shared by the envelope parser and the operation builders:
//! the NETCONF namespaces, escaping, and the well-formedness check for caller fragments.

use std::borrow::Cow;

use quick_xml::events::{BytesRef, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use crate::error::UsageError;

/// `urn:ietf:params:xml:ns:netconf:base:1.0`, the namespace of the envelope and the base operations.
pub const NS_BASE: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";
/// RFC 5277 notification envelope namespace.
pub const NS_NOTIFICATION: &str = "urn:ietf:params:xml:ns:netconf:notification:1.0";
/// RFC 6022 ietf-netconf-monitoring (get-schema).
pub const NS_MONITORING: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring";
/// RFC 8526 ietf-netconf-nmda (get-data, edit-data).
pub const NS_NMDA: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda";
/// RFC 8342 ietf-datastores (datastore identities).
pub const NS_DATASTORES: &str = "urn:ietf:params:xml:ns:yang:ietf-datastores";
/// RFC 6243 ietf-netconf-with-defaults.
pub const NS_WITH_DEFAULTS: &str = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults";
/// The reserved `xml:` prefix namespace (for `xml:lang`).
pub const NS_XML: &str = "http://www.w3.org/XML/1998/namespace";

/// Escapes `text` for use as element content.
pub fn escape_text(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// Escapes `text` for use inside a double-quoted attribute value.
pub fn escape_attr(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

fn escape(text: &str, attr: bool) -> Cow<'_, str> {
    let needs = |b: u8| {
        matches!(b, b'<' | b'>' | b'&') || (attr && matches!(b, b'"' | b'\r' | b'\n' | b'\t'))
    };
    let Some(first) = text.bytes().position(needs) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' if attr => out.push_str("&quot;"),
            '\r' if attr => out.push_str("&#13;"),
            '\n' if attr => out.push_str("&#10;"),
            '\t' if attr => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Checks that a caller-supplied XML fragment is well-formed enough to be embedded in an
/// `<rpc>`: balanced elements, matching end tags, every prefix declared inside the fragment,
/// no document type declaration, no XML declaration. Several top-level elements and
/// surrounding text are allowed (a `<config>` may hold many roots).
pub fn check_fragment(xml: &str) -> Result<(), UsageError> {
    let mut reader = NsReader::from_str(xml);
    let mut depth = 0usize;
    let bad = |reader: &NsReader<&[u8]>, what: String| {
        UsageError::MalformedXml(format!("{what} (at byte {})", reader.buffer_position()))
    };
    loop {
        let (ns, event) = match reader.read_resolved_event() {
            Ok(ev) => ev,
            Err(e) => return Err(bad(&reader, e.to_string())),
        };
        if let ResolveResult::Unknown(prefix) = &ns {
            let prefix = prefix.clone();
            return Err(bad(
                &reader,
                format!("undeclared namespace prefix {prefix:?}"),
            ));
        }
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                if let Some(Err(e)) = start.attributes().find(Result::is_err) {
                    return Err(bad(&reader, e.to_string()));
                }
                depth += usize::from(matches!(event, Event::Start(_)));
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::DocType(_) => {
                return Err(bad(
                    &reader,
                    "document type declarations are not allowed".into(),
                ))
            }
            Event::Decl(_) => {
                return Err(bad(
                    &reader,
                    "an XML declaration cannot appear inside an <rpc>".into(),
                ))
            }
            Event::GeneralRef(r) => {
                resolve_reference(&r).map_err(|what| bad(&reader, what))?;
            }
            // XML 1.0 section 2.4: `]]>` may not appear in character data. It matters here
            // more than anywhere: `]]>]]>` in a base:1.0 message ends it early.
            Event::Text(t) if t.contains("]]>") => {
                return Err(bad(
                    &reader,
                    "character data contains ]]> (write ]]&gt;)".into(),
                ))
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if depth != 0 {
        return Err(UsageError::MalformedXml(format!(
            "{depth} element(s) left open at the end"
        )));
    }
    Ok(())
}

/// Resolves a general reference (`&lt;`, `&#65;`). NETCONF forbids DTDs, so only the five
/// predefined entities and character references can ever be valid.
pub(crate) fn resolve_reference(r: &BytesRef<'_>) -> Result<char, String> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) => Ok(c),
            _ => Err(format!(
                "invalid character reference &{};",
                r.xml10_content()
            )),
        };
    }
    match &*r.xml10_content() {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        other => Err(format!("undeclared entity &{other};")),
    }
}

/// Writes `<name xmlns="ns">escaped text</name>`-style leaves without a `String` per call.
pub(crate) fn write_leaf(out: &mut impl std::fmt::Write, name: &str, text: &str) {
    let _ = write!(out, "<{name}>{}</{name}>", escape_text(text));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_only_what_must_be() {
        assert!(matches!(escape_text("plain"), Cow::Borrowed("plain")));
        assert_eq!(escape_text("a<b>&c\"d"), "a&lt;b&gt;&amp;c\"d");
        assert_eq!(escape_attr("a\"b\nc"), "a&quot;b&#10;c");
        assert_eq!(escape_text("héllo <ü>"), "héllo &lt;ü&gt;");
    }

    #[test]
    fn fragment_checks() {
        assert!(check_fragment("<a/><b x='1'>t &amp; &#65;</b>").is_ok());
        assert!(check_fragment("<p:a xmlns:p='urn:x'><p:b/></p:a>").is_ok());
        assert!(check_fragment("").is_ok());
        assert!(check_fragment("<a>]]&gt;]]&gt; ]] > <![CDATA[]]]]></a>").is_ok());
        for bad in [
            "<a>",
            "<a></b>",
            "</a>",
            "<p:a/>",
            "<!DOCTYPE a><a/>",
            "<a>&bogus;</a>",
            "<?xml version='1.0'?><a/>",
            "<a x='1' x='2'/>",
            // Issue 11 item 2: the base:1.0 delimiter as character data, bare or after CDATA.
            "<a>]]>]]></a>",
            "<a>]]></a>",
            "<a><![CDATA[x]]>]]></a>",
            "<a><![CDATA[]]>]]>]]></a>",
            "]]>",
        ] {
            assert!(
                matches!(check_fragment(bad), Err(UsageError::MalformedXml(_))),
                "{bad:?} accepted"
            );
        }
    }
}
