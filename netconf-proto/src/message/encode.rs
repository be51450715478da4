//! Writing envelopes. Callers' XML was checked when its builder was made, so writing
//! cannot fail.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

use super::Reply;
#[cfg(test)]
use super::Request;
use crate::capabilities::Capabilities;
use crate::operations::Operation;
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

/// `<rpc message-id=".." xmlns="base">op</rpc>`.
pub fn write_rpc(message_id: u64, op: &(impl Operation + ?Sized)) -> String {
    let mut out = String::with_capacity(256);
    let _ = write!(out, "<rpc message-id=\"{message_id}\" xmlns=\"{NS_BASE}\">");
    op.write_xml(&mut out);
    out.push_str("</rpc>");
    out
}

/// `<rpc-reply ...echoed attributes...>content</rpc-reply>`, written straight into `out`
/// because a `<data>` reply can be large and should be copied once.
#[cfg(test)]
pub(crate) fn write_reply(request: &Request, reply: &Reply, out: &mut BytesMut) {
    write_reply_parts(&request.reply_open, &request.reply_close, reply, out)
}

/// Writes a reply between the given `<rpc-reply ...>` open and close tags.
pub(crate) fn write_reply_parts(open: &str, close: &str, reply: &Reply, out: &mut BytesMut) {
    out.reserve(
        open.len()
            + close.len()
            + match reply {
                Reply::Data(d) | Reply::Raw(d) => d.len() + 16,
                _ => 256,
            },
    );
    out.put_slice(open.as_bytes());
    match reply {
        Reply::Ok => out.put_slice(b"<ok/>"),
        Reply::Data(data) if data.is_empty() => out.put_slice(b"<data/>"),
        Reply::Data(data) => {
            out.put_slice(b"<data>");
            out.put_slice(data);
            out.put_slice(b"</data>");
        }
        Reply::Raw(raw) => out.put_slice(raw),
        Reply::Errors(errors) => {
            let mut s = String::new();
            for e in errors {
                e.write_xml(&mut s);
            }
            out.put_slice(s.as_bytes());
        }
    }
    out.put_slice(close.as_bytes());
}

/// `<notification>` with `<eventTime>` and the (checked) content.
pub fn write_notification(event_time: &str, content: &str) -> String {
    format!(
        "<notification xmlns=\"{NS_NOTIFICATION}\"><eventTime>{}</eventTime>{content}</notification>",
        escape_text(event_time)
    )
}
