//! RFC 6241 section 6 subtree filtering over the in-memory datastore.
//!
//! A filter element matches data elements with the same local name and namespace (an
//! unqualified filter element, `xmlns=""`, matches every namespace, and so does one left in
//! the namespace it inherits from the operation, as `--subtree '<system/>'` is) and the
//! same values of any attributes it carries. Among siblings:
//! * a *content match node* (a leaf with text) keeps its parent only if the data has a child
//!   with that text; when all the filter's siblings are content match nodes, the whole data
//!   element is selected;
//! * a *selection node* (an empty leaf) selects the matching data subtree whole;
//! * a *containment node* (with children) is filtered recursively, and kept when anything
//!   below it was selected.
//!
//! An empty filter selects nothing.

use crate::datastore::merge;
use crate::xmltree::Element;

/// The part of `data` (a root) that `filter` (a root holding the filter's elements) selects.
/// Filter elements in `inherited_ns` (the operation's namespace) match any namespace.
pub fn subtree(data: &Element, filter: &Element, inherited_ns: &str) -> Element {
    if filter.children.is_empty() {
        return Element::root();
    }
    let ctx = Ctx { inherited_ns };
    ctx.select(data, &filter.children)
        .unwrap_or_else(Element::root)
}

struct Ctx<'a> {
    inherited_ns: &'a str,
}

#[derive(PartialEq)]
enum Kind {
    ContentMatch,
    Selection,
    Containment,
}

fn kind(f: &Element) -> Kind {
    if !f.children.is_empty() {
        Kind::Containment
    } else if f.text.trim().is_empty() {
        Kind::Selection
    } else {
        Kind::ContentMatch
    }
}

impl Ctx<'_> {
    fn matches(&self, f: &Element, d: &Element) -> bool {
        f.name == d.name
            && (f.ns.is_empty() || f.ns == self.inherited_ns || f.ns == d.ns)
            && f.attrs
                .iter()
                .all(|a| d.attr(&a.ns, &a.name) == Some(&a.value))
    }

    fn content_matches(&self, f: &Element, d: &Element) -> bool {
        self.matches(f, d) && d.is_leaf() && d.text.trim() == f.text.trim()
    }

    /// Filters the children of `data` by the sibling set `filters`: `None` when `data` is
    /// excluded, else a copy of `data` holding what was selected.
    fn select(&self, data: &Element, filters: &[Element]) -> Option<Element> {
        let content: Vec<&Element> = filters
            .iter()
            .filter(|f| kind(f) == Kind::ContentMatch)
            .collect();
        if !content
            .iter()
            .all(|f| data.children.iter().any(|d| self.content_matches(f, d)))
        {
            return None;
        }
        if content.len() == filters.len() {
            return Some(data.clone());
        }
        let mut out = Element {
            children: Vec::new(),
            text: String::new(),
            ..data.clone()
        };
        let mut selected_below = false;
        for child in &data.children {
            let mut result: Option<Element> = None;
            for f in filters.iter().filter(|f| self.matches(f, child)) {
                let picked = match kind(f) {
                    Kind::ContentMatch => self.content_matches(f, child).then(|| child.clone()),
                    Kind::Selection => Some(child.clone()),
                    Kind::Containment => self.select(child, &f.children),
                };
                if let Some(p) = picked {
                    selected_below |= kind(f) != Kind::ContentMatch;
                    match &mut result {
                        Some(r) => merge(r, &p),
                        None => result = Some(p),
                    }
                }
            }
            out.children.extend(result);
        }
        (selected_below || !content.is_empty()).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmltree::parse;

    const DATA: &str = r#"<top xmlns="urn:t"><users>
        <user><name>root</name><type>superuser</type><full-name>Charlie Root</full-name></user>
        <user><name>fred</name><type>admin</type><full-name>Fred Flintstone</full-name></user>
        <user><name>barney</name><type>admin</type><full-name>Barney Rubble</full-name></user>
      </users><groups><group>wheel</group></groups></top>
      <other xmlns="urn:o"><x>1</x></other>"#;

    fn run(filter: &str) -> String {
        let data = parse(DATA, &[]).unwrap();
        let filter = parse(filter, &[]).unwrap();
        subtree(&data, &filter, "urn:base").children_xml()
    }

    #[test]
    fn empty_filter_selects_nothing() {
        assert_eq!(run(""), "");
    }

    #[test]
    fn selection_node_selects_a_whole_subtree() {
        assert_eq!(
            run(r#"<top xmlns="urn:t"><groups/></top>"#),
            r#"<top xmlns="urn:t"><groups><group>wheel</group></groups></top>"#
        );
        assert_eq!(
            run(r#"<other xmlns="urn:o"/>"#),
            r#"<other xmlns="urn:o"><x>1</x></other>"#
        );
    }

    #[test]
    fn namespace_must_match_unless_the_filter_is_unqualified() {
        assert_eq!(run(r#"<other xmlns="urn:wrong"/>"#), "");
        assert_eq!(
            run(r#"<other/>"#),
            r#"<other xmlns="urn:o"><x>1</x></other>"#
        );
    }

    #[test]
    fn content_match_selects_list_entries() {
        // RFC 6241 section 6.4.8: only content match nodes: the whole entry.
        assert_eq!(
            run(r#"<top xmlns="urn:t"><users><user><name>fred</name></user></users></top>"#),
            r#"<top xmlns="urn:t"><users><user><name>fred</name><type>admin</type><full-name>Fred Flintstone</full-name></user></users></top>"#
        );
        // Content match plus selection: the key and the selected leaf of matching entries.
        assert_eq!(
            run(
                r#"<top xmlns="urn:t"><users><user><type>admin</type><name/></user></users></top>"#
            ),
            r#"<top xmlns="urn:t"><users><user><name>fred</name><type>admin</type></user><user><name>barney</name><type>admin</type></user></users></top>"#
        );
        assert_eq!(
            run(r#"<top xmlns="urn:t"><users><user><name>nobody</name></user></users></top>"#),
            ""
        );
    }

    #[test]
    fn inherited_namespace_is_a_wildcard() {
        let data = parse(DATA, &[]).unwrap();
        let filter = parse(r#"<other xmlns="urn:base"/>"#, &[]).unwrap();
        assert_eq!(
            subtree(&data, &filter, "urn:base").children_xml(),
            r#"<other xmlns="urn:o"><x>1</x></other>"#
        );
    }

    #[test]
    fn containment_without_matches_is_dropped() {
        assert_eq!(
            run(r#"<top xmlns="urn:t"><missing><x/></missing></top>"#),
            ""
        );
    }

    #[test]
    fn sibling_filters_for_the_same_element_are_united() {
        assert_eq!(
            run(
                r#"<top xmlns="urn:t"><users><user><name>root</name><type/></user>
                   <user><name>root</name><full-name/></user></users></top>"#
            ),
            r#"<top xmlns="urn:t"><users><user><name>root</name><type>superuser</type><full-name>Charlie Root</full-name></user></users></top>"#
        );
    }
}
