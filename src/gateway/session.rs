//! A socket's session at the gateway: everything about its connection that must survive the
//! object's eviction, kept in the socket's attachment (under [`MAX_SESSION_BYTES`]). Each part
//! a client can grow is bounded: the kept CONNECT headers in bytes, the rooms joined, the
//! subscriptions (`max_subscriptions`), the ack ids remembered and the open transactions
//! (`max_transactions`), each id and destination by the codec's limits.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::relay::MemberId;
use crate::stomp::{Command, Frame, HeartBeat, Version};

/// What a socket's attachment holds at most.
pub const MAX_SESSION_BYTES: usize = 16 * 1024;

/// The bytes of CONNECT headers kept to relay to each room the socket joins (a token included).
pub const MAX_KEPT_CONNECT_BYTES: usize = 4 * 1024;

/// The rooms one socket may use at once.
pub const MAX_ROOMS_PER_MEMBER: usize = 16;

/// The ack ids remembered per socket, with the room each came from (the oldest are forgotten:
/// an ACK for one of them goes to the socket's only room, else the gateway's own).
pub const MAX_ACK_IDS: usize = 16;

/// The longest `receipt` a DISCONNECT may carry when it goes to rooms (the gateway keeps it
/// until they have all answered).
pub const MAX_DISCONNECT_RECEIPT_BYTES: usize = 1024;

/// The CONNECT headers relayed to rooms: what says which version and who the client is.
pub const KEPT_CONNECT_HEADERS: [&str; 6] = [
    "accept-version",
    "host",
    "login",
    "passcode",
    "Authorization",
    "authorization",
];

/// A subscription, as far as the gateway needs it: the room it lives in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutedSubscription {
    pub id: String,
    pub room: String,
    /// Its messages carry an `ack` the client will answer (a client ack mode).
    #[serde(rename = "ca", default)]
    pub client_ack: bool,
}

/// A DISCONNECT with a receipt, relayed to every room joined: the RECEIPT goes out when all of
/// them have answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disconnecting {
    pub receipt: String,
    /// Rooms whose RECEIPT (or close) has not come yet.
    pub waiting: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSession {
    #[serde(rename = "m")]
    pub member: MemberId,
    /// CONNECT was answered.
    #[serde(rename = "c", default)]
    pub connected: bool,
    #[serde(rename = "v")]
    pub version: Version,
    #[serde(rename = "hb", default)]
    pub heart_beat: HeartBeat,
    #[serde(rename = "t0", default)]
    pub opened_ms: u64,
    /// When the gateway last heard from the client (to within half its heart-beat interval).
    #[serde(rename = "heard", default)]
    pub heard_ms: u64,
    /// When the gateway owes the client a heart-beat; `None` when the client's own pings,
    /// answered by the platform, stand in for them.
    #[serde(rename = "beat", default, skip_serializing_if = "Option::is_none")]
    pub beat_due_ms: Option<u64>,
    #[serde(rename = "addr", default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The socket carries SockJS frames.
    #[serde(rename = "sj", default)]
    pub sockjs: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// When the connection's token expires (ms): the gateway closes it then, as a room does.
    #[serde(rename = "exp", default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
    /// The CONNECT headers relayed to each room joined.
    #[serde(rename = "hdr", default)]
    pub connect_headers: Vec<(String, String)>,
    /// Rooms joined, in the order joined.
    #[serde(default)]
    pub rooms: Vec<String>,
    #[serde(rename = "subs", default)]
    pub subscriptions: Vec<RoutedSubscription>,
    /// Ack id → the room whose MESSAGE carried it, oldest first.
    #[serde(default)]
    pub acks: VecDeque<(String, String)>,
    /// Open transactions and the room each is bound to (`None`: no frame of it yet).
    #[serde(rename = "tx", default)]
    pub transactions: Vec<(String, Option<String>)>,
    #[serde(rename = "bye", default, skip_serializing_if = "Option::is_none")]
    pub disconnecting: Option<Disconnecting>,
}

