//! Random operations from several clients against one room with a small budget, with the
//! simulated room's checks: no panic, no send to a closed connection, no unknown dequeue, every
//! saved session fits in an attachment, no commit fails (rows within the platform's limit), and
//! after every operation what the room holds is within its budget and what it stores within
//! its bound; the room survives simulated eviction and crashes at any point (the room engine
//! over the in-memory storage and sockets, as the native tests run it).

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[path = "../../support/mod.rs"]
mod support;

use stomp_rooms::room::{Budget, Config, PublishRate, Settings};
use stomp_rooms::stomp::Limits;
use support::{scripted_frame, SimulatedRoom, Step};

#[derive(Arbitrary, Debug)]
enum Op {
    Open(u8),
    Raw {
        conn: u8,
        binary: bool,
        bytes: Vec<u8>,
    },
    Frame {
        conn: u8,
        template: u8,
        a: u8,
        b: u16,
        binary: bool,
    },
    /// A SEND whose headers are `count` lines of `fill` repeated `width` times.
    Flood {
        conn: u8,
        count: u8,
        width: u8,
        fill: u8,
        queue: bool,
    },
    Close(u8),
    Ping(u8),
    Tick(u16),
    Hibernate,
    Restart,
}

/// Six connection ids, so operations keep meeting the same connections.
fn conn(n: u8) -> u64 {
    u64::from(n % 6)
}

fn budget() -> Budget {
    Budget {
        max_queue_messages: 8,
        max_queue_bytes: 4_000,
        max_queued_bytes: 6_000,
        max_queues: 3,
        max_staged_bytes: 2_000,
        max_room_staged_bytes: 3_000,
        max_partial_bytes: 3_000,
        max_history_destinations: 4,
        max_history_bytes: 5_000,
        max_read_bytes: 5_000,
        max_row_bytes: 2_500,
        ..Budget::default()
    }
}

fn settings() -> Settings {
    Settings {
        broker: Config {
            history_limit: 5,
            budget: budget(),
            limits: Limits {
                max_frame_bytes: 2_000,
                max_body_bytes: 1_500,
                max_header_line_bytes: 400,
                max_headers: 16,
                ..Limits::default()
            },
            publish_rate: PublishRate {
                messages_per_s: 50,
                messages_burst: 100,
                frames_per_s: 100,
                frames_burst: 200,
                bytes_per_s: 50_000,
                bytes_burst: 100_000,
            },
            max_connections_per_address: 0,
            ..Config::default()
        },
        ..Settings::default()
    }
}

fn check_budget(room: &mut SimulatedRoom) {
    let budget = budget();
    let held = room.stats()["held"].clone();
    let at_most = |name: &str, max: u64| {
        let value = held[name].as_u64().unwrap_or(u64::MAX);
        assert!(value <= max, "{name}: {value} > {max} ({held})");
    };
    at_most("queued_bytes", budget.max_queued_bytes);
    at_most("queues", u64::from(budget.max_queues));
    at_most("staged_bytes", budget.max_room_staged_bytes);
    at_most("partial_bytes", budget.max_partial_bytes);
    at_most("history_destinations", u64::from(budget.max_history_destinations));
    assert!(room.store.stored_bytes() <= budget.max_stored_bytes());
    assert!(room.failures.is_empty(), "a commit failed: {:?}", room.failures);
}

fuzz_target!(|ops: Vec<Op>| {
    let mut room = SimulatedRoom::with_settings(settings());
    for op in ops.into_iter().take(200) {
        room.step(match op {
            Op::Open(n) => Step::Open(conn(n)),
            Op::Raw {
                conn: n,
                binary,
                bytes,
            } => Step::Bytes {
                conn: conn(n),
                bytes,
                binary,
            },
            Op::Frame {
                conn: n,
                template,
                a,
                b,
                binary,
            } => Step::Bytes {
                conn: conn(n),
                bytes: scripted_frame(template, a, b).into_bytes(),
                binary,
            },
            Op::Flood {
                conn: n,
                count,
                width,
                fill,
                queue,
            } => {
                let value: String = std::iter::repeat_n(char::from(fill % 0x7f), usize::from(width)).collect();
                let head: String = (0..count % 20).map(|i| format!("h{i}:{value}\n")).collect();
                let to = if queue { "/queue/q" } else { "/topic/a" };
                Step::Bytes {
                    conn: conn(n),
                    bytes: format!("SEND\ndestination:{to}\n{head}\nx\0").into_bytes(),
                    binary: false,
                }
            }
            Op::Close(n) => Step::Close(conn(n)),
            Op::Ping(n) => Step::Ping(conn(n)),
            Op::Tick(ms) => Step::Tick(u64::from(ms)),
            Op::Hibernate => Step::Hibernate,
            Op::Restart => Step::Restart,
        });
        check_budget(&mut room);
    }
});
