//! Property tests: serialization round-trips, and arbitrary input never panics or over-buffers.

mod support;

use proptest::prelude::*;
use std::collections::BTreeMap;

use stomp_rooms::room::{Config, ConnId, Settings, TRIM_EVERY};
use stomp_rooms::stomp::{Command, Decoded, Decoder, Frame, Limits, Version};
use support::{scripted_frame, Eviction, SimulatedRoom, Step};

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

/// A frame a chat client might send, mostly valid, picked by three numbers.
fn chat_frame(template: u8, a: u8, b: u16) -> String {
    const SUBSCRIBE_TO: [&str; 5] = ["/topic/a", "/topic/b", "/queue/q", "/presence", "/user/x"];
    const SEND_TO: [&str; 4] = ["/topic/a", "/topic/b", "/queue/q", "/user/u1/x"];
    const ACKS: [&str; 3] = ["auto", "client", "client-individual"];
    let n = usize::from(a);
    let receipt = if a % 2 == 0 {
        format!("receipt:r{b}\n")
    } else {
        String::new()
    };
    match template {
        0..=5 => {
            let destination = SUBSCRIBE_TO[n % SUBSCRIBE_TO.len()];
            let replay = match (destination.starts_with("/topic/"), b % 3) {
                (true, 1) => format!("replay-last:{}\n", b % 5),
                (true, 2) => format!("replay-after:{}\n", b % 24),
                _ => String::new(),
            };
            format!(
                "SUBSCRIBE\nid:{}\ndestination:{destination}\nack:{}\n{replay}{receipt}\n\0",
                n % SUBSCRIBE_TO.len(),
                ACKS[(n / 8) % ACKS.len()]
            )
        }
        6..=25 => {
            let destination = SEND_TO[n % SEND_TO.len()];
            format!("SEND\ndestination:{destination}\n{receipt}\nbody {b}\0")
        }
        26..=31 => format!("ACK\nid:{}-{}\nmessage-id:{}\nsubscription:{}\n{receipt}\n\0", b % 24, a % 5, b % 24, a % 5),
        32 | 33 => format!("NACK\nid:{}-{}\nmessage-id:{}\nsubscription:{}\n\n\0", b % 24, a % 5, b % 24, a % 5),
        // Transactions, committed, aborted, or left open (to survive an eviction).
        34 => format!("BEGIN\ntransaction:t{}\n\n\0SEND\ndestination:/topic/a\ntransaction:t{}\n\nstaged {b}\0COMMIT\ntransaction:t{}\n{receipt}\n\0", b % 2, b % 2, b % 2),
        35 => format!("BEGIN\ntransaction:t{}\n\n\0SEND\ndestination:/queue/q\ntransaction:t{}\n\nstaged {b}\0ABORT\ntransaction:t{}\n\n\0", b % 2, b % 2, b % 2),
        36 => "BEGIN\ntransaction:open\n\n\0SEND\ndestination:/topic/b\ntransaction:open\n\nlater\0".to_owned(),
        37 => format!("UNSUBSCRIBE\nid:{}\n\n\0", n % SUBSCRIBE_TO.len()),
        // A burst: many messages to one topic in one WebSocket message.
        39 => (0..12).map(|i| format!("SEND\ndestination:/topic/a\n\nburst {b}.{i}\0")).collect(),
        40 => "DISCONNECT\nreceipt:bye\n\n\0".to_owned(),
        // Anything at all, valid or not.
        _ => scripted_frame(a, b as u8, b),
    }
}

fn step() -> impl Strategy<Value = Step> {
    let conn = 1u64..5;
    let frame = (
        conn.clone(),
        0u8..42,
        any::<u8>(),
        any::<u16>(),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(conn, template, a, b, binary)| Step::Bytes {
            conn,
            bytes: chat_frame(template, a, b).into_bytes(),
            binary,
        });
    let heart_beat = prop::sample::select(vec![
        (0, 0),
        (0, 0),
        (0, 1_500),
        (4_000, 0),
        (10_000, 10_000),
        (1_000, 3_000),
    ]);
    let minor = prop::sample::select(vec![0u8, 1, 2, 2, 2, 2, 2, 2]);
    let connect =
        (conn.clone(), minor, heart_beat).prop_map(|(conn, minor, heart_beat)| Step::Connect {
            conn,
            minor,
            heart_beat,
        });
    prop_oneof![
        1 => conn.clone().prop_map(Step::Open),
        6 => connect,
        30 => frame,
        1 => conn.clone().prop_map(Step::Close),
        5 => conn.prop_map(Step::Ping),
        3 => (0u64..6_000).prop_map(Step::Tick),
        2 => Just(Step::Hibernate),
    ]
}

