//! Idempotent publish: an `Idempotency-Key` on a POST, an `idempotency-key` on a SEND. A repeat
//! within `idempotency_window_ms` is answered as the first publish was (201 with the same id,
//! or a RECEIPT naming the same message) and delivers, archives and enqueues nothing, kept in
//! memory, evicted after every step, and across a crash between the publish and its retry.

mod support;

use serde_json::json;
use stomp_rooms::room::{Budget, Config, Settings, MAX_IDEMPOTENCY_KEY_BYTES};
use stomp_rooms::stomp::{Command, Frame};
use support::http::{body_json, post, respond, text, with_header};
use support::{error_of, SimulatedRoom};

fn keyed_post(destination: &str, body: &str, key: &str) -> stomp_rooms::room::http::HttpRequest {
    with_header(post(destination, body), "idempotency-key", key)
}

fn keyed_send(room: &mut SimulatedRoom, conn: u64, destination: &str, body: &str, key: &str) {
    room.frame(
        conn,
        &format!("SEND\ndestination:{destination}\nidempotency-key:{key}\nreceipt:r-{body}"),
        body,
    );
}

/// The `message-id`s of the MESSAGEs a client received.
fn delivered(frames: &[Frame]) -> Vec<u64> {
    frames
        .iter()
        .filter(|f| f.command == Command::Message)
        .filter_map(|f| f.header("message-id")?.parse().ok())
        .collect()
}

/// The `message-id` of the RECEIPT a client received.
fn receipted(frames: &[Frame]) -> u64 {
    let receipt = frames
        .iter()
        .find(|f| f.command == Command::Receipt)
        .unwrap_or_else(|| panic!("no RECEIPT among {frames:?}"));
    receipt
        .header("message-id")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("a SEND's RECEIPT names its message: {receipt:?}"))
}

fn room_with(config: Config) -> SimulatedRoom {
    SimulatedRoom::with_settings(Settings {
        broker: config,
        ..Settings::default()
    })
}

room_test! {
fn a_repeated_post_is_answered_with_the_first_id_and_delivered_once() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.subscribe(1, "s", "/topic/chat");
    let first = respond(room.http(keyed_post("/topic/chat", "deploy finished", "k-1")));
    assert_eq!(first.status, 201, "{}", text(&first));
    assert_eq!(first.header("idempotent-replayed"), None);
    let id = body_json(&first)["id"].as_u64().unwrap();
    let again = respond(room.http(keyed_post("/topic/chat", "deploy finished", "k-1")));
    assert_eq!(again.status, 201, "{}", text(&again));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body, "the same answer as the first time");
    assert_eq!(body_json(&again), json!({ "id": id, "destination": "/topic/chat" }));
    let frames = room.take(1);
    assert_eq!(delivered(&frames), [id], "delivered once");
    assert_eq!(
        frames[0].header("idempotency-key"),
        Some("k-1"),
        "subscribers see the key, to dedupe on their side too"
    );
    let stored: Vec<u64> = room.history("/topic/chat").iter().map(|m| m.id).collect();
    assert_eq!(stored, [id], "archived once");
    // Another key is another publish.
    let other = respond(room.http(keyed_post("/topic/chat", "deploy finished", "k-2")));
    assert_eq!(other.header("idempotent-replayed"), None);
    assert!(body_json(&other)["id"].as_u64().unwrap() > id);
    assert_eq!(delivered(&room.take(1)).len(), 1);
}
}

room_test! {
fn a_repeated_send_gets_a_receipt_naming_the_first_message_and_delivers_nothing() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.subscribe(1, "s", "/topic/chat");
    room.connect(2, "");
    keyed_send(&mut room, 2, "/topic/chat", "hello", "send-1");
    let id = receipted(&room.take(2));
    assert_eq!(delivered(&room.take(1)), [id]);
    keyed_send(&mut room, 2, "/topic/chat", "hello", "send-1");
    assert_eq!(receipted(&room.take(2)), id, "the original's id");
    assert_eq!(delivered(&room.take(1)), Vec::<u64>::new(), "nothing twice");
    assert_eq!(room.history("/topic/chat").len(), 1);
    // From another connection too: a key names one publish in the room.
    room.connect(3, "");
    keyed_send(&mut room, 3, "/topic/chat", "hello", "send-1");
    assert_eq!(receipted(&room.take(3)), id);
    assert!(room.take(1).is_empty());
}
}

