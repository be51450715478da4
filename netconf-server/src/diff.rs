//! What changed between two versions of a datastore, for RFC 6470 `<netconf-config-change>`.
//!
//! Children are paired by identity (namespace, name and list key, as the edit rule sees
//! them) through an index, and the walk uses an explicit stack: linear in the size of the
//! trees, whatever their depth or width. It stops after `limit` changes, since a
//! notification lists only the first few.

use std::collections::HashMap;

use crate::edit::key;
use crate::edit::Operation;
use crate::tree::Element;

/// One changed node: what happened to it and the path to it from the datastore root.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Change {
    /// create, replace or delete.
    pub operation: Operation,
    pub path: Vec<Step>,
}

/// One step of a [`Change`]'s path: an element and, for a list entry, its key leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Step {
    pub namespace: String,
    pub name: String,
    /// (namespace, name, value) of the key leaf.
    pub key: Option<(String, String, String)>,
}

impl Step {
    fn of(el: &Element) -> Step {
        Step {
            namespace: el.namespace.clone(),
            name: el.name.clone(),
            key: key(el).map(|k| {
                (
                    k.namespace.clone(),
                    k.name.clone(),
                    k.text.trim().to_owned(),
                )
            }),
        }
    }
}

type Identity<'a> = (&'a str, &'a str, Option<&'a str>);

fn identity(el: &Element) -> Identity<'_> {
    (&el.namespace, &el.name, key(el).map(|k| k.text.trim()))
}

/// The changes from `old` to `new` (roots), at most `limit` of them.
pub fn diff(old: &Element, new: &Element, limit: usize) -> Vec<Change> {
    let mut out = Vec::new();
    // Path steps as an arena: (parent step, step). Frames refer to their step by index.
    let mut steps: Vec<(Option<usize>, Step)> = Vec::new();
    let mut stack: Vec<(&Element, &Element, Option<usize>)> = vec![(old, new, None)];
    let path_of = |steps: &[(Option<usize>, Step)], mut at: Option<usize>| {
        let mut path = Vec::new();
        while let Some(i) = at {
            path.push(steps[i].1.clone());
            at = steps[i].0;
        }
        path.reverse();
        path
    };
    while let Some((o, n, parent)) = stack.pop() {
        let mut unpaired: HashMap<Identity<'_>, Vec<usize>> = HashMap::new();
        for (i, c) in o.children.iter().enumerate().rev() {
            unpaired.entry(identity(c)).or_default().push(i);
        }
        let mut paired = vec![false; o.children.len()];
        for nc in &n.children {
            if out.len() >= limit {
                return out;
            }
            let partner = unpaired.get_mut(&identity(nc)).and_then(Vec::pop);
            steps.push((parent, Step::of(nc)));
            let here = Some(steps.len() - 1);
            match partner {
                None => out.push(Change {
                    operation: Operation::Create,
                    path: path_of(&steps, here),
                }),
                Some(i) => {
                    paired[i] = true;
                    let oc = &o.children[i];
                    if oc.is_leaf() || nc.is_leaf() {
                        if oc != nc {
                            out.push(Change {
                                operation: Operation::Replace,
                                path: path_of(&steps, here),
                            });
                        }
                    } else {
                        stack.push((oc, nc, here));
                    }
                }
            }
        }
        for (i, oc) in o.children.iter().enumerate() {
            if !paired[i] && out.len() < limit {
                steps.push((parent, Step::of(oc)));
                out.push(Change {
                    operation: Operation::Delete,
                    path: path_of(&steps, Some(steps.len() - 1)),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::parse;

    #[test]
    fn creates_replaces_and_deletes() {
        let old = parse(
            r#"<if xmlns="urn:x:demo"><i><name>a</name><mtu>1</mtu></i><i><name>b</name></i></if>"#,
            &[],
            8,
        )
        .unwrap();
        let new = parse(
            r#"<if xmlns="urn:x:demo"><i><name>a</name><mtu>2</mtu></i><i><name>c</name></i></if>"#,
            &[],
            8,
        )
        .unwrap();
        let changes = diff(&old, &new, 32);
        let ops: Vec<_> = changes.iter().map(|c| c.operation).collect();
        assert_eq!(
            ops,
            [Operation::Create, Operation::Delete, Operation::Replace]
        );
        let names: Vec<_> = changes[2].path.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["if", "i", "mtu"]);
        assert_eq!(
            changes[2].path[1].key,
            Some(("urn:x:demo".into(), "name".into(), "a".into()))
        );
        assert_eq!(diff(&old, &old, 32), []);
        assert_eq!(diff(&old, &new, 1).len(), 1);
    }

    #[test]
    fn deep_and_wide_trees_are_walked_without_recursion() {
        let mut a = Element::root();
        a.children.push(crate::tree::tests::chain(50_000));
        let mut b = a.clone();
        let mut at = &mut b.children[0];
        while !at.children.is_empty() {
            at = &mut at.children[0];
        }
        at.text = "changed".into();
        let changes = diff(&a, &b, 32);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path.len(), 50_000);
    }
}
