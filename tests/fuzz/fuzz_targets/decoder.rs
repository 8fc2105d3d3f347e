//! Arbitrary bytes, cut into arbitrary pieces, under small limits: the decoder must never
//! panic, never buffer more than a frame, and re-encoding what it decodes must decode the same.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stomp_rooms::stomp::{Decoded, Decoder, Limits, Version};

fuzz_target!(|input: (u8, Vec<u16>, &[u8])| {
    let (version, cuts, bytes) = input;
    let version = [Version::V1_0, Version::V1_1, Version::V1_2][usize::from(version % 3)];
    let limits = Limits {
        max_frame_bytes: 512,
        max_body_bytes: 256,
        max_headers: 8,
        max_header_line_bytes: 128,
        ..Limits::default()
    };
    let mut decoder = Decoder::new(limits.clone());
    decoder.set_version(version);
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) % (bytes.len() + 1))
        .collect();
    points.sort_unstable();
    points.push(bytes.len());
    let mut start = 0;
    for end in points {
        decoder.push(&bytes[start..end]);
        start = end;
        loop {
            match decoder.next_item() {
                Ok(Some(Decoded::Frame(frame))) => {
                    let mut again = Decoder::new(Limits::default());
                    again.set_version(version);
                    again.push(&frame.encode(Some(version)));
                    let Ok(Some(Decoded::Frame(decoded))) = again.next_item() else {
                        panic!("re-encoded frame did not decode: {frame:?}");
                    };
                    assert_eq!(decoded.command, frame.command);
                    assert_eq!(decoded.body, frame.body);
                }
                Ok(Some(Decoded::HeartBeat)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(decoder.pending().len() <= limits.max_frame_bytes);
    }
});
