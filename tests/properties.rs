//! Property tests: serialization round-trips, and arbitrary input never panics or over-buffers.

mod support;

use proptest::prelude::*;
use stomp_rooms::stomp::{Command, Decoded, Decoder, Frame, Limits, Version};
use support::{scripted_frame, Room, Step};

/// Commands whose headers are escaped (CONNECT-family frames are not, so cannot carry every
/// character).
fn escaped_command() -> impl Strategy<Value = Command> {
    prop::sample::select(vec![
        Command::Send,
        Command::Subscribe,
        Command::Unsubscribe,
        Command::Ack,
        Command::Nack,
        Command::Begin,
        Command::Message,
        Command::Receipt,
        Command::Error,
    ])
}

fn header() -> impl Strategy<Value = (String, String)> {
    (
        any::<String>().prop_filter("names are non-empty", |n| {
            !n.is_empty() && n != "content-length"
        }),
        any::<String>(),
    )
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        escaped_command(),
        prop::collection::vec(header(), 0..8),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(command, headers, body)| Frame {
            command,
            headers,
            body,
        })
}

fn decode_in_pieces(
    bytes: &[u8],
    cuts: &[usize],
    limits: Limits,
    version: Version,
) -> Result<Vec<Decoded>, String> {
    let mut decoder = Decoder::new(limits.clone());
    decoder.set_version(version);
    let mut items = Vec::new();
    let mut start = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    points.push(bytes.len());
    for end in points {
        decoder.push(&bytes[start..end.max(start)]);
        start = end.max(start);
        loop {
            match decoder.next_item() {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(error) => return Err(error.message),
            }
        }
        assert!(
            decoder.pending().len() <= limits.max_frame_bytes,
            "buffered {} bytes",
            decoder.pending().len()
        );
    }
    Ok(items)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn serialize_then_parse_round_trips(frame in frame(), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
        let version = Version::V1_2;
        let bytes = frame.encode(Some(version));
        let items = decode_in_pieces(&bytes, &cuts, Limits::default(), version).expect("own output decodes");
        prop_assert_eq!(items.len(), 1);
        let Decoded::Frame(decoded) = &items[0] else { panic!("{items:?}") };
        prop_assert_eq!(decoded.command, frame.command);
        let mut headers = decoded.headers.clone();
        if !frame.body.is_empty() || frame.command == Command::Message {
            let (name, value) = headers.pop().expect("content-length header");
            prop_assert_eq!(name, "content-length");
            prop_assert_eq!(value, frame.body.len().to_string());
        }
        prop_assert_eq!(headers, frame.headers.clone());
        prop_assert_eq!(&decoded.body, &frame.body);
    }

    #[test]
    fn several_frames_in_one_stream(frames in prop::collection::vec(frame(), 1..5), cuts in prop::collection::vec(any::<usize>(), 0..10)) {
        let mut bytes = Vec::new();
        for frame in &frames {
            bytes.extend(frame.encode(Some(Version::V1_2)));
            bytes.extend(b"\n");
        }
        let items = decode_in_pieces(&bytes, &cuts, Limits::default(), Version::V1_2).unwrap();
        let decoded: Vec<&Frame> = items.iter().filter_map(|i| match i { Decoded::Frame(f) => Some(f), _ => None }).collect();
        prop_assert_eq!(decoded.len(), frames.len());
        for (decoded, frame) in decoded.iter().zip(&frames) {
            prop_assert_eq!(&decoded.body, &frame.body);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_or_overbuffer(
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
        version in prop::sample::select(vec![Version::V1_0, Version::V1_1, Version::V1_2]),
    ) {
        let limits = Limits { max_frame_bytes: 256, max_body_bytes: 128, max_headers: 4, max_header_line_bytes: 64, ..Limits::default() };
        let _ = decode_in_pieces(&bytes, &cuts, limits, version);
    }

    #[test]
    fn frame_like_bytes_never_panic_or_overbuffer(
        parts in prop::collection::vec(prop::sample::select(vec![
            "SEND\n", "CONNECT\n", "destination:/topic/a\n", "content-length:3\n", "content-length:99\n",
            "a\\cb:c\\n\n", "\\t:x\n", "\n", "\r\n", "\0", "abc", "\r", ":", "x:y\n",
        ]), 0..40),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let bytes = parts.concat().into_bytes();
        let limits = Limits { max_frame_bytes: 200, max_body_bytes: 100, max_headers: 5, max_header_line_bytes: 50, ..Limits::default() };
        let _ = decode_in_pieces(&bytes, &cuts, limits, Version::V1_2);
    }
}

fn step() -> impl Strategy<Value = Step> {
    let conn = 1u64..5;
    let frame = (
        conn.clone(),
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        any::<bool>(),
    )
        .prop_map(|(conn, template, a, b, binary)| Step::Bytes {
            conn,
            bytes: scripted_frame(template, a, b).into_bytes(),
            binary,
        });
    prop_oneof![
        2 => conn.clone().prop_map(Step::Open),
        10 => frame,
        1 => conn.prop_map(Step::Close),
        1 => (0u64..40_000).prop_map(Step::Tick),
        1 => Just(Step::Hibernate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random frame sequences from several clients: the broker never panics, never sends to a
    /// closed connection, never dequeues what it did not enqueue, and every session it asks
    /// to save fits in an attachment (the simulated room asserts all of these).
    #[test]
    fn random_sessions_keep_the_broker_consistent(steps in prop::collection::vec(step(), 0..60)) {
        let mut room = Room::new();
        for step in steps {
            room.step(step);
        }
        // Whatever is stored for queues is either waiting or held by an open session.
        let held: usize = room.broker.connections()
            .filter_map(|c| room.broker.session(c))
            .map(|s| s.unacked.iter().filter(|u| u.is_queue()).count())
            .sum();
        prop_assert!(held <= room.queue_store.len());
    }
}
