//! Echo control: a subscription with `echo: false` never receives a message its own session
//! sent (nor, for a verified session, one its login sent from anywhere), live or replayed,
//! and still receives everyone else's. Each rule runs kept in memory and evicted after every
//! step: the choice is kept with the subscription, in the socket's session.

mod support;

use stomp_rooms::room::{Config, PublishRate, Settings};
use stomp_rooms::stomp::Command;
use support::http::{post, respond, with_header};
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
