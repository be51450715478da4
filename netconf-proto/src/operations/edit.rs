//! RFC 6241 operations that change or check configuration: `<edit-config>` (section 7.2),
//! `<copy-config>` (7.3), `<delete-config>` (7.4) and `<validate>` (8.6).

use crate::operations::XmlWriter;

use super::{Datastore, InlineConfig, Operation, Source, WithDefaults};
use crate::xml::write_leaf;

/// How `<edit-config>` treats data that carries no `operation` attribute (RFC 6241 section 7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DefaultOperation {
    /// `merge` (the server's default): merge into the existing configuration.
    Merge,
    /// `replace`: replace the existing configuration with the one given.
    Replace,
    /// `none`: change only what carries an explicit `operation` attribute.
    None,
}

impl DefaultOperation {
    /// The value as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultOperation::Merge => "merge",
            DefaultOperation::Replace => "replace",
            DefaultOperation::None => "none",
        }
    }
}

/// Whether `<edit-config>` validates before applying (RFC 6241 section 8.6.4, `:validate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TestOption {
    /// `test-then-set`: validate, and apply only if valid.
    TestThenSet,
    /// `set`: apply without validating first.
    Set,
    /// `test-only`: validate without applying (`:validate:1.1`).
    TestOnly,
}

impl TestOption {
    /// The value as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            TestOption::TestThenSet => "test-then-set",
            TestOption::Set => "set",
            TestOption::TestOnly => "test-only",
        }
    }
}

/// What `<edit-config>` does after an error (RFC 6241 section 7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorOption {
    /// `stop-on-error` (the server's default): stop at the first error.
    StopOnError,
    /// `continue-on-error`: record the error and carry on.
    ContinueOnError,
    /// `rollback-on-error`: undo the whole edit (`:rollback-on-error`, section 8.5).
    RollbackOnError,
}

impl ErrorOption {
    /// The value as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorOption::StopOnError => "stop-on-error",
            ErrorOption::ContinueOnError => "continue-on-error",
            ErrorOption::RollbackOnError => "rollback-on-error",
        }
    }
}

/// The `edit-content` choice shared by edit-config and edit-data: inline or at a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EditContent {
    Config(InlineConfig),
    Url(String),
}

impl EditContent {
    pub(crate) fn write(&self, out: &mut XmlWriter) {
        match self {
            EditContent::Config(config) => config.write(out),
            EditContent::Url(url) => write_leaf(out, "url", url),
        }
    }
}

/// `<edit-config>`: loads part of a configuration into a target datastore (RFC 6241 section 7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditConfig {
    target: Datastore,
    default_operation: Option<DefaultOperation>,
    test_option: Option<TestOption>,
    error_option: Option<ErrorOption>,
    content: EditContent,
}

impl EditConfig {
    /// Edits `target` with inline configuration.
    pub fn new(target: Datastore, config: InlineConfig) -> Self {
        Self::with_content(target, EditContent::Config(config))
    }

    /// Edits `target` with the configuration stored at `url` (`:url`, section 8.8).
    pub fn from_url(target: Datastore, url: impl Into<String>) -> Self {
        Self::with_content(target, EditContent::Url(url.into()))
    }

    fn with_content(target: Datastore, content: EditContent) -> Self {
        EditConfig {
            target,
            default_operation: None,
            test_option: None,
            error_option: None,
            content,
        }
    }

    /// Sets `<default-operation>`; left out, the server merges.
    pub fn default_operation(mut self, op: DefaultOperation) -> Self {
        self.default_operation = Some(op);
        self
    }

    /// Sets `<test-option>`; left out, the server uses test-then-set (if it has `:validate`).
    pub fn test_option(mut self, option: TestOption) -> Self {
        self.test_option = Some(option);
        self
    }

    /// Sets `<error-option>`; left out, the server stops on the first error.
    pub fn error_option(mut self, option: ErrorOption) -> Self {
        self.error_option = Some(option);
        self
    }
}

impl Operation for EditConfig {
    fn write_xml(&self, out: &mut XmlWriter) {
        out.push_str("<edit-config>");
        self.target.write_in("target", out);
        if let Some(op) = self.default_operation {
            write_leaf(out, "default-operation", op.as_str());
        }
        if let Some(option) = self.test_option {
            write_leaf(out, "test-option", option.as_str());
        }
        if let Some(option) = self.error_option {
            write_leaf(out, "error-option", option.as_str());
        }
        self.content.write(out);
        out.push_str("</edit-config>");
    }
}

/// `<copy-config>`: replaces a whole datastore with another one or with inline
/// configuration (RFC 6241 section 7.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyConfig {
    target: Datastore,
    source: Source,
    with_defaults: Option<WithDefaults>,
}

impl CopyConfig {
    /// Copies `source` (a [`Datastore`] or an [`InlineConfig`]) over `target`.
    pub fn new(target: Datastore, source: impl Into<Source>) -> Self {
        CopyConfig {
            target,
            source: source.into(),
            with_defaults: None,
        }
    }

    /// Chooses how defaults are copied, e.g. to a URL (RFC 6243 section 4.5.3).
    pub fn with_defaults(mut self, mode: WithDefaults) -> Self {
        self.with_defaults = Some(mode);
        self
    }
}

impl Operation for CopyConfig {
    fn write_xml(&self, out: &mut XmlWriter) {
        out.push_str("<copy-config>");
        self.target.write_in("target", out);
        self.source.write(out);
        if let Some(wd) = self.with_defaults {
            wd.write(out);
        }
        out.push_str("</copy-config>");
    }
}

/// `<delete-config>`: deletes a datastore; `running` cannot be deleted (RFC 6241 section 7.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteConfig {
    target: Datastore,
}

