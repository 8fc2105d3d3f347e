//! Resource limits for one connection, checked before anything of attacker-chosen size is kept.

use serde::{Deserialize, Serialize};

/// Limits enforced by the [`Decoder`](super::Decoder) and the room's broker.
///
/// Defaults are generous for chat (a frame may carry a 1 MiB body) and sit between the STOMP
/// servers people already run: RabbitMQ's STOMP plugin allows 1,000 headers and 100 KiB header
/// lines; Spring's simple broker accepts 64 KiB messages. Exceeding any limit is a STOMP ERROR
/// for that connection, never an allocation of the requested size.
///
/// The per-session limits (`max_subscriptions`, `max_id_bytes`, `max_destination_bytes`,
/// `max_unacked`, `max_transactions`) also bound the size of a session's persisted state: with
/// the defaults the worst case stays under the 16 KiB a hibernatable WebSocket attachment holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest frame (command line, headers and body), in bytes. Default 1 MiB.
    pub max_frame_bytes: usize,
    /// Largest body, in bytes. Default 1 MiB (a frame's headers must fit in the rest of
    /// `max_frame_bytes` only when the body is smaller).
    pub max_body_bytes: usize,
    /// Most headers in one frame. Default 1,000, as RabbitMQ.
    pub max_headers: usize,
    /// Longest command or header line, in bytes. Default 64 KiB.
    pub max_header_line_bytes: usize,
    /// Most subscriptions one connection may hold at once. Default 32.
    pub max_subscriptions: usize,
    /// Longest subscription or transaction id, and login, in bytes. Default 64.
    pub max_id_bytes: usize,
    /// Longest destination, in bytes. Default 200.
    pub max_destination_bytes: usize,
    /// Most messages one connection may hold without acknowledging them (client ack modes).
    /// Queue messages beyond it wait for another consumer or an ACK, like a prefetch count.
    /// Default 100.
    pub max_unacked: usize,
    /// Most open transactions per connection. Default 8.
    pub max_transactions: usize,
    /// Most frames staged in one transaction. Default 1,000.
    pub max_transaction_frames: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 1024 * 1024,
            max_body_bytes: 1024 * 1024,
            max_headers: 1000,
            max_header_line_bytes: 64 * 1024,
            max_subscriptions: 32,
            max_id_bytes: 64,
            max_destination_bytes: 200,
            max_unacked: 100,
            max_transactions: 8,
            max_transaction_frames: 1000,
        }
    }
}
