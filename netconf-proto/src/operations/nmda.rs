//! RFC 8526 NMDA operations: `<get-data>` and `<edit-data>` (sections 3.1 and 3.2), which
//! name a datastore by its RFC 8342 identity instead of an element.

use crate::operations::XmlWriter;

use std::fmt::Write as _;

use super::edit::EditContent;
use super::util::{empty, is_ncname};
use super::{DefaultOperation, Filter, InlineConfig, Operation, WithDefaults};
use crate::error::UsageError;
use crate::xml::{escape_attr, escape_text, write_leaf, NS_DATASTORES, NS_NMDA};

/// RFC 8342 ietf-origin, the namespace of the origin identities.
const NS_ORIGIN: &str = "urn:ietf:params:xml:ns:yang:ietf-origin";

/// A datastore named by identity (RFC 8342 section 6); written `<datastore>ds:name</datastore>`
/// with `xmlns:ds` declared on the operation element.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NmdaDatastore {
    /// `ds:running`.
    Running,
    /// `ds:candidate`.
    Candidate,
    /// `ds:startup`.
    Startup,
    /// `ds:intended`: running after templates and inactive nodes are resolved (read-only).
    Intended,
    /// `ds:operational`: the configuration in use plus state data (read-only).
    Operational,
    /// A datastore identity defined by another module; see [`NmdaDatastore::other`].
    Other(DatastoreIdentity),
}

/// A datastore identity from some other YANG module (one derived from `ds:datastore`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DatastoreIdentity {
    namespace: String,
    name: String,
}

impl DatastoreIdentity {
    /// The namespace of the module that defines the identity.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The identity's name within its module.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl NmdaDatastore {
    /// Names the identity `name` of the module with namespace `namespace`, e.g. an
    /// ephemeral datastore; `name` must be a YANG identifier and `namespace` non-empty.
    pub fn other(
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Result<Self, UsageError> {
        let (namespace, name) = (namespace.into(), name.into());
        if !is_ncname(&name) {
            return Err(UsageError::InvalidValue {
                what: "datastore identity",
                why: format!("{name:?} is not a YANG identifier"),
            });
        }
        if namespace.is_empty() {
            return Err(UsageError::InvalidValue {
                what: "datastore identity",
                why: "the namespace is empty".into(),
            });
        }
        Ok(NmdaDatastore::Other(DatastoreIdentity { namespace, name }))
    }

    fn namespace(&self) -> &str {
        match self {
            NmdaDatastore::Other(id) => &id.namespace,
            _ => NS_DATASTORES,
        }
    }

    fn name(&self) -> &str {
        match self {
            NmdaDatastore::Running => "running",
            NmdaDatastore::Candidate => "candidate",
            NmdaDatastore::Startup => "startup",
            NmdaDatastore::Intended => "intended",
            NmdaDatastore::Operational => "operational",
            NmdaDatastore::Other(id) => &id.name,
        }
    }

    /// Writes the attributes ` xmlns="nmda" xmlns:ds="..."` that the element opening needs.
    fn write_namespaces(&self, out: &mut XmlWriter) {
        let _ = write!(
            out,
            " xmlns=\"{NS_NMDA}\" xmlns:ds=\"{}\"",
            escape_attr(self.namespace())
        );
    }

    fn write_leaf(&self, out: &mut XmlWriter) {
        let _ = write!(
            out,
            "<datastore>ds:{}</datastore>",
            escape_text(self.name())
        );
    }
}

/// Where a node's value came from (RFC 8342 section 5.3.4, ietf-origin identities),
/// for get-data's origin filters on `ds:operational`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// `or:intended`: from the intended configuration.
    Intended,
    /// `or:dynamic`: from a dynamic configuration datastore.
    Dynamic,
    /// `or:system`: created by the system itself.
    System,
    /// `or:learned`: learned by protocol interactions.
    Learned,
    /// `or:default`: a schema default value.
    Default,
    /// `or:unknown`: origin unknown.
    Unknown,
}

impl Origin {
    /// The identity name within ietf-origin.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Intended => "intended",
            Origin::Dynamic => "dynamic",
            Origin::System => "system",
            Origin::Learned => "learned",
            Origin::Default => "default",
            Origin::Unknown => "unknown",
        }
    }
}

/// The `origin-filters` choice: keep only, or drop, nodes with these origins.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OriginFilter {
    Keep(Vec<Origin>),
    Drop(Vec<Origin>),
}

/// `<get-data>`: reads any NMDA datastore (RFC 8526 section 3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetData {
    datastore: NmdaDatastore,
    filter: Option<Filter>,
    config_filter: Option<bool>,
    origin_filter: Option<OriginFilter>,
    max_depth: Option<u16>,
    with_origin: bool,
    with_defaults: Option<WithDefaults>,
}

