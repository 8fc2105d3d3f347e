//! Property tests: serialization round-trips, and arbitrary input never panics or over-buffers.

mod support;

use proptest::prelude::*;
use stomp_rooms::stomp::{Command, Decoded, Decoder, Frame, Limits, Version};
use support::Room;

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

/// One step of a random client session.
#[derive(Debug, Clone)]
enum Step {
    Open(u64),
    Frame(u64, String, bool),
    Close(u64),
    Tick(u64),
    Hibernate,
}

fn step() -> impl Strategy<Value = Step> {
    let conn = 1u64..5;
    let destination = prop::sample::select(vec![
        "/topic/a",
        "/topic/b",
        "/queue/q",
        "/user/s1/x",
        "/user/x",
        "/presence",
        "/bad",
    ]);
    let id = prop::sample::select(vec!["0", "1", "t"]);
    let ack = prop::sample::select(vec!["auto", "client", "client-individual"]);
    let frame = (destination, id, ack, 0u64..20, 0u32..4).prop_map(|(destination, id, ack, n, pick)| {
        match n % 10 {
            0 => format!("CONNECT\naccept-version:1.{pick}\nheart-beat:{n}00,{pick}000\nlogin:u{pick}\n\n\0"),
            1 => format!("SUBSCRIBE\nid:{id}\ndestination:{destination}\nack:{ack}\nreplay-last:{pick}\n\n\0"),
            2 => format!("SEND\ndestination:{destination}\nreceipt:r{n}\n\nbody {n}\0"),
            3 => format!("SEND\ndestination:{destination}\ntransaction:{id}\n\n\0"),
            4 => format!("ACK\nid:{n}-{pick}\nmessage-id:{n}\nsubscription:{id}\n\n\0"),
            5 => format!("NACK\nid:{n}-{pick}\nmessage-id:{n}\nsubscription:{id}\n\n\0"),
            6 => format!("BEGIN\ntransaction:{id}\n\n\0"),
            7 => format!("{}\ntransaction:{id}\n\n\0", if pick % 2 == 0 { "COMMIT" } else { "ABORT" }),
            8 => format!("UNSUBSCRIBE\nid:{id}\n\n\0"),
            _ => "DISCONNECT\nreceipt:bye\n\n\0".to_owned(),
        }
    });
    prop_oneof![
        2 => conn.clone().prop_map(Step::Open),
        10 => (conn.clone(), frame, any::<bool>()).prop_map(|(c, f, b)| Step::Frame(c, f, b)),
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
            match step {
                Step::Open(conn) => {
                    if !room.is_open(conn) {
                        room.closed.remove(&conn);
                        room.open(conn);
                    }
                }
                Step::Frame(conn, frame, binary) => {
                    if room.is_open(conn) {
                        if binary { room.raw_binary(conn, frame.as_bytes()) } else { room.raw(conn, frame.as_bytes()) }
                    }
                }
                Step::Close(conn) => room.close(conn),
                Step::Tick(ms) => room.advance(ms),
                Step::Hibernate => room.hibernate(),
            }
        }
        // Whatever is stored for queues is either waiting or held by an open session.
        let held: usize = room.broker.connections()
            .filter_map(|c| room.broker.session(c))
            .map(|s| s.unacked.iter().filter(|u| u.is_queue()).count())
            .sum();
        prop_assert!(held <= room.queue_store.len());
    }
}
