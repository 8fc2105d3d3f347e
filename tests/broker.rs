//! The room broker, rule by rule, driven through the simulated room in `support`.

mod support;

use stomp_rooms::room::auth::{Grants, MAX_GRANT_BYTES};
use stomp_rooms::room::testing::{SocketCall, ATTACHMENT_LIMIT};
use stomp_rooms::room::{
    AckMode, Config, Phase, PublishRate, Session, Settings, Subscription, Throttle, Unacked,
    FLUSH_BATCH, FLUSH_BYTES, FLUSH_DEADLINE_MS, FLUSH_DELAY_MS, TRIM_EVERY,
};
use stomp_rooms::stomp::{Command, Frame, HeartBeat, Limits, Version};
use support::{Eviction, SimulatedRoom};

fn error_message(frames: &[Frame]) -> Option<&str> {
    frames
        .iter()
        .find(|f| f.command == Command::Error)
        .and_then(|f| f.header("message"))
}

// ---- sessions --------------------------------------------------------------------------

room_test! {
fn connect_negotiates_each_version() {
    let mut room = SimulatedRoom::new();
    let cases = [
        ("host:room", "1.0"),
        ("accept-version:1.0", "1.0"),
        ("accept-version:1.0,1.1", "1.1"),
        ("accept-version:1.1,1.2", "1.2"),
        ("accept-version:1.2,9.9", "1.2"),
    ];
    for (conn, (headers, version)) in (1..).zip(cases) {
        let connected = room.connect_with(conn, headers);
        assert_eq!(connected.command, Command::Connected, "{headers}");
        assert_eq!(connected.header("version"), Some(version), "{headers}");
        assert_eq!(
            connected.header("session"),
            Some(format!("s{conn}").as_str())
        );
        assert!(connected
            .header("server")
            .unwrap()
            .starts_with("stomp-rooms/"));
        assert_eq!(connected.header("heart-beat"), Some("1000,1000"));
    }
}
}

room_test! {
fn stomp_command_connects_too() {
    let mut room = SimulatedRoom::new();
    room.open(1);
    room.raw(1, b"STOMP\naccept-version:1.2\nhost:room\n\n\0");
    assert_eq!(room.take(1)[0].command, Command::Connected);
}
}

room_test! {
fn no_common_version_is_an_error_naming_ours() {
    let mut room = SimulatedRoom::new();
    let error = room.connect_with(1, "accept-version:2.0,3.0");
    assert_eq!(error.command, Command::Error);
    assert_eq!(error.header("message"), Some("unsupported version"));
    assert_eq!(error.header("version"), Some("1.0,1.1,1.2"));
    assert!(!room.is_open(1));
    assert_eq!(room.closed(1).unwrap().0, 1002);
}
}

room_test! {
fn heart_beats_follow_the_max_rule() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "heart-beat:1000,30000\n");
    assert_eq!(
        room.session(1).unwrap().heart_beat,
        HeartBeat {
            send_ms: 30_000,
            receive_ms: 1_000
        },
        "each direction beats as the client asked"
    );
    room.connect(2, "heart-beat:0,0\n");
    assert_eq!(
        room.session(2).unwrap().heart_beat,
        HeartBeat::default()
    );
    // STOMP 1.0 has no heart-beats.
    room.connect_with(3, "heart-beat:1000,1000");
    assert_eq!(
        room.session(3).unwrap().heart_beat,
        HeartBeat::default()
    );
    // Never faster than the room's floor, `heart_beat_min_ms`.
    let connected = room.connect(4, "heart-beat:200,500\n");
    assert_eq!(connected.header("heart-beat"), Some("1000,1000"));
    assert_eq!(
        room.session(4).unwrap().heart_beat,
        HeartBeat {
            send_ms: 1_000,
            receive_ms: 1_000
        }
    );
    let error = room.connect(5, "heart-beat:soon\n");
    assert_eq!(error.header("message"), Some("invalid heart-beat"));
}
}

room_test! {
fn authentication_hook_decides() {
    let mut room = SimulatedRoom::new().with_credentials(&[("alice", "secret")]);
    assert_eq!(
        room.connect(1, "login:alice\npasscode:secret\n").command,
        Command::Connected
    );
    assert_eq!(
        room.session(1).unwrap().login.as_deref(),
        Some("alice")
    );
    for (conn, headers) in [
        (2, "login:alice\npasscode:wrong\n"),
        (3, "login:mallory\npasscode:secret\n"),
        (4, ""),
    ] {
        let reply = room.connect(conn, headers);
        assert_eq!(reply.command, Command::Error);
        assert_eq!(reply.header("message"), Some("authentication failed"));
        assert!(!room.is_open(conn));
    }
}
}

room_test! {
fn frames_before_connect_are_refused() {
    let mut room = SimulatedRoom::new();
    room.open(1);
    room.frame(1, "SEND\ndestination:/topic/a\nreceipt:r1", "x");
    let frames = room.take(1);
    assert_eq!(error_message(&frames), Some("not connected"));
    assert_eq!(frames[0].header("receipt-id"), Some("r1"));
    assert!(!room.is_open(1));
}
}

room_test! {
fn a_second_connect_is_refused() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.raw(1, b"CONNECT\naccept-version:1.2\n\n\0");
    assert_eq!(error_message(&room.take(1)), Some("already connected"));
}
}

room_test! {
fn server_commands_from_a_client_are_refused() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.frame(1, "MESSAGE\ndestination:/topic/a", "");
    assert_eq!(error_message(&room.take(1)), Some("unexpected command"));
}
}

// ---- publish and subscribe ------------------------------------------------------------

room_test! {
fn topic_messages_reach_every_subscriber_exactly_once() {
    let mut room = SimulatedRoom::new();
    for conn in 1..=3 {
        room.connect(conn, "");
        room.subscribe(conn, "sub-0", "/topic/chat");
    }
    room.subscribe(3, "sub-1", "/topic/other");
    room.publish(1, "/topic/chat", "one");
    room.publish(2, "/topic/chat", "two");
    room.publish(3, "/topic/other", "elsewhere");
    for conn in 1..=3 {
        let mut expected = vec!["one", "two"];
        if conn == 3 {
            expected.push("elsewhere");
        }
        assert_eq!(room.bodies(conn), expected, "connection {conn}");
    }
}
}

