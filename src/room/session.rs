//! A connection's session: everything about one client that must survive the room object's
//! eviction. It is small by construction (see [`Limits`](crate::stomp::Limits)) so it fits in the
//! WebSocket's attachment, and the room's routing index can be rebuilt from all sessions.

use serde::{Deserialize, Serialize};

use crate::stomp::{HeartBeat, Version};

/// A connection's id in its room, unique for the room's lifetime (the room keeps a counter).
pub type ConnId = u64;

/// How a subscription's messages are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AckMode {
    #[serde(rename = "auto")]
    Auto,
    /// ACK/NACK are cumulative: they cover every earlier message of the subscription too.
    #[serde(rename = "client")]
    Client,
    #[serde(rename = "client-individual")]
    ClientIndividual,
}

impl AckMode {
    pub fn parse(value: Option<&str>) -> Option<Self> {
        match value {
            None | Some("auto") => Some(Self::Auto),
            Some("client") => Some(Self::Client),
            Some("client-individual") => Some(Self::ClientIndividual),
            Some(_) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// The client's id for it (`id` header).
    pub id: String,
    /// Our short number for it, unique within the session; names it in `ack` ids.
    #[serde(rename = "h")]
    pub handle: u32,
    #[serde(rename = "dest")]
    pub destination: String,
    pub ack: AckMode,
}

/// A delivered message that awaits ACK or NACK: (message id, subscription handle, is a queue message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unacked(pub u64, pub u32, pub bool);

impl Unacked {
    pub fn message_id(&self) -> u64 {
        self.0
    }
    pub fn handle(&self) -> u32 {
        self.1
    }
    pub fn is_queue(&self) -> bool {
        self.2
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// WebSocket open, CONNECT not yet received.
    #[serde(rename = "awaiting-connect")]
    AwaitingConnect,
    #[serde(rename = "connected")]
    Connected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub conn: ConnId,
    pub phase: Phase,
    /// The negotiated version (1.2 until CONNECT says otherwise, for error frames).
    #[serde(rename = "v")]
    pub version: Version,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[serde(rename = "hb", default)]
    pub heart_beat: HeartBeat,
    #[serde(rename = "subs", default)]
    pub subscriptions: Vec<Subscription>,
    #[serde(rename = "next_h", default)]
    pub next_handle: u32,
    #[serde(default)]
    pub unacked: Vec<Unacked>,
    /// Open transaction ids; their staged frames are stored by the room, not here.
    #[serde(rename = "tx", default)]
    pub transactions: Vec<String>,
    /// When the socket opened (ms since the epoch): the CONNECT timeout runs from here.
    #[serde(rename = "t0", default)]
    pub opened_ms: u64,
    /// When the room last heard from the client (ms). Kept to within half the client's
    /// heart-beat interval, so a busy client's session is not rewritten on every frame.
    #[serde(rename = "heard", default)]
    pub heard_ms: u64,
    /// When the room owes the client its next heart-beat (ms); `None` when the client's own
    /// pings, echoed by the transport, stand in for them or it asked for none.
    #[serde(rename = "beat", default, skip_serializing_if = "Option::is_none")]
    pub beat_due_ms: Option<u64>,
}

impl Session {
    pub fn new(conn: ConnId, now_ms: u64) -> Self {
        Self {
            conn,
            phase: Phase::AwaitingConnect,
            version: Version::V1_2,
            login: None,
            heart_beat: HeartBeat::default(),
            subscriptions: Vec::new(),
            next_handle: 0,
            unacked: Vec::new(),
            transactions: Vec::new(),
            opened_ms: now_ms,
            heard_ms: now_ms,
            beat_due_ms: None,
        }
    }

    /// The session id sent in CONNECTED's `session` header.
    pub fn session_id(&self) -> String {
        format!("s{}", self.conn)
    }

    /// Who this session is for `/user/` delivery and presence: its login, else its session id.
    pub fn identity(&self) -> String {
        self.login.clone().unwrap_or_else(|| self.session_id())
    }

    pub fn subscription(&self, id: &str) -> Option<&Subscription> {
        self.subscriptions.iter().find(|s| s.id == id)
    }

    pub fn subscription_by_handle(&self, handle: u32) -> Option<&Subscription> {
        self.subscriptions.iter().find(|s| s.handle == handle)
    }

    /// The session serialized for storage (a WebSocket attachment).
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}
