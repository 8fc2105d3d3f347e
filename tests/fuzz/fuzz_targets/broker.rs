//! Random operations from several clients against one room, with the simulated room's checks:
//! no panic, no send to a closed connection, no unknown dequeue, every saved session fits in
//! an attachment, and the room survives simulated hibernation at any point.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[path = "../../support/mod.rs"]
mod support;

#[derive(Arbitrary, Debug)]
enum Op {
    Open(u8),
    Raw { conn: u8, binary: bool, bytes: Vec<u8> },
    Frame { conn: u8, template: u8, a: u8, b: u16, binary: bool },
    Close(u8),
    Tick(u16),
    Hibernate,
}

const DESTINATIONS: [&str; 7] = ["/topic/a", "/topic/b", "/queue/q", "/user/s1/x", "/user/x", "/presence", "/nope"];
const ACKS: [&str; 3] = ["auto", "client", "client-individual"];

fn frame(template: u8, a: u8, b: u16) -> String {
    let destination = DESTINATIONS[usize::from(a) % DESTINATIONS.len()];
    let ack = ACKS[usize::from(a / 8) % ACKS.len()];
    let id = b % 4;
    let pick = a % 4;
    match template % 11 {
        0 => format!("CONNECT\naccept-version:1.{pick}\nheart-beat:{b},{a}\nlogin:u{pick}\n\n\0"),
        1 => format!("SUBSCRIBE\nid:{id}\ndestination:{destination}\nack:{ack}\nreplay-last:{pick}\n\n\0"),
        2 => format!("SEND\ndestination:{destination}\nreceipt:r{b}\n\nbody {b}\0"),
        3 => format!("SEND\ndestination:{destination}\ntransaction:{id}\ncontent-length:1\n\n\0\0"),
        4 => format!("ACK\nid:{b}-{pick}\nmessage-id:{b}\nsubscription:{id}\n\n\0"),
        5 => format!("NACK\nid:{b}-{pick}\nmessage-id:{b}\nsubscription:{id}\n\n\0"),
        6 => format!("BEGIN\ntransaction:{id}\n\n\0"),
        7 => format!("COMMIT\ntransaction:{id}\n\n\0"),
        8 => format!("ABORT\ntransaction:{id}\n\n\0"),
        9 => format!("UNSUBSCRIBE\nid:{id}\n\n\0"),
        _ => "DISCONNECT\nreceipt:bye\n\n\0".to_owned(),
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut room = support::Room::new();
    for op in ops.into_iter().take(200) {
        match op {
            Op::Open(conn) => {
                let conn = u64::from(conn % 6);
                if !room.is_open(conn) {
                    room.closed.remove(&conn);
                    room.open(conn);
                }
            }
            Op::Raw { conn, binary, bytes } => {
                let conn = u64::from(conn % 6);
                if room.is_open(conn) {
                    if binary { room.raw_binary(conn, &bytes) } else { room.raw(conn, &bytes) }
                }
            }
            Op::Frame { conn, template, a, b, binary } => {
                let conn = u64::from(conn % 6);
                if room.is_open(conn) {
                    let frame = frame(template, a, b);
                    if binary { room.raw_binary(conn, frame.as_bytes()) } else { room.raw(conn, frame.as_bytes()) }
                }
            }
            Op::Close(conn) => room.close(u64::from(conn % 6)),
            Op::Tick(ms) => room.advance(u64::from(ms)),
            Op::Hibernate => room.hibernate(),
        }
    }
});
