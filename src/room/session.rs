//! A connection's session: everything about one client that must survive the room object's
//! eviction. It is small by construction (see [`Limits`](crate::stomp::Limits)) so it fits in the
//! WebSocket's attachment, and the room's routing index can be rebuilt from all sessions.

use serde::{Deserialize, Serialize};

use super::auth::Grants;
use super::rate::Throttle;
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
    /// Whether it receives messages its own session sent (or, for a verified session, any
    /// session of the same login): `echo: false` on the SUBSCRIBE turns this off.
    #[serde(default = "echo_default", skip_serializing_if = "is_echo_default")]
    pub echo: bool,
    /// A replay it asked for was incomplete, and no MESSAGE has said so yet: the next one it
    /// receives, replayed or live, carries `replay-incomplete: true`. Kept here, with the
    /// session, so that nothing replayed (history dropped, or every replayed message muted by
    /// `echo`) and an eviction before the next message still leave the client told.
    #[serde(rename = "ri", default, skip_serializing_if = "is_false")]
    pub replay_incomplete: bool,
}

impl Subscription {
    /// An `echo` header's (or query parameter's) value, leniently: `true`, `1`, `yes`, `on` or
    /// `false`, `0`, `no`, `off`, in any case; `None` for anything else.
    pub fn parse_echo(value: &str) -> Option<bool> {
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => None,
        }
    }
}

fn echo_default() -> bool {
    true
}

fn is_echo_default(echo: &bool) -> bool {
    *echo
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

/// Where a socket came from, as the edge saw its upgrade request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// The room name in the URL.
    pub room: String,
    /// The client's address (`CF-Connecting-IP`), when known.
    pub address: Option<String>,
    /// The socket carries SockJS frames (`o`, `a[...]`, `c[...]`; SockJS's `websocket`
    /// transport), not STOMP frames as they are.
    pub sockjs: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub conn: ConnId,
    pub phase: Phase,
    /// The negotiated version (1.2 until CONNECT says otherwise, for error frames).
    #[serde(rename = "v")]
    pub version: Version,
    /// The login: verified when `verified`, otherwise only the name the client claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// Whether `login` was proven (a token or a passcode).
    #[serde(rename = "vf", default, skip_serializing_if = "is_false")]
    pub verified: bool,
    /// What the token lets the connection subscribe and publish to.
    #[serde(rename = "g", default, skip_serializing_if = "Grants::is_unrestricted")]
    pub grants: Grants,
    /// When the connection's token expires, exp plus leeway (ms): the room closes it then.
    #[serde(rename = "exp", default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<u64>,
    /// The room the socket was opened to, for a token's `rooms` claim at CONNECT.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub room: String,
    /// The client's address, for the per-address connection cap.
    #[serde(rename = "addr", default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The socket carries SockJS frames (see [`Peer::sockjs`]).
    #[serde(rename = "sj", default, skip_serializing_if = "is_false")]
    pub sockjs: bool,
    /// Where the connection stands against its publish rate.
    #[serde(rename = "rate", default, skip_serializing_if = "Throttle::is_unused")]
    pub throttle: Throttle,
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
    pub fn new(conn: ConnId, peer: Peer, now_ms: u64) -> Self {
        Self {
            conn,
            phase: Phase::AwaitingConnect,
            version: Version::V1_2,
            login: None,
            verified: false,
            grants: Grants::default(),
            expires_ms: None,
            room: peer.room,
            address: peer.address,
            sockjs: peer.sockjs,
            throttle: Throttle::default(),
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

    /// Who this session is for `sender` and `/user/` delivery: its verified login, else its
    /// session id. A claimed login is never an identity: anyone can claim "alice".
    pub fn identity(&self) -> String {
        match &self.login {
            Some(login) if self.verified => login.clone(),
            _ => self.session_id(),
        }
    }

    /// Whether a message stamped with this `sender` (and `sender-verified`) came from this
    /// session or, when this session is verified, from the same verified login. Compares
    /// without building the session's identity: it runs for every echo-off subscriber of a
    /// fan-out.
    pub fn sent(&self, sender: &str, sender_verified: bool) -> bool {
        match &self.login {
            Some(login) if self.verified => sender_verified && login == sender,
            _ => {
                !sender_verified
                    && sender
                        .strip_prefix('s')
                        .is_some_and(|conn| conn.parse() == Ok(self.conn))
            }
        }
    }

    pub fn subscription(&self, id: &str) -> Option<&Subscription> {
        self.subscriptions.iter().find(|s| s.id == id)
    }

    pub fn subscription_by_handle(&self, handle: u32) -> Option<&Subscription> {
        self.subscriptions.iter().find(|s| s.handle == handle)
    }

    pub fn subscription_by_handle_mut(&mut self, handle: u32) -> Option<&mut Subscription> {
        self.subscriptions.iter_mut().find(|s| s.handle == handle)
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

fn is_false(value: &bool) -> bool {
    !value
}
