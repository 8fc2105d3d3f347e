//! Coalescing: frames due to the same connections within one event leave as one WebSocket
//! message (a replay, a client's message carrying several SENDs), bounded, never mixing binary
//! and text; a lone frame leaves at once, exactly as without coalescing; `coalesce_frames:
//! false` sends one message per frame. SockJS sockets get the frames as separate messages of
//! one SockJS frame; gateway members get them one by one, as before.

mod support;

use stomp_rooms::relay::Outgoing;
use stomp_rooms::room::testing::SocketCall;
use stomp_rooms::room::{
    PublishRate, Settings, BUSY_WITHIN_MS, DELIVERIES_PER_BUSY_MS, MAX_COALESCED_BYTES,
    MAX_COALESCED_FRAMES,
};
use stomp_rooms::stomp::Command;
use support::gateways::SimulatedGateways;
use support::{SimulatedRoom, SocketMessage};

fn text(frames: usize) -> SocketMessage {
    SocketMessage {
        frames,
        binary: false,
    }
}

fn binary(frames: usize) -> SocketMessage {
    SocketMessage {
        frames,
        binary: true,
    }
}

/// Settings whose publish rate lets a test publish as fast as it likes.
fn unthrottled() -> Settings {
    let mut settings = Settings::default();
    settings.broker.publish_rate = PublishRate::UNLIMITED;
    settings
}

fn coalescing_off() -> Settings {
    Settings {
        coalesce_frames: false,
        ..unthrottled()
    }
}

/// A room whose `/topic/chat` history holds these bodies (client 1 published them), with
/// client 2 connected and its CONNECTED taken.
fn room_with_history(settings: Settings, bodies: &[String]) -> SimulatedRoom {
    let mut room = SimulatedRoom::with_settings(settings);
    room.connect(1, "");
    for body in bodies {
        room.publish(1, "/topic/chat", body);
    }
    room.connect(2, "");
    room.take_messages(2);
    room
}

fn numbered(n: usize) -> Vec<String> {
    (1..=n).map(|i| i.to_string()).collect()
}

fn replay_last(room: &mut SimulatedRoom, client: u64, n: usize) {
    let head = format!("SUBSCRIBE\nid:s\ndestination:/topic/chat\nreplay-last:{n}");
    room.frame(client, &head, "");
}

const THREE_SENDS: &[u8] = b"SEND\ndestination:/topic/chat\n\na\0\
SEND\ndestination:/topic/chat\n\nb\0\
SEND\ndestination:/topic/chat\n\nc\0";

room_test! {
fn a_replay_of_five_history_messages_to_one_subscriber_is_one_message_of_five_frames() {
    let mut room = room_with_history(unthrottled(), &numbered(5));
    replay_last(&mut room, 2, 5);
    assert_eq!(room.take_messages(2), [text(5)]);
    assert_eq!(room.bodies(2), numbered(5));
}
}

room_test! {
fn a_lone_live_message_leaves_at_once_as_a_message_of_its_own_exactly_as_before() {
    let mut room = SimulatedRoom::with_settings(unthrottled());
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/topic/chat");
    room.take_messages(2);
    room.take_log();
    room.publish(1, "/topic/chat", "one");
    assert_eq!(room.take_messages(2), [text(1)]);
    let to_2 = room.conn(2);
    let sends: Vec<Vec<u8>> = room
        .take_log()
        .into_iter()
        .filter_map(|call| match call {
            SocketCall::Send { conn, bytes, .. } if conn == to_2 => Some(bytes),
            _ => None,
        })
        .collect();
    assert_eq!(sends.len(), 1, "one send to the subscriber");
    assert!(sends[0].starts_with(b"MESSAGE\n"));
    assert!(sends[0].ends_with(b"\n\none\0"), "the frame alone");
    assert_eq!(room.bodies(2), ["one"]);
}
}