impl DeleteConfig {
    /// Deletes `target` (usually [`Datastore::Startup`] or a URL).
    pub fn new(target: Datastore) -> Self {
        DeleteConfig { target }
    }
}

impl Operation for DeleteConfig {
    fn write_xml(&self, out: &mut XmlWriter) {
        out.push_str("<delete-config>");
        self.target.write_in("target", out);
        out.push_str("</delete-config>");
    }
}

/// `<validate>`: checks a configuration without applying it (RFC 6241 section 8.6, `:validate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validate {
    source: Source,
}

impl Validate {
    /// Validates `source` (a [`Datastore`] or an [`InlineConfig`]).
    pub fn new(source: impl Into<Source>) -> Self {
        Validate {
            source: source.into(),
        }
    }
}

impl Operation for Validate {
    fn write_xml(&self, out: &mut XmlWriter) {
        out.push_str("<validate>");
        self.source.write(out);
        out.push_str("</validate>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::testutil::assert_renders;
    use crate::xml::NS_BASE;

    /// RFC 6241 section 7.2, first example (set the MTU).
    #[test]
    fn rfc6241_7_2_edit_config() {
        let config = InlineConfig::new(
            r#"<top xmlns="http://example.com/schema/1.2/config">
                 <interface>
                   <name>Ethernet0/0</name>
                   <mtu>1500</mtu>
                 </interface>
               </top>"#,
        )
        .unwrap();
        assert_renders(
            &EditConfig::new(Datastore::Running, config),
            r#"<edit-config>
                 <target>
                   <running/>
                 </target>
                 <config>
                   <top xmlns="http://example.com/schema/1.2/config">
                     <interface>
                       <name>Ethernet0/0</name>
                       <mtu>1500</mtu>
                     </interface>
                   </top>
                 </config>
               </edit-config>"#,
        );
    }

    /// RFC 6241 section 7.2, second example (delete with default-operation none and xc:).
    #[test]
    fn rfc6241_7_2_edit_config_delete() {
        let config = InlineConfig::with_namespaces(
            [("xc", NS_BASE)],
            r#"<top xmlns="http://example.com/schema/1.2/config">
                 <interface xc:operation="delete">
                   <name>Ethernet0/0</name>
                 </interface>
               </top>"#,
        )
        .unwrap();
        let op =
            EditConfig::new(Datastore::Running, config).default_operation(DefaultOperation::None);
        assert_renders(
            &op,
            r#"<edit-config>
                 <target>
                   <running/>
                 </target>
                 <default-operation>none</default-operation>
                 <config xmlns:xc="urn:ietf:params:xml:ns:netconf:base:1.0">
                   <top xmlns="http://example.com/schema/1.2/config">
                     <interface xc:operation="delete">
                       <name>Ethernet0/0</name>
                     </interface>
                   </top>
                 </config>
               </edit-config>"#,
        );
    }

    #[test]
    fn edit_config_options_in_schema_order() {
        let op = EditConfig::from_url(Datastore::Candidate, "file:///x?a=1&b=2")
            .error_option(ErrorOption::RollbackOnError)
            .test_option(TestOption::TestOnly)
            .default_operation(DefaultOperation::Replace);
        assert_renders(
            &op,
            r#"<edit-config><target><candidate/></target>
                 <default-operation>replace</default-operation>
                 <test-option>test-only</test-option>
                 <error-option>rollback-on-error</error-option>
                 <url>file:///x?a=1&amp;b=2</url>
               </edit-config>"#,
        );
        let names = [TestOption::TestThenSet, TestOption::Set].map(TestOption::as_str);
        assert_eq!(names, ["test-then-set", "set"]);
        let names =
            [ErrorOption::StopOnError, ErrorOption::ContinueOnError].map(ErrorOption::as_str);
        assert_eq!(names, ["stop-on-error", "continue-on-error"]);
        assert_eq!(DefaultOperation::Merge.as_str(), "merge");
    }

    /// RFC 6241 section 7.3 example.
    #[test]
    fn rfc6241_7_3_copy_config() {
        let op = CopyConfig::new(
            Datastore::Running,
            Datastore::Url("https://user:password@example.com/cfg/new.txt".into()),
        );
        assert_renders(
            &op,
            r#"<copy-config>
                 <target>
                   <running/>
                 </target>
                 <source>
                   <url>https://user:password@example.com/cfg/new.txt</url>
                 </source>
               </copy-config>"#,
        );
    }

    #[test]
    fn copy_config_inline_with_defaults() {
        let op = CopyConfig::new(
            Datastore::Startup,
            InlineConfig::new("<a xmlns='urn:a'/>").unwrap(),
        )
        .with_defaults(WithDefaults::Explicit);
        assert_renders(
            &op,
            r#"<copy-config><target><startup/></target>
                 <source><config><a xmlns='urn:a'/></config></source>
                 <with-defaults xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults">explicit</with-defaults>
               </copy-config>"#,
        );
    }

    /// RFC 6241 section 7.4 example.
    #[test]
    fn rfc6241_7_4_delete_config() {
        assert_renders(
            &DeleteConfig::new(Datastore::Startup),
            r#"<delete-config>
                 <target>
                   <startup/>
                 </target>
               </delete-config>"#,
        );
    }

    /// RFC 6241 section 8.6.5 example.
    #[test]
    fn rfc6241_8_6_validate() {
        assert_renders(
            &Validate::new(Datastore::Candidate),
            r#"<validate>
                 <source>
                   <candidate/>
                 </source>
               </validate>"#,
        );
        let inline = Validate::new(InlineConfig::new("<a xmlns='urn:a'>x &lt; y</a>").unwrap());
        assert_renders(
            &inline,
            "<validate><source><config><a xmlns='urn:a'>x &lt; y</a></config></source></validate>",
        );
    }
}