room_test! {
fn a_repeat_in_the_same_websocket_message_waits_for_the_first_ones_commit() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.subscribe(1, "s", "/topic/chat");
    room.connect(2, "");
    let send = "SEND\ndestination:/topic/chat\nidempotency-key:twice\nreceipt:r\n\nonce\0";
    room.raw(2, format!("{send}{send}").as_bytes());
    let receipts: Vec<Frame> = room.take(2);
    assert_eq!(receipts.len(), 2, "{receipts:?}");
    assert_eq!(receipted(&receipts[..1]), receipted(&receipts[1..]));
    assert_eq!(delivered(&room.take(1)).len(), 1);
    assert_eq!(room.store.idempotency_keys().len(), 1, "stored before the RECEIPTs");
}
}

room_test! {
fn a_repeat_to_a_queue_or_a_user_enqueues_and_delivers_nothing() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.subscribe(1, "q", "/queue/jobs");
    room.subscribe(1, "u", "/user/inbox");
    let first = respond(room.http(keyed_post("/queue/jobs", "job", "job-1")));
    let job = body_json(&first)["id"].as_u64().unwrap();
    let again = respond(room.http(keyed_post("/queue/jobs", "job", "job-1")));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(body_json(&again)["id"].as_u64(), Some(job));
    room.connect(2, "");
    keyed_send(&mut room, 2, "/user/s1/inbox", "hi", "dm-1");
    let dm = receipted(&room.take(2));
    keyed_send(&mut room, 2, "/user/s1/inbox", "hi", "dm-1");
    assert_eq!(receipted(&room.take(2)), dm);
    assert_eq!(delivered(&room.take(1)), [job, dm], "each once");
    assert_eq!(room.store.queued_ids(), Vec::<u64>::new(), "enqueued and consumed once");
}
}

room_test! {
fn a_key_reused_for_another_destination_is_refused() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.subscribe(1, "s", "/topic/b");
    respond(room.http(keyed_post("/topic/a", "first", "shared")));
    let refused = respond(room.http(keyed_post("/topic/b", "second", "shared")));
    assert_eq!(refused.status, 422, "{}", text(&refused));
    assert!(text(&refused).contains("/topic/a"), "{}", text(&refused));
    room.connect(2, "");
    keyed_send(&mut room, 2, "/topic/b", "second", "shared");
    let (message, detail) = error_of(&room.take(2));
    assert_eq!(message, "idempotency key reused");
    assert!(detail.contains("idempotency_window_ms"), "{detail}");
    assert!(room.take(1).is_empty(), "nothing reached /topic/b");
}
}

room_test! {
fn a_key_longer_than_its_limit_is_refused_naming_the_limit() {
    let mut room = SimulatedRoom::new();
    let long = "k".repeat(MAX_IDEMPOTENCY_KEY_BYTES + 1);
    let refused = respond(room.http(keyed_post("/topic/chat", "x", &long)));
    assert_eq!(refused.status, 400);
    assert!(text(&refused).contains(&MAX_IDEMPOTENCY_KEY_BYTES.to_string()), "{}", text(&refused));
    let longest = "k".repeat(MAX_IDEMPOTENCY_KEY_BYTES);
    assert_eq!(respond(room.http(keyed_post("/topic/chat", "x", &longest))).status, 201);
    room.connect(1, "");
    keyed_send(&mut room, 1, "/topic/chat", "x", &long);
    let (message, detail) = error_of(&room.take(1));
    assert_eq!(message, "bad idempotency key");
    assert!(detail.contains("1 to 200 bytes"), "{detail}");
    assert!(room.store.idempotency_keys().iter().all(|k| k.key.len() <= MAX_IDEMPOTENCY_KEY_BYTES));
}
}

