//! A small owned XML tree for the `serve` datastore and for reading requests.
//!
//! Elements keep their resolved namespace and local name (never a prefix), their attributes
//! (namespace-resolved, `xmlns` declarations excluded), the prefixed namespace declarations
//! they made in the source (so prefixes used inside text values, such as YANG identityrefs,
//! stay declared when written back), their child elements and their text. Whitespace-only
//! text that contains a line break is layout and is dropped; other text is kept as is.

use std::fmt::Write as _;

use netconf_proto::xml::{escape_attr, escape_text};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// One element. The tree's root is a nameless element whose children are the top-level elements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// The namespace URI ("" when unqualified).
    pub ns: String,
    pub name: String,
    pub attrs: Vec<Attr>,
    /// `xmlns:prefix="uri"` declarations made on this element in the source.
    pub prefixes: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

/// An attribute with its namespace resolved ("" when unqualified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub ns: String,
    pub name: String,
    pub value: String,
}

impl Element {
    pub fn new(ns: &str, name: &str) -> Self {
        Element {
            ns: ns.to_owned(),
            name: name.to_owned(),
            ..Element::default()
        }
    }

    /// A leaf: an element with text and no children.
    pub fn leaf(ns: &str, name: &str, text: &str) -> Self {
        Element {
            text: text.to_owned(),
            ..Element::new(ns, name)
        }
    }

    /// The root of an empty tree.
    pub fn root() -> Self {
        Element::default()
    }

    pub fn with_child(mut self, child: Element) -> Self {
        self.children.push(child);
        self
    }

    /// True when the element has no child elements.
    pub fn is_leaf(&self) -> bool {
        self.children.is_empty()
    }

    /// The first child with this local name, in any namespace.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The trimmed text of the first child with this local name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// The value of the attribute `name` in namespace `ns`.
    pub fn attr(&self, ns: &str, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns == ns && a.name == name)
            .map(|a| a.value.as_str())
    }

    /// The element (and its subtree) as XML; namespaces are declared where they change.
    #[cfg(test)]
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        write_element(self, &mut out, &mut Scope::default());
        out
    }

    /// The children as XML (for the root: the whole document content).
    pub fn children_xml(&self) -> String {
        let mut out = String::new();
        let mut scope = Scope::default();
        for child in &self.children {
            write_element(child, &mut out, &mut scope);
        }
        out
    }
}

/// Parses an XML fragment (any number of top-level elements) into a root element.
///
/// `scope` holds namespace declarations in force around the fragment (prefix "" is the
/// default namespace), for payloads cut out of a larger message.
pub fn parse(xml: &str, scope: &[(String, String)]) -> Result<Element, String> {
    let wrapped;
    let mut input = xml;
    if !scope.is_empty() {
        let mut head = String::from("<scope");
        for (prefix, uri) in scope {
            if prefix.is_empty() {
                let _ = write!(head, " xmlns=\"{}\"", escape_attr(uri));
            } else {
                let _ = write!(head, " xmlns:{prefix}=\"{}\"", escape_attr(uri));
            }
        }
        wrapped = format!("{head}>{xml}</scope>");
        input = &wrapped;
    }
    let mut root = parse_inner(input)?;
    if !scope.is_empty() {
        root = root.children.pop().unwrap_or_default();
        root.ns.clear();
        root.name.clear();
        root.prefixes.clear();
    }
    Ok(root)
}

fn parse_inner(xml: &str) -> Result<Element, String> {
    let mut reader = NsReader::from_str(xml);
    let mut stack = vec![Element::root()];
    loop {
        let at = reader.buffer_position();
        let fail = |what: String| format!("{what} (at byte {at})");
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| fail(e.to_string()))?;
        let ns = match ns {
            ResolveResult::Bound(n) => n.into_inner().to_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(p) => return Err(fail(format!("undeclared prefix {p:?}"))),
        };
        match event {
            Event::Start(start) => stack.push(start_element(&reader, &start, ns).map_err(fail)?),
            Event::Empty(start) => {
                let el = start_element(&reader, &start, ns).map_err(fail)?;
                push_child(&mut stack, el);
            }
            Event::End(_) => {
                let mut el = stack
                    .pop()
                    .ok_or_else(|| fail("unbalanced end tag".into()))?;
                if stack.is_empty() {
                    return Err(fail("unbalanced end tag".into()));
                }
                tidy_text(&mut el);
                push_child(&mut stack, el);
            }
            Event::Text(t) => top(&mut stack).text.push_str(&t.xml10_content()),
            Event::CData(c) => top(&mut stack).text.push_str(&c.xml10_content()),
            Event::GeneralRef(r) => {
                let c = resolve_ref(&r).map_err(fail)?;
                top(&mut stack).text.push(c);
            }
            Event::DocType(_) => return Err(fail("document type declarations are refused".into())),
            Event::Eof => break,
            Event::Comment(_) | Event::PI(_) | Event::Decl(_) => {}
        }
    }
    if stack.len() != 1 {
        return Err(format!(
            "{} element(s) left open at the end",
            stack.len() - 1
        ));
    }
    let mut root = stack.pop().unwrap_or_default();
    root.text.clear();
    Ok(root)
}

fn top(stack: &mut [Element]) -> &mut Element {
    stack.last_mut().expect("the root is never popped")
}

fn push_child(stack: &mut [Element], el: Element) {
    top(stack).children.push(el);
}

