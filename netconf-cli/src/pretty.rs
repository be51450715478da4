//! Indents XML for people (`--format pretty`), keeping every piece of text content intact.
//!
//! Markup is re-indented with quick-xml's writer; whitespace-only text between elements is
//! layout and is replaced, but text next to other text (mixed content, a leaf holding only
//! spaces, text around `&amp;`) is written exactly as received.
//!
//! [`indent_to`] works as the XML streams in: it holds one event (a tag, or one run of
//! text) at a time, whatever the size of the document, so a streamed reply is indented in
//! bounded memory.

use std::io::{self, BufRead, Write};

use quick_xml::events::{BytesText, Event};
use quick_xml::{Reader, Writer};

/// Why [`indent_to`] stopped.
#[derive(Debug)]
pub enum IndentError {
    /// Reading the input failed.
    Read(io::Error),
    /// Writing the output failed.
    Write(io::Error),
    /// The input is not well-formed XML: what is wrong, and the byte offset where.
    NotWellFormed { what: String, offset: u64 },
}

/// Writes the bytes through and remembers the last one (for the final newline).
struct Tail<W> {
    inner: W,
    last: Option<u8>,
}

impl<W: Write> Write for Tail<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if n > 0 {
            self.last = Some(buf[n - 1]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Indents the XML read from `input` into `output` as it arrives, ending with a newline
/// when anything was written. Output already written stays written when it fails.
pub fn indent_to<R: BufRead, W: Write>(input: R, output: W) -> Result<(), IndentError> {
    let mut reader = Reader::from_reader(input);
    let mut writer = Writer::new_with_indent(
        Tail {
            inner: output,
            last: None,
        },
        b' ',
        2,
    );
    let mut buf = Vec::new();
    // Whitespace seen after markup, held until we know whether it is layout.
    let mut held: Option<BytesText<'static>> = None;
    let mut prev_start = false;
    let mut held_after_start = false;
    let mut prev_textual = false;
    let mut depth = 0usize;
    loop {
        buf.clear();
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(quick_xml::Error::Io(e)) => {
                let e = std::sync::Arc::try_unwrap(e)
                    .unwrap_or_else(|shared| io::Error::new(shared.kind(), shared.to_string()));
                return Err(IndentError::Read(e));
            }
            Err(e) => {
                return Err(IndentError::NotWellFormed {
                    what: e.to_string(),
                    offset: reader.error_position(),
                })
            }
        };
        match event {
            Event::Eof => break,
            Event::Text(t) if t.trim().is_empty() => {
                if prev_textual {
                    write(&mut writer, Event::Text(t))?;
                } else {
                    held_after_start = prev_start;
                    held = Some(t.into_owned());
                }
                prev_start = false;
                continue;
            }
            _ => {}
        }
        let textual = matches!(
            event,
            Event::Text(_) | Event::GeneralRef(_) | Event::CData(_)
        );
        if let Some(ws) = held.take() {
            let leaf_content = matches!(event, Event::End(_)) && held_after_start;
            if textual || leaf_content {
                write(&mut writer, Event::Text(ws))?;
            }
        }
        prev_start = matches!(event, Event::Start(_));
        prev_textual = textual;
        match event {
            Event::Start(_) => depth += 1,
            Event::End(_) => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| IndentError::NotWellFormed {
                        what: "an end tag without its start tag".into(),
                        offset: reader.buffer_position(),
                    })?
            }
            _ => {}
        }
        let event = match event {
            // The writer would line-break around a reference; written as text it does not.
            Event::GeneralRef(r) => {
                Event::Text(BytesText::from_escaped(format!("&{};", r.xml10_content())))
            }
            other => other,
        };
        write(&mut writer, event)?;
    }
    if depth != 0 {
        return Err(IndentError::NotWellFormed {
            what: format!("the XML ends inside {depth} open element(s)"),
            offset: reader.buffer_position(),
        });
    }
    let mut out = writer.into_inner();
    if out.last.is_some_and(|b| b != b'\n') {
        out.write_all(b"\n").map_err(IndentError::Write)?;
    }
    out.flush().map_err(IndentError::Write)
}

fn write<W: Write>(writer: &mut Writer<W>, event: Event<'_>) -> Result<(), IndentError> {
    writer.write_event(event).map_err(IndentError::Write)
}

/// The indented form of `xml`, or `None` when it is not well-formed enough to re-indent.
pub fn indent(xml: &str) -> Option<String> {
    let mut out = Vec::new();
    indent_to(xml.as_bytes(), &mut out).ok()?;
    String::from_utf8(out).ok()
}

/// `indent(xml)`, or `xml` unchanged (with a final newline) when it cannot be indented.
pub fn indent_or_raw(xml: &str) -> String {
    indent(xml).unwrap_or_else(|| {
        let mut s = xml.trim_end().to_owned();
        if !s.is_empty() {
            s.push('\n');
        }
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_nested_elements() {
        let got = indent(r#"<a xmlns="urn:a"><b><c>1</c><d/></b><e>x</e></a>"#).unwrap();
        assert_eq!(
            got,
            "<a xmlns=\"urn:a\">\n  <b>\n    <c>1</c>\n    <d/>\n  </b>\n  <e>x</e>\n</a>\n"
        );
    }

    #[test]
    fn replaces_layout_whitespace() {
        let got = indent("<a>\n\t\t<b>1</b>\n   </a>").unwrap();
        assert_eq!(got, "<a>\n  <b>1</b>\n</a>\n");
    }

    #[test]
    fn keeps_text_intact() {
        let got = indent("<a><b>  x &amp; y  </b><c> </c><d>1 &lt; 2</d></a>").unwrap();
        assert_eq!(
            got,
            "<a>\n  <b>  x &amp; y  </b>\n  <c> </c>\n  <d>1 &lt; 2</d>\n</a>\n"
        );
        let got = indent("<p>one <i>two</i> three</p>").unwrap();
        assert!(got.contains("one <i>two</i> three"), "{got}");
        let got = indent("<a><![CDATA[<raw> ]]></a>").unwrap();
        assert_eq!(got, "<a><![CDATA[<raw> ]]></a>\n");
    }

    #[test]
    fn several_roots_and_broken_input() {
        assert_eq!(indent("<a/><b/>").unwrap(), "<a/>\n<b/>\n");
        assert_eq!(indent("").unwrap(), "");
        assert!(indent("<a><b></a>").is_none());
        assert_eq!(indent_or_raw("<a>"), "<a>\n");
    }
}
