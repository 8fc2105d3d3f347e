//! The room broker, rule by rule, driven through the simulated room in `support`.

mod support;

use std::collections::HashMap;

use stomp_rooms::stomp::{
    AckMode, Broker, Command, Config, Credentials, Effect, Frame, HeartBeat, Limits, Phase,
    Session, Subscription, Unacked, Version,
};
use support::{Room, ATTACHMENT_LIMIT};

fn error_message(frames: &[Frame]) -> Option<&str> {
    frames
        .iter()
        .find(|f| f.command == Command::Error)
        .and_then(|f| f.header("message"))
}

// ---- sessions --------------------------------------------------------------------------

#[test]
fn connect_negotiates_each_version() {
    let mut room = Room::new();
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
        assert_eq!(connected.header("heart-beat"), Some("10000,10000"));
    }
}

#[test]
fn stomp_command_connects_too() {
    let mut room = Room::new();
    room.open(1);
    room.raw(1, b"STOMP\naccept-version:1.2\nhost:room\n\n\0");
    assert_eq!(room.take(1)[0].command, Command::Connected);
}

#[test]
fn no_common_version_is_an_error_naming_ours() {
    let mut room = Room::new();
    let error = room.connect_with(1, "accept-version:2.0,3.0");
    assert_eq!(error.command, Command::Error);
    assert_eq!(error.header("message"), Some("unsupported version"));
    assert_eq!(error.header("version"), Some("1.0,1.1,1.2"));
    assert!(!room.is_open(1));
    assert_eq!(room.closed[&1].0, 1002);
}

#[test]
fn heart_beats_follow_the_max_rule() {
    let mut room = Room::new();
    room.connect(1, "heart-beat:1000,30000\n");
    assert_eq!(
        room.broker.session(1).unwrap().heart_beat,
        HeartBeat {
            send_ms: 30_000,
            receive_ms: 10_000
        }
    );
    room.connect(2, "heart-beat:0,0\n");
    assert_eq!(
        room.broker.session(2).unwrap().heart_beat,
        HeartBeat::default()
    );
    // STOMP 1.0 has no heart-beats.
    room.connect_with(3, "heart-beat:1000,1000");
    assert_eq!(
        room.broker.session(3).unwrap().heart_beat,
        HeartBeat::default()
    );
    let error = room.connect(4, "heart-beat:soon\n");
    assert_eq!(error.header("message"), Some("invalid heart-beat"));
}

