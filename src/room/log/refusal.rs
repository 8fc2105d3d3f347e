//! Why the room refused a client, from a fixed list, and the setting that refused it, read from
//! the refusal's own words without logging them.

use crate::stomp::ProtocolError;

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
pub(super) fn limit_of(error: &ProtocolError) -> Option<&'static str> {
    match error.message.as_str() {
        "destination too long" => Some("max_destination_bytes"),
        message if message.ends_with(" too long") && message != "header line too long" => {
            Some("max_id_bytes")
        }
        _ => limit_named(&error.detail),
    }
}
