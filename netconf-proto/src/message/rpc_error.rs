//! `<rpc-error>` (RFC 6241 section 4.3 and appendix A), fully typed.

use std::fmt;
use std::fmt::Write as _;

use crate::message::payload::XmlPayload;
use crate::xml::{escape_attr, escape_text};

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $wire:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($variant,)*
            /// A value this library does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// The value as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)*
                    $name::Other(s) => s,
                }
            }

            /// Parses the wire form; unknown values become `Other`.
            pub fn parse(s: &str) -> Self {
                match s.trim() {
                    $($wire => $name::$variant,)*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// The conceptual layer where the error occurred.
    ErrorType { Transport = "transport", Rpc = "rpc", Protocol = "protocol", Application = "application" }
);

wire_enum!(
    /// `<error-tag>`, RFC 6241 appendix A.
    ErrorTag {
        InUse = "in-use",
        InvalidValue = "invalid-value",
        TooBig = "too-big",
        MissingAttribute = "missing-attribute",
        BadAttribute = "bad-attribute",
        UnknownAttribute = "unknown-attribute",
        MissingElement = "missing-element",
        BadElement = "bad-element",
        UnknownElement = "unknown-element",
        UnknownNamespace = "unknown-namespace",
        AccessDenied = "access-denied",
        LockDenied = "lock-denied",
        ResourceDenied = "resource-denied",
        RollbackFailed = "rollback-failed",
        DataExists = "data-exists",
        DataMissing = "data-missing",
        OperationNotSupported = "operation-not-supported",
        OperationFailed = "operation-failed",
        PartialOperation = "partial-operation",
        MalformedMessage = "malformed-message",
    }
);

wire_enum!(
    /// `<error-severity>`.
    ErrorSeverity { Error = "error", Warning = "warning" }
);

/// `<error-message>` with its optional `xml:lang`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMessage {
    pub text: String,
    pub lang: Option<String>,
}

/// One `<rpc-error>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    pub error_type: ErrorType,
    pub tag: ErrorTag,
    pub severity: ErrorSeverity,
    pub app_tag: Option<String>,
    /// An XPath expression; its prefixes are those in scope in the reply.
    pub path: Option<String>,
    pub message: Option<ErrorMessage>,
    /// The raw content of `<error-info>` (e.g. `<bad-element>`, `<session-id>`).
    pub info: Option<XmlPayload>,
}

impl RpcError {
    /// A new error with severity `error` and nothing optional set.
    pub fn new(error_type: ErrorType, tag: ErrorTag) -> Self {
        RpcError {
            error_type,
            tag,
            severity: ErrorSeverity::Error,
            app_tag: None,
            path: None,
            message: None,
            info: None,
        }
    }

    /// Sets `<error-message>` (English, `xml:lang="en"`).
    pub fn with_message(mut self, text: impl Into<String>) -> Self {
        self.message = Some(ErrorMessage {
            text: text.into(),
            lang: Some("en".into()),
        });
        self
    }

    pub fn with_severity(mut self, severity: ErrorSeverity) -> Self {
        self.severity = severity;
        self
    }

    pub fn with_app_tag(mut self, app_tag: impl Into<String>) -> Self {
        self.app_tag = Some(app_tag.into());
        self
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Sets raw `<error-info>` content. The XML must be a well-formed fragment.
    pub fn with_info_xml(mut self, xml: &str) -> Result<Self, crate::UsageError> {
        crate::xml::check_fragment(xml)?;
        self.info = Some(XmlPayload::detached(bytes::Bytes::copy_from_slice(
            xml.as_bytes(),
        )));
        Ok(self)
    }

    /// True unless the severity is `warning`: only a warning leaves the operation
    /// successful, so a severity this library does not know counts as an error (fail closed).
    pub fn is_error(&self) -> bool {
        self.severity != ErrorSeverity::Warning
    }

    /// Appends this error as `<rpc-error>` XML (in the base namespace, which the reply declares).
    pub fn write_xml(&self, out: &mut String) {
        let _ = write!(
            out,
            "<rpc-error><error-type>{}</error-type><error-tag>{}</error-tag><error-severity>{}</error-severity>",
            self.error_type, self.tag, self.severity
        );
        if let Some(app_tag) = &self.app_tag {
            crate::xml::write_leaf(out, "error-app-tag", app_tag);
        }
        if let Some(path) = &self.path {
            crate::xml::write_leaf(out, "error-path", path);
        }
        if let Some(m) = &self.message {
            match &m.lang {
                Some(lang) => {
                    let _ = write!(out, "<error-message xml:lang=\"{}\">", escape_attr(lang));
                }
                None => out.push_str("<error-message>"),
            }
            let _ = write!(out, "{}</error-message>", escape_text(&m.text));
        }
        if let Some(info) = &self.info {
            let _ = write!(out, "<error-info>{}</error-info>", info.as_str());
        }
        out.push_str("</rpc-error>");
    }
}

impl fmt::Display for RpcError {
    /// One readable line: `error operation-failed (application) at /path: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.severity, self.tag, self.error_type)?;
        if let Some(app_tag) = &self.app_tag {
            write!(f, " [{app_tag}]")?;
        }
        if let Some(path) = &self.path {
            write!(f, " at {}", path.trim())?;
        }
        if let Some(m) = &self.message {
            write!(f, ": {}", m.text.trim())?;
        }
        Ok(())
    }
}