#[test]
fn authentication_hook_decides() {
    let users = HashMap::from([("alice".to_owned(), "secret".to_owned())]);
    let broker = Broker::new(Config::default()).with_authenticator(Box::new(Credentials { users }));
    let mut room = Room::with_broker(broker, Config::default());
    assert_eq!(
        room.connect(1, "login:alice\npasscode:secret\n").command,
        Command::Connected
    );
    assert_eq!(
        room.broker.session(1).unwrap().login.as_deref(),
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

#[test]
fn frames_before_connect_are_refused() {
    let mut room = Room::new();
    room.open(1);
    room.frame(1, "SEND\ndestination:/topic/a\nreceipt:r1", "x");
    let frames = room.take(1);
    assert_eq!(error_message(&frames), Some("not connected"));
    assert_eq!(frames[0].header("receipt-id"), Some("r1"));
    assert!(!room.is_open(1));
}

#[test]
fn a_second_connect_is_refused() {
    let mut room = Room::new();
    room.connect(1, "");
    room.raw(1, b"CONNECT\naccept-version:1.2\n\n\0");
    assert_eq!(error_message(&room.take(1)), Some("already connected"));
}

#[test]
fn server_commands_from_a_client_are_refused() {
    let mut room = Room::new();
    room.connect(1, "");
    room.frame(1, "MESSAGE\ndestination:/topic/a", "");
    assert_eq!(error_message(&room.take(1)), Some("unexpected command"));
}

// ---- publish and subscribe ------------------------------------------------------------

#[test]
fn topic_messages_reach_every_subscriber_exactly_once() {
    let mut room = Room::new();
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

#[test]
fn message_headers() {
    let mut room = Room::new();
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

#[test]
fn message_ids_increase_across_destinations_and_restarts() {
    let mut room = Room::new();
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

#[test]
fn send_without_destination_or_to_an_unknown_kind_is_an_error() {
    let mut room = Room::new();
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

#[test]
fn subscription_ids_are_unique_per_session_and_limited() {
    let config = Config {
        limits: Limits {
            max_subscriptions: 2,
            ..Limits::default()
        },
        ..Config::default()
    };
    let mut room = Room::with_config(config);
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

#[test]
fn unsubscribe_stops_delivery() {
    let mut room = Room::new();
    room.connect(1, "");
    room.subscribe(1, "s", "/topic/x");
    room.publish(1, "/topic/x", "before");
    room.frame(1, "UNSUBSCRIBE\nid:s", "");
    room.publish(1, "/topic/x", "after");
    assert_eq!(room.bodies(1), ["before"]);
}

#[test]
fn stomp_1_0_subscriptions_without_id_use_the_destination() {
    let mut room = Room::new();
    room.connect_with(1, "host:room");
    room.frame(1, "SUBSCRIBE\ndestination:/topic/x", "");
    room.publish(1, "/topic/x", "hi");
    let frames = room.take(1);
    assert_eq!(frames[0].header("subscription"), Some("/topic/x"));
    room.frame(1, "UNSUBSCRIBE\ndestination:/topic/x", "");
    room.publish(1, "/topic/x", "gone");
    assert!(room.take(1).is_empty());
}

#[test]
fn headers_are_escaped_for_each_receivers_version() {
    let mut room = Room::new();
    room.connect_with(10, "accept-version:1.0");
    room.connect_with(11, "accept-version:1.1");
    room.connect_with(12, "accept-version:1.2");
    for conn in [10, 11, 12] {
        room.subscribe(conn, "s", "/topic/x");
    }
    room.frame(12, "SEND\ndestination:/topic/x\nnote:a\\cb\\nc\\rd", "");
    let value = |room: &mut Room, conn| room.take(conn)[0].header("note").unwrap().to_owned();
    assert_eq!(value(&mut room, 12), "a:b\nc\rd");
    assert_eq!(value(&mut room, 11), "a:b\nc d");
    assert_eq!(value(&mut room, 10), "a:b c d");
}

#[test]
fn binary_in_binary_out_text_stays_text() {
    let mut room = Room::new();
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

#[test]
fn bodies_are_only_allowed_on_send() {
    let mut room = Room::new();
    room.connect(1, "");
    room.frame(1, "SUBSCRIBE\nid:1\ndestination:/topic/x", "surprise");
    assert_eq!(error_message(&room.take(1)), Some("unexpected body"));
}

// ---- queues and private destinations ------------------------------------------------------

#[test]
fn queue_messages_go_round_robin_to_one_consumer_each() {
    let mut room = Room::new();
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
        room.queue_store.is_empty(),
        "auto-ack deliveries are not kept"
    );
}

#[test]
fn queue_messages_wait_for_a_consumer() {
    let mut room = Room::new();
    room.connect(1, "");
    room.publish(1, "/queue/later", "a");
    room.publish(1, "/queue/later", "b");
    assert_eq!(room.queue_store.len(), 2);
    room.hibernate();
    room.connect(2, "");
    room.subscribe(2, "q", "/queue/later");
    assert_eq!(room.bodies(2), ["a", "b"]);
    assert!(room.queue_store.is_empty());
}

#[test]
fn user_destinations_are_private() {
    let mut room = Room::new();
    room.connect(1, "login:alice\n");
    room.connect(2, "login:bob\n");
    room.connect(3, "login:bob\n");
    room.connect(4, "");
    for conn in 1..=4 {
        room.subscribe(conn, "inbox", "/user/inbox");
    }
    room.publish(1, "/user/bob/inbox", "for bob");
    room.publish(2, "/user/s4/inbox", "for the anonymous one");
    room.publish(2, "/user/alice/elsewhere", "nobody listens");
    assert!(room.bodies(1).is_empty());
    for conn in [2, 3] {
        let frames = room.take(conn);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].header("destination"), Some("/user/inbox"));
        assert_eq!(frames[0].body, b"for bob");
    }
    assert_eq!(room.bodies(4), ["for the anonymous one"]);
}

// ---- acknowledgements -----------------------------------------------------------------

fn ack_id(frame: &Frame) -> String {
    frame.header("ack").expect("ack header").to_owned()
}

#[test]
fn client_individual_acks_one_message() {
    let mut room = Room::new();
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
    assert_eq!(room.queue_store.len(), 3);
    room.frame(2, &format!("ACK\nid:{}", ack_id(&frames[1])), "");
    assert_eq!(room.broker.session(2).unwrap().unacked.len(), 2);
    assert_eq!(room.queue_store.len(), 2);
    assert!(!room.queue_store.values().any(|m| m.body == b"b"));
}

#[test]
fn client_acks_are_cumulative() {
    let mut room = Room::new();
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
    let left: Vec<&[u8]> = room
        .queue_store
        .values()
        .map(|m| m.body.as_slice())
        .collect();
    assert_eq!(left, [b"c".as_slice()]);
}

#[test]
fn nack_redelivers_a_queue_message_to_another_consumer() {
    let mut room = Room::new();
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
    assert_eq!(room.queue_store.len(), 1, "still stored until acknowledged");
}

#[test]
fn a_lone_consumer_gets_its_nacked_message_again() {
    let mut room = Room::new();
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

#[test]
fn disconnect_requeues_unacked_queue_messages_but_not_topic_ones() {
    let mut room = Room::new();
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

#[test]
fn unacked_queue_messages_are_limited_like_a_prefetch() {
    let config = Config {
        limits: Limits {
            max_unacked: 2,
            ..Limits::default()
        },
        ..Config::default()
    };
    let mut room = Room::with_config(config);
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

#[test]
fn stomp_1_1_acks_name_message_id_and_subscription() {
    let mut room = Room::new();
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
    assert!(room.queue_store.is_empty());
}

#[test]
fn malformed_ack_ids_are_errors_and_unknown_ones_are_ignored() {
    let mut room = Room::new();
    room.connect(1, "");
    room.frame(1, "ACK\nid:999-0\nreceipt:r", "");
    assert_eq!(room.take(1)[0].command, Command::Receipt);
    room.frame(1, "ACK\nid:garbage", "");
    assert_eq!(error_message(&room.take(1)), Some("invalid ack id"));
}

#[test]
fn a_bare_message_id_is_accepted_as_a_stomp_1_2_ack_id() {
    let mut room = Room::new();
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
    assert!(room.queue_store.is_empty());
}

// ---- transactions ---------------------------------------------------------------------

#[test]
fn committed_sends_are_delivered_and_aborted_ones_are_not() {
    let mut room = Room::new();
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
    assert_eq!(room.staged.len(), 1);
    room.frame(1, "COMMIT\ntransaction:t1", "");
    assert_eq!(room.bodies(2), ["first", "second"]);
    assert!(room.staged.is_empty());

    room.frame(1, "BEGIN\ntransaction:t2", "");
    room.frame(1, "SEND\ndestination:/topic/x\ntransaction:t2", "never");
    room.frame(1, "ABORT\ntransaction:t2", "");
    assert!(room.take(2).is_empty());
    assert!(room.staged.is_empty());
}

#[test]
fn acks_in_a_transaction_take_effect_on_commit() {
    let mut room = Room::new();
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
    assert_eq!(room.queue_store.len(), 1);
    room.frame(1, "COMMIT\ntransaction:t", "");
    assert!(room.queue_store.is_empty());
}

#[test]
fn transaction_errors() {
    let mut room = Room::new();
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

#[test]
fn open_transactions_abort_on_disconnect_and_survive_hibernation() {
    let mut room = Room::new();
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
    assert!(room.staged.is_empty());
    assert!(room.take(2).is_empty());
}

// ---- receipts, errors, disconnect ------------------------------------------------------

#[test]
fn every_frame_with_a_receipt_gets_one() {
    let mut room = Room::new();
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
        room.closed[&1].0, 1000,
        "DISCONNECT closes normally after its receipt"
    );
}

#[test]
fn the_receipt_for_a_send_follows_its_storage() {
    let mut room = Room::new();
    room.connect(1, "");
    room.log.clear();
    room.frame(1, "SEND\ndestination:/topic/x\nreceipt:stored", "x");
    let archive = room
        .log
        .iter()
        .position(|e| matches!(e, Effect::Archive(_)))
        .unwrap();
    let receipt = room
        .log
        .iter()
        .position(|e| matches!(e, Effect::Send { conn: 1, .. }))
        .unwrap();
    assert!(archive < receipt);
}

#[test]
fn an_error_closes_only_the_offending_connection() {
    let mut room = Room::new();
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

#[test]
fn errors_carry_the_receipt_id_and_an_explanation() {
    let mut room = Room::new();
    room.connect(1, "");
    room.frame(1, "SEND\nreceipt:abc", "");
    let frames = room.take(1);
    let error = frames.iter().find(|f| f.command == Command::Error).unwrap();
    assert_eq!(error.header("receipt-id"), Some("abc"));
    assert_eq!(error.header("content-type"), Some("text/plain"));
    assert!(String::from_utf8_lossy(&error.body).contains("destination"));
}

#[test]
fn oversized_frames_are_refused_with_a_clear_error() {
    let config = Config {
        limits: Limits {
            max_frame_bytes: 1024,
            max_body_bytes: 1024,
            ..Limits::default()
        },
        ..Config::default()
    };
    let mut room = Room::with_config(config);
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

// ---- presence --------------------------------------------------------------------------

#[test]
fn presence_lists_members_then_joins_and_leaves() {
    let mut room = Room::new();
    room.connect(1, "login:alice\n");
    room.connect(2, "");
    room.subscribe(1, "p", "/presence");
    let snapshot: serde_json::Value = serde_json::from_slice(&room.take(1)[0].body).unwrap();
    assert_eq!(
        snapshot,
        serde_json::json!({"type": "members", "members": [
            {"session": "s1", "login": "alice"}, {"session": "s2", "login": null}
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
            serde_json::json!({"type": "join", "member": {"session": "s3", "login": "carol"}}),
            serde_json::json!({"type": "leave", "member": {"session": "s2", "login": null}}),
        ]
    );
}

// ---- history replay --------------------------------------------------------------------

#[test]
fn replay_comes_before_live_messages_without_gaps_or_duplicates() {
    let mut room = Room::new();
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

// ---- heart-beats and timeouts ----------------------------------------------------------

#[test]
fn server_heart_beats_go_to_clients_that_want_them() {
    let mut room = Room::new();
    room.connect(1, "heart-beat:0,10000\n");
    room.advance(9_999);
    assert!(room.take_received(1).is_empty());
    room.advance(1);
    let received = room.take_received(1);
    assert_eq!(received.len(), 1);
    assert!(received[0].frame.is_none(), "a heart-beat is a bare EOL");
    assert_eq!(room.broker.next_deadline(), Some(room.now + 10_000));
}

#[test]
fn silent_clients_are_closed_and_pinging_ones_are_kept() {
    let mut room = Room::new();
    room.connect(1, "heart-beat:10000,0\n");
    room.connect(2, "heart-beat:10000,0\n");
    for _ in 0..4 {
        room.advance(9_000);
        room.raw(2, b"\n");
    }
    assert!(!room.is_open(1));
    assert_eq!(error_message(&room.take(1)), Some("heart-beat timeout"));
    assert!(room.is_open(2));
    // Pings answered by the auto-response count as well.
    room.connect(3, "heart-beat:10000,10000\n");
    for _ in 0..4 {
        room.advance(9_000);
        let now = room.now;
        room.broker.note_heart_beat(3, now);
    }
    assert!(room.is_open(3));
    assert!(
        room.take_received(3).is_empty(),
        "the auto-response replies were our heart-beats"
    );
}

#[test]
fn sockets_that_never_connect_time_out() {
    let mut room = Room::new();
    room.open(1);
    assert_eq!(room.broker.next_deadline(), Some(room.now + 30_000));
    room.advance(30_000);
    assert_eq!(error_message(&room.take(1)), Some("CONNECT timeout"));
    assert!(!room.is_open(1));
    assert_eq!(room.broker.next_deadline(), None);
}

// ---- persistence -----------------------------------------------------------------------

#[test]
fn routing_is_rebuilt_from_sessions_after_hibernation() {
    let mut room = Room::new();
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
    assert!(room.queue_store.is_empty());
}

#[test]
fn a_worst_case_session_fits_in_an_attachment() {
    let limits = Limits::default();
    let long = |c: char, n: usize| std::iter::repeat_n(c, n).collect::<String>();
    let session = Session {
        conn: u64::MAX,
        phase: Phase::Connected,
        version: Version::V1_2,
        login: Some(long('l', limits.max_id_bytes)),
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
            })
            .collect(),
        next_handle: u32::MAX,
        unacked: (0..limits.max_unacked)
            .map(|_| Unacked(u64::MAX, u32::MAX, true))
            .collect(),
        transactions: (0..limits.max_transactions)
            .map(|_| long('t', limits.max_id_bytes))
            .collect(),
    };
    let json = session.to_json();
    assert!(
        json.len() <= ATTACHMENT_LIMIT,
        "worst-case session is {} bytes",
        json.len()
    );
    assert_eq!(Session::from_json(&json).unwrap(), session);
}

#[test]
fn deadlines_are_split_by_kind_and_partial_frames_can_be_restored() {
    let mut room = Room::new();
    room.connect(1, "heart-beat:10000,0\n");
    room.connect(2, "heart-beat:0,5000\n");
    let deadlines = room.broker.deadlines();
    assert_eq!(deadlines.send, Some(room.now + 10_000));
    assert_eq!(deadlines.liveness, Some(room.now + 20_000));

    room.subscribe(2, "s", "/topic/x");
    room.raw(1, b"SEND\ndestination:/topic/x\n\nhal");
    assert_eq!(
        room.broker.partial_frame(1),
        b"SEND\ndestination:/topic/x\n\nhal"
    );
    let partial = room.broker.partial_frame(1).to_vec();
    room.hibernate();
    room.broker.restore_partial_frame(1, &partial);
    room.raw(1, b"f\0");
    assert_eq!(room.bodies(2), ["half"]);
    assert!(room.broker.partial_frame(1).is_empty());
}

#[test]
fn echoed_pings_stand_in_for_server_heart_beats() {
    let config = Config {
        heart_beats_echoed: true,
        ..Config::default()
    };
    let mut room = Room::with_config(config);
    // stomp.js defaults: pings every 10 s and wants to hear every 10 s; the echo suffices.
    room.connect(1, "heart-beat:10000,10000\n");
    // Wants to hear every 10 s but pings only every 20 s: the echo is not enough.
    room.connect(2, "heart-beat:20000,10000\n");
    // Wants heart-beats and never pings.
    room.connect(3, "heart-beat:0,10000\n");
    assert_eq!(room.broker.deadlines().send, Some(room.now + 10_000));
    for _ in 0..3 {
        room.advance(10_000);
        let now = room.now;
        room.broker.note_heart_beat(1, now);
        room.raw(2, b"\n");
    }
    assert!(
        room.take_received(1).is_empty(),
        "the echoes were its heart-beats"
    );
    assert_eq!(room.take_received(2).len(), 3);
    assert_eq!(room.take_received(3).len(), 3);
    room.close(2);
    room.close(3);
    assert_eq!(
        room.broker.deadlines().send,
        None,
        "an idle room of pinging clients needs no timer but liveness"
    );
    assert!(room.broker.deadlines().liveness.is_some());
}

#[test]
fn identical_frames_are_encoded_once_for_many_subscribers() {
    let mut room = Room::new();
    for conn in 1..=50 {
        room.connect(conn, "");
        room.subscribe(conn, "sub-0", "/topic/chat");
    }
    room.connect(51, "");
    room.subscribe(51, "other-id", "/topic/chat");
    room.log.clear();
    room.publish(1, "/topic/chat", "hello");
    let fan_out: Vec<usize> = room
        .log
        .iter()
        .filter_map(|e| match e {
            Effect::SendMany { conns, .. } => Some(conns.len()),
            Effect::Send { .. } => Some(1),
            _ => None,
        })
        .take(2)
        .collect();
    assert_eq!(
        fan_out,
        [50, 1],
        "one shared frame for the 50 'sub-0' subscribers, one for the other"
    );
    for conn in 1..=51 {
        assert_eq!(room.bodies(conn), ["hello"], "connection {conn}");
    }
}
