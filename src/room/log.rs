//! What a room tells its operator: one JSON object per line, decided here and printed by the
//! edge as it is (`console.log`, `console.warn` or `console.error` by its level), so Workers
//! Logs and `wrangler tail --format json` index its fields.
//!
//! A line is built only from fields the room chose: the kind of event (`message`), the room,
//! the connection, the transport, the client's address, a reason and a limit from fixed lists,
//! a verified login, a duration, storage's own error. Never a message body, a header, a token,
//! a passcode or anything a client wrote.
//!
//! Adding an event kind (a webhook delivery failed, say) is one variant of [`LogEvent`] and one
//! arm in each of [`LogEvent::level`], [`LogEvent::message`] and [`LogEvent::fields`]; the
//! engine records it with `self.logs.record(room_event)`.

use serde::{Deserialize, Serialize};

use super::session::{ConnId, Session};
use crate::stomp::ProtocolError;

/// How much the room logs (`log_level` in the settings): lines at this level and above.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Everything below, and each socket that opens before it sends CONNECT.
    Debug,
    /// Connections opened and closed.
    #[default]
    Info,
    /// Refusals: a client was refused and why.
    Warn,
    /// The room could not store an event.
    Error,
    /// Nothing.
    Off,
}

// By hand, through a string: a derived enum visitor costs the Worker more code.
impl Serialize for Level {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        [Self::Debug, Self::Info, Self::Warn, Self::Error, Self::Off]
            .into_iter()
            .find(|level| level.as_str() == name)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "log_level {name:?} is not one of \"debug\", \"info\", \"warn\", \"error\", \"off\""
                ))
            })
    }
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Off => "off",
        }
    }
}

/// Why the room refused a client: a fixed list, so `/stats` counts each in a bounded map and a
/// log line never carries the client's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Refusal {
    /// A bad or missing token or login.
    Authentication,
    /// A token's claims do not allow the SUBSCRIBE or SEND (or, over HTTP, a page's origin).
    Permission,
    /// A connection's token expired.
    TokenExpired,
    /// Sending faster than `publish_rate`.
    RateLimit,
    /// The room holds `max_connections` (or the platform its sockets).
    RoomFull,
    /// The address holds `max_connections_per_address`.
    TooManyConnections,
    /// A frame, message, body, header or name over its limit.
    TooLarge,
    /// A connection's own caps: subscriptions, transactions, frames in a transaction.
    ConnectionLimit,
    /// The room's budget: a full queue, too many queues, transactions or partial frames.
    RoomBudget,
    /// A destination that does not exist, cannot be sent to, or cannot be routed.
    Destination,
    /// Anything else the protocol does not allow (a malformed frame, a frame out of order).
    Protocol,
}

impl Refusal {
    pub const ALL: [Refusal; 11] = [
        Self::Authentication,
        Self::Permission,
        Self::TokenExpired,
        Self::RateLimit,
        Self::RoomFull,
        Self::TooManyConnections,
        Self::TooLarge,
        Self::ConnectionLimit,
        Self::RoomBudget,
        Self::Destination,
        Self::Protocol,
    ];

    /// Its name in a log line and in `/stats`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authentication => "authentication",
            Self::Permission => "permission",
            Self::TokenExpired => "token_expired",
            Self::RateLimit => "rate_limit",
            Self::RoomFull => "room_full",
            Self::TooManyConnections => "too_many_connections",
            Self::TooLarge => "too_large",
            Self::ConnectionLimit => "connection_limit",
            Self::RoomBudget => "room_budget",
            Self::Destination => "destination",
            Self::Protocol => "protocol",
        }
    }

    /// Its counter's key in storage (`meta`).
    pub fn counter_key(self) -> &'static str {
        match self {
            Self::Authentication => "refusals.authentication",
            Self::Permission => "refusals.permission",
            Self::TokenExpired => "refusals.token_expired",
            Self::RateLimit => "refusals.rate_limit",
            Self::RoomFull => "refusals.room_full",
            Self::TooManyConnections => "refusals.too_many_connections",
            Self::TooLarge => "refusals.too_large",
            Self::ConnectionLimit => "refusals.connection_limit",
            Self::RoomBudget => "refusals.room_budget",
            Self::Destination => "refusals.destination",
            Self::Protocol => "refusals.protocol",
        }
    }

    /// The refusal an ERROR tells of, by its `message` (the short summary the room sets); `None`
    /// for the timeouts, which end a connection without refusing anything it asked.
    pub fn of(error: &ProtocolError) -> Option<Self> {
        let message = error.message.as_str();
        Some(match message {
            "CONNECT timeout" | "heart-beat timeout" => return None,
            "authentication failed" => Self::Authentication,
            "permission denied" => Self::Permission,
            "token expired" => Self::TokenExpired,
            "rate limit exceeded" => Self::RateLimit,
            "room full" => Self::RoomFull,
            "too many connections" => Self::TooManyConnections,
            "queue full" | "too many queues" | "room busy" => Self::RoomBudget,
            "too many subscriptions" | "too many transactions" => Self::ConnectionLimit,
            "unknown destination"
            | "invalid destination"
            | "read-only destination"
            | "unroutable message" => Self::Destination,
            _ if message.ends_with(" too large")
                || message.ends_with(" too long")
                || message == "too many headers" =>
            {
                Self::TooLarge
            }
            _ => Self::Protocol,
        })
    }

    /// The setting an HTTP refusal names, by its status: 401, 403, 413 and 429 are refusals;
    /// other answers (a bad request, a missing destination) are not logged as such.
    pub fn of_http(status: u16) -> Option<Self> {
        match status {
            401 => Some(Self::Authentication),
            403 => Some(Self::Permission),
            413 => Some(Self::TooLarge),
            429 => Some(Self::RateLimit),
            507 => Some(Self::RoomBudget),
            _ => None,
        }
    }
}