room_test! {
fn message_headers() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "mine", "/topic/chat");
    room.frame(
        1,
        "SEND\ndestination:/topic/chat\ncontent-type:text/plain\nx-user:hello\nmessage-id:forged\nsubscription:forged\nsender:forged\ntimestamp:0\nreceipt:r9",
        "body",
    );
    let frames = room.take(2);
    assert_eq!(frames.len(), 1);
    let message = &frames[0];
    assert_eq!(message.command, Command::Message);
    assert_eq!(message.header("subscription"), Some("mine"));
    assert_eq!(message.header("destination"), Some("/topic/chat"));
    assert_eq!(message.header("content-type"), Some("text/plain"));
    assert_eq!(message.header("content-length"), Some("4"));
    assert_eq!(message.header("x-user"), Some("hello"));
    assert_eq!(
        message.header("sender"),
        Some("s1"),
        "stamped by the room: the sender's session"
    );
    assert_eq!(
        message.header("timestamp"),
        Some(room.now.to_string().as_str())
    );
    assert_eq!(
        message
            .headers
            .iter()
            .filter(|(n, _)| n == "sender" || n == "timestamp")
            .count(),
        2
    );
    assert_eq!(message.header("ack"), None);
    assert_eq!(message.header("receipt"), None);
    let id = message.header("message-id").unwrap();
    assert_ne!(id, "forged");
    assert_eq!(
        message
            .headers
            .iter()
            .filter(|(n, _)| n == "message-id")
            .count(),
        1
    );
    assert_eq!(
        message
            .headers
            .iter()
            .filter(|(n, _)| n == "subscription")
            .count(),
        1
    );
    // The sender got its receipt.
    let receipt = room.take(1);
    assert_eq!(receipt[0].command, Command::Receipt);
    assert_eq!(receipt[0].header("receipt-id"), Some("r9"));
}
}

room_test! {
fn message_ids_increase_across_destinations_and_restarts() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.subscribe(1, "a", "/topic/a");
    room.subscribe(1, "b", "/topic/b");
    room.publish(1, "/topic/a", "1");
    room.publish(1, "/topic/b", "2");
    room.hibernate();
    room.publish(1, "/topic/a", "3");
    let ids: Vec<u64> = room
        .take(1)
        .iter()
        .map(|f| f.header("message-id").unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}
}

room_test! {
fn send_without_destination_or_to_an_unknown_kind_is_an_error() {
    let mut room = SimulatedRoom::new();
    for (conn, head, message) in [
        (1, "SEND", "missing destination header"),
        (2, "SEND\ndestination:/exchange/x", "unknown destination"),
        (3, "SEND\ndestination:/presence", "read-only destination"),
        (4, "SUBSCRIBE\ndestination:/topic/x", "missing id header"),
        (
            5,
            "SUBSCRIBE\nid:1\ndestination:/topic/x\nack:sometimes",
            "invalid ack mode",
        ),
        (6, "UNSUBSCRIBE\nid:nope", "unknown subscription"),
        (
            7,
            "SUBSCRIBE\nid:1\ndestination:/queue/q\nreplay-last:5",
            "invalid replay request",
        ),
    ] {
        room.connect(conn, "");
        room.frame(conn, head, "");
        assert_eq!(error_message(&room.take(conn)), Some(message), "{head}");
        assert!(!room.is_open(conn));
    }
}
}

room_test! {
fn subscription_ids_are_unique_per_session_and_limited() {
    let config = Config {
        limits: Limits {
            max_subscriptions: 2,
            ..Limits::default()
        },
        ..Config::default()
    };
    let mut room = SimulatedRoom::with_config(config);
    room.connect(1, "");
    room.subscribe(1, "a", "/topic/x");
    room.subscribe(1, "a", "/topic/y");
    assert_eq!(error_message(&room.take(1)), Some("duplicate subscription"));
    room.connect(2, "");
    room.subscribe(2, "a", "/topic/x");
    room.subscribe(2, "b", "/topic/x");
    room.subscribe(2, "c", "/topic/x");
    assert_eq!(error_message(&room.take(2)), Some("too many subscriptions"));
}
}

room_test! {
fn unsubscribe_stops_delivery() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.subscribe(1, "s", "/topic/x");
    room.publish(1, "/topic/x", "before");
    room.frame(1, "UNSUBSCRIBE\nid:s", "");
    room.publish(1, "/topic/x", "after");
    assert_eq!(room.bodies(1), ["before"]);
}
}

room_test! {
fn stomp_1_0_subscriptions_without_id_use_the_destination() {
    let mut room = SimulatedRoom::new();
    room.connect_with(1, "host:room");
    room.frame(1, "SUBSCRIBE\ndestination:/topic/x", "");
    room.publish(1, "/topic/x", "hi");
    let frames = room.take(1);
    assert_eq!(frames[0].header("subscription"), Some("/topic/x"));
    room.frame(1, "UNSUBSCRIBE\ndestination:/topic/x", "");
    room.publish(1, "/topic/x", "gone");
    assert!(room.take(1).is_empty());
}
}

room_test! {
fn headers_are_escaped_for_each_receivers_version() {
    let mut room = SimulatedRoom::new();
    room.connect_with(10, "accept-version:1.0");
    room.connect_with(11, "accept-version:1.1");
    room.connect_with(12, "accept-version:1.2");
    for conn in [10, 11, 12] {
        room.subscribe(conn, "s", "/topic/x");
    }
    room.frame(12, "SEND\ndestination:/topic/x\nnote:a\\cb\\nc\\rd", "");
    let value = |room: &mut SimulatedRoom, conn| room.take(conn)[0].header("note").unwrap().to_owned();
    assert_eq!(value(&mut room, 12), "a:b\nc\rd");
    assert_eq!(value(&mut room, 11), "a:b\nc d");
    assert_eq!(value(&mut room, 10), "a:b c d");
}
}

room_test! {
fn binary_in_binary_out_text_stays_text() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/topic/x");
    room.raw_binary(1, b"SEND\ndestination:/topic/x\ncontent-length:3\n\nabc\0");
    room.raw(
        1,
        b"SEND\ndestination:/topic/x\ncontent-length:2\n\n\xff\xfe\0",
    );
    room.publish(1, "/topic/x", "plain");
    let received = room.take_received(2);
    let flags: Vec<(Vec<u8>, bool)> = received
        .into_iter()
        .map(|r| (r.frame.unwrap().body, r.binary))
        .collect();
    assert_eq!(
        flags,
        [
            (b"abc".to_vec(), true),
            (vec![0xff, 0xfe], true),
            (b"plain".to_vec(), false)
        ]
    );
}
}

room_test! {
fn bodies_are_only_allowed_on_send() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.frame(1, "SUBSCRIBE\nid:1\ndestination:/topic/x", "surprise");
    assert_eq!(error_message(&room.take(1)), Some("unexpected body"));
}
}

// ---- queues and private destinations ------------------------------------------------------

room_test! {
fn queue_messages_go_round_robin_to_one_consumer_each() {
    let mut room = SimulatedRoom::new();
    for conn in 1..=3 {
        room.connect(conn, "");
    }
    room.subscribe(1, "q", "/queue/jobs");
    room.subscribe(2, "q", "/queue/jobs");
    for n in 0..6 {
        room.publish(3, "/queue/jobs", &n.to_string());
    }
    assert_eq!(room.bodies(1), ["0", "2", "4"]);
    assert_eq!(room.bodies(2), ["1", "3", "5"]);
    assert!(
        room.store.queued_ids().is_empty(),
        "auto-ack deliveries are not kept"
    );
}
}

room_test! {
fn queue_messages_wait_for_a_consumer() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.publish(1, "/queue/later", "a");
    room.publish(1, "/queue/later", "b");
    assert_eq!(room.store.queued_ids().len(), 2);
    room.hibernate();
    room.connect(2, "");
    room.subscribe(2, "q", "/queue/later");
    assert_eq!(room.bodies(2), ["a", "b"]);
    assert!(room.store.queued_ids().is_empty());
}
}

