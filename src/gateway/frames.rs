//! Reading the frames rooms send members (the gateway looks at few: it drops CONNECTED, counts
//! a DISCONNECT's RECEIPTs and remembers which room an `ack` came from) and the frames the
//! gateway writes itself.

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
