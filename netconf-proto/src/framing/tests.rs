use super::*;

/// Feeds `parts` in order and collects the complete messages, stopping at the first error.
fn decode_parts(
    framing: Framing,
    parts: &[&[u8]],
    limit: usize,
) -> (Vec<Vec<u8>>, Option<ProtocolError>) {
    let mut d = FrameDecoder::new(limit);
    d.set_framing(framing);
    let mut messages = Vec::new();
    let mut current = Vec::new();
    for part in parts {
        let mut input = *part;
        while !input.is_empty() {
            match d.decode(input) {
                Ok((n, piece)) => {
                    input = &input[n..];
                    match piece {
                        Piece::Data(data) => current.extend_from_slice(data),
                        Piece::End => messages.push(std::mem::take(&mut current)),
                    }
                }
                Err(e) => return (messages, Some(e)),
            }
        }
    }
    (messages, None)
}

fn decode_whole(framing: Framing, input: &[u8]) -> (Vec<Vec<u8>>, Option<ProtocolError>) {
    decode_parts(framing, &[input], 1 << 20)
}

/// Every split of `input` into two reads, and byte-at-a-time, must give what one read gives.
fn assert_split_invariant(framing: Framing, input: &[u8]) {
    let whole = decode_whole(framing, input);
    for at in 0..=input.len() {
        let (a, b) = input.split_at(at);
        assert_eq!(
            decode_parts(framing, &[a, b], 1 << 20),
            whole,
            "split at {at}"
        );
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(
        decode_parts(framing, &bytes, 1 << 20),
        whole,
        "byte at a time"
    );
}

#[test]
fn end_of_message_basic() {
    let (msgs, err) = decode_whole(Framing::EndOfMessage, b"<a/>]]>]]><b/>]]>]]>");
    assert_eq!(msgs, vec![b"<a/>".to_vec(), b"<b/>".to_vec()]);
    assert_eq!(err, None);
}

#[test]
fn end_of_message_overlapping_delimiters() {
    // `]]]>]]>` ends a message whose body is `]`; `]]>]]]>]]>` one with `]]>]`.
    for (input, body) in [
        (&b"x]]]>]]>"[..], &b"x]"[..]),
        (b"]]>]]]>]]>", b"]]>]"),
        (b"a]]>]]]]>]]>", b"a]]>]]"),
        (b"]]>]>]]>]]>", b"]]>]>"),
    ] {
        let (msgs, err) = decode_whole(Framing::EndOfMessage, input);
        assert_eq!(err, None);
        assert_eq!(
            msgs.first().map(Vec::as_slice),
            Some(body),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        assert_split_invariant(Framing::EndOfMessage, input);
    }
}

#[test]
fn end_of_message_split_everywhere() {
    assert_split_invariant(
        Framing::EndOfMessage,
        b"<hello>]]</hello>]]>]]>\n<rpc-reply>x]]></rpc-reply>]]>]]>",
    );
    assert_split_invariant(
        Framing::EndOfMessage,
        "<a>h\u{e9}llo \u{1F600}</a>]]>]]>".as_bytes(),
    );
}

#[test]
fn chunked_basic_and_multi_chunk() {
    let (msgs, err) = decode_whole(
        Framing::Chunked,
        b"\n#4\n<rpc\n#18\n message-id=\"102\"\n\n#2\n/>\n##\n",
    );
    assert_eq!(err, None);
    assert_eq!(msgs, vec![b"<rpc message-id=\"102\"\n/>".to_vec()]);
}

#[test]
fn chunked_split_everywhere() {
    let mut wire = BytesMut::new();
    encode(
        Framing::Chunked,
        "<a>\u{e9}\u{1F600}</a>".as_bytes(),
        &mut wire,
    )
    .unwrap();
    encode(Framing::Chunked, &vec![b'x'; 1234], &mut wire).unwrap();
    assert_split_invariant(Framing::Chunked, &wire);
}

#[test]
fn encode_then_decode_round_trips() {
    for framing in [Framing::EndOfMessage, Framing::Chunked] {
        let mut wire = BytesMut::new();
        encode(framing, b"<one/>", &mut wire).unwrap();
        encode(framing, b"<two>]]>]]</two>", &mut wire).unwrap();
        let (msgs, err) = decode_whole(framing, &wire);
        assert_eq!(err, None);
        assert_eq!(msgs, vec![b"<one/>".to_vec(), b"<two>]]>]]</two>".to_vec()]);
    }
}

#[test]
fn chunked_header_errors_name_offset() {
    let cases: &[(&[u8], ProtocolError)] = &[
        (
            b"\n#0\n",
            ProtocolError::ChunkSizeOutOfRange {
                offset: 2,
                what: "chunk size must not be zero or start with zero",
            },
        ),
        (
            b"\n#01\nx",
            ProtocolError::ChunkSizeOutOfRange {
                offset: 2,
                what: "chunk size must not be zero or start with zero",
            },
        ),
        (
            b"\n#4294967296\n",
            ProtocolError::ChunkSizeOutOfRange {
                offset: 11,
                what: "chunk size exceeds 4294967295",
            },
        ),
        (
            b"\n#1a\n",
            ProtocolError::BadChunkHeader {
                offset: 3,
                what: "chunk size is not a decimal number ended by `\\n`",
            },
        ),
        (
            b"\n#x\n",
            ProtocolError::BadChunkHeader {
                offset: 2,
                what: "expected a chunk size digit or `#`",
            },
        ),
        (
            b"\n#3\nabc#3\n",
            ProtocolError::BadChunkHeader {
                offset: 7,
                what: "chunk data longer than its header said",
            },
        ),
        (
            b"\n##\n",
            ProtocolError::BadChunkHeader {
                offset: 3,
                what: "end-of-chunks marker before any chunk",
            },
        ),
        (
            b"\n#3\nabc\n##x",
            ProtocolError::BadChunkHeader {
                offset: 10,
                what: "expected `\\n` after `\\n##`",
            },
        ),
        (
            b"#3\n",
            ProtocolError::BadChunkHeader {
                offset: 0,
                what: "expected `\\n#` to start a chunk",
            },
        ),
    ];
    for (input, want) in cases {
        let (_, err) = decode_whole(Framing::Chunked, input);
        assert_eq!(
            err.as_ref(),
            Some(want),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn largest_legal_chunk_size_is_accepted_as_a_header() {
    let mut d = FrameDecoder::new(usize::MAX);
    d.set_framing(Framing::Chunked);
    let (n, piece) = (|| {
        let mut input: &[u8] = b"\n#4294967295\n";
        loop {
            let (n, piece) = d.decode(input).unwrap();
            input = &input[n..];
            if input.is_empty() {
                return (n, piece);
            }
        }
    })();
    assert!(n > 0);
    assert_eq!(piece, Piece::Data(&[]));
    assert!(d.is_mid_message());
}

#[test]
fn oversized_chunk_is_refused_at_its_header() {
    // The header alone claims 1 GB; nothing of that size is ever allocated.
    let (_, err) = decode_parts(Framing::Chunked, &[b"\n#1000000000\n"], 1 << 20);
    assert_eq!(
        err,
        Some(ProtocolError::MessageTooLarge {
            offset: 0,
            limit: 1 << 20
        })
    );
    // Several chunks adding up past the limit.
    let (_, err) = decode_parts(Framing::Chunked, &[b"\n#6\nabcdef\n#5\n"], 10);
    assert_eq!(
        err,
        Some(ProtocolError::MessageTooLarge {
            offset: 0,
            limit: 10
        })
    );
}

#[test]
fn oversized_end_of_message_is_refused() {
    let (msgs, err) = decode_parts(Framing::EndOfMessage, &[b"<a/>]]>]]>", &[b'x'; 64]], 16);
    assert_eq!(msgs, vec![b"<a/>".to_vec()]);
    assert_eq!(
        err,
        Some(ProtocolError::MessageTooLarge {
            offset: 10,
            limit: 16
        })
    );
}

#[test]
fn nul_bytes_between_chunked_messages_are_skipped() {
    let (msgs, err) = decode_whole(Framing::Chunked, b"\n#2\nab\n##\n\0\0\n#2\ncd\n##\n\0");
    assert_eq!(err, None);
    assert_eq!(msgs, vec![b"ab".to_vec(), b"cd".to_vec()]);
}

#[test]
fn base11_peer_sending_end_of_message_is_accepted() {
    let mut d = FrameDecoder::new(1 << 20);
    d.set_framing(Framing::Chunked);
    let (msgs, err) = {
        let mut input: &[u8] = b"\n<rpc-reply/>]]>]]><ok/>]]>]]>";
        let mut msgs = Vec::new();
        let mut cur = Vec::new();
        while !input.is_empty() {
            let (n, piece) = d.decode(input).unwrap();
            input = &input[n..];
            match piece {
                Piece::Data(x) => cur.extend_from_slice(x),
                Piece::End => msgs.push(std::mem::take(&mut cur)),
            }
        }
        (msgs, None::<ProtocolError>)
    };
    assert_eq!(err, None);
    assert_eq!(msgs, vec![b"<rpc-reply/>".to_vec(), b"<ok/>".to_vec()]);
    assert!(d.fell_back_to_end_of_message());
    assert_eq!(d.framing(), Framing::EndOfMessage);
}

#[test]
fn mid_message_tracking() {
    let mut d = FrameDecoder::new(1 << 20);
    assert!(!d.is_mid_message());
    d.decode(b"\n  ").unwrap();
    assert!(
        !d.is_mid_message(),
        "whitespace between messages is not a message"
    );
    d.decode(b"<a").unwrap();
    assert!(d.is_mid_message());
}

#[test]
fn decoding_is_linear() {
    // A pathological input for naive re-scanning: many near-delimiters, fed in small reads.
    let mut input = b"]]>]]".repeat(200_000);
    input.extend_from_slice(b">");
    let parts: Vec<&[u8]> = input.chunks(3).collect();
    let (msgs, err) = decode_parts(Framing::EndOfMessage, &parts, usize::MAX);
    assert_eq!(err, None);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].len(), input.len() - 6);
}

/// Issue 11 item 2: a message holding `]]>]]>` would be cut in two by the peer's decoder
/// under base:1.0 framing; the encoder refuses it, wherever the parts split it, and appends
/// nothing. Chunked framing carries it fine.
#[test]
fn end_of_message_encoder_refuses_the_delimiter_across_parts() {
    let message = b"<a b=\"]]>]]>\"/>";
    for cut1 in 0..=message.len() {
        for cut2 in cut1..=message.len() {
            let parts: [&[u8]; 3] = [&message[..cut1], &message[cut1..cut2], &message[cut2..]];
            let mut out = BytesMut::from(&b"before"[..]);
            assert_eq!(
                encode_parts(Framing::EndOfMessage, &parts, &mut out),
                Err(crate::UsageError::DelimiterInMessage),
                "cuts {cut1} {cut2}"
            );
            assert_eq!(&out[..], b"before", "nothing appended");
            let mut out = BytesMut::new();
            encode_parts(Framing::Chunked, &parts, &mut out).unwrap();
            let (msgs, err) = decode_whole(Framing::Chunked, &out);
            assert_eq!((msgs, err), (vec![message.to_vec()], None));
        }
    }
    // One delimiter byte per part, with empty parts between.
    let parts: Vec<&[u8]> = b"x]]>]]>y"
        .iter()
        .flat_map(|b| [std::slice::from_ref(b), &[][..]])
        .collect();
    assert!(check_end_of_message(&parts).is_err());
    // Near misses pass.
    for ok in [&b"]]>]]"[..], b"]]>]>", b"]]]>]]", b"]]>]] >"] {
        assert!(check_end_of_message(&[ok]).is_ok(), "{ok:?}");
        let halves = [&ok[..3], &ok[3..]];
        assert!(check_end_of_message(&halves).is_ok(), "{ok:?} halved");
    }
}
