//! What a room tells its operator: the JSON lines it logs (connections opened and closed,
//! refusals naming the limit and the address, storage failures), the level that filters them,
//! what they never carry (bodies, tokens, passcodes), and the refusal counts `/stats` keeps
//! across evictions, behind `STOMP_STATS_TOKEN` when it is set.

mod support;

use std::rc::Rc;

use serde_json::{json, Value};
use stomp_rooms::room::auth::{Gate, TokenRules};
use stomp_rooms::room::log::{Level, LogEvent, Refusal};
use stomp_rooms::room::{Config, Credentials, Settings};
use stomp_rooms::stomp::Limits;
use support::http::{body_json, get, post, respond, text, with_header};
use support::tokens::{hs256, verifier};
use support::SimulatedRoom;

const ADDRESS: &str = "203.0.113.7";

/// Each line the room logged, parsed: every one is a single JSON object.
fn lines(room: &SimulatedRoom) -> Vec<Value> {
    room.logs
        .iter()
        .map(|line| {
            assert!(!line.json.contains('\n'), "one line: {}", line.json);
            let parsed: Value = serde_json::from_str(&line.json)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", line.json));
            assert_eq!(parsed["level"], line.level.as_str(), "{}", line.json);
            parsed
        })
        .collect()
}

fn with_message<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["message"] == message).collect()
}

fn small_frames() -> Settings {
    Settings {
        broker: Config {
            limits: Limits {
                max_frame_bytes: 256,
                ..Limits::default()
            },
            ..Config::default()
        },
        ..Settings::default()
    }
}

room_test! {
fn a_frame_over_max_frame_bytes_is_logged_as_a_refusal_naming_the_limit_and_the_address() {
    let mut room = SimulatedRoom::with_settings(small_frames());
    room.open_from(1, Some(ADDRESS));
    room.raw(1, b"CONNECT\naccept-version:1.2\n\n\0");
    room.take(1);
    room.advance(1_500);
    let big = "x".repeat(300);
    room.frame(1, "SEND\ndestination:/topic/chat", &big);
    let lines = lines(&room);
    let refused = with_message(&lines, "refused");
    assert_eq!(refused.len(), 1, "{lines:?}");
    let refused = refused[0];
    assert_eq!(refused["level"], "warn");
    assert_eq!(refused["room"], "lobby");
    assert_eq!(refused["reason"], "too_large");
    assert_eq!(refused["limit"], "max_frame_bytes");
    assert_eq!(refused["address"], ADDRESS);
    let closed = with_message(&lines, "connection closed");
    assert_eq!(closed.len(), 1, "{lines:?}");
    assert_eq!(closed[0]["level"], "info");
    assert_eq!(closed[0]["room"], "lobby");
    assert_eq!(closed[0]["transport"], "websocket");
    assert_eq!(closed[0]["address"], ADDRESS);
    assert_eq!(closed[0]["verified"], false);
    assert_eq!(closed[0]["conn"], refused["conn"]);
    assert_eq!(closed[0]["reason"], "refused");
    assert_eq!(closed[0]["refusal"], "too_large");
    assert_eq!(closed[0]["duration_ms"], 1_500);
    assert!(!room.logs.iter().any(|l| l.json.contains(&big)), "no body is logged");
}
}

room_test! {
fn a_connection_s_close_says_why_and_how_long_it_lived() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.connect(2, "");
    room.advance(700);
    room.frame(1, "DISCONNECT", "");
    room.advance(300);
    room.close(2);
    let lines = lines(&room);
    let closed = with_message(&lines, "connection closed");
    let reasons: Vec<(&Value, &Value)> = closed
        .iter()
        .map(|l| (&l["reason"], &l["duration_ms"]))
        .collect();
    assert_eq!(
        reasons,
        vec![(&json!("disconnect"), &json!(700)), (&json!("socket_closed"), &json!(1_000))]
    );
}
}

