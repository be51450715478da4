//! Inline configuration (`<config>`) and the "datastore or inline config" source choice.

use crate::operations::XmlWriter;

use bytes::Bytes;
use quick_xml::events::Event;
use quick_xml::Reader;

use super::util::{add_namespace, write_namespaces};
use super::Datastore;
use crate::error::UsageError;
use crate::xml::check_fragment;

/// Configuration data sent inline in a `<config>` element (edit-config, copy-config and
/// validate in RFC 6241 section 7, edit-data in RFC 8526 section 3.2).
///
/// The XML is checked for well-formedness once, here, so a malformed edit is a
/// [`UsageError`] on the caller's side rather than an `rpc-error` (or a broken session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineConfig {
    namespaces: Vec<(String, String)>,
    /// Shared, so a large configuration travels to the framed message without copies.
    xml: Bytes,
}

impl InlineConfig {
    /// Wraps the content of `<config>`; every prefix it uses must be declared inside it.
    pub fn new(xml: impl Into<String>) -> Result<Self, UsageError> {
        let xml = xml.into();
        check_fragment(&xml)?;
        Ok(InlineConfig {
            namespaces: Vec::new(),
            xml: Bytes::from(xml),
        })
    }

    /// Wraps the content of `<config>` and declares `xmlns:prefix="uri"` on `<config>` itself,
    /// as RFC 6241 section 7.2 does for `xc:operation`:
    /// `InlineConfig::with_namespaces([("xc", NS_BASE)], r#"<top xc:operation="delete"/>"#)`.
    pub fn with_namespaces<P, U>(
        namespaces: impl IntoIterator<Item = (P, U)>,
        xml: impl Into<String>,
    ) -> Result<Self, UsageError>
    where
        P: Into<String>,
        U: Into<String>,
    {
        let mut bindings = Vec::new();
        for (prefix, uri) in namespaces {
            add_namespace(&mut bindings, prefix.into(), uri.into())?;
        }
        let xml = xml.into();
        let mut wrapped = XmlWriter::new();
        wrapped.push_str("<config");
        write_namespaces(&mut wrapped, &bindings);
        wrapped.push('>');
        wrapped.push_str(&xml);
        wrapped.push_str("</config>");
        check_fragment(&wrapped.into_string())?;
        check_no_escape(&xml)?;
        Ok(InlineConfig {
            namespaces: bindings,
            xml: Bytes::from(xml),
        })
    }

    /// The content of `<config>` as given.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.xml).unwrap_or_default()
    }

    /// Writes `<config ...>content</config>`; `<config>` inherits the operation's namespace.
    pub(crate) fn write(&self, out: &mut XmlWriter) {
        out.push_str("<config");
        write_namespaces(out, &self.namespaces);
        out.push('>');
        out.push_shared(&self.xml);
        out.push_str("</config>");
    }
}

/// Checking the fragment inside a wrapper would accept `</config><evil/><config>`, which closes
/// the wrapper early; a stand-alone pass over the fragment (no namespace resolution, so the
/// wrapper's prefixes are not needed) refuses an end tag that was never opened.
fn check_no_escape(xml: &str) -> Result<(), UsageError> {
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => return Ok(()),
            Ok(_) => {}
            Err(e) => {
                return Err(UsageError::MalformedXml(format!(
                    "{e} (at byte {})",
                    reader.buffer_position()
                )))
            }
        }
    }
}

/// Where copy-config and validate read a configuration from: a datastore (or URL), or the
/// configuration itself inline (RFC 6241 sections 7.3 and 8.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A datastore or URL, written as `<source><running/></source>`.
    Datastore(Datastore),
    /// Inline configuration, written as `<source><config>...</config></source>`.
    Config(InlineConfig),
}

impl From<Datastore> for Source {
    fn from(ds: Datastore) -> Self {
        Source::Datastore(ds)
    }
}

impl From<InlineConfig> for Source {
    fn from(config: InlineConfig) -> Self {
        Source::Config(config)
    }
}

impl Source {
    /// Writes `<source>...</source>`.
    pub(crate) fn write(&self, out: &mut XmlWriter) {
        out.push_str("<source>");
        match self {
            Source::Datastore(ds) => ds.write(out),
            Source::Config(config) => config.write(out),
        }
        out.push_str("</source>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::NS_BASE;

    #[test]
    fn plain_config_needs_its_own_declarations() {
        assert!(InlineConfig::new("<top xmlns='urn:x'><a>1</a></top><b/>").is_ok());
        for bad in ["<top>", "<a></b>", "<xc:a/>", "</config><x/><config>"] {
            assert!(
                matches!(InlineConfig::new(bad), Err(UsageError::MalformedXml(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn declared_namespaces_go_on_config() {
        let cfg = InlineConfig::with_namespaces([("xc", NS_BASE)], r#"<a xc:operation="delete"/>"#)
            .unwrap();
        let mut out = XmlWriter::new();
        Source::from(cfg).write(&mut out);
        assert_eq!(
            out.into_string(),
            format!(
                r#"<source><config xmlns:xc="{NS_BASE}"><a xc:operation="delete"/></config></source>"#
            )
        );
    }

    #[test]
    fn wrapped_check_cannot_be_escaped() {
        for bad in [
            "</config><x/><config>",
            "<a>",
            "</a>",
            "<yy:a/>",
            "<!-- open",
            "<![CDATA[ open",
        ] {
            assert!(
                matches!(
                    InlineConfig::with_namespaces([("xc", NS_BASE)], bad),
                    Err(UsageError::MalformedXml(_))
                ),
                "{bad:?} accepted"
            );
        }
        assert!(matches!(
            InlineConfig::with_namespaces([("xmlns", "urn:x")], "<a/>"),
            Err(UsageError::InvalidValue { .. })
        ));
    }
}
