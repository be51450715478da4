//! Raw XML payloads: the parts of a message the core does not interpret.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

/// A slice of a received message holding raw XML (the content of `<data>`, an rpc's
/// operation element, a notification's content, an `<error-info>`).
///
/// It shares the message's buffer (no copy) and is guaranteed valid UTF-8. Namespace
/// declarations made by its ancestors in the envelope are kept in
/// [`namespaces`](Self::namespaces), because a prefix used inside may be declared outside;
/// payloads from the same scope share one snapshot of them.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct XmlPayload {
    xml: Bytes,
    namespaces: Arc<[NamespaceBinding]>,
}

/// One in-scope `xmlns` / `xmlns:prefix` declaration; `prefix` is empty for the default namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceBinding {
    pub prefix: String,
    pub uri: String,
}

impl XmlPayload {
    pub(crate) fn new(xml: Bytes, namespaces: Arc<[NamespaceBinding]>) -> Self {
        debug_assert!(std::str::from_utf8(&xml).is_ok());
        XmlPayload { xml, namespaces }
    }

    /// A payload of the caller's own XML, with no namespaces in scope from outside.
    pub(crate) fn detached(xml: Bytes) -> Self {
        XmlPayload::new(xml, Arc::from(Vec::new()))
    }

    /// The raw XML bytes, a zero-copy slice of the received message.
    pub fn bytes(&self) -> &Bytes {
        &self.xml
    }

    /// The raw XML as text. The whole message was checked to be UTF-8 on arrival.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.xml).unwrap_or_default()
    }

    /// Namespace declarations in scope at the payload, from its enclosing elements.
    pub fn namespaces(&self) -> &[NamespaceBinding] {
        &self.namespaces
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.xml.len()
    }

    pub fn is_empty(&self) -> bool {
        self.xml.is_empty()
    }

    /// The character data of a text-only payload, unescaped (e.g. the YANG source in a
    /// get-schema reply). Fails if the payload contains elements.
    pub fn text(&self) -> Result<String, crate::UsageError> {
        use quick_xml::events::Event;
        // quick-xml would take a leading U+FEFF for a byte-order mark and drop it; here it is
        // content. All of them: with one taken off, the next would lead.
        let text = self.as_str();
        let rest = text.trim_start_matches('\u{feff}');
        let mut reader = quick_xml::Reader::from_str(rest);
        let mut out = String::with_capacity(self.len());
        out.push_str(&text[..text.len() - rest.len()]);
        loop {
            let bad = |what: String| crate::UsageError::MalformedXml(what);
            match reader.read_event().map_err(|e| bad(e.to_string()))? {
                Event::Text(t) => out.push_str(&t.xml10_content()),
                Event::CData(c) => out.push_str(&c.xml10_content()),
                Event::GeneralRef(r) => out.push(crate::xml::resolve_reference(&r).map_err(bad)?),
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => return Ok(out),
                _ => return Err(bad("the payload holds elements, not just text".into())),
            }
        }
    }

    /// The text of the first element named `local_name` (any namespace, any depth), for the
    /// simple lookups a server does on a request (`<session-id>` of kill-session, say).
    pub fn child_text(&self, local_name: &str) -> Option<String> {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(self.as_str());
        loop {
            match reader.read_event().ok()? {
                Event::Start(s) if s.local_name().into_inner() == local_name => {
                    let end = s.name().0.to_owned();
                    let mut out = String::new();
                    loop {
                        match reader.read_event().ok()? {
                            Event::Text(t) => out.push_str(&t.xml10_content()),
                            Event::CData(c) => out.push_str(&c.xml10_content()),
                            Event::GeneralRef(r) => {
                                out.push(crate::xml::resolve_reference(&r).ok()?)
                            }
                            Event::End(e) if e.name().0 == end => return Some(out),
                            Event::Eof => return None,
                            _ => {}
                        }
                    }
                }
                Event::Empty(s) if s.local_name().into_inner() == local_name => {
                    return Some(String::new())
                }
                Event::Eof => return None,
                _ => {}
            }
        }
    }

    /// True when only whitespace is inside.
    pub fn is_blank(&self) -> bool {
        self.as_str().trim().is_empty()
    }
}

impl fmt::Debug for XmlPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 256;
        let s = self.as_str();
        let mut end = s.len().min(SHOWN);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut d = f.debug_struct("XmlPayload");
        d.field("len", &s.len()).field("xml", &&s[..end]);
        if !self.namespaces.is_empty() {
            d.field("namespaces", &self.namespaces);
        }
        d.finish()
    }
}

impl fmt::Display for XmlPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(xml: &str) -> XmlPayload {
        XmlPayload::new(Bytes::copy_from_slice(xml.as_bytes()), Arc::from([]))
    }

    /// U+FEFF is content wherever it stands. quick-xml drops one at the start of its input as
    /// a byte-order mark; with the first set aside, a second one was dropped that way (found
    /// by the `roundtrip` fuzz target: "\u{feff}\u{feff}" came back as "\u{feff}").
    #[test]
    fn leading_zero_width_no_break_spaces_are_text() {
        for text in [
            "\u{feff}",
            "\u{feff}\u{feff}",
            "\u{feff}\u{feff}\u{feff}a&amp;\u{feff}",
        ] {
            let expected = text.replace("&amp;", "&");
            assert_eq!(payload(text).text().unwrap(), expected);
        }
    }
}
