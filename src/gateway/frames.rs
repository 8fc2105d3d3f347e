//! Reading the frames rooms send members (the gateway looks at few: it drops CONNECTED, counts
//! a DISCONNECT's RECEIPTs and names the room in each `ack` id) and the frames the gateway
//! writes itself.

use crate::sockjs;
use crate::stomp::{Command, Decoded, Decoder, Frame, Limits, Version};

/// Whether a room's message to a member is its CONNECTED (never forwarded: the gateway
/// answered the client's CONNECT itself).
pub fn is_connected(bytes: &[u8]) -> bool {
    bytes.starts_with(b"CONNECTED\n") || bytes.starts_with(b"CONNECTED\r\n")
}

/// The frame a room's message carries when it starts with `command` (decoded properly, so
/// escaped header values read as sent); `None` for anything else.
pub fn decode_if(bytes: &[u8], command: Command, version: Version) -> Option<Frame> {
    let name = command.as_str().as_bytes();
    let rest = bytes.strip_prefix(name)?;
    if !(rest.starts_with(b"\n") || rest.starts_with(b"\r\n")) {
        return None;
    }
    let mut decoder = Decoder::new(Limits {
        max_frame_bytes: bytes.len().max(1),
        max_body_bytes: bytes.len().max(1),
        ..Limits::default()
    });
    decoder.set_version(version);
    decoder.push(bytes);
    match decoder.next_item() {
        Ok(Some(Decoded::Frame(frame))) => Some(frame),
        _ => None,
    }
}

/// A MESSAGE's `ack` id with the room that sent it in front (`{room}/{id}`), so the client's
/// ACK or NACK names its room and the gateway needs to remember nothing: an endpoint's socket
/// may hold up to `max_unacked` unacknowledged messages in each of its rooms. `None` when the
/// message carries no `ack` header (auto-acknowledged, or STOMP 1.0/1.1, whose ACK names its
/// subscription instead). Room names hold no `/`, so the id splits back at its first.
pub fn with_room_in_ack(bytes: &[u8], room: &str) -> Option<Vec<u8>> {
    if !bytes.starts_with(b"MESSAGE\n") {
        return None;
    }
    let head_end = find(bytes, b"\n\n")?;
    let at = find(&bytes[..head_end], b"\nack:")? + b"\nack:".len();
    let mut named = Vec::with_capacity(bytes.len() + room.len() + 1);
    named.extend_from_slice(&bytes[..at]);
    named.extend_from_slice(room.as_bytes());
    named.push(b'/');
    named.extend_from_slice(&bytes[at..]);
    Some(named)
}

/// The room an ack id names and the room's own id (see [`with_room_in_ack`]).
pub fn room_in_ack(id: &str) -> Option<(&str, &str)> {
    let (room, own) = id.split_once('/')?;
    crate::room_name::validate(room).ok()?;
    Some((room, own))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// A RECEIPT for `receipt`.
pub fn receipt(receipt: &str) -> Frame {
    Frame::new(Command::Receipt).with_header("receipt-id", receipt)
}

/// What goes on a socket for one message: as it is, or a SockJS `a[...]` frame around it.
pub fn for_socket(bytes: &[u8], sockjs: bool) -> Vec<u8> {
    if sockjs {
        sockjs::messages_frame([String::from_utf8_lossy(bytes).as_ref()]).into_bytes()
    } else {
        bytes.to_vec()
    }
}
