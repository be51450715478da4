//! RFC 6241 retrieval: `<get>` (section 7.7) and `<get-config>` (section 7.1).

use crate::operations::XmlWriter;

use super::util::element;
use super::{Datastore, Filter, Operation, WithDefaults};

/// `<get>`: running configuration and state data (RFC 6241 section 7.7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Get {
    filter: Option<Filter>,
    with_defaults: Option<WithDefaults>,
}

impl Get {
    /// Everything the server has; add a [`filter`](Get::filter) to keep replies small.
    pub fn new() -> Self {
        Self::default()
    }

    /// Restricts the reply to what `filter` selects.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Chooses how default values are reported (RFC 6243).
    pub fn with_defaults(mut self, mode: WithDefaults) -> Self {
        self.with_defaults = Some(mode);
        self
    }
}

impl Operation for Get {
    fn write_xml(&self, out: &mut XmlWriter) {
        element(out, "get", |out| {
            if let Some(f) = &self.filter {
                f.write(out);
            }
            if let Some(wd) = self.with_defaults {
                wd.write(out);
            }
        });
    }
}

/// `<get-config>`: configuration data of one datastore (RFC 6241 section 7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetConfig {
    source: Datastore,
    filter: Option<Filter>,
    with_defaults: Option<WithDefaults>,
}

impl GetConfig {
    /// The whole configuration of `source`.
    pub fn new(source: Datastore) -> Self {
        GetConfig {
            source,
            filter: None,
            with_defaults: None,
        }
    }

    /// Restricts the reply to what `filter` selects.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Chooses how default values are reported (RFC 6243).
    pub fn with_defaults(mut self, mode: WithDefaults) -> Self {
        self.with_defaults = Some(mode);
        self
    }
}

impl Operation for GetConfig {
    fn write_xml(&self, out: &mut XmlWriter) {
        out.push_str("<get-config>");
        self.source.write_in("source", out);
        if let Some(f) = &self.filter {
            f.write(out);
        }
        if let Some(wd) = self.with_defaults {
            wd.write(out);
        }
        out.push_str("</get-config>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::testutil::assert_renders;

    /// RFC 6241 section 7.1 example.
    #[test]
    fn rfc6241_7_1_get_config() {
        let op = GetConfig::new(Datastore::Running).filter(
            Filter::subtree(
                r#"<top xmlns="http://example.com/schema/1.2/config">
                     <users/>
                   </top>"#,
            )
            .unwrap(),
        );
        assert_renders(
            &op,
            r#"<get-config>
                 <source>
                   <running/>
                 </source>
                 <filter type="subtree">
                   <top xmlns="http://example.com/schema/1.2/config">
                     <users/>
                   </top>
                 </filter>
               </get-config>"#,
        );
    }

    /// RFC 6241 section 7.7 example.
    #[test]
    fn rfc6241_7_7_get() {
        let op = Get::new().filter(
            Filter::subtree(
                r#"<top xmlns="http://example.com/schema/1.2/stats">
                     <interfaces>
                       <interface>
                         <ifName>eth0</ifName>
                       </interface>
                     </interfaces>
                   </top>"#,
            )
            .unwrap(),
        );
        assert_renders(
            &op,
            r#"<get>
                 <filter type="subtree">
                   <top xmlns="http://example.com/schema/1.2/stats">
                     <interfaces>
                       <interface>
                         <ifName>eth0</ifName>
                       </interface>
                     </interfaces>
                   </top>
                 </filter>
               </get>"#,
        );
        assert_renders(&Get::new(), "<get/>");
    }

    /// RFC 6243 appendix A.3.2 ('report-all' retrieval) request.
    #[test]
    fn rfc6243_report_all() {
        let op = Get::new()
            .filter(
                Filter::subtree(r#"<interfaces xmlns="http://example.com/ns/interfaces"/>"#)
                    .unwrap(),
            )
            .with_defaults(WithDefaults::ReportAll);
        assert_renders(
            &op,
            r#"<get>
                 <filter type="subtree">
                   <interfaces xmlns="http://example.com/ns/interfaces"/>
                 </filter>
                 <with-defaults
                   xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults">
                   report-all
                 </with-defaults>
               </get>"#,
        );
    }

    #[test]
    fn get_config_with_defaults_and_xpath() {
        let op = GetConfig::new(Datastore::Candidate)
            .filter(
                Filter::xpath("/t:top")
                    .with_namespace("t", "urn:t")
                    .unwrap(),
            )
            .with_defaults(WithDefaults::Trim);
        assert_renders(
            &op,
            r#"<get-config><source><candidate/></source>
                 <filter xmlns:t="urn:t" type="xpath" select="/t:top"/>
                 <with-defaults xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults">trim</with-defaults>
               </get-config>"#,
        );
    }
}
