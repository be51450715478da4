//! An owned XML tree for datastore contents and parsed requests.
//!
//! Elements keep their resolved namespace and local name (never a prefix), their attributes
//! (namespace-resolved, `xmlns` declarations excluded), the prefixed namespace declarations
//! they made in the source (so prefixes used inside text values, such as YANG identityrefs,
//! stay declared when written back), their child elements and their text. Whitespace-only
//! text that contains a line break is layout and is dropped; other text is kept as is.
//!
//! Every walk over a whole tree here (parse, write, clone, compare, drop) uses an explicit
//! stack, never the call stack: a peer controls how deep a request nests, and a tree
//! 60,000 levels deep must cost memory, not a stack overflow that aborts the process.

use std::fmt;
use std::fmt::Write as _;

use netconf_proto::xml::{escape_attr, escape_text};
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// One element. A tree's root is a nameless element whose children are the top-level
/// elements (a datastore's content, a `<config>`'s content).
#[derive(Default)]
pub struct Element {
    /// The namespace URI ("" when unqualified).
    pub namespace: String,
    /// The local name.
    pub name: String,
    pub attributes: Vec<Attribute>,
    /// `xmlns:prefix="uri"` declarations made on this element in the source.
    pub prefixes: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

/// An attribute with its namespace resolved ("" when unqualified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub namespace: String,
    pub name: String,
    pub value: String,
}

/// Why a document could not be read into a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Elements nest deeper than the limit: refused before the tree grows further.
    #[error("elements nest deeper than {limit} levels")]
    TooDeep { limit: usize },
    /// Not well-formed, or not namespace-well-formed XML.
    #[error("{0}")]
    Malformed(String),
}

impl Element {
    pub fn new(namespace: &str, name: &str) -> Self {
        let mut el = Element::default();
        el.namespace = namespace.to_owned();
        el.name = name.to_owned();
        el
    }

    /// A leaf: an element with text and no children.
    pub fn leaf(namespace: &str, name: &str, text: &str) -> Self {
        let mut el = Element::new(namespace, name);
        el.text = text.to_owned();
        el
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

    /// The first child with this local name, in any namespace: for reading requests, whose
    /// parameters are in the operation's namespace or (from sloppy clients) in none.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The trimmed text of the first child with this local name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    /// The value of the attribute `name` in namespace `namespace`.
    pub fn attribute(&self, namespace: &str, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.namespace == namespace && a.name == name)
            .map(|a| a.value.as_str())
    }

    /// A copy of this element without its children.
    pub fn shallow_clone(&self) -> Element {
        Element {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            attributes: self.attributes.clone(),
            prefixes: self.prefixes.clone(),
            children: Vec::with_capacity(self.children.len()),
            text: self.text.clone(),
        }
    }

    /// The same element's children under a root (for `<config>` and `<filter>` contents).
    pub fn content_as_root(&self) -> Element {
        let mut root = Element::root();
        root.children = self.children.clone();
        root
    }

    /// The number of levels below and including this element (a leaf has depth 1).
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((el, d)) = stack.pop() {
            deepest = deepest.max(d);
            stack.extend(el.children.iter().map(|c| (c, d + 1)));
        }
        deepest
    }

    /// The element (and its subtree) as XML; namespaces are declared where they change.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        Writer::default().write(self, &mut out);
        out
    }

    /// The children as XML (for a root: the whole document content).
    pub fn children_xml(&self) -> String {
        let mut out = String::new();
        let mut writer = Writer::default();
        for child in &self.children {
            writer.write(child, &mut out);
        }
        out
    }
}

impl Drop for Element {
    /// Children are moved onto a heap stack and dropped one level at a time, so dropping
    /// a tree of any depth uses constant stack.
    fn drop(&mut self) {
        if self.children.iter().all(|c| c.children.is_empty()) {
            return;
        }
        let mut pending = std::mem::take(&mut self.children);
        while let Some(mut el) = pending.pop() {
            pending.append(&mut el.children);
        }
    }
}

