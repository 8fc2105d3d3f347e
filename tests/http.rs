//! The HTTP rungs of the ladder against the room engine: publish, short and long polls and
//! event streams share the room's ids, history, destinations and authentication with STOMP.
//! Each rule runs kept in memory and evicted after every step (a room with an open request
//! is not evicted: the request keeps it awake).

mod support;

use std::rc::Rc;

use serde_json::{json, Value};
use stomp_rooms::room::auth::{Gate, TokenRules};
use stomp_rooms::room::http::{HttpOutcome, HttpRequest, HttpSettings, Method};
use stomp_rooms::room::testing::SocketCall;
use stomp_rooms::room::Settings;
use support::http::{body_json, get, ids, post, request, respond, text, with_header};
use support::tokens::{hs256, verifier};
use support::SimulatedRoom;

fn publish_over_http(room: &mut SimulatedRoom, destination: &str, body: &str) -> u64 {
    let response = respond(room.http(post(destination, body)));
    assert_eq!(response.status, 201, "{}", text(&response));
    body_json(&response)["id"].as_u64().expect("id")
}

room_test! {
fn a_post_reaches_stomp_subscribers_and_is_answered_once_stored() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.subscribe(1, "s", "/topic/chat");
    let request = with_header(
        with_header(post("/topic/chat?login=webhook", "deploy finished"), "content-type", "text/plain"),
        "x-stomp-priority",
        "high",
    );
    let request = with_header(request, "x-stomp-sender", "mallory");
    let response = respond(room.http(request));
    assert_eq!(response.status, 201);
    let answer = body_json(&response);
    assert_eq!(answer["destination"], "/topic/chat");
    let id = answer["id"].as_u64().unwrap();
    let frames = room.take(1);
    assert_eq!(frames.len(), 1);
    let message = &frames[0];
    assert_eq!(message.header("message-id"), Some(id.to_string().as_str()));
    assert_eq!(message.header("sender"), Some("http"));
    assert_eq!(message.header("sender-name"), Some("webhook"));
    assert_eq!(message.header("sender-verified"), None);
    assert_eq!(message.header("content-type"), Some("text/plain"));
    assert_eq!(message.header("priority"), Some("high"));
    assert_eq!(message.body, b"deploy finished");
    assert_eq!(
        room.store.history_of("/topic/chat").iter().map(|m| m.id).collect::<Vec<_>>(),
        [id],
        "stored before the answer, not deferred"
    );
}
}

room_test! {
fn short_polls_return_exactly_the_messages_after_an_id() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    let first = publish_over_http(&mut room, "/topic/chat", "1");
    room.publish(1, "/topic/chat", "2");
    room.publish(1, "/topic/other", "elsewhere");
    let third = publish_over_http(&mut room, "/topic/chat", "3");
    let all = body_json(&respond(room.http(get("/topic/chat"))));
    assert_eq!(all["messages"].as_array().unwrap().len(), 3);
    assert_eq!(all["messages"][1]["body"], "2");
    assert_eq!(all["messages"][1]["sender"], "s1");
    assert_eq!(all["next_after"], third);
    let after = body_json(&respond(room.http(get(&format!("/topic/chat?after={first}")))));
    assert_eq!(after["messages"].as_array().unwrap().iter().map(|m| m["body"].clone()).collect::<Vec<_>>(), [json!("2"), json!("3")]);
    let last = body_json(&respond(room.http(get("/topic/chat?last=1"))));
    assert_eq!(ids(&last), [third]);
    let none = body_json(&respond(room.http(get(&format!("/topic/chat?after={third}")))));
    assert!(ids(&none).is_empty());
    let next_after = none["next_after"].as_u64().unwrap();
    assert!(next_after >= third, "the room's last id, past the other topic's message");
    let fourth = publish_over_http(&mut room, "/topic/chat", "4");
    let chained = body_json(&respond(room.http(get(&format!("/topic/chat?after={next_after}")))));
    assert_eq!(ids(&chained), [fourth], "chaining next_after misses nothing, repeats nothing");
}
}

room_test! {
fn a_waiting_long_poll_is_answered_by_the_next_message_on_its_destination() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    let before = publish_over_http(&mut room, "/topic/chat", "old");
    let Some(HttpOutcome::Wait { listener, timeout_ms }) =
        room.http(get(&format!("/topic/chat?after={before}&wait=25")))
    else {
        panic!("the poll should wait");
    };
    assert_eq!(timeout_ms, 25_000);
    room.publish(1, "/topic/other", "not for it");
    assert!(room.answers().is_empty());
    room.publish(1, "/topic/chat", "new");
    let answers = room.answers();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].0, listener);
    let answer = body_json(&answers[0].1);
    assert_eq!(answer["messages"][0]["body"], "new");
    assert_eq!(answer["next_after"], answer["messages"][0]["id"]);
    room.publish(1, "/topic/chat", "later");
    assert!(room.answers().is_empty(), "a poll is answered once");
}
}

