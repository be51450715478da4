//! The schema-less edit rule `netconf serve` applies to its in-memory datastores.
//!
//! There is no YANG schema, so lists, leaves and containers are told apart by shape:
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
//! * **none** (`--default-operation none`): only walks down to nested operations; parents
//!   missing on the way are created (with their key) when a nested operation adds data.
//!
//! Operations come from the `operation` attribute in the NETCONF base namespace
//! (`xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" nc:operation="delete"`), inherited
//! by the subtree below. With `default-operation replace` the whole datastore is replaced
//! by the edit. Leaf-lists are not told apart from leaves: replace their parent instead.

use netconf_proto::message::ErrorTag;
use netconf_proto::xml::NS_BASE;

use crate::xmltree::Element;

/// Leaf names taken as list keys when they come first.
const KEY_NAMES: [&str; 3] = ["name", "key", "id"];

/// An edit operation (RFC 6241 section 7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditOp {
    Merge,
    Replace,
    Create,
    Delete,
    Remove,
    None,
}

impl EditOp {
    pub fn parse(s: &str) -> Option<EditOp> {
        Some(match s.trim() {
            "merge" => EditOp::Merge,
            "replace" => EditOp::Replace,
            "create" => EditOp::Create,
            "delete" => EditOp::Delete,
            "remove" => EditOp::Remove,
            "none" => EditOp::None,
            _ => return None,
        })
    }
}

/// Why part of an edit failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditError {
    pub tag: ErrorTag,
    /// A readable path to the element, e.g. `/interfaces/interface[name='eth0']`.
    pub path: String,
    pub message: String,
}

/// Applies `config` (a root whose children are the edit's top-level elements) to `target`.
///
/// With `continue_on_error` every error is collected and the rest of the edit still
/// applied; otherwise the edit stops at the first error, leaving what was already done.
pub fn edit(
    target: &mut Element,
    config: &Element,
    default: EditOp,
    continue_on_error: bool,
) -> Vec<EditError> {
    let mut errors = Vec::new();
    if default == EditOp::Replace {
        target.children = cleaned(config).children;
        return errors;
    }
    let _ = apply_children(target, config, default, "", &mut errors, continue_on_error);
    errors
}

/// Merges `from` into `into` (both the same element), as an edit with default merge does.
pub fn merge(into: &mut Element, from: &Element) {
    let mut errors = Vec::new();
    merge_attrs(into, from);
    let _ = apply_children(into, from, EditOp::Merge, "", &mut errors, true);
}

struct Stop;