room_test! {
fn user_destinations_reach_every_connection_of_a_verified_login() {
    let mut room = SimulatedRoom::new().with_credentials(&[("alice", "a"), ("bob", "b")]);
    room.connect(1, "login:alice\npasscode:a\n");
    room.connect(2, "login:bob\npasscode:b\n");
    room.connect(3, "login:bob\npasscode:b\n");
    for conn in 1..=3 {
        room.subscribe(conn, "inbox", "/user/inbox");
    }
    room.publish(1, "/user/bob/inbox", "for bob");
    room.publish(2, "/user/alice/elsewhere", "nobody listens");
    assert!(room.bodies(1).is_empty());
    for conn in [2, 3] {
        let frames = room.take(conn);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].header("destination"), Some("/user/inbox"));
        assert_eq!(frames[0].header("sender"), Some("alice"));
        assert_eq!(frames[0].header("sender-verified"), Some("true"));
        assert_eq!(frames[0].body, b"for bob");
    }
}
}

room_test! {
fn in_open_rooms_user_destinations_name_sessions_never_claimed_logins() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "login:bob\n");
    room.connect(2, "");
    room.connect(3, "login:mallory\n");
    for conn in 1..=3 {
        room.subscribe(conn, "inbox", "/user/inbox");
    }
    room.publish(3, "/user/bob/inbox", "a claimed login is no address");
    room.publish(3, "/user/s1/inbox", "for session 1");
    room.publish(3, "/user/s2/inbox", "for session 2");
    let to_1 = room.take(1);
    assert_eq!(to_1.len(), 1);
    assert_eq!(to_1[0].body, b"for session 1");
    assert_eq!(to_1[0].header("sender"), Some("s3"), "the session, not the claim");
    assert_eq!(to_1[0].header("sender-name"), Some("mallory"));
    assert_eq!(to_1[0].header("sender-verified"), None);
    assert_eq!(room.bodies(2), ["for session 2"]);
    assert!(room.take(3).is_empty());
}
}

// ---- acknowledgements -----------------------------------------------------------------

fn ack_id(frame: &Frame) -> String {
    frame.header("ack").expect("ack header").to_owned()
}

room_test! {
fn client_individual_acks_one_message() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.connect(2, "");
    room.frame(
        2,
        "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client-individual",
        "",
    );
    for body in ["a", "b", "c"] {
        room.publish(1, "/queue/work", body);
    }
    let frames = room.take(2);
    assert_eq!(frames.len(), 3);
    assert_eq!(room.store.queued_ids().len(), 3);
    room.frame(2, &format!("ACK\nid:{}", ack_id(&frames[1])), "");
    assert_eq!(room.session(2).unwrap().unacked.len(), 2);
    assert_eq!(room.store.queued_ids().len(), 2);
    assert!(!room.store.queued().iter().any(|q| q.message.body == b"b"));
}
}

room_test! {
fn client_acks_are_cumulative() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.connect(2, "");
    room.frame(
        2,
        "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client",
        "",
    );
    for body in ["a", "b", "c"] {
        room.publish(1, "/queue/work", body);
    }
    let frames = room.take(2);
    room.frame(
        2,
        &format!("ACK\nid:{}\nreceipt:done", ack_id(&frames[1])),
        "",
    );
    assert_eq!(room.take(2)[0].header("receipt-id"), Some("done"));
    let left: Vec<Vec<u8>> = room
        .store
        .queued()
        .into_iter()
        .map(|q| q.message.body)
        .collect();
    assert_eq!(left, [b"c".to_vec()]);
}
}

room_test! {
fn nack_redelivers_a_queue_message_to_another_consumer() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.connect(2, "");
    room.connect(3, "");
    room.frame(
        1,
        "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client-individual",
        "",
    );
    room.frame(
        2,
        "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client-individual",
        "",
    );
    room.publish(3, "/queue/work", "job");
    let first = room.take(1);
    assert_eq!(first.len(), 1);
    assert!(room.take(2).is_empty());
    room.frame(1, &format!("NACK\nid:{}", ack_id(&first[0])), "");
    let second = room.take(2);
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].body, b"job");
    assert_eq!(second[0].header("redelivered"), Some("true"));
    assert_eq!(
        second[0].header("message-id"),
        first[0].header("message-id")
    );
    assert!(room.take(1).is_empty());
    assert_eq!(room.store.queued_ids().len(), 1, "still stored until acknowledged");
}
}

room_test! {
fn a_lone_consumer_gets_its_nacked_message_again() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.frame(
        1,
        "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client",
        "",
    );
    room.publish(1, "/queue/work", "job");
    let first = room.take(1);
    room.frame(1, &format!("NACK\nid:{}", ack_id(&first[0])), "");
    let again = room.take(1);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].header("redelivered"), Some("true"));
}
}

room_test! {
fn disconnect_requeues_unacked_queue_messages_but_not_topic_ones() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.connect(2, "");
    room.frame(
        1,
        "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client",
        "",
    );
    room.frame(
        1,
        "SUBSCRIBE\nid:t\ndestination:/topic/news\nack:client",
        "",
    );
    room.publish(2, "/queue/work", "job");
    room.publish(2, "/topic/news", "news");
    assert_eq!(room.take(1).len(), 2);
    room.close(1);
    room.frame(
        2,
        "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client",
        "",
    );
    room.frame(
        2,
        "SUBSCRIBE\nid:t\ndestination:/topic/news\nack:client",
        "",
    );
    let frames = room.take(2);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].body, b"job");
    assert_eq!(frames[0].header("redelivered"), Some("true"));
}
}

room_test! {
fn unacked_queue_messages_are_limited_like_a_prefetch() {
    let config = Config {
        limits: Limits {
            max_unacked: 2,
            ..Limits::default()
        },
        ..Config::default()
    };
    let mut room = SimulatedRoom::with_config(config);
    room.connect(1, "");
    room.connect(2, "");
    room.frame(
        1,
        "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client-individual",
        "",
    );
    for n in 0..4 {
        room.publish(2, "/queue/work", &n.to_string());
    }
    let frames = room.take(1);
    assert_eq!(frames.len(), 2);
    room.frame(1, &format!("ACK\nid:{}", ack_id(&frames[0])), "");
    assert_eq!(room.bodies(1), ["2"]);
}
}

room_test! {
fn stomp_1_1_acks_name_message_id_and_subscription() {
    let mut room = SimulatedRoom::new();
    room.connect_with(1, "accept-version:1.1");
    room.connect(2, "");
    room.frame(
        1,
        "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client",
        "",
    );
    room.publish(2, "/queue/work", "job");
    let frames = room.take(1);
    assert_eq!(frames[0].header("ack"), None, "the ack header is STOMP 1.2");
    let id = frames[0].header("message-id").unwrap();
    room.frame(1, &format!("ACK\nmessage-id:{id}"), "");
    assert_eq!(
        error_message(&room.take(1)),
        Some("missing subscription header")
    );

    room.connect_with(3, "accept-version:1.1");
    room.frame(
        3,
        "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client",
        "",
    );
    let frames = room.take(3);
    assert_eq!(frames.len(), 1, "requeued to the remaining consumer");
    let id = frames[0].header("message-id").unwrap();
    room.frame(3, &format!("ACK\nmessage-id:{id}\nsubscription:q"), "");
    assert!(room.store.queued_ids().is_empty());
}
}

