//! A fast path for the attributes of an envelope's start tag.
//!
//! Every message's root carries a few attributes (`message-id`, `xmlns`), read twice: once
//! for its namespace declarations, once for the message-id and to check what a server
//! echoes back. quick-xml's attribute iterator cost more than the rest of parsing a small
//! message. Envelope attributes are nearly always *plain*: short ASCII names, quoted values
//! without references, tabs or line breaks. For those, the value quick-xml would give (raw
//! or normalized) is the text between the quotes, so a scan of the bytes is exact. Anything
//! else is left to quick-xml, which also names what is wrong.

/// At most this many plain attributes are read on the fast path; a tag with more goes to
/// quick-xml.
pub(super) const FEW: usize = 4;

/// The attributes of one start tag, all plain, in document order, no name twice.
pub(super) struct PlainAttributes<'a> {
    attributes: [(&'a str, &'a str); FEW],
    len: usize,
}

impl<'a> PlainAttributes<'a> {
    /// Reads `raw` (a start tag's text after its name, as quick-xml's `attributes_raw`
    /// gives it) if every attribute in it is plain; `None` otherwise.
    #[inline]
    pub(super) fn read(raw: &'a str) -> Option<Self> {
        match Self::scan(raw, false)? {
            (attributes, Ending::Input) => Some(attributes),
            _ => None,
        }
    }

    /// Reads the rest of a start tag, `raw` being what follows its name, if every
    /// attribute is plain: the attributes, how long their text is (quick-xml's
    /// `attributes_raw`), and whether the tag is empty (`/>`).
    #[inline]
    pub(super) fn read_tag(raw: &'a str) -> Option<(Self, usize, bool)> {
        match Self::scan(raw, true)? {
            (attributes, Ending::Tag { at, empty }) => Some((attributes, at, empty)),
            _ => None,
        }
    }

    /// Scans to the end of `raw`, or in a tag to its `>` or `/>`.
    #[inline(always)]
    fn scan(raw: &'a str, in_tag: bool) -> Option<(Self, Ending)> {
        let bytes = raw.as_bytes();
        let mut out = PlainAttributes {
            attributes: [("", ""); FEW],
            len: 0,
        };
        let mut at = 0;
        loop {
            let before_space = at;
            at = skip_space(bytes, at);
            match bytes.get(at) {
                None if !in_tag => return Some((out, Ending::Input)),
                Some(b'>') if in_tag => return Some((out, Ending::Tag { at, empty: false })),
                Some(b'/') if in_tag && bytes.get(at + 1) == Some(&b'>') => {
                    return Some((out, Ending::Tag { at, empty: true }))
                }
                None => return None,
                Some(_) => {}
            }
            // Attributes are separated from the name and from each other by whitespace.
            if at == before_space || out.len == FEW || !is_name_start(bytes[at]) {
                return None;
            }
            let name_start = at;
            at += 1;
            while at < bytes.len() && is_name_char(bytes[at]) {
                at += 1;
            }
            let name = &raw[name_start..at];
            at = skip_space(bytes, at);
            if bytes.get(at) != Some(&b'=') {
                return None;
            }
            at = skip_space(bytes, at + 1);
            let quote = *bytes.get(at).filter(|q| matches!(q, b'"' | b'\''))?;
            let value_start = at + 1;
            let value_len = value_len(&bytes[value_start..], quote)?;
            at = value_start + value_len + 1;
            if out.attributes[..out.len]
                .iter()
                .any(|(seen, _)| *seen == name)
            {
                return None;
            }
            // The quotes are ASCII, so both ends are on character boundaries.
            out.attributes[out.len] = (name, &raw[value_start..value_start + value_len]);
            out.len += 1;
        }
    }

    /// The `(name, value)` pairs.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.attributes[..self.len].iter().copied()
    }

    /// The value of the attribute named `name`.
    pub(super) fn get(&self, name: &str) -> Option<&'a str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// The length of a value up to its closing `quote`, if nothing in it is what normalization
/// would change (a reference, a tab or line break) or what makes an attribute malformed (`<`).
fn value_len(rest: &[u8], quote: u8) -> Option<usize> {
    // Nearly every root declares the base namespace: one comparison instead of a scan.
    let base = crate::xml::NS_BASE.as_bytes();
    if rest.get(base.len()) == Some(&quote) && rest.starts_with(base) {
        return Some(base.len());
    }
    let mut at = 0;
    loop {
        let b = *rest.get(at)?;
        if CLASS[usize::from(b)] & STOPS_VALUE != 0 {
            if b == quote {
                return Some(at);
            }
            if !matches!(b, b'"' | b'\'') {
                return None;
            }
        }
        at += 1;
    }
}

/// Where a scan stopped.
enum Ending {
    /// At the end of the text.
    Input,
    /// At a tag's `>`, or at the `/` of its `/>`.
    Tag { at: usize, empty: bool },
}

/// Where the XML whitespace from `at` ends.
pub(super) fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && CLASS[usize::from(bytes[at])] & SPACE != 0 {
        at += 1;
    }
    at
}

pub(super) fn is_name_start(b: u8) -> bool {
    CLASS[usize::from(b)] & NAME_START != 0
}

pub(super) fn is_name_char(b: u8) -> bool {
    CLASS[usize::from(b)] & NAME != 0
}

const SPACE: u8 = 1;
/// The fast path's names are ASCII: a letter, `_` or `:`, then letters, digits, `_`, `:`,
/// `.` or `-`.
const NAME_START: u8 = 2;
const NAME: u8 = 4;
const STOPS_VALUE: u8 = 8;

