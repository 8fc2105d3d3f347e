//! Webhooks: events from a durable outbox, stored with the commit of the event that caused
//! them, delivered by the alarm at least once and in order per room, signed as Standard
//! Webhooks sign, retried with backoff across evictions and crashes, and bounded.

mod support;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use stomp_rooms::room::base64;
use stomp_rooms::room::webhooks::{Batch, WebhookSettings};
use stomp_rooms::room::webhooks::{MAX_REFUSALS_PER_WINDOW, REFUSAL_WINDOW_MS};
use stomp_rooms::room::Counter;
use stomp_rooms::room::Settings;
use support::http::{post, respond};
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
    let key =
        base64::decode(SECRET.trim_start_matches("whsec_"), base64::STANDARD).expect("base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    let signed = format!(
        "{}.{}.{}",
        header("webhook-id"),
        header("webhook-timestamp"),
        batch.body
    );
    mac.update(signed.as_bytes());
    let expected = format!("v1,{}", base64::encode(&mac.finalize().into_bytes()));
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
            first_ids.iter().all(|id| *id == first_ids[0]),
            "a retry resends the same batch, evicted or not: {first_ids:?}"
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

room_test! {
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
        assert_eq!(events[0]["data"]["reason"], "authentication");
        assert_eq!(events[0]["data"]["session"], format!("s{}", room.conn(1)));
        assert_eq!(events[0]["data"]["verified"], false);
        assert_eq!(events[2]["data"]["login"], "alice");
        assert_eq!(events[2]["data"]["verified"], true);
        assert!(
            !events.iter().any(|e| e.to_string().contains("secret")),
            "no passcode told"
        );
    }
}

room_test! {
    fn a_refusal_event_is_the_refusal_the_logs_and_stats_count_with_its_verified_login() {
        let mut room = hooked_room(|_| {}).with_credentials(&[("alice", "secret")]);
        room.connect(1, "login:alice\npasscode:secret\n");
        room.frame(1, "SEND\ndestination:nowhere-words-42", "body-words-42");
        room.advance(5_000);
        let events = delivered(&room);
        let refusal = events
            .iter()
            .find(|e| e["type"] == "refusal")
            .expect("a refusal event");
        let stats = room.stats();
        let counted: Vec<&String> = stats["refusals"].as_object().unwrap().keys().collect();
        assert_eq!(counted, ["destination"]);
        assert_eq!(refusal["data"]["reason"], "destination", "{refusal}");
        assert_eq!(refusal["data"]["session"], format!("s{}", room.conn(1)));
        assert_eq!(refusal["data"]["verified"], true);
        assert_eq!(refusal["data"]["login"], "alice");
        let all = serde_json::to_string(&events).unwrap();
        assert!(!all.contains("words-42"), "never the client's words: {all}");
    }
}

room_test! {
    fn a_refused_http_request_is_an_alert_without_the_clients_address() {
        let mut room = hooked_room(|_| {}).with_credentials(&[("alice", "secret")]);
        let mut request = post("/topic/chat.en", "hello");
        request.peer.address = Some("198.51.100.7".to_owned());
        assert_eq!(respond(room.http(request)).status, 401);
        room.advance(5_000);
        let events = delivered(&room);
        assert_eq!(types(&events), ["refusal"]);
        assert_eq!(events[0]["data"]["reason"], "authentication");
        assert!(events[0]["data"].get("session").is_none(), "no session over HTTP");
        assert!(!events[0].to_string().contains("198.51.100.7"), "no address");
    }
}

/// One address opens socket after socket past `max_connections_per_address`.
fn flood(room: &mut SimulatedRoom, from: u64, count: u64) {
    for client in from..from + count {
        room.open_from(client, Some("203.0.113.9"));
    }
}

#[test]
fn a_flood_of_refused_sockets_costs_no_commit_each_and_is_capped_with_a_count() {
    let mut room = hooked_room(|_| {});
    room.settings.broker.max_connections_per_address = 1;
    room.open_from(1, Some("203.0.113.9"));
    room.raw(1, b"CONNECT\naccept-version:1.2\n\n\0");
    let commits = room.store.commits.len();
    flood(&mut room, 2, 30);
    assert_eq!(
        room.store.commits.len(),
        commits,
        "no commit per refused socket"
    );
    assert!(room.failures.is_empty());
    room.advance(5_000);
    let events = delivered(&room);
    let refusals: Vec<&Value> = events.iter().filter(|e| e["type"] == "refusal").collect();
    assert_eq!(refusals.len(), MAX_REFUSALS_PER_WINDOW as usize);
    assert_eq!(refusals[0]["data"]["reason"], "too_many_connections");
    assert_eq!(refusals[0]["data"]["limit"], "max_connections_per_address");
    assert!(
        refusals[0]["data"].get("session").is_none(),
        "refused before it was one"
    );
    assert!(
        events.iter().any(|e| e["type"] == "member.joined"),
        "the events that matter stay"
    );
    room.advance(REFUSAL_WINDOW_MS);
    flood(&mut room, 100, 1);
    room.advance(5_000);
    let events = delivered(&room);
    let last = events.last().unwrap();
    assert_eq!(last["type"], "refusal");
    assert_eq!(
        last["data"]["suppressed"],
        30 - u64::from(MAX_REFUSALS_PER_WINDOW)
    );
    assert!(!serde_json::to_string(&events)
        .unwrap()
        .contains("203.0.113.9"));
    assert_eq!(
        room.stats()["refusals"]["too_many_connections"],
        31,
        "all counted"
    );
}