room_test! {
fn a_long_poll_that_waits_out_its_time_is_answered_empty_with_where_to_go_on() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.publish(1, "/topic/other", "x");
    let Some(HttpOutcome::Wait { listener, .. }) = room.http(get("/topic/chat?after=0&wait=5")) else {
        panic!("the poll should wait");
    };
    let answer = body_json(&room.http_timeout(listener));
    assert_eq!(answer, json!({"messages": [], "next_after": 1}));
    room.publish(1, "/topic/chat", "after the timeout");
    assert!(room.answers().is_empty(), "forgotten once answered");
    let waits = room.http(get("/topic/chat?after=0&wait=0"));
    assert!(matches!(waits, Some(HttpOutcome::Respond(_))), "wait=0 is a short poll");
}
}

room_test! {
fn an_event_stream_replays_after_last_event_id_then_goes_live() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    let first = publish_over_http(&mut room, "/topic/chat", "one");
    let second = publish_over_http(&mut room, "/topic/chat", "two");
    let resume = with_header(
        with_header(get("/topic/chat"), "accept", "text/event-stream"),
        "last-event-id",
        &first.to_string(),
    );
    let Some(HttpOutcome::Stream { listener, head, keep_alive_ms, join_writes, .. }) = room.http(resume) else {
        panic!("expected a stream");
    };
    assert!(join_writes, "events ready together may leave as one write");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(keep_alive_ms, 15_000);
    let start = text(&head);
    assert!(start.starts_with("retry: 2000\n\n"));
    assert!(start.contains(&format!("id: {second}\nevent: message\ndata: {{")));
    assert!(!start.contains(&format!("id: {first}\n")), "nothing up to Last-Event-ID again");
    room.publish(1, "/topic/chat", "three");
    let live = room.streamed(listener);
    assert!(live.starts_with(&format!("id: {}\nevent: message\n", second + 1)), "{live}");
    let data: Value = serde_json::from_str(
        live.lines().find_map(|l| l.strip_prefix("data: ")).unwrap(),
    )
    .unwrap();
    assert_eq!(data["body"], "three");
    assert_eq!(room.stats()["open_requests"]["streams"], 1);
    room.http_closed(listener);
    room.publish(1, "/topic/chat", "four");
    assert_eq!(room.streamed(listener), "", "a closed stream is sent nothing");
    assert_eq!(room.stats()["open_requests"]["streams"], 0);
}
}

room_test! {
fn a_stream_whose_client_went_away_is_forgotten_at_the_next_message() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    let accept = with_header(get("/topic/chat"), "accept", "text/event-stream");
    let Some(HttpOutcome::Stream { listener, .. }) = room.http(accept) else {
        panic!("expected a stream");
    };
    room.sockets.gone_streams.insert(listener);
    room.publish(1, "/topic/chat", "x");
    assert_eq!(room.stats()["open_requests"]["streams"], 0);
}
}

room_test! {
fn open_streams_and_waiting_polls_are_capped_with_429() {
    let mut room = SimulatedRoom::with_settings(Settings {
        http: HttpSettings {
            max_streams: 1,
            max_waiting_polls: 1,
            ..HttpSettings::default()
        },
        ..Settings::default()
    });
    let stream = || with_header(get("/topic/chat"), "accept", "text/event-stream");
    assert!(matches!(room.http(stream()), Some(HttpOutcome::Stream { .. })));
    let refused = respond(room.http(stream()));
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("5"));
    assert!(text(&refused).contains("max_streams"));
    assert!(matches!(room.http(get("/topic/chat?wait=10")), Some(HttpOutcome::Wait { .. })));
    let refused = respond(room.http(get("/topic/chat?wait=10")));
    assert_eq!(refused.status, 429);
    assert!(text(&refused).contains("max_waiting_polls"));
}
}

room_test! {
fn bad_requests_get_clear_refusals() {
    let mut room = SimulatedRoom::new();
    let put = respond(room.http(request(Method::Other, "/topic/chat")));
    assert_eq!(put.status, 405);
    assert_eq!(put.header("allow"), Some("GET, POST, OPTIONS"));
    let xml = respond(room.http(with_header(get("/topic/chat"), "accept", "application/xml")));
    assert_eq!(xml.status, 406);
    assert!(text(&xml).contains("text/event-stream"));
    let queue = respond(room.http(get("/queue/jobs")));
    assert_eq!(queue.status, 400);
    assert!(text(&queue).contains("GET reads /topic/ destinations"));
    assert_eq!(respond(room.http(get("/topic/chat?after=x"))).status, 400);
    assert_eq!(respond(room.http(get("/topic/chat?wait=soon"))).status, 400);
    assert_eq!(respond(room.http(post("/nowhere/x", "hi"))).status, 400);
    let big = "x".repeat(1024 * 1024 + 1);
    let too_large = respond(room.http(post("/topic/chat", &big)));
    assert_eq!(too_large.status, 413);
    assert!(text(&too_large).contains("max_body_bytes"));
    assert!(room.history("/topic/chat").is_empty(), "nothing refused was stored");
}
}

