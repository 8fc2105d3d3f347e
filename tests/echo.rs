//! Echo control: a subscription with `echo: false` never receives a message its own session
//! sent (nor, for a verified session, one its login sent from anywhere), live or replayed,
//! and still receives everyone else's. Each rule runs kept in memory and evicted after every
//! step: the choice is kept with the subscription, in the socket's session.

mod support;

use serde_json::Value;
use stomp_rooms::room::http::{HttpOutcome, HttpRequest};
use stomp_rooms::room::{Config, PublishRate, Settings};
use stomp_rooms::stomp::Command;
use support::http::{body_json, get, post, respond, text, with_header};
use support::SimulatedRoom;

fn with_history(history_limit: u32) -> Settings {
    Settings {
        broker: Config {
            history_limit,
            publish_rate: PublishRate::UNLIMITED,
            ..Config::default()
        },
        ..Settings::default()
    }
}

fn subscribe_without_echo(room: &mut SimulatedRoom, conn: u64, destination: &str) {
    room.frame(
        conn,
        &format!("SUBSCRIBE\nid:s\ndestination:{destination}\necho:false"),
        "",
    );
}

room_test! {
fn an_echo_off_subscriber_gets_everyone_elses_messages_and_never_its_own() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "login:alice\n");
    room.connect(2, "");
    // A claimed login proves nothing: another session claiming it is someone else.
    room.connect(3, "login:alice\n");
    subscribe_without_echo(&mut room, 1, "/topic/chat");
    room.subscribe(2, "s", "/topic/chat");
    room.publish(1, "/topic/chat", "from 1");
    room.publish(2, "/topic/chat", "from 2");
    room.publish(3, "/topic/chat", "from 3 claiming alice");
    room.publish(1, "/topic/chat", "from 1 again");
    assert_eq!(room.bodies(1), ["from 2", "from 3 claiming alice"]);
    assert_eq!(
        room.bodies(2),
        ["from 1", "from 2", "from 3 claiming alice", "from 1 again"],
        "echo is the subscription's choice: others with it on get their own"
    );
}
}

room_test! {
fn a_verified_echo_off_subscriber_gets_nothing_its_login_sent_from_any_session_or_http() {
    let mut room = SimulatedRoom::new().with_credentials(&[("alice", "a"), ("bob", "b")]);
    room.connect(1, "login:alice\npasscode:a\n");
    room.connect(2, "login:alice\npasscode:a\n");
    room.connect(3, "login:bob\npasscode:b\n");
    subscribe_without_echo(&mut room, 1, "/topic/chat");
    room.publish(1, "/topic/chat", "alice, this tab");
    room.publish(2, "/topic/chat", "alice, another tab");
    let alice_over_http = with_header(
        post("/topic/chat", "alice over http"),
        "authorization",
        "Basic YWxpY2U6YQ==",
    );
    assert_eq!(respond(room.http(alice_over_http)).status, 201);
    room.publish(3, "/topic/chat", "bob");
    assert_eq!(room.bodies(1), ["bob"]);
}
}

room_test! {
fn echo_true_or_no_header_delivers_a_subscribers_own_messages() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.frame(1, "SUBSCRIBE\nid:a\ndestination:/topic/chat\necho:TRUE", "");
    room.subscribe(1, "b", "/topic/chat");
    room.publish(1, "/topic/chat", "mine");
    assert_eq!(room.bodies(1), ["mine", "mine"]);
}
}

room_test! {
fn lenient_spellings_of_false_turn_echo_off_and_other_values_are_refused() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    for (n, value) in ["false", "False", "0", "no", " off "].into_iter().enumerate() {
        room.frame(1, &format!("SUBSCRIBE\nid:{n}\ndestination:/topic/chat\necho:{value}"), "");
    }
    room.publish(1, "/topic/chat", "mine");
    assert!(room.bodies(1).is_empty());
    room.frame(1, "SUBSCRIBE\nid:x\ndestination:/topic/chat\necho:maybe", "");
    let frames = room.take(1);
    assert_eq!(frames[0].command, Command::Error);
    assert_eq!(frames[0].header("message"), Some("invalid echo header"));
}
}

room_test! {
fn echo_off_holds_on_replay() {
    let mut room = SimulatedRoom::with_settings(with_history(10));
    room.connect(1, "");
    room.connect(2, "");
    room.publish(1, "/topic/chat", "1 mine");
    room.publish(2, "/topic/chat", "2 theirs");
    room.publish(1, "/topic/chat", "3 mine");
    room.publish(2, "/topic/chat", "4 theirs");
    room.frame(
        1,
        "SUBSCRIBE\nid:s\ndestination:/topic/chat\necho:false\nreplay-last:10",
        "",
    );
    let replayed = room.take(1);
    let bodies: Vec<&[u8]> = replayed.iter().map(|f| f.body.as_slice()).collect();
    assert_eq!(bodies, [b"2 theirs".as_slice(), b"4 theirs"]);
    assert!(replayed.iter().all(|f| f.header("replayed") == Some("true")));
}
}