impl GetData {
    /// Reads the whole of `datastore`.
    pub fn new(datastore: NmdaDatastore) -> Self {
        GetData {
            datastore,
            filter: None,
            config_filter: None,
            origin_filter: None,
            max_depth: None,
            with_origin: false,
            with_defaults: None,
        }
    }

    /// Restricts the reply to what `filter` selects (`subtree-filter` or `xpath-filter`).
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// `true` returns only configuration (`config true`) nodes, `false` only the others.
    pub fn config_filter(mut self, config: bool) -> Self {
        self.config_filter = Some(config);
        self
    }

    /// Keeps only nodes whose origin is one of `origins` (derived identities included);
    /// only for `ds:operational`, and replaces any earlier origin filter.
    pub fn origin_filter(mut self, origins: impl IntoIterator<Item = Origin>) -> Self {
        self.origin_filter = Some(OriginFilter::Keep(origins.into_iter().collect()));
        self
    }

    /// Drops nodes whose origin is one of `origins`; only for `ds:operational`, and replaces
    /// any earlier origin filter.
    pub fn negated_origin_filter(mut self, origins: impl IntoIterator<Item = Origin>) -> Self {
        self.origin_filter = Some(OriginFilter::Drop(origins.into_iter().collect()));
        self
    }

    /// Limits the depth of the returned subtrees to `depth` levels (1..=65535); left out,
    /// depth is unbounded.
    pub fn max_depth(mut self, depth: u16) -> Result<Self, UsageError> {
        if depth == 0 {
            return Err(UsageError::InvalidValue {
                what: "max-depth",
                why: "must be at least 1 (leave it out for unbounded)".into(),
            });
        }
        self.max_depth = Some(depth);
        Ok(self)
    }

    /// Asks for `or:origin` metadata on the returned nodes (only for `ds:operational`).
    pub fn with_origin(mut self) -> Self {
        self.with_origin = true;
        self
    }

    /// Chooses how default values are reported (RFC 6243, via RFC 8526 section 3.1.1).
    pub fn with_defaults(mut self, mode: WithDefaults) -> Self {
        self.with_defaults = Some(mode);
        self
    }
}

impl Operation for GetData {
    fn write_xml(&self, out: &mut XmlWriter) {
        let origins = match &self.origin_filter {
            Some(OriginFilter::Keep(o)) => Some(("origin-filter", o)),
            Some(OriginFilter::Drop(o)) => Some(("negated-origin-filter", o)),
            None => None,
        }
        .filter(|(_, o)| !o.is_empty());

        out.push_str("<get-data");
        self.datastore.write_namespaces(out);
        if origins.is_some() {
            let _ = write!(out, " xmlns:or=\"{NS_ORIGIN}\"");
        }
        out.push('>');
        self.datastore.write_leaf(out);
        if let Some(filter) = &self.filter {
            filter.write_nmda(out);
        }
        if let Some(config) = self.config_filter {
            let _ = write!(out, "<config-filter>{config}</config-filter>");
        }
        if let Some((name, list)) = origins {
            for origin in list {
                let _ = write!(out, "<{name}>or:{}</{name}>", origin.as_str());
            }
        }
        if let Some(depth) = self.max_depth {
            let _ = write!(out, "<max-depth>{depth}</max-depth>");
        }
        if self.with_origin {
            empty(out, "with-origin");
        }
        if let Some(wd) = self.with_defaults {
            wd.write_unqualified(out);
        }
        out.push_str("</get-data>");
    }
}

/// `<edit-data>`: edits any writable NMDA datastore (RFC 8526 section 3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditData {
    datastore: NmdaDatastore,
    default_operation: Option<DefaultOperation>,
    content: EditContent,
}

impl EditData {
    /// Edits `datastore` with inline configuration.
    pub fn new(datastore: NmdaDatastore, config: InlineConfig) -> Self {
        EditData {
            datastore,
            default_operation: None,
            content: EditContent::Config(config),
        }
    }

    /// Edits `datastore` with the configuration stored at `url` (`:url`).
    pub fn from_url(datastore: NmdaDatastore, url: impl Into<String>) -> Self {
        EditData {
            datastore,
            default_operation: None,
            content: EditContent::Url(url.into()),
        }
    }

    /// Sets `<default-operation>`; left out, the server merges.
    pub fn default_operation(mut self, op: DefaultOperation) -> Self {
        self.default_operation = Some(op);
        self
    }
}

