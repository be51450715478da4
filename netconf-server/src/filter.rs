//! RFC 6241 section 6 subtree filtering.
//!
//! A filter element matches data elements with the same local name and namespace (an
//! unqualified filter element, `xmlns=""`, matches every namespace, and so does one left in
//! the namespace it inherits from the operation, as `<filter><system/></filter>` inside
//! `<get-config>` is) and the same values of any attributes it carries. Among siblings:
//! * a *content match node* (a leaf with text) keeps its parent only if the data has a child
//!   with that text; when all the filter's siblings are content match nodes, the whole data
//!   element is selected;
//! * a *selection node* (an empty leaf) selects the matching data subtree whole;
//! * a *containment node* (with children) is filtered recursively, and kept when anything
//!   below it was selected.
//!
//! An empty filter selects nothing.
//!
//! Evaluation first marks the data nodes that are selected (whole or in part) and then
//! copies them out once, so several filter siblings selecting the same entry are united
//! without merging copies. Filter siblings are indexed by name and by their first content
//! match (a list key, usually), and data children by name and text, so n filter entries
//! against n list entries cost O(n), not n².

use std::collections::HashMap;

use crate::tree::Element;

/// The part of `data` (a root) that `filter` (a root holding the filter's elements)
/// selects. Filter elements in `inherited_ns` (the operation's namespace) match any
/// namespace.
pub fn subtree(data: &Element, filter: &Element, inherited_ns: &str) -> Element {
    if filter.children.is_empty() {
        return Element::root();
    }
    let mut eval = Evaluation {
        inherited_ns,
        marks: HashMap::new(),
    };
    match eval.select(data, &filter.children) {
        None => Element::root(),
        Some(Mark::Whole) => data.clone(),
        Some(Mark::Partial) => eval.copy_marked(data),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mark {
    /// Selected with only the parts below it that are marked.
    Partial,
    /// Selected with everything below it.
    Whole,
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

/// A data node's identity for the duration of one evaluation: its address. The data is
/// borrowed immutably throughout, so addresses are stable and unique.
fn id(el: &Element) -> usize {
    std::ptr::from_ref(el) as usize
}

struct Evaluation<'a> {
    inherited_ns: &'a str,
    marks: HashMap<usize, Mark>,
}

impl Evaluation<'_> {
    fn matches(&self, f: &Element, d: &Element) -> bool {
        f.name == d.name
            && (f.namespace.is_empty()
                || f.namespace == self.inherited_ns
                || f.namespace == d.namespace)
            && f.attributes
                .iter()
                .all(|a| d.attribute(&a.namespace, &a.name) == Some(&a.value))
    }

    fn content_matches(&self, f: &Element, d: &Element) -> bool {
        self.matches(f, d) && d.is_leaf() && d.text.trim() == f.text.trim()
    }

    fn mark(&mut self, d: &Element, m: Mark) {
        let slot = self.marks.entry(id(d)).or_insert(m);
        *slot = (*slot).max(m);
    }

    /// Filters the children of `data` by the sibling set `filters`: `None` when `data` is
    /// excluded. Recursion follows the filter's depth, which the request parser caps.
    fn select(&mut self, data: &Element, filters: &[Element]) -> Option<Mark> {
        // Data children by (name, text), for content match tests.
        let mut leaves: HashMap<(&str, &str), Vec<&Element>> = HashMap::new();
        let content: Vec<&Element> = filters
            .iter()
            .filter(|f| kind(f) == Kind::ContentMatch)
            .collect();
        if !content.is_empty() {
            for d in data.children.iter().filter(|d| d.is_leaf()) {
                leaves.entry((&d.name, d.text.trim())).or_default().push(d);
            }
            let all_match = content.iter().all(|f| {
                leaves
                    .get(&(f.name.as_str(), f.text.trim()))
                    .is_some_and(|ds| ds.iter().any(|d| self.content_matches(f, d)))
            });
            if !all_match {
                return None;
            }
            if content.len() == filters.len() {
                return Some(Mark::Whole);
            }
        }
        let index = FilterIndex::new(filters);
        let mut selected_below = false;
        for child in &data.children {
            for f in index.candidates(child) {
                if !self.matches(f, child) {
                    continue;
                }
                match kind(f) {
                    Kind::ContentMatch => {
                        if self.content_matches(f, child) {
                            self.mark(child, Mark::Whole);
                        }
                    }
                    Kind::Selection => {
                        self.mark(child, Mark::Whole);
                        selected_below = true;
                    }
                    Kind::Containment => {
                        if let Some(m) = self.select(child, &f.children) {
                            self.mark(child, m);
                            selected_below = true;
                        }
                    }
                }
            }
        }
        (selected_below || !content.is_empty()).then_some(Mark::Partial)
    }

    /// A root holding copies of the marked children of `data`, made with an explicit stack.
    fn copy_marked(&self, data: &Element) -> Element {
        let mut stack: Vec<(&Element, Element, usize)> = vec![(data, Element::root(), 0)];
        loop {
            let (source, _, next) = stack.last_mut().expect("the first frame is popped last");
            let source = *source;
            if let Some(child) = source.children.get(*next) {
                *next += 1;
                match self.marks.get(&id(child)) {
                    Some(Mark::Whole) => {
                        let copy = child.clone();
                        stack.last_mut().expect("just used").1.children.push(copy);
                    }
                    Some(Mark::Partial) => {
                        let mut shell = child.shallow_clone();
                        shell.text.clear();
                        stack.push((child, shell, 0));
                    }
                    None => {}
                }
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

/// The filter siblings of one level, found by the data child they may apply to.
struct FilterIndex<'f> {
    /// Filters without a content match child, by name.
    by_name: HashMap<&'f str, Vec<&'f Element>>,
    /// Containment filters by (name, first content match child's name and text).
    by_content: HashMap<(&'f str, &'f str, &'f str), Vec<&'f Element>>,
    /// The names of the content match children used above, per filter name.
    content_names: HashMap<&'f str, Vec<&'f str>>,
}

impl<'f> FilterIndex<'f> {
    fn new(filters: &'f [Element]) -> Self {
        let mut index = FilterIndex {
            by_name: HashMap::new(),
            by_content: HashMap::new(),
            content_names: HashMap::new(),
        };
        for f in filters {
            let first_content = f.children.iter().find(|c| kind(c) == Kind::ContentMatch);
            match first_content {
                Some(c) => {
                    index
                        .by_content
                        .entry((&f.name, &c.name, c.text.trim()))
                        .or_default()
                        .push(f);
                    let names = index.content_names.entry(&f.name).or_default();
                    if !names.contains(&c.name.as_str()) {
                        names.push(&c.name);
                    }
                }
                None => index.by_name.entry(&f.name).or_default().push(f),
            }
        }
        index
    }

    /// The filters that may match `child`: by name, and those whose content match could
    /// hold given the child's own leaves.
    fn candidates<'s>(&'s self, child: &'s Element) -> impl Iterator<Item = &'f Element> + 's {
        let plain = self
            .by_name
            .get(child.name.as_str())
            .into_iter()
            .flatten()
            .copied();
        let keyed = self
            .content_names
            .get(child.name.as_str())
            .into_iter()
            .flatten()
            .flat_map(move |kname| {
                let mut seen: Vec<&str> = Vec::new();
                child
                    .children
                    .iter()
                    .filter(move |c| c.name == *kname && c.is_leaf())
                    .filter_map(move |c| {
                        let text = c.text.trim();
                        if seen.contains(&text) {
                            return None;
                        }
                        seen.push(text);
                        self.by_content.get(&(child.name.as_str(), *kname, text))
                    })
                    .flatten()
                    .copied()
            });
        plain.chain(keyed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::parse;

    const DATA: &str = r#"<top xmlns="urn:t"><users>
        <user><name>root</name><type>superuser</type><full-name>Charlie Root</full-name></user>
        <user><name>fred</name><type>admin</type><full-name>Fred Flintstone</full-name></user>
        <user><name>barney</name><type>admin</type><full-name>Barney Rubble</full-name></user>
      </users><groups><group>wheel</group></groups></top>
      <other xmlns="urn:o"><x>1</x></other>"#;

    fn run(filter: &str) -> String {
        let data = parse(DATA, &[], 16).unwrap();
        let filter = parse(filter, &[], 16).unwrap();
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
        assert_eq!(
            run(r#"<top xmlns="urn:t"><users><user><name>fred</name></user></users></top>"#),
            r#"<top xmlns="urn:t"><users><user><name>fred</name><type>admin</type><full-name>Fred Flintstone</full-name></user></users></top>"#
        );
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
        let data = parse(DATA, &[], 16).unwrap();
        let filter = parse(r#"<other xmlns="urn:base"/>"#, &[], 16).unwrap();
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

    #[test]
    fn a_deep_selection_is_copied_without_recursion() {
        let mut data = Element::root();
        data.children.push(crate::tree::tests::chain(50_000));
        let filter = parse(r#"<e xmlns="urn:deep"/>"#, &[], 4).unwrap();
        let out = subtree(&data, &filter, "urn:base");
        assert_eq!(out, data);
    }
}
