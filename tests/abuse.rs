//! Hostile clients against the room's budget: random sequences of the frames that made rooms
//! hold without bound (queues nobody consumes, transactions stuffed with junk, frames that
//! never finish, header floods of control characters, new destinations, presence and replay
//! floods, oversized and malformed frames), with time passing, evictions and crashes between
//! them. After every step what the room holds stays within its budget and storage within its
//! bound, the room's ledger agrees with what storage holds, and no commit fails; an innocent client's SENDs to a topic are never refused and are
//! stored when their RECEIPT comes, and every queue message it was given a RECEIPT for reaches
//! its consumer in the end (a full room may refuse one, with an ERROR naming the cap).

mod support;

use proptest::prelude::*;
use stomp_rooms::room::{Budget, Config, ConnId, PublishRate, QueueOverflow, Settings};
use stomp_rooms::stomp::{Command, Limits};
use support::http::post;
use support::{Eviction, SimulatedRoom};

/// Small caps, so random hostile traffic reaches every one of them.
fn budget() -> Budget {
    Budget {
        max_queue_messages: 6,
        max_queue_bytes: 6_000,
        max_queued_bytes: 12_000,
        max_staged_bytes: 3_000,
        max_room_staged_bytes: 6_000,
        max_partial_bytes: 4_000,
        max_queues: 3,
        max_history_destinations: 8,
        max_history_bytes: 24_000,
        max_read_bytes: 6_000,
        max_row_bytes: 2_500,
        ..Budget::default()
    }
}

fn settings(overflow: QueueOverflow) -> Settings {
    Settings {
        broker: Config {
            history_limit: 100,
            budget: Budget {
                queue_overflow: overflow,
                ..budget()
            },
            limits: Limits {
                max_frame_bytes: 2_000,
                max_body_bytes: 1_500,
                max_header_line_bytes: 600,
                max_headers: 20,
                ..Limits::default()
            },
            publish_rate: PublishRate {
                messages_per_s: 20,
                messages_burst: 40,
                frames_per_s: 50,
                frames_burst: 100,
                bytes_per_s: 20_000,
                bytes_burst: 40_000,
            },
            max_connections_per_address: 0,
            ..Config::default()
        },
        ..Settings::default()
    }
}

const INNOCENT: ConnId = 100;
const ATTACKERS: u64 = 4;

#[derive(Debug, Clone)]
enum Attack {
    /// A SEND with `headers` header lines of control characters and a body of `body` bytes.
    HeaderFlood {
        headers: u8,
        body: u16,
        to: u8,
    },
    /// SENDs to a queue nobody consumes.
    Queue {
        count: u8,
        body: u16,
        queue: u8,
    },
    /// A transaction stuffed with SENDs and ACKs.
    Stage {
        count: u8,
        body: u16,
    },
    /// The start of a frame that never ends, in pieces.
    Partial {
        pieces: u8,
        size: u16,
    },
    /// SENDs to ever new destinations.
    Destinations {
        count: u8,
        from: u16,
    },
    /// Presence and replays, subscribed and dropped again and again.
    Subscriptions {
        count: u8,
    },
    /// A frame or message over the limits.
    Oversized {
        size: u16,
    },
    /// Bytes of any kind.
    Garbage(Vec<u8>),
    Reconnect,
    /// A socket that never connects, with the start of a frame that never ends.
    Unconnected {
        size: u16,
    },
    /// A POST to a queue, from the attacker's address.
    HttpQueue {
        body: u16,
    },
}

#[derive(Debug, Clone)]
enum Step {
    Attack(u64, Attack),
    /// The innocent client publishes to its topic with a receipt.
    Innocent,
    /// The innocent client queues a message for later, with a receipt.
    InnocentQueues,
    Tick(u64),
    Evict,
    Crash,
}

fn attack() -> impl Strategy<Value = Attack> {
    prop_oneof![
        (1u8..20, 0u16..1500, 0u8..4).prop_map(|(headers, body, to)| Attack::HeaderFlood {
            headers,
            body,
            to
        }),
        (1u8..10, 0u16..1500, 0u8..3).prop_map(|(count, body, queue)| Attack::Queue {
            count,
            body,
            queue
        }),
        (1u8..10, 0u16..1500).prop_map(|(count, body)| Attack::Stage { count, body }),
        (1u8..6, 1u16..1200).prop_map(|(pieces, size)| Attack::Partial { pieces, size }),
        (1u8..6, any::<u16>()).prop_map(|(count, from)| Attack::Destinations { count, from }),
        (1u8..10).prop_map(|count| Attack::Subscriptions { count }),
        (1u16..6000).prop_map(|size| Attack::Oversized { size }),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Attack::Garbage),
        Just(Attack::Reconnect),
        (1u16..1800).prop_map(|size| Attack::Unconnected { size }),
        (0u16..1500).prop_map(|body| Attack::HttpQueue { body }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (1..=ATTACKERS, attack()).prop_map(|(conn, attack)| Step::Attack(conn, attack)),
        3 => Just(Step::Innocent),
        2 => Just(Step::InnocentQueues),
        2 => prop_oneof![1u64..3000, 25_000u64..40_000].prop_map(Step::Tick),
        1 => Just(Step::Evict),
        1 => Just(Step::Crash),
    ]
}

