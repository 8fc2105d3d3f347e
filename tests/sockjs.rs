//! SockJS's HTTP transports against the room engine: a session opened by a receiver request
//! (`xhr` polling, `xhr_streaming`, `eventsource`), fed by `xhr_send`, carries STOMP to the
//! same broker as a WebSocket; one receiver at a time; heart-beats, the response limit, the
//! disconnect delay and close frames as the SockJS protocol says. Unlike the other rule files,
//! these rules do not run "evicted after every step": a room with SockJS sessions over HTTP is
//! never evicted (their clients come back within milliseconds; see `SimulatedRoom::hibernate`), and
//! what a restart does to them is a rule of its own here.

mod support;

use serde_json::Value;
use stomp_rooms::room::http::{HttpOutcome, HttpRequest, HttpResponse, Method};
use stomp_rooms::room::sockjs::{
    DISCONNECT_DELAY_MS, HEART_BEAT_MS, MAX_ROOM_WAITING_BYTES, MAX_WAITING_BYTES, RESPONSE_LIMIT,
};
use stomp_rooms::room::testing::SocketCall;
use stomp_rooms::room::{PublishRate, Settings};
use support::http::{respond, text};
use support::SimulatedRoom;

fn request(method: Method, session: &str, transport: &str, body: &str) -> HttpRequest {
    HttpRequest {
        method,
        destination: format!("/000/{session}/{transport}"),
        body: body.as_bytes().to_vec(),
        ..HttpRequest::default()
    }
}

fn poll(session: &str) -> HttpRequest {
    request(Method::Post, session, "xhr", "")
}

/// `xhr_send` with these STOMP frames, each a SockJS message.
fn send(session: &str, frames: &[&str]) -> HttpRequest {
    let body = serde_json::to_string(frames).expect("strings encode");
    request(Method::Post, session, "xhr_send", &body)
}

fn header<'a>(response: &'a HttpResponse, name: &str) -> Option<&'a str> {
    response
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The STOMP frames of an `a[...]` line.
fn messages(line: &str) -> Vec<String> {
    let array = line
        .strip_prefix('a')
        .unwrap_or_else(|| panic!("not a messages frame: {line:?}"));
    let values: Vec<Value> = serde_json::from_str(array).expect("a JSON array");
    values
        .into_iter()
        .map(|v| v.as_str().expect("strings").to_owned())
        .collect()
}

/// Whether the room ended this open streaming answer.
fn ended(room: &SimulatedRoom, listener: u64) -> bool {
    room.sockets
        .log
        .iter()
        .any(|call| matches!(call, SocketCall::End { listener: l } if *l == listener))
}

/// Opens a session with a poll and connects STOMP through it; returns the CONNECTED frame.
fn open_and_connect(room: &mut SimulatedRoom, session: &str, connect_headers: &str) -> String {
    let opened = respond(room.sockjs(poll(session)));
    assert_eq!(text(&opened), "o\n");
    let sent = respond(room.sockjs(send(
        session,
        &[&format!(
            "CONNECT\naccept-version:1.2\nhost:room\n{connect_headers}\n\0"
        )],
    )));
    assert_eq!(sent.status, 204, "{}", text(&sent));
    let answer = respond(room.sockjs(poll(session)));
    let frames = messages(text(&answer).trim_end());
    assert_eq!(frames.len(), 1);
    frames[0].clone()
}

#[test]
fn a_polling_session_chats_with_a_websocket_client() {
    let mut room = SimulatedRoom::new();
    let connected = open_and_connect(&mut room, "s1", "login:ann\n");
    assert!(
        connected.starts_with("CONNECTED\nversion:1.2\n"),
        "{connected:?}"
    );
    let subscribed = respond(room.sockjs(send(
        "s1",
        &["SUBSCRIBE\nid:0\ndestination:/topic/chat\n\n\0"],
    )));
    assert_eq!(subscribed.status, 204);
    room.connect(1, "");
    room.subscribe(1, "w", "/topic/chat");

    // A waiting poll is answered by the next message, sent before the commit like a fan-out.
    let Some(HttpOutcome::Wait {
        listener,
        timeout_ms,
    }) = room.sockjs(poll("s1"))
    else {
        panic!("a poll with nothing waiting waits");
    };
    assert_eq!(timeout_ms, HEART_BEAT_MS);
    room.publish(1, "/topic/chat", "from the websocket");
    let answers = room.answers();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].0, listener);
    let frames = messages(text(&answers[0].1).trim_end());
    assert!(frames[0].starts_with("MESSAGE\n"), "{frames:?}");
    assert!(frames[0].ends_with("\n\nfrom the websocket\0"));

    // And the other way: the session's SEND reaches the WebSocket subscriber.
    respond(room.sockjs(send(
        "s1",
        &["SEND\ndestination:/topic/chat\n\nfrom sockjs\0"],
    )));
    let bodies = room.bodies(1);
    assert_eq!(bodies, ["from the websocket", "from sockjs"]);
    // Meanwhile the session's own copy waits for its next poll.
    let next = respond(room.sockjs(poll("s1")));
    assert!(messages(text(&next).trim_end())[0].ends_with("\n\nfrom sockjs\0"));
}

