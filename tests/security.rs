//! Room rules for authentication, permissions and abuse limits, each run kept in memory and
//! evicted after every step (see `room_test!`).

mod support;

use std::rc::Rc;

use serde_json::json;
use stomp_rooms::room::auth::{Gate, TokenRules};
use stomp_rooms::room::{Config, PublishRate, Settings};
use stomp_rooms::stomp::Command;
use support::tokens::{es256, hs256, verifier};
use support::{error_of, SimulatedRoom};

/// A room that requires tokens, with no leeway, so expiry times are exact.
fn token_room(settings: Settings) -> SimulatedRoom {
    let rules = TokenRules {
        leeway_s: 0,
        ..TokenRules::default()
    };
    SimulatedRoom::with_settings(settings).with_authenticator(Rc::new(Gate {
        tokens: Some(verifier(rules)),
        users: None,
    }))
}

/// Claims for `sub`, valid for the next minute of the simulated clock.
fn claims(room: &SimulatedRoom, sub: &str) -> serde_json::Value {
    json!({"sub": sub, "exp": room.now / 1000 + 60})
}

fn bearer(token: &str) -> String {
    format!("Authorization:Bearer {token}\n")
}

room_test! {
fn a_token_sub_is_the_verified_sender() {
    let mut room = token_room(Settings::default());
    let alice = hs256(&claims(&room, "alice"));
    let bob = es256(&claims(&room, "bob"));
    assert_eq!(room.connect(1, &bearer(&alice)).command, Command::Connected);
    assert_eq!(room.connect(2, &format!("login:whoever\npasscode:{bob}\n")).command, Command::Connected);
    room.subscribe(2, "s", "/topic/chat");
    room.frame(1, "SEND\ndestination:/topic/chat\nsender:mallory\nsender-verified:false", "hi");
    let frames = room.take(2);
    assert_eq!(frames[0].header("sender"), Some("alice"));
    assert_eq!(frames[0].header("sender-verified"), Some("true"));
    assert_eq!(frames[0].header("sender-name"), None);
    assert_eq!(
        frames[0].headers.iter().filter(|(n, _)| n.starts_with("sender")).count(),
        2,
        "a client's own sender headers are dropped"
    );
    assert_eq!(room.session(2).unwrap().login.as_deref(), Some("bob"));
}
}

room_test! {
fn a_token_room_refuses_connects_without_a_valid_token() {
    let mut room = token_room(Settings::default());
    let reply = room.connect(1, "login:alice\npasscode:secret\n");
    assert_eq!(reply.command, Command::Error);
    assert_eq!(reply.header("message"), Some("authentication failed"));
    assert!(String::from_utf8_lossy(&reply.body).contains("this room requires a token"));
    assert_eq!(room.closed(1).map(|(code, _)| code), Some(1008));
    let expired = hs256(&json!({"sub": "alice", "exp": room.now / 1000 - 1}));
    let reply = room.connect(2, &bearer(&expired));
    assert_eq!(reply.header("message"), Some("authentication failed"));
    assert!(String::from_utf8_lossy(&reply.body).starts_with("token expired"));
}
}

room_test! {
fn a_token_enters_only_the_rooms_its_claim_names() {
    let mut room = token_room(Settings::default());
    let elsewhere = hs256(&json!({"sub": "a", "exp": room.now / 1000 + 60, "rooms": ["team-*"]}));
    let reply = room.connect(1, &bearer(&elsewhere));
    assert_eq!(reply.header("message"), Some("authentication failed"));
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        "token does not allow room lobby (its rooms claim allows team-*)"
    );
    let here = hs256(&json!({"sub": "a", "exp": room.now / 1000 + 60, "rooms": ["team-*", "lob*"]}));
    assert_eq!(room.connect(2, &bearer(&here)).command, Command::Connected);
}
}

room_test! {
fn a_read_only_token_subscribes_but_its_send_is_refused_naming_the_rule() {
    let mut room = token_room(Settings::default());
    let viewer = hs256(&json!({"sub": "v", "exp": room.now / 1000 + 60, "publish": [], "subscribe": ["/topic/**"]}));
    let writer = hs256(&claims(&room, "w"));
    room.connect(1, &bearer(&viewer));
    room.connect(2, &bearer(&writer));
    room.subscribe(1, "s", "/topic/news");
    room.publish(2, "/topic/news", "headline");
    assert_eq!(room.bodies(1), ["headline"]);
    room.frame(1, "SEND\ndestination:/topic/news\nreceipt:r1", "mine");
    let frames = room.take(1);
    assert_eq!(
        error_of(&frames),
        (
            "permission denied".to_owned(),
            "SEND to /topic/news is not allowed: the token's publish claim allows nothing"
                .to_owned()
        )
    );
    assert_eq!(frames[0].header("receipt-id"), Some("r1"));
    assert_eq!(room.closed(1).map(|(code, _)| code), Some(1008));
    assert!(room.history("/topic/news").iter().all(|m| m.body != b"mine"));
    assert!(room.is_open(2), "the room goes on serving the others");
}
}

