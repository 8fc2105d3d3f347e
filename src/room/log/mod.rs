//! What a room tells its operator: one JSON object per line, decided here and printed by the
//! edge as it is (`console.log`, `console.warn` or `console.error` by its level), so Workers
//! Logs and `wrangler tail --format json` index its fields.
//!
//! A line is built only from fields the room chose: the kind of event (`message`), the room,
//! the connection, the transport, the client's address, a reason and a limit from fixed lists,
//! a verified login, a duration, storage's own error. Never a message body, a header, a token,
//! a passcode or anything a client wrote.
//!
//! The engine logs with `self.log(event)`, which also counts what `/stats` counts (refusals by
//! reason, failed webhook deliveries). A new kind of event is one variant of [`LogEvent`] and
//! its arm in [`LogEvent::level`], [`LogEvent::message`] and [`LogEvent::fields`] (the compiler
//! lists the others); a webhook's failed delivery is already one:
//! `self.log(LogEvent::WebhookFailed { webhook: url_origin(&url), status, attempt })`.

mod event;
mod line;
mod refusal;

use serde::{Deserialize, Serialize};

pub use event::{CloseReason, LogEvent, Transport};
use line::Line;
pub use refusal::{limit_named, Refusal};

/// How much the room logs (`log_level` in the settings): lines at this level and above.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Everything below, and each socket as it opens and as its CONNECT is accepted.
    Debug,
    /// Connections, one line each as it ends (who, how, why and how long).
    #[default]
    Info,
    /// Refusals: a client was refused and why.
    Warn,
    /// The room could not store an event.
    Error,
    /// No line of the room's (the Worker's own failures, [`platform_error`], still print).
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

/// A URL's scheme, host and port alone: no user, password, path, query or fragment, where a
/// webhook's secret usually is.
pub fn url_origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if scheme.is_empty() {
        host.to_owned()
    } else {
        format!("{scheme}://{host}")
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

    /// The room's name, once known.
    pub fn room(&self) -> Option<&str> {
        self.room.as_deref()
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