/// Connects a client unless it is connected.
fn ensure_connected(room: &mut SimulatedRoom, client: ConnId) {
    if !room.is_open(client) {
        room.open(client);
        room.raw(client, b"CONNECT\naccept-version:1.2\n\n\0");
        room.take(client);
    }
}

fn carry_out(room: &mut SimulatedRoom, attacker: ConnId, attack: Attack) {
    if let Attack::Unconnected { size } = attack {
        // Another socket of the attacker's, which never sends CONNECT.
        let loner = attacker + 10;
        if !room.is_open(loner) {
            room.open(loner);
        }
        let head = b"SEND\ndestination:/topic/never\n\n";
        room.raw(
            loner,
            &[head.as_slice(), &vec![b'u'; usize::from(size)]].concat(),
        );
        room.take(loner);
        return;
    }
    if let Attack::HttpQueue { body } = attack {
        let mut request = post("/queue/q0", &"h".repeat(usize::from(body)));
        request.peer.address = Some(format!("198.51.100.{attacker}"));
        room.http(request);
        return;
    }
    ensure_connected(room, attacker);
    let send = |to: &str, head: &str, body: usize| {
        format!("SEND\ndestination:{to}\n{head}\n{}\0", "b".repeat(body))
    };
    match attack {
        Attack::HeaderFlood { headers, body, to } => {
            let value = "\u{1}".repeat(90);
            let head: String = (0..headers).map(|n| format!("h{n}:{value}\n")).collect();
            let to = format!("/topic/flood{to}");
            room.raw(attacker, send(&to, &head, usize::from(body)).as_bytes());
        }
        Attack::Queue { count, body, queue } => {
            for _ in 0..count {
                let to = format!("/queue/q{queue}");
                room.raw(attacker, send(&to, "", usize::from(body)).as_bytes());
            }
        }
        Attack::Stage { count, body } => {
            room.raw(attacker, b"BEGIN\ntransaction:t\n\n\0");
            for n in 0..count {
                let frame = if n % 2 == 0 {
                    send("/topic/staged", "transaction:t\n", usize::from(body))
                } else {
                    let junk = "j".repeat(500);
                    format!("ACK\nid:{n}-0\ntransaction:t\njunk:{junk}\n\n\0")
                };
                room.raw(attacker, frame.as_bytes());
            }
        }
        Attack::Partial { pieces, size } => {
            room.raw(attacker, b"SEND\ndestination:/topic/never\n\n");
            for _ in 0..pieces {
                room.raw(attacker, "p".repeat(usize::from(size)).as_bytes());
            }
        }
        Attack::Destinations { count, from } => {
            for n in 0..u16::from(count) {
                let to = format!("/topic/d{}", from.wrapping_add(n));
                room.raw(attacker, send(&to, "", 10).as_bytes());
            }
        }
        Attack::Subscriptions { count } => {
            for _ in 0..count {
                room.raw(
                    attacker,
                    b"SUBSCRIBE\nid:p\ndestination:/presence\n\n\0UNSUBSCRIBE\nid:p\n\n\0\
                      SUBSCRIBE\nid:r\ndestination:/topic/innocent\nreplay-last:50\n\n\0\
                      UNSUBSCRIBE\nid:r\n\n\0",
                );
            }
        }
        Attack::Oversized { size } => {
            let frame = send("/topic/big", "", usize::from(size));
            room.raw(attacker, frame.as_bytes());
        }
        Attack::Garbage(bytes) => room.raw(attacker, &bytes),
        Attack::Reconnect => room.close(attacker),
        Attack::Unconnected { .. } | Attack::HttpQueue { .. } => {}
    }
    room.take(attacker);
}

