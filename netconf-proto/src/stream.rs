//! Receiving a reply's `<data>` as it arrives, without holding the message: recognising,
//! from the first bytes of a message, that it is the `<data>` reply to a streamed RPC; and
//! handing out the content while holding back only what may still turn out to be the
//! closing tags (or the first bytes of a character split by the transport).

use bytes::{Bytes, BytesMut};
use memchr::memrchr;
use quick_xml::events::Event as XmlEvent;
use quick_xml::NsReader;

use crate::xml::NS_BASE;

/// What the first bytes of a message say.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sniff {
    /// Not enough yet.
    NeedMore,
    /// Not a `<data>` reply to stream: receive it whole as usual.
    Whole,
    /// `<rpc-reply message-id=..>` whose first child is `<data>`: stream its content.
    Data {
        message_id: String,
        /// Where the content of `<data>` starts in the message.
        content_start: usize,
        /// The end tags that close the message: `</data>` and `</rpc-reply>` as written.
        close_data: Vec<u8>,
        close_root: Vec<u8>,
    },
}

/// A message whose start has not shown its kind within this many bytes is received whole.
const SNIFF_LIMIT: usize = 64 * 1024;

/// Looks at the start of a message (`prefix`) for `<rpc-reply ...><data ...>`.
pub(crate) fn sniff(prefix: &[u8]) -> Sniff {
    // Only the first SNIFF_LIMIT bytes count (the same decision whatever arrived since),
    // and only complete tags can be judged: parse up to the last `>` among them.
    let whole_len = prefix.len();
    let prefix = &prefix[..whole_len.min(SNIFF_LIMIT + 1)];
    let Some(last_gt) = memrchr(b'>', prefix) else {
        return if prefix.len() > SNIFF_LIMIT {
            Sniff::Whole
        } else {
            Sniff::NeedMore
        };
    };
    // Judge the valid UTF-8 before any bad byte: where the data starts before it, the
    // stream reports the bad byte later, the same however the message was split.
    let head = &prefix[..=last_gt];
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
    };
    let mut reader = NsReader::from_str(text);
    let mut root: Option<(String, String)> = None;
    let undecided = || {
        if prefix.len() > SNIFF_LIMIT {
            Sniff::Whole
        } else {
            Sniff::NeedMore
        }
    };
    loop {
        // An error may be the cut (a comment, a processing instruction, a quoted `>` not
        // finished yet): only what more bytes cannot change decides.
        let Ok((ns, event)) = reader.read_resolved_event() else {
            return undecided();
        };
        let ns_is_base = |ns: &quick_xml::name::ResolveResult<'_>| matches!(ns, quick_xml::name::ResolveResult::Bound(n) if n.0 == NS_BASE);
        match event {
            XmlEvent::Decl(_) | XmlEvent::Comment(_) | XmlEvent::PI(_) => {}
            XmlEvent::Text(t) if t.trim_ascii().is_empty() => {}
            XmlEvent::Start(s) if root.is_none() => {
                if !ns_is_base(&ns) || s.local_name().into_inner() != "rpc-reply" {
                    return Sniff::Whole;
                }
                // Any doubt about the attributes: the whole-message parser decides (and names
                // the error).
                let mut id = None;
                for a in s.attributes() {
                    let Ok(a) = a else {
                        return Sniff::Whole;
                    };
                    let Ok(value) = a.normalized_value(quick_xml::XmlVersion::Implicit1_0) else {
                        return Sniff::Whole;
                    };
                    if a.key.0 == "message-id" {
                        id = Some(value.into_owned());
                    }
                }
                let Some(id) = id else {
                    return Sniff::Whole;
                };
                root = Some((id, s.name().0.to_owned()));
            }
            XmlEvent::Start(s) => {
                let Some((message_id, root_qname)) = root else {
                    return Sniff::Whole;
                };
                if s.local_name().into_inner() != "data" {
                    return Sniff::Whole;
                }
                let content_start = usize::try_from(reader.buffer_position()).unwrap_or(0);
                return Sniff::Data {
                    message_id,
                    content_start,
                    close_data: format!("</{}>", s.name().0).into_bytes(),
                    close_root: format!("</{root_qname}>").into_bytes(),
                };
            }
            XmlEvent::Eof => {
                // Before the data starts: more bytes may show it, unless a bad byte (which
                // only the whole-message parser reports) came first.
                return if text.len() < head.len() {
                    Sniff::Whole
                } else {
                    undecided()
                };
            }
            _ => return Sniff::Whole,
        }
    }
}