room_test! {
fn a_staged_send_needs_the_publish_grant_too() {
    let mut room = token_room(Settings::default());
    let token = hs256(&json!({"sub": "v", "exp": room.now / 1000 + 60, "publish": ["/topic/chat"]}));
    room.connect(1, &bearer(&token));
    room.frame(1, "BEGIN\ntransaction:t", "");
    room.frame(1, "SEND\ndestination:/topic/chat\ntransaction:t", "ok");
    room.frame(1, "SEND\ndestination:/topic/admin\ntransaction:t", "not ok");
    let (message, detail) = error_of(&room.take(1));
    assert_eq!(message, "permission denied");
    assert!(detail.contains("allows only /topic/chat"), "{detail}");
}
}

room_test! {
fn a_subscribe_outside_the_grant_is_refused_naming_the_rule() {
    let mut room = token_room(Settings::default());
    let token = hs256(&json!({"sub": "v", "exp": room.now / 1000 + 60, "subscribe": ["/topic/public.*"]}));
    room.connect(1, &bearer(&token));
    room.subscribe(1, "ok", "/topic/public.en");
    assert!(room.take(1).is_empty());
    room.subscribe(1, "no", "/topic/private");
    assert_eq!(
        error_of(&room.take(1)),
        (
            "permission denied".to_owned(),
            "SUBSCRIBE to /topic/private is not allowed: the token's subscribe claim allows only /topic/public.*".to_owned()
        )
    );
}
}

room_test! {
fn a_connection_ends_when_its_token_expires_even_across_evictions() {
    let mut room = token_room(Settings::default());
    let token = hs256(&json!({"sub": "a", "exp": room.now / 1000 + 5}));
    let expires_at = (room.now / 1000 + 5) * 1000;
    room.connect(1, &bearer(&token));
    room.connect(2, &bearer(&hs256(&claims(&room, "b"))));
    room.advance(expires_at - room.now - 1);
    assert!(room.is_open(1), "not a millisecond early");
    room.advance(1);
    assert_eq!(
        error_of(&room.take(1)),
        (
            "token expired".to_owned(),
            "the connection's token expired: fetch a fresh token and reconnect".to_owned()
        )
    );
    assert_eq!(room.closed(1).map(|(code, _)| code), Some(1008));
    assert!(room.is_open(2));
}
}

room_test! {
fn a_flooding_client_is_stopped_and_the_others_lose_nothing() {
    let mut room = SimulatedRoom::with_config(Config {
        publish_rate: PublishRate {
            messages_per_s: 10,
            messages_burst: 5,
            ..PublishRate::UNLIMITED
        },
        ..Config::default()
    });
    room.connect(1, "");
    room.connect(2, "");
    room.connect(3, "");
    room.subscribe(3, "s", "/topic/chat");
    for n in 0..8 {
        room.publish(1, "/topic/chat", &format!("flood {n}"));
    }
    let (message, detail) = error_of(&room.take(1));
    assert_eq!(message, "rate limit exceeded");
    assert!(detail.contains("more than 10 messages per second (burst 5); slow down"), "{detail}");
    assert_eq!(room.closed(1).map(|(code, _)| code), Some(1008));
    for n in 0..5 {
        room.publish(2, "/topic/chat", &format!("calm {n}"));
        room.advance(100);
    }
    assert!(room.is_open(2), "one message per 100 ms is within the rate");
    let expected: Vec<String> = (0..5)
        .map(|n| format!("flood {n}"))
        .chain((0..5).map(|n| format!("calm {n}")))
        .collect();
    assert_eq!(room.bodies(3), expected, "the accepted flood, then everything else");
}
}

room_test! {
fn the_publish_rate_carries_over_an_eviction() {
    let mut room = SimulatedRoom::with_config(Config {
        publish_rate: PublishRate {
            messages_per_s: 1,
            messages_burst: 2,
            ..PublishRate::UNLIMITED
        },
        ..Config::default()
    });
    room.connect(1, "");
    room.publish(1, "/topic/chat", "1");
    room.publish(1, "/topic/chat", "2");
    room.hibernate();
    room.publish(1, "/topic/chat", "3");
    assert_eq!(error_of(&room.take(1)).0, "rate limit exceeded");
}
}

