//! Random operations from several clients against one room, with the simulated room's checks:
//! no panic, no send to a closed connection, no unknown dequeue, every saved session fits in
//! an attachment, and the room survives simulated eviction at any point (the room engine over
//! the in-memory storage and sockets, as the native tests run it).

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[path = "../../support/mod.rs"]
mod support;

use support::{scripted_frame, Room, Step};

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
    Close(u8),
    Ping(u8),
    Tick(u16),
    Hibernate,
}

/// Six connection ids, so operations keep meeting the same connections.
fn conn(n: u8) -> u64 {
    u64::from(n % 6)
}

fuzz_target!(|ops: Vec<Op>| {
    let mut room = Room::new();
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
            Op::Close(n) => Step::Close(conn(n)),
            Op::Ping(n) => Step::Ping(conn(n)),
            Op::Tick(ms) => Step::Tick(u64::from(ms)),
            Op::Hibernate => Step::Hibernate,
        });
    }
});