impl Clone for Element {
    fn clone(&self) -> Self {
        // Each frame: the source element, its copy so far, and the next child to copy.
        let mut stack: Vec<(&Element, Element, usize)> = vec![(self, self.shallow_clone(), 0)];
        loop {
            let (source, _, next) = stack.last_mut().expect("the root frame is popped last");
            let source = *source;
            if let Some(child) = source.children.get(*next) {
                *next += 1;
                stack.push((child, child.shallow_clone(), 0));
                continue;
            }
            let (_, done, _) = stack.pop().expect("checked above");
            match stack.last_mut() {
                Some((_, parent, _)) => parent.children.push(done),
                None => return done,
            }
        }
    }
}

impl PartialEq for Element {
    fn eq(&self, other: &Self) -> bool {
        let mut stack = vec![(self, other)];
        while let Some((a, b)) = stack.pop() {
            if a.namespace != b.namespace
                || a.name != b.name
                || a.text != b.text
                || a.attributes != b.attributes
                || a.prefixes != b.prefixes
                || a.children.len() != b.children.len()
            {
                return false;
            }
            stack.extend(a.children.iter().zip(&b.children));
        }
        true
    }
}

impl Eq for Element {}

impl fmt::Debug for Element {
    /// The element as XML: readable in test failures, and bounded in stack like the writer.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.is_empty() {
            write!(f, "Element(root: {})", self.children_xml())
        } else {
            write!(f, "Element({})", self.to_xml())
        }
    }
}

/// How deep [`parse`] lets elements nest unless told otherwise.
pub const DEFAULT_MAX_DEPTH: usize = 256;

/// Parses an XML fragment (any number of top-level elements) into a root element.
///
/// `scope` holds namespace declarations in force around the fragment (prefix "" is the
/// default namespace), for payloads cut out of a larger message. Elements nested deeper
/// than `max_depth` (top-level elements are at depth 1) fail with [`ParseError::TooDeep`]
/// as soon as the first one is read.
pub fn parse(
    xml: &str,
    scope: &[(String, String)],
    max_depth: usize,
) -> Result<Element, ParseError> {
    if scope.is_empty() {
        return parse_fragment(xml, max_depth);
    }
    let mut head = String::from("<scope");
    for (prefix, uri) in scope {
        if prefix.is_empty() {
            let _ = write!(head, " xmlns=\"{}\"", escape_attr(uri));
        } else {
            let _ = write!(head, " xmlns:{prefix}=\"{}\"", escape_attr(uri));
        }
    }
    let wrapped = format!("{head}>{xml}</scope>");
    let mut outer = parse_fragment(&wrapped, max_depth.saturating_add(1))?;
    let mut root = outer.children.pop().unwrap_or_default();
    root.namespace.clear();
    root.name.clear();
    root.prefixes.clear();
    root.text.clear();
    Ok(root)
}