room_test! {
fn a_stomp_1_1_ack_naming_no_subscription_is_accepted_for_a_pending_message() {
    let mut room = SimulatedRoom::new();
    room.connect_with(1, "accept-version:1.1");
    room.connect(2, "");
    room.frame(
        1,
        "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client-individual",
        "",
    );
    room.publish(2, "/queue/work", "job");
    let id = room.take(1)[0].header("message-id").unwrap().to_owned();
    // Older clients name the destination, or their own label, instead of the id.
    room.frame(
        1,
        &format!("ACK\nmessage-id:{id}\nsubscription:/queue/work\nreceipt:r"),
        "",
    );
    assert_eq!(room.take(1)[0].header("receipt-id"), Some("r"));
    assert!(room.store.queued_ids().is_empty(), "the ACK took effect");
    // Naming no subscription and no pending message is still an error.
    room.frame(1, "ACK\nmessage-id:999\nsubscription:nope", "");
    assert_eq!(error_message(&room.take(1)), Some("unknown subscription"));
}
}

room_test! {
fn malformed_ack_ids_are_errors_and_unknown_ones_are_ignored() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.frame(1, "ACK\nid:999-0\nreceipt:r", "");
    assert_eq!(room.take(1)[0].command, Command::Receipt);
    room.frame(1, "ACK\nid:garbage", "");
    assert_eq!(error_message(&room.take(1)), Some("invalid ack id"));
}
}

room_test! {
fn a_bare_message_id_is_accepted_as_a_stomp_1_2_ack_id() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.frame(
        1,
        "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client-individual",
        "",
    );
    room.publish(1, "/queue/work", "job");
    let frames = room.take(1);
    let id = frames[0].header("message-id").unwrap();
    room.frame(1, &format!("ACK\nid:{id}"), "");
    assert!(room.store.queued_ids().is_empty());
}
}

// ---- transactions ---------------------------------------------------------------------

room_test! {
fn committed_sends_are_delivered_and_aborted_ones_are_not() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/topic/x");
    room.frame(1, "BEGIN\ntransaction:t1", "");
    room.frame(
        1,
        "SEND\ndestination:/topic/x\ntransaction:t1\nreceipt:r1",
        "first",
    );
    room.frame(1, "SEND\ndestination:/topic/x\ntransaction:t1", "second");
    assert_eq!(room.take(1)[0].header("receipt-id"), Some("r1"));
    assert!(room.take(2).is_empty(), "nothing before COMMIT");
    assert_eq!(room.store.staged().len(), 2, "both frames stored until COMMIT");
    room.frame(1, "COMMIT\ntransaction:t1", "");
    assert_eq!(room.bodies(2), ["first", "second"]);
    assert!(room.store.staged().is_empty());

    room.frame(1, "BEGIN\ntransaction:t2", "");
    room.frame(1, "SEND\ndestination:/topic/x\ntransaction:t2", "never");
    room.frame(1, "ABORT\ntransaction:t2", "");
    assert!(room.take(2).is_empty());
    assert!(room.store.staged().is_empty());
}
}

room_test! {
fn acks_in_a_transaction_take_effect_on_commit() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.frame(
        1,
        "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client-individual",
        "",
    );
    room.publish(1, "/queue/work", "job");
    let frames = room.take(1);
    room.frame(1, "BEGIN\ntransaction:t", "");
    room.frame(
        1,
        &format!("ACK\nid:{}\ntransaction:t", ack_id(&frames[0])),
        "",
    );
    assert_eq!(room.store.queued_ids().len(), 1);
    room.frame(1, "COMMIT\ntransaction:t", "");
    assert!(room.store.queued_ids().is_empty());
}
}

room_test! {
fn transaction_errors() {
    let mut room = SimulatedRoom::new();
    for (conn, frames, message) in [
        (1, vec!["COMMIT\ntransaction:nope"], "unknown transaction"),
        (2, vec!["ABORT\ntransaction:nope"], "unknown transaction"),
        (
            3,
            vec!["SEND\ndestination:/topic/x\ntransaction:nope"],
            "unknown transaction",
        ),
        (
            4,
            vec!["BEGIN\ntransaction:t", "BEGIN\ntransaction:t"],
            "duplicate transaction",
        ),
        (5, vec!["BEGIN"], "missing transaction header"),
    ] {
        room.connect(conn, "");
        for frame in frames {
            room.frame(conn, frame, "");
        }
        assert_eq!(error_message(&room.take(conn)), Some(message));
    }
}
}

room_test! {
fn open_transactions_abort_on_disconnect_and_survive_hibernation() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/topic/x");
    room.frame(1, "BEGIN\ntransaction:t", "");
    room.frame(
        1,
        "SEND\ndestination:/topic/x\ntransaction:t",
        "kept across eviction",
    );
    room.hibernate();
    room.frame(1, "COMMIT\ntransaction:t", "");
    assert_eq!(room.bodies(2), ["kept across eviction"]);

    room.frame(1, "BEGIN\ntransaction:u", "");
    room.frame(1, "SEND\ndestination:/topic/x\ntransaction:u", "dropped");
    room.close(1);
    assert!(room.store.staged().is_empty());
    assert!(room.take(2).is_empty());
}
}

// ---- receipts, errors, disconnect ------------------------------------------------------

room_test! {
fn every_frame_with_a_receipt_gets_one() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    for (n, head) in [
        "SUBSCRIBE\nid:s\ndestination:/topic/x",
        "SEND\ndestination:/topic/x",
        "BEGIN\ntransaction:t",
        "ABORT\ntransaction:t",
        "UNSUBSCRIBE\nid:s",
        "DISCONNECT",
    ]
    .iter()
    .enumerate()
    {
        room.frame(1, &format!("{head}\nreceipt:r{n}"), "");
    }
    let receipts: Vec<String> = room
        .take(1)
        .into_iter()
        .filter(|f| f.command == Command::Receipt)
        .map(|f| f.header("receipt-id").unwrap().to_owned())
        .collect();
    assert_eq!(receipts, ["r0", "r1", "r2", "r3", "r4", "r5"]);
    assert_eq!(
        room.closed(1).unwrap().0, 1000,
        "DISCONNECT closes normally after its receipt"
    );
}
}

room_test! {
fn the_receipt_for_a_send_follows_its_storage() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/topic/x");
    room.take_log();
    let commits_before = room.store.commits.len();
    room.frame(1, "SEND\ndestination:/topic/x\nreceipt:stored", "x");
    assert_eq!(room.history("/topic/x").len(), 1, "the message is stored");
    let commit = room.store.commits[commits_before];
    // An evicted room went quiet first, and its id ceiling came down in a commit of its own.
    let quiet = usize::from(room.eviction == Eviction::EveryStep);
    assert_eq!(
        room.store.commits.len(),
        commits_before + 1 + quiet,
        "one commit for the event"
    );
    let sent_at = |wanted: u64| {
        room.sockets
            .log
            .iter()
            .find_map(|call| match call {
                SocketCall::Send { conn, at, .. } if *conn == wanted => Some(*at),
                _ => None,
            })
            .unwrap()
    };
    assert!(sent_at(2) < commit, "the fan-out does not wait for the write");
    assert!(sent_at(1) > commit, "the RECEIPT leaves only once the message is stored");
    assert_eq!(room.take(1)[0].header("receipt-id"), Some("stored"));
}
}