#[test]
fn a_waiting_poll_is_answered_with_a_heart_beat_frame_after_25_s() {
    let mut room = SimulatedRoom::new();
    open_and_connect(&mut room, "s1", "");
    let Some(HttpOutcome::Wait { listener, .. }) = room.sockjs(poll("s1")) else {
        panic!("waits");
    };
    room.now += HEART_BEAT_MS;
    let beat = room.http_timeout(listener);
    assert_eq!(text(&beat), "h\n");
    assert_eq!(
        header(&beat, "content-type"),
        Some("application/javascript; charset=UTF-8")
    );
    // The session lives on: the next poll is its receiver.
    assert!(matches!(
        room.sockjs(poll("s1")),
        Some(HttpOutcome::Wait { .. })
    ));
}

#[test]
fn a_second_receiver_is_refused_with_2010_and_the_first_keeps_the_session() {
    let mut room = SimulatedRoom::new();
    open_and_connect(&mut room, "s1", "");
    respond(room.sockjs(send(
        "s1",
        &["SUBSCRIBE\nid:0\ndestination:/topic/chat\n\n\0"],
    )));
    let Some(HttpOutcome::Wait { listener, .. }) = room.sockjs(poll("s1")) else {
        panic!("waits");
    };
    let second = respond(room.sockjs(poll("s1")));
    assert_eq!(text(&second), "c[2010,\"Another connection still open\"]\n");
    let Some(HttpOutcome::Stream {
        listener: refused,
        head,
        ..
    }) = room.sockjs(request(Method::Post, "s1", "xhr_streaming", ""))
    else {
        panic!("a streaming receiver streams its refusal");
    };
    assert!(text(&head).ends_with("hhh\n"));
    assert_eq!(
        room.streamed(refused),
        "c[2010,\"Another connection still open\"]\n"
    );
    assert!(ended(&room, refused), "and ends");
    room.connect(1, "");
    room.publish(1, "/topic/chat", "still mine");
    let answers = room.answers();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].0, listener, "the first receiver got it");
}

#[test]
fn xhr_streaming_sends_its_prelude_then_frames_and_ends_at_the_response_limit() {
    let mut room = SimulatedRoom::new();
    let Some(HttpOutcome::Stream {
        listener,
        head,
        keep_alive_ms,
        keep_alive,
        join_writes,
    }) = room.sockjs(request(Method::Post, "s1", "xhr_streaming", ""))
    else {
        panic!("a streaming receiver streams");
    };
    assert!(
        !join_writes,
        "one frame per write, as SockJS's protocol tests read them"
    );
    assert_eq!(
        text(&head),
        format!("{}\n", "h".repeat(2048)),
        "the prelude alone"
    );
    assert_eq!(
        room.streamed(listener),
        "o\n",
        "then the open frame in a chunk of its own"
    );
    assert_eq!(
        header(&head, "content-type"),
        Some("application/javascript; charset=UTF-8")
    );
    assert_eq!(
        header(&head, "content-encoding"),
        Some("identity"),
        "never compressed, so never held back"
    );
    assert_eq!(
        (keep_alive_ms, keep_alive.as_slice()),
        (HEART_BEAT_MS, b"h\n".as_slice())
    );
    respond(room.sockjs(send("s1", &["CONNECT\naccept-version:1.2\n\n\0"])));
    let streamed = room.streamed(listener);
    assert!(
        streamed.starts_with("a[\"CONNECTED\\nversion:1.2\\n"),
        "{streamed:?}"
    );
    assert!(streamed.ends_with("\"]\n"));

    respond(room.sockjs(send(
        "s1",
        &["SUBSCRIBE\nid:0\ndestination:/topic/big\n\n\0"],
    )));
    room.connect(1, "");
    let big = "x".repeat(40 * 1024);
    let mut sent = 0;
    while !ended(&room, listener) {
        room.publish(1, "/topic/big", &big);
        sent += 1;
        assert!(
            sent <= RESPONSE_LIMIT / big.len() + 1,
            "the stream never ended"
        );
    }
    assert_eq!(
        sent,
        RESPONSE_LIMIT / big.len() + 1,
        "ended once it carried 128 KiB"
    );
    // The client opens the next streaming receiver on the same session: what waited for it
    // comes first.
    room.publish(1, "/topic/big", "after the limit");
    let Some(HttpOutcome::Stream {
        listener: next,
        head,
        ..
    }) = room.sockjs(request(Method::Post, "s1", "xhr_streaming", ""))
    else {
        panic!("the session goes on");
    };
    assert!(text(&head).ends_with("hhh\n"));
    let waited = room.streamed(next);
    assert!(
        waited.ends_with("\\n\\nafter the limit\\u0000\"]\n"),
        "{waited:?}"
    );
}

