//! The `<edit-config>` rule (RFC 6241 section 7.2) for datastores without a YANG schema.
//!
//! With no schema, lists, leaves and containers are told apart by shape:
//!
//! * **Identity.** An element in the edit stands for the element at the same level with the
//!   same namespace and local name. When its first child is a leaf called `name`, `key` or
//!   `id` (a list key, by convention first), that leaf's text must match too, so
//!   `<interface><name>eth1</name>...` addresses the entry for eth1 and nothing else.
//! * **merge** (the default): a matching element is merged into recursively; a leaf (no child
//!   elements) takes the new text; an element with no match is added at the end.
//! * **replace**: the matching element is replaced whole; with no match, added.
//! * **create**: added; `data-exists` if it is already there.
//! * **delete**: every matching element is removed; `data-missing` if there is none.
//! * **remove**: like delete, without the error.
//! * default-operation **none**: only walks down to nested operations; parents missing on
//!   the way are created (with their key) when a nested operation adds data.
//!
//! Operations come from the `operation` attribute in the NETCONF base namespace, inherited
//! by the subtree below. With default-operation `replace` the whole datastore is replaced by
//! the edit. Leaf-lists are not told apart from leaves: replace their parent instead.
//!
//! Siblings are found through an index by (namespace, name, key value) built once per
//! level, so an edit of n siblings against n siblings costs O(n), not n²; [`EditOutcome`]
//! counts the work so tests can hold that line without timing anything.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use netconf_proto::message::ErrorTag;
use netconf_proto::operations::{DefaultOperation, ErrorOption};
use netconf_proto::xml::NS_BASE;

use crate::tree::Element;

/// Leaf names taken as list keys when they come first.
const KEY_NAMES: [&str; 3] = ["name", "key", "id"];

/// The `operation` attribute of an element in an edit (RFC 6241 section 7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    Merge,
    Replace,
    Create,
    Delete,
    Remove,
}

impl Operation {
    /// Every operation, in RFC order.
    pub const ALL: [Operation; 5] = [
        Operation::Merge,
        Operation::Replace,
        Operation::Create,
        Operation::Delete,
        Operation::Remove,
    ];

    /// The value as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Merge => "merge",
            Operation::Replace => "replace",
            Operation::Create => "create",
            Operation::Delete => "delete",
            Operation::Remove => "remove",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown `operation` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown operation {0:?}: expected merge, replace, create, delete or remove")]
pub struct UnknownOperation(pub String);

impl FromStr for Operation {
    type Err = UnknownOperation;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operation::ALL
            .into_iter()
            .find(|op| op.as_str() == s.trim())
            .ok_or_else(|| UnknownOperation(s.to_owned()))
    }
}

/// Why part of an edit failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EditError {
    pub tag: ErrorTag,
    /// A readable path to the element, e.g. `/interfaces/interface[name='eth0']`.
    pub path: String,
    pub message: String,
}

/// What applying an edit did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EditOutcome {
    /// Every error met (only the first with stop-on-error and rollback-on-error).
    pub errors: Vec<EditError>,
    /// Elements examined and index probes made: a measure of cost that does not depend
    /// on the machine, for tests that check the edit stays near-linear.
    pub work: u64,
}

/// Applies `config` (a root whose children are the edit's top-level elements) to `target`
/// (a datastore root).
///
/// Stops at the first error unless `error_option` is continue-on-error; what was done
/// before the error stays done (the caller undoes it for rollback-on-error, since only it
/// holds the datastore's previous content).
pub fn apply(
    target: &mut Element,
    config: &Element,
    default_operation: DefaultOperation,
    error_option: ErrorOption,
) -> EditOutcome {
    let mut walk = Walk {
        outcome: EditOutcome::default(),
        keep_going: error_option == ErrorOption::ContinueOnError,
    };
    if default_operation == DefaultOperation::Replace {
        target.children = std::mem::take(&mut cleaned(config).children);
        return walk.outcome;
    }
    let inherited = if default_operation == DefaultOperation::None {
        None
    } else {
        Some(Operation::Merge)
    };
    let _ = walk.children(target, config, inherited, "");
    walk.outcome
}

/// The edit stopped (stop-on-error or rollback-on-error met an error).
struct Stop;

struct Walk {
    outcome: EditOutcome,
    keep_going: bool,
}

impl Walk {
    fn fail(&mut self, tag: ErrorTag, path: &str, message: String) -> Result<(), Stop> {
        self.outcome.errors.push(EditError {
            tag,
            path: path.to_owned(),
            message,
        });
        if self.keep_going {
            Ok(())
        } else {
            Err(Stop)
        }
    }

