//! The room's sockets as the engine sees them while SockJS sessions exist: sends and closes
//! for a session's connection go to the session, everything else to the sockets.

use super::SockJsSessions;
use crate::room::http::{HttpResponse, ListenerId};
use crate::room::session::ConnId;
use crate::room::sockets::Sockets;

pub struct SessionSockets<'a, S: Sockets> {
    pub sessions: &'a mut SockJsSessions,
    pub sockets: &'a mut S,
    pub now: u64,
}

impl<S: Sockets> Sockets for SessionSockets<'_, S> {
    fn accept(&mut self, conn: ConnId) {
        if !self.sessions.accept(conn, self.now) {
            self.sockets.accept(conn);
        }
    }

    fn send(&mut self, conn: ConnId, bytes: &[u8], binary: bool) {
        if self.sessions.is_session(conn) {
            self.sessions.send(conn, bytes, self.sockets, self.now);
        } else {
            self.sockets.send(conn, bytes, binary);
        }
    }

    fn send_many(&mut self, conns: &[ConnId], bytes: &[u8], binary: bool) {
        if self.sessions.by_conn.is_empty() {
            return self.sockets.send_many(conns, bytes, binary);
        }
        let (sessions, sockets): (Vec<ConnId>, Vec<ConnId>) = conns
            .iter()
            .partition(|&&conn| self.sessions.is_session(conn));
        self.sockets.send_many(&sockets, bytes, binary);
        for conn in sessions {
            self.sessions.send(conn, bytes, self.sockets, self.now);
        }
    }

    fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        if self.sessions.is_session(conn) {
            self.sessions
                .close(conn, code, reason, self.sockets, self.now);
        } else {
            self.sockets.close(conn, code, reason);
        }
    }

    fn save_session(&mut self, conn: ConnId, session: &str) {
        // A SockJS session over HTTP lives in memory only (see the module's notes).
        if !self.sessions.is_session(conn) {
            self.sockets.save_session(conn, session);
        }
    }

    /// Asked only while the engine is built from the sessions kept with sockets (a wake, or
    /// a rebuild after a failed write), which SockJS sessions over HTTP are not among: the
    /// rebuilt broker does not know them, so they are lost, and their clients told so.
    fn sessions(&mut self) -> Vec<(ConnId, Option<String>)> {
        self.sessions.lose_all(self.sockets, self.now);
        self.sockets.sessions()
    }

    fn last_ping_ms(&self, conn: ConnId) -> Option<u64> {
        self.sockets.last_ping_ms(conn)
    }

    fn hold(&mut self, listener: ListenerId) {
        self.sockets.hold(listener);
    }

    fn answer(&mut self, listener: ListenerId, response: HttpResponse) {
        self.sockets.answer(listener, response);
    }

    fn stream(&mut self, listener: ListenerId, bytes: &[u8]) -> bool {
        self.sockets.stream(listener, bytes)
    }

    fn end(&mut self, listener: ListenerId) {
        self.sockets.end(listener);
    }
}