impl MemberSession {
    pub fn new(member: MemberId, address: Option<String>, sockjs: bool, now_ms: u64) -> Self {
        Self {
            member,
            connected: false,
            version: Version::V1_2,
            heart_beat: HeartBeat::default(),
            opened_ms: now_ms,
            heard_ms: now_ms,
            beat_due_ms: None,
            address,
            sockjs,
            login: None,
            expires_ms: None,
            connect_headers: Vec::new(),
            rooms: Vec::new(),
            subscriptions: Vec::new(),
            acks: VecDeque::new(),
            transactions: Vec::new(),
            disconnecting: None,
        }
    }

    /// The session id CONNECTED names (`g`, not the rooms' `s`: the rooms give the member
    /// session ids of their own).
    pub fn session_id(&self) -> String {
        format!("g{}", self.member)
    }

    pub fn joined(&self, room: &str) -> bool {
        self.rooms.iter().any(|r| r == room)
    }

    pub fn subscription(&self, id: &str) -> Option<&RoutedSubscription> {
        self.subscriptions.iter().find(|s| s.id == id)
    }

    /// Whether MESSAGEs from `room` on subscription `id` carry acks to remember.
    pub fn acks_from(&self, room: &str, id: Option<&str>) -> bool {
        self.subscriptions
            .iter()
            .any(|s| s.client_ack && s.room == room && id.is_none_or(|id| s.id == id))
    }

    /// Remembers that `ack` came from `room`, forgetting the oldest past [`MAX_ACK_IDS`].
    pub fn remember_ack(&mut self, ack: &str, room: &str) {
        self.acks.retain(|(id, _)| id != ack);
        if self.acks.len() >= MAX_ACK_IDS {
            self.acks.pop_front();
        }
        self.acks.push_back((ack.to_owned(), room.to_owned()));
    }

    /// The room an ack id came from, forgotten as it is used.
    pub fn take_ack(&mut self, ack: &str) -> Option<String> {
        let at = self.acks.iter().position(|(id, _)| id == ack)?;
        self.acks.remove(at).map(|(_, room)| room)
    }

    /// The CONNECT relayed to a room the socket joins: the client's, with `heart-beat:0,0` (the
    /// gateway keeps the connection alive; the room sends and expects no heart-beats).
    pub fn relayed_connect(&self) -> Frame {
        let mut frame = Frame::new(Command::Connect);
        frame.headers = self.connect_headers.clone();
        frame.with_header("heart-beat", "0,0")
    }

    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stomp::Limits;

    /// Every part of a session a client can grow, at its bound, still fits an attachment.
    #[test]
    fn the_largest_session_fits_an_attachment() {
        let limits = Limits::default();
        let id = |c: char| c.to_string().repeat(limits.max_id_bytes);
        let room = |i: usize| format!("{i:0>64}");
        let mut session = MemberSession::new(u64::MAX, Some("f".repeat(45)), true, u64::MAX);
        session.connected = true;
        session.login = Some(id('l'));
        session.expires_ms = Some(u64::MAX);
        session.beat_due_ms = Some(u64::MAX);
        let value = "p".repeat(MAX_KEPT_CONNECT_BYTES - 200);
        session.connect_headers = vec![("passcode".into(), value)];
        session.rooms = (0..MAX_ROOMS_PER_MEMBER).map(room).collect();
        session.subscriptions = (0..limits.max_subscriptions)
            .map(|i| RoutedSubscription {
                id: format!("{i:0>64}"),
                room: room(i),
                client_ack: true,
            })
            .collect();
        for i in 0..MAX_ACK_IDS {
            session.remember_ack(&format!("{}-{}", u64::MAX - i as u64, u32::MAX), &room(i));
        }
        session.transactions = (0..limits.max_transactions)
            .map(|i| (format!("{i:0>64}"), Some(room(i))))
            .collect();
        session.disconnecting = Some(Disconnecting {
            receipt: "r".repeat(MAX_DISCONNECT_RECEIPT_BYTES),
            waiting: session.rooms.clone(),
        });
        let bytes = session.to_json().len();
        assert!(bytes <= MAX_SESSION_BYTES, "{bytes} bytes");
    }
}
