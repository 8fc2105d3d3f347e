//! A room's settings (`ROOM_SETTINGS` in `wrangler.toml`): every field optional, defaults below
//! and in the README.

use serde::{Deserialize, Serialize};

use super::auth::{pattern, TokenRules};
use super::broker::{Config, MAX_IDEMPOTENCY_KEY_BYTES};
use super::log::Level;
use super::record::ROW_OVERHEAD;
use super::scaling::ScalingSettings;
use super::webhooks::WebhookSettings;

/// The most a wake may load into memory (see [`Settings::wake_bytes`]): half an isolate's
/// 128 MB, leaving the rest to the room's sessions, its sockets' buffers and the Worker.
pub const MAX_WAKE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// How often, at most, the room wakes to look for clients whose heart-beats stopped, in
    /// ms. Their pings are answered by the transport without waking the room, so finding a
    /// silent one costs a wake; by default the room looks at most every 5 minutes, and a dead
    /// client is closed up to that late. 0 checks each client on time, at the end of its grace
    /// period (twice its heart-beat interval), at the cost of waking the room about that often
    /// while clients are connected. A room with gateway members also asks their gateways this
    /// often which members they still hold (every 5 minutes when 0).
    pub liveness_check_ms: u64,
    /// What a signed token must say besides its signature (used when keys are configured).
    pub auth: TokenRules,
    /// The `Origin`s a browser page may open WebSockets from (exact, or with `*` as in
    /// `https://*.example.com`). Empty: any. Requests without an `Origin` (not from a browser
    /// page) are not cross-site and always allowed.
    pub allowed_origins: Vec<String>,
    /// Spring-style endpoints, e.g. `["/ws-stomp"]`: each path's connections share one room
    /// (see [`endpoints`](super::endpoints)). Empty by default.
    pub endpoints: Vec<String>,
    /// Adds the services SockJS's protocol tests expect (`/echo`, `/close`,
    /// `/disabled_websocket_echo`, `/cookie_needed_echo`; see [`endpoints`](super::endpoints)),
    /// for running those tests against a test server. Never on in production. Default false.
    pub sockjs_test_services: bool,
    /// Whether frames due to the same connections within one event leave as one WebSocket
    /// message (a replay, a client's message carrying several SENDs; see the engine's
    /// `coalesce`). A lone frame always leaves at once, alone. Default true; false sends one
    /// message per frame.
    pub coalesce_frames: bool,
    /// Limits of the HTTP rungs: open event streams and waiting polls.
    pub http: HttpSettings,
    /// What the room logs (see [`log`](super::log)): `"debug"`, `"info"` (the default:
    /// connections opened and closed, refusals, storage failures), `"warn"` (refusals and
    /// failures), `"error"` (storage failures) or `"off"`.
    pub log_level: Level,
    /// Where and what the room tells by webhook (off unless `url` is set).
    pub webhooks: WebhookSettings,
    /// How rooms spread over objects: rooms named by destinations, gateways for big rooms.
    pub scaling: ScalingSettings,
    /// Limits, heart-beats and timeouts of the STOMP broker.
    #[serde(flatten)]
    pub broker: Config,
}

impl Settings {
    /// Why these settings cannot work, if they cannot (the room then fails closed, as with
    /// settings that do not parse).
    pub fn check(&self) -> Result<(), String> {
        self.broker
            .budget
            .check(self.broker.limits.max_frame_bytes)?;
        self.webhooks.check()?;
        self.scaling.check()?;
        let loaded = self.wake_bytes();
        if loaded > MAX_WAKE_BYTES {
            return Err(format!(
                "a wake could load up to {loaded} bytes into memory (budget.max_queued_bytes + \
                 budget.max_room_staged_bytes + budget.max_partial_bytes + \
                 budget.max_idempotency_keys × their size + webhooks.max_outbox_bytes when \
                 webhooks are on), over the {MAX_WAKE_BYTES} a room may load: half of an \
                 isolate's 128 MB; lower one of them"
            ));
        }
        Ok(())
    }

    /// The most a wake loads into memory: queues, staged and partial frames, idempotency keys
    /// (each as large as a key and a destination may be), and the webhooks' outbox.
    pub fn wake_bytes(&self) -> u64 {
        let budget = &self.broker.budget;
        let key_bytes = (MAX_IDEMPOTENCY_KEY_BYTES + self.broker.limits.max_destination_bytes)
            as u64
            + ROW_OVERHEAD;
        let outbox = if self.webhooks.enabled() {
            self.webhooks.max_outbox_bytes
        } else {
            0
        };
        budget.max_queued_bytes
            + budget.max_room_staged_bytes
            + budget.max_partial_bytes
            + u64::from(budget.max_idempotency_keys) * key_bytes
            + outbox
    }

    /// Whether a WebSocket upgrade with this `Origin` header, to the server at `host`, may
    /// proceed: the defence against cross-site WebSocket hijacking, where another site's page
    /// connects with its visitor's cookies and address. The server's own pages (the origin's
    /// host is the request's `Host`) are never cross-site.
    pub fn origin_allowed(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else {
            return true;
        };
        let origin_host = origin.split_once("://").map(|(_, authority)| authority);
        self.allowed_origins.is_empty()
            || (origin_host.is_some() && origin_host == host)
            || pattern::any_matches(&self.allowed_origins, origin)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            liveness_check_ms: 300_000,
            auth: TokenRules::default(),
            allowed_origins: Vec::new(),
            coalesce_frames: true,
            http: HttpSettings::default(),
            webhooks: WebhookSettings::default(),
            scaling: ScalingSettings::default(),
            endpoints: Vec::new(),
            sockjs_test_services: false,
            log_level: Level::default(),
            broker: Config::default(),
        }
    }
}

/// Limits of the HTTP rungs (`http` in the settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Event streams a room holds open at once; the next gets 429. Default 1000.
    pub max_streams: u32,
    /// Long polls a room holds waiting at once; the next gets 429. Default 1000.
    pub max_waiting_polls: u32,
    /// The longest a long poll waits, in seconds (`wait` is capped to it). Default 30.
    pub max_wait_s: u32,
    /// How often an idle event stream gets a comment, so proxies keep it open, in seconds.
    /// Default 15.
    pub keep_alive_s: u32,
    /// Bytes an event stream's client may leave unread; past it the stream ends (the client
    /// reconnects with `Last-Event-ID`). Default 1 MiB.
    pub max_stream_backlog_bytes: u32,
    /// Bytes all event streams' clients may leave unread together; past it the streams
    /// with the most unread end. Default 16 MiB.
    pub max_backlog_bytes: u32,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            max_streams: 1000,
            max_waiting_polls: 1000,
            max_wait_s: 30,
            keep_alive_s: 15,
            max_stream_backlog_bytes: 1024 * 1024,
            max_backlog_bytes: 16 * 1024 * 1024,
        }
    }
}
