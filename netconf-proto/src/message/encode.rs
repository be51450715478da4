//! Writing envelopes. Callers' XML was checked when its builder was made, so writing
//! cannot fail.

use std::fmt::Write as _;

#[cfg(test)]
use bytes::{BufMut, BytesMut};

use super::Reply;
#[cfg(test)]
use super::Request;
use crate::capabilities::Capabilities;
use crate::operations::{Operation, XmlWriter};
use crate::xml::{escape_text, NS_BASE, NS_NOTIFICATION};

/// `<hello>` with our capabilities and, for a server, the session-id.
pub fn write_hello(capabilities: &Capabilities, session_id: Option<u32>) -> String {
    let mut out = String::with_capacity(128 + 64 * capabilities.len());
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><hello xmlns=\"{NS_BASE}\"><capabilities>"
    );
    for uri in capabilities.uris() {
        let _ = write!(out, "<capability>{}</capability>", escape_text(uri));
    }
    out.push_str("</capabilities>");
    if let Some(id) = session_id {
        let _ = write!(out, "<session-id>{id}</session-id>");
    }
    out.push_str("</hello>");
    out
}

/// `<rpc message-id=".." xmlns="base">op</rpc>`, into `out` (as parts: a large `<config>`
/// inside stays shared).
pub fn write_rpc(message_id: u64, op: &(impl Operation + ?Sized), out: &mut XmlWriter) {
    // Not through `fmt`, which costs more than the rest of a small request's envelope.
    out.push_str("<rpc message-id=\"");
    out.push_str(itoa::Buffer::new().format(message_id));
    out.push_str("\" xmlns=\"");
    out.push_str(NS_BASE);
    out.push_str("\">");
    op.write_xml(out);
    out.push_str("</rpc>");
}

/// `<rpc-reply ...echoed attributes...>content</rpc-reply>`, unframed (for tests).
#[cfg(test)]
pub(crate) fn write_reply(request: &Request, reply: &Reply, out: &mut BytesMut) {
    let mut scratch = String::new();
    for part in reply_parts(&request.reply_envelope, reply, &mut scratch) {
        out.put_slice(part);
    }
}

/// The start and end tags of the reply to one `<rpc>`, in one buffer: the request's
/// prefix, and every attribute of its `<rpc>` echoed (RFC 6241 section 4.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReplyEnvelope {
    text: String,
    open_len: usize,
}

impl ReplyEnvelope {
    /// The envelope answering `<{root_qname}{attributes_raw}>`.
    pub(crate) fn new(root_qname: &str, attributes_raw: &str) -> Self {
        let prefix = root_qname.strip_suffix("rpc").unwrap_or_default();
        let mut text = String::with_capacity(2 * prefix.len() + attributes_raw.len() + 24);
        for part in ["<", prefix, "rpc-reply", attributes_raw, ">"] {
            text.push_str(part);
        }
        let open_len = text.len();
        for part in ["</", prefix, "rpc-reply>"] {
            text.push_str(part);
        }
        ReplyEnvelope { text, open_len }
    }

    /// The envelope of a reply to an `<rpc>` whose attributes could not be read: in the
    /// base namespace, and nothing echoed.
    pub(crate) fn unechoed() -> Self {
        ReplyEnvelope::new("rpc", &format!(" xmlns=\"{NS_BASE}\""))
    }

    /// `<rpc-reply ...>`.
    pub(crate) fn open(&self) -> &str {
        &self.text[..self.open_len]
    }

    /// `</rpc-reply>`.
    pub(crate) fn close(&self) -> &str {
        &self.text[self.open_len..]
    }
}

/// The reply message as consecutive parts, so the framing can copy a large payload once,
/// straight from the caller's buffer. `scratch` holds rendered `<rpc-error>`s.
pub(crate) fn reply_parts<'a>(
    envelope: &'a ReplyEnvelope,
    reply: &'a Reply,
    scratch: &'a mut String,
) -> [&'a [u8]; 5] {
    let (before, body, after): (&[u8], &[u8], &[u8]) = match reply {
        Reply::Ok => (b"<ok/>", b"", b""),
        Reply::Data(data) if data.is_empty() => (b"<data/>", b"", b""),
        Reply::Data(data) => (b"<data>", data, b"</data>"),
        Reply::Raw(raw) => (b"", raw, b""),
        Reply::Errors(errors) => {
            for e in errors {
                e.write_xml(scratch);
            }
            (b"", scratch.as_bytes(), b"")
        }
    };
    [
        envelope.open().as_bytes(),
        before,
        body,
        after,
        envelope.close().as_bytes(),
    ]
}

/// `<notification>` with `<eventTime>` and the (checked) content.
pub fn write_notification(event_time: &str, content: &str) -> String {
    format!(
        "<notification xmlns=\"{NS_NOTIFICATION}\"><eventTime>{}</eventTime>{content}</notification>",
        escape_text(event_time)
    )
}