/// The content of a streamed `<data>`, handed out as it arrives.
#[derive(Debug)]
pub(crate) struct DataStream {
    /// Bytes not handed out yet: a possible start of the closing tags, or of a character.
    held: BytesMut,
    close_data: Vec<u8>,
    close_root: Vec<u8>,
    /// Content handed out so far (for errors).
    delivered: usize,
    /// A bad byte found after content that was still handed out (nothing received is
    /// lost): reported by the next call.
    failed: Option<StreamError>,
}

/// Whitespace allowed between and after the closing tags before the stream is malformed.
const MAX_CLOSING_WHITESPACE: usize = 64 * 1024;

/// Why a streamed reply could not be received.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StreamError {
    Utf8 { at: usize },
    Malformed(String),
}

impl DataStream {
    pub fn new(close_data: Vec<u8>, close_root: Vec<u8>) -> Self {
        DataStream {
            held: BytesMut::new(),
            close_data,
            close_root,
            delivered: 0,
            failed: None,
        }
    }

    /// The error found after the content last handed out, if any.
    pub fn take_error(&mut self) -> Option<StreamError> {
        self.failed.take()
    }

    /// Takes more of the message; returns the content that is certainly content (valid
    /// UTF-8, never a split character), if any.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Option<Bytes>, StreamError> {
        self.held.extend_from_slice(bytes);
        let keep = self.closing_suffix();
        if keep > MAX_CLOSING_WHITESPACE + self.close_data.len() + self.close_root.len() {
            return Err(StreamError::Malformed(
                "too much whitespace around the closing tags of a streamed <data>".into(),
            ));
        }
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut emit = self.held.len() - keep;
        // Never split a character: hold its first bytes back with the rest. Content before
        // a bad byte still goes out; the error follows it.
        match std::str::from_utf8(&self.held[..emit]) {
            Ok(_) => {}
            Err(e) if e.error_len().is_none() => emit = e.valid_up_to(),
            Err(e) => {
                self.failed = Some(StreamError::Utf8 {
                    at: self.delivered + e.valid_up_to(),
                });
                emit = e.valid_up_to();
            }
        }
        if emit == 0 {
            return Ok(None);
        }
        self.delivered += emit;
        Ok(Some(self.held.split_to(emit).freeze()))
    }

    /// The message is complete: what is held must be the closing tags (after any last
    /// content); returns that content.
    pub fn finish(mut self) -> Result<Option<Bytes>, StreamError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let end = self.closing_at_end().ok_or_else(|| {
            StreamError::Malformed(
                "a streamed <data> reply does not end with </data></rpc-reply>".into(),
            )
        })?;
        let content = self.held.split_to(end);
        if let Err(e) = std::str::from_utf8(&content) {
            return Err(StreamError::Utf8 {
                at: self.delivered + e.valid_up_to(),
            });
        }
        Ok((!content.is_empty()).then(|| content.freeze()))
    }

    /// Where the complete closing sequence `</data> WS* </rpc-reply> WS*` starts, if the held
    /// bytes end with it.
    fn closing_at_end(&self) -> Option<usize> {
        let h = &self.held[..];
        let t = trim_ws_end(h);
        let t = t.strip_suffix(&self.close_root[..])?;
        let t = trim_ws_end(t);
        let t = t.strip_suffix(&self.close_data[..])?;
        Some(t.len())
    }

    /// The length of the longest suffix of the held bytes that may grow into the closing
    /// sequence: it starts at one of the last two `<`.
    fn closing_suffix(&self) -> usize {
        let h = &self.held[..];
        let Some(last) = memrchr(b'<', h) else {
            return 0;
        };
        if let Some(before) = memrchr(b'<', &h[..last]) {
            if self.could_close(&h[before..]) {
                return h.len() - before;
            }
        }
        if self.could_close(&h[last..]) {
            return h.len() - last;
        }
        0
    }

    /// Whether `s` (starting with `<`) is a prefix of `</data> WS* </rpc-reply> WS*`.
    fn could_close(&self, s: &[u8]) -> bool {
        let d = &self.close_data[..];
        if s.len() <= d.len() {
            return d.starts_with(s);
        }
        if !s.starts_with(d) {
            return false;
        }
        let rest = trim_ws_start(&s[d.len()..]);
        let r = &self.close_root[..];
        if rest.len() <= r.len() {
            return r.starts_with(rest);
        }
        rest.starts_with(r) && trim_ws_start(&rest[r.len()..]).is_empty()
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn trim_ws_end(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|b| !is_ws(*b)).map_or(0, |p| p + 1);
    &s[..end]
}