room_test! {
fn an_error_closes_only_the_offending_connection() {
    let mut room = SimulatedRoom::new();
    for conn in 1..=3 {
        room.connect(conn, "");
        room.subscribe(conn, "s", "/topic/x");
    }
    room.publish(1, "/topic/x", "before");
    // Frames before the bad one in the same message still count.
    room.raw(
        2,
        b"SEND\ndestination:/topic/x\n\naccepted\0BOGUS\nreceipt:77\n\n\0",
    );
    let frames = room.take(2);
    assert_eq!(error_message(&frames), Some("unknown command"));
    assert!(!room.is_open(2));
    room.publish(3, "/topic/x", "after");
    assert_eq!(room.bodies(1), ["before", "accepted", "after"]);
    assert_eq!(room.bodies(3), ["before", "accepted", "after"]);
}
}

room_test! {
fn errors_carry_the_receipt_id_and_an_explanation() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.frame(1, "SEND\nreceipt:abc", "");
    let frames = room.take(1);
    let error = frames.iter().find(|f| f.command == Command::Error).unwrap();
    assert_eq!(error.header("receipt-id"), Some("abc"));
    assert_eq!(error.header("content-type"), Some("text/plain"));
    assert!(String::from_utf8_lossy(&error.body).contains("destination"));
}
}

room_test! {
fn oversized_frames_are_refused_with_a_clear_error() {
    let config = Config {
        limits: Limits {
            max_frame_bytes: 1024,
            max_body_bytes: 1024,
            ..Limits::default()
        },
        ..Config::default()
    };
    let mut room = SimulatedRoom::with_config(config);
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/topic/x");
    room.raw(
        1,
        format!(
            "SEND\ndestination:/topic/x\ncontent-length:2000\n\n{}",
            "x".repeat(100)
        )
        .as_bytes(),
    );
    assert_eq!(error_message(&room.take(1)), Some("body too large"));
    assert!(room.take(2).is_empty());
    assert!(room.is_open(2));
}
}

// ---- presence --------------------------------------------------------------------------

room_test! {
fn presence_lists_members_then_joins_and_leaves() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "login:alice\n");
    room.connect(2, "");
    room.subscribe(1, "p", "/presence");
    let snapshot: serde_json::Value = serde_json::from_slice(&room.take(1)[0].body).unwrap();
    assert_eq!(
        snapshot,
        serde_json::json!({"type": "members", "members": [
            {"session": "s1", "login": "alice", "verified": false},
            {"session": "s2", "login": null, "verified": false}
        ]})
    );
    room.connect(3, "login:carol\n");
    room.close(2);
    let events: Vec<serde_json::Value> = room
        .take(1)
        .iter()
        .map(|f| serde_json::from_slice(&f.body).unwrap())
        .collect();
    assert_eq!(
        events,
        [
            serde_json::json!({"type": "join", "member": {"session": "s3", "login": "carol", "verified": false}}),
            serde_json::json!({"type": "leave", "member": {"session": "s2", "login": null, "verified": false}}),
        ]
    );
}
}

// ---- history replay --------------------------------------------------------------------

room_test! {
fn replay_comes_before_live_messages_without_gaps_or_duplicates() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    for n in 1..=5 {
        room.publish(1, "/topic/chat", &n.to_string());
    }
    room.publish(1, "/topic/other", "not this");
    room.connect(2, "");
    room.frame(
        2,
        "SUBSCRIBE\nid:s\ndestination:/topic/chat\nreplay-last:3",
        "",
    );
    room.publish(1, "/topic/chat", "6");
    let frames = room.take(2);
    let bodies: Vec<&[u8]> = frames.iter().map(|f| f.body.as_slice()).collect();
    assert_eq!(bodies, [b"3".as_slice(), b"4", b"5", b"6"]);
    assert_eq!(frames[0].header("replayed"), Some("true"));
    assert_eq!(frames[3].header("replayed"), None);

    let after = frames[1].header("message-id").unwrap().to_owned();
    room.connect(3, "");
    room.frame(
        3,
        &format!("SUBSCRIBE\nid:s\ndestination:/topic/chat\nreplay-after:{after}"),
        "",
    );
    assert_eq!(room.bodies(3), ["5", "6"]);
}
}

// ---- heart-beats and timeouts ----------------------------------------------------------

/// Settings that check liveness on time rather than lazily.
fn on_time_liveness(config: Config) -> Settings {
    Settings {
        liveness_check_ms: 0,
        broker: config,
        ..Settings::default()
    }
}

room_test! {
fn server_heart_beats_go_to_clients_that_want_them() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "heart-beat:0,10000\n");
    room.advance(9_999);
    assert!(room.take_received(1).is_empty());
    room.advance(1);
    let received = room.take_received(1);
    assert_eq!(received.len(), 1);
    assert!(received[0].frame.is_none(), "a heart-beat is a bare EOL");
    assert_eq!(room.next_alarm(), Some(room.now + 10_000));
}
}

room_test! {
fn a_client_asking_for_fast_heart_beats_gets_them() {
    let mut room = SimulatedRoom::new();
    let connected = room.connect(1, "heart-beat:0,1500\n");
    assert_eq!(connected.header("heart-beat"), Some("1000,1000"));
    room.advance(6_000);
    assert_eq!(room.take_received(1).len(), 4, "one every 1.5 s");
}
}

room_test! {
fn silent_clients_are_closed_on_time_and_pinging_ones_are_kept() {
    let mut room = SimulatedRoom::with_settings(on_time_liveness(Config::default()));
    room.connect(1, "heart-beat:10000,0\n");
    room.connect(2, "heart-beat:10000,0\n");
    // Pings answered by the transport, without waking the room, count as well.
    room.connect(3, "heart-beat:10000,10000\n");
    for _ in 0..4 {
        room.advance(9_000);
        room.raw(2, b"\n");
        room.ping(3);
    }
    assert!(!room.is_open(1));
    assert_eq!(error_message(&room.take(1)), Some("heart-beat timeout"));
    assert!(room.is_open(2));
    assert!(room.is_open(3));
    // The transport's replies to its pings were our heart-beats: the room sent it nothing.
    let received = room.take_received(3);
    assert_eq!(received.len(), 4, "{received:?}");
    assert!(received.iter().all(|r| r.frame.is_none()), "{received:?}");
}
}

room_test! {
fn a_silent_client_is_closed_within_its_grace_period_when_liveness_is_on_time() {
    let mut room = SimulatedRoom::with_settings(on_time_liveness(Config::default()));
    room.connect(1, "heart-beat:10000,0\n");
    room.advance(19_999);
    assert!(room.is_open(1));
    room.advance(1);
    assert!(!room.is_open(1), "closed at twice its interval");
}
}

