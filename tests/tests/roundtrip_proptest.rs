//! Property: what a server session encodes, a client session decodes unchanged, however the
//! byte stream is cut.
//!
//! Each case is a random list of replies (`<data>` with escaped arbitrary Unicode, `<ok/>`,
//! an `<rpc-error>`, custom output) and notifications, in either framing. The replies answer
//! the client's rpcs in a random order; the session still sends the replies in request order. The
//! server's output is fed to the client whole, byte by byte and under a random split; every
//! run must yield exactly the generated payloads.

use std::time::Instant;

use netconf_proto::capabilities::{Capabilities, BASE_1_0};
use netconf_proto::message::{ErrorSeverity, ErrorTag, ErrorType};
use netconf_proto::operations::Get;
use netconf_proto::xml::{escape_attr, escape_text};
use netconf_proto::{Config, Event, Reply, ReplyContent, RpcError};
use netconf_tests::pair::{drain, feed_split, Pair};
use proptest::prelude::*;
use proptest::sample::Index;

/// One message the server sends.
#[derive(Debug, Clone)]
enum Item {
    /// `<data>` holding this XML.
    Data(String),
    Ok,
    /// An `<rpc-error>` with this message and app-tag.
    Error {
        message: String,
        app_tag: String,
    },
    /// Custom rpc output, raw.
    Output(String),
    Notification {
        time: String,
        content: String,
    },
}

#[derive(Debug, Clone)]
struct Case {
    items: Vec<Item>,
    /// `order[k]`: which rpc (by send order) the k-th reply answers.
    order: Vec<usize>,
    chunked: bool,
    splits: Vec<Index>,
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Text of XML 1.0 characters, biased towards the ones that need escaping, that come close
/// to the `]]>]]>` delimiter and that take several UTF-8 bytes. `with_cr: false` leaves out
/// CR, which XML parsers normalise in text they decode (raw payloads keep it).
fn text(with_cr: bool, max: usize) -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        '<', '>', '&', '"', '\'', ']', ' ', '\t', '\n', '\r', 'é', '😀', '\u{FFFD}', '#',
    ]);
    let c = prop_oneof![3 => special, 7 => any::<char>()]
        .prop_filter("XML 1.0 character", move |&c| {
            is_xml_char(c) && (with_cr || c != '\r')
        });
    prop::collection::vec(c, 0..max).prop_map(String::from_iter)
}