/// A frame for a client whose socket is closed goes to a new connection of that client, so
/// random sessions keep their clients busy rather than dropping most of their frames.
fn connecting_first(room: &SimulatedRoom, step: Step) -> Vec<Step> {
    match &step {
        Step::Bytes { conn, .. } if !room.is_open(*conn) => {
            let connect = Step::Connect {
                conn: *conn,
                minor: 2,
                heart_beat: (0, 0),
            };
            vec![connect, step]
        }
        _ => vec![step],
    }
}

/// What the clients saw: every WebSocket message each received (heart-beats included) and how
/// each socket was closed.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    received: BTreeMap<ConnId, Vec<String>>,
    closed: BTreeMap<ConnId, Option<(u16, String)>>,
}

fn observe(room: &mut SimulatedRoom, clients: &[ConnId]) -> Observed {
    let mut received = BTreeMap::new();
    let mut closed = BTreeMap::new();
    for &client in clients {
        let seen: Vec<String> = room
            .take_received(client)
            .into_iter()
            .map(|r| match r.frame {
                Some(frame) => format!(
                    "{}{}",
                    if r.binary { "binary " } else { "" },
                    String::from_utf8_lossy(&frame.encode(Some(Version::V1_2)))
                ),
                None => "heart-beat".to_owned(),
            })
            .collect();
        received.insert(client, seen);
        closed.insert(client, room.closed(client));
    }
    Observed { received, closed }
}

/// The bounds every room keeps, evicted or not.
fn assert_bounds(room: &SimulatedRoom, settings: &Settings) -> Result<(), TestCaseError> {
    for destination in ["/topic/a", "/topic/b"] {
        let stored = room.history(destination).len();
        prop_assert!(
            stored < (settings.broker.history_limit + TRIM_EVERY) as usize,
            "{} stored for {}",
            stored,
            destination
        );
    }
    for client in 1..5 {
        if let Some(session) = room.session(client) {
            prop_assert!(session.unacked.len() <= settings.broker.limits.max_unacked);
        }
    }
    Ok(())
}

fn small_settings() -> Settings {
    settings_checking_liveness_every(0)
}

/// Small limits, so random sessions reach them; liveness checked on time (0) or lazily.
fn settings_checking_liveness_every(liveness_check_ms: u64) -> Settings {
    Settings {
        liveness_check_ms,
        broker: Config {
            history_limit: 3,
            limits: Limits {
                max_unacked: 2,
                ..Limits::default()
            },
            ..Config::default()
        },
        ..Settings::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random frame sequences from several clients: the room never panics, never sends to a
    /// closed connection, never dequeues what it did not enqueue, and every session it keeps
    /// fits in an attachment (the in-memory storage and sockets assert all of these).
    #[test]
    fn random_sessions_keep_the_room_consistent(steps in prop::collection::vec(step(), 0..60)) {
        let mut room = SimulatedRoom::with_settings(small_settings());
        for step in steps {
            for step in connecting_first(&room, step) {
                room.step(step);
            }
        }
        // Whatever is stored for queues is either waiting or held by an open session.
        let held: usize = (1..5)
            .filter_map(|c| room.session(c))
            .map(|s| s.unacked.iter().filter(|u| u.is_queue()).count())
            .sum();
        prop_assert!(held <= room.store.queued_ids().len());
        assert_bounds(&room, &small_settings())?;
    }

    /// Eviction is invisible: the same random session run through a room that is never
    /// evicted, one evicted after every event, and one evicted at random points, gives every
    /// client exactly the same frames, heart-beats and closes, and all three keep the bounds.
    #[test]
    fn eviction_at_any_point_is_invisible_to_clients(
        steps in prop::collection::vec(step(), 0..120),
        liveness_check_ms in prop::sample::select(vec![0u64, 5_000]),
    ) {
        let settings = settings_checking_liveness_every(liveness_check_ms);
        let clients: Vec<ConnId> = (1..5).collect();
        let mut kept = SimulatedRoom::with_settings(settings.clone());
        kept.eviction = Eviction::Never;
        let mut evicted = SimulatedRoom::with_settings(settings.clone());
        evicted.eviction = Eviction::EveryStep;
        let mut sometimes = SimulatedRoom::with_settings(settings.clone());
        sometimes.eviction = Eviction::Never;
        for (n, step) in steps.into_iter().enumerate() {
            for step in connecting_first(&kept, step) {
                if !matches!(step, Step::Hibernate) {
                    kept.step(step.clone());
                    evicted.step(step.clone());
                }
                sometimes.step(step);
            }
            let expected = observe(&mut kept, &clients);
            prop_assert_eq!(&observe(&mut evicted, &clients), &expected, "evicted after every event, at step {}", n);
            prop_assert_eq!(&observe(&mut sometimes, &clients), &expected, "evicted at random points, at step {}", n);
            for room in [&kept, &evicted, &sometimes] {
                assert_bounds(room, &settings)?;
            }
        }
    }
}