room_test! {
fn cross_origin_pages_get_cors_headers_only_when_allowed() {
    let mut room = SimulatedRoom::with_settings(Settings {
        allowed_origins: vec!["https://chat.example".into()],
        ..Settings::default()
    });
    let allowed = respond(room.http(with_header(get("/topic/chat"), "origin", "https://chat.example")));
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.header("access-control-allow-origin"), Some("https://chat.example"));
    assert_eq!(allowed.header("vary"), Some("Origin"));
    let forged = respond(room.http(with_header(post("/topic/chat", "csrf"), "origin", "https://evil.example")));
    assert_eq!(forged.status, 403);
    assert!(room.history("/topic/chat").is_empty(), "a refused cross-site POST publishes nothing");
    let preflight = with_header(
        with_header(request(Method::Options, "/topic/chat"), "origin", "https://chat.example"),
        "access-control-request-headers",
        "authorization, content-type",
    );
    let answer = respond(room.http(preflight));
    assert_eq!(answer.status, 204);
    assert_eq!(answer.header("access-control-allow-headers"), Some("authorization, content-type"));
    assert_eq!(answer.header("access-control-allow-methods"), Some("GET, POST"));
}
}

room_test! {
fn token_rooms_apply_the_token_rules_to_http() {
    let rules = TokenRules {
        leeway_s: 0,
        ..TokenRules::default()
    };
    let mut room = SimulatedRoom::new().with_authenticator(Rc::new(Gate {
        tokens: Some(verifier(rules)),
        users: None,
    }));
    let exp = room.now / 1000 + 60;
    let anonymous = respond(room.http(post("/topic/chat", "hi")));
    assert_eq!(anonymous.status, 401);
    assert!(text(&anonymous).starts_with("authentication failed: this room requires a token"));
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    let writer = hs256(&json!({"sub": "bot", "exp": exp}));
    let posted = with_header(post("/topic/chat", "hi"), "authorization", &format!("Bearer {writer}"));
    assert_eq!(respond(room.http(posted)).status, 201);
    let reader = hs256(&json!({"sub": "viewer", "exp": exp, "publish": []}));
    let refused = respond(room.http(post(&format!("/topic/chat?access_token={reader}"), "no")));
    assert_eq!(refused.status, 403);
    assert_eq!(text(&refused), "SEND to /topic/chat is not allowed: the token's publish claim allows nothing\n");
    let read = body_json(&respond(room.http(get(&format!("/topic/chat?access_token={reader}")))));
    assert_eq!(read["messages"][0]["sender"], "bot");
    assert_eq!(read["messages"][0]["headers"]["sender-verified"], "true");
}
}

room_test! {
fn an_id_the_room_never_gave_counts_as_its_last_so_nothing_is_skipped() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.publish(1, "/topic/chat", "id 1");
    let answer = body_json(&respond(room.http(get("/topic/chat?after=1000"))));
    assert_eq!(answer, json!({"messages": [], "next_after": 1}));
    let Some(HttpOutcome::Wait { .. }) = room.http(get("/topic/chat?after=1000&wait=10")) else {
        panic!("the poll should wait");
    };
    room.publish(1, "/topic/chat", "id 2");
    let answers = room.answers();
    assert_eq!(ids(&body_json(&answers[0].1)), [2], "the next message answers it");
}
}

room_test! {
fn a_body_declared_too_large_is_refused_unread() {
    let mut room = SimulatedRoom::new();
    let request = HttpRequest {
        declared_length: Some(1 << 30),
        ..post("/topic/chat", "")
    };
    let refused = respond(room.http(request));
    assert_eq!(refused.status, 413);
    assert!(text(&refused).starts_with("the body is 1073741824 bytes"));
}
}

room_test! {
fn a_lower_case_bearer_scheme_is_a_bearer_token() {
    let mut room = SimulatedRoom::new().with_authenticator(Rc::new(Gate {
        tokens: Some(verifier(TokenRules::default())),
        users: None,
    }));
    let token = hs256(&json!({"sub": "bot", "exp": room.now / 1000 + 60}));
    let posted = with_header(post("/topic/chat", "hi"), "authorization", &format!("bearer {token}"));
    assert_eq!(respond(room.http(posted)).status, 201);
    let reply = room.connect(1, &format!("Authorization:BEARER {token}\n"));
    assert_eq!(reply.header("message"), None, "{reply:?}");
}
}