/// Drops layout whitespace: text of an element with children, or whitespace with a line break.
fn tidy_text(el: &mut Element) {
    let blank = el.text.trim().is_empty();
    if blank && (!el.children.is_empty() || el.text.contains('\n')) {
        el.text.clear();
    }
}

fn start_element<R>(
    reader: &NsReader<R>,
    start: &BytesStart<'_>,
    ns: String,
) -> Result<Element, String> {
    let mut el = Element {
        ns,
        name: start.local_name().into_inner().to_owned(),
        ..Element::default()
    };
    for attr in start.attributes() {
        let attr = attr.map_err(|e| e.to_string())?;
        let key = attr.key;
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?
            .into_owned();
        if key.as_namespace_binding().is_some() {
            if let Some(prefix) = key.as_ref().strip_prefix("xmlns:") {
                el.prefixes.push((prefix.to_owned(), value));
            }
            continue;
        }
        let (ans, local) = reader.resolver().resolve_attribute(key);
        let ans = match ans {
            ResolveResult::Bound(n) => n.into_inner().to_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(p) => return Err(format!("undeclared prefix {p:?}")),
        };
        el.attrs.push(Attr {
            ns: ans,
            name: local.into_inner().to_owned(),
            value,
        });
    }
    Ok(el)
}

fn resolve_ref(r: &BytesRef<'_>) -> Result<char, String> {
    if r.is_char_ref() {
        return match r.resolve_char_ref() {
            Ok(Some(c)) => Ok(c),
            _ => Err(format!("bad character reference &{};", r.xml10_content())),
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

/// Namespace bindings in force while writing.
#[derive(Default, Clone)]
struct Scope {
    default_ns: String,
    prefixes: Vec<(String, String)>,
}

fn write_element(el: &Element, out: &mut String, parent: &mut Scope) {
    let mut scope = parent.clone();
    out.push('<');
    out.push_str(&el.name);
    if el.ns != scope.default_ns {
        let _ = write!(out, " xmlns=\"{}\"", escape_attr(&el.ns));
        scope.default_ns = el.ns.clone();
    }
    for (prefix, uri) in &el.prefixes {
        if !scope.prefixes.iter().any(|(p, u)| p == prefix && u == uri) {
            let _ = write!(out, " xmlns:{prefix}=\"{}\"", escape_attr(uri));
            scope.prefixes.retain(|(p, _)| p != prefix);
            scope.prefixes.push((prefix.clone(), uri.clone()));
        }
    }
    for attr in &el.attrs {
        out.push(' ');
        if !attr.ns.is_empty() {
            let prefix = match scope.prefixes.iter().rev().find(|(_, u)| *u == attr.ns) {
                Some((p, _)) => p.clone(),
                None => {
                    let p = format!("a{}", scope.prefixes.len());
                    let _ = write!(out, "xmlns:{p}=\"{}\" ", escape_attr(&attr.ns));
                    scope.prefixes.push((p.clone(), attr.ns.clone()));
                    p
                }
            };
            out.push_str(&prefix);
            out.push(':');
        }
        let _ = write!(out, "{}=\"{}\"", attr.name, escape_attr(&attr.value));
    }
    if el.children.is_empty() && el.text.is_empty() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    out.push_str(&escape_text(&el.text));
    for child in &el.children {
        write_element(child, out, &mut scope);
    }
    let _ = write!(out, "</{}>", el.name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_namespaces_and_text() {
        let xml = r#"<top xmlns="urn:a" xmlns:t="urn:types"><x t:k="1">a &amp; b</x>
            <y><type>t:eth</type></y><z xmlns="urn:b"/></top>"#;
        let root = parse(xml, &[]).unwrap();
        let top = &root.children[0];
        assert_eq!((top.ns.as_str(), top.name.as_str()), ("urn:a", "top"));
        assert_eq!(top.children[0].text, "a & b");
        assert_eq!(top.children[0].attr("urn:types", "k"), Some("1"));
        assert_eq!(top.children[2].ns, "urn:b");
        let again = parse(&root.children_xml(), &[]).unwrap();
        assert_eq!(again, root);
        assert_eq!(
            root.children_xml(),
            r#"<top xmlns="urn:a" xmlns:t="urn:types"><x t:k="1">a &amp; b</x><y><type>t:eth</type></y><z xmlns="urn:b"/></top>"#
        );
    }

    #[test]
    fn scope_resolves_outer_prefixes() {
        let scope = [("nc".to_owned(), "urn:base".to_owned())];
        let root = parse("<nc:get-config><nc:source/></nc:get-config>", &scope).unwrap();
        assert_eq!(root.name, "");
        assert_eq!(root.children[0].ns, "urn:base");
        assert_eq!(root.children[0].children[0].name, "source");
    }

    #[test]
    fn refuses_broken_xml() {
        for bad in [
            "<a>",
            "<a></b>",
            "<p:a/>",
            "<!DOCTYPE a><a/>",
            "</a>",
            "<a>&nbsp;</a>",
        ] {
            assert!(parse(bad, &[]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unqualified_inside_default_namespace_is_reset() {
        let mut top = Element::new("urn:a", "top");
        top.children.push(Element::leaf("", "bare", "1"));
        assert_eq!(
            top.to_xml(),
            r#"<top xmlns="urn:a"><bare xmlns="">1</bare></top>"#
        );
    }
}