fn data_xml() -> impl Strategy<Value = String> {
    let leaf = (text(true, 24), text(true, 8), "[a-z]{0,6}").prop_map(|(t, a, cdata)| {
        format!(
            "<leaf xmlns=\"urn:example:p\" a=\"{}\">{}<![CDATA[{cdata}]]]]></leaf>",
            escape_attr(&a),
            escape_text(&t)
        )
    });
    prop::collection::vec(leaf, 0..4).prop_map(|v| v.concat())
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        4 => data_xml().prop_map(Item::Data),
        1 => Just(Item::Ok),
        2 => (text(false, 30), "[a-z][a-z0-9-]{0,15}")
            .prop_map(|(message, app_tag)| Item::Error { message, app_tag }),
        1 => text(true, 20).prop_map(|t| Item::Output(format!(
            "<result xmlns=\"urn:example:r\">{}</result>",
            escape_text(&t)
        ))),
        3 => ("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{8,12}Z", text(true, 24)).prop_map(|(time, t)| {
            Item::Notification {
                time,
                content: format!("<ev xmlns=\"urn:example:e\">{}</ev>", escape_text(&t)),
            }
        }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (prop::collection::vec(item(), 0..10), any::<bool>())
        .prop_flat_map(|(items, chunked)| {
            let replies = items
                .iter()
                .filter(|i| !matches!(i, Item::Notification { .. }))
                .count();
            let order = Just((0..replies).collect::<Vec<_>>()).prop_shuffle();
            let splits = prop::collection::vec(any::<Index>(), 0..16);
            (Just(items), order, Just(chunked), splits)
        })
        .prop_map(|(items, order, chunked, splits)| Case {
            items,
            order,
            chunked,
            splits,
        })
}

fn reply_for(item: &Item) -> Option<Reply> {
    Some(match item {
        Item::Data(xml) => Reply::data(xml.clone()).expect("generated data is well-formed"),
        Item::Ok => Reply::Ok,
        Item::Error { message, app_tag } => Reply::error(
            RpcError::new(ErrorType::Application, ErrorTag::OperationFailed)
                .with_message(message.clone())
                .with_app_tag(app_tag.clone()),
        ),
        Item::Output(xml) => Reply::raw(xml.clone()).expect("generated output is well-formed"),
        Item::Notification { .. } => return None,
    })
}

/// Sets up an established pair, has the client send one rpc per reply and the server answer
/// them (in `case.order`) interleaved with the notifications. Returns the pair, with the
/// server's output not yet delivered, that output, and the message-ids in send order.
fn encode(case: &Case) -> (Pair, Vec<u8>, Vec<netconf_proto::MessageId>) {
    let server_config = if case.chunked {
        Config::server()
    } else {
        Config::server().with_capabilities(Capabilities::new([BASE_1_0]))
    };
    let mut pair = Pair::new(Config::client(), server_config);
    pair.establish();
    let ids: Vec<_> = (0..case.order.len())
        .map(|_| pair.client.send_rpc(&Get::new(), pair.now).unwrap())
        .collect();
    pair.drive();
    let requests: Vec<_> = pair
        .take_server_events()
        .into_iter()
        .map(|ev| match ev {
            Event::Rpc { id, .. } => id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(requests.len(), ids.len());
    let mut next_reply = 0;
    for item in &case.items {
        match (item, reply_for(item)) {
            (Item::Notification { time, content }, _) => {
                pair.server.send_notification(time, content).unwrap()
            }
            (_, Some(reply)) => {
                let request = requests[case.order[next_reply]];
                next_reply += 1;
                pair.server.send_reply(request, reply).unwrap();
            }
            (_, None) => unreachable!(),
        }
    }
    let stream = drain(&mut pair.server).transmitted;
    (pair, stream, ids)
}

/// What the client must see, in order. Replies leave the server in request order (RFC 6241
/// section 4.5) whatever order the application answered in: an answer given early waits for
/// the ones before it, so notifications sent meanwhile overtake it.
fn expected(case: &Case) -> Vec<(Option<usize>, &Item)> {
    let mut out = Vec::new();
    let mut answers: Vec<Option<&Item>> = vec![None; case.order.len()];
    let mut next_out = 0;
    let mut next_reply = 0;
    for item in &case.items {
        if let Item::Notification { .. } = item {
            out.push((None, item));
            continue;
        }
        answers[case.order[next_reply]] = Some(item);
        next_reply += 1;
        while let Some(Some(answer)) = answers.get(next_out) {
            out.push((Some(next_out), *answer));
            next_out += 1;
        }
    }
    out
}

/// Checks the client's events against the generated items.
fn check(case: &Case, ids: &[netconf_proto::MessageId], events: &[Event]) {
    let expected = expected(case);
    assert_eq!(events.len(), expected.len(), "{events:?}");
    for ((request, item), ev) in expected.into_iter().zip(events) {
        if let Item::Notification { time, content } = item {
            let Event::Notification(n) = ev else {
                panic!("expected a notification, got {ev:?}")
            };
            assert_eq!(&n.event_time, time);
            assert_eq!(n.content.as_str(), content);
            continue;
        }
        let Event::Reply { id, reply } = ev else {
            panic!("expected a reply, got {ev:?}")
        };
        assert_eq!(Some(*id), request.map(|r| ids[r]));
        match item {
            Item::Data(xml) => {
                assert_eq!(reply.data().map(|d| d.as_str()), Some(xml.as_str()))
            }
            Item::Ok => assert_eq!(reply.content, ReplyContent::Ok),
            Item::Output(xml) => match &reply.content {
                ReplyContent::Other(x) => assert_eq!(x.as_str(), xml),
                other => panic!("{other:?}"),
            },
            Item::Error { message, app_tag } => {
                assert_eq!(reply.content, ReplyContent::Empty);
                let [e] = &reply.errors[..] else {
                    panic!("{:?}", reply.errors)
                };
                assert_eq!(e.error_type, ErrorType::Application);
                assert_eq!(e.tag, ErrorTag::OperationFailed);
                assert_eq!(e.severity, ErrorSeverity::Error);
                assert_eq!(e.app_tag.as_deref(), Some(app_tag.as_str()));
                let m = e.message.as_ref().expect("error-message");
                assert_eq!(&m.text, message);
                assert_eq!(m.lang.as_deref(), Some("en"));
            }
            Item::Notification { .. } => unreachable!(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn server_output_decodes_to_the_same_payloads(case in case()) {
        let (_, stream, _) = encode(&case);
        let len = stream.len();
        let mut random: Vec<usize> = case.splits.iter().map(|i| i.index(len + 1)).collect();
        random.sort_unstable();
        for splits in [Vec::new(), (1..len).collect(), random] {
            // Encoding is deterministic, so a fresh pair gives the same stream and ids.
            let (mut pair, again, ids) = encode(&case);
            prop_assert_eq!(&again, &stream);
            if case.chunked && !stream.is_empty() {
                prop_assert!(stream.starts_with(b"\n#"));
            }
            let fed = feed_split(&mut pair.client, &stream, &splits, Instant::now());
            prop_assert_eq!(&fed.error, &None);
            check(&case, &ids, &fed.events);
            prop_assert_eq!(pair.client.rpcs_in_flight(), 0);
            prop_assert!(!pair.client.is_receiving());
        }
    }
}