/// The settings a refusal may name, as the room's ERROR bodies and HTTP answers name them.
const LIMITS: [&str; 31] = [
    "max_frame_bytes",
    "max_body_bytes",
    "max_headers",
    "max_header_line_bytes",
    "max_subscriptions",
    "max_id_bytes",
    "max_destination_bytes",
    "max_unacked",
    "max_transactions",
    "max_transaction_frames",
    "max_connections",
    "max_connections_per_address",
    "budget.max_queue_messages",
    "budget.max_queue_bytes",
    "budget.max_queued_bytes",
    "budget.max_queues",
    "budget.max_staged_bytes",
    "budget.max_room_staged_bytes",
    "budget.max_partial_bytes",
    "budget.max_row_bytes",
    "budget.max_read_bytes",
    "budget.max_history_bytes",
    "http.max_streams",
    "http.max_waiting_polls",
    "http.max_stream_backlog_bytes",
    "publish_rate.messages_per_s",
    "publish_rate.frames_per_s",
    "publish_rate.bytes_per_s",
    "allowed_origins",
    "auth",
    "max_line",
];

/// The setting a refusal's text names (the room writes it in parentheses, as in
/// `(max_frame_bytes)`), taken from [`LIMITS`] so nothing of the text itself is logged.
pub fn limit_named(text: &str) -> Option<&'static str> {
    if text.contains("messages per second") {
        return Some("publish_rate.messages_per_s");
    }
    if text.contains("frames per second") {
        return Some("publish_rate.frames_per_s");
    }
    if text.contains("bytes per") && text.contains("second") {
        return Some("publish_rate.bytes_per_s");
    }
    text.split('(')
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(inside, _)| inside))
        .find_map(|inside| {
            // `(max_queue_messages or max_queue_bytes)`: the first one named.
            let first = inside.split(' ').next().unwrap_or_default();
            LIMITS.iter().copied().find(|limit| *limit == first)
        })
}

/// The setting an ERROR names, when it names one.
fn limit_of(error: &ProtocolError) -> Option<&'static str> {
    match error.message.as_str() {
        "destination too long" => Some("max_destination_bytes"),
        message if message.ends_with(" too long") && message != "header line too long" => {
            Some("max_id_bytes")
        }
        _ => limit_named(&error.detail),
    }
}

/// How a client reached the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    WebSocket,
    /// SockJS, over its WebSocket or its HTTP transports.
    SockJs,
    /// The HTTP rungs: publishes, polls, event streams, `/stats`.
    Http,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WebSocket => "websocket",
            Self::SockJs => "sockjs",
            Self::Http => "http",
        }
    }

    fn of(session: &Session) -> Self {
        if session.sockjs {
            Self::SockJs
        } else {
            Self::WebSocket
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent DISCONNECT.
    Disconnect,
    /// The client's socket closed or failed (or its SockJS session stopped coming).
    SocketClosed,
    /// No CONNECT in `connect_timeout_ms`.
    ConnectTimeout,
    /// The client's heart-beats stopped.
    HeartBeatTimeout,
    /// The room refused something the client sent, and closed it.
    Refused(Refusal),
    /// The room could not store what the client sent, and closed it.
    StorageFailure,
}

impl CloseReason {
    pub fn of(error: &ProtocolError) -> Self {
        match error.message.as_str() {
            "CONNECT timeout" => Self::ConnectTimeout,
            "heart-beat timeout" => Self::HeartBeatTimeout,
            _ => Self::Refused(Refusal::of(error).unwrap_or(Refusal::Protocol)),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disconnect => "disconnect",
            Self::SocketClosed => "socket_closed",
            Self::ConnectTimeout => "connect_timeout",
            Self::HeartBeatTimeout => "heart_beat_timeout",
            Self::Refused(_) => "refused",
            Self::StorageFailure => "storage_failure",
        }
    }
}

/// Something an operator should hear of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    /// A socket was accepted (before its CONNECT).
    SocketOpened {
        conn: ConnId,
        transport: Transport,
        address: Option<String>,
    },
    /// A connection's CONNECT was accepted. `login` only when verified: a claimed login is a
    /// display name anyone can pick.
    Connected {
        conn: ConnId,
        transport: Transport,
        address: Option<String>,
        verified: bool,
        login: Option<String>,
    },
    /// A connection ended, `duration_ms` after its socket opened.
    Closed {
        conn: ConnId,
        transport: Transport,
        reason: CloseReason,
        duration_ms: u64,
    },
    /// A client was refused, naming the setting that refused it when one did.
    Refused {
        conn: Option<ConnId>,
        transport: Transport,
        reason: Refusal,
        limit: Option<&'static str>,
        address: Option<String>,
    },
    /// Storage refused an event's writes; the room rebuilt itself from storage.
    StorageFailed { conn: Option<ConnId>, error: String },
}

