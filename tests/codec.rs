//! The decoder and encoder against the STOMP 1.2 specification's rules and examples.

use stomp_rooms::stomp::{Command, Decoded, Decoder, Frame, Limits, ProtocolError, Version};

fn decode_all(decoder: &mut Decoder) -> Result<Vec<Decoded>, ProtocolError> {
    let mut items = Vec::new();
    while let Some(item) = decoder.next_item()? {
        items.push(item);
    }
    Ok(items)
}

fn decode(bytes: &[u8]) -> Result<Vec<Decoded>, ProtocolError> {
    let mut decoder = Decoder::new(Limits::default());
    decoder.set_version(Version::V1_2);
    decoder.push(bytes);
    decode_all(&mut decoder)
}

fn only_frame(bytes: &[u8]) -> Frame {
    match decode(bytes).expect("valid frame").as_slice() {
        [Decoded::Frame(frame)] => frame.clone(),
        other => panic!("expected one frame, got {other:?}"),
    }
}

fn error_of(bytes: &[u8], limits: Limits) -> ProtocolError {
    let mut decoder = Decoder::new(limits);
    decoder.set_version(Version::V1_2);
    decoder.push(bytes);
    decode_all(&mut decoder).expect_err("should be refused")
}

#[test]
fn spec_example_send_frame() {
    // The spec's SEND example.
    let frame =
        only_frame(b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\n\0");
    assert_eq!(frame.command, Command::Send);
    assert_eq!(frame.header("destination"), Some("/queue/a"));
    assert_eq!(frame.header("content-type"), Some("text/plain"));
    assert_eq!(frame.body, b"hello queue a\n");
}

#[test]
fn spec_example_connect_frame_with_crlf() {
    let frame = only_frame(b"CONNECT\r\naccept-version:1.2\r\nhost:stomp.github.org\r\n\r\n\0");
    assert_eq!(frame.command, Command::Connect);
    assert_eq!(frame.header("accept-version"), Some("1.2"));
    assert_eq!(frame.header("host"), Some("stomp.github.org"));
    assert!(frame.body.is_empty());
}

#[test]
fn content_length_counts_octets_and_allows_nul() {
    let frame = only_frame(b"SEND\ndestination:/topic/x\ncontent-length:5\n\na\0b\0c\0");
    assert_eq!(frame.body, b"a\0b\0c");
    // Octets, not characters: "é" is two octets.
    let frame = only_frame("SEND\ndestination:/topic/x\ncontent-length:2\n\né\0".as_bytes());
    assert_eq!(frame.body, "é".as_bytes());
}

#[test]
fn without_content_length_the_body_ends_at_the_first_nul() {
    let frame = only_frame(b"SEND\ndestination:/topic/x\n\nab\0");
    assert_eq!(frame.body, b"ab");
    // What follows the first NUL is the next frame: here not a command.
    let error = decode(b"SEND\ndestination:/topic/x\n\nab\0cd\0\n").unwrap_err();
    assert_eq!(error.message, "unknown command");
}

#[test]
fn several_frames_and_heart_beats_in_one_message() {
    let items =
        decode(b"\nSEND\ndestination:/a\n\n1\0\n\r\nSEND\ndestination:/b\n\n2\0\n").unwrap();
    let kinds: Vec<String> = items
        .iter()
        .map(|item| match item {
            Decoded::HeartBeat => "beat".to_owned(),
            Decoded::Frame(frame) => String::from_utf8(frame.body.clone()).unwrap(),
        })
        .collect();
    assert_eq!(kinds, ["beat", "1", "beat", "beat", "2", "beat"]);
}

#[test]
fn a_frame_split_at_every_byte_decodes_the_same() {
    let bytes = b"SEND\r\ndestination:/topic/x\r\ncontent-length:3\r\nk:v\\cw\r\n\r\na\0b\0\n";
    let mut decoder = Decoder::new(Limits::default());
    decoder.set_version(Version::V1_2);
    let mut items = Vec::new();
    for byte in bytes {
        decoder.push(&[*byte]);
        items.extend(decode_all(&mut decoder).unwrap());
    }
    assert_eq!(items.len(), 2);
    let Decoded::Frame(frame) = &items[0] else {
        panic!("{items:?}")
    };
    assert_eq!(frame.body, b"a\0b");
    assert_eq!(frame.header("k"), Some("v:w"));
    assert_eq!(items[1], Decoded::HeartBeat);
    assert!(decoder.pending().is_empty());
}

#[test]
fn repeated_headers_keep_the_first_value() {
    let frame = only_frame(b"SEND\ndestination:/topic/x\nfoo:World\nfoo:Hello\n\n\0");
    assert_eq!(frame.header("foo"), Some("World"));
    assert_eq!(frame.headers.len(), 3);
}

#[test]
fn header_escapes_follow_the_version() {
    let raw = b"SEND\ndestination:/topic/x\na\\cb:c\\nd\\re\\\\\n\n\0";
    let mut decoder = Decoder::new(Limits::default());
    decoder.set_version(Version::V1_2);
    decoder.push(raw);
    let Some(Decoded::Frame(frame)) = decoder.next_item().unwrap() else {
        panic!()
    };
    assert_eq!(frame.header("a:b"), Some("c\nd\re\\"));

    // 1.1 has no \r escape.
    let mut decoder = Decoder::new(Limits::default());
    decoder.set_version(Version::V1_1);
    decoder.push(raw);
    assert_eq!(decoder.next_item().unwrap_err().message, "malformed header");

    // 1.0 has no escapes at all: the text is kept as it is.
    let mut decoder = Decoder::new(Limits::default());
    decoder.set_version(Version::V1_0);
    decoder.push(raw);
    let Some(Decoded::Frame(frame)) = decoder.next_item().unwrap() else {
        panic!()
    };
    assert_eq!(frame.header("a\\cb"), Some("c\\nd\\re\\\\"));
}

#[test]
fn undefined_escapes_are_errors() {
    let error = error_of(
        b"SEND\ndestination:/topic/x\nk:a\\tb\n\n\0",
        Limits::default(),
    );
    assert_eq!(error.message, "malformed header");
    assert!(error.detail.contains("\\t"), "{}", error.detail);
}

#[test]
fn connect_headers_are_not_unescaped() {
    let frame = only_frame(b"CONNECT\nlogin:a\\cb\n\n\0");
    assert_eq!(frame.header("login"), Some("a\\cb"));
}

#[test]
fn malformed_frames_are_named() {
    let cases: [(&[u8], &str); 7] = [
        (b"HELLO\n\n\0", "unknown command"),
        (b"send\n\n\0", "unknown command"),
        (b"SEND\ndestination\n\n\0", "malformed header"),
        (b"SEND\n:value\n\n\0", "malformed header"),
        (b"SEND\ncontent-length:abc\n\n\0", "malformed frame"),
        (b"SEND\ncontent-length:2\n\nabc\0", "malformed frame"),
        (b"\rSEND\n\n\0", "malformed frame"),
    ];
    for (bytes, message) in cases {
        assert_eq!(
            error_of(bytes, Limits::default()).message,
            message,
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
    assert_eq!(
        error_of(b"SEND\nk:\xff\n\n\0", Limits::default()).message,
        "malformed header"
    );
}

#[test]
fn limits_are_enforced_before_buffering() {
    let small = Limits {
        max_frame_bytes: 100,
        max_body_bytes: 50,
        max_headers: 3,
        max_header_line_bytes: 40,
        ..Limits::default()
    };

    // A declared body over the limit is refused before any of it arrives.
    assert_eq!(
        error_of(b"SEND\ncontent-length:51\n\n", small.clone()).message,
        "body too large"
    );
    assert_eq!(
        error_of(
            b"SEND\ncontent-length:99999999999999999999999\n\n",
            small.clone()
        )
        .message,
        "body too large"
    );
    // Without content-length, once the unterminated body passes the limit.
    assert_eq!(
        error_of(
            &[b"SEND\n\n".as_slice(), &[b'x'; 51]].concat(),
            small.clone()
        )
        .message,
        "body too large"
    );
    // Headers and body together over the frame limit.
    let big_headers = b"SEND\nh1:aaaaaaaaaaaaaaa\nh2:aaaaaaaaaaaaaaa\ncontent-length:50\n\n";
    assert_eq!(
        error_of(big_headers, small.clone()).message,
        "frame too large"
    );
    assert_eq!(
        error_of(b"SEND\na:1\nb:2\nc:3\nd:4\n\n\0", small.clone()).message,
        "too many headers"
    );
    assert_eq!(
        error_of(
            &[b"SEND\nlong:".as_slice(), &[b'a'; 40], b"\n\n\0"].concat(),
            small.clone()
        )
        .message,
        "header line too long"
    );
    // A line that never ends is refused once it passes the limit.
    assert_eq!(
        error_of(&[b'S'; 45], small.clone()).message,
        "header line too long"
    );
}

#[test]
fn a_partial_frame_waits_for_more() {
    let mut decoder = Decoder::new(Limits::default());
    decoder.push(b"SEND\ndestination:/topic/x\ncontent-length:10\n\n12345");
    assert_eq!(decoder.next_item().unwrap(), None);
    decoder.push(b"67890\0");
    let Some(Decoded::Frame(frame)) = decoder.next_item().unwrap() else {
        panic!()
    };
    assert_eq!(frame.body, b"1234567890");
}

#[test]
fn encode_then_decode_round_trips_with_escaping() {
    for version in [Version::V1_1, Version::V1_2] {
        let frame = Frame::new(Command::Message)
            .with_header("destination", "/topic/a:b")
            .with_header("weird\\name", "multi\nline")
            .with_body(b"body\0with nul".to_vec());
        let mut decoder = Decoder::new(Limits::default());
        decoder.set_version(version);
        decoder.push(&frame.encode(Some(version)));
        let Some(Decoded::Frame(decoded)) = decoder.next_item().unwrap() else {
            panic!()
        };
        assert_eq!(decoded.header("destination"), Some("/topic/a:b"));
        assert_eq!(decoded.header("weird\\name"), Some("multi\nline"));
        assert_eq!(decoded.header("content-length"), Some("13"));
        assert_eq!(decoded.body, frame.body);
    }
}

#[test]
fn a_nul_terminated_frame_over_max_frame_bytes_in_one_push_is_refused() {
    let small = Limits {
        max_frame_bytes: 100,
        max_body_bytes: 100,
        max_headers: 10,
        max_header_line_bytes: 40,
        ..Limits::default()
    };
    // Five header lines under the line limit, each 31 bytes: the head alone passes the frame
    // limit, and the whole frame (NUL included) arrives at once.
    let head: Vec<u8> = (0..5)
        .flat_map(|n| format!("h{n}:{}\n", "a".repeat(27)).into_bytes())
        .collect();
    let frame = [b"SEND\n".as_slice(), &head, b"\nbody\0"].concat();
    assert_eq!(error_of(&frame, small.clone()).message, "frame too large");
    // A head within the limit, with a body that fits max_body_bytes but not the rest of the
    // frame, also at once.
    let frame = [b"SEND\nh:1\n\n".as_slice(), &[b'x'; 95], b"\0"].concat();
    assert_eq!(error_of(&frame, small.clone()).message, "frame too large");
    // A frame of exactly the limit passes.
    let frame = [b"SEND\nh:1\n\n".as_slice(), &[b'x'; 89], b"\0"].concat();
    assert_eq!(frame.len(), 100);
    let mut decoder = Decoder::new(small);
    decoder.push(&frame);
    assert!(matches!(decoder.next_item(), Ok(Some(Decoded::Frame(_)))));
}

#[test]
fn a_head_arriving_in_small_pieces_is_examined_once() {
    // 1,000 header lines of 1 KiB arriving 1 KiB at a time: the decoder looks at each byte a
    // bounded number of times, not once per piece (which would be quadratic).
    let limits = Limits {
        max_frame_bytes: 2 * 1024 * 1024,
        max_header_line_bytes: 2048,
        ..Limits::default()
    };
    let mut frame = b"SEND\ndestination:/topic/x\n".to_vec();
    for n in 0..998 {
        frame.extend(format!("h{n:04}:{}\n", "v".repeat(1018)).into_bytes());
    }
    frame.extend(b"\nbody\0");
    let mut decoder = Decoder::new(limits);
    decoder.set_version(Version::V1_2);
    let mut frames = Vec::new();
    for piece in frame.chunks(1024) {
        decoder.push(piece);
        frames.extend(decode_all(&mut decoder).unwrap());
    }
    assert_eq!(frames.len(), 1);
    let Decoded::Frame(decoded) = &frames[0] else {
        panic!("{frames:?}")
    };
    assert_eq!(decoded.headers.len(), 999);
    assert_eq!(decoded.body, b"body");
    assert!(
        decoder.examined() <= 3 * frame.len() as u64,
        "examined {} bytes of a {}-byte frame",
        decoder.examined(),
        frame.len()
    );
}

#[test]
fn a_header_name_a_stomp_1_0_peer_cannot_carry_is_left_out() {
    let frame = Frame::new(Command::Message)
        .with_header("destination", "/topic/x")
        .with_header("sender:mallory", "forged")
        .with_header("note", "a:b");
    let for_1_0 = String::from_utf8(frame.encode(Some(Version::V1_0))).unwrap();
    assert!(!for_1_0.contains("sender"), "{for_1_0:?}");
    assert!(
        for_1_0.contains("note:a:b\n"),
        "a colon in a value is carried"
    );
    let for_1_2 = String::from_utf8(frame.encode(Some(Version::V1_2))).unwrap();
    assert!(
        for_1_2.contains("sender\\cmallory:forged\n"),
        "escaped where escaping exists"
    );
}