room_test! {
fn by_default_silent_clients_are_found_lazily() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "heart-beat:10000,0\n");
    room.advance(200_000);
    assert!(room.is_open(1), "not looked for before the lazy check");
    assert_eq!(
        room.next_alarm(),
        Some(1_000 + Settings::default().liveness_check_ms),
        "one sweep per check interval, counted from the room's creation"
    );
    room.advance(100_000);
    assert!(!room.is_open(1));
    assert_eq!(error_message(&room.take(1)), Some("heart-beat timeout"));
}
}

room_test! {
fn sockets_that_never_connect_time_out() {
    let mut room = SimulatedRoom::new();
    room.open(1);
    let opened = room.now;
    room.advance(FLUSH_DEADLINE_MS); // the connection id's ceiling comes down
    assert_eq!(room.next_alarm(), Some(opened + 30_000));
    room.advance(30_000 - FLUSH_DEADLINE_MS);
    assert_eq!(error_message(&room.take(1)), Some("CONNECT timeout"));
    assert!(!room.is_open(1));
    assert_eq!(room.next_alarm(), None);
}
}

room_test! {
fn the_connect_timeout_runs_from_the_open_and_survives_eviction() {
    let mut room = SimulatedRoom::new();
    room.open(1);
    room.advance(10_000);
    room.hibernate();
    room.open(2);
    room.advance(10_000);
    room.hibernate();
    room.advance(9_999);
    assert!(room.is_open(1));
    room.advance(1);
    assert!(!room.is_open(1), "30 s after it opened, whatever woke the room since");
    assert!(room.is_open(2));
    room.advance(10_000);
    assert!(!room.is_open(2));
}
}

room_test! {
fn liveness_deadlines_survive_eviction() {
    let mut room = SimulatedRoom::with_settings(on_time_liveness(Config::default()));
    room.connect(1, "heart-beat:10000,0\n");
    room.connect(2, "heart-beat:10000,0\n");
    room.subscribe(2, "s", "/topic/x");
    for _ in 0..4 {
        room.advance(6_000);
        room.hibernate();
        room.publish(2, "/topic/x", "still here");
    }
    assert!(!room.is_open(1), "the silent client's clock did not restart on each wake");
    assert!(room.is_open(2));
}
}

room_test! {
fn echoed_pings_stand_in_for_server_heart_beats() {
    // The host runs every room as production does: the auto-response echoes lone heart-beats.
    let mut room = SimulatedRoom::new();
    // stomp.js defaults: pings every 10 s and wants to hear every 10 s; the echo suffices.
    room.connect(1, "heart-beat:10000,10000\n");
    // Wants to hear every 10 s but pings only every 20 s: the echo is not enough.
    room.connect(2, "heart-beat:20000,10000\n");
    // Wants heart-beats and never pings.
    room.connect(3, "heart-beat:0,10000\n");
    let connected = room.now;
    room.advance(FLUSH_DEADLINE_MS); // the connections' deferred writes are committed
    assert_eq!(room.next_alarm(), Some(connected + 10_000));
    for _ in 0..3 {
        room.advance(10_000);
        room.ping(1);
        room.raw(2, b"\n");
    }
    let received = room.take_received(1);
    assert_eq!(received.len(), 3, "the echoes were its heart-beats: {received:?}");
    assert!(received.iter().all(|r| r.frame.is_none()), "{received:?}");
    let pinging = room.conn(1);
    let beat_from_room = |call: &SocketCall| {
        matches!(call, SocketCall::Send { conn, bytes, .. } if *conn == pinging && bytes == b"\n")
    };
    assert!(
        !room.take_log().iter().any(beat_from_room),
        "the room itself sent it no heart-beat"
    );
    assert_eq!(room.take_received(2).len(), 3);
    assert_eq!(room.take_received(3).len(), 3);
    room.close(2);
    room.close(3);
    assert_eq!(
        room.next_alarm(),
        Some(1_000 + Settings::default().liveness_check_ms),
        "an idle room of pinging clients sets no timer but the lazy liveness check"
    );
}
}

// ---- persistence -----------------------------------------------------------------------

room_test! {
fn routing_is_rebuilt_from_sessions_after_hibernation() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "login:alice\n");
    room.connect(2, "");
    room.subscribe(1, "t", "/topic/x");
    room.subscribe(2, "t", "/topic/x");
    room.subscribe(2, "u", "/user/inbox");
    room.frame(
        1,
        "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client",
        "",
    );
    room.publish(2, "/queue/work", "in flight");
    let in_flight = room.take(1);
    room.hibernate();
    room.publish(1, "/topic/x", "after wake");
    room.publish(1, "/user/s2/inbox", "private");
    assert_eq!(room.bodies(2), ["after wake", "private"]);
    assert_eq!(room.bodies(1), ["after wake"]);
    // The in-flight queue message is still held by its consumer and can be acknowledged.
    room.frame(1, &format!("ACK\nid:{}", ack_id(&in_flight[0])), "");
    assert!(room.store.queued_ids().is_empty());
}
}

room_test! {
fn a_worst_case_session_fits_in_an_attachment() {
    let limits = Limits::default();
    let long = |c: char, n: usize| std::iter::repeat_n(c, n).collect::<String>();
    // The largest id the room can give a connection or a message: its counters are stored
    // as JavaScript numbers, exact up to 2^53 (see sql_storage's
    // integers_are_exact_up_to_2_to_the_53), and 2^53 ids take centuries to hand out.
    let max_id: u64 = (1 << 53) - 1;
    let session = Session {
        conn: max_id,
        phase: Phase::Connected,
        version: Version::V1_2,
        login: Some(long('l', limits.max_id_bytes)),
        verified: true,
        grants: Grants {
            subscribe: Some(vec![long('s', MAX_GRANT_BYTES / 2)]),
            publish: Some(vec![long('p', MAX_GRANT_BYTES / 2)]),
        },
        expires_ms: Some(u64::MAX),
        room: long('r', stomp_rooms::room_name::MAX_LEN),
        address: Some(long('a', 45)),
        sockjs: true,
        throttle: Throttle {
            messages_us: u64::MAX,
            frames_us: u64::MAX,
            bytes_us: u64::MAX,
        },
        heart_beat: HeartBeat {
            send_ms: u32::MAX,
            receive_ms: u32::MAX,
        },
        subscriptions: (0..limits.max_subscriptions)
            .map(|n| Subscription {
                id: long('i', limits.max_id_bytes),
                handle: u32::MAX - n as u32,
                destination: long('d', limits.max_destination_bytes),
                ack: AckMode::ClientIndividual,
                echo: false,
                replay_incomplete: true,
            })
            .collect(),
        next_handle: u32::MAX,
        unacked: (0..limits.max_unacked)
            .map(|_| Unacked(max_id, u32::MAX, true))
            .collect(),
        transactions: (0..limits.max_transactions)
            .map(|_| long('t', limits.max_id_bytes))
            .collect(),
        opened_ms: u64::MAX,
        heard_ms: u64::MAX,
        beat_due_ms: Some(u64::MAX),
    };
    let json = session.to_json();
    assert!(
        json.len() <= ATTACHMENT_LIMIT,
        "worst-case session is {} bytes",
        json.len()
    );
    assert_eq!(Session::from_json(&json).unwrap(), session);
}
}

