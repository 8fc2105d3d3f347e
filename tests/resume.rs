//! A resume that says what was lost: a `replay-after`, a poll's `after` or an event stream's
//! `Last-Event-ID` from before what the history still holds is reported as incomplete (a
//! `replay-incomplete` header, an `"incomplete": true` field, an `incomplete` event) instead
//! of quietly starting from the oldest message kept. Each rule runs kept in memory and
//! evicted after every step; the marks are stored, so they also hold across a crash.

mod support;

use serde_json::Value;
use stomp_rooms::room::budget::Budget;
use stomp_rooms::room::http::HttpOutcome;
use stomp_rooms::room::{Config, PublishRate, Settings, TRIM_EVERY};
use stomp_rooms::stomp::{Command, Frame};
use support::http::{body_json, get, ids as answer_ids, respond, text, with_header};
use support::SimulatedRoom;

const HISTORY_LIMIT: u32 = 2;

fn settings(history_limit: u32, max_history_destinations: u32) -> Settings {
    Settings {
        broker: Config {
            history_limit,
            publish_rate: PublishRate::UNLIMITED,
            budget: Budget {
                max_history_destinations,
                ..Budget::default()
            },
            ..Config::default()
        },
        ..Settings::default()
    }
}

/// A room with `count` messages published to `/topic/chat`, the last with a receipt (so all
/// are stored, and trimmed as they will be), and the ids they were given.
fn trimmed_room(count: u32) -> (SimulatedRoom, Vec<u64>) {
    let mut room = SimulatedRoom::with_settings(settings(HISTORY_LIMIT, 1_000));
    room.connect(1, "");
    room.subscribe(1, "live", "/topic/chat");
    for n in 1..count {
        room.publish(1, "/topic/chat", &n.to_string());
    }
    room.frame(1, "SEND\ndestination:/topic/chat\nreceipt:stored", "last");
    let ids = room
        .take(1)
        .iter()
        .filter(|f| f.command == Command::Message)
        .filter_map(|f| f.header("message-id"))
        .map(|id| id.parse().unwrap())
        .collect();
    (room, ids)
}

fn resume(room: &mut SimulatedRoom, conn: u64, after: u64) -> Vec<Frame> {
    room.connect(conn, "");
    room.frame(
        conn,
        &format!("SUBSCRIBE\nid:s\ndestination:/topic/chat\nreplay-after:{after}\nreceipt:r"),
        "",
    );
    room.take(conn)
}

fn incomplete(frame: &Frame) -> Option<&str> {
    frame.header("replay-incomplete")
}

room_test! {
fn a_replay_after_trimmed_history_says_so_on_its_first_message_and_its_receipt() {
    let (mut room, ids) = trimmed_room(HISTORY_LIMIT + TRIM_EVERY + 6);
    let frames = resume(&mut room, 2, ids[0]);
    let (messages, receipt) = frames.split_at(frames.len() - 1);
    assert_eq!(messages.len(), HISTORY_LIMIT as usize);
    assert_eq!(incomplete(&messages[0]), Some("true"));
    assert_eq!(incomplete(&messages[1]), None, "on the first only");
    assert_eq!(receipt[0].command, Command::Receipt, "after the replay");
    assert_eq!(incomplete(&receipt[0]), Some("true"));
}
}

room_test! {
fn a_replay_after_a_kept_message_is_complete_and_says_nothing() {
    let (mut room, ids) = trimmed_room(HISTORY_LIMIT + TRIM_EVERY + 6);
    let kept = ids[ids.len() - 1 - HISTORY_LIMIT as usize];
    let frames = resume(&mut room, 2, kept);
    assert_eq!(frames.len(), HISTORY_LIMIT as usize + 1);
    assert!(frames.iter().all(|f| incomplete(f).is_none()), "{frames:?}");
    let frames = resume(&mut room, 3, ids[ids.len() - 1]);
    assert_eq!(frames.len(), 1, "nothing to replay");
    assert_eq!(frames[0].command, Command::Receipt);
    assert_eq!(incomplete(&frames[0]), None);
}
}

