//! Test helper: compares rendered operations with RFC examples, ignoring only the whitespace
//! that layout adds (indentation between elements, line breaks inside tags, padding of text).

use super::{render, Operation};

/// Collapses whitespace inside tags to single spaces (none around `=`, `/` or `>`), drops
/// whitespace-only text between elements and trims the rest.
pub(crate) fn normalize(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut text = String::new();
    let mut chars = xml.chars();
    while let Some(c) = chars.next() {
        if c != '<' {
            text.push(c);
            continue;
        }
        out.push_str(text.trim());
        text.clear();
        out.push('<');
        let mut quote = None;
        let mut space = false;
        for c in chars.by_ref() {
            if let Some(q) = quote {
                out.push(c);
                if c == q {
                    quote = None;
                }
                continue;
            }
            match c {
                c if c.is_whitespace() => space = true,
                '=' | '/' | '>' => {
                    space = false;
                    out.push(c);
                    if c == '>' {
                        break;
                    }
                }
                c => {
                    if space && !out.ends_with('=') {
                        out.push(' ');
                    }
                    space = false;
                    if c == '"' || c == '\'' {
                        quote = Some(c);
                    }
                    out.push(c);
                }
            }
        }
    }
    out.push_str(text.trim());
    out
}

/// Asserts that `op` renders to `expected` up to layout whitespace, and that what it renders
/// is a well-formed fragment.
#[track_caller]
pub(crate) fn assert_renders(op: &dyn Operation, expected: &str) {
    let got = render(op);
    assert_eq!(normalize(&got), normalize(expected), "\nrendered: {got}");
    crate::xml::check_fragment(&got).expect("rendered operation is not well-formed");
}

#[test]
fn normalize_ignores_layout_only() {
    assert_eq!(
        normalize("<a\n   x = \"1  2\"\n   y='3' >\n  <b />\n  <c>  t  u </c>\n</a >"),
        "<a x=\"1  2\" y='3'><b/><c>t  u</c></a>"
    );
}
