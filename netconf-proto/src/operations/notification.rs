//! RFC 5277 `<create-subscription>`: starts event notification delivery on this session.

use crate::operations::XmlWriter;

use super::util::element;
use super::{Filter, Operation};
use crate::error::UsageError;
use crate::xml::{write_leaf, NS_NOTIFICATION};

/// `<create-subscription>` (RFC 5277 section 2.1.1), in the notification namespace.
///
/// Times are RFC 3339 strings as the caller wants them on the wire (this crate reads no
/// clock); they are checked against the YANG `date-and-time` pattern so a typo is a
/// [`UsageError`] rather than a `bad-element` error from the server.
///
/// The filter is written `<filter type="subtree">` with an unqualified `type`, as the
/// RFC 5277 XSD (via RFC 6241's `filterInlineType`) defines it; the RFC's own example
/// writes `netconf:type`, a prefix our default-namespace `<rpc>` does not declare.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateSubscription {
    stream: Option<String>,
    filter: Option<Filter>,
    start_time: Option<String>,
    stop_time: Option<String>,
}

impl CreateSubscription {
    /// Subscribes to the default `NETCONF` stream, live events only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribes to the named stream (RFC 5277 section 3.2 lists how to discover them).
    pub fn stream(mut self, name: impl Into<String>) -> Self {
        self.stream = Some(name.into());
        self
    }

    /// Delivers only the events `filter` selects.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// Replays stored events from `time` on (`:interleave`/replay support, RFC 5277 section 2.1.1),
    /// e.g. `"2007-07-28T15:23:36Z"`.
    pub fn start_time(mut self, time: impl Into<String>) -> Result<Self, UsageError> {
        let time = time.into();
        check_date_time("startTime", &time)?;
        self.start_time = Some(time);
        Ok(self)
    }

    /// Ends the subscription at `time`; RFC 5277 only allows it together with a start time,
    /// so call [`start_time`](CreateSubscription::start_time) first.
    pub fn stop_time(mut self, time: impl Into<String>) -> Result<Self, UsageError> {
        let time = time.into();
        check_date_time("stopTime", &time)?;
        if self.start_time.is_none() {
            return Err(UsageError::InvalidValue {
                what: "stopTime",
                why:
                    "a stop time needs a start time (RFC 5277 section 2.1.1); set start_time first"
                        .into(),
            });
        }
        self.stop_time = Some(time);
        Ok(self)
    }
}

impl Operation for CreateSubscription {
    fn write_xml(&self, out: &mut XmlWriter) {
        let head = format!("create-subscription xmlns=\"{NS_NOTIFICATION}\"");
        element(out, &head, |out| {
            if let Some(stream) = &self.stream {
                write_leaf(out, "stream", stream);
            }
            if let Some(filter) = &self.filter {
                filter.write(out);
            }
            if let Some(time) = &self.start_time {
                write_leaf(out, "startTime", time);
            }
            if let Some(time) = &self.stop_time {
                write_leaf(out, "stopTime", time);
            }
        });
    }
}