room_test! {
fn more_messages_after_the_id_than_history_limit_replays_is_incomplete() {
    // Not trimmed yet (a trim waits for TRIM_EVERY more), but a replay gives history_limit.
    let (mut room, ids) = trimmed_room(HISTORY_LIMIT + 3);
    let frames = resume(&mut room, 2, ids[0]);
    assert_eq!(frames.len(), HISTORY_LIMIT as usize + 1);
    assert_eq!(incomplete(&frames[0]), Some("true"));
    let frames = resume(&mut room, 3, ids[ids.len() - 1 - HISTORY_LIMIT as usize]);
    assert!(frames.iter().all(|f| incomplete(f).is_none()), "exactly history_limit after it");
}
}

room_test! {
fn a_receipt_says_a_replay_was_incomplete_when_nothing_is_left_to_replay() {
    // One destination keeps history at a time: /topic/other's first message drops /topic/chat's.
    let mut room = SimulatedRoom::with_settings(settings(10, 1));
    room.connect(1, "");
    room.publish(1, "/topic/chat", "lost");
    room.publish(1, "/topic/other", "kept elsewhere");
    let frames = resume(&mut room, 2, 0);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].command, Command::Receipt);
    assert_eq!(incomplete(&frames[0]), Some("true"));
}
}

/// A SUBSCRIBE resuming after `after`, without a `receipt`: the first MESSAGE is all it hears.
fn resume_without_receipt(room: &mut SimulatedRoom, conn: u64, after: u64, extra: &str) {
    room.frame(
        conn,
        &format!("SUBSCRIBE\nid:s\ndestination:/topic/chat\nreplay-after:{after}{extra}"),
        "",
    );
}

room_test! {
fn with_nothing_left_to_replay_and_no_receipt_the_next_live_message_says_incomplete() {
    // One destination keeps history at a time: /topic/other's first message drops /topic/chat's.
    let mut room = SimulatedRoom::with_settings(settings(10, 1));
    room.connect(1, "");
    // The same subscription id as the resumer's: their frames may not share an encoding.
    room.subscribe(1, "s", "/topic/chat");
    room.publish(1, "/topic/chat", "lost");
    room.publish(1, "/topic/other", "kept elsewhere");
    room.take(1);
    room.connect(2, "");
    resume_without_receipt(&mut room, 2, 0, "");
    assert!(room.take(2).is_empty(), "nothing to replay, nothing asked for");
    room.publish(1, "/topic/chat", "live");
    room.publish(1, "/topic/chat", "live again");
    let frames = room.take(2);
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0].body, b"live");
    assert_eq!(incomplete(&frames[0]), Some("true"), "{frames:?}");
    assert_eq!(incomplete(&frames[1]), None, "on the first only");
    let others = room.take(1);
    assert!(others.iter().all(|f| incomplete(f).is_none()), "{others:?}");
}
}

room_test! {
fn when_echo_off_mutes_every_replayed_message_the_next_one_it_receives_says_incomplete() {
    let mut room = SimulatedRoom::with_settings(settings(HISTORY_LIMIT, 1_000))
        .with_credentials(&[("alice", "a"), ("bob", "b")]);
    room.connect(1, "login:alice\npasscode:a\n");
    for n in 0..HISTORY_LIMIT + TRIM_EVERY + 6 {
        room.publish(1, "/topic/chat", &format!("alice {n}"));
    }
    room.frame(1, "SEND\ndestination:/topic/chat\nreceipt:stored", "alice last");
    room.take(1);
    // Alice again, in another tab, resuming from before what was trimmed, without her own.
    room.connect(2, "login:alice\npasscode:a\n");
    resume_without_receipt(&mut room, 2, 1, "\necho:false");
    assert!(room.take(2).is_empty(), "every replayed message was alice's");
    room.publish(1, "/topic/chat", "alice, live");
    assert!(room.take(2).is_empty(), "still her own");
    room.connect(3, "login:bob\npasscode:b\n");
    room.publish(3, "/topic/chat", "bob");
    let frames = room.take(2);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].body, b"bob");
    assert_eq!(incomplete(&frames[0]), Some("true"));
}
}