fn apply_children(
    target: &mut Element,
    edit: &Element,
    inherited: EditOp,
    path: &str,
    errors: &mut Vec<EditError>,
    keep_going: bool,
) -> Result<(), Stop> {
    for child in &edit.children {
        let here = format!("{path}/{}", step(child));
        let op = match operation(child) {
            Ok(op) => op.unwrap_or(inherited),
            Err(value) => {
                fail(
                    errors,
                    keep_going,
                    ErrorTag::BadAttribute,
                    &here,
                    format!("unknown operation {value:?}"),
                )?;
                continue;
            }
        };
        let matched: Vec<usize> = target
            .children
            .iter()
            .enumerate()
            .filter(|(_, t)| same_node(t, child))
            .map(|(i, _)| i)
            .collect();
        match (op, matched.first().copied()) {
            (EditOp::Merge, Some(i)) => {
                let existing = &mut target.children[i];
                merge_attrs(existing, child);
                if child.is_leaf() {
                    if !child.text.is_empty() || existing.is_leaf() {
                        existing.text = child.text.clone();
                    }
                } else {
                    existing.text.clear();
                    apply_children(existing, child, op, &here, errors, keep_going)?;
                }
            }
            (EditOp::Merge | EditOp::Replace, None) => target.children.push(cleaned(child)),
            (EditOp::Replace, Some(i)) => target.children[i] = cleaned(child),
            (EditOp::Create, Some(_)) => fail(
                errors,
                keep_going,
                ErrorTag::DataExists,
                &here,
                "create: the element already exists".into(),
            )?,
            (EditOp::Create, None) => target.children.push(cleaned(child)),
            (EditOp::Delete, None) => fail(
                errors,
                keep_going,
                ErrorTag::DataMissing,
                &here,
                "delete: the element does not exist".into(),
            )?,
            (EditOp::Delete | EditOp::Remove, _) => {
                for i in matched.into_iter().rev() {
                    target.children.remove(i);
                }
            }
            (EditOp::None, Some(i)) => apply_children(
                &mut target.children[i],
                child,
                op,
                &here,
                errors,
                keep_going,
            )?,
            (EditOp::None, None) => {
                if adds_data(child) {
                    let mut shell = shell_of(child);
                    apply_children(&mut shell, child, op, &here, errors, keep_going)?;
                    target.children.push(shell);
                } else if has_op(child, EditOp::Delete) {
                    fail(
                        errors,
                        keep_going,
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

fn fail(
    errors: &mut Vec<EditError>,
    keep_going: bool,
    tag: ErrorTag,
    path: &str,
    message: String,
) -> Result<(), Stop> {
    errors.push(EditError {
        tag,
        path: path.to_owned(),
        message,
    });
    if keep_going {
        Ok(())
    } else {
        Err(Stop)
    }
}

/// The `operation` attribute: `Ok(None)` when absent, `Err(value)` when unknown.
fn operation(el: &Element) -> Result<Option<EditOp>, String> {
    match el.attr(NS_BASE, "operation") {
        None => Ok(None),
        Some(v) => EditOp::parse(v).map(Some).ok_or_else(|| v.to_owned()),
    }
}

/// The list key of an element: its first child, when that is a leaf called name/key/id.
pub fn key(el: &Element) -> Option<&Element> {
    el.children
        .first()
        .filter(|k| k.is_leaf() && KEY_NAMES.contains(&k.name.as_str()))
}

/// Whether `existing` is the element `edit` stands for (see the module docs).
pub fn same_node(existing: &Element, edit: &Element) -> bool {
    if existing.ns != edit.ns || existing.name != edit.name {
        return false;
    }
    match key(edit) {
        None => true,
        Some(k) => existing
            .children
            .iter()
            .find(|c| c.name == k.name && c.ns == k.ns)
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

fn merge_attrs(into: &mut Element, from: &Element) {
    for a in &from.attrs {
        if a.ns == NS_BASE && a.name == "operation" {
            continue;
        }
        match into
            .attrs
            .iter_mut()
            .find(|b| b.ns == a.ns && b.name == a.name)
        {
            Some(b) => b.value = a.value.clone(),
            None => into.attrs.push(a.clone()),
        }
    }
}

/// A copy of an edit element as data: operation attributes gone, deleted parts left out.
fn cleaned(el: &Element) -> Element {
    let mut out = el.clone();
    clean_in_place(&mut out);
    out
}

fn clean_in_place(el: &mut Element) {
    el.attrs
        .retain(|a| !(a.ns == NS_BASE && a.name == "operation"));
    el.children
        .retain(|c| !matches!(operation(c), Ok(Some(EditOp::Delete | EditOp::Remove))));
    for c in &mut el.children {
        clean_in_place(c);
    }
}

/// Whether a nested operation in this subtree adds data (merge, replace, create).
fn adds_data(el: &Element) -> bool {
    el.children.iter().any(|c| {
        matches!(
            operation(c),
            Ok(Some(EditOp::Merge | EditOp::Replace | EditOp::Create))
        ) || adds_data(c)
    })
}

fn has_op(el: &Element, op: EditOp) -> bool {
    operation(el) == Ok(Some(op)) || el.children.iter().any(|c| has_op(c, op))
}

/// The element without its children but with its key, for a parent created on the way.
fn shell_of(el: &Element) -> Element {
    let mut shell = Element {
        children: Vec::new(),
        text: String::new(),
        ..el.clone()
    };
    shell
        .attrs
        .retain(|a| !(a.ns == NS_BASE && a.name == "operation"));
    if let Some(k) = key(el) {
        shell.children.push(k.clone());
    }
    shell
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xmltree::parse;

    const NS: &str = "urn:example:test";

    fn doc(xml: &str) -> Element {
        parse(
            xml,
            &[
                (String::new(), NS.to_owned()),
                ("nc".to_owned(), NS_BASE.to_owned()),
            ],
        )
        .unwrap()
    }

    fn xml(root: &Element) -> String {
        root.children
            .iter()
            .map(|c| {
                let mut c = c.clone();
                strip_ns(&mut c);
                c.to_xml()
            })
            .collect()
    }

    fn strip_ns(el: &mut Element) {
        el.ns.clear();
        el.prefixes.clear();
        el.children.iter_mut().for_each(strip_ns);
    }

    const BASE: &str = "<interfaces>\
        <interface><name>eth0</name><mtu>1500</mtu><enabled>true</enabled></interface>\
        <interface><name>eth1</name><mtu>1500</mtu></interface>\
        </interfaces><system><hostname>r1</hostname></system>";

    fn run(edit_xml: &str, default: EditOp) -> (String, Vec<EditError>) {
        let mut target = doc(BASE);
        let errors = edit(&mut target, &doc(edit_xml), default, false);
        (xml(&target), errors)
    }

    #[test]
    fn merge_updates_leaves_by_list_key_and_adds_new_entries() {
        let (out, errors) = run(
            "<interfaces><interface><name>eth1</name><mtu>9000</mtu></interface>\
             <interface><name>eth2</name></interface></interfaces>\
             <system><hostname>r2</hostname></system>",
            EditOp::Merge,
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
        let (out, errors) = run("<interfaces/>", EditOp::Merge);
        assert!(errors.is_empty());
        assert_eq!(out, xml(&doc(BASE)));
    }

    #[test]
    fn replace_attribute_replaces_the_whole_entry() {
        let (out, _) = run(
            "<interfaces><interface nc:operation=\"replace\"><name>eth0</name><mtu>68</mtu>\
             </interface></interfaces>",
            EditOp::Merge,
        );
        assert!(out.starts_with(
            "<interfaces><interface><name>eth0</name><mtu>68</mtu></interface><interface><name>eth1</name>"
        ));
    }

    #[test]
    fn delete_remove_and_create() {
        let (out, errors) = run(
            "<interfaces><interface nc:operation=\"delete\"><name>eth0</name></interface></interfaces>",
            EditOp::Merge,
        );
        assert!(errors.is_empty());
        assert!(!out.contains("eth0") && out.contains("eth1"));

        let (_, errors) = run(
            "<interfaces><interface nc:operation=\"delete\"><name>eth9</name></interface></interfaces>",
            EditOp::Merge,
        );
        assert_eq!(errors[0].tag, ErrorTag::DataMissing);
        assert_eq!(errors[0].path, "/interfaces/interface[name='eth9']");

        let (out, errors) = run(
            "<interfaces><interface nc:operation=\"remove\"><name>eth9</name></interface></interfaces>\
             <system nc:operation=\"remove\"/>",
            EditOp::Merge,
        );
        assert!(errors.is_empty());
        assert!(!out.contains("system"));

        let (_, errors) = run("<system nc:operation=\"create\"/>", EditOp::Merge);
        assert_eq!(errors[0].tag, ErrorTag::DataExists);
        let (out, errors) = run(
            "<ntp nc:operation=\"create\"><server>a</server></ntp>",
            EditOp::Merge,
        );
        assert!(errors.is_empty());
        assert!(out.ends_with("<ntp><server>a</server></ntp>"));
    }

    #[test]
    fn default_replace_replaces_the_datastore() {
        let (out, _) = run(
            "<system><hostname>new</hostname><gone nc:operation=\"delete\"/></system>",
            EditOp::Replace,
        );
        assert_eq!(out, "<system><hostname>new</hostname></system>");
    }

    #[test]
    fn default_none_only_applies_nested_operations() {
        let (out, errors) = run(
            "<interfaces><interface><name>eth0</name><mtu>1</mtu>\
             <description nc:operation=\"merge\">up</description></interface>\
             <interface><name>eth7</name><mtu nc:operation=\"create\">7</mtu></interface></interfaces>",
            EditOp::None,
        );
        assert!(errors.is_empty());
        assert!(out.contains(
            "<name>eth0</name><mtu>1500</mtu><enabled>true</enabled><description>up</description>"
        ));
        assert!(out.contains("<interface><name>eth7</name><mtu>7</mtu></interface>"));
        let (_, errors) = run("<ntp><server nc:operation=\"delete\"/></ntp>", EditOp::None);
        assert_eq!(errors[0].tag, ErrorTag::DataMissing);
    }

    #[test]
    fn stop_or_continue_on_error() {
        let edit_xml = doc("<system nc:operation=\"create\"/><ntp nc:operation=\"bogus\"/><a/>");
        let mut target = doc(BASE);
        let errors = edit(&mut target, &edit_xml, EditOp::Merge, false);
        assert_eq!(errors.len(), 1);
        assert!(target.child("a").is_none());
        let mut target = doc(BASE);
        let errors = edit(&mut target, &edit_xml, EditOp::Merge, true);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[1].tag, ErrorTag::BadAttribute);
        assert!(target.child("a").is_some());
    }

    #[test]
    fn namespaces_tell_elements_apart() {
        let mut target = doc(BASE);
        let other = parse("<system xmlns=\"urn:other\"><x>1</x></system>", &[]).unwrap();
        edit(&mut target, &other, EditOp::Merge, false);
        assert_eq!(target.children.len(), 3);
    }
}