#[test]
fn a_replay_to_a_streaming_session_leaves_as_one_sockjs_frame_in_one_write() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    for n in 1..=5 {
        room.publish(1, "/topic/chat", &format!("stored {n}"));
    }
    let Some(HttpOutcome::Stream { listener, .. }) =
        room.sockjs(request(Method::Post, "s1", "xhr_streaming", ""))
    else {
        panic!("a streaming receiver streams");
    };
    respond(room.sockjs(send("s1", &["CONNECT\naccept-version:1.2\n\n\0"])));
    room.stream_chunks(listener);
    // One xhr_send: a SUBSCRIBE replaying five stored messages, and its RECEIPT.
    respond(room.sockjs(send(
        "s1",
        &["SUBSCRIBE\nid:0\ndestination:/topic/chat\nreplay-last:5\nreceipt:r\n\n\0"],
    )));
    // The replay leaves before the event's write (no fan-out waits behind one), the RECEIPT
    // once it is stored: two writes, the five messages one SockJS frame.
    let chunks = room.stream_chunks(listener);
    assert_eq!(chunks.len(), 2, "{chunks:?}");
    let frames = messages(chunks[0].trim_end_matches('\n'));
    let bodies: Vec<&str> = frames
        .iter()
        .filter_map(|frame| frame.strip_prefix("MESSAGE\n"))
        .map(|frame| {
            frame
                .split("\n\n")
                .nth(1)
                .unwrap_or_default()
                .trim_end_matches('\0')
        })
        .collect();
    assert_eq!(
        bodies,
        ["stored 1", "stored 2", "stored 3", "stored 4", "stored 5"]
    );
    let receipt = messages(chunks[1].trim_end_matches('\n'));
    assert!(
        receipt.len() == 1 && receipt[0].starts_with("RECEIPT\n"),
        "{receipt:?}"
    );
    // A lone live message leaves within its own event, as before.
    room.publish(1, "/topic/chat", "live");
    let chunks = room.stream_chunks(listener);
    assert_eq!(chunks.len(), 1, "{chunks:?}");
    assert_eq!(messages(chunks[0].trim_end_matches('\n')).len(), 1);
}

#[test]
fn eventsource_carries_frames_as_events_with_percent_escaping() {
    let mut room = SimulatedRoom::new();
    let Some(HttpOutcome::Stream {
        listener,
        head,
        keep_alive,
        ..
    }) = room.sockjs(request(Method::Get, "s1", "eventsource", ""))
    else {
        panic!("eventsource streams");
    };
    assert_eq!(text(&head), "\r\n");
    assert_eq!(room.streamed(listener), "data: o\r\n\r\n");
    assert_eq!(header(&head, "content-type"), Some("text/event-stream"));
    assert_eq!(keep_alive, b"data: h\r\n\r\n");
    respond(room.sockjs(send("s1", &["CONNECT\naccept-version:1.2\n\n\0"])));
    respond(room.sockjs(send(
        "s1",
        &["SUBSCRIBE\nid:0\ndestination:/topic/chat\n\n\0"],
    )));
    room.streamed(listener);
    room.connect(1, "");
    room.publish(1, "/topic/chat", "100% sure");
    let event = room.streamed(listener);
    assert!(event.starts_with("data: a[\"MESSAGE\\n"), "{event:?}");
    assert!(
        event.ends_with("\\n\\n100%25 sure\\u0000\"]\r\n\r\n"),
        "{event:?}"
    );
}

#[test]
fn xhr_send_refuses_what_is_not_a_session_or_not_json() {
    let mut room = SimulatedRoom::new();
    let unknown = respond(room.sockjs(send("nobody", &["CONNECT\n\n\0"])));
    assert_eq!(unknown.status, 404);
    respond(room.sockjs(poll("s1")));
    let empty = respond(room.sockjs(request(Method::Post, "s1", "xhr_send", "")));
    assert_eq!(
        (empty.status, text(&empty).as_str()),
        (500, "Payload expected.\n")
    );
    let broken = respond(room.sockjs(request(Method::Post, "s1", "xhr_send", "[\"x")));
    assert_eq!(
        (broken.status, text(&broken).as_str()),
        (500, "Broken JSON encoding.\n")
    );
    let wrong = respond(room.sockjs(request(Method::Get, "s1", "xhr", "")));
    assert_eq!(wrong.status, 405);
    assert_eq!(header(&wrong, "allow"), Some("OPTIONS, POST"));
    let other = respond(room.sockjs(request(Method::Post, "s1", "jsonp", "")));
    assert_eq!(other.status, 404);
    // The session is untouched by the refusals.
    let connected = respond(room.sockjs(send("s1", &["CONNECT\naccept-version:1.2\n\n\0"])));
    assert_eq!(connected.status, 204);
}

