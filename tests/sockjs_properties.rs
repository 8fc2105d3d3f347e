//! SockJS sessions under arbitrary traffic: any sequence of receiving requests, sends, cut-off
//! clients, timeouts, room traffic, failed writes and time never panics, never holds more
//! than one receiver per session, and once every client stops coming the room forgets every
//! session and closes their connections (nothing leaks).

mod support;

use std::collections::BTreeMap;

use proptest::prelude::*;
use stomp_rooms::room::http::{HttpOutcome, HttpRequest, ListenerId, Method};
use stomp_rooms::room::sockjs::DISCONNECT_DELAY_MS;
use stomp_rooms::room::{PublishRate, Settings};
use support::SimulatedRoom;

#[derive(Debug, Clone)]
enum Step {
    /// A receiving request of this transport for session `s`.
    Receive {
        session: u8,
        transport: u8,
    },
    /// `xhr_send` of one of a few payloads.
    Send {
        session: u8,
        payload: u8,
    },
    /// The client of open request number `n` (modulo those open) goes away.
    Gone {
        n: u8,
    },
    /// Waiting poll number `n` times out.
    Timeout {
        n: u8,
    },
    /// A plain socket publishes to the topic sessions subscribe to.
    Publish {
        bytes: u16,
    },
    /// The next commit fails.
    FailCommit,
    Advance {
        ms: u16,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..3u8, 0..3u8).prop_map(|(session, transport)| Step::Receive { session, transport }),
        4 => (0..3u8, 0..6u8).prop_map(|(session, payload)| Step::Send { session, payload }),
        1 => any::<u8>().prop_map(|n| Step::Gone { n }),
        1 => any::<u8>().prop_map(|n| Step::Timeout { n }),
        2 => (0..3000u16).prop_map(|bytes| Step::Publish { bytes }),
        1 => Just(Step::FailCommit),
        2 => (0..7000u16).prop_map(|ms| Step::Advance { ms }),
    ]
}

const PAYLOADS: [&str; 6] = [
    r#"["CONNECT\naccept-version:1.2\n\n\u0000"]"#,
    r#"["SUBSCRIBE\nid:0\ndestination:/topic/t\n\n\u0000"]"#,
    r#"["SEND\ndestination:/topic/t\nreceipt:r\n\nhi\u0000"]"#,
    r#"["\n"]"#,
    r#"["DISCONNECT\n\n\u0000"]"#,
    r#"["BOGUS"#,
];

fn request(method: Method, session: u8, transport: &str, body: &str) -> HttpRequest {
    HttpRequest {
        method,
        destination: format!("/0/s{session}/{transport}"),
        body: body.as_bytes().to_vec(),
        ..HttpRequest::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sessions_survive_any_traffic_and_end_when_their_clients_stop(steps in prop::collection::vec(step(), 1..60)) {
        let mut settings = Settings::default();
        settings.broker.publish_rate = PublishRate::UNLIMITED;
        let mut room = SimulatedRoom::with_settings(settings);
        room.connect(1, "");
        // Open requests: listener → is a waiting poll.
        let mut open: BTreeMap<ListenerId, bool> = BTreeMap::new();
        for step in steps {
            match step {
                Step::Receive { session, transport } => {
                    let (method, name) = [
                        (Method::Post, "xhr"),
                        (Method::Post, "xhr_streaming"),
                        (Method::Get, "eventsource"),
                    ][transport as usize];
                    match room.sockjs(request(method, session, name, "")) {
                        Some(HttpOutcome::Wait { listener, .. }) => { open.insert(listener, true); }
                        Some(HttpOutcome::Stream { listener, .. }) => { open.insert(listener, false); }
                        _ => {}
                    }
                }
                Step::Send { session, payload } => {
                    room.sockjs(request(Method::Post, session, "xhr_send", PAYLOADS[payload as usize]));
                }
                Step::Gone { n } if !open.is_empty() => {
                    let listener = *open.keys().nth(n as usize % open.len()).expect("non-empty");
                    open.remove(&listener);
                    room.http_closed(listener);
                }
                Step::Timeout { n } => {
                    let polls: Vec<ListenerId> = open.iter().filter(|(_, poll)| **poll).map(|(l, _)| *l).collect();
                    if !polls.is_empty() {
                        let listener = polls[n as usize % polls.len()];
                        open.remove(&listener);
                        room.http_timeout(listener);
                    }
                }
                Step::Publish { bytes } => room.publish(1, "/topic/t", &"x".repeat(bytes as usize)),
                Step::FailCommit => room.store.fail_commits = 1,
                Step::Advance { ms } => room.advance(u64::from(ms)),
                Step::Gone { .. } => {}
            }
            // Answered polls and ended streams are no longer open.
            for (listener, _) in room.answers() {
                open.remove(&listener);
            }
            let stats = room.stats();
            let sessions = stats["sockjs_sessions"].as_u64().expect("a count");
            let receivers = stats["open_requests"]["sockjs_receivers"].as_u64().expect("a count");
            prop_assert!(receivers <= sessions, "one receiver per session at most: {stats}");
        }
        // Every client stops coming: their open requests end, and the delay runs out.
        for listener in std::mem::take(&mut open).into_keys() {
            room.http_closed(listener);
        }
        room.advance(DISCONNECT_DELAY_MS + 1);
        let stats = room.stats();
        prop_assert_eq!(&stats["sockjs_sessions"], 0, "{}", stats);
        prop_assert_eq!(&stats["open_requests"]["sockjs_receivers"], 0, "{}", stats);
        let plain = u64::from(room.is_open(1));
        prop_assert_eq!(stats["connections"].as_u64(), Some(plain), "only the plain socket is left: {}", stats);
    }
}