room_test! {
fn at_info_a_connection_is_one_line_when_it_ends_and_its_opening_is_a_debug_line() {
    let mut room = SimulatedRoom::new();
    room.open_from(1, Some(ADDRESS));
    room.raw(1, b"CONNECT\naccept-version:1.2\n\n\0");
    room.take(1);
    assert!(
        lines(&room).is_empty(),
        "nothing at info while it is open (a storm of connects prints nothing): {:?}",
        lines(&room)
    );
    room.advance(250);
    room.close(1);
    let lines = lines(&room);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["message"], "connection closed");
    assert_eq!(lines[0]["address"], ADDRESS);
    assert_eq!(lines[0]["duration_ms"], 250);
    assert_eq!(LogEvent::Connected {
        conn: 1,
        transport: stomp_rooms::room::log::Transport::WebSocket,
        address: None,
        verified: false,
        login: None,
    }.level(), Level::Debug);
}
}

room_test! {
fn a_bad_destination_is_a_destination_refusal() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.frame(1, "SEND\ndestination:/nowhere/secret-name", "body");
    let lines = lines(&room);
    let refused = with_message(&lines, "refused");
    assert_eq!(refused.len(), 1, "{lines:?}");
    assert_eq!(refused[0]["reason"], "destination");
    assert!(refused[0].get("limit").is_none());
    assert!(!room.logs.iter().any(|l| l.json.contains("secret-name")), "the client's words are not logged");
}
}

room_test! {
fn no_line_carries_a_body_a_token_or_a_passcode() {
    let mut room = SimulatedRoom::new().with_authenticator(Rc::new(Gate {
        tokens: Some(verifier(TokenRules::default())),
        users: Some(Credentials {
            users: [("carol".to_owned(), "hunter2-passcode".to_owned())].into(),
        }),
    }));
    let token = hs256(&json!({"sub": "alice", "exp": room.now / 1000 + 600}));
    // A wrong passcode, then a good token in the Authorization header.
    let refused = room.connect_with(1, "accept-version:1.2\nlogin:carol\npasscode:wrong-passcode-9");
    assert_eq!(refused.header("message"), Some("authentication failed"));
    room.connect_with(2, &format!("accept-version:1.2\nAuthorization: Bearer {token}"));
    room.connect_with(3, "accept-version:1.2\nlogin:carol\npasscode:hunter2-passcode");
    room.frame(2, "SEND\ndestination:/topic/chat\nx-secret-header:header-value-7", "body-words-42");
    let over_http = with_header(post("/topic/chat", "http-body-99"), "authorization", &format!("Bearer {token}"));
    assert_eq!(respond(room.http(over_http)).status, 201);
    let bad_basic = with_header(get("/topic/chat"), "authorization", "Basic Y2Fyb2w6d3Jvbmc=");
    assert_eq!(respond(room.http(bad_basic)).status, 401);
    let all = room.logs.iter().map(|l| l.json.as_str()).collect::<Vec<_>>().join("\n");
    for secret in [
        token.as_str(),
        "hunter2-passcode",
        "wrong-passcode-9",
        "body-words-42",
        "http-body-99",
        "header-value-7",
        "Y2Fyb2w6d3Jvbmc",
    ] {
        assert!(!all.contains(secret), "{secret} logged in {all}");
    }
    room.close(2);
    room.close(3);
    let lines = lines(&room);
    let closed = with_message(&lines, "connection closed");
    // A verified login is named; an unverified one would be only a display name.
    let named: Vec<(&Value, &Value)> = closed.iter().map(|l| (&l["login"], &l["verified"])).collect();
    assert_eq!(
        named,
        vec![
            (&Value::Null, &json!(false)),
            (&json!("alice"), &json!(true)),
            (&json!("carol"), &json!(true)),
        ]
    );
    let refusals: Vec<&Value> = with_message(&lines, "refused").iter().map(|l| &l["reason"]).collect();
    assert_eq!(refusals, vec!["authentication", "authentication"]);
}
}

