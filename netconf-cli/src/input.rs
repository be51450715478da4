//! Reading XML arguments (a file, `-` for stdin, or inline XML) and taking off an optional
//! wrapper element such as `<config>` or `<rpc>` while keeping its namespace declarations.

use std::io::Read;

use netconf_proto::xml::{escape_attr, NS_BASE};
use quick_xml::events::Event;
use quick_xml::Reader;

use crate::errors::CliError;

/// The XML given as `value` for `option`: inline when it starts with `<`, stdin for `-`,
/// else the file's content.
pub fn read_xml_arg(option: &str, value: &str) -> Result<String, CliError> {
    if value.trim_start().starts_with('<') {
        return Ok(value.to_owned());
    }
    if value == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::fatal(format!("cannot read {option} from stdin: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(value)
        .map_err(|e| CliError::fatal(format!("cannot read {option} {value}: {e}")))
}

/// The inside of a single top-level element named `name` in the base namespace (or in
/// none), with the namespace declarations it made (prefix "" for the default namespace).
#[derive(Debug, PartialEq, Eq)]
pub struct Unwrapped<'a> {
    pub declarations: Vec<(String, String)>,
    pub inner: &'a str,
}

/// Unwraps `<name>...</name>` if that is all `xml` holds (besides comments and an XML
/// declaration); `None` otherwise.
pub fn unwrap<'a>(xml: &'a str, name: &str) -> Option<Unwrapped<'a>> {
    let mut reader = Reader::from_str(xml);
    let (start, inner) = loop {
        match reader.read_event().ok()? {
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Text(t) if t.trim().is_empty() => {}
            Event::Start(s) if s.local_name().as_ref() == name => {
                let owned = s.into_owned();
                let span = reader.read_to_end(owned.name()).ok()?;
                let range = usize::try_from(span.start).ok()?..usize::try_from(span.end).ok()?;
                break (owned, xml.get(range)?);
            }
            Event::Empty(s) if s.local_name().as_ref() == name => {
                break (s.into_owned(), "");
            }
            _ => return None,
        }
    };
    loop {
        match reader.read_event().ok()? {
            Event::Eof => break,
            Event::Comment(_) | Event::PI(_) => {}
            Event::Text(t) if t.trim().is_empty() => {}
            _ => return None,
        }
    }
    let mut declarations = Vec::new();
    for attr in start.attributes() {
        let attr = attr.ok()?;
        let key = attr.key.as_ref();
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .ok()?
            .into_owned();
        if key == "xmlns" {
            declarations.push((String::new(), value));
        } else if let Some(p) = key.strip_prefix("xmlns:") {
            declarations.push((p.to_owned(), value));
        }
    }
    let prefix = start
        .name()
        .prefix()
        .map(|p| p.as_ref().to_owned())
        .unwrap_or_default();
    let ns = declarations
        .iter()
        .find(|(p, _)| *p == prefix)
        .map(|(_, u)| u.as_str());
    match (prefix.is_empty(), ns) {
        (_, Some(NS_BASE)) | (true, None) => Some(Unwrapped {
            declarations,
            inner,
        }),
        _ => None,
    }
}

/// Adds `declarations` to the first element of `xml` that it does not already make there,
/// so the element stands alone after its wrapper is gone.
pub fn inject_declarations(xml: &str, declarations: &[(String, String)]) -> String {
    let mut reader = Reader::from_str(xml);
    loop {
        let at = usize::try_from(reader.buffer_position()).unwrap_or(0);
        match reader.read_event() {
            Ok(Event::Start(s) | Event::Empty(s)) => {
                let present: Vec<String> = s
                    .attributes()
                    .filter_map(Result::ok)
                    .map(|a| a.key.as_ref().to_owned())
                    .collect();
                let mut extra = String::new();
                for (prefix, uri) in declarations {
                    let key = if prefix.is_empty() {
                        "xmlns".to_owned()
                    } else {
                        format!("xmlns:{prefix}")
                    };
                    if !present.contains(&key) {
                        extra.push_str(&format!(" {key}=\"{}\"", escape_attr(uri)));
                    }
                }
                // `at` is the '<' (text before it was its own event); the name follows.
                let name_end = at + 1 + s.name().as_ref().len();
                let mut out = String::with_capacity(xml.len() + extra.len());
                out.push_str(&xml[..name_end]);
                out.push_str(&extra);
                out.push_str(&xml[name_end..]);
                return out;
            }
            Ok(Event::Eof) | Err(_) => return xml.to_owned(),
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwraps_config_keeping_declarations() {
        let xml = format!(
            "<?xml version=\"1.0\"?>\n<config xmlns=\"{NS_BASE}\" xmlns:xc=\"{NS_BASE}\">\n  <a xmlns=\"urn:a\" xc:operation=\"delete\"/>\n</config>\n"
        );
        let u = unwrap(&xml, "config").unwrap();
        assert_eq!(
            u.inner.trim(),
            "<a xmlns=\"urn:a\" xc:operation=\"delete\"/>"
        );
        assert_eq!(
            u.declarations,
            [
                (String::new(), NS_BASE.to_owned()),
                ("xc".to_owned(), NS_BASE.to_owned())
            ]
        );
        assert!(unwrap("<config xmlns=\"urn:mine\"><a/></config>", "config").is_none());
        assert!(unwrap("<a/><b/>", "a").is_none());
        assert!(unwrap("<top xmlns='urn:x'/>", "config").is_none());
        assert_eq!(unwrap("<config/>", "config").unwrap().inner, "");
    }

    #[test]
    fn injects_missing_declarations() {
        let decls = [
            ("nc".to_owned(), NS_BASE.to_owned()),
            (String::new(), NS_BASE.to_owned()),
        ];
        assert_eq!(
            inject_declarations("  <get-config><source/></get-config>", &decls),
            format!(
                "  <get-config xmlns:nc=\"{NS_BASE}\" xmlns=\"{NS_BASE}\"><source/></get-config>"
            )
        );
        assert_eq!(
            inject_declarations("<x:op xmlns:x='urn:x' xmlns='urn:d'/>", &decls),
            format!("<x:op xmlns:nc=\"{NS_BASE}\" xmlns:x='urn:x' xmlns='urn:d'/>")
        );
    }
}