#[test]
fn answers_carry_cors_with_credentials_and_no_caching() {
    let mut room = SimulatedRoom::new();
    let mut opening = poll("s1");
    opening
        .headers
        .push(("origin".into(), "https://app.example".into()));
    let opened = respond(room.sockjs(opening));
    assert_eq!(
        header(&opened, "access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        header(&opened, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        header(&opened, "cache-control"),
        Some("no-store, no-cache, no-transform, must-revalidate, max-age=0")
    );
    let mut preflight = request(Method::Options, "s1", "xhr_send", "");
    preflight
        .headers
        .push(("origin".into(), "https://app.example".into()));
    preflight.headers.push((
        "access-control-request-headers".into(),
        "content-type".into(),
    ));
    let allowed = respond(room.sockjs(preflight));
    assert_eq!(allowed.status, 204);
    assert_eq!(
        header(&allowed, "access-control-allow-methods"),
        Some("OPTIONS, POST")
    );
    assert_eq!(
        header(&allowed, "access-control-allow-headers"),
        Some("content-type")
    );
    assert_eq!(header(&allowed, "access-control-max-age"), Some("31536000"));
}

/// A room that allows one site's pages, and a session opening from another site's.
fn room_and_an_opening_from_another_site() -> (SimulatedRoom, HttpRequest) {
    let room = SimulatedRoom::with_settings(Settings {
        allowed_origins: vec!["https://app.example".into()],
        ..Settings::default()
    });
    let mut opening = poll("s1");
    opening
        .headers
        .push(("origin".into(), "https://evil.example".into()));
    (room, opening)
}

#[test]
fn a_page_whose_origin_is_not_allowed_opens_no_session() {
    let (mut room, opening) = room_and_an_opening_from_another_site();
    let refused = respond(room.sockjs(opening));
    assert_eq!(refused.status, 403);
    assert_eq!(room.stats()["sockjs_sessions"], 0);
    assert_eq!(room.stats()["connections"], 0);
}

#[test]
fn a_request_refused_for_its_origin_or_its_size_is_logged_and_counted_as_a_refusal() {
    let (mut room, opening) = room_and_an_opening_from_another_site();
    assert_eq!(respond(room.sockjs(opening)).status, 403);
    open_and_connect(&mut room, "s2", "");
    let mut huge = send("s2", &["x"]);
    huge.declared_length = Some(64 * 1024 * 1024);
    assert_eq!(respond(room.sockjs(huge)).status, 413);
    assert_eq!(
        room.stats()["refusals"],
        serde_json::json!({"permission": 1, "too_large": 1})
    );
    let refused: Vec<Value> = room
        .logs
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(&line.json).ok())
        .filter(|line| line["message"] == "refused")
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(refused[0]["reason"], "permission");
    assert_eq!(
        refused[0]["transport"], "http",
        "a request, as the HTTP rungs' are"
    );
    assert_eq!(refused[1]["reason"], "too_large");
}

#[test]
fn a_session_without_a_receiver_for_5_s_ends_and_its_connection_closes() {
    let mut room = SimulatedRoom::new();
    open_and_connect(&mut room, "s1", "");
    respond(room.sockjs(send(
        "s1",
        &["SUBSCRIBE\nid:0\ndestination:/topic/chat\n\n\0"],
    )));
    assert_eq!(room.stats()["connections"], 1);
    room.advance(DISCONNECT_DELAY_MS - 1);
    assert_eq!(room.stats()["sockjs_sessions"], 1, "not yet");
    room.advance(1);
    assert_eq!(room.stats()["sockjs_sessions"], 0);
    assert_eq!(
        room.stats()["connections"],
        0,
        "its STOMP connection is gone too"
    );
    let gone = respond(room.sockjs(send("s1", &["SEND\ndestination:/topic/chat\n\nlate\0"])));
    assert_eq!(gone.status, 404);
    // The same id now opens a new session.
    assert_eq!(text(&respond(room.sockjs(poll("s1")))), "o\n");
}

#[test]
fn an_open_receiver_keeps_its_session_however_long_it_waits() {
    let mut room = SimulatedRoom::new();
    open_and_connect(&mut room, "s1", "");
    let Some(HttpOutcome::Stream { .. }) =
        room.sockjs(request(Method::Post, "s1", "xhr_streaming", ""))
    else {
        panic!("streams");
    };
    room.advance(10 * DISCONNECT_DELAY_MS);
    assert_eq!(room.stats()["sockjs_sessions"], 1);
    assert_eq!(room.stats()["connections"], 1);
}

#[test]
fn a_session_whose_receiver_was_cut_off_is_interrupted_and_its_connection_closes_at_once() {
    let mut room = SimulatedRoom::new();
    open_and_connect(&mut room, "s1", "");
    respond(room.sockjs(send(
        "s1",
        &["SUBSCRIBE\nid:0\ndestination:/queue/work\n\n\0"],
    )));
    let Some(HttpOutcome::Stream { listener, .. }) =
        room.sockjs(request(Method::Get, "s1", "eventsource", ""))
    else {
        panic!("streams");
    };
    room.http_closed(listener);
    // Until the alarm, due now, a receiver is told; nothing more goes in.
    let next = text(&respond(room.sockjs(poll("s1"))));
    assert_eq!(next, "c[1002,\"Connection interrupted\"]\n");
    let refused = respond(room.sockjs(send("s1", &["SEND\ndestination:/topic/x\n\nx\0"])));
    assert_eq!(refused.status, 404);
    assert_eq!(
        room.next_alarm(),
        Some(room.now),
        "the session ends at once"
    );
    room.advance(0);
    assert_eq!(
        room.stats()["connections"],
        0,
        "its connection closed with the session"
    );
    assert_eq!(room.stats()["sockjs_sessions"], 0);
    // So a queue message goes to a consumer that is there, not to the one cut off.
    room.connect(1, "");
    room.subscribe(1, "q", "/queue/work");
    room.publish(1, "/queue/work", "job");
    assert_eq!(room.bodies(1), ["job"]);
}

#[test]
fn a_closed_session_ends_5_s_after_it_closed_however_often_it_is_polled() {
    let mut room = SimulatedRoom::new();
    open_and_connect(&mut room, "s1", "");
    respond(room.sockjs(send("s1", &["DISCONNECT\n\n\0"])));
    for _ in 0..10 {
        room.advance(DISCONNECT_DELAY_MS / 10 - 1);
        respond(room.sockjs(poll("s1")));
    }
    room.advance(10);
    assert_eq!(room.stats()["sockjs_sessions"], 0);
}