room_test! {
fn an_event_stream_ends_when_its_token_expires() {
    let mut room = SimulatedRoom::new().with_authenticator(Rc::new(Gate {
        tokens: Some(verifier(TokenRules { leeway_s: 0, ..TokenRules::default() })),
        users: None,
    }));
    // Thirty days: past the 24.8 days a JavaScript timer can hold, so no timer of the edge's
    // would do; the room's alarm does.
    let exp = room.now / 1000 + 30 * 24 * 3600;
    let token = hs256(&json!({"sub": "viewer", "exp": exp}));
    let request = with_header(get(&format!("/topic/chat?access_token={token}")), "accept", "text/event-stream");
    let Some(HttpOutcome::Stream { listener, .. }) = room.http(request) else {
        panic!("expected a stream");
    };
    let ended = |room: &SimulatedRoom| {
        room.sockets.log.iter().any(|call| matches!(call, SocketCall::End { listener: l } if *l == listener))
    };
    room.advance(exp * 1000 - room.now - 1);
    assert!(!ended(&room), "still open a millisecond before its token expires");
    room.advance(1);
    assert!(ended(&room), "ended by the room's alarm as its token expires");
    assert_eq!(room.stats()["open_requests"]["streams"], 0);
}
}

room_test! {
fn http_publishers_are_held_to_the_publish_rate_by_address() {
    let mut room = SimulatedRoom::with_settings(Settings {
        broker: stomp_rooms::room::Config {
            publish_rate: stomp_rooms::room::PublishRate {
                messages_per_s: 1,
                messages_burst: 2,
                ..stomp_rooms::room::PublishRate::UNLIMITED
            },
            ..stomp_rooms::room::Config::default()
        },
        ..Settings::default()
    });
    let from = |address: &str| {
        let mut request = post("/topic/chat", "m");
        request.peer.address = Some(address.to_owned());
        request
    };
    assert_eq!(respond(room.http(from("203.0.113.7"))).status, 201);
    assert_eq!(respond(room.http(from("203.0.113.7"))).status, 201);
    let refused = respond(room.http(from("203.0.113.7")));
    assert_eq!(refused.status, 429);
    assert!(text(&refused).starts_with("rate limit exceeded: your address may publish 1 messages per second (burst 2)"));
    assert_eq!(respond(room.http(from("198.51.100.1"))).status, 201, "another address");
    room.advance(1000);
    assert_eq!(respond(room.http(from("203.0.113.7"))).status, 201, "a second later");
    assert_eq!(room.history("/topic/chat").len(), 4);
}
}

room_test! {
fn open_requests_count_against_the_per_address_cap() {
    let mut room = SimulatedRoom::with_settings(Settings {
        broker: stomp_rooms::room::Config {
            max_connections_per_address: 1,
            ..stomp_rooms::room::Config::default()
        },
        ..Settings::default()
    });
    let stream_from = |address: &str| {
        let mut request = with_header(get("/topic/chat"), "accept", "text/event-stream");
        request.peer.address = Some(address.to_owned());
        request
    };
    assert!(matches!(room.http(stream_from("203.0.113.7")), Some(HttpOutcome::Stream { .. })));
    let refused = respond(room.http(stream_from("203.0.113.7")));
    assert_eq!(refused.status, 429);
    assert!(text(&refused).contains("max_connections_per_address"));
    assert!(matches!(room.http(stream_from("198.51.100.1")), Some(HttpOutcome::Stream { .. })));
}
}

/// In a room kept in memory (a woken room stores its wake counter once, with its next commit).
#[test]
fn stats_ask_for_the_room_s_credentials_and_write_nothing() {
    support::with_eviction(support::Eviction::Never, || {
        let mut room = SimulatedRoom::new().with_authenticator(Rc::new(Gate {
            tokens: Some(verifier(TokenRules::default())),
            users: None,
        }));
        let refused = room.stats_request(get("/stats"));
        assert_eq!(refused.status, 401, "{}", text(&refused));
        let commits = room.store.commits.len();
        let token = hs256(&json!({"sub": "operator", "exp": room.now / 1000 + 60}));
        let asking = with_header(get("/stats"), "authorization", &format!("Bearer {token}"));
        for _ in 0..3 {
            let answer = room.stats_request(asking.clone());
            assert_eq!(answer.status, 200, "{}", text(&answer));
            assert!(body_json(&answer)["held"]["stored_bytes"].is_u64());
        }
        assert_eq!(
            room.store.commits.len(),
            commits,
            "reading the counters wrote nothing"
        );
    });
}