fn trim_ws_start(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !is_ws(*b)).unwrap_or(s.len());
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";

    #[test]
    fn sniffs_a_data_reply() {
        let msg = format!("<?xml version=\"1.0\"?>\n<nc:rpc-reply xmlns:nc=\"{NS}\" message-id=\"7\">\n  <nc:data><x/>");
        let Sniff::Data {
            message_id,
            content_start,
            close_data,
            close_root,
        } = sniff(msg.as_bytes())
        else {
            panic!("{:?}", sniff(msg.as_bytes()))
        };
        assert_eq!(message_id, "7");
        assert_eq!(&msg[content_start..], "<x/>");
        assert_eq!(close_data, b"</nc:data>");
        assert_eq!(close_root, b"</nc:rpc-reply>");
        // Every prefix shorter than the data start tag needs more.
        let end = msg.find("<x/>").unwrap();
        for cut in 0..end {
            assert_eq!(sniff(&msg.as_bytes()[..cut]), Sniff::NeedMore, "{cut}");
        }
    }

    #[test]
    fn other_messages_are_received_whole() {
        for msg in [
            format!("<rpc-reply xmlns=\"{NS}\" message-id=\"1\"><ok/></rpc-reply>"),
            format!("<rpc-reply xmlns=\"{NS}\" message-id=\"1\"><rpc-error>"),
            "<notification xmlns=\"urn:x\"><eventTime>".to_string(),
            format!("<rpc-reply xmlns=\"{NS}\"><data>"),
            "<rpc-reply xmlns=\"urn:other\" message-id=\"1\"><data>".to_string(),
        ] {
            assert_eq!(sniff(msg.as_bytes()), Sniff::Whole, "{msg}");
        }
    }

    /// Whatever the cuts, the content comes out whole and nothing of the closing tags does.
    #[test]
    fn content_is_handed_out_and_the_closing_tags_held_back() {
        let content = "<a>é</a><data>inner</data><b>\u{1F600}</b>  \n";
        let tail = "</nc:data>\n  </nc:rpc-reply>\n";
        let all = format!("{content}{tail}");
        let bytes = all.as_bytes();
        for cut in 1..bytes.len() {
            for size in [1, 3, 7] {
                let mut s = DataStream::new(b"</nc:data>".to_vec(), b"</nc:rpc-reply>".to_vec());
                let mut got = Vec::new();
                let mut pieces = vec![&bytes[..cut]];
                pieces.extend(bytes[cut..].chunks(size));
                for p in pieces {
                    if let Some(b) = s.push(p).unwrap() {
                        assert!(std::str::from_utf8(&b).is_ok());
                        got.extend_from_slice(&b);
                    }
                }
                if let Some(b) = s.finish().unwrap() {
                    got.extend_from_slice(&b);
                }
                assert_eq!(
                    String::from_utf8(got).unwrap(),
                    content,
                    "cut {cut} size {size}"
                );
            }
        }
    }

    #[test]
    fn a_stream_that_does_not_close_properly_is_malformed() {
        let mut s = DataStream::new(b"</data>".to_vec(), b"</rpc-reply>".to_vec());
        s.push(b"<a/></data><!-- c --></rpc-reply>").unwrap();
        assert!(matches!(s.finish(), Err(StreamError::Malformed(_))));
        let mut s = DataStream::new(b"</data>".to_vec(), b"</rpc-reply>".to_vec());
        // What came before the bad byte still goes out; the error follows.
        assert_eq!(s.push(b"<a>\xff</a>"), Ok(Some(Bytes::from_static(b"<a>"))));
        assert_eq!(s.take_error(), Some(StreamError::Utf8 { at: 3 }));
    }
}
