//! Webhooks: events from a durable outbox, stored with the commit of the event that caused
//! them, delivered by the alarm at least once and in order per room, signed as Standard
//! Webhooks sign, retried with backoff across evictions and crashes, and bounded.

mod support;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use stomp_rooms::room::http::encode_base64 as base64_encode;
use stomp_rooms::room::webhooks::{base64_decode, Batch, WebhookSettings};
use stomp_rooms::room::Settings;
use support::SimulatedRoom;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const GRACE: u64 = 30_000;

/// A room that sends every event, messages to `/topic/chat.*` included, to a receiver.
fn hooked_room(tune: impl FnOnce(&mut WebhookSettings)) -> SimulatedRoom {
    let mut webhooks = WebhookSettings {
        url: Some("https://receiver.example/hooks".into()),
        destinations: vec!["/topic/chat.*".into()],
        vacated_grace_ms: GRACE,
        ..WebhookSettings::default()
    };
    tune(&mut webhooks);
    webhooks.check().expect("valid webhook settings");
    let webhooks = webhooks.with_secret(Some(SECRET)).expect("valid secret");
    SimulatedRoom::with_settings(Settings {
        webhooks,
        ..Settings::default()
    })
}

/// What a receiver checks: the Standard Webhooks signature over id, timestamp and body.
fn signature_valid(batch: &Batch) -> bool {
    let header = |name: &str| {
        batch
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let key = base64_decode(SECRET.trim_start_matches("whsec_")).expect("base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    let signed = format!(
        "{}.{}.{}",
        header("webhook-id"),
        header("webhook-timestamp"),
        batch.body
    );
    mac.update(signed.as_bytes());
    let expected = format!("v1,{}", base64_encode(&mac.finalize().into_bytes()));
    header("webhook-signature")
        .split(' ')
        .any(|candidate| candidate == expected)
}

fn events_of(batches: &[Batch]) -> Vec<Value> {
    batches
        .iter()
        .flat_map(|batch| {
            let body: Value = serde_json::from_str(&batch.body).expect("a batch is JSON");
            body["events"].as_array().cloned().unwrap_or_default()
        })
        .collect()
}

/// The events the receiver acknowledged, each once (by id), in the room's order.
fn delivered(room: &SimulatedRoom) -> Vec<Value> {
    let mut events = events_of(&room.webhook_delivered);
    events.sort_by_key(|event| event["seq"].as_u64());
    events.dedup_by_key(|event| event["id"].clone());
    events
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|event| event["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

room_test! {
    fn a_visit_is_told_in_order_signed_with_stable_ids() {
        let mut room = hooked_room(|_| {});
        room.connect(1, "login:alice\n");
        room.publish(1, "/topic/chat.en", "hello");
        room.publish(1, "/topic/other", "not told");
        room.frame(1, "DISCONNECT", "");
        room.close(1);
        room.advance(GRACE + 5_000);
        assert!(!room.webhook_delivered.is_empty());
        assert!(room.webhook_posts.iter().all(signature_valid));
        let events = delivered(&room);
        assert_eq!(
            types(&events),
            ["room.occupied", "member.joined", "message", "member.left", "room.vacated"]
        );
        let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
        for event in &events {
            assert_eq!(event["room"], "lobby");
            assert_eq!(event["id"], format!("lobby.{}", event["seq"]));
        }
        assert_eq!(events[1]["data"]["name"], "alice", "a claimed login is a name");
        assert_eq!(events[1]["data"]["verified"], false);
        assert_eq!(events[2]["data"]["destination"], "/topic/chat.en");
        assert_eq!(events[2]["data"]["body"], "hello");
        assert_eq!(room.store.webhook_events(), vec![], "delivered: forgotten");
        let batch = &room.webhook_delivered[0];
        let header = |name: &str| batch.headers.iter().any(|(n, _)| n == name);
        assert!(header("webhook-id") && header("webhook-timestamp") && header("content-type"));
    }
}

room_test! {
    fn a_reconnect_within_the_grace_tells_no_vacancy() {
        let mut room = hooked_room(|_| {});
        room.connect(1, "");
        room.close(1);
        room.advance(GRACE / 2);
        room.connect(2, "");
        room.advance(GRACE * 2);
        assert_eq!(
            types(&delivered(&room)),
            ["room.occupied", "member.joined", "member.left", "member.joined"]
        );
        room.close(2);
        room.advance(GRACE + 5_000);
        assert_eq!(types(&delivered(&room)).last().map(String::as_str), Some("room.vacated"));
    }
}

room_test! {
    fn failed_deliveries_are_retried_with_growing_delays_until_every_event_arrives() {
        let mut room = hooked_room(|_| {});
        room.webhook_answers.extend([
            Ok(500),
            Err("connection reset".to_owned()),
            Ok(503),
            Ok(404),
        ]);
        room.connect(1, "");
        room.publish(1, "/topic/chat.en", "one");
        room.advance(60_000);
        room.publish(1, "/topic/chat.en", "two");
        room.close(1);
        room.advance(10 * 60_000);
        let events = delivered(&room);
        assert_eq!(
            types(&events),
            ["room.occupied", "member.joined", "message", "message", "member.left", "room.vacated"]
        );
        assert!(room.webhook_posts.len() >= 5, "four failures, then deliveries");
        let first_ids: Vec<&str> = room.webhook_posts[..5].iter().map(|b| b.id.as_str()).collect();
        assert!(
            first_ids.iter().all(|id| *id == first_ids[0]) || room.eviction == support::Eviction::EveryStep,
            "a retry resends the same batch while the room stays in memory: {first_ids:?}"
        );
        let failures: Vec<&str> = room
            .logs
            .iter()
            .map(|line| line.json.as_str())
            .filter(|json| json.contains("\"message\":\"webhook delivery failed\""))
            .collect();
        assert_eq!(failures.len(), 4, "one line per failed delivery");
        assert!(failures[0].contains("\"status\":500"), "{}", failures[0]);
        let stats = room.stats();
        assert_eq!(stats["webhook_failures"], 4);
        assert_eq!(stats["webhooks"]["outbox"], 0);
    }
}

#[test]
fn retries_back_off_exponentially_up_to_the_cap() {
    let mut room = hooked_room(|w| {
        w.retry_min_ms = 1_000;
        w.retry_max_ms = 8_000;
    });
    room.webhook_receiver_up = false;
    room.connect(1, "");
    room.advance(120_000);
    let times: Vec<u64> = room
        .webhook_posts
        .iter()
        .filter_map(|b| {
            let ts = b.headers.iter().find(|(n, _)| n == "webhook-timestamp")?;
            ts.1.parse().ok()
        })
        .collect();
    assert!(times.len() >= 8, "retried all along: {times:?}");
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Jittered into the upper half of 1, 2, 4, 8, 8… s (timestamps are whole seconds).
    assert!(gaps[..3].iter().all(|&gap| gap <= 4), "{gaps:?}");
    assert!(
        gaps[4..].iter().all(|&gap| (3..=9).contains(&gap)),
        "{gaps:?}"
    );
    assert!(
        room.store.webhook_events().len() == 2,
        "nothing lost while it fails"
    );
    room.webhook_receiver_up = true;
    room.advance(10_000);
    assert_eq!(types(&delivered(&room)), ["room.occupied", "member.joined"]);
}

room_test! {
    fn past_its_bound_the_outbox_drops_the_oldest_and_says_how_many() {
        let mut room = hooked_room(|w| w.max_outbox_events = 3);
        room.webhook_receiver_up = false;
        room.connect(1, "");
        for n in 0..5 {
            room.publish(1, "/topic/chat.en", &format!("m{n}"));
        }
        assert_eq!(room.store.webhook_events().len(), 3, "the bound holds in storage");
        room.webhook_receiver_up = true;
        room.advance(3_600_000);
        let events = delivered(&room);
        let bodies: Vec<&str> = events.iter().filter_map(|e| e["data"]["body"].as_str()).collect();
        assert_eq!(bodies, ["m2", "m3", "m4"], "the newest kept");
        let first: Value = serde_json::from_str(&room.webhook_delivered[0].body).unwrap();
        assert_eq!(first["dropped"], 4, "occupied, joined, m0, m1 dropped");
        let stats = room.stats();
        assert_eq!(stats["webhooks"]["dropped"], 4);
        room.publish(1, "/topic/chat.en", "later");
        room.advance(5_000);
        let last: Value = serde_json::from_str(&room.webhook_delivered.last().unwrap().body).unwrap();
        assert_eq!(last["dropped"], 0, "reported once");
    }
}

room_test! {
    fn batches_hold_at_most_their_events_and_bytes() {
        let mut room = hooked_room(|w| {
            w.max_batch_events = 2;
            w.max_batch_bytes = 4_096;
        });
        room.connect(1, "");
        room.publish(1, "/topic/chat.en", &"x".repeat(10_000));
        room.publish(1, "/topic/chat.en", "small");
        room.advance(60_000);
        assert!(room.webhook_delivered.iter().all(|b| b.body.len() <= 4_096));
        assert!(room.webhook_delivered.iter().all(|b| events_of(std::slice::from_ref(b)).len() <= 2));
        let events = delivered(&room);
        assert_eq!(events[2]["data"]["body_omitted"], true);
        assert_eq!(events[2]["data"]["body_bytes"], 10_000);
        assert_eq!(events[3]["data"]["body"], "small");
    }
}

#[test]
fn an_empty_room_evicted_in_its_grace_still_tells_its_vacancy_by_the_alarm() {
    let mut room = hooked_room(|_| {});
    room.connect(1, "");
    room.close(1);
    room.advance(2_000);
    room.hibernate();
    assert!(room.alarm.is_some(), "the alarm outlives the eviction");
    room.advance(GRACE);
    assert_eq!(
        types(&delivered(&room)).last().map(String::as_str),
        Some("room.vacated")
    );
}

#[test]
fn the_outbox_outlives_a_crash_and_the_members_it_closed_are_told_gone() {
    let mut room = hooked_room(|_| {});
    room.webhook_receiver_up = false;
    room.connect(1, "");
    room.connect(2, "");
    room.publish(1, "/topic/chat.en", "before the crash");
    room.advance(1_500);
    assert!(!room.webhook_posts.is_empty(), "tried, and failed");
    room.restart();
    room.webhook_receiver_up = true;
    // The alarm survives the crash: the retry wakes the room, which finds its members gone.
    room.advance(GRACE * 3);
    let events = delivered(&room);
    assert_eq!(
        types(&events),
        [
            "room.occupied",
            "member.joined",
            "member.joined",
            "message",
            "member.left",
            "member.left",
            "room.vacated"
        ]
    );
    assert!(room.webhook_posts.iter().all(signature_valid));
}

#[test]
fn webhook_rows_ride_the_events_own_commit_after_its_fan_out() {
    let mut room = hooked_room(|_| {});
    room.connect(1, "");
    room.subscribe(1, "0", "/topic/chat.en");
    room.connect(2, "");
    let commits_before = room.store.commits.len();
    room.take_log();
    room.publish(2, "/topic/chat.en", "hello");
    assert_eq!(room.store.commits.len(), commits_before + 1, "one commit");
    let rows = room.store.webhook_events();
    assert!(rows
        .iter()
        .any(|row| row.json.contains("\"type\":\"message\"")));
    assert_eq!(room.bodies(1), ["hello"], "the fan-out went out");
    let log = room.take_log();
    let sent_at = log
        .iter()
        .find_map(|call| match call {
            stomp_rooms::room::testing::SocketCall::Send { at, .. } => Some(*at),
            _ => None,
        })
        .expect("a send");
    let committed_at = *room.store.commits.last().unwrap();
    assert!(sent_at < committed_at, "the fan-out before the commit");
}

#[test]
fn without_a_url_nothing_is_kept() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.publish(1, "/topic/chat.en", "hello");
    room.close(1);
    room.advance(GRACE * 2);
    assert!(room.store.webhook_events().is_empty());
    assert!(room.webhook_posts.is_empty());
    assert!(room.stats()["webhooks"].is_null());
}

#[test]
fn a_refused_login_is_an_alert() {
    let mut room = hooked_room(|_| {}).with_credentials(&[("alice", "secret")]);
    room.open(1);
    room.raw(
        1,
        b"CONNECT\naccept-version:1.2\nlogin:alice\npasscode:wrong\n\n\0",
    );
    room.connect(2, "login:alice\npasscode:secret\n");
    room.advance(5_000);
    let events = delivered(&room);
    assert_eq!(
        types(&events),
        ["refusal", "room.occupied", "member.joined"]
    );
    assert_eq!(events[0]["data"]["reason"], "authentication failed");
    assert_eq!(events[0]["data"]["code"], 1008);
    assert_eq!(events[2]["data"]["login"], "alice");
    assert_eq!(events[2]["data"]["verified"], true);
    assert!(
        !events.iter().any(|e| e.to_string().contains("secret")),
        "no passcode told"
    );
}

#[test]
fn a_message_webhook_costs_no_commit_of_its_own_and_is_posted_only_once_stored() {
    let mut room = hooked_room(|_| {});
    room.webhook_receiver_up = false;
    room.connect(1, "");
    room.subscribe(1, "0", "/topic/chat.en");
    // The first message also stores the room's id ceiling: measure the second.
    room.frame(1, "SEND\ndestination:/topic/chat.en", "first");
    room.advance(1_500);
    room.take(1);
    let commits_before = room.store.commits.len();
    // No receipt: the message and its webhook row wait for the group commit together.
    room.frame(1, "SEND\ndestination:/topic/chat.en", "grouped");
    assert_eq!(room.bodies(1), ["grouped"], "the fan-out went out");
    assert_eq!(
        room.store.commits.len(),
        commits_before,
        "no commit of its own"
    );
    let posts_before = room.webhook_posts.len();
    room.advance(1_500);
    let posted = events_of(&room.webhook_posts[posts_before..]);
    let message = posted
        .iter()
        .find(|event| event["type"] == "message")
        .expect("the message event was posted");
    let stored = room.store.webhook_events();
    assert!(
        stored
            .iter()
            .any(|row| row.json.contains(message["id"].as_str().unwrap_or("none"))),
        "a posted event was stored first"
    );
    // A crash now loses nothing posted, so no id is given twice.
    room.restart();
    room.webhook_receiver_up = true;
    room.frame(1, "SEND\ndestination:/topic/chat.en", "after");
    room.advance(GRACE * 3);
    let events = delivered(&room);
    let mut ids: Vec<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    let count = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), count);
    assert!(events.iter().any(|e| e["data"]["body"] == "grouped"));
}