room_test! {
fn a_key_is_forgotten_after_its_window_in_memory_and_in_storage() {
    let mut room = room_with(Config {
        idempotency_window_ms: 10_000,
        ..Config::default()
    });
    room.connect(1, "");
    room.subscribe(1, "s", "/topic/chat");
    let first = body_json(&respond(room.http(keyed_post("/topic/chat", "a", "k"))))["id"].as_u64();
    room.advance(9_999);
    let within = respond(room.http(keyed_post("/topic/chat", "a", "k")));
    assert_eq!(body_json(&within)["id"].as_u64(), first, "still within the window");
    room.advance(1);
    let after = respond(room.http(keyed_post("/topic/chat", "a", "k")));
    assert_eq!(after.header("idempotent-replayed"), None, "the window ran out");
    let second = body_json(&after)["id"].as_u64();
    assert!(second > first);
    assert_eq!(delivered(&room.take(1)).len(), 2);
    // The next keyed publish after another window deletes the expired keys from storage.
    respond(room.http(keyed_post("/topic/chat", "b", "other")));
    room.advance(10_000);
    respond(room.http(keyed_post("/topic/chat", "c", "last")));
    let stored: Vec<String> = room.store.idempotency_keys().into_iter().map(|k| k.key).collect();
    assert_eq!(stored, ["last"]);
}
}

room_test! {
fn at_most_the_budgeted_keys_are_held_oldest_forgotten_first() {
    let mut room = room_with(Config {
        budget: Budget {
            max_idempotency_keys: 3,
            ..Budget::default()
        },
        ..Config::default()
    });
    room.connect(1, "");
    room.subscribe(1, "s", "/topic/chat");
    for key in ["a", "b", "c", "d"] {
        respond(room.http(keyed_post("/topic/chat", key, key)));
    }
    let stored: Vec<String> = room.store.idempotency_keys().into_iter().map(|k| k.key).collect();
    assert_eq!(stored, ["b", "c", "d"], "the oldest gave way");
    assert_eq!(delivered(&room.take(1)).len(), 4);
    let kept = respond(room.http(keyed_post("/topic/chat", "d", "d")));
    assert_eq!(kept.header("idempotent-replayed"), Some("true"));
    let forgotten = respond(room.http(keyed_post("/topic/chat", "a", "a")));
    assert_eq!(forgotten.header("idempotent-replayed"), None, "a forgotten key publishes again");
    assert_eq!(delivered(&room.take(1)).len(), 1);
}
}

room_test! {
fn a_window_of_zero_keeps_no_keys() {
    let mut room = room_with(Config {
        idempotency_window_ms: 0,
        ..Config::default()
    });
    room.connect(1, "");
    room.subscribe(1, "s", "/topic/chat");
    respond(room.http(keyed_post("/topic/chat", "a", "k")));
    let again = respond(room.http(keyed_post("/topic/chat", "a", "k")));
    assert_eq!(again.header("idempotent-replayed"), None);
    assert_eq!(delivered(&room.take(1)).len(), 2);
    assert!(room.store.idempotency_keys().is_empty());
}
}

room_test! {
fn a_keyed_send_in_a_transaction_is_deduplicated_when_committed() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.subscribe(1, "s", "/topic/chat");
    room.connect(2, "");
    keyed_send(&mut room, 2, "/topic/chat", "before", "tx-key");
    let id = receipted(&room.take(2));
    room.frame(2, "BEGIN\ntransaction:t", "");
    room.frame(2, "SEND\ndestination:/topic/chat\ntransaction:t\nidempotency-key:tx-key", "again");
    room.frame(2, "SEND\ndestination:/topic/chat\ntransaction:t\nidempotency-key:tx-new", "new");
    room.frame(2, "SEND\ndestination:/topic/chat\ntransaction:t\nidempotency-key:tx-new", "new");
    assert_eq!(delivered(&room.take(1)), [id], "nothing before the COMMIT");
    room.frame(2, "COMMIT\ntransaction:t\nreceipt:c", "");
    let frames = room.take(1);
    let new = delivered(&frames);
    assert_eq!(new.len(), 1, "the repeat and the duplicate within it are dropped: {frames:?}");
    assert_eq!(frames[0].body, b"new");
    // A key over its limit is refused when staged.
    let long = "k".repeat(MAX_IDEMPOTENCY_KEY_BYTES + 1);
    room.frame(2, "BEGIN\ntransaction:u", "");
    room.frame(2, &format!("SEND\ndestination:/topic/chat\ntransaction:u\nidempotency-key:{long}"), "x");
    assert_eq!(error_of(&room.take(2)).0, "bad idempotency key");
}
}

