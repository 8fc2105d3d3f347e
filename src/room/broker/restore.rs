//! The broker rebuilt after the room wakes, from the sessions kept with sockets and what
//! storage holds.

#[allow(unused_imports)]
use super::*;

impl Broker {
    /// Re-adds a connection from its persisted session and rebuilds its routing entries.
    pub fn restore_session(&mut self, session: Session) {
        self.insert_connection(session);
    }

    /// Sets the last message id given out (persisted by the caller).
    pub fn restore_last_message_id(&mut self, id: u64) {
        self.last_message_id = self.last_message_id.max(id);
    }

    /// Gives back a partial frame persisted before the room was evicted, stored in `pieces`.
    pub fn restore_partial_frame(&mut self, conn: ConnId, bytes: &[u8], pieces: u64) {
        if let Some(connection) = self.conns.get_mut(&conn) {
            connection.decoder.push(bytes);
            connection.pieces = pieces;
            // Stored within the budget; counted whatever the budget is now.
            self.usage.count_partial(conn, connection.partial_bytes());
        }
    }

    /// Gives back what each destination's stored history holds.
    pub fn restore_history(&mut self, history: Vec<(String, HistoryUsage)>) {
        if self.config.history_limit == 0 {
            return;
        }
        for (destination, usage) in history {
            self.usage.set_history(&destination, usage);
        }
    }
}