#[test]
fn a_failed_write_loses_the_http_sessions_tells_their_clients_and_gives_no_id_twice() {
    let mut room = SimulatedRoom::new();
    open_and_connect(&mut room, "s1", "");
    respond(room.sockjs(send(
        "s1",
        &["SUBSCRIBE\nid:0\ndestination:/topic/chat\n\n\0"],
    )));
    room.connect(1, "");
    room.subscribe(1, "c", "/topic/chat");
    room.connect(2, "");
    room.store.fail_commits = 1;
    room.frame(2, "SEND\ndestination:/topic/chat\nreceipt:r", "refused");
    assert_eq!(room.failures.len(), 1);
    room.take(1);
    // The engine rebuilt itself from the sessions kept with sockets; this one was not.
    let told = text(&respond(room.sockjs(poll("s1"))));
    assert!(
        told.ends_with("c[1011,\"session lost; reconnect\"]\n"),
        "{told:?}"
    );
    let gone = respond(room.sockjs(send("s1", &["SEND\ndestination:/topic/chat\n\nx\0"])));
    assert_eq!(gone.status, 404);
    // New connections get ids never given out (the ids before the failure were not all
    // stored), so the socket that lived through the failure keeps its own.
    open_and_connect(&mut room, "s2", "");
    respond(room.sockjs(send(
        "s2",
        &["SUBSCRIBE\nid:0\ndestination:/topic/chat\n\n\0"],
    )));
    room.connect(3, "");
    room.publish(3, "/topic/chat", "after");
    let answer = text(&respond(room.sockjs(poll("s2"))));
    assert!(answer.contains("\\n\\nafter\\u0000"), "{answer:?}");
    assert_eq!(
        room.bodies(1),
        ["after"],
        "the socket that lived through it still receives"
    );
}

#[test]
fn a_receipt_to_a_session_waits_for_the_commit_and_is_never_sent_if_it_fails() {
    let mut room = SimulatedRoom::new();
    open_and_connect(&mut room, "s1", "");
    room.store.fail_commits = 1;
    let sent = "SEND\ndestination:/topic/chat\nreceipt:stored\n\nhello\0";
    assert_eq!(
        room.sockjs(send("s1", &[sent])),
        None,
        "the request failed (the edge answers 503)"
    );
    let answer = text(&respond(room.sockjs(poll("s1"))));
    assert!(!answer.contains("RECEIPT"), "{answer:?}");
    assert!(answer.contains("message:storage failure"), "{answer:?}");
    assert!(
        answer.ends_with("c[1011,\"storage failure\"]\n"),
        "{answer:?}"
    );
    open_and_connect(&mut room, "s2", "");
    respond(room.sockjs(send("s2", &[sent])));
    assert_eq!(room.store.history_of("/topic/chat").len(), 1, "stored");
    let receipt = text(&respond(room.sockjs(poll("s2"))));
    assert!(
        receipt.starts_with("a[\"RECEIPT\\nreceipt-id:stored\\n"),
        "{receipt:?}"
    );
}

#[test]
fn a_client_that_never_reads_cannot_make_its_session_hold_more_than_4_mib() {
    let mut settings = Settings::default();
    settings.broker.publish_rate = PublishRate::UNLIMITED;
    let mut room = SimulatedRoom::with_settings(settings);
    open_and_connect(&mut room, "s1", "");
    respond(room.sockjs(send(
        "s1",
        &["SUBSCRIBE\nid:0\ndestination:/topic/big\n\n\0"],
    )));
    room.connect(1, "");
    let big = "x".repeat(1_000_000);
    for _ in 0..(MAX_WAITING_BYTES / big.len() + 1) {
        room.publish(1, "/topic/big", &big);
    }
    let told = text(&respond(room.sockjs(poll("s1"))));
    assert!(
        told == "c[1013,\"the client does not read what is sent to it\"]\n",
        "what waited was dropped and the session closed; got {} bytes",
        told.len()
    );
    room.advance(0);
    assert_eq!(room.stats()["connections"], 1, "only the publisher is left");
}

#[test]
fn an_xhr_send_larger_than_any_frame_could_be_is_refused_unread() {
    let mut room = SimulatedRoom::new();
    open_and_connect(&mut room, "s1", "");
    let mut huge = send("s1", &["x"]);
    huge.declared_length = Some(64 * 1024 * 1024);
    let refused = respond(room.sockjs(huge));
    assert_eq!(refused.status, 413);
    assert_eq!(room.stats()["connections"], 1, "the session is untouched");
}

#[test]
fn a_session_the_room_closed_repeats_its_close_frame_until_it_ends() {
    let mut room = SimulatedRoom::new();
    open_and_connect(&mut room, "s1", "");
    respond(room.sockjs(send("s1", &["BOGUS\n\n\0"])));
    let closing = text(&respond(room.sockjs(poll("s1"))));
    let lines: Vec<&str> = closing.lines().collect();
    assert_eq!(lines.len(), 2, "{closing:?}");
    assert!(messages(lines[0])[0].starts_with("ERROR\n"));
    assert!(lines[1].starts_with("c[1002,"), "{closing:?}");
    let again = text(&respond(room.sockjs(poll("s1"))));
    assert_eq!(
        again,
        format!("{}\n", lines[1]),
        "the close frame again, alone"
    );
    let refused = respond(room.sockjs(send("s1", &["SEND\ndestination:/topic/x\n\nx\0"])));
    assert_eq!(refused.status, 404);
    room.advance(DISCONNECT_DELAY_MS);
    assert_eq!(room.stats()["sockjs_sessions"], 0);
}