room_test! {
fn several_sends_in_one_client_message_reach_a_fan_out_as_one_shared_message() {
    let mut room = SimulatedRoom::with_settings(unthrottled());
    room.connect(1, "");
    for client in [2, 3] {
        room.connect(client, "");
        room.subscribe(client, "s", "/topic/chat");
        room.take_messages(client);
    }
    room.take_log();
    room.raw(1, THREE_SENDS);
    for client in [2, 3] {
        assert_eq!(room.take_messages(client), [text(3)], "client {client}");
        assert_eq!(room.bodies(client), ["a", "b", "c"]);
    }
    let (to_2, to_3) = (room.conn(2), room.conn(3));
    let sends: Vec<SocketCall> = room
        .take_log()
        .into_iter()
        .filter(|call| match call {
            SocketCall::Send { conn, .. } => [to_2, to_3].contains(conn),
            SocketCall::SendMany { .. } => true,
            _ => false,
        })
        .collect();
    assert!(
        matches!(sends.as_slice(), [SocketCall::SendMany { conns, .. }] if *conns == [to_2, to_3]),
        "one shared send carries the three frames to both: {sends:?}"
    );
}
}

room_test! {
fn binary_and_text_frames_never_share_a_message() {
    let mut room = SimulatedRoom::with_settings(unthrottled());
    room.connect(1, "");
    room.publish(1, "/topic/chat", "t1");
    room.publish(1, "/topic/chat", "t2");
    for body in ["b1", "b2"] {
        let send = format!("SEND\ndestination:/topic/chat\ncontent-length:2\n\n{body}\0");
        room.raw_binary(1, send.as_bytes());
    }
    room.publish(1, "/topic/chat", "t3");
    room.connect(2, "");
    room.take_messages(2);
    replay_last(&mut room, 2, 5);
    assert_eq!(room.take_messages(2), [text(2), binary(2), text(1)]);
    assert_eq!(room.bodies(2), ["t1", "t2", "b1", "b2", "t3"]);
}
}

room_test! {
fn a_long_run_is_split_at_the_most_frames_a_message_carries() {
    let n = MAX_COALESCED_FRAMES + 10;
    let mut room = room_with_history(unthrottled(), &numbered(n));
    replay_last(&mut room, 2, n);
    assert_eq!(room.take_messages(2), [text(MAX_COALESCED_FRAMES), text(10)]);
    assert_eq!(room.bodies(2), numbered(n));
}
}

room_test! {
fn a_long_run_is_split_at_the_most_bytes_a_message_carries_and_a_larger_frame_goes_alone() {
    // Three frames of a 20,000-byte body fit in 64 KiB, a fourth would not.
    assert_eq!(MAX_COALESCED_BYTES, 64 * 1024);
    let big = "x".repeat(20_000);
    let larger = "y".repeat(MAX_COALESCED_BYTES + 1);
    let bodies = vec![
        big.clone(),
        big.clone(),
        big.clone(),
        big.clone(),
        "small".to_owned(),
        larger.clone(),
        "after".to_owned(),
    ];
    let mut room = room_with_history(unthrottled(), &bodies);
    replay_last(&mut room, 2, bodies.len());
    assert_eq!(
        room.take_messages(2),
        [text(3), text(2), text(1), text(1)],
        "three, then one more with the small one, the larger one alone, then the last"
    );
    assert_eq!(room.bodies(2), bodies);
}
}

room_test! {
fn switched_off_every_frame_is_a_message_of_its_own() {
    let mut room = room_with_history(coalescing_off(), &numbered(5));
    replay_last(&mut room, 2, 5);
    assert_eq!(room.take_messages(2), [text(1); 5]);
    assert_eq!(room.bodies(2), numbered(5));
    room.raw(1, THREE_SENDS);
    assert_eq!(room.take_messages(2), [text(1); 3]);
    assert_eq!(room.bodies(2), ["a", "b", "c"]);
}
}