room_test! {
fn the_room_cap_refuses_the_next_connection_until_one_leaves() {
    let mut room = SimulatedRoom::with_config(Config {
        max_connections: 2,
        ..Config::default()
    });
    room.connect(1, "");
    room.connect(2, "");
    room.open(3);
    assert_eq!(
        error_of(&room.take(3)),
        (
            "room full".to_owned(),
            "the room holds its maximum of 2 connections (max_connections); try again later"
                .to_owned()
        )
    );
    assert_eq!(room.closed(3).map(|(code, _)| code), Some(1013));
    room.close(1);
    assert_eq!(room.connect(4, "").command, Command::Connected);
}
}

room_test! {
fn the_per_address_cap_counts_only_that_address() {
    let mut room = SimulatedRoom::with_config(Config {
        max_connections_per_address: 2,
        ..Config::default()
    });
    room.open_from(1, Some("203.0.113.7"));
    room.open_from(2, Some("203.0.113.7"));
    room.open_from(3, Some("198.51.100.1"));
    room.open_from(4, Some("203.0.113.7"));
    assert!(room.take(1).is_empty() && room.take(3).is_empty());
    let (message, detail) = error_of(&room.take(4));
    assert_eq!(message, "too many connections");
    assert!(detail.contains("2 connections from your address (max_connections_per_address)"));
    assert!(room.is_open(1) && room.is_open(2) && room.is_open(3));
    room.open_from(5, None);
    assert!(room.is_open(5), "no address, not counted");
}
}

#[test]
fn origins_are_allowed_by_the_list_by_default_or_when_same_site() {
    let open = Settings::default();
    assert!(open.origin_allowed(Some("https://anywhere.example"), Some("rooms.example")));
    let listed = Settings {
        allowed_origins: vec![
            "https://chat.example".into(),
            "https://*.example.com".into(),
        ],
        ..Settings::default()
    };
    let host = Some("rooms.example");
    assert!(listed.origin_allowed(Some("https://chat.example"), host));
    assert!(listed.origin_allowed(Some("https://eu.example.com"), host));
    assert!(!listed.origin_allowed(Some("https://evil.example"), host));
    assert!(!listed.origin_allowed(Some("https://chat.example.evil.example"), host));
    assert!(!listed.origin_allowed(Some("null"), host));
    assert!(
        listed.origin_allowed(None, host),
        "not a browser page: not cross-site"
    );
    assert!(
        listed.origin_allowed(Some("https://rooms.example"), host),
        "the server's own page"
    );
    assert!(!listed.origin_allowed(Some("https://rooms.example.evil"), host));
    assert!(!listed.origin_allowed(Some("https://rooms.example"), None));
}

#[test]
fn a_misspelt_setting_is_refused_rather_than_ignored() {
    for json in [
        r#"{"auth": {"audiance": "stomp-rooms"}}"#,
        r#"{"publish_rate": {"messages_per_second": 5}}"#,
        r#"{"http": {"max_stream": 5}}"#,
    ] {
        assert!(serde_json::from_str::<Settings>(json).is_err(), "{json}");
    }
    let good: Settings = serde_json::from_str(r#"{"auth": {"audience": "stomp-rooms"}}"#).unwrap();
    assert_eq!(good.auth.audience.as_deref(), Some("stomp-rooms"));
}

#[test]
fn where_tokens_and_logins_are_both_configured_a_failed_login_asks_for_a_token() {
    use stomp_rooms::room::auth::{ConnectRequest, Gate};
    use stomp_rooms::room::{Authenticator, Credentials};
    let gate = Gate {
        tokens: Some(verifier(TokenRules::default())),
        users: Some(Credentials {
            users: [("carol".to_owned(), "pass".to_owned())].into(),
        }),
    };
    let request = |login, passcode| ConnectRequest {
        room: "lobby",
        login: Some(login),
        passcode: Some(passcode),
        ..ConnectRequest::default()
    };
    assert!(
        gate.authenticate(&request("carol", "pass"))
            .unwrap()
            .verified
    );
    let refusal = gate.authenticate(&request("Ada", "")).unwrap_err();
    assert!(
        refusal.starts_with("this room requires a token"),
        "{refusal}"
    );
    assert!(refusal.ends_with("or a login and passcode this room knows"));
}