#[test]
fn a_stomp_heart_beat_over_xhr_send_is_answered_in_kind() {
    let mut room = SimulatedRoom::new();
    open_and_connect(&mut room, "s1", "heart-beat:10000,10000\n");
    respond(room.sockjs(send("s1", &["\n"])));
    assert_eq!(text(&respond(room.sockjs(poll("s1")))), "a[\"\\n\"]\n");
}

#[test]
fn a_full_room_refuses_a_new_session_as_it_refuses_a_socket() {
    let mut settings = Settings::default();
    settings.broker.max_connections = 1;
    let mut room = SimulatedRoom::with_settings(settings);
    open_and_connect(&mut room, "s1", "");
    assert_eq!(text(&respond(room.sockjs(poll("s2")))), "o\n");
    let refused = text(&respond(room.sockjs(poll("s2"))));
    assert!(
        refused.starts_with("a[\"ERROR\\nmessage:room full"),
        "{refused:?}"
    );
    assert!(refused.ends_with("c[1013,\"room full\"]\n"), "{refused:?}");
}

#[test]
fn room_limits_apply_to_sessions_as_to_sockets() {
    let mut settings = Settings::default();
    settings.broker.max_connections_per_address = 1;
    let mut room = SimulatedRoom::with_settings(settings);
    let mut first = poll("s1");
    first.peer.address = Some("203.0.113.9".into());
    assert_eq!(text(&respond(room.sockjs(first))), "o\n");
    let mut second = poll("s2");
    second.peer.address = Some("203.0.113.9".into());
    assert_eq!(text(&respond(room.sockjs(second))), "o\n");
    let refused = text(&respond(room.sockjs(to_address(poll("s2"), "203.0.113.9"))));
    let lines: Vec<&str> = refused.lines().collect();
    assert!(
        messages(lines[0])[0].starts_with("ERROR\nmessage:too many connections"),
        "{refused:?}"
    );
    assert!(lines[1].starts_with("c[1013,"), "{refused:?}");
}

#[test]
fn a_restarted_room_has_lost_its_sessions_and_the_next_receiver_opens_a_new_one() {
    let mut room = SimulatedRoom::new();
    open_and_connect(&mut room, "s1", "");
    room.restart();
    // sockjs-client takes an `o` on a session it had open as "Server lost session".
    assert_eq!(text(&respond(room.sockjs(poll("s1")))), "o\n");
    assert_eq!(
        room.stats()["connections"],
        1,
        "only the new session's connection"
    );
}

fn to_address(mut request: HttpRequest, address: &str) -> HttpRequest {
    request.peer.address = Some(address.to_owned());
    request
}

fn to_service(room: &str, mut request: HttpRequest) -> HttpRequest {
    request.peer.room = room.to_owned();
    request
}

fn with_test_services() -> SimulatedRoom {
    SimulatedRoom::with_settings(Settings {
        sockjs_test_services: true,
        ..Settings::default()
    })
}

#[test]
fn the_echo_test_service_sends_each_message_back_and_ends_streams_at_4096_bytes() {
    let mut room = with_test_services();
    let Some(HttpOutcome::Stream { listener, .. }) = room.sockjs(to_service(
        "echo",
        request(Method::Post, "e1", "xhr_streaming", ""),
    )) else {
        panic!("streams");
    };
    let sent = respond(room.sockjs(to_service("echo", send("e1", &["one", "two \u{2028}"]))));
    assert_eq!(sent.status, 204);
    assert_eq!(
        room.streamed(listener),
        "o\na[\"one\",\"two \\u2028\"]\n",
        "both, sent back in the event that brought them: one frame"
    );
    let big = "x".repeat(128);
    let mut frames = 2;
    while !ended(&room, listener) {
        respond(room.sockjs(to_service("echo", send("e1", &[&big]))));
        frames += 1;
        assert!(frames < 100, "never ended");
    }
    // 24 bytes, then lines of 134: the 31st takes the answer past 4096 bytes, and it ends.
    assert_eq!(frames - 2, 31, "ended at the test services' 4096 bytes");
    assert_eq!(
        room.stats()["connections"],
        1,
        "no STOMP frame was parsed, and none refused"
    );
}

#[test]
fn the_close_test_service_closes_each_session_with_3000_and_repeats_it() {
    let mut room = with_test_services();
    let Some(HttpOutcome::Stream { listener, .. }) = room.sockjs(to_service(
        "close",
        request(Method::Post, "c0", "xhr_streaming", ""),
    )) else {
        panic!("streams");
    };
    assert_eq!(room.streamed(listener), "o\nc[3000,\"Go away!\"]\n");
    assert!(ended(&room, listener));
    let opened = text(&respond(room.sockjs(to_service("close", poll("c1")))));
    assert_eq!(opened, "o\n");
    let closed = text(&respond(room.sockjs(to_service("close", poll("c1")))));
    assert_eq!(closed, "c[3000,\"Go away!\"]\n");
    let again = text(&respond(room.sockjs(to_service("close", poll("c1")))));
    assert_eq!(again, "c[3000,\"Go away!\"]\n");
    assert_eq!(room.stats()["connections"], 0);
}

