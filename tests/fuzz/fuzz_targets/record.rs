//! The room's stored records: arbitrary bytes never make a header list or a staged frame
//! decode with a panic, and any frame encodes to a record that decodes to the same frame, at
//! exactly the length the budget counts.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use stomp_rooms::room::record;
use stomp_rooms::stomp::{Command, Frame};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    command: u8,
    headers: Vec<(String, String)>,
    body: &'a [u8],
    raw: &'a [u8],
}

fuzz_target!(|input: Input| {
    let _ = record::decode_headers(input.raw);
    let _ = record::decode_frame(input.raw);
    let frame = Frame {
        command: Command::ALL[usize::from(input.command) % Command::ALL.len()],
        headers: input.headers,
        body: input.body.to_vec(),
    };
    let bytes = record::encode_frame(&frame);
    assert_eq!(bytes.len(), record::frame_len(&frame));
    assert_eq!(record::decode_frame(&bytes).as_ref(), Some(&frame));
});