room_test! {
fn a_receipt_that_waits_for_the_commit_keeps_its_place_after_it() {
    let mut room = SimulatedRoom::with_settings(unthrottled());
    room.connect(2, "");
    room.subscribe(2, "s", "/topic/chat");
    room.take_messages(2);
    room.raw(
        2,
        b"SEND\ndestination:/topic/chat\nreceipt:r\n\nown\0SEND\ndestination:/topic/chat\n\nnext\0",
    );
    // The first MESSAGE is live; the RECEIPT waits for the commit, and what follows it to
    // the same connection waits with it: they leave together, after the commit.
    assert_eq!(room.take_messages(2), [text(1), text(2)]);
    let frames = room.take(2);
    let commands: Vec<Command> = frames.iter().map(|f| f.command).collect();
    assert_eq!(
        commands,
        [Command::Message, Command::Receipt, Command::Message]
    );
    assert_eq!(frames[0].body, b"own");
    assert_eq!(frames[2].body, b"next");
}
}

fn sockjs_message(frame: &str) -> Vec<u8> {
    serde_json::to_string(&[frame])
        .expect("strings encode")
        .into_bytes()
}

room_test! {
fn a_sockjs_socket_gets_a_replay_as_one_sockjs_frame_of_separate_messages() {
    let mut room = room_with_history(unthrottled(), &numbered(5));
    room.open_sockjs(3);
    room.raw(3, &sockjs_message("CONNECT\naccept-version:1.2\n\n\0"));
    room.take(3);
    let before = room.sockjs_frames[&3].len();
    room.raw(
        3,
        &sockjs_message("SUBSCRIBE\nid:s\ndestination:/topic/chat\nreplay-last:5\n\n\0"),
    );
    let frames = room.sockjs_frames[&3][before..].to_vec();
    assert_eq!(frames.len(), 1, "one SockJS frame: {frames:?}");
    let messages: Vec<String> =
        serde_json::from_str(frames[0].strip_prefix('a').expect("a messages frame")).unwrap();
    assert_eq!(messages.len(), 5, "each STOMP frame a SockJS message of its own");
    assert!(messages.iter().all(|m| m.starts_with("MESSAGE\n") && m.ends_with('\0')));
    assert_eq!(room.bodies(3), numbered(5));
}
}

room_test! {
fn a_gateway_member_gets_a_replay_frame_by_frame_as_before() {
    let mut room = room_with_history(unthrottled(), &numbered(5));
    let mut gateways = SimulatedGateways::default();
    gateways.join(&mut room, "shard:lobby:0", 7);
    gateways.calls.clear();
    gateways.frame(
        &mut room,
        "shard:lobby:0",
        7,
        "SUBSCRIBE\nid:m\ndestination:/topic/chat\nreplay-last:5",
        "",
    );
    let sends: Vec<&Vec<u8>> = gateways
        .calls
        .iter()
        .flat_map(|(_, call)| &call.items)
        .filter_map(|item| match item {
            Outgoing::Send { members, bytes, .. } if *members == [7] => Some(bytes),
            _ => None,
        })
        .collect();
    assert_eq!(sends.len(), 5, "one send per frame");
    assert!(sends.iter().all(|bytes| bytes.iter().filter(|&&b| b == 0).count() == 1));
    assert_eq!(gateways.bodies("shard:lobby:0", 7), numbered(5));
}
}

room_test! {
fn one_fan_out_reaches_a_plain_socket_a_sockjs_socket_and_a_member_each_in_its_own_way() {
    let mut room = SimulatedRoom::with_settings(unthrottled());
    let mut gateways = SimulatedGateways::default();
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/topic/chat");
    room.open_sockjs(3);
    room.raw(3, &sockjs_message("CONNECT\naccept-version:1.2\n\n\0"));
    room.raw(
        3,
        &sockjs_message("SUBSCRIBE\nid:s\ndestination:/topic/chat\n\n\0"),
    );
    gateways.join(&mut room, "shard:lobby:0", 7);
    gateways.frame(&mut room, "shard:lobby:0", 7, "SUBSCRIBE\nid:s\ndestination:/topic/chat", "");
    room.take_messages(2);
    room.take(3);
    let before = room.sockjs_frames[&3].len();
    gateways.calls.clear();
    room.raw(1, THREE_SENDS);
    gateways.deliver(&mut room);
    assert_eq!(room.take_messages(2), [text(3)], "a plain socket: one message");
    assert_eq!(room.bodies(2), ["a", "b", "c"]);
    let sockjs = room.sockjs_frames[&3][before..].to_vec();
    assert_eq!(sockjs.len(), 1, "a SockJS socket: one SockJS frame: {sockjs:?}");
    assert_eq!(room.bodies(3), ["a", "b", "c"]);
    let member_sends = gateways
        .calls
        .iter()
        .flat_map(|(_, call)| &call.items)
        .filter(|item| matches!(item, Outgoing::Send { members, .. } if *members == [7]))
        .count();
    assert_eq!(member_sends, 3, "a member: one send per frame");
    assert_eq!(gateways.bodies("shard:lobby:0", 7), ["a", "b", "c"]);
}
}

