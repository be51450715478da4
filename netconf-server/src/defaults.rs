//! RFC 6243 with-defaults for datastores without a YANG schema.
//!
//! The schema's defaults come as a *defaults template*: a tree shaped like the data in
//! which each leaf holds its default value and each list appears once, without a key,
//! standing for every entry. For the module
//! `container interfaces { list interface { key name; leaf enabled { default true; } } }`
//! the template is `<interfaces><interface><enabled>true</enabled></interface></interfaces>`.
//!
//! The basic mode is `explicit` (section 2.3): the datastores keep exactly what clients
//! set, so a retrieval without `<with-defaults>` returns them as stored. The other modes
//! rewrite a copy before filtering: `report-all` adds each missing default leaf under every
//! data node the template reaches (missing containers are not created), `report-all-tagged`
//! also marks every leaf that holds its default with `wd:default="true"`, and `trim` drops
//! every leaf that holds its default.

use netconf_proto::operations::WithDefaults;

use crate::tree::{Attribute, Element};

/// The namespace of the `default` attribute of report-all-tagged (RFC 6243 section 6).
pub const NS_DEFAULT_ATTRIBUTE: &str = "urn:ietf:params:xml:ns:netconf:default:1.0";

/// The retrieval modes, each as written on the wire, for parsing `<with-defaults>`.
pub const MODES: [WithDefaults; 4] = [
    WithDefaults::ReportAll,
    WithDefaults::ReportAllTagged,
    WithDefaults::Trim,
    WithDefaults::Explicit,
];

/// The mode named `s`, if it is one.
pub fn parse_mode(s: &str) -> Option<WithDefaults> {
    MODES.into_iter().find(|m| m.as_str() == s.trim())
}

/// Rewrites `data` (a root) for `mode`, given the `template` (a root; see the module docs).
pub fn apply(data: &mut Element, template: &Element, mode: WithDefaults) {
    let action = if mode == WithDefaults::Trim {
        Action::Trim
    } else if mode == WithDefaults::ReportAll {
        Action::Report { tagged: false }
    } else if mode == WithDefaults::ReportAllTagged {
        Action::Report { tagged: true }
    } else {
        return;
    };
    // Pairs of (data node, template node) still to visit; the data borrow is taken apart
    // level by level so every node is visited once.
    let mut stack: Vec<(&mut Element, &Element)> = vec![(data, template)];
    let mut tagged_any = false;
    while let Some((d, t)) = stack.pop() {
        tagged_any |= apply_level(d, t, action);
        // Templates are small (one entry per schema node), so a scan per child is fine.
        let inner: Vec<&Element> = t.children.iter().filter(|c| !c.is_leaf()).collect();
        if inner.is_empty() {
            continue;
        }
        for child in &mut d.children {
            let found = inner
                .iter()
                .find(|tc| tc.namespace == child.namespace && tc.name == child.name);
            if let Some(tc) = found {
                stack.push((child, tc));
            }
        }
    }
    if tagged_any {
        for top in &mut data.children {
            top.prefixes
                .push(("wd".to_owned(), NS_DEFAULT_ATTRIBUTE.to_owned()));
        }
    }
}

#[derive(Clone, Copy)]
enum Action {
    Trim,
    Report { tagged: bool },
}

/// Handles the default leaves of one data node; true when it tagged a leaf.
fn apply_level(d: &mut Element, t: &Element, action: Action) -> bool {
    let defaults: Vec<&Element> = t.children.iter().filter(|c| c.is_leaf()).collect();
    if defaults.is_empty() {
        return false;
    }
    let is_default = |leaf: &Element| {
        leaf.is_leaf()
            && defaults.iter().any(|def| {
                def.namespace == leaf.namespace
                    && def.name == leaf.name
                    && def.text.trim() == leaf.text.trim()
            })
    };
    match action {
        Action::Trim => {
            d.children.retain(|c| !is_default(c));
            false
        }
        Action::Report { tagged } => {
            let mut tagged_any = false;
            if tagged {
                for c in d.children.iter_mut().filter(|c| is_default(c)) {
                    tag(c);
                    tagged_any = true;
                }
            }
            let present: std::collections::HashSet<(&str, &str)> = d
                .children
                .iter()
                .map(|c| (c.namespace.as_str(), c.name.as_str()))
                .collect();
            let missing: Vec<Element> = defaults
                .iter()
                .filter(|def| !present.contains(&(def.namespace.as_str(), def.name.as_str())))
                .map(|def| {
                    let mut leaf = Element::leaf(&def.namespace, &def.name, def.text.trim());
                    if tagged {
                        tag(&mut leaf);
                    }
                    leaf
                })
                .collect();
            tagged_any |= tagged && !missing.is_empty();
            d.children.extend(missing);
            tagged_any
        }
    }
}

fn tag(leaf: &mut Element) {
    leaf.attributes.push(Attribute {
        namespace: NS_DEFAULT_ATTRIBUTE.to_owned(),
        name: "default".to_owned(),
        value: "true".to_owned(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::parse;

    const TEMPLATE: &str = r#"<interfaces xmlns="urn:d"><interface><enabled>true</enabled><mtu>1500</mtu></interface></interfaces>"#;
    const DATA: &str = r#"<interfaces xmlns="urn:d"><interface><name>a</name><enabled>true</enabled></interface><interface><name>b</name><enabled>false</enabled><mtu>9000</mtu></interface></interfaces>"#;

    fn run(mode: WithDefaults) -> String {
        let mut data = parse(DATA, &[], 8).unwrap();
        apply(&mut data, &parse(TEMPLATE, &[], 8).unwrap(), mode);
        data.children_xml()
    }

    #[test]
    fn modes_parse() {
        for m in MODES {
            assert_eq!(parse_mode(m.as_str()), Some(m));
        }
        assert_eq!(parse_mode("all"), None);
    }

    #[test]
    fn explicit_returns_what_was_set() {
        assert_eq!(run(WithDefaults::Explicit), DATA);
    }

    #[test]
    fn report_all_adds_missing_defaults_to_every_entry() {
        assert_eq!(
            run(WithDefaults::ReportAll),
            r#"<interfaces xmlns="urn:d"><interface><name>a</name><enabled>true</enabled><mtu>1500</mtu></interface><interface><name>b</name><enabled>false</enabled><mtu>9000</mtu></interface></interfaces>"#
        );
    }

    #[test]
    fn report_all_tagged_marks_default_values() {
        assert_eq!(
            run(WithDefaults::ReportAllTagged),
            r#"<interfaces xmlns="urn:d" xmlns:wd="urn:ietf:params:xml:ns:netconf:default:1.0"><interface><name>a</name><enabled wd:default="true">true</enabled><mtu wd:default="true">1500</mtu></interface><interface><name>b</name><enabled>false</enabled><mtu>9000</mtu></interface></interfaces>"#
        );
    }

    #[test]
    fn trim_drops_default_values() {
        assert_eq!(
            run(WithDefaults::Trim),
            r#"<interfaces xmlns="urn:d"><interface><name>a</name></interface><interface><name>b</name><enabled>false</enabled><mtu>9000</mtu></interface></interfaces>"#
        );
    }
}