room_test! {
fn a_partly_arrived_frame_survives_eviction() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/topic/x");
    room.raw(1, b"SEND\ndestination:/topic/x\n\nhal");
    assert_eq!(room.store.partials(), [room.conn(1)], "stored while incomplete");
    room.hibernate();
    room.raw(1, b"f\0");
    assert_eq!(room.bodies(2), ["half"]);
    assert!(room.store.partials().is_empty(), "forgotten once complete");
}
}

/// How many connections each send of the log went to, in order.
fn sends_by_size(log: Vec<SocketCall>) -> Vec<usize> {
    log.iter()
        .filter_map(|call| match call {
            SocketCall::SendMany { conns, .. } => Some(conns.len()),
            SocketCall::Send { .. } => Some(1),
            _ => None,
        })
        .collect()
}

room_test! {
fn identical_frames_are_encoded_once_for_many_subscribers() {
    let mut room = SimulatedRoom::new();
    for conn in 1..=50 {
        room.connect(conn, "");
        room.subscribe(conn, "sub-0", "/topic/chat");
    }
    room.connect(51, "");
    room.subscribe(51, "other-id", "/topic/chat");
    room.take_log();
    room.publish(1, "/topic/chat", "hello");
    let fan_out: Vec<usize> = sends_by_size(room.take_log()).into_iter().take(2).collect();
    assert_eq!(
        fan_out,
        [50, 1],
        "one shared frame for the 50 'sub-0' subscribers, one for the other"
    );
    for conn in 1..=51 {
        assert_eq!(room.bodies(conn), ["hello"], "connection {conn}");
    }
}
}

room_test! {
fn a_fan_out_over_many_subscription_ids_gives_each_its_own_frame() {
    // 12 subscription ids (more than a fan-out looks through one by one), 3 subscribers each,
    // interleaved: 12 frames, each shared by its 3, each naming its own subscription.
    let mut room = SimulatedRoom::new();
    let id_of = |conn: u64| format!("s{}", conn % 12);
    for conn in 1..=36 {
        room.connect(conn, "");
        room.subscribe(conn, &id_of(conn), "/topic/chat");
    }
    room.take_log();
    room.publish(1, "/topic/chat", "hello");
    let shared = sends_by_size(room.take_log());
    assert_eq!(shared, vec![3; 12], "one frame per subscription id, each to its 3");
    for conn in 1..=36 {
        let messages: Vec<Frame> = room
            .take(conn)
            .into_iter()
            .filter(|frame| frame.command == Command::Message)
            .collect();
        assert_eq!(messages.len(), 1, "connection {conn}");
        assert_eq!(
            messages[0].header("subscription"),
            Some(id_of(conn).as_str()),
            "connection {conn}"
        );
    }
}
}

// ---- eviction and storage ----------------------------------------------------------------

room_test! {
fn history_stays_bounded_whatever_the_evictions() {
    let mut room = SimulatedRoom::with_settings(Settings {
        broker: Config {
            history_limit: 10,
            publish_rate: PublishRate::UNLIMITED,
            ..Config::default()
        },
        ..Settings::default()
    });
    room.connect(1, "");
    for burst in 0..7 {
        for n in 0..30 {
            room.publish(1, "/topic/chat", &format!("{burst}.{n}"));
        }
        room.hibernate();
        let stored = room.history("/topic/chat").len();
        assert!(
            stored < 10 + TRIM_EVERY as usize,
            "{stored} stored after burst {burst}"
        );
    }
    room.connect(2, "");
    room.frame(
        2,
        "SUBSCRIBE\nid:s\ndestination:/topic/chat\nreplay-after:0",
        "",
    );
    let replayed = room.bodies(2);
    assert_eq!(replayed.len(), 10, "replay gives at most history_limit");
    assert_eq!(replayed.last().map(String::as_str), Some("6.29"));
    assert_eq!(replayed.first().map(String::as_str), Some("6.20"));
}
}

room_test! {
fn a_failed_write_refuses_the_event_and_keeps_everything_accepted_before() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.connect(2, "");
    room.connect(3, "");
    room.subscribe(3, "s", "/topic/chat");
    room.frame(1, "SEND\ndestination:/topic/chat\nreceipt:a", "accepted");
    assert_eq!(room.take(1)[0].header("receipt-id"), Some("a"));
    room.store.fail_commits = 1;
    room.frame(1, "SEND\ndestination:/topic/chat\nreceipt:b", "refused");
    let frames = room.take(1);
    assert_eq!(error_message(&frames), Some("storage failure"));
    assert!(
        frames.iter().all(|f| f.command != Command::Receipt),
        "no RECEIPT for what was not stored"
    );
    assert_eq!(room.closed(1).unwrap().0, 1011);
    assert_eq!(room.failures.len(), 1);
    // The live subscriber may have seen the refused message; the room keeps serving it.
    let seen = room.take(3);
    room.frame(2, "SEND\ndestination:/topic/chat\nreceipt:c", "after");
    let after = room.take(3);
    assert_eq!(after.len(), 1);
    let id = |f: &Frame| f.header("message-id").unwrap().parse::<u64>().unwrap();
    assert!(
        seen.iter().all(|f| id(f) < id(&after[0])),
        "message ids are never given out twice"
    );
    let stored: Vec<Vec<u8>> = room
        .history("/topic/chat")
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(stored, [b"accepted".to_vec(), b"after".to_vec()]);
}
}

room_test! {
fn queue_redelivery_state_survives_eviction() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.connect(2, "");
    room.connect(3, "");
    for conn in [1, 2] {
        room.frame(
            conn,
            "SUBSCRIBE\nid:q\ndestination:/queue/work\nack:client-individual",
            "",
        );
    }
    room.publish(3, "/queue/work", "job");
    let first = room.take(1);
    assert_eq!(first.len(), 1, "round-robin starts with the first consumer");
    room.hibernate();
    room.frame(1, &format!("NACK\nid:{}", ack_id(&first[0])), "");
    room.hibernate();
    let again = room.take(2);
    assert_eq!(again.len(), 1, "redelivered to the other consumer");
    assert_eq!(again[0].header("redelivered"), Some("true"));
    // The round-robin position is kept too: the next job goes to consumer 1.
    room.frame(2, &format!("ACK\nid:{}", ack_id(&again[0])), "");
    room.publish(3, "/queue/work", "next");
    room.hibernate();
    room.publish(3, "/queue/work", "after that");
    assert_eq!(room.bodies(1), ["next"]);
    assert_eq!(room.bodies(2), ["after that"]);
}
}

/// An optimisation of a room kept in memory (a woken room does not know the alarm it set, so
/// it lets a stale one fire once, harmlessly).
#[test]
fn an_alarm_no_longer_needed_is_deleted() {
    support::with_eviction(support::Eviction::Never, || {
        let mut room = SimulatedRoom::new();
        room.open(1);
        let opened = room.now;
        // The connection id's ceiling comes down once the room is quiet.
        assert_eq!(room.alarm, Some(opened + FLUSH_DEADLINE_MS));
        room.advance(FLUSH_DEADLINE_MS);
        assert_eq!(room.alarm, Some(opened + 30_000), "the CONNECT timeout");
        room.raw(1, b"CONNECT\naccept-version:1.2\n\n\0");
        assert_eq!(room.alarm, None, "nothing is due any more");
    });
}