#[test]
fn coalescing_is_on_by_default_and_the_setting_switches_it_off() {
    assert!(Settings::default().coalesce_frames);
    let off: Settings = serde_json::from_str(r#"{"coalesce_frames": false}"#).unwrap();
    assert!(!off.coalesce_frames);
}

// ---- across events: a busy room ------------------------------------------------------------

/// A room with client 1 publishing and clients 2 and 3 subscribed to `/topic/chat`, their
/// CONNECTED and RECEIPTs taken, and a quiet spell since.
fn room_with_two_subscribers(settings: Settings) -> SimulatedRoom {
    room_with_subscribers(settings, 2)
}

/// The same with clients 2 to `subscribers + 1` subscribed.
fn room_with_subscribers(settings: Settings, subscribers: u64) -> SimulatedRoom {
    let mut room = SimulatedRoom::with_settings(settings);
    room.connect(1, "");
    for client in 2..=subscribers + 1 {
        room.connect(client, "");
        room.subscribe(client, "s", "/topic/chat");
        room.take_messages(client);
    }
    room.now += 1_000;
    room.take_log();
    room
}

room_test! {
/// A gateway's member among the subscribers gets each frame in its gateway's call at once;
/// the room's own sockets still get the burst coalesced (a run shared with a member used to
/// be sent whole at the end of every event, so one subscriber on a gateway turned coalescing
/// off for the whole room).
fn a_burst_reaches_sockets_coalesced_though_a_member_subscribes_too() {
    let mut room = room_with_two_subscribers(unthrottled());
    let mut gateways = SimulatedGateways::default();
    gateways.join(&mut room, "shard:lobby:0", 7);
    gateways.frame(&mut room, "shard:lobby:0", 7, "SUBSCRIBE\nid:s\ndestination:/topic/chat", "");
    gateways.deliver(&mut room);
    gateways.calls.clear();
    room.now += 1_000;
    room.burst(|room| {
        for n in 1..=5 {
            room.publish(1, "/topic/chat", &n.to_string());
        }
        assert_eq!(room.take_messages(2), [text(1)], "the rest wait for the flush");
        gateways.deliver(room);
    });
    for client in [2, 3] {
        assert_eq!(room.bodies(client), numbered(5), "client {client}");
    }
    assert_eq!(room.take_messages(2), [text(4)], "the four that waited, as one message");
    assert_eq!(room.take_messages(3), [text(1), text(4)]);
    gateways.deliver(&mut room);
    assert_eq!(gateways.bodies("shard:lobby:0", 7), numbered(5));
}
}

room_test! {
fn a_burst_of_messages_reaches_each_subscriber_as_one_message_once_the_host_flushes() {
    let mut room = room_with_two_subscribers(unthrottled());
    room.burst(|room| {
        for n in 1..=5 {
            room.publish(1, "/topic/chat", &n.to_string());
        }
        // The first after the quiet spell left at once; the rest wait for the flush.
        assert_eq!(room.take_messages(2), [text(1)]);
    });
    for client in [2, 3] {
        assert_eq!(room.bodies(client), numbered(5), "client {client}");
    }
    assert_eq!(room.take_messages(2), [text(4)], "the four that waited, as one message");
    let shared = room
        .take_log()
        .into_iter()
        .filter(|call| matches!(call, SocketCall::SendMany { .. }))
        .count();
    assert_eq!(shared, 2, "one shared send for the first, one for the four");
}
}

room_test! {
fn messages_further_apart_than_the_busy_window_each_leave_at_once() {
    let mut room = room_with_two_subscribers(unthrottled());
    room.burst(|room| {
        for n in 1..=3 {
            room.now += BUSY_WITHIN_MS;
            room.publish(1, "/topic/chat", &n.to_string());
            assert_eq!(room.take_messages(2), [text(1)], "message {n} left at once");
        }
    });
    assert_eq!(room.bodies(2), numbered(3));
}
}

room_test! {
fn with_coalescing_off_a_burst_leaves_one_message_per_frame_at_once() {
    let mut room = room_with_two_subscribers(coalescing_off());
    room.burst(|room| {
        for n in 1..=4 {
            room.publish(1, "/topic/chat", &n.to_string());
        }
        assert_eq!(room.take_messages(2), [text(1); 4]);
    });
    assert_eq!(room.bodies(3), numbered(4));
}
}

room_test! {
fn frames_waiting_from_a_burst_leave_before_a_write_and_before_a_receipt() {
    let mut room = room_with_two_subscribers(unthrottled());
    let to_2 = room.conn(2);
    room.burst(|room| {
        room.publish(1, "/topic/chat", "1");
        room.publish(1, "/topic/chat", "2");
        room.publish(1, "/topic/chat", "3");
        let commits_before = room.store.commits.len();
        room.frame(1, "SEND\ndestination:/topic/chat\nreceipt:r", "4");
        let commit = room.store.commits[commits_before];
        let sends_to_2: Vec<u64> = room
            .sockets
            .log
            .iter()
            .filter_map(|call| match call {
                SocketCall::SendMany { conns, at, .. } if conns.contains(&to_2) => Some(*at),
                SocketCall::Send { conn, at, .. } if *conn == to_2 => Some(*at),
                _ => None,
            })
            .collect();
        assert!(
            sends_to_2.iter().all(|&at| at < commit),
            "every fan-out left before the write: {sends_to_2:?} vs {commit}"
        );
    });
    assert_eq!(room.take(1)[0].header("receipt-id"), Some("r"));
    assert_eq!(room.bodies(2), numbered(4));
}
}

room_test! {
fn a_burst_into_a_plain_and_a_sockjs_socket_coalesces_for_each_side_by_side() {
    let mut room = SimulatedRoom::with_settings(unthrottled());
    room.connect(1, "");
    room.connect(2, "");
    room.subscribe(2, "s", "/topic/chat");
    room.open_sockjs(3);
    room.raw(3, &sockjs_message("CONNECT\naccept-version:1.2\n\n\0"));
    room.raw(3, &sockjs_message("SUBSCRIBE\nid:s\ndestination:/topic/chat\n\n\0"));
    room.take_messages(2);
    room.take(3);
    room.now += 1_000;
    let before = room.sockjs_frames[&3].len();
    room.burst(|room| {
        for n in 1..=4 {
            room.publish(1, "/topic/chat", &n.to_string());
        }
    });
    assert_eq!(room.take_messages(2), [text(1), text(3)]);
    assert_eq!(room.bodies(2), numbered(4));
    let sockjs = room.sockjs_frames[&3][before..].to_vec();
    assert_eq!(sockjs.len(), 2, "the first alone, then three in one SockJS frame: {sockjs:?}");
    assert_eq!(room.bodies(3), numbered(4));
}
}

room_test! {
fn a_burst_to_a_gateway_member_goes_in_the_call_made_when_the_host_flushes() {
    let mut room = SimulatedRoom::with_settings(unthrottled());
    let mut gateways = SimulatedGateways::default();
    room.connect(1, "");
    gateways.join(&mut room, "shard:lobby:0", 7);
    gateways.frame(&mut room, "shard:lobby:0", 7, "SUBSCRIBE\nid:s\ndestination:/topic/chat", "");
    gateways.deliver(&mut room);
    room.now += 1_000;
    gateways.calls.clear();
    room.burst(|room| {
        for n in 1..=3 {
            room.publish(1, "/topic/chat", &n.to_string());
        }
    });
    gateways.deliver(&mut room);
    assert_eq!(gateways.bodies("shard:lobby:0", 7), numbered(3));
}
}

room_test! {
fn a_large_fan_out_widens_the_busy_window_by_its_own_time() {
    // 40 subscribers: the busy window is 5 ms plus 1 ms per DELIVERIES_PER_BUSY_MS of them.
    let widened = (40 / DELIVERIES_PER_BUSY_MS) as u64;
    assert!(widened >= 2, "the window widens by more than the test's steps");
    let mut room = room_with_subscribers(unthrottled(), 40);
    room.burst(|room| {
        room.publish(1, "/topic/chat", "1");
        assert_eq!(room.take_messages(2), [text(1)], "the first leaves at once");
        room.now += BUSY_WITHIN_MS + 1;
        room.publish(1, "/topic/chat", "2");
        assert!(room.take_messages(2).is_empty(), "6 ms after a fan-out to 40: still busy");
        room.now += BUSY_WITHIN_MS + widened;
        room.publish(1, "/topic/chat", "3");
        assert_eq!(
            room.take_messages(2),
            [text(1), text(1)],
            "past the widened window after a fan-out to 40: quiet; what waited leaves first"
        );
    });
    assert_eq!(room.bodies(41), numbered(3));
}
}

room_test! {
/// The room's clock stands still while a fan-out is sent one frame at a time, so the next
/// message finds the clock moved on by the whole fan-out. A runtime that takes 100 µs a send
/// (twice what one took here, as under a profiler or on a busier machine) must still find the
/// room busy, or every message is sent apart and the room never catches up.
fn a_fan_out_to_1000_sent_at_100_us_a_frame_still_finds_the_room_busy() {
    let mut room = room_with_subscribers(unthrottled(), 1_000);
    room.burst(|room| {
        room.publish(1, "/topic/chat", "1");
        assert_eq!(room.take_messages(2), [text(1)], "the first leaves at once");
        // 1,000 sends at 100 µs each: the clock the next message sees is 100 ms later.
        room.now += 100;
        room.publish(1, "/topic/chat", "2");
        assert!(room.take_messages(2).is_empty(), "queued behind the fan-out: it waits");
    });
    assert_eq!(room.bodies(1_001), numbered(2));
}
}

room_test! {
fn while_frames_wait_the_alarm_is_left_alone_and_the_flush_sets_it_after_them() {
    let mut room = room_with_two_subscribers(unthrottled());
    room.burst(|room| {
        room.publish(1, "/topic/chat", "1");
        let sets = room.alarm_sets;
        // The second's history row waits to share a commit: the room wants its alarm, but
        // setting it is a write, and frames wait.
        room.publish(1, "/topic/chat", "2");
        assert_eq!(room.alarm_sets, sets, "no alarm write while frames wait");
    });
    assert!(room.alarm.is_some(), "the flush set it");
    assert_eq!(room.bodies(2), numbered(2));
}
}

room_test! {
fn frames_waiting_in_all_runs_together_stay_within_their_bound() {
    // Five subscribers with subscription ids of their own: five runs, and 30 KiB messages.
    let mut room = SimulatedRoom::with_settings(unthrottled());
    room.connect(1, "");
    for client in 2..=6 {
        room.connect(client, "");
        room.subscribe(client, &format!("s{client}"), "/topic/chat");
        room.take_messages(client);
    }
    room.now += 1_000;
    let big = "x".repeat(30 * 1024);
    room.burst(|room| {
        for _ in 0..3 {
            room.publish(1, "/topic/chat", &big);
        }
        // The first left at once; the next two join each subscriber's run: 5 × 60 KiB.
        let frames_sent: Vec<usize> = (2..=6)
            .map(|client| room.take_messages(client).iter().map(|m| m.frames).sum())
            .collect();
        assert!(
            frames_sent.contains(&3),
            "past 256 KiB waiting, the oldest run left before the flush: {frames_sent:?}"
        );
    });
    for client in 2..=6 {
        assert_eq!(room.bodies(client).len(), 3, "client {client}");
    }
}
}