room_test! {
fn echo_off_holds_for_user_destinations() {
    let mut room = SimulatedRoom::new().with_credentials(&[("alice", "a"), ("bob", "b")]);
    room.connect(1, "login:alice\npasscode:a\n");
    room.connect(2, "login:bob\npasscode:b\n");
    subscribe_without_echo(&mut room, 1, "/user/inbox");
    room.publish(1, "/user/alice/inbox", "a note to self");
    room.publish(2, "/user/alice/inbox", "from bob");
    assert_eq!(room.bodies(1), ["from bob"]);
}
}

room_test! {
fn a_queue_consumer_with_echo_off_still_gets_its_own_message_so_none_is_lost() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    subscribe_without_echo(&mut room, 1, "/queue/jobs");
    room.publish(1, "/queue/jobs", "my job");
    assert_eq!(room.bodies(1), ["my job"]);
}
}

// ---- over HTTP: polls and event streams with ?echo=false, for verified readers -------------

const ALICE_BASIC: &str = "Basic YWxpY2U6YQ==";

fn as_alice(request: HttpRequest) -> HttpRequest {
    with_header(request, "authorization", ALICE_BASIC)
}

/// alice and bob connected over STOMP, and three messages: alice's, bob's, alice's.
fn alice_and_bob_chatting() -> SimulatedRoom {
    let mut room = SimulatedRoom::new().with_credentials(&[("alice", "a"), ("bob", "b")]);
    room.connect(1, "login:alice\npasscode:a\n");
    room.connect(2, "login:bob\npasscode:b\n");
    room.publish(1, "/topic/chat", "alice 1");
    room.publish(2, "/topic/chat", "bob 1");
    room.publish(1, "/topic/chat", "alice 2");
    room
}

fn bodies_of(answer: &Value) -> Vec<&str> {
    answer["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect()
}

room_test! {
fn a_verified_reader_polling_with_echo_false_skips_its_own_messages_and_goes_on_past_them() {
    let mut room = alice_and_bob_chatting();
    let answer = body_json(&respond(room.http(as_alice(get("/topic/chat?after=0&echo=false")))));
    assert_eq!(bodies_of(&answer), ["bob 1"]);
    let next_after = answer["next_after"].as_u64().unwrap();
    assert_eq!(next_after, 3, "past alice's own last message");
    let page = body_json(&respond(room.http(as_alice(get("/topic/chat?last=1&echo=false")))));
    assert!(bodies_of(&page).is_empty(), "a page of only her own is answered, empty");
    assert_eq!(page["next_after"], 3);
    let held = room.http(as_alice(get(&format!("/topic/chat?after={next_after}&wait=30&echo=false"))));
    assert!(matches!(held, Some(HttpOutcome::Wait { .. })), "{held:?}");
    room.publish(1, "/topic/chat", "alice 3");
    assert!(room.answers().is_empty(), "her own message does not answer her poll");
    room.publish(2, "/topic/chat", "bob 2");
    let answers = room.answers();
    assert_eq!(answers.len(), 1);
    assert_eq!(bodies_of(&body_json(&answers[0].1)), ["bob 2"]);
}
}

room_test! {
fn a_verified_reader_streaming_with_echo_false_is_sent_everyone_elses_events_only() {
    let mut room = alice_and_bob_chatting();
    let request = with_header(
        with_header(as_alice(get("/topic/chat?echo=false")), "accept", "text/event-stream"),
        "last-event-id",
        "0",
    );
    let Some(HttpOutcome::Stream { listener, head, .. }) = room.http(request) else {
        panic!("expected a stream");
    };
    let start = text(&head);
    assert!(start.contains("\"body\":\"bob 1\""), "{start}");
    assert!(!start.contains("alice"), "{start}");
    room.publish(1, "/topic/chat", "alice 3");
    room.publish(2, "/topic/chat", "bob 2");
    let live = room.streamed(listener);
    assert!(live.contains("\"body\":\"bob 2\""), "{live}");
    assert!(!live.contains("alice 3"), "{live}");
}
}

room_test! {
fn echo_false_over_http_needs_a_verified_reader_and_a_true_or_false() {
    let mut room = SimulatedRoom::new();
    let unverified = respond(room.http(get("/topic/chat?echo=false&login=alice")));
    assert_eq!(unverified.status, 400);
    assert!(text(&unverified).contains("verified"), "{}", text(&unverified));
    let invalid = respond(room.http(get("/topic/chat?echo=maybe")));
    assert_eq!(invalid.status, 400);
    assert_eq!(respond(room.http(get("/topic/chat?echo=true"))).status, 200);
}
}
