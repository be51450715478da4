//! RFC 6241 section 4.5: a server sends replies in the order the requests came, however the
//! application answers them and however the requests were split into reads.

use std::time::Instant;

use netconf_proto::{CloseReason, Config, Event, Reply, RequestId, Session};
use netconf_tests::pair::{drain, Drained};

const HELLO: &str = "<hello xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><capabilities>\
<capability>urn:ietf:params:netconf:base:1.0</capability></capabilities></hello>]]>]]>";

fn rpc(id: &str, op: &str) -> String {
    format!("<rpc message-id=\"{id}\" xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\">{op}</rpc>]]>]]>")
}

/// A server past its hello exchange, its own hello already drained.
fn server() -> Session {
    let mut s = Session::server(Config::server(), 1, Instant::now());
    s.handle_input(HELLO.as_bytes(), Instant::now()).unwrap();
    drain(&mut s);
    s
}

/// The handles of the requests among `out`'s events, in order.
fn requests(out: &Drained) -> Vec<RequestId> {
    out.events
        .iter()
        .filter_map(|e| match e {
            Event::Rpc { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

/// The message-ids of the replies in `out`, in order.
fn reply_ids(out: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(out);
    text.split("<rpc-reply")
        .skip(1)
        .map(|r| match r.split_once("message-id=\"") {
            Some((_, rest)) => rest.split('"').next().unwrap_or_default().to_owned(),
            None => "(none)".to_owned(),
        })
        .collect()
}

#[test]
fn answers_given_out_of_order_go_out_in_request_order() {
    let mut s = server();
    s.handle_input(
        format!("{}{}", rpc("1", "<get/>"), rpc("2", "<get/>")).as_bytes(),
        Instant::now(),
    )
    .unwrap();
    let ids = requests(&drain(&mut s));
    assert_eq!(ids.len(), 2);
    s.send_reply(ids[1], Reply::Ok).unwrap();
    assert!(
        drain(&mut s).transmitted.is_empty(),
        "reply 2 must wait for reply 1"
    );
    s.send_reply(ids[0], Reply::Ok).unwrap();
    assert_eq!(reply_ids(&drain(&mut s).transmitted), ["1", "2"]);
}

#[test]
fn close_session_waits_for_the_requests_before_it() {
    for split in [false, true] {
        let mut s = server();
        let (a, b) = (rpc("1", "<get/>"), rpc("2", "<close-session/>"));
        if split {
            s.handle_input(a.as_bytes(), Instant::now()).unwrap();
            s.handle_input(b.as_bytes(), Instant::now()).unwrap();
        } else {
            s.handle_input(format!("{a}{b}").as_bytes(), Instant::now())
                .unwrap();
        }
        let first = drain(&mut s);
        assert!(
            matches!(first.events[..], [Event::Rpc { .. }]),
            "{:?}",
            first.events
        );
        assert!(
            first.transmitted.is_empty(),
            "close-session must not overtake the <get>"
        );
        // Nothing after close-session is read.
        s.handle_input(rpc("3", "<get/>").as_bytes(), Instant::now())
            .unwrap();
        s.send_reply(
            requests(&first)[0],
            Reply::data("<x xmlns=\"urn:x\"/>").unwrap(),
        )
        .unwrap();
        let out = drain(&mut s);
        assert_eq!(reply_ids(&out.transmitted), ["1", "2"]);
        assert_eq!(
            out.events,
            [Event::Closed {
                reason: CloseReason::CloseSession
            }]
        );
    }
}

#[test]
fn a_reused_message_id_can_be_answered_twice() {
    let mut s = server();
    s.handle_input(
        format!("{}{}", rpc("7", "<get/>"), rpc("7", "<lock/>")).as_bytes(),
        Instant::now(),
    )
    .unwrap();
    let ids = requests(&drain(&mut s));
    assert_eq!(ids.len(), 2);
    // Answered in reverse: each reply still goes to its own request (issue 11 item 7: by
    // message-id alone the <lock> would have got the <get>'s answer).
    s.send_reply(
        ids[1],
        Reply::data("<lock-answer xmlns=\"urn:x\"/>").unwrap(),
    )
    .unwrap();
    s.send_reply(
        ids[0],
        Reply::data("<get-answer xmlns=\"urn:x\"/>").unwrap(),
    )
    .unwrap();
    let out = drain(&mut s).transmitted;
    assert_eq!(reply_ids(&out), ["7", "7"]);
    let text = String::from_utf8_lossy(&out);
    let get = text.find("get-answer").unwrap();
    let lock = text.find("lock-answer").unwrap();
    assert!(get < lock, "replies swapped: {text}");
    assert!(
        s.send_reply(ids[0], Reply::Ok).is_err(),
        "a request is answered once"
    );
}

#[test]
fn the_missing_attribute_reply_waits_its_turn() {
    let mut s = server();
    let no_id = "<rpc xmlns=\"urn:ietf:params:xml:ns:netconf:base:1.0\"><get/></rpc>]]>]]>";
    s.handle_input(
        format!("{}{no_id}", rpc("1", "<get/>")).as_bytes(),
        Instant::now(),
    )
    .unwrap();
    let first = drain(&mut s);
    assert!(first.transmitted.is_empty());
    s.send_reply(requests(&first)[0], Reply::Ok).unwrap();
    let out = drain(&mut s).transmitted;
    assert_eq!(reply_ids(&out), ["1", "(none)"]);
    assert!(String::from_utf8_lossy(&out).contains("missing-attribute"));
}

/// A client may send its requests and end its input at once (`ssh -s` with piped input,
/// a script that half-closes): the requests before the end are still answered, in order,
/// and only then does the session close.
#[test]
fn requests_before_the_end_of_input_are_answered_before_the_session_closes() {
    let now = Instant::now();
    let mut s = server();
    s.handle_input(
        format!("{}{}", rpc("1", "<get/>"), rpc("2", "<get/>")).as_bytes(),
        now,
    )
    .unwrap();
    let ids = requests(&drain(&mut s));
    s.handle_eof(now);
    assert!(!s.wants_input(), "nothing more can be read");
    assert!(!s.is_closed(), "two requests are still to be answered");
    assert!(drain(&mut s).events.is_empty());
    s.send_reply(ids[1], Reply::Ok).unwrap();
    s.send_reply(ids[0], Reply::Ok).unwrap();
    let out = drain(&mut s);
    assert_eq!(reply_ids(&out.transmitted), ["1", "2"]);
    assert_eq!(
        out.events,
        [Event::Closed {
            reason: CloseReason::Eof
        }]
    );
}

/// A handler that never answers cannot keep such a session open: the close timeout ends it.
#[test]
fn an_unanswered_request_after_the_end_of_input_times_out_with_the_close_timeout() {
    let now = Instant::now();
    let mut s = server();
    s.handle_input(rpc("1", "<get/>").as_bytes(), now).unwrap();
    drain(&mut s);
    s.handle_eof(now);
    let deadline = s
        .next_deadline()
        .expect("a deadline for the unanswered request");
    assert_eq!(deadline, now + Config::server().close_timeout());
    s.handle_timeout(deadline);
    assert!(s.is_closed());
    assert_eq!(
        drain(&mut s).events,
        [Event::Closed {
            reason: CloseReason::Eof
        }]
    );
}

/// With nothing left to answer, the end of input closes the session at once, as before.
#[test]
fn the_end_of_input_with_everything_answered_closes_at_once() {
    let now = Instant::now();
    let mut s = server();
    s.handle_input(rpc("1", "<get/>").as_bytes(), now).unwrap();
    let ids = requests(&drain(&mut s));
    s.send_reply(ids[0], Reply::Ok).unwrap();
    drain(&mut s);
    s.handle_eof(now);
    assert!(s.is_closed());
}