#[test]
fn the_cookie_needed_test_service_sets_jsessionid() {
    let mut room = with_test_services();
    let opened = respond(room.sockjs(to_service("cookie_needed_echo", poll("k1"))));
    assert_eq!(
        header(&opened, "set-cookie"),
        Some("JSESSIONID=dummy; path=/")
    );
    let mut own = to_service("cookie_needed_echo", poll("k2"));
    own.headers
        .push(("cookie".into(), "a=1; JSESSIONID=abcdef".into()));
    let echoed = respond(room.sockjs(own));
    assert_eq!(
        header(&echoed, "set-cookie"),
        Some("JSESSIONID=abcdef; path=/")
    );
    let plain = respond(room.sockjs(to_service("echo", poll("k3"))));
    assert_eq!(header(&plain, "set-cookie"), None);
}

#[test]
fn without_the_setting_a_room_named_echo_is_a_stomp_room() {
    let mut room = SimulatedRoom::new();
    respond(room.sockjs(to_service("echo", poll("s1"))));
    respond(room.sockjs(to_service(
        "echo",
        send("s1", &["CONNECT\naccept-version:1.2\n\n\0"]),
    )));
    let answer = text(&respond(room.sockjs(to_service("echo", poll("s1")))));
    assert!(answer.starts_with("a[\"CONNECTED\\n"), "{answer:?}");
}

// ---- SockJS's websocket transport: a hibernatable socket carrying SockJS frames ----------

fn sockjs_message(frame: &str) -> Vec<u8> {
    serde_json::to_string(&[frame])
        .expect("strings encode")
        .into_bytes()
}

room_test! {
fn a_sockjs_websocket_opens_with_o_frames_what_the_room_sends_and_keeps_its_framing_across_evictions() {
    let mut room = SimulatedRoom::new();
    room.open_sockjs(1);
    room.raw(1, &sockjs_message("CONNECT\naccept-version:1.2\n\n\0"));
    room.raw(1, &sockjs_message("SUBSCRIBE\nid:0\ndestination:/topic/chat\n\n\0"));
    let connected = room.take(1);
    assert_eq!(connected.len(), 1, "CONNECTED, inside a SockJS frame");
    room.connect(2, "");
    room.subscribe(2, "p", "/topic/chat");
    room.connect(3, "");
    room.publish(3, "/topic/chat", "to both");
    let frames = room.sockjs_frames[&1].clone();
    assert_eq!(frames[0], "o");
    assert!(frames[1].starts_with("a[\"CONNECTED\\nversion:1.2\\n"), "{frames:?}");
    assert!(frames[2].starts_with("a[\"MESSAGE\\n"), "{frames:?}");
    assert_eq!(room.bodies(1), ["to both"], "the STOMP inside the frame");
    assert_eq!(room.bodies(2), ["to both"], "a plain socket in the same fan-out gets it as it is");
}
}

room_test! {
fn a_framed_heart_beat_is_answered_in_kind() {
    let mut room = SimulatedRoom::new();
    room.open_sockjs(1);
    room.raw(1, &sockjs_message("CONNECT\naccept-version:1.2\nheart-beat:10000,10000\n\n\0"));
    room.raw(1, &sockjs_message("\n"));
    assert_eq!(room.sockjs_frames[&1].last().map(String::as_str), Some("a[\"\\n\"]"));
}
}

room_test! {
fn broken_framing_or_a_binary_message_ends_a_sockjs_socket_without_a_close_frame() {
    let mut room = SimulatedRoom::new();
    room.open_sockjs(1);
    room.raw(1, b"[\"CONNECT");
    assert_eq!(room.closed(1), Some((1002, "Broken framing.".to_owned())));
    room.open_sockjs(2);
    room.raw_binary(2, &sockjs_message("CONNECT\n\n\0"));
    assert_eq!(room.closed(2), Some((1002, "SockJS sends text".to_owned())));
    for client in [1, 2] {
        assert_eq!(room.sockjs_frames[&client], ["o"], "no close frame");
    }
    assert_eq!(room.stats()["connections"], 0, "both connections are gone from the room");
}
}

room_test! {
fn a_sockjs_message_larger_than_a_send_may_carry_ends_its_socket_before_it_is_decoded() {
    let mut room = SimulatedRoom::with_config(stomp_rooms::room::Config {
        limits: stomp_rooms::stomp::Limits {
            max_frame_bytes: 100,
            ..stomp_rooms::stomp::Limits::default()
        },
        ..stomp_rooms::room::Config::default()
    });
    room.open_sockjs(1);
    let limit = stomp_rooms::room::max_sockjs_payload(100);
    room.raw(1, &sockjs_message(&"x".repeat(limit)));
    assert_eq!(room.closed(1), Some((1009, "message too large".to_owned())));
    assert_eq!(room.stats()["connections"], 0);
}
}

