//! `<get>`, `<get-config>` (RFC 6241 sections 7.1, 7.7), `<get-data>` (RFC 8526) and
//! `<get-schema>` (RFC 6022), with subtree filters and with-defaults.

use std::borrow::Cow;

use netconf_proto::message::ErrorTag;
use netconf_proto::operations::WithDefaults;
use netconf_proto::xml::{escape_text, NS_BASE, NS_MONITORING, NS_NMDA};
use netconf_proto::Reply;

use super::{params, Answer, Server};
use crate::backend::Backend;
use crate::datastore::Datastore;
use crate::errors::{invalid, not_supported, protocol};
use crate::tree::Element;

/// Which data a retrieval starts from.
enum View {
    Config(Datastore),
    /// Running plus state data (`<get>`, `ds:operational`).
    Operational,
    /// State data only (`ds:operational` with `config-filter false`).
    StateOnly,
}

impl<B: Backend> Server<B> {
    pub(super) fn get(&mut self, op: &Element) -> Answer {
        let filter = subtree_filter(op, "filter")?;
        self.retrieve(View::Operational, with_defaults(op)?, filter, NS_BASE)
    }

    pub(super) fn get_config(&mut self, op: &Element) -> Answer {
        let source = params::datastore_in(op, "source")?;
        let filter = subtree_filter(op, "filter")?;
        self.retrieve(View::Config(source), with_defaults(op)?, filter, NS_BASE)
    }

    pub(super) fn get_data(&mut self, op: &Element) -> Answer {
        let name = op.child_text("datastore").unwrap_or_default();
        let config = match op.child_text("config-filter") {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => return Err(vec![invalid(format!("bad config-filter {other:?}"))]),
        };
        let view = match (params::identity(name), config) {
            ("operational", None) => View::Operational,
            ("operational", Some(false)) => View::StateOnly,
            ("intended" | "operational", _) => View::Config(Datastore::Running),
            (other, Some(false)) if other.parse::<Datastore>().is_ok() => {
                return self.reply_with(Element::root())
            }
            (other, _) => match other.parse::<Datastore>() {
                Ok(ds) => View::Config(ds),
                Err(_) => return Err(vec![invalid(format!("unknown datastore {name:?}"))]),
            },
        };
        if op.child("xpath-filter").is_some() {
            return Err(vec![no_xpath()]);
        }
        let filter = op.child("subtree-filter").map(Element::content_as_root);
        self.retrieve(view, with_defaults(op)?, filter, NS_NMDA)
    }

    fn retrieve(
        &mut self,
        view: View,
        mode: Option<WithDefaults>,
        filter: Option<Element>,
        inherited_ns: &str,
    ) -> Answer {
        let mut data: Cow<'_, Element> = match view {
            View::Config(ds) => self.backend.load(ds)?,
            View::Operational => {
                let mut all = self.backend.load(Datastore::Running)?.into_owned();
                all.children.append(&mut self.state().children);
                Cow::Owned(all)
            }
            View::StateOnly => Cow::Owned(self.state()),
        };
        if let (Some(mode), Some(template)) = (mode, self.backend.defaults()) {
            crate::defaults::apply(data.to_mut(), template, mode);
        }
        let xml = match &filter {
            Some(f) => crate::filter::subtree(&data, f, inherited_ns).children_xml(),
            None => data.children_xml(),
        };
        Ok(Reply::data_unchecked(xml.into()))
    }

    fn reply_with(&self, data: Element) -> Answer {
        Ok(Reply::data_unchecked(data.children_xml().into()))
    }

    /// The backend's state data plus ietf-netconf-monitoring's schema list.
    fn state(&self) -> Element {
        let mut state = self.backend.state();
        let schemas = self.backend.schemas();
        if schemas.is_empty() {
            return state;
        }
        let leaf = |name: &str, text: &str| Element::leaf(NS_MONITORING, name, text);
        let mut list = Element::new(NS_MONITORING, "schemas");
        for s in schemas {
            let mut schema = Element::new(NS_MONITORING, "schema")
                .with_child(leaf("identifier", &s.identifier))
                .with_child(leaf("version", &s.version))
                .with_child(leaf("format", "ncm:yang"))
                .with_child(leaf("namespace", &s.namespace))
                .with_child(leaf("location", "NETCONF"));
            // `format` is an identityref: its prefix must be declared.
            schema.prefixes.push(("ncm".into(), NS_MONITORING.into()));
            list.children.push(schema);
        }
        state
            .children
            .push(Element::new(NS_MONITORING, "netconf-state").with_child(list));
        state
    }

    pub(super) fn get_schema(&mut self, op: &Element) -> Answer {
        let id = op.child_text("identifier").unwrap_or_default();
        let version = op.child_text("version").filter(|v| !v.is_empty());
        let format = op.child_text("format").unwrap_or("yang");
        let format = format.rsplit(':').next().unwrap_or(format);
        let found = self
            .backend
            .schemas()
            .iter()
            .find(|s| s.identifier == id && version.is_none_or(|v| v == s.version));
        let Some(schema) = found else {
            let known: Vec<String> = self
                .backend
                .schemas()
                .iter()
                .map(|s| format!("{}@{}", s.identifier, s.version))
                .collect();
            return Err(vec![invalid(format!(
                "no schema {id:?}{}; this server has {}",
                version.map(|v| format!(" version {v}")).unwrap_or_default(),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ))]);
        };
        if format != "yang" {
            return Err(vec![invalid(format!(
                "{id} is only available as yang, not {format}"
            ))]);
        }
        Ok(Reply::data_unchecked(
            escape_text(&schema.text).into_owned().into(),
        ))
    }
}

/// The `<with-defaults>` parameter (RFC 6243 section 4.5).
fn with_defaults(op: &Element) -> Result<Option<WithDefaults>, Vec<netconf_proto::RpcError>> {
    match op.child_text("with-defaults") {
        None => Ok(None),
        Some(v) => crate::defaults::parse_mode(v)
            .map(Some)
            .ok_or_else(|| vec![invalid(format!("unknown with-defaults mode {v:?}"))]),
    }
}

/// A subtree `<filter>` of get and get-config, as a root.
fn subtree_filter(
    op: &Element,
    name: &str,
) -> Result<Option<Element>, Vec<netconf_proto::RpcError>> {
    let Some(f) = op.child(name) else {
        return Ok(None);
    };
    match f.attribute("", "type").unwrap_or("subtree") {
        "subtree" => Ok(Some(f.content_as_root())),
        "xpath" => Err(vec![no_xpath()]),
        other => Err(vec![protocol(
            ErrorTag::BadAttribute,
            format!("unknown filter type {other:?}"),
        )]),
    }
}

fn no_xpath() -> netconf_proto::RpcError {
    not_supported("this server has no :xpath capability; use a subtree filter")
}