room_test! {
fn a_claimed_login_is_not_logged() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "login:mallory-claims-this");
    room.close(1);
    let lines = lines(&room);
    let closed = with_message(&lines, "connection closed");
    assert_eq!(closed[0]["verified"], false);
    assert!(closed[0].get("login").is_none(), "{:?}", closed[0]);
    assert!(!room.logs.iter().any(|l| l.json.contains("mallory")), "{:?}", room.logs);
}
}

fn at_level(level: Level) -> SimulatedRoom {
    let mut room = SimulatedRoom::with_settings(Settings {
        log_level: level,
        ..small_frames()
    });
    room.connect(1, "");
    room.frame(1, "SEND\ndestination:/topic/chat", &"x".repeat(300));
    room
}

fn messages(room: &SimulatedRoom) -> Vec<String> {
    lines(room)
        .iter()
        .map(|l| l["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

room_test! {
fn the_level_keeps_lines_at_it_and_above() {
    assert_eq!(
        messages(&at_level(Level::Debug)),
        ["socket opened", "connection opened", "refused", "connection closed"]
    );
    assert_eq!(messages(&at_level(Level::Info)), ["refused", "connection closed"]);
    assert_eq!(messages(&at_level(Level::Warn)), ["refused"]);
    assert!(messages(&at_level(Level::Error)).is_empty());
    assert!(messages(&at_level(Level::Off)).is_empty());
}
}

#[test]
fn the_level_is_a_setting_with_info_by_default() {
    let settings: Settings = serde_json::from_str(r#"{"log_level":"warn"}"#).unwrap();
    assert_eq!(settings.log_level, Level::Warn);
    assert_eq!(Settings::default().log_level, Level::Info);
    assert!(serde_json::from_str::<Settings>(r#"{"log_level":"loud"}"#).is_err());
}

room_test! {
fn a_full_room_and_an_address_over_its_cap_are_refused_before_they_open() {
    let mut room = SimulatedRoom::with_config(Config {
        max_connections: 2,
        max_connections_per_address: 1,
        ..Config::default()
    });
    room.open_from(1, Some(ADDRESS));
    room.open_from(2, Some(ADDRESS));
    room.open_from(3, Some("198.51.100.1"));
    room.open_from(4, Some("198.51.100.2"));
    let lines = lines(&room);
    let refused: Vec<(&Value, &Value, &Value)> = with_message(&lines, "refused")
        .iter()
        .map(|l| (&l["reason"], &l["limit"], &l["address"]))
        .collect();
    assert_eq!(
        refused,
        vec![
            (&json!("too_many_connections"), &json!("max_connections_per_address"), &json!(ADDRESS)),
            (&json!("room_full"), &json!("max_connections"), &json!("198.51.100.2")),
        ]
    );
    let stats = room.stats();
    assert_eq!(stats["refusals"], json!({"room_full": 1, "too_many_connections": 1}));
}
}

room_test! {
fn refusals_are_counted_by_reason_and_kept_across_evictions() {
    let mut room = SimulatedRoom::with_settings(small_frames());
    for client in 1..=3 {
        room.connect(client, "");
        room.frame(client, "SEND\ndestination:/topic/chat", &"x".repeat(300));
    }
    room.connect(4, "");
    room.frame(4, "SEND\ndestination:/nowhere", "");
    let over = post("/topic/chat", &"y".repeat(300));
    assert_eq!(respond(room.http(over)).status, 413);
    room.hibernate();
    let stats = room.stats();
    assert_eq!(stats["refusals"], json!({"destination": 1, "too_large": 4}));
    // And again after the room is evicted with nothing else happening.
    room.advance(60_000);
    room.hibernate();
    assert_eq!(room.stats()["refusals"], json!({"destination": 1, "too_large": 4}));
}
}

room_test! {
fn a_count_is_stored_by_the_alarm_when_no_commit_carries_it() {
    let mut room = SimulatedRoom::with_settings(small_frames());
    room.connect(1, "");
    room.frame(1, "SEND\ndestination:/topic/chat", &"x".repeat(300));
    let stored = |room: &SimulatedRoom| {
        room.store
            .counter(stomp_rooms::room::Counter::Refusals(Refusal::TooLarge))
    };
    // Run the alarm as the platform would, then crash: what the alarm stored stays.
    room.advance(10_000);
    assert_eq!(stored(&room), 1);
    room.restart();
    assert_eq!(room.stats()["refusals"]["too_large"], 1);
}
}

room_test! {
fn an_http_refusal_is_logged_with_its_limit_and_address() {
    let mut room = SimulatedRoom::new();
    let mut over = post("/topic/chat", &"y".repeat(2 * 1024 * 1024));
    over.peer.address = Some(ADDRESS.to_owned());
    assert_eq!(respond(room.http(over)).status, 413);
    let lines = lines(&room);
    let refused = with_message(&lines, "refused");
    assert_eq!(refused.len(), 1, "{lines:?}");
    assert_eq!(refused[0]["transport"], "http");
    assert_eq!(refused[0]["reason"], "too_large");
    assert_eq!(refused[0]["limit"], "max_body_bytes");
    assert_eq!(refused[0]["address"], ADDRESS);
    assert_eq!(refused[0]["room"], "lobby");
}
}

#[test]
fn a_failed_commit_is_logged_as_an_error_with_storage_s_words_alone() {
    support::with_eviction(support::Eviction::Never, || {
        let mut room = SimulatedRoom::new();
        room.connect(1, "");
        room.store.fail_commits = 1;
        room.frame(
            1,
            "SEND\ndestination:/queue/jobs\nreceipt:r1",
            "queued-body-5",
        );
        assert_eq!(room.failures.len(), 1);
        let lines = lines(&room);
        let failed = with_message(&lines, "storage failed");
        assert_eq!(failed.len(), 1, "{lines:?}");
        assert_eq!(failed[0]["level"], "error");
        assert!(failed[0]["error"].is_string());
        let closed = with_message(&lines, "connection closed");
        assert_eq!(closed[0]["reason"], "storage_failure");
        assert!(!room.logs.iter().any(|l| l.json.contains("queued-body-5")));
    });
}

room_test! {
fn the_stats_token_alone_reads_the_counters_when_it_is_set() {
    let mut room = SimulatedRoom::new();
    // Without it, open rooms' counters are open (as before).
    assert_eq!(room.stats_request(get("/stats")).status, 200);
    room.stats_token = Some("operator-token-1".to_owned());
    let refused = room.stats_request(get("/stats"));
    assert_eq!(refused.status, 401, "{}", text(&refused));
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    let wrong = with_header(get("/stats"), "authorization", "Bearer another");
    assert_eq!(room.stats_request(wrong).status, 401);
    let right = with_header(get("/stats"), "authorization", "Bearer operator-token-1");
    let answer = room.stats_request(right);
    assert_eq!(answer.status, 200, "{}", text(&answer));
    assert_eq!(body_json(&answer)["refusals"]["authentication"], 2);
    assert!(!room.logs.iter().any(|l| l.json.contains("operator-token-1")));
    room.stats_token = Some(" ".to_owned());
    let misconfigured = with_header(get("/stats"), "authorization", "Bearer  ");
    assert_eq!(room.stats_request(misconfigured).status, 503);
}
}

#[test]
fn every_refusal_has_a_stored_counter_of_its_own() {
    use stomp_rooms::room::Counter;
    let keys: std::collections::BTreeSet<&str> = Refusal::ALL
        .iter()
        .map(|&r| Counter::Refusals(r).key())
        .collect();
    assert_eq!(keys.len(), Refusal::ALL.len());
    for refusal in Refusal::ALL {
        assert_eq!(
            Counter::from_key(refusal.counter_key()),
            Some(Counter::Refusals(refusal))
        );
    }
}

#[test]
fn a_line_is_flat_json_with_level_message_and_room() {
    let event = LogEvent::Refused {
        conn: Some(7),
        transport: stomp_rooms::room::log::Transport::WebSocket,
        reason: Refusal::RateLimit,
        limit: Some("publish_rate.messages_per_s"),
        address: Some(ADDRESS.to_owned()),
        login: Some("alice".to_owned()),
        verified: false,
    };
    let line = event.line(Some("lobby"));
    assert_eq!(line.level, Level::Warn);
    assert!(
        line.json
            .starts_with(r#"{"level":"warn","message":"refused","room":"lobby","#),
        "{}",
        line.json
    );
    let parsed: Value = serde_json::from_str(&line.json).unwrap();
    assert_eq!(
        parsed,
        json!({
            "level": "warn", "message": "refused", "room": "lobby", "conn": 7,
            "transport": "websocket", "reason": "rate_limit",
            "limit": "publish_rate.messages_per_s", "address": ADDRESS
        })
    );
}

#[test]
fn storage_s_words_are_escaped_into_one_line() {
    let event = LogEvent::StorageFailed {
        conn: None,
        error: "SQLITE_FULL: \"disk\"\nfull \\ now".to_owned(),
    };
    let line = event.line(None);
    assert_eq!(line.level, Level::Error);
    assert!(!line.json.contains('\n'));
    let parsed: Value = serde_json::from_str(&line.json).unwrap();
    assert_eq!(
        parsed,
        json!({"level": "error", "message": "storage failed", "error": "SQLITE_FULL: \"disk\"\nfull \\ now"})
    );
}

#[test]
fn a_platform_failure_is_an_error_line_of_the_same_shape() {
    let line = stomp_rooms::room::log::platform_error(
        "could not change the room's alarm",
        Some("lobby"),
        "quota",
    );
    assert_eq!(line.level, Level::Error);
    let parsed: Value = serde_json::from_str(&line.json).unwrap();
    assert_eq!(
        parsed,
        json!({"level": "error", "message": "could not change the room's alarm", "room": "lobby", "error": "quota"})
    );
}

#[test]
fn a_sockjs_session_over_http_is_logged_as_sockjs() {
    use stomp_rooms::room::http::{HttpRequest, Method};
    let sockjs = |transport: &str, body: &str| HttpRequest {
        method: Method::Post,
        destination: format!("/000/s1/{transport}"),
        body: body.as_bytes().to_vec(),
        ..HttpRequest::default()
    };
    let mut room = SimulatedRoom::new();
    assert_eq!(
        support::http::text(&respond(room.sockjs(sockjs("xhr", "")))),
        "o\n"
    );
    let frames =
        serde_json::to_string(&["CONNECT\naccept-version:1.2\n\n\0", "DISCONNECT\n\n\0"]).unwrap();
    assert_eq!(
        respond(room.sockjs(sockjs("xhr_send", &frames))).status,
        204
    );
    let lines = lines(&room);
    let transports: Vec<(&Value, &Value)> = lines
        .iter()
        .filter(|l| l["message"] == "connection closed")
        .map(|l| (&l["message"], &l["transport"]))
        .collect();
    assert_eq!(
        transports,
        vec![(&json!("connection closed"), &json!("sockjs"))]
    );
}

room_test! {
fn a_failed_webhook_delivery_is_logged_by_its_origin_alone_and_counted() {
    use stomp_rooms::room::log::url_origin;
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    assert!(room.stats().get("webhook_failures").is_none(), "absent until one fails");
    let webhook = url_origin("https://user:pw@hooks.example:8443/services/T0/B1/secret-path?token=abc#x");
    assert_eq!(webhook, "https://hooks.example:8443");
    room.log_now(LogEvent::WebhookFailed { webhook, status: Some(502), attempt: 2 });
    let lines = lines(&room);
    let failed = with_message(&lines, "webhook delivery failed");
    assert_eq!(
        *failed[0],
        json!({"level": "warn", "message": "webhook delivery failed", "room": "lobby",
               "webhook": "https://hooks.example:8443", "status": 502, "attempt": 2})
    );
    room.hibernate();
    assert_eq!(room.stats()["webhook_failures"], 1);
}
}
