//! Indents XML for people (`--format pretty`), keeping every piece of text content intact.
//!
//! Markup is re-indented with quick-xml's writer; whitespace-only text between elements is
//! layout and is replaced, but text next to other text (mixed content, a leaf holding only
//! spaces, text around `&amp;`) is written exactly as received.

use quick_xml::events::{BytesText, Event};
use quick_xml::{Reader, Writer};

/// The indented form of `xml`, or `None` when it is not well-formed enough to re-indent.
pub fn indent(xml: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Whitespace seen after markup, held until we know whether it is layout.
    let mut held: Option<BytesText<'_>> = None;
    let mut prev_start = false;
    let mut held_after_start = false;
    let mut prev_textual = false;
    let mut depth = 0usize;
    loop {
        let event = reader.read_event().ok()?;
        match event {
            Event::Eof => break,
            Event::Text(t) if t.trim().is_empty() => {
                if prev_textual {
                    writer.write_event(Event::Text(t)).ok()?;
                } else {
                    held_after_start = prev_start;
                    held = Some(t);
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
                writer.write_event(Event::Text(ws)).ok()?;
            }
        }
        prev_start = matches!(event, Event::Start(_));
        prev_textual = textual;
        match event {
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.checked_sub(1)?,
            _ => {}
        }
        let event = match event {
            // The writer would line-break around a reference; written as text it does not.
            Event::GeneralRef(r) => {
                Event::Text(BytesText::from_escaped(format!("&{};", r.xml10_content())))
            }
            other => other,
        };
        writer.write_event(event).ok()?;
    }
    if depth != 0 {
        return None;
    }
    let mut out = String::from_utf8(writer.into_inner()).ok()?;
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    Some(out)
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