/// Checks `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` (RFC 3339 section 5.6 as restricted by the
/// YANG `date-and-time` type, RFC 6991), with field ranges but no calendar arithmetic
/// beyond days per month.
fn check_date_time(what: &'static str, s: &str) -> Result<(), UsageError> {
    let bad = |why: &str| UsageError::InvalidValue {
        what,
        why: format!("{s:?} is not an RFC 3339 date-time: {why}"),
    };
    let b = s.as_bytes();
    let num = |at: usize, len: usize| -> Option<u32> {
        let digits = b.get(at..at + len)?;
        digits.iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let sep = |at: usize, c: u8| b.get(at) == Some(&c);
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        num(0, 4),
        num(5, 2),
        num(8, 2),
        num(11, 2),
        num(14, 2),
        num(17, 2),
    ) else {
        return Err(bad("expected YYYY-MM-DDTHH:MM:SS"));
    };
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return Err(bad("expected YYYY-MM-DDTHH:MM:SS"));
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad("month out of range")),
    };
    if !(1..=days).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return Err(bad("field out of range"));
    }
    let mut at = 19;
    if sep(at, b'.') {
        let frac = b[at + 1..]
            .iter()
            .take_while(|d| d.is_ascii_digit())
            .count();
        if frac == 0 {
            return Err(bad("empty fraction of a second"));
        }
        at += 1 + frac;
    }
    match &b[at..] {
        b"Z" => Ok(()),
        [b'+' | b'-', ..] if b.len() == at + 6 && sep(at + 3, b':') => {
            match (num(at + 1, 2), num(at + 4, 2)) {
                (Some(h), Some(m)) if h < 24 && m < 60 => Ok(()),
                _ => Err(bad("bad time-zone offset")),
            }
        }
        _ => Err(bad("expected a time zone, Z or +HH:MM")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operations::testutil::assert_renders;

    /// RFC 5277 section 2.1.1 example (written as an empty element).
    #[test]
    fn rfc5277_plain() {
        assert_renders(
            &CreateSubscription::new(),
            r#"<create-subscription
                 xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0"/>"#,
        );
    }

    /// RFC 5277 section 3.6 filter example, with `netconf:type` written unprefixed.
    #[test]
    fn rfc5277_filtered() {
        let filter = Filter::subtree(
            r#"<event xmlns="http://example.com/event/1.0">
                 <eventClass>fault</eventClass>
                 <severity>critical</severity>
               </event>
               <event xmlns="http://example.com/event/1.0">
                 <eventClass>fault</eventClass>
                 <severity>major</severity>
               </event>
               <event xmlns="http://example.com/event/1.0">
                 <eventClass>fault</eventClass>
                 <severity>minor</severity>
               </event>"#,
        )
        .unwrap();
        assert_renders(
            &CreateSubscription::new().filter(filter),
            r#"<create-subscription
                 xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0">
                 <filter type="subtree">
                   <event xmlns="http://example.com/event/1.0">
                     <eventClass>fault</eventClass>
                     <severity>critical</severity>
                   </event>
                   <event xmlns="http://example.com/event/1.0">
                     <eventClass>fault</eventClass>
                     <severity>major</severity>
                   </event>
                   <event xmlns="http://example.com/event/1.0">
                     <eventClass>fault</eventClass>
                     <severity>minor</severity>
                   </event>
                 </filter>
               </create-subscription>"#,
        );
    }

    #[test]
    fn replay_window_and_stream() {
        let op = CreateSubscription::new()
            .stream("a<b")
            .start_time("2007-07-28T15:23:36Z")
            .unwrap()
            .stop_time("2007-07-29T15:23:36.5+02:00")
            .unwrap();
        assert_renders(
            &op,
            r#"<create-subscription xmlns="urn:ietf:params:xml:ns:netconf:notification:1.0">
                 <stream>a&lt;b</stream>
                 <startTime>2007-07-28T15:23:36Z</startTime>
                 <stopTime>2007-07-29T15:23:36.5+02:00</stopTime>
               </create-subscription>"#,
        );
        assert!(CreateSubscription::new()
            .stop_time("2007-07-29T15:23:36Z")
            .is_err());
    }

    #[test]
    fn date_times() {
        for good in [
            "2007-07-28T15:23:36Z",
            "2000-02-29T00:00:00-00:00",
            "2016-12-31T23:59:60Z",
            "2024-01-01T12:00:00.123456789+14:00",
        ] {
            assert!(check_date_time("t", good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "2007-07-28",
            "2007-07-28 15:23:36Z",
            "2007-07-28T15:23:36",
            "2007-07-28t15:23:36z",
            "2007-13-01T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2007-07-28T24:00:00Z",
            "2007-07-28T15:23:36.Z",
            "2007-07-28T15:23:36+0200",
            "2007-07-28T15:23:36+02:00x",
            "2007-07-28T15:23:36+25:00",
            "２007-07-28T15:23:36Z",
        ] {
            assert!(
                matches!(
                    check_date_time("t", bad),
                    Err(UsageError::InvalidValue { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }
}