room_test! {
fn a_commit_with_a_reused_key_is_refused_before_any_of_its_frames_is_delivered() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.subscribe(1, "a", "/topic/a");
    room.subscribe(1, "b", "/topic/b");
    room.connect(2, "");
    keyed_send(&mut room, 2, "/topic/a", "first", "shared");
    room.take(1);
    room.take(2);
    room.frame(2, "BEGIN\ntransaction:t", "");
    room.frame(2, "SEND\ndestination:/topic/a\ntransaction:t", "staged before");
    room.frame(2, "SEND\ndestination:/topic/b\ntransaction:t\nidempotency-key:fresh", "keyed");
    room.frame(2, "SEND\ndestination:/topic/b\ntransaction:t\nidempotency-key:shared", "reused");
    room.frame(2, "COMMIT\ntransaction:t", "");
    let (message, detail) = error_of(&room.take(2));
    assert_eq!(message, "idempotency key reused");
    assert!(detail.contains("/topic/a"), "{detail}");
    assert!(room.take(1).is_empty(), "a COMMIT is all or nothing");
    assert!(room.history("/topic/b").is_empty());
    assert!(room.store.idempotency_keys().iter().all(|k| k.key != "fresh"));
}
}

room_test! {
fn a_commit_using_one_key_for_two_destinations_is_refused_before_any_is_delivered() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.subscribe(1, "a", "/topic/a");
    room.subscribe(1, "b", "/topic/b");
    room.connect(2, "");
    room.frame(2, "BEGIN\ntransaction:t", "");
    room.frame(2, "SEND\ndestination:/topic/a\ntransaction:t\nidempotency-key:twice", "one");
    room.frame(2, "SEND\ndestination:/topic/a\ntransaction:t\nidempotency-key:twice", "repeat");
    room.frame(2, "SEND\ndestination:/topic/b\ntransaction:t\nidempotency-key:twice", "two");
    room.frame(2, "COMMIT\ntransaction:t", "");
    let (message, detail) = error_of(&room.take(2));
    assert_eq!(message, "idempotency key reused");
    assert!(detail.contains("/topic/a") && detail.contains("/topic/b"), "{detail}");
    assert!(room.take(1).is_empty(), "a COMMIT is all or nothing");
    assert!(room.store.idempotency_keys().is_empty());
}
}

#[test]
fn a_crash_between_a_post_and_its_retry_forgets_nothing() {
    let mut room = SimulatedRoom::new();
    let first = respond(room.http(keyed_post("/topic/chat", "a", "crash-1")));
    let id = body_json(&first)["id"].as_u64();
    room.restart();
    room.connect(1, "");
    room.subscribe(1, "s", "/topic/chat");
    let retry = respond(room.http(keyed_post("/topic/chat", "a", "crash-1")));
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(body_json(&retry)["id"].as_u64(), id);
    assert!(room.take(1).is_empty());
    assert_eq!(room.history("/topic/chat").len(), 1);
}

#[test]
fn a_crash_between_a_send_without_receipt_and_its_retry_forgets_nothing() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.subscribe(1, "s", "/topic/chat");
    room.connect(2, "");
    // No RECEIPT asked: the key is still committed with its event, not deferred.
    room.frame(
        2,
        "SEND\ndestination:/topic/chat\nidempotency-key:fire",
        "once",
    );
    let id = delivered(&room.take(1))[0];
    room.restart();
    room.connect(3, "");
    room.subscribe(3, "s", "/topic/chat");
    room.connect(4, "");
    keyed_send(&mut room, 4, "/topic/chat", "once", "fire");
    assert_eq!(receipted(&room.take(4)), id);
    assert!(room.take(3).is_empty(), "not delivered again");
    assert_eq!(room.history("/topic/chat").len(), 1);
}

#[test]
fn a_crash_forgets_no_queue_key() {
    let mut room = SimulatedRoom::new();
    let id = body_json(&respond(room.http(keyed_post("/queue/jobs", "job", "q-1"))))["id"].as_u64();
    room.restart();
    let retry = respond(room.http(keyed_post("/queue/jobs", "job", "q-1")));
    assert_eq!(body_json(&retry)["id"].as_u64(), id);
    room.connect(1, "");
    room.subscribe(1, "q", "/queue/jobs");
    assert_eq!(room.take(1).len(), 1, "one job");
}
