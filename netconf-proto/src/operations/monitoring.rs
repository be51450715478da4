//! RFC 6022 `<get-schema>`: fetches a data model the server advertises, so a client can
//! learn models it was not built with.

use crate::operations::XmlWriter;

use super::Operation;
use crate::xml::{write_leaf, NS_MONITORING};

/// The schema language to return (RFC 6022 section 2.1.3, `schema-format` identities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaFormat {
    /// `yang` (RFC 6020).
    Yang,
    /// `yin`, the XML form of YANG.
    Yin,
    /// `xsd`, W3C XML Schema.
    Xsd,
    /// `rng`, RELAX NG.
    Rng,
    /// `rnc`, RELAX NG compact syntax.
    Rnc,
}

impl SchemaFormat {
    /// The identity name; unprefixed, it resolves in the monitoring namespace in scope.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaFormat::Yang => "yang",
            SchemaFormat::Yin => "yin",
            SchemaFormat::Xsd => "xsd",
            SchemaFormat::Rng => "rng",
            SchemaFormat::Rnc => "rnc",
        }
    }
}

/// `<get-schema>` (RFC 6022 section 3.1), in the ietf-netconf-monitoring namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetSchema {
    identifier: String,
    version: Option<String>,
    format: Option<SchemaFormat>,
}

impl GetSchema {
    /// Asks for the schema named `identifier` (e.g. a YANG module name).
    pub fn new(identifier: impl Into<String>) -> Self {
        GetSchema {
            identifier: identifier.into(),
            version: None,
            format: None,
        }
    }

    /// Picks a version (for YANG, a revision date); left out, the server picks
    /// if it has only one.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Picks the schema language; left out, the server uses YANG.
    pub fn format(mut self, format: SchemaFormat) -> Self {
        self.format = Some(format);
        self
    }
}

impl Operation for GetSchema {
    fn write_xml(&self, out: &mut XmlWriter) {
        out.push_str("<get-schema xmlns=\"");
        out.push_str(NS_MONITORING);
        out.push_str("\">");
        write_leaf(out, "identifier", &self.identifier);
        if let Some(version) = &self.version {
            write_leaf(out, "version", version);
        }
        if let Some(format) = self.format {
            write_leaf(out, "format", format.as_str());
        }
        out.push_str("</get-schema>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::testutil::assert_renders;

    /// RFC 6022 section 3.1 example.
    #[test]
    fn rfc6022_get_schema() {
        let op = GetSchema::new("foo")
            .version("1.0")
            .format(SchemaFormat::Xsd);
        assert_renders(
            &op,
            r#"<get-schema
                 xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring">
                 <identifier>foo</identifier>
                 <version>1.0</version>
                 <format>xsd</format>
               </get-schema>"#,
        );
    }

    #[test]
    fn identifier_only_and_escaped() {
        assert_renders(
            &GetSchema::new("a&b"),
            r#"<get-schema xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"><identifier>a&amp;b</identifier></get-schema>"#,
        );
        let formats = [
            SchemaFormat::Yang,
            SchemaFormat::Yin,
            SchemaFormat::Rng,
            SchemaFormat::Rnc,
        ]
        .map(SchemaFormat::as_str);
        assert_eq!(formats, ["yang", "yin", "rng", "rnc"]);
    }
}
