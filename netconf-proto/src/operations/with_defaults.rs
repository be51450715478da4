//! The RFC 6243 with-defaults retrieval parameter.

use crate::operations::XmlWriter;

use crate::xml::NS_WITH_DEFAULTS;

/// How the server reports leaves that hold their schema default (RFC 6243 section 3).
///
/// Sent only when the server advertises the `:with-defaults` capability with this mode in
/// `also-supported` (or as its basic mode); otherwise the server's basic mode applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WithDefaults {
    /// `report-all`: every leaf, defaults included (section 3.1).
    ReportAll,
    /// `report-all-tagged`: every leaf, defaults marked with `wd:default="true"` (section 3.4).
    ReportAllTagged,
    /// `trim`: leaves equal to their default are left out (section 3.2).
    Trim,
    /// `explicit`: only leaves set by a client, default-valued or not (section 3.3).
    Explicit,
}

impl WithDefaults {
    /// The mode as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            WithDefaults::ReportAll => "report-all",
            WithDefaults::ReportAllTagged => "report-all-tagged",
            WithDefaults::Trim => "trim",
            WithDefaults::Explicit => "explicit",
        }
    }

    /// Writes the leaf with its own namespace, as RFC 6243 section 4.5 augments it into
    /// get, get-config and copy-config.
    pub(crate) fn write(self, out: &mut XmlWriter) {
        out.push_str("<with-defaults xmlns=\"");
        out.push_str(NS_WITH_DEFAULTS);
        out.push_str("\">");
        out.push_str(self.as_str());
        out.push_str("</with-defaults>");
    }

    /// Writes the leaf without a namespace declaration: RFC 8526 get-data `uses` the
    /// with-defaults grouping, so there the leaf is in the NMDA namespace in scope.
    pub(crate) fn write_unqualified(self, out: &mut XmlWriter) {
        out.push_str("<with-defaults>");
        out.push_str(self.as_str());
        out.push_str("</with-defaults>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let mut out = XmlWriter::new();
        WithDefaults::Trim.write(&mut out);
        assert_eq!(
            out,
            "<with-defaults xmlns=\"urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults\">trim</with-defaults>"
        );
        let names: Vec<_> = [
            WithDefaults::ReportAll,
            WithDefaults::ReportAllTagged,
            WithDefaults::Trim,
            WithDefaults::Explicit,
        ]
        .map(WithDefaults::as_str)
        .into();
        assert_eq!(
            names,
            ["report-all", "report-all-tagged", "trim", "explicit"]
        );
    }
}