room_test! {
fn a_sockjs_socket_the_room_closes_gets_the_close_frame_first() {
    let mut room = SimulatedRoom::new();
    room.open_sockjs(1);
    room.raw(1, &sockjs_message("CONNECT\naccept-version:1.2\n\n\0"));
    room.raw(1, &sockjs_message("DISCONNECT\nreceipt:bye\n\n\0"));
    let frames = room.sockjs_frames[&1].clone();
    assert!(frames[2].starts_with("a[\"RECEIPT\\nreceipt-id:bye\\n"), "{frames:?}");
    assert_eq!(frames[3], "c[1000,\"DISCONNECT\"]");
    assert_eq!(room.closed(1), Some((1000, "DISCONNECT".to_owned())));
}
}

#[test]
fn all_sessions_together_hold_at_most_16_mib_the_fullest_end_first() {
    let mut settings = Settings::default();
    settings.broker.publish_rate = PublishRate::UNLIMITED;
    let mut room = SimulatedRoom::with_settings(settings);
    let ids = ["s1", "s2", "s3", "s4", "s5"];
    for id in ids {
        open_and_connect(&mut room, id, "");
        respond(room.sockjs(send(id, &["SUBSCRIBE\nid:0\ndestination:/topic/big\n\n\0"])));
    }
    room.connect(1, "");
    let big = "x".repeat(1_000_000);
    // Four messages: each session holds about 4 MB, under its own 4 MiB, but not all five
    // fit in 16 MiB.
    for _ in 0..4 {
        room.publish(1, "/topic/big", &big);
    }
    let mut ended = 0;
    let mut held = 0;
    for id in ids {
        let answer = text(&respond(room.sockjs(poll(id))));
        if answer.starts_with("c[1013,") {
            ended += 1;
        } else {
            assert_eq!(
                answer.matches("MESSAGE").count(),
                4,
                "a session that was kept lost nothing"
            );
            held += answer.len();
        }
    }
    assert!(ended >= 1, "some sessions ended");
    assert!(
        held <= MAX_ROOM_WAITING_BYTES + 4096,
        "the rest fit: {held} bytes"
    );
}

#[test]
fn a_session_whose_receiver_is_open_is_never_ended_for_the_rooms_bound() {
    let mut settings = Settings::default();
    settings.broker.publish_rate = PublishRate::UNLIMITED;
    let mut room = SimulatedRoom::with_settings(settings);
    let Some(HttpOutcome::Stream { listener, .. }) =
        room.sockjs(request(Method::Post, "live", "xhr_streaming", ""))
    else {
        panic!("a streaming receiver streams");
    };
    respond(room.sockjs(send("live", &["CONNECT\naccept-version:1.2\n\n\0"])));
    respond(room.sockjs(send(
        "live",
        &["SUBSCRIBE\nid:0\ndestination:/topic/big\n\n\0"],
    )));
    // Sessions whose clients stopped polling, enough that one 40 KB message to each passes
    // the room's 16 MiB: some of them end, fullest first; the live one waits for nothing.
    let idle = MAX_ROOM_WAITING_BYTES / 40_000 + 2;
    for n in 0..idle {
        let id = format!("idle{n}");
        open_and_connect(&mut room, &id, "");
        respond(room.sockjs(send(
            &id,
            &["SUBSCRIBE\nid:0\ndestination:/topic/big\n\n\0"],
        )));
    }
    room.connect(1, "");
    room.stream_chunks(listener);
    room.publish(1, "/topic/big", &"x".repeat(40_000));
    room.publish(1, "/topic/big", "after");
    let streamed = room.stream_chunks(listener).concat();
    assert!(
        !streamed.contains("c[1013"),
        "the live session was not ended"
    );
    assert!(!ended(&room, listener));
    assert_eq!(streamed.matches("MESSAGE").count(), 2, "and lost nothing");
    let ended_idle = (0..idle)
        .filter(|n| text(&respond(room.sockjs(poll(&format!("idle{n}"))))).starts_with("c[1013,"))
        .count();
    assert!(
        ended_idle >= 1,
        "the bound was passed, and idle sessions ended for it"
    );
}

#[test]
fn what_a_wake_sends_to_a_sockjs_socket_is_framed() {
    let mut room = SimulatedRoom::new();
    room.connect(1, "");
    room.frame(
        1,
        "SUBSCRIBE\nid:p\ndestination:/queue/work\nack:client",
        "",
    );
    room.connect(2, "");
    room.publish(2, "/queue/work", "job");
    assert_eq!(
        room.bodies(1),
        ["job"],
        "the plain consumer holds it, unacknowledged"
    );
    room.open_sockjs(3);
    room.raw(3, &sockjs_message("CONNECT\naccept-version:1.2\n\n\0"));
    room.raw(
        3,
        &sockjs_message("SUBSCRIBE\nid:0\ndestination:/queue/work\n\n\0"),
    );
    room.take(3);
    // The plain consumer's socket goes while the room is evicted: the wake hands its message
    // to the SockJS consumer.
    room.hibernate();
    let plain = room.conn(1);
    room.sockets.drop_socket(plain);
    room.raw(3, &sockjs_message("\n"));
    assert_eq!(room.bodies(3), ["job"], "decoded from a SockJS frame");
    let frames = &room.sockjs_frames[&3];
    assert!(
        frames.iter().any(|f| f.starts_with("a[\"MESSAGE\\n")),
        "{frames:?}"
    );
}