impl LogEvent {
    /// A connection's ending, from its session as it was.
    pub fn closed(session: &Session, reason: CloseReason, now_ms: u64) -> Self {
        Self::Closed {
            conn: session.conn,
            transport: Transport::of(session),
            reason,
            duration_ms: now_ms.saturating_sub(session.opened_ms),
        }
    }

    /// A connection's CONNECT was accepted.
    pub fn connected(session: &Session) -> Self {
        Self::Connected {
            conn: session.conn,
            transport: Transport::of(session),
            address: session.address.clone(),
            verified: session.verified,
            login: session.login.clone().filter(|_| session.verified),
        }
    }

    /// A connection refused by an ERROR, if the ERROR is a refusal.
    pub fn refused(session: &Session, error: &ProtocolError) -> Option<Self> {
        Some(Self::Refused {
            conn: Some(session.conn),
            transport: Transport::of(session),
            reason: Refusal::of(error)?,
            limit: limit_of(error),
            address: session.address.clone(),
        })
    }

    /// A socket refused as it opened, before it was a connection.
    pub fn refused_socket(error: &ProtocolError, sockjs: bool, address: Option<&str>) -> Self {
        Self::Refused {
            conn: None,
            transport: if sockjs {
                Transport::SockJs
            } else {
                Transport::WebSocket
            },
            reason: Refusal::of(error).unwrap_or(Refusal::Protocol),
            limit: limit_of(error),
            address: address.map(str::to_owned),
        }
    }

    /// An HTTP request refused with this status and text, if the status is a refusal's.
    pub fn refused_request(status: u16, text: &[u8], address: Option<&str>) -> Option<Self> {
        let text = String::from_utf8_lossy(text);
        let limit = limit_named(&text);
        let reason = match (Refusal::of_http(status)?, limit) {
            // The room's own caps on held requests, not the client's rate.
            (Refusal::RateLimit, Some(limit)) if limit.starts_with("http.") => Refusal::RoomBudget,
            (reason, _) => reason,
        };
        Some(Self::Refused {
            conn: None,
            transport: Transport::Http,
            reason,
            limit,
            address: address.map(str::to_owned),
        })
    }

    /// The connection it is about, if one.
    pub fn conn(&self) -> Option<ConnId> {
        match self {
            Self::SocketOpened { conn, .. }
            | Self::Connected { conn, .. }
            | Self::Closed { conn, .. } => Some(*conn),
            Self::Refused { conn, .. } | Self::StorageFailed { conn, .. } => *conn,
        }
    }

    /// Names the transport the connection came by, where the broker could not know it (a
    /// SockJS session over HTTP looks like a plain connection to it).
    pub fn came_by(&mut self, carrier: Transport) {
        match self {
            Self::SocketOpened { transport, .. }
            | Self::Connected { transport, .. }
            | Self::Closed { transport, .. }
            | Self::Refused { transport, .. } => *transport = carrier,
            Self::StorageFailed { .. } => {}
        }
    }

    pub fn level(&self) -> Level {
        match self {
            Self::SocketOpened { .. } => Level::Debug,
            Self::Connected { .. } | Self::Closed { .. } => Level::Info,
            Self::Refused { .. } => Level::Warn,
            Self::StorageFailed { .. } => Level::Error,
        }
    }