impl Operation for EditData {
    fn write_xml(&self, out: &mut XmlWriter) {
        out.push_str("<edit-data");
        self.datastore.write_namespaces(out);
        out.push('>');
        self.datastore.write_leaf(out);
        if let Some(op) = self.default_operation {
            write_leaf(out, "default-operation", op.as_str());
        }
        self.content.write(out);
        out.push_str("</edit-data>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::testutil::assert_renders;
    use crate::xml::NS_BASE;

    /// RFC 8526 section 3.1 style request: operational interfaces with origin metadata.
    #[test]
    fn rfc8526_get_data() {
        let op = GetData::new(NmdaDatastore::Operational)
            .filter(
                Filter::subtree(
                    r#"<interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"/>"#,
                )
                .unwrap(),
            )
            .with_origin();
        assert_renders(
            &op,
            r#"<get-data xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
                         xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">
                 <datastore>ds:operational</datastore>
                 <subtree-filter>
                   <interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"/>
                 </subtree-filter>
                 <with-origin/>
               </get-data>"#,
        );
    }

    #[test]
    fn get_data_every_parameter_in_schema_order() {
        let op = GetData::new(NmdaDatastore::Operational)
            .with_defaults(WithDefaults::ReportAllTagged)
            .with_origin()
            .max_depth(3)
            .unwrap()
            .negated_origin_filter([Origin::Intended])
            .origin_filter([Origin::System, Origin::Learned])
            .config_filter(false)
            .filter(
                Filter::xpath("/if:interfaces")
                    .with_namespace("if", "urn:ietf:params:xml:ns:yang:ietf-interfaces")
                    .unwrap(),
            );
        assert_renders(
            &op,
            r#"<get-data xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
                         xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores"
                         xmlns:or="urn:ietf:params:xml:ns:yang:ietf-origin">
                 <datastore>ds:operational</datastore>
                 <xpath-filter xmlns:if="urn:ietf:params:xml:ns:yang:ietf-interfaces">/if:interfaces</xpath-filter>
                 <config-filter>false</config-filter>
                 <origin-filter>or:system</origin-filter>
                 <origin-filter>or:learned</origin-filter>
                 <max-depth>3</max-depth>
                 <with-origin/>
                 <with-defaults>report-all-tagged</with-defaults>
               </get-data>"#,
        );
        assert!(matches!(
            GetData::new(NmdaDatastore::Running).max_depth(0),
            Err(UsageError::InvalidValue { .. })
        ));
    }

    #[test]
    fn negated_origins_and_plain_datastores() {
        let op = GetData::new(NmdaDatastore::Operational)
            .negated_origin_filter([Origin::Default, Origin::Unknown]);
        assert_renders(
            &op,
            r#"<get-data xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
                         xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores"
                         xmlns:or="urn:ietf:params:xml:ns:yang:ietf-origin">
                 <datastore>ds:operational</datastore>
                 <negated-origin-filter>or:default</negated-origin-filter>
                 <negated-origin-filter>or:unknown</negated-origin-filter>
               </get-data>"#,
        );
        for (ds, name) in [
            (NmdaDatastore::Running, "running"),
            (NmdaDatastore::Candidate, "candidate"),
            (NmdaDatastore::Startup, "startup"),
            (NmdaDatastore::Intended, "intended"),
        ] {
            assert_renders(
                &GetData::new(ds).origin_filter([]),
                &format!(
                    r#"<get-data xmlns="{NS_NMDA}" xmlns:ds="{NS_DATASTORES}"><datastore>ds:{name}</datastore></get-data>"#
                ),
            );
        }
        assert_eq!(Origin::Dynamic.as_str(), "dynamic");
    }

    #[test]
    fn other_datastore_identity() {
        let ds = NmdaDatastore::other("urn:example:ephemeral", "ephemeral").unwrap();
        assert_renders(
            &GetData::new(ds),
            r#"<get-data xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
                         xmlns:ds="urn:example:ephemeral">
                 <datastore>ds:ephemeral</datastore>
               </get-data>"#,
        );
        assert!(NmdaDatastore::other("urn:x", "a:b").is_err());
        assert!(NmdaDatastore::other("urn:x", "").is_err());
        assert!(NmdaDatastore::other("", "a").is_err());
    }

    /// RFC 8526 section 3.2 style request: edit running with an explicit delete.
    #[test]
    fn rfc8526_edit_data() {
        let config = InlineConfig::with_namespaces(
            [("nc", NS_BASE)],
            r#"<interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces">
                 <interface nc:operation="delete"><name>eth1</name></interface>
               </interfaces>"#,
        )
        .unwrap();
        let op = EditData::new(NmdaDatastore::Running, config)
            .default_operation(DefaultOperation::Merge);
        assert_renders(
            &op,
            r#"<edit-data xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
                          xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">
                 <datastore>ds:running</datastore>
                 <default-operation>merge</default-operation>
                 <config xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0">
                   <interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces">
                     <interface nc:operation="delete"><name>eth1</name></interface>
                   </interfaces>
                 </config>
               </edit-data>"#,
        );
        assert_renders(
            &EditData::from_url(NmdaDatastore::Candidate, "file:///c.xml"),
            &format!(
                r#"<edit-data xmlns="{NS_NMDA}" xmlns:ds="{NS_DATASTORES}"><datastore>ds:candidate</datastore><url>file:///c.xml</url></edit-data>"#
            ),
        );
    }
}
