//! Subtree and XPath filters (RFC 6241 section 6 and section 8.9), as used by get,
//! get-config and create-subscription, and their RFC 8526 get-data spelling.

use crate::operations::XmlWriter;

use super::util::{add_namespace, write_namespaces};
use crate::error::UsageError;
use crate::xml::{check_fragment, escape_attr, escape_text};

/// Selects part of a datastore or event stream.
///
/// A subtree filter is caller XML, checked once; an XPath filter (`:xpath` capability) is an
/// expression whose prefixes are declared on the filter element with
/// [`with_namespace`](Filter::with_namespace), because XPath prefixes resolve against the
/// namespace declarations in scope of the element holding the expression (RFC 6241 section 8.9.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter(Kind);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Subtree(String),
    XPath {
        select: String,
        namespaces: Vec<(String, String)>,
    },
}

impl Filter {
    /// A subtree filter (RFC 6241 section 6); `xml` must be a well-formed fragment that
    /// declares every prefix it uses. An empty filter selects nothing (section 6.4.2).
    pub fn subtree(xml: impl Into<String>) -> Result<Self, UsageError> {
        let xml = xml.into();
        check_fragment(&xml)?;
        Ok(Filter(Kind::Subtree(xml)))
    }

    /// An XPath 1.0 filter (RFC 6241 section 8.9); bind its prefixes with
    /// [`with_namespace`](Filter::with_namespace).
    pub fn xpath(select: impl Into<String>) -> Self {
        Filter(Kind::XPath {
            select: select.into(),
            namespaces: Vec::new(),
        })
    }

    /// Declares `xmlns:prefix="uri"` on the filter element so the XPath expression can use
    /// `prefix:`. Fails if `prefix` is not an NCName, is reserved, is already bound to another
    /// namespace, or if this is a subtree filter (declare namespaces inside the subtree).
    pub fn with_namespace(
        mut self,
        prefix: impl Into<String>,
        uri: impl Into<String>,
    ) -> Result<Self, UsageError> {
        match &mut self.0 {
            Kind::XPath { namespaces, .. } => add_namespace(namespaces, prefix.into(), uri.into())?,
            Kind::Subtree(_) => {
                return Err(UsageError::InvalidValue {
                    what: "filter namespace",
                    why: "a subtree filter declares its namespaces inside its own XML".into(),
                })
            }
        }
        Ok(self)
    }

    /// Writes `<filter type="subtree">...</filter>` or
    /// `<filter xmlns:p="..." type="xpath" select="..."/>`; the element takes the namespace
    /// in scope (base for get/get-config, notification for create-subscription).
    pub(crate) fn write(&self, out: &mut XmlWriter) {
        match &self.0 {
            Kind::Subtree(xml) if xml.is_empty() => out.push_str("<filter type=\"subtree\"/>"),
            Kind::Subtree(xml) => {
                out.push_str("<filter type=\"subtree\">");
                out.push_str(xml);
                out.push_str("</filter>");
            }
            Kind::XPath { select, namespaces } => {
                out.push_str("<filter");
                write_namespaces(out, namespaces);
                out.push_str(" type=\"xpath\" select=\"");
                out.push_str(&escape_attr(select));
                out.push_str("\"/>");
            }
        }
    }

    /// Writes the RFC 8526 section 3.1.1 form: `<subtree-filter>...</subtree-filter>` or
    /// `<xpath-filter xmlns:p="...">expr</xpath-filter>`.
    pub(crate) fn write_nmda(&self, out: &mut XmlWriter) {
        match &self.0 {
            Kind::Subtree(xml) if xml.is_empty() => out.push_str("<subtree-filter/>"),
            Kind::Subtree(xml) => {
                out.push_str("<subtree-filter>");
                out.push_str(xml);
                out.push_str("</subtree-filter>");
            }
            Kind::XPath { select, namespaces } => {
                out.push_str("<xpath-filter");
                write_namespaces(out, namespaces);
                out.push('>');
                out.push_str(&escape_text(select));
                out.push_str("</xpath-filter>");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::testutil::normalize;

    fn written(f: &Filter) -> String {
        let mut out = XmlWriter::new();
        f.write(&mut out);
        out.into_string()
    }

    /// RFC 6241 section 8.9.1 (xpath) and section 6.4 (subtree) filter forms.
    #[test]
    fn rfc_6241_forms() {
        let f = Filter::xpath("/t:top/t:users/t:user[t:name='fred']")
            .with_namespace("t", "http://example.com/schema/1.2/config")
            .unwrap();
        assert_eq!(
            normalize(&written(&f)),
            normalize(
                r#"<filter xmlns:t="http://example.com/schema/1.2/config"
                           type="xpath"
                           select="/t:top/t:users/t:user[t:name='fred']"/>"#
            )
        );
        let f = Filter::subtree(r#"<top xmlns="http://example.com/schema/1.2/config"/>"#).unwrap();
        assert_eq!(
            written(&f),
            r#"<filter type="subtree"><top xmlns="http://example.com/schema/1.2/config"/></filter>"#
        );
        assert_eq!(
            written(&Filter::subtree("").unwrap()),
            r#"<filter type="subtree"/>"#
        );
    }

    #[test]
    fn xpath_is_escaped() {
        let f = Filter::xpath(r#"/a[b<"x&y"]"#);
        assert_eq!(
            written(&f),
            r#"<filter type="xpath" select="/a[b&lt;&quot;x&amp;y&quot;]"/>"#
        );
        let mut out = XmlWriter::new();
        f.write_nmda(&mut out);
        assert_eq!(out, r#"<xpath-filter>/a[b&lt;"x&amp;y"]</xpath-filter>"#);
    }

    #[test]
    fn bad_prefix_rejected() {
        for prefix in ["", "1t", "a:b", "xmlns", "x y", "t\""] {
            assert!(
                matches!(
                    Filter::xpath("/t:a").with_namespace(prefix, "urn:x"),
                    Err(UsageError::InvalidValue { .. })
                ),
                "{prefix:?} accepted"
            );
        }
        assert!(Filter::xpath("/t:a")
            .with_namespace("t", "urn:x")
            .unwrap()
            .with_namespace("t", "urn:y")
            .is_err());
        assert!(Filter::subtree("<a/>")
            .unwrap()
            .with_namespace("t", "urn:x")
            .is_err());
    }

    #[test]
    fn malformed_subtree_rejected() {
        for bad in [
            "<a>",
            "<a></b>",
            "<t:a/>",
            "<!DOCTYPE a><a/>",
            "<a>&nbsp;</a>",
        ] {
            assert!(
                matches!(Filter::subtree(bad), Err(UsageError::MalformedXml(_))),
                "{bad:?} accepted"
            );
        }
    }
}
