//! Where operations write their XML: text built in place, large configuration kept as the
//! shared buffer it already is, so a 32 MB `<config>` is copied once on its way out (into
//! the framed message), not once per layer.

use std::fmt;

use bytes::Bytes;

/// Below this size a shared buffer is copied into the text: a part of its own costs more
/// than copying a small one.
pub(crate) const SHARE_AT: usize = 4096;

/// The XML of one operation element, as consecutive parts.
#[derive(Debug, Default)]
pub struct XmlWriter {
    parts: Vec<Bytes>,
    text: String,
}

impl XmlWriter {
    pub fn new() -> Self {
        XmlWriter::default()
    }

    /// A writer whose text goes into `text` (cleared), a buffer the caller reuses: see
    /// [`XmlWriter::into_text`].
    pub(crate) fn reusing(mut text: String) -> Self {
        text.clear();
        XmlWriter {
            parts: Vec::new(),
            text,
        }
    }

    /// All of the XML as text, when no shared part was written (a small request): no
    /// parts to allocate, and the buffer can be reused. Otherwise the writer, unchanged.
    pub(crate) fn into_text(self) -> Result<String, Self> {
        if self.parts.is_empty() {
            Ok(self.text)
        } else {
            Err(self)
        }
    }

    pub fn push_str(&mut self, s: &str) {
        self.text.push_str(s);
    }

    pub fn push(&mut self, c: char) {
        self.text.push(c);
    }

    /// Appends XML the caller already holds in a shared buffer, without copying it. The
    /// bytes must be UTF-8 XML that was checked when it was accepted (crate types only).
    pub(crate) fn push_shared(&mut self, xml: &Bytes) {
        if xml.len() < SHARE_AT {
            self.text
                .push_str(std::str::from_utf8(xml).unwrap_or_default());
            return;
        }
        self.flush_text();
        self.parts.push(xml.clone());
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum::<usize>() + self.text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes the last character of the text written since the last shared part.
    pub(crate) fn pop(&mut self) -> Option<char> {
        self.text.pop()
    }

    fn flush_text(&mut self) {
        if !self.text.is_empty() {
            self.parts
                .push(Bytes::from(std::mem::take(&mut self.text).into_bytes()));
        }
    }

    /// The XML as parts, in order.
    pub fn into_parts(mut self) -> Vec<Bytes> {
        self.flush_text();
        self.parts
    }

    /// The parts and the text after the last, for a body kept to be written again (see
    /// `RpcBody`): a small operation is then its text alone, one allocation. Text past
    /// [`SHARE_AT`] becomes a part, so that writing the body again shares it, not copies it.
    pub(crate) fn into_parts_and_tail(mut self) -> (Vec<Bytes>, String) {
        if self.text.len() >= SHARE_AT {
            self.flush_text();
        }
        (self.parts, self.text)
    }

    /// The XML as one string (copies every part).
    pub fn into_string(mut self) -> String {
        if self.parts.is_empty() {
            return self.text;
        }
        self.flush_text();
        let mut out = String::with_capacity(self.parts.iter().map(Bytes::len).sum());
        for part in &self.parts {
            out.push_str(std::str::from_utf8(part).unwrap_or_default());
        }
        out
    }
}

impl PartialEq<&str> for XmlWriter {
    fn eq(&self, other: &&str) -> bool {
        let mut rest = other.as_bytes();
        for part in self
            .parts
            .iter()
            .map(|p| &p[..])
            .chain([self.text.as_bytes()])
        {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        rest.is_empty()
    }
}

impl fmt::Write for XmlWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.text.push_str(s);
        Ok(())
    }
}
