//! The events a room logs, and how each becomes a line.

use super::line::Line;
use super::refusal::{limit_named, limit_of, Refusal};
use super::{Level, LogLine};
use crate::room::session::{ConnId, Session};
use crate::stomp::ProtocolError;

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
    /// A connection ended, `duration_ms` after its socket opened: the one line a connection
    /// logs at `info`, like an access log's, so it names who it was too (`login` only when
    /// verified).
    Closed {
        conn: ConnId,
        transport: Transport,
        reason: CloseReason,
        duration_ms: u64,
        address: Option<String>,
        verified: bool,
        login: Option<String>,
    },
    /// A client was refused, naming the setting that refused it when one did. `login` and
    /// `verified` are the session's (a connection refused as it opened, or a request over
    /// HTTP, has none): not logged, but told to the webhook's `refusal` event, which calls a
    /// claimed login a `name`.
    Refused {
        conn: Option<ConnId>,
        transport: Transport,
        reason: Refusal,
        limit: Option<&'static str>,
        address: Option<String>,
        login: Option<String>,
        verified: bool,
    },
    /// Storage refused an event's writes; the room rebuilt itself from storage.
    StorageFailed { conn: Option<ConnId>, error: String },
    /// A webhook delivery failed (counted in `/stats` as `webhook_failures`). `webhook` is its
    /// URL's origin alone ([`url_origin`]): a webhook URL often carries its secret.
    WebhookFailed {
        webhook: String,
        /// The answer's status, if one came.
        status: Option<u16>,
        /// Which attempt this was (1: the first).
        attempt: u32,
    },
}

impl LogEvent {
    /// A connection's ending, from its session as it was.
    pub fn closed(session: &Session, reason: CloseReason, now_ms: u64) -> Self {
        Self::Closed {
            conn: session.conn,
            transport: Transport::of(session),
            reason,
            duration_ms: now_ms.saturating_sub(session.opened_ms),
            address: session.address.clone(),
            verified: session.verified,
            login: session.login.clone().filter(|_| session.verified),
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
            login: session.login.clone(),
            verified: session.verified,
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
            login: None,
            verified: false,
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
            login: None,
            verified: false,
        })
    }

    /// The connection it is about, if one.
    pub fn conn(&self) -> Option<ConnId> {
        match self {
            Self::SocketOpened { conn, .. }
            | Self::Connected { conn, .. }
            | Self::Closed { conn, .. } => Some(*conn),
            Self::Refused { conn, .. } | Self::StorageFailed { conn, .. } => *conn,
            Self::WebhookFailed { .. } => None,
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
            Self::StorageFailed { .. } | Self::WebhookFailed { .. } => {}
        }
    }

    pub fn level(&self) -> Level {
        match self {
            // A line per CONNECT would double what the close says, and costs the connect
            // path a print: a storm of connects printed half as fast with it.
            Self::SocketOpened { .. } | Self::Connected { .. } => Level::Debug,
            Self::Closed { .. } => Level::Info,
            Self::Refused { .. } | Self::WebhookFailed { .. } => Level::Warn,
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
            Self::WebhookFailed { .. } => "webhook delivery failed",
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
                address,
                verified,
                login,
            } => {
                line.number("conn", *conn);
                line.text("transport", transport.as_str());
                line.text("reason", reason.as_str());
                if let CloseReason::Refused(refusal) = reason {
                    line.text("refusal", refusal.as_str());
                }
                line.number("duration_ms", *duration_ms);
                line.maybe("address", address.as_deref());
                line.flag("verified", *verified);
                line.maybe("login", login.as_deref());
            }
            Self::Refused {
                conn,
                transport,
                reason,
                limit,
                address,
                ..
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
            Self::WebhookFailed {
                webhook,
                status,
                attempt,
            } => {
                line.text("webhook", webhook);
                if let Some(status) = status {
                    line.number("status", u64::from(*status));
                }
                line.number("attempt", u64::from(*attempt));
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