#[test]
fn turned_off_webhooks_forget_what_they_stored() {
    let mut room = hooked_room(|_| {});
    room.webhook_receiver_up = false;
    room.connect(1, "");
    room.advance(1_500);
    assert!(!room.store.webhook_events().is_empty(), "tried, and failed");
    assert!(room.store.counter(Counter::WebhookAttempts) > 0);
    let hooked = room.settings.clone();
    room.redeploy(Settings::default());
    room.connect(2, "");
    room.hibernate();
    assert_eq!(room.store.webhook_events(), vec![], "the outbox forgotten");
    for counter in [
        Counter::WebhookAttempts,
        Counter::WebhookOccupied,
        Counter::WebhookRetryAt,
    ] {
        assert_eq!(room.store.counter(counter), 0, "{counter:?}");
    }
    room.redeploy(hooked);
    room.webhook_receiver_up = true;
    room.connect(3, "");
    room.advance(5_000);
    let events = delivered(&room);
    assert_eq!(
        types(&events),
        ["room.occupied", "member.joined"],
        "nothing from before: no member 1 leaves"
    );
    assert_eq!(events[1]["data"]["session"], format!("s{}", room.conn(3)));
}

#[test]
fn an_answer_to_a_batch_no_longer_in_flight_frees_no_way_for_a_second_post() {
    let mut room = hooked_room(|_| {});
    room.webhook_hold = true;
    room.connect(1, "");
    room.advance(2_000);
    assert_eq!(room.webhook_held.len(), 1);
    let stale = room.webhook_held.remove(0);
    // Rebuilt from storage: the batch in flight is forgotten, and goes again.
    room.hibernate();
    room.publish(1, "/topic/chat.en", "after");
    room.advance(2_000);
    assert_eq!(room.webhook_held.len(), 1, "the batch again, in flight");
    room.answer_webhook(&stale, Ok(200));
    room.advance(30_000);
    assert_eq!(
        room.webhook_held.len(),
        1,
        "no second POST while one is under way"
    );
    let current = room.webhook_held.remove(0);
    room.answer_webhook(&current, Ok(200));
    room.advance(5_000);
    assert!(room.webhook_held.is_empty(), "all delivered");
    assert_eq!(room.store.webhook_events(), vec![]);
}

#[test]
fn a_bad_url_is_told_by_its_origin_alone() {
    let settings = WebhookSettings {
        url: Some("https://user:pw-secret@hooks.example/in/token-secret x".into()),
        ..WebhookSettings::default()
    };
    let error = settings.check().expect_err("whitespace: not a URL");
    assert!(error.contains("https://hooks.example"), "{error}");
    assert!(!error.contains("secret"), "{error}");
}

room_test! {
    fn a_retry_carries_the_same_events_under_the_same_webhook_id_across_evictions() {
        let mut room = hooked_room(|_| {});
        room.webhook_answers.push_back(Ok(500));
        room.connect(1, "");
        room.advance(1_500);
        assert_eq!(room.webhook_posts.len(), 1, "the first POST failed");
        room.publish(1, "/topic/chat.en", "after the failure");
        room.advance(60_000);
        let (failed, retry) = (&room.webhook_posts[0], &room.webhook_posts[1]);
        assert_eq!(retry.id, failed.id);
        assert_eq!(events_of(std::slice::from_ref(retry)), events_of(std::slice::from_ref(failed)));
        assert_eq!(
            types(&delivered(&room)),
            ["room.occupied", "member.joined", "message"],
            "the later event goes next"
        );
    }
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

#[test]
fn a_full_batch_waiting_for_its_alarm_asks_for_the_alarm_once_not_per_message() {
    let mut room = hooked_room(|w| w.max_batch_events = 5);
    room.connect(1, "");
    room.subscribe(1, "0", "/topic/chat.en");
    room.frame(1, "SEND\ndestination:/topic/chat.en", "first");
    let sets_before = room.alarm_sets;
    // Time stands still: the alarm, due at once for a full batch, has no chance to fire.
    for n in 0..50 {
        room.frame(1, "SEND\ndestination:/topic/chat.en", &n.to_string());
    }
    assert!(
        room.alarm_sets - sets_before <= 2,
        "setting the alarm is a storage write: {} for 50 messages",
        room.alarm_sets - sets_before
    );
    room.advance(10_000);
    let bodies: Vec<Value> = delivered(&room)
        .into_iter()
        .filter(|e| e["type"] == "message")
        .map(|e| e["data"]["body"].clone())
        .collect();
    assert_eq!(
        bodies.len(),
        51,
        "every message's event went out once the alarm fired"
    );
}