fn parse_fragment(xml: &str, max_depth: usize) -> Result<Element, ParseError> {
    let mut reader = NsReader::from_str(xml);
    let mut stack = vec![Element::root()];
    loop {
        let at = reader.buffer_position();
        let fail = |what: String| ParseError::Malformed(format!("{what} (at byte {at})"));
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| fail(e.to_string()))?;
        let ns = match ns {
            ResolveResult::Bound(n) => n.into_inner().to_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(p) => return Err(fail(format!("undeclared prefix {p:?}"))),
        };
        match event {
            Event::Start(start) => {
                if stack.len() > max_depth {
                    return Err(ParseError::TooDeep { limit: max_depth });
                }
                stack.push(start_element(&reader, &start, ns).map_err(fail)?);
            }
            Event::Empty(start) => {
                if stack.len() > max_depth {
                    return Err(ParseError::TooDeep { limit: max_depth });
                }
                let el = start_element(&reader, &start, ns).map_err(fail)?;
                top(&mut stack).children.push(el);
            }
            Event::End(_) => {
                if stack.len() < 2 {
                    return Err(fail("unbalanced end tag".into()));
                }
                let mut el = stack.pop().expect("checked above");
                tidy_text(&mut el);
                top(&mut stack).children.push(el);
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
        return Err(ParseError::Malformed(format!(
            "{} element(s) left open at the end",
            stack.len() - 1
        )));
    }
    let mut root = stack.pop().unwrap_or_default();
    root.text.clear();
    Ok(root)
}

fn top(stack: &mut [Element]) -> &mut Element {
    stack.last_mut().expect("the root is never popped")
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
    namespace: String,
) -> Result<Element, String> {
    let mut el = Element::default();
    el.namespace = namespace;
    el.name = start.local_name().into_inner().to_owned();
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
        el.attributes.push(Attribute {
            namespace: ans,
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

/// Writes elements, tracking the namespace bindings in force on an explicit stack.
#[derive(Default)]
struct Writer {
    /// The default namespace of each open element (the outermost is "").
    default_ns: Vec<String>,
    /// Prefix bindings in force, innermost last; each open element remembers how many
    /// there were before it, to drop its own when it closes.
    prefixes: Vec<(String, String)>,
}

impl Writer {
    fn default_ns(&self) -> &str {
        self.default_ns.last().map(String::as_str).unwrap_or("")
    }

    fn bound(&self, prefix: &str) -> Option<&str> {
        self.prefixes
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.as_str())
    }

    /// A prefix bound to `uri` and not shadowed since.
    fn prefix_for(&self, uri: &str) -> Option<&str> {
        self.prefixes
            .iter()
            .rev()
            .find(|(p, u)| u == uri && self.bound(p) == Some(uri))
            .map(|(p, _)| p.as_str())
    }

    fn write(&mut self, el: &Element, out: &mut String) {
        // Each frame: the element, the next child to write, and the bindings to restore.
        let mut stack: Vec<(&Element, usize, usize)> = Vec::new();
        stack.push((el, 0, self.open(el, out)));
        while let Some((el, next, saved)) = stack.last_mut() {
            let el = *el;
            if let Some(child) = el.children.get(*next) {
                *next += 1;
                let saved = self.open(child, out);
                stack.push((child, 0, saved));
                continue;
            }
            let saved = *saved;
            stack.pop();
            self.close(el, saved, out);
        }
    }

    /// Writes the start tag and text; returns the bindings count to restore on close.
    fn open(&mut self, el: &Element, out: &mut String) -> usize {
        let saved = self.prefixes.len();
        out.push('<');
        out.push_str(&el.name);
        if el.namespace != self.default_ns() {
            let _ = write!(out, " xmlns=\"{}\"", escape_attr(&el.namespace));
        }
        self.default_ns.push(el.namespace.clone());
        for (prefix, uri) in &el.prefixes {
            if self.bound(prefix) != Some(uri.as_str()) {
                let _ = write!(out, " xmlns:{prefix}=\"{}\"", escape_attr(uri));
                self.prefixes.push((prefix.clone(), uri.clone()));
            }
        }
        for attr in &el.attributes {
            out.push(' ');
            if !attr.namespace.is_empty() {
                let prefix = match self.prefix_for(&attr.namespace) {
                    Some(p) => p.to_owned(),
                    None => {
                        let mut n = self.prefixes.len();
                        let mut p = format!("a{n}");
                        while self.bound(&p).is_some() {
                            n += 1;
                            p = format!("a{n}");
                        }
                        let _ = write!(out, "xmlns:{p}=\"{}\" ", escape_attr(&attr.namespace));
                        self.prefixes.push((p.clone(), attr.namespace.clone()));
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
        } else {
            out.push('>');
            out.push_str(&escape_text(&el.text));
        }
        saved
    }

    fn close(&mut self, el: &Element, saved: usize, out: &mut String) {
        if !(el.children.is_empty() && el.text.is_empty()) {
            let _ = write!(out, "</{}>", el.name);
        }
        self.prefixes.truncate(saved);
        self.default_ns.pop();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn doc(xml: &str) -> Element {
        parse(xml, &[], DEFAULT_MAX_DEPTH).unwrap()
    }

    #[test]
    fn round_trip_keeps_namespaces_and_text() {
        let xml = r#"<top xmlns="urn:a" xmlns:t="urn:types"><x t:k="1">a &amp; b</x>
            <y><type>t:eth</type></y><z xmlns="urn:b"/></top>"#;
        let root = doc(xml);
        let top = &root.children[0];
        assert_eq!(
            (top.namespace.as_str(), top.name.as_str()),
            ("urn:a", "top")
        );
        assert_eq!(top.children[0].text, "a & b");
        assert_eq!(top.children[0].attribute("urn:types", "k"), Some("1"));
        assert_eq!(top.children[2].namespace, "urn:b");
        let again = doc(&root.children_xml());
        assert_eq!(again, root);
        assert_eq!(
            root.children_xml(),
            r#"<top xmlns="urn:a" xmlns:t="urn:types"><x t:k="1">a &amp; b</x><y><type>t:eth</type></y><z xmlns="urn:b"/></top>"#
        );
    }

    #[test]
    fn scope_resolves_outer_prefixes() {
        let scope = [("nc".to_owned(), "urn:base".to_owned())];
        let root = parse(
            "<nc:get-config><nc:source/></nc:get-config>",
            &scope,
            DEFAULT_MAX_DEPTH,
        )
        .unwrap();
        assert_eq!(root.name, "");
        assert_eq!(root.children[0].namespace, "urn:base");
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
            assert!(
                matches!(parse(bad, &[], 8), Err(ParseError::Malformed(_))),
                "{bad:?}"
            );
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

    #[test]
    fn attribute_prefixes_are_declared_once_and_never_shadowed() {
        let mut top = Element::new("urn:a", "top");
        top.prefixes.push(("a0".into(), "urn:other".into()));
        let mut leaf = Element::leaf("urn:a", "x", "1");
        leaf.attributes.push(Attribute {
            namespace: "urn:attr".into(),
            name: "k".into(),
            value: "v".into(),
        });
        top.children.push(leaf);
        let xml = top.to_xml();
        assert_eq!(
            xml,
            r#"<top xmlns="urn:a" xmlns:a0="urn:other"><x xmlns:a1="urn:attr" a1:k="v">1</x></top>"#
        );
        assert_eq!(doc(&xml).children_xml(), xml);
    }

    #[test]
    fn depth_limit_counts_top_level_elements_as_one() {
        assert!(parse("<a><b/></a>", &[], 2).is_ok());
        assert_eq!(
            parse("<a><b><c/></b></a>", &[], 2),
            Err(ParseError::TooDeep { limit: 2 })
        );
        let scope = [(String::new(), "urn:x".to_owned())];
        assert!(parse("<a><b/></a>", &scope, 2).is_ok());
        assert!(parse("<a><b><c/></b></a>", &scope, 2).is_err());
    }

    /// A chain `depth` elements deep, built without recursion.
    pub(crate) fn chain(depth: usize) -> Element {
        let mut el = Element::leaf("urn:deep", "e", "bottom");
        for _ in 1..depth {
            el = Element::new("urn:deep", "e").with_child(el);
        }
        el
    }

    /// 60,000 levels: each walk would need megabytes of stack if it recursed.
    #[test]
    fn a_60000_deep_tree_is_parsed_written_cloned_compared_and_dropped() {
        const DEEP: usize = 60_000;
        let tree = chain(DEEP);
        assert_eq!(tree.depth(), DEEP);
        let copy = tree.clone();
        assert_eq!(copy, tree);
        let xml = tree.to_xml();
        assert!(xml.starts_with("<e xmlns=\"urn:deep\"><e><e>"));
        let parsed = parse(&xml, &[], DEEP).unwrap();
        assert_eq!(parsed.children[0], tree);
        assert_eq!(
            parse(&xml, &[], DEEP - 1),
            Err(ParseError::TooDeep { limit: DEEP - 1 })
        );
        let debug = format!("{copy:?}");
        assert!(debug.ends_with("</e>)"));
        drop(parsed);
        drop(copy);
        drop(tree);
    }
}
