//! The broker's settings: limits, heart-beats, timeouts, rates and destinations, all from
//! `ROOM_SETTINGS`.

#[allow(unused_imports)]
use super::*;

/// The broker's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Messages kept per `/topic/` destination for replay. Default 100.
    pub history_limit: u32,
    pub limits: Limits,
    /// What the whole room may hold (see [`Budget`]).
    pub budget: Budget,
    /// The shortest heart-beat interval the room agrees to, in ms, either way. The room offers
    /// it in CONNECTED (`heart-beat:{min},{min}`), so by the spec's rule each direction beats
    /// at what the client asked for, but never faster than this. Default 1000.
    pub heart_beat_min_ms: u32,
    /// How long a socket may stay open without sending CONNECT, in ms. Default 30 s.
    pub connect_timeout_ms: u64,
    /// The `server` header of CONNECTED.
    pub server: String,
    /// The transport answers every client heart-beat with one of ours (the WebSocket
    /// auto-response does). Then a client that pings at least as often as it wants to hear
    /// from us needs no heart-beats from the broker: its own pings bring them. Default false.
    #[serde(skip)]
    pub heart_beats_echoed: bool,
    /// How fast each connection may publish.
    pub publish_rate: PublishRate,
    /// Spring-style destination prefixes (empty by default).
    pub destinations: destinations::Prefixes,
    /// Connections the room holds at once; the next gets an ERROR ("room full"). 0: no cap.
    /// Default 5000.
    pub max_connections: u32,
    /// Connections from one client address (`CF-Connecting-IP`) the room holds at once; the
    /// next gets an ERROR ("too many connections"). 0: no cap. Default 100.
    pub max_connections_per_address: u32,
    /// How long a publish's idempotency key (`idempotency-key` on a SEND, `Idempotency-Key`
    /// on a POST) names it, in ms: a repeat within it is answered with the original's id and
    /// delivers nothing. 0: keys are not kept (the header is an ordinary one). Default 120000.
    pub idempotency_window_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            history_limit: 100,
            limits: Limits::default(),
            budget: Budget::default(),
            heart_beat_min_ms: 1_000,
            connect_timeout_ms: 30_000,
            server: concat!("stomp-rooms/", env!("CARGO_PKG_VERSION")).to_owned(),
            heart_beats_echoed: false,
            publish_rate: PublishRate::default(),
            destinations: destinations::Prefixes::default(),
            max_connections: 5000,
            max_connections_per_address: 100,
            idempotency_window_ms: 120_000,
        }
    }
}