room_test! {
fn with_history_off_a_resume_from_before_the_last_id_is_incomplete() {
    let mut room = SimulatedRoom::with_settings(settings(0, 1_000));
    room.connect(1, "");
    room.subscribe(1, "live", "/topic/chat");
    room.publish(1, "/topic/chat", "not kept");
    let id: u64 = room.take(1)[0].header("message-id").unwrap().parse().unwrap();
    let frames = resume(&mut room, 2, id - 1);
    assert_eq!(incomplete(&frames[0]), Some("true"));
    let frames = resume(&mut room, 3, id);
    assert_eq!(incomplete(&frames[0]), None, "nothing since");
}
}

room_test! {
fn a_replay_last_is_never_called_incomplete() {
    let (mut room, _) = trimmed_room(HISTORY_LIMIT + TRIM_EVERY + 6);
    room.connect(2, "");
    room.frame(2, "SUBSCRIBE\nid:s\ndestination:/topic/chat\nreplay-last:100", "");
    let frames = room.take(2);
    assert!(frames.iter().all(|f| incomplete(f).is_none()));
}
}

room_test! {
fn a_client_cannot_forge_replay_incomplete() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.subscribe(1, "s", "/topic/chat");
    room.frame(1, "SEND\ndestination:/topic/chat\nreplay-incomplete:true", "x");
    assert_eq!(incomplete(&room.take(1)[0]), None);
}
}

#[test]
fn the_mark_of_what_was_trimmed_survives_a_crash() {
    let (mut room, ids) = trimmed_room(HISTORY_LIMIT + TRIM_EVERY + 6);
    room.hibernate();
    room.restart();
    let frames = resume(&mut room, 2, ids[0] + 1);
    assert_eq!(incomplete(&frames[0]), Some("true"));
    // Dropped with its destination, across a crash too.
    let mut room = SimulatedRoom::with_settings(settings(10, 1));
    room.connect(1, "");
    room.publish(1, "/topic/chat", "lost");
    room.publish(1, "/topic/other", "kept elsewhere");
    room.hibernate();
    room.restart();
    let frames = resume(&mut room, 2, 0);
    assert_eq!(incomplete(&frames[0]), Some("true"));
}

room_test! {
fn a_poll_after_trimmed_history_answers_incomplete_at_once() {
    let (mut room, ids) = trimmed_room(HISTORY_LIMIT + TRIM_EVERY + 6);
    let answer = body_json(&respond(room.http(get(&format!("/topic/chat?after={}", ids[0])))));
    assert_eq!(answer["incomplete"], Value::Bool(true));
    let kept = ids[ids.len() - 1 - HISTORY_LIMIT as usize];
    let answer = body_json(&respond(room.http(get(&format!("/topic/chat?after={kept}")))));
    assert_eq!(answer.get("incomplete"), None, "{answer}");
    assert_eq!(answer_ids(&answer), ids[ids.len() - 2..]);
    // A long poll from a lost id does not wait for the next message to say so.
    let mut room = SimulatedRoom::with_settings(settings(10, 1));
    room.connect(1, "");
    room.publish(1, "/topic/chat", "lost");
    room.publish(1, "/topic/other", "kept elsewhere");
    let answer = body_json(&respond(room.http(get("/topic/chat?after=0&wait=30"))));
    assert_eq!(answer["incomplete"], Value::Bool(true));
    assert!(answer_ids(&answer).is_empty());
}
}

room_test! {
fn an_event_stream_resumed_after_trimmed_history_opens_with_an_incomplete_event() {
    let (mut room, ids) = trimmed_room(HISTORY_LIMIT + TRIM_EVERY + 6);
    let stream = |after: u64| {
        with_header(
            with_header(get("/topic/chat"), "accept", "text/event-stream"),
            "last-event-id",
            &after.to_string(),
        )
    };
    let Some(HttpOutcome::Stream { head, .. }) = room.http(stream(ids[0])) else {
        panic!("expected a stream");
    };
    let start = text(&head);
    let event = "event: incomplete\ndata: {\"incomplete\":true}\n\n";
    let at = start.find(event).unwrap_or_else(|| panic!("{start}"));
    assert!(at < start.find("event: message").unwrap(), "before the first message");
    let kept = ids[ids.len() - 1 - HISTORY_LIMIT as usize];
    let Some(HttpOutcome::Stream { head, .. }) = room.http(stream(kept)) else {
        panic!("expected a stream");
    };
    assert!(!text(&head).contains("incomplete"));
}
}
