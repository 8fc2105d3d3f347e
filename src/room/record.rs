//! How the room lays out what it stores, so a stored row's size is known exactly before the
//! row is written: header lists and staged frames as length-prefixed bytes (nothing is escaped,
//! so a row is never larger than what arrived), and the size each kind of row takes.
//!
//! A header list is `1` (the layout's version), then per header its name's and its value's
//! lengths (u32, little-endian), each followed by the bytes. A staged frame is `1`, the
//! command's index in [`Command::ALL`], the header list's length (u32) and the list, then the
//! body. Decoding never panics and refuses anything that does not parse whole.

use crate::stomp::{Command, Frame, Message};

/// The layout's version, the first byte of every record.
const LAYOUT: u8 = 1;

/// What a row costs beyond its variable columns: the integer columns (id, connection,
/// flags, sequence numbers) and SQLite's record header, generously.
pub const ROW_OVERHEAD: u64 = 128;

/// The length-prefixed header list of a stored message or staged frame.
pub fn encode_headers(headers: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(headers_len(headers));
    out.push(LAYOUT);
    for (name, value) in headers {
        put(&mut out, name.as_bytes());
        put(&mut out, value.as_bytes());
    }
    out
}

/// The length of [`encode_headers`]' output, without building it.
pub fn headers_len(headers: &[(String, String)]) -> usize {
    1 + headers
        .iter()
        .map(|(name, value)| 8 + name.len() + value.len())
        .sum::<usize>()
}

/// A header list written by [`encode_headers`]; `None` if it does not parse whole.
pub fn decode_headers(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let (&layout, mut rest) = bytes.split_first()?;
    if layout != LAYOUT {
        return None;
    }
    let mut headers = Vec::new();
    while !rest.is_empty() {
        let (name, after) = take(rest)?;
        let (value, after) = take(after)?;
        headers.push((
            String::from_utf8(name.to_vec()).ok()?,
            String::from_utf8(value.to_vec()).ok()?,
        ));
        rest = after;
    }
    Some(headers)
}

/// A staged frame as stored.
pub fn encode_frame(frame: &Frame) -> Vec<u8> {
    let headers = encode_headers(&frame.headers);
    let mut out = Vec::with_capacity(6 + headers.len() + frame.body.len());
    out.push(LAYOUT);
    let command = Command::ALL
        .iter()
        .position(|c| *c == frame.command)
        .unwrap_or(0);
    out.push(u8::try_from(command).unwrap_or(0));
    put(&mut out, &headers);
    out.extend_from_slice(&frame.body);
    out
}

/// The length of [`encode_frame`]'s output, without building it.
pub fn frame_len(frame: &Frame) -> usize {
    6 + headers_len(&frame.headers) + frame.body.len()
}

/// A staged frame written by [`encode_frame`]; `None` if it does not parse whole.
pub fn decode_frame(bytes: &[u8]) -> Option<Frame> {
    let (&layout, rest) = bytes.split_first()?;
    let (&command, rest) = rest.split_first()?;
    if layout != LAYOUT {
        return None;
    }
    let command = *Command::ALL.get(usize::from(command))?;
    let (headers, body) = take(rest)?;
    Some(Frame {
        command,
        headers: decode_headers(headers)?,
        body: body.to_vec(),
    })
}

/// The bytes a history or queue row of `message` takes.
pub fn message_row_bytes(message: &Message) -> u64 {
    message_row_bytes_of(&message.destination, &message.headers, message.body.len())
}

/// [`message_row_bytes`] of a message not yet built.
pub fn message_row_bytes_of(destination: &str, headers: &[(String, String)], body: usize) -> u64 {
    (destination.len() + headers_len(headers) + body) as u64 + ROW_OVERHEAD
}

/// The bytes a staged frame's row takes.
pub fn staged_row_bytes(transaction: &str, frame: &Frame) -> u64 {
    staged_row_bytes_of(transaction, frame_len(frame))
}

/// [`staged_row_bytes`] of a frame already encoded, as a record of `record_len` bytes.
pub fn staged_row_bytes_of(transaction: &str, record_len: usize) -> u64 {
    (transaction.len() + record_len) as u64 + ROW_OVERHEAD
}

/// The bytes a piece of a partly-arrived frame takes as a row.
pub fn partial_row_bytes(bytes: usize) -> u64 {
    bytes as u64 + ROW_OVERHEAD
}

/// The bytes an idempotency key takes as a row: its key and destination.
pub fn idempotency_row_bytes(key: &str, destination: &str) -> u64 {
    (key.len() + destination.len()) as u64 + ROW_OVERHEAD
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A length-prefixed piece and what follows it.
fn take(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (length, rest) = bytes.split_at_checked(4)?;
    let length = u32::from_le_bytes(length.try_into().ok()?) as usize;
    rest.split_at_checked(length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_at_their_stated_length_whatever_they_hold() {
        let headers = vec![
            ("a".to_owned(), "\u{1}\n\r:\\\"".repeat(100)),
            ("".to_owned(), "".to_owned()),
            ("émoji 🎉".to_owned(), "x".to_owned()),
        ];
        let bytes = encode_headers(&headers);
        assert_eq!(bytes.len(), headers_len(&headers));
        // Nothing is escaped: six control characters take six bytes, not 36.
        assert!(bytes.len() < 700 + 40, "{}", bytes.len());
        assert_eq!(decode_headers(&bytes), Some(headers));
    }

    #[test]
    fn frames_round_trip_at_their_stated_length() {
        for command in Command::ALL {
            let frame = Frame::new(command)
                .with_header("transaction", "tx")
                .with_header("k", "v\nw")
                .with_body(b"body\0with nul".to_vec());
            let bytes = encode_frame(&frame);
            assert_eq!(bytes.len(), frame_len(&frame));
            assert_eq!(decode_frame(&bytes), Some(frame));
        }
    }

    #[test]
    fn damaged_records_are_refused_not_panicked_on() {
        let frame = Frame::new(Command::Send)
            .with_header("k", "v")
            .with_body("x");
        let bytes = encode_frame(&frame);
        for cut in 0..bytes.len() - 1 {
            let decoded = decode_frame(&bytes[..cut]);
            assert!(decoded.is_none() || cut >= bytes.len() - 1, "{cut}");
        }
        assert_eq!(decode_frame(&[2, 2, 0, 0, 0, 0]), None, "unknown layout");
        assert_eq!(decode_frame(&[1, 99, 0, 0, 0, 0]), None, "unknown command");
        assert_eq!(decode_headers(&[1, 255, 255, 255, 255]), None);
        assert_eq!(decode_headers(&[1, 1, 0, 0, 0, 0xff, 0, 0, 0, 0]), None);
    }
}