/// What the room holds, against its budget; storage against its bound; no commit failed.
fn within_budget(room: &mut SimulatedRoom) -> Result<(), TestCaseError> {
    let held = room.stats()["held"].clone();
    let budget = budget();
    let at_most = |name: &str, max: u64| -> Result<(), TestCaseError> {
        let value = held[name].as_u64().unwrap_or(u64::MAX);
        prop_assert!(value <= max, "{name}: {value} > {max} ({held})");
        Ok(())
    };
    at_most("queued_bytes", budget.max_queued_bytes)?;
    at_most("staged_bytes", budget.max_room_staged_bytes)?;
    at_most("partial_bytes", budget.max_partial_bytes)?;
    at_most(
        "history_destinations",
        u64::from(budget.max_history_destinations),
    )?;
    at_most("queues", u64::from(budget.max_queues))?;
    let stored = room.store.stored_bytes();
    prop_assert!(stored <= budget.max_stored_bytes(), "stored {stored}");
    prop_assert!(
        room.failures.is_empty(),
        "a commit failed: {:?}",
        room.failures
    );
    // The ledger is what storage holds: queues, transactions and partial frames are stored
    // with the event that changes them; history rows may still wait to share a commit.
    let store = &room.store;
    prop_assert_eq!(
        held["queued_bytes"].as_u64(),
        Some(store.queued_bytes()),
        "queues"
    );
    prop_assert_eq!(
        held["staged_bytes"].as_u64(),
        Some(store.staged_bytes()),
        "transactions"
    );
    prop_assert_eq!(
        held["partial_bytes"].as_u64(),
        Some(store.partial_bytes()),
        "partials"
    );
    let history = held["history_bytes"].as_u64().unwrap_or(0);
    prop_assert!(
        store.history_bytes() <= history,
        "history: stored {} > counted {history}",
        store.history_bytes()
    );
    Ok(())
}

/// The innocent client sends one message with a receipt: whether it got the RECEIPT, or
/// the ERROR of a cap (it then reconnects).
fn innocent_sends(room: &mut SimulatedRoom, to: &str, body: &str) -> Result<bool, TestCaseError> {
    // An innocent client keeps to the rates: ten messages a second.
    room.advance(100);
    ensure_connected(room, INNOCENT);
    room.frame(
        INNOCENT,
        &format!("SEND\ndestination:{to}\nreceipt:r"),
        body,
    );
    let frames = room.take(INNOCENT);
    if frames.iter().any(|f| f.command == Command::Receipt) {
        return Ok(true);
    }
    let refusal = frames.iter().find_map(|f| f.header("message"));
    prop_assert!(
        matches!(refusal, Some("queue full" | "too many queues")),
        "the innocent's SEND to {to} was refused by {refusal:?}: {frames:?}"
    );
    Ok(false)
}

fn stored_bodies(room: &SimulatedRoom, to: &str) -> Vec<String> {
    room.history(to)
        .into_iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}

fn run(steps: Vec<Step>, eviction: Eviction, drop_oldest: bool) -> Result<(), TestCaseError> {
    let overflow = if drop_oldest {
        QueueOverflow::DropOldest
    } else {
        QueueOverflow::Reject
    };
    let mut room = SimulatedRoom::with_settings(settings(overflow));
    room.eviction = eviction;
    let mut queued = Vec::new();
    for (n, step) in steps.into_iter().enumerate() {
        match step {
            Step::Attack(attacker, attack) => carry_out(&mut room, attacker, attack),
            Step::Innocent => {
                let body = format!("innocent {n}");
                let received = innocent_sends(&mut room, "/topic/innocent", &body)?;
                prop_assert!(received, "a topic SEND is never refused for the budget");
                prop_assert!(
                    stored_bodies(&room, "/topic/innocent").contains(&body),
                    "{body} got its RECEIPT before it was stored"
                );
            }
            Step::InnocentQueues => {
                let body = format!("queued {n}");
                if innocent_sends(&mut room, "/queue/innocent", &body)? {
                    queued.push(body);
                }
            }
            Step::Tick(ms) => room.advance(ms),
            Step::Evict => room.hibernate(),
            Step::Crash => room.restart(),
        }
        within_budget(&mut room)?;
    }
    const CONSUMER: ConnId = 200;
    ensure_connected(&mut room, CONSUMER);
    room.subscribe(CONSUMER, "q", "/queue/innocent");
    let received = room.bodies(CONSUMER);
    if drop_oldest {
        // A full queue set to drop its oldest keeps the newest, in order.
        let kept = queued.len() - received.len().min(queued.len());
        prop_assert_eq!(
            &received[..],
            &queued[kept..],
            "the newest queue messages, in order"
        );
    } else {
        prop_assert_eq!(
            received,
            queued,
            "every queue message it was given a RECEIPT for"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn hostile_clients_never_take_a_room_past_its_budget_kept_in_memory(
        steps in prop::collection::vec(step(), 1..80), drop_oldest in any::<bool>()
    ) {
        run(steps, Eviction::Never, drop_oldest)?;
    }

    #[test]
    fn hostile_clients_never_take_a_room_past_its_budget_evicted_after_every_step(
        steps in prop::collection::vec(step(), 1..80), drop_oldest in any::<bool>()
    ) {
        run(steps, Eviction::EveryStep, drop_oldest)?;
    }
}