/// Each byte's classes, looked up once per byte (a call to `memchr` costs more than a
/// short value's scan).
const CLASS: [u8; 256] = {
    let mut class = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            class[b] |= SPACE;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            class[b] |= NAME_START | NAME;
        }
        if c.is_ascii_digit() || c == b'.' || c == b'-' {
            class[b] |= NAME;
        }
        if matches!(c, b'"' | b'\'' | b'<' | b'&' | b'\t' | b'\r' | b'\n') {
            class[b] |= STOPS_VALUE;
        }
        b += 1;
    }
    class
};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use quick_xml::events::{BytesStart, Event};
    use quick_xml::{Reader, XmlVersion};

    fn read(raw: &str) -> Option<Vec<(&str, &str)>> {
        PlainAttributes::read(raw).map(|a| a.iter().collect())
    }

    #[test]
    fn reads_an_envelope() {
        assert_eq!(
            read(r#" message-id="101" xmlns="urn:x"  xmlns:nc='urn:y'"#),
            Some(vec![
                ("message-id", "101"),
                ("xmlns", "urn:x"),
                ("xmlns:nc", "urn:y")
            ])
        );
        assert_eq!(read(""), Some(vec![]));
        assert_eq!(read("  \r\n\t"), Some(vec![]));
        assert_eq!(read(" a = \"1>2\""), Some(vec![("a", "1>2")]));
        // The base namespace's shortcut, and values that only start like it.
        let base = crate::xml::NS_BASE;
        assert_eq!(
            read(&format!(" xmlns='{base}'")),
            Some(vec![("xmlns", base)])
        );
        let longer = format!("{base}x");
        assert_eq!(
            read(&format!(" a='{longer}'")),
            Some(vec![("a", &longer[..])])
        );
        let quoted = format!("{base}\"");
        assert_eq!(
            read(&format!(" a='{quoted}'")),
            Some(vec![("a", &quoted[..])])
        );
        assert_eq!(read(&format!(" a='{base}")), None);
        assert_eq!(read(&format!(" a='{base}&amp;'")), None);
    }

    #[test]
    fn leaves_anything_else_to_quick_xml() {
        for raw in [
            r#" a="1" a="2""#,
            r#" a="1"b="2""#,
            r#"a="1""#,
            r#" a="&amp;""#,
            " a=\"x\ty\"",
            " a=\"x\ny\"",
            r#" a="<""#,
            r#" a=1"#,
            r#" a="1"#,
            r#" a"#,
            r#" a="1' "#,
            r#" -a="1""#,
            r#" é="1""#,
            r#" a="1" b="2" c="3" d="4" e="5" f="6" g="7" h="8" i="9""#,
        ] {
            assert_eq!(read(raw), None, "{raw:?}");
        }
    }

    /// The start tag `<e{raw}>` as quick-xml reads it: its attributes, checked and
    /// normalized, or `None` if quick-xml finds any of them malformed.
    fn quick_xml_attributes(raw: &str) -> Option<Vec<(String, String)>> {
        let text = format!("<e{raw}>");
        let mut reader = Reader::from_str(&text);
        let Ok(Event::Start(start)) = reader.read_event() else {
            return None;
        };
        let start: BytesStart<'_> = start;
        let mut out = Vec::new();
        for attr in start.attributes() {
            let attr = attr.ok()?;
            let value = attr.normalized_value(XmlVersion::Implicit1_0).ok()?;
            out.push((attr.key.0.to_owned(), value.into_owned()));
        }
        Some(out)
    }

    /// One attribute, mostly well-formed: the separator, name, `=` and quotes go wrong
    /// now and then, and the value holds what the fast path must refuse.
    fn attribute() -> impl Strategy<Value = String> {
        (
            prop_oneof![9 => "[ \t\n]{1,2}", 1 => Just(String::new())],
            prop_oneof![
                4 => "[a-c_:][a-c:_.-]{0,2}",
                1 => "[a-cx:_é-]{1,3}",
                2 => "xmlns(:[a-c]{0,2})?",
                2 => Just("message-id".to_owned()),
            ],
            prop_oneof![6 => Just("="), 2 => Just(" = "), 1 => Just(""), 1 => Just("=\n")],
            prop_oneof![Just('"'), Just('\'')],
            prop_oneof![
                6 => "[a-z0-9:./ >]{0,8}",
                1 => "[a-b1 <&;>é\t]{0,4}",
                1 => Just("&amp;".to_owned()),
            ],
            prop_oneof![9 => Just(true), 1 => Just(false)],
        )
            .prop_map(|(space, name, eq, quote, value, closed)| {
                let close = if closed {
                    quote.to_string()
                } else {
                    String::new()
                };
                format!("{space}{name}{eq}{quote}{value}{close}")
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]
        /// Whatever the fast path reads, quick-xml reads the same: the same names and
        /// values, in order, and no error.
        #[test]
        fn agrees_with_quick_xml(
            attributes in proptest::collection::vec(attribute(), 0..5),
            tail in "[ \n]?",
        ) {
            let raw = attributes.concat() + &tail;
            if let Some(plain) = read(&raw) {
                let theirs = quick_xml_attributes(&raw);
                let ours: Vec<(String, String)> = plain
                    .into_iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect();
                prop_assert_eq!(Some(ours), theirs, "{:?}", raw);
            }
        }
    }
}