    /// What happened, in words an operator searches for.
    pub fn message(&self) -> &'static str {
        match self {
            Self::SocketOpened { .. } => "socket opened",
            Self::Connected { .. } => "connection opened",
            Self::Closed { .. } => "connection closed",
            Self::Refused { .. } => "refused",
            Self::StorageFailed { .. } => "storage failed",
        }
    }

    /// The event's own fields, flat (absent ones left out).
    fn fields(&self, line: &mut Line) {
        match self {
            Self::SocketOpened {
                conn,
                transport,
                address,
            } => {
                line.number("conn", *conn);
                line.text("transport", transport.as_str());
                line.maybe("address", address.as_deref());
            }
            Self::Connected {
                conn,
                transport,
                address,
                verified,
                login,
            } => {
                line.number("conn", *conn);
                line.text("transport", transport.as_str());
                line.maybe("address", address.as_deref());
                line.flag("verified", *verified);
                line.maybe("login", login.as_deref());
            }
            Self::Closed {
                conn,
                transport,
                reason,
                duration_ms,
            } => {
                line.number("conn", *conn);
                line.text("transport", transport.as_str());
                line.text("reason", reason.as_str());
                if let CloseReason::Refused(refusal) = reason {
                    line.text("refusal", refusal.as_str());
                }
                line.number("duration_ms", *duration_ms);
            }
            Self::Refused {
                conn,
                transport,
                reason,
                limit,
                address,
            } => {
                if let Some(conn) = conn {
                    line.number("conn", *conn);
                }
                line.text("transport", transport.as_str());
                line.text("reason", reason.as_str());
                line.maybe("limit", *limit);
                line.maybe("address", address.as_deref());
            }
            Self::StorageFailed { conn, error } => {
                if let Some(conn) = conn {
                    line.number("conn", *conn);
                }
                line.text("error", error);
            }
        }
    }

    /// The event as one JSON line: `level`, `message`, `room` (when known), then its fields.
    pub fn line(&self, room: Option<&str>) -> LogLine {
        let mut line = Line(String::with_capacity(160));
        line.text("level", self.level().as_str());
        line.text("message", self.message());
        line.maybe("room", room);
        self.fields(&mut line);
        line.0.push('}');
        LogLine {
            level: self.level(),
            json: line.0,
        }
    }
}

/// A JSON object being written, field by field, in the order written (an operator reads
/// `level` and `message` first in `wrangler tail`).
struct Line(String);

impl Line {
    fn key(&mut self, name: &str) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        self.0.push('"');
        self.0.push_str(name);
        self.0.push_str("\":");
    }

    fn text(&mut self, name: &str, value: &str) {
        self.key(name);
        // A string always serializes.
        self.0
            .push_str(&serde_json::to_string(value).unwrap_or_default());
    }

    fn maybe(&mut self, name: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.text(name, value);
        }
    }

    fn number(&mut self, name: &str, value: u64) {
        self.key(name);
        self.0.push_str(&value.to_string());
    }

    fn flag(&mut self, name: &str, value: bool) {
        self.key(name);
        self.0.push_str(if value { "true" } else { "false" });
    }
}

/// A failure the edge met outside any room's decision (settings that cannot be read, the
/// platform refusing a socket, an alarm or an attachment), as an `error` line with the same
/// shape: `message` says what failed, `error` what the platform said. Printed at every level,
/// since nothing works as configured while it lasts.
pub fn platform_error(message: &str, room: Option<&str>, error: &str) -> LogLine {
    let mut line = Line(String::with_capacity(160));
    line.text("level", Level::Error.as_str());
    line.text("message", message);
    line.maybe("room", room);
    line.text("error", error);
    line.0.push('}');
    LogLine {
        level: Level::Error,
        json: line.0,
    }
}

/// One line for the edge to print as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    /// One JSON object, no newline.
    pub json: String,
}

/// The lines an event produced, at or above the room's level, for its host to hand out.
#[derive(Debug, Clone, Default)]
pub struct Logs {
    level: Level,
    /// The room's name, once an event has told it.
    room: Option<String>,
    lines: Vec<LogLine>,
}

impl Logs {
    pub fn new(level: Level) -> Self {
        Self {
            level,
            ..Self::default()
        }
    }

    /// The room's name, for the lines after it.
    pub fn room_is(&mut self, room: &str) {
        if self.room.is_none() && !room.is_empty() {
            self.room = Some(room.to_owned());
        }
    }

    pub fn record(&mut self, event: &LogEvent) {
        if self.level != Level::Off && event.level() >= self.level {
            self.lines.push(event.line(self.room.as_deref()));
        }
    }

    /// The lines since the last take.
    pub fn take(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.lines)
    }

    /// Keeps the name and lines of the logs this one replaces (a rebuild).
    pub fn carry_over(&mut self, before: &mut Logs) {
        self.room = self.room.take().or(before.room.take());
        let mut lines = before.take();
        lines.append(&mut self.lines);
        self.lines = lines;
    }
}
