//! RFC 6241 session control: `<close-session>` (section 7.8) and `<kill-session>` (7.9).

use crate::operations::XmlWriter;

use std::fmt::Write as _;

use super::Operation;
use crate::error::UsageError;

/// `<close-session>`: asks the server to end this session gracefully (RFC 6241 section 7.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloseSession;

impl CloseSession {
    /// The one and only form.
    pub fn new() -> Self {
        CloseSession
    }
}

impl Operation for CloseSession {
    fn write_xml(&self, out: &mut XmlWriter) {
        out.push_str("<close-session/>");
    }
}

/// `<kill-session>`: forces another session to end, releasing its locks and aborting its
/// operations (RFC 6241 section 7.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillSession {
    session_id: u32,
}

impl KillSession {
    /// Kills session `session_id`; 0 is refused because session-ids start at 1
    /// (`session-id-type`, RFC 6241 section 10).
    pub fn new(session_id: u32) -> Result<Self, UsageError> {
        if session_id == 0 {
            return Err(UsageError::InvalidValue {
                what: "session-id",
                why: "session-ids start at 1".into(),
            });
        }
        Ok(KillSession { session_id })
    }

    /// The session to kill.
    pub fn session_id(&self) -> u32 {
        self.session_id
    }
}

impl Operation for KillSession {
    fn write_xml(&self, out: &mut XmlWriter) {
        let _ = write!(
            out,
            "<kill-session><session-id>{}</session-id></kill-session>",
            self.session_id
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::testutil::assert_renders;

    /// RFC 6241 section 7.8 example.
    #[test]
    fn rfc6241_7_8_close_session() {
        assert_renders(&CloseSession::new(), "<close-session/>");
    }

    /// RFC 6241 section 7.9 example.
    #[test]
    fn rfc6241_7_9_kill_session() {
        assert_renders(
            &KillSession::new(4).unwrap(),
            r#"<kill-session>
                 <session-id>4</session-id>
               </kill-session>"#,
        );
        assert!(matches!(
            KillSession::new(0),
            Err(UsageError::InvalidValue { .. })
        ));
    }
}
