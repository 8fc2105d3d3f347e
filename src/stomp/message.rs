//! A published message as the room keeps it, and its MESSAGE frame: the fan-out hot path, so
//! the frame is written straight into bytes without building a [`Frame`](super::Frame).

use serde::{Deserialize, Serialize};

use super::frame::{write_body, write_header};
use super::version::Version;

/// A published message, as stored for history and queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Room-monotonic id, sent as `message-id`.
    pub id: u64,
    /// The destination shown to subscribers.
    pub destination: String,
    /// `content-type` and the sender's own headers, forwarded to subscribers.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Deliver in a binary WebSocket message (the SEND arrived in one, or the body is not UTF-8).
    pub binary: bool,
}

/// How a message reaches a subscription, which decides its extra headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Live,
    /// From history, before live messages: `replayed:true`.
    Replayed,
    /// A queue message; `redelivered:true` when it was delivered before.
    Queue {
        redelivered: bool,
    },
}

/// What makes one subscriber's MESSAGE frame differ from another's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageFrameKey {
    pub version: Version,
    /// The subscription's `id`, sent as `subscription`.
    pub subscription: String,
    /// The subscription's handle when the frame carries a STOMP 1.2 `ack` id,
    /// `{message-id}-{handle}`.
    pub ack_handle: Option<u32>,
    /// The frame tells the subscription its replay was incomplete: `replay-incomplete:true`.
    pub replay_incomplete: bool,
}

/// Serializes the MESSAGE frame of `message` for one kind of subscriber.
pub fn encode_message(message: &Message, key: &MessageFrameKey, delivery: Delivery) -> Vec<u8> {
    let escaping = Some(key.version);
    let mut out = Vec::with_capacity(message.body.len() + 160 + message.destination.len());
    out.extend_from_slice(b"MESSAGE\n");
    write_header(&mut out, "subscription", &key.subscription, escaping);
    write_header(&mut out, "message-id", &message.id.to_string(), escaping);
    write_header(&mut out, "destination", &message.destination, escaping);
    if let Some(handle) = key.ack_handle {
        write_header(
            &mut out,
            "ack",
            &format!("{}-{handle}", message.id),
            escaping,
        );
    }
    match delivery {
        Delivery::Queue { redelivered: true } => {
            write_header(&mut out, "redelivered", "true", escaping)
        }
        Delivery::Replayed => write_header(&mut out, "replayed", "true", escaping),
        Delivery::Live | Delivery::Queue { redelivered: false } => {}
    }
    if key.replay_incomplete {
        write_header(&mut out, "replay-incomplete", "true", escaping);
    }
    for (name, value) in &message.headers {
        write_header(&mut out, name, value, escaping);
    }
    write_body(&mut out, &message.body);
    out
}