    /// Applies the children of `edit` to the children of `target`. Recursion follows the
    /// edit's depth, which the request parser caps.
    fn children(
        &mut self,
        target: &mut Element,
        edit: &Element,
        inherited: Option<Operation>,
        path: &str,
    ) -> Result<(), Stop> {
        if edit.children.is_empty() {
            return Ok(());
        }
        let mut siblings = Siblings::new(std::mem::take(&mut target.children), &mut self.outcome);
        let result = self.each_child(&mut siblings, edit, inherited, path);
        target.children = siblings.into_children();
        result
    }

    fn each_child(
        &mut self,
        siblings: &mut Siblings,
        edit: &Element,
        inherited: Option<Operation>,
        path: &str,
    ) -> Result<(), Stop> {
        for child in &edit.children {
            let here = format!("{path}/{}", step(child));
            let op = match operation(child) {
                Ok(op) => op.or(inherited),
                Err(value) => {
                    self.fail(
                        ErrorTag::BadAttribute,
                        &here,
                        format!("unknown operation {value:?}"),
                    )?;
                    continue;
                }
            };
            let matched = siblings.matching(child, &mut self.outcome);
            match (op, matched.first().copied()) {
                (Some(Operation::Merge), Some(i)) => {
                    let existing = siblings.get_mut(i);
                    merge_attributes(existing, child);
                    if child.is_leaf() {
                        if !child.text.is_empty() || existing.is_leaf() {
                            existing.text = child.text.clone();
                        }
                    } else {
                        existing.text.clear();
                        self.children(existing, child, op, &here)?;
                    }
                }
                (Some(Operation::Merge | Operation::Replace | Operation::Create), None) => {
                    siblings.push(cleaned(child), &mut self.outcome);
                }
                (Some(Operation::Replace), Some(i)) => siblings.replace(i, cleaned(child)),
                (Some(Operation::Create), Some(_)) => self.fail(
                    ErrorTag::DataExists,
                    &here,
                    "create: the element already exists".into(),
                )?,
                (Some(Operation::Delete), None) => self.fail(
                    ErrorTag::DataMissing,
                    &here,
                    "delete: the element does not exist".into(),
                )?,
                (Some(Operation::Delete | Operation::Remove), Some(_)) => {
                    for i in matched {
                        siblings.remove(i);
                    }
                }
                (Some(Operation::Remove), None) => {}
                (None, Some(i)) => {
                    let existing = siblings.get_mut(i);
                    self.children(existing, child, None, &here)?;
                }
                (None, None) => {
                    if adds_data(child) {
                        let mut shell = shell_of(child);
                        self.children(&mut shell, child, None, &here)?;
                        siblings.push(shell, &mut self.outcome);
                    } else if has_delete(child) {
                        self.fail(
                            ErrorTag::DataMissing,
                            &here,
                            "delete: the element does not exist".into(),
                        )?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// (namespace, name): the identity of an element without a key.
type NameKey = (String, String);
/// (namespace, name, key namespace, key name): which leaf identifies entries of a list.
type KeyedBy = (String, String, String, String);

/// A level of the target being edited: its children in slots (removal leaves a hole, so
/// indices stay valid) and indexes to find them by name and by key value.
struct Siblings {
    slots: Vec<Option<Element>>,
    by_name: HashMap<NameKey, Vec<usize>>,
    /// Built on first use for each kind of key the edit names at this level.
    by_key: HashMap<KeyedBy, HashMap<String, Vec<usize>>>,
}

impl Siblings {
    fn new(children: Vec<Element>, outcome: &mut EditOutcome) -> Self {
        let mut by_name: HashMap<NameKey, Vec<usize>> = HashMap::new();
        for (i, c) in children.iter().enumerate() {
            outcome.work += 1;
            by_name
                .entry((c.namespace.clone(), c.name.clone()))
                .or_default()
                .push(i);
        }
        Siblings {
            slots: children.into_iter().map(Some).collect(),
            by_name,
            by_key: HashMap::new(),
        }
    }

    fn into_children(self) -> Vec<Element> {
        self.slots.into_iter().flatten().collect()
    }

    fn get_mut(&mut self, i: usize) -> &mut Element {
        self.slots[i]
            .as_mut()
            .expect("matching() returns live slots")
    }

    fn remove(&mut self, i: usize) {
        self.slots[i] = None;
    }

    fn replace(&mut self, i: usize, el: Element) {
        self.index_keys(i, &el);
        self.slots[i] = Some(el);
    }

    fn push(&mut self, el: Element, outcome: &mut EditOutcome) {
        outcome.work += 1;
        let i = self.slots.len();
        self.by_name
            .entry((el.namespace.clone(), el.name.clone()))
            .or_default()
            .push(i);
        self.index_keys(i, &el);
        self.slots.push(Some(el));
    }

    /// Adds slot `i` holding `el` to every key index already built for its kind.
    fn index_keys(&mut self, i: usize, el: &Element) {
        for ((ns, name, kns, kname), values) in &mut self.by_key {
            if *ns == el.namespace && *name == el.name {
                if let Some(k) = key_child(el, kns, kname) {
                    values.entry(k.text.trim().to_owned()).or_default().push(i);
                }
            }
        }
    }

    /// The live slots `edit` stands for, in document order.
    fn matching(&mut self, edit: &Element, outcome: &mut EditOutcome) -> Vec<usize> {
        outcome.work += 1;
        let name = (edit.namespace.clone(), edit.name.clone());
        let Some(k) = key(edit) else {
            let all = self.by_name.get(&name).map(Vec::as_slice).unwrap_or(&[]);
            outcome.work += all.len() as u64;
            return all
                .iter()
                .copied()
                .filter(|&i| self.slots[i].is_some())
                .collect();
        };
        let keyed_by = (
            edit.namespace.clone(),
            edit.name.clone(),
            k.namespace.clone(),
            k.name.clone(),
        );
        if !self.by_key.contains_key(&keyed_by) {
            let mut values: HashMap<String, Vec<usize>> = HashMap::new();
            for &i in self.by_name.get(&name).map(Vec::as_slice).unwrap_or(&[]) {
                if let Some(el) = &self.slots[i] {
                    outcome.work += 1 + el.children.len() as u64;
                    if let Some(kc) = key_child(el, &k.namespace, &k.name) {
                        values.entry(kc.text.trim().to_owned()).or_default().push(i);
                    }
                }
            }
            self.by_key.insert(keyed_by.clone(), values);
        }
        let candidates = self.by_key[&keyed_by]
            .get(k.text.trim())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut out: Vec<usize> = Vec::with_capacity(candidates.len());
        for &i in candidates {
            outcome.work += 1;
            // Entries may be stale (a replace re-keyed the slot): check before trusting.
            if let Some(el) = &self.slots[i] {
                if same_node(el, edit) && !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        out.sort_unstable();
        out
    }
}

/// The `operation` attribute: `Ok(None)` when absent, `Err(value)` when unknown.
fn operation(el: &Element) -> Result<Option<Operation>, String> {
    match el.attribute(NS_BASE, "operation") {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| v.to_owned()),
    }
}

/// The list key of an element: its first child, when that is a leaf called name/key/id.
pub fn key(el: &Element) -> Option<&Element> {
    el.children
        .first()
        .filter(|k| k.is_leaf() && KEY_NAMES.contains(&k.name.as_str()))
}

fn key_child<'a>(el: &'a Element, namespace: &str, name: &str) -> Option<&'a Element> {
    el.children
        .iter()
        .find(|c| c.name == name && c.namespace == namespace)
}

/// Whether `existing` is the element `edit` stands for (see the module docs).
pub fn same_node(existing: &Element, edit: &Element) -> bool {
    if existing.namespace != edit.namespace || existing.name != edit.name {
        return false;
    }
    match key(edit) {
        None => true,
        Some(k) => key_child(existing, &k.namespace, &k.name)
            .is_some_and(|c| c.text.trim() == k.text.trim()),
    }
}

/// One readable path step: `name` or `name[key='value']`.
pub fn step(el: &Element) -> String {
    match key(el) {
        Some(k) => format!("{}[{}='{}']", el.name, k.name, k.text.trim()),
        None => el.name.clone(),
    }
}

fn is_operation(a: &crate::tree::Attribute) -> bool {
    a.namespace == NS_BASE && a.name == "operation"
}

fn merge_attributes(into: &mut Element, from: &Element) {
    for a in from.attributes.iter().filter(|a| !is_operation(a)) {
        match into
            .attributes
            .iter_mut()
            .find(|b| b.namespace == a.namespace && b.name == a.name)
        {
            Some(b) => b.value = a.value.clone(),
            None => into.attributes.push(a.clone()),
        }
    }
}

/// A copy of an edit element as data: operation attributes gone, deleted parts left out.
pub fn cleaned(el: &Element) -> Element {
    let mut out = el.clone();
    let mut stack = vec![&mut out];
    while let Some(e) = stack.pop() {
        e.attributes.retain(|a| !is_operation(a));
        e.children.retain(|c| {
            !matches!(
                operation(c),
                Ok(Some(Operation::Delete | Operation::Remove))
            )
        });
        stack.extend(e.children.iter_mut());
    }
    out
}

/// Whether some element below `el` carries an operation that adds data.
fn adds_data(el: &Element) -> bool {
    let mut stack: Vec<&Element> = el.children.iter().collect();
    while let Some(e) = stack.pop() {
        if matches!(
            operation(e),
            Ok(Some(
                Operation::Merge | Operation::Replace | Operation::Create
            ))
        ) {
            return true;
        }
        stack.extend(&e.children);
    }
    false
}

fn has_delete(el: &Element) -> bool {
    let mut stack = vec![el];
    while let Some(e) = stack.pop() {
        if operation(e) == Ok(Some(Operation::Delete)) {
            return true;
        }
        stack.extend(&e.children);
    }
    false
}

/// The element without its children but with its key, for a parent created on the way.
fn shell_of(el: &Element) -> Element {
    let mut shell = el.shallow_clone();
    shell.text.clear();
    shell.attributes.retain(|a| !is_operation(a));
    if let Some(k) = key(el) {
        shell.children.push(k.clone());
    }
    shell
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::parse;

    const NS: &str = "urn:example:test";

    fn doc(xml: &str) -> Element {
        parse(
            xml,
            &[
                (String::new(), NS.to_owned()),
                ("nc".to_owned(), NS_BASE.to_owned()),
            ],
            64,
        )
        .unwrap()
    }

    /// The children as XML without namespace declarations, for short expectations.
    fn xml(root: &Element) -> String {
        root.children_xml().replace(&format!(" xmlns=\"{NS}\""), "")
    }

    const BASE: &str = "<interfaces>\
        <interface><name>eth0</name><mtu>1500</mtu><enabled>true</enabled></interface>\
        <interface><name>eth1</name><mtu>1500</mtu></interface>\
        </interfaces><system><hostname>r1</hostname></system>";

    fn run_with(
        edit_xml: &str,
        default: DefaultOperation,
        e: ErrorOption,
    ) -> (String, Vec<EditError>) {
        let mut target = doc(BASE);
        let outcome = apply(&mut target, &doc(edit_xml), default, e);
        (xml(&target), outcome.errors)
    }

    fn run(edit_xml: &str, default: DefaultOperation) -> (String, Vec<EditError>) {
        run_with(edit_xml, default, ErrorOption::StopOnError)
    }

    #[test]
    fn operations_parse_and_display() {
        for op in Operation::ALL {
            assert_eq!(op.to_string().parse::<Operation>(), Ok(op));
        }
        assert!("bogus".parse::<Operation>().is_err());
    }

    #[test]
    fn merge_updates_leaves_by_list_key_and_adds_new_entries() {
        let (out, errors) = run(
            "<interfaces><interface><name>eth1</name><mtu>9000</mtu></interface>\
             <interface><name>eth2</name></interface></interfaces>\
             <system><hostname>r2</hostname></system>",
            DefaultOperation::Merge,
        );
        assert!(errors.is_empty());
        assert_eq!(
            out,
            "<interfaces>\
             <interface><name>eth0</name><mtu>1500</mtu><enabled>true</enabled></interface>\
             <interface><name>eth1</name><mtu>9000</mtu></interface>\
             <interface><name>eth2</name></interface>\
             </interfaces><system><hostname>r2</hostname></system>"
        );
    }

    #[test]
    fn merge_of_an_empty_container_changes_nothing() {
        let (out, errors) = run("<interfaces/>", DefaultOperation::Merge);
        assert!(errors.is_empty());
        assert_eq!(out, xml(&doc(BASE)));
    }

    #[test]
    fn replace_attribute_replaces_the_whole_entry_in_place() {
        let (out, _) = run(
            "<interfaces><interface nc:operation=\"replace\"><name>eth0</name><mtu>68</mtu>\
             </interface></interfaces>",
            DefaultOperation::Merge,
        );
        assert!(out.starts_with(
            "<interfaces><interface><name>eth0</name><mtu>68</mtu></interface><interface><name>eth1</name>"
        ), "{out}");
    }

    #[test]
    fn delete_remove_and_create() {
        let (out, errors) = run(
            "<interfaces><interface nc:operation=\"delete\"><name>eth0</name></interface></interfaces>",
            DefaultOperation::Merge,
        );
        assert!(errors.is_empty());
        assert!(!out.contains("eth0") && out.contains("eth1"));

        let (_, errors) = run(
            "<interfaces><interface nc:operation=\"delete\"><name>eth9</name></interface></interfaces>",
            DefaultOperation::Merge,
        );
        assert_eq!(errors[0].tag, ErrorTag::DataMissing);
        assert_eq!(errors[0].path, "/interfaces/interface[name='eth9']");

        let (out, errors) = run(
            "<interfaces><interface nc:operation=\"remove\"><name>eth9</name></interface></interfaces>\
             <system nc:operation=\"remove\"/>",
            DefaultOperation::Merge,
        );
        assert!(errors.is_empty());
        assert!(!out.contains("system"));

        let (_, errors) = run("<system nc:operation=\"create\"/>", DefaultOperation::Merge);
        assert_eq!(errors[0].tag, ErrorTag::DataExists);
        let (out, errors) = run(
            "<ntp nc:operation=\"create\"><server>a</server></ntp>",
            DefaultOperation::Merge,
        );
        assert!(errors.is_empty());
        assert!(out.ends_with("<ntp><server>a</server></ntp>"));
    }

    #[test]
    fn default_replace_replaces_the_datastore() {
        let (out, _) = run(
            "<system><hostname>new</hostname><gone nc:operation=\"delete\"/></system>",
            DefaultOperation::Replace,
        );
        assert_eq!(out, "<system><hostname>new</hostname></system>");
    }

    #[test]
    fn default_none_only_applies_nested_operations() {
        let (out, errors) = run(
            "<interfaces><interface><name>eth0</name><mtu>1</mtu>\
             <description nc:operation=\"merge\">up</description></interface>\
             <interface><name>eth7</name><mtu nc:operation=\"create\">7</mtu></interface></interfaces>",
            DefaultOperation::None,
        );
        assert!(errors.is_empty());
        assert!(out.contains(
            "<name>eth0</name><mtu>1500</mtu><enabled>true</enabled><description>up</description>"
        ));
        assert!(out.contains("<interface><name>eth7</name><mtu>7</mtu></interface>"));
        let (_, errors) = run(
            "<ntp><server nc:operation=\"delete\"/></ntp>",
            DefaultOperation::None,
        );
        assert_eq!(errors[0].tag, ErrorTag::DataMissing);
    }

    #[test]
    fn stop_or_continue_on_error() {
        let edit = "<system nc:operation=\"create\"/><ntp nc:operation=\"bogus\"/><a/>";
        let mut target = doc(BASE);
        let out = apply(
            &mut target,
            &doc(edit),
            DefaultOperation::Merge,
            ErrorOption::StopOnError,
        );
        assert_eq!(out.errors.len(), 1);
        assert!(target.child("a").is_none());
        let mut target = doc(BASE);
        let out = apply(
            &mut target,
            &doc(edit),
            DefaultOperation::Merge,
            ErrorOption::ContinueOnError,
        );
        assert_eq!(out.errors.len(), 2);
        assert_eq!(out.errors[1].tag, ErrorTag::BadAttribute);
        assert!(target.child("a").is_some());
    }

    #[test]
    fn namespaces_tell_elements_apart() {
        let mut target = doc(BASE);
        let other = parse("<system xmlns=\"urn:other\"><x>1</x></system>", &[], 8).unwrap();
        apply(
            &mut target,
            &other,
            DefaultOperation::Merge,
            ErrorOption::StopOnError,
        );
        assert_eq!(target.children.len(), 3);
    }

    #[test]
    fn a_key_that_is_not_first_in_the_data_still_matches() {
        let mut target = doc("<l><e><v>1</v><name>a</name></e></l>");
        apply(
            &mut target,
            &doc("<l><e><name>a</name><v>2</v></e></l>"),
            DefaultOperation::Merge,
            ErrorOption::StopOnError,
        );
        assert_eq!(xml(&target), "<l><e><v>2</v><name>a</name></e></l>");
    }

    #[test]
    fn an_entry_created_by_the_edit_is_found_by_a_later_sibling() {
        let (out, errors) = run(
            "<interfaces><interface><name>eth5</name></interface>\
             <interface><name>eth5</name><mtu>5</mtu></interface>\
             <interface nc:operation=\"delete\"><name>eth0</name></interface>\
             <interface nc:operation=\"create\"><name>eth0</name></interface></interfaces>",
            DefaultOperation::Merge,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            out,
            "<interfaces><interface><name>eth1</name><mtu>1500</mtu></interface>\
             <interface><name>eth5</name><mtu>5</mtu></interface>\
             <interface><name>eth0</name></interface></interfaces>\
             <system><hostname>r1</hostname></system>"
        );
    }
}
