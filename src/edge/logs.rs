//! Prints the room's log lines (see [`crate::room::log`]) as they are: one JSON object per
//! `console` call, at the console level of the line's, which Workers Logs and
//! `wrangler tail --format json` index by field.

use worker::{console_error, console_log, console_warn};

use crate::room::log::{self, Level, LogLine};

pub fn print(lines: &[LogLine]) {
    for line in lines {
        match line.level {
            Level::Error => console_error!("{}", line.json),
            Level::Warn => console_warn!("{}", line.json),
            _ => console_log!("{}", line.json),
        }
    }
}

/// A failure of the platform or of the Worker's configuration, printed at every level (see
/// [`log::platform_error`]).
pub fn platform_error(message: &str, room: Option<&str>, error: &str) {
    print(&[log::platform_error(message, room, error)]);
}