/// Group commit, in a room kept in memory (an evicted room has committed everything first).
#[test]
fn history_writes_no_receipt_waits_for_share_a_commit() {
    support::with_eviction(support::Eviction::Never, || {
        // A batch's worth of messages at once, and history holding all of them.
        let mut settings = Settings::default();
        settings.broker.publish_rate = PublishRate::UNLIMITED;
        settings.broker.history_limit = 1_000;
        let mut room = SimulatedRoom::with_settings(settings);
        room.connect(1, "");
        room.connect(2, "");
        room.subscribe(2, "s", "/topic/chat");
        room.connect(3, "");
        room.advance(FLUSH_DEADLINE_MS); // the connections' own deferred writes
                                         // The first message after a quiet spell raises the id ceiling in a commit of its
                                         // own (ids are never given twice, crash or not); the batch shares one after it.
        room.publish(1, "/topic/chat", "m0");
        room.take(2);
        let commits = room.store.commits.len();
        for n in 1..FLUSH_BATCH {
            room.publish(1, "/topic/chat", &format!("m{n}"));
        }
        assert_eq!(room.bodies(2).len(), FLUSH_BATCH - 1, "delivered at once");
        assert_eq!(room.store.commits.len(), commits, "nothing committed yet");
        // A late subscriber's replay includes what is not yet stored.
        room.frame(
            3,
            "SUBSCRIBE\nid:r\ndestination:/topic/chat\nreplay-last:2",
            "",
        );
        assert_eq!(
            room.bodies(3),
            [
                format!("m{}", FLUSH_BATCH - 2),
                format!("m{}", FLUSH_BATCH - 1)
            ]
        );
        room.publish(1, "/topic/chat", "the last of a batch");
        assert_eq!(
            room.store.commits.len(),
            commits + 1,
            "one commit for the batch"
        );
        assert_eq!(room.history("/topic/chat").len(), 1 + FLUSH_BATCH);

        room.publish(1, "/topic/chat", "alone");
        assert_eq!(
            room.alarm,
            Some(room.now + FLUSH_DEADLINE_MS),
            "stored by the alarm at the latest"
        );
        room.advance(FLUSH_DELAY_MS);
        room.subscribe(2, "other", "/topic/other");
        assert_eq!(
            room.history("/topic/chat").len(),
            1 + FLUSH_BATCH + 1,
            "or by the first event after the delay"
        );
        room.publish(1, "/topic/chat", "quiet after");
        room.advance(FLUSH_DEADLINE_MS);
        assert_eq!(room.history("/topic/chat").len(), 1 + FLUSH_BATCH + 2);

        room.publish(1, "/topic/chat", "pending");
        room.frame(
            1,
            "SEND\ndestination:/topic/chat\nreceipt:r",
            "with a receipt",
        );
        assert_eq!(room.take(1)[0].header("receipt-id"), Some("r"));
        assert_eq!(
            room.history("/topic/chat").len(),
            1 + FLUSH_BATCH + 4,
            "a RECEIPT commits what waited before it too"
        );
    });
}

/// In a room kept in memory (an evicted room has committed everything first).
#[test]
fn deferred_history_is_committed_once_its_rows_reach_flush_bytes() {
    support::with_eviction(support::Eviction::Never, || {
        let mut room = SimulatedRoom::new();
        room.connect(1, "");
        room.connect(2, "");
        room.subscribe(2, "s", "/topic/chat");
        room.advance(FLUSH_DEADLINE_MS);
        room.publish(1, "/topic/chat", "first");
        let commits = room.store.commits.len();
        // Four messages whose rows add up to past FLUSH_BYTES: far fewer than FLUSH_BATCH.
        let body = "x".repeat(FLUSH_BYTES as usize / 4 + 1);
        for _ in 0..3 {
            room.publish(1, "/topic/chat", &body);
        }
        assert_eq!(room.store.commits.len(), commits, "three wait for company");
        room.publish(1, "/topic/chat", &body);
        assert_eq!(
            room.store.commits.len(),
            commits + 1,
            "the fourth passes FLUSH_BYTES"
        );
        assert_eq!(room.history("/topic/chat").len(), 5);
    });
}

// ---- Spring-style destinations ---------------------------------------------------------

fn spring_room() -> SimulatedRoom {
    SimulatedRoom::with_config(Config {
        destinations: stomp_rooms::room::destinations::Prefixes {
            topics: vec!["/sub/".into()],
            application: [
                ("/pub/".to_owned(), "/sub/".to_owned()),
                (
                    "/pub/chat/message".to_owned(),
                    "/sub/chat/room/{roomId}".to_owned(),
                ),
            ]
            .into(),
        },
        ..Config::default()
    })
}

room_test! {
fn a_send_to_a_body_routed_destination_reaches_the_room_its_body_names() {
    let mut room = spring_room();
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/sub/chat/room/7");
    let talk = r#"{"type":"TALK","roomId":"7","sender":"ada","message":"hi"}"#;
    room.publish(1, "/pub/chat/message", talk);
    let frames = room.take(2);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].header("destination"), Some("/sub/chat/room/7"));
    assert_eq!(frames[0].body, talk.as_bytes());
    // A body that names no room is refused, saying why; nothing is delivered.
    room.publish(1, "/pub/chat/message", r#"{"type":"TALK"}"#);
    let refused = room.take(1);
    assert_eq!(error_message(&refused), Some("unroutable message"));
    assert!(room.take(2).is_empty());
}
}

room_test! {
fn a_send_to_an_application_prefix_reaches_the_mapped_topic_and_its_history() {
    let mut room = spring_room();
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/sub/chat/room/7");
    room.publish(1, "/pub/chat/room/7", "hello");
    room.publish(1, "/sub/chat/room/7", "straight to the broker prefix");
    let frames = room.take(2);
    assert_eq!(frames.len(), 2);
    assert!(frames.iter().all(|f| f.header("destination") == Some("/sub/chat/room/7")));
    assert_eq!(frames[0].body, b"hello");
    room.connect(3, "");
    room.frame(3, "SUBSCRIBE\nid:r\ndestination:/sub/chat/room/7\nreplay-last:5", "");
    assert_eq!(room.bodies(3), ["hello", "straight to the broker prefix"], "kept as topic history");
}
}

room_test! {
fn without_the_setting_spring_prefixes_are_unknown() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.frame(1, "SUBSCRIBE\nid:s\ndestination:/sub/chat", "");
    let frames = room.take(1);
    assert_eq!(error_message(&frames), Some("unknown destination"));
}
}

room_test! {
fn stats_count_the_connections_open_now() {
    let mut room = SimulatedRoom::new();
    for conn in 1..=3 {
        room.connect(conn, "");
    }
    assert_eq!(room.stats()["connections"], 3);
    room.close(2);
    assert_eq!(room.stats()["connections"], 2);
    room.connect(4, "");
    assert_eq!(room.stats()["connections"], 3);
}
}
