//! The room's sockets as the engine sees them: sends and closes for a SockJS session's
//! connection go to the session, those for a SockJS-framed socket are framed, everything else
//! goes to the sockets as it is.

use super::{Carrier, SockJsSessions};
use crate::room::session::ConnId;
use crate::room::sockets::Sockets;
use crate::sockjs;

pub struct SessionSockets<'a, S: Sockets> {
    pub sessions: &'a mut SockJsSessions,
    pub sockets: &'a mut S,
    pub now: u64,
}

impl<S: Sockets> SessionSockets<'_, S> {
    /// Opens connection `conn`, carried as `carrier` says: a socket is accepted (`false` when
    /// the platform refuses it), a SockJS socket then gets `o` before anything the room sends,
    /// and a session over HTTP begins.
    pub fn open(&mut self, conn: ConnId, carrier: Carrier) -> bool {
        match carrier {
            Carrier::SockJsSession(opening) => {
                self.sessions.insert(conn, opening, self.now);
                true
            }
            Carrier::WebSocket => self.sockets.accept(conn),
            Carrier::SockJsWebSocket => {
                if !self.sockets.accept(conn) {
                    return false;
                }
                self.sessions.framed.insert(conn);
                self.sockets
                    .send_apart(conn, sockjs::OPEN.as_bytes(), false);
                true
            }
        }
    }
}

impl<S: Sockets> Sockets for SessionSockets<'_, S> {
    /// A socket as it is (see [`open`](Self::open) for the others).
    fn accept(&mut self, conn: ConnId) -> bool {
        self.sockets.accept(conn)
    }

    fn send(&mut self, conn: ConnId, bytes: &[u8], binary: bool) {
        if self.sessions.is_session(conn) {
            self.sessions.send(conn, bytes, self.sockets, self.now);
        } else if self.sessions.is_framed(conn) {
            self.sockets.send_sockjs(&[conn], bytes);
        } else {
            self.sockets.send(conn, bytes, binary);
        }
    }

    fn send_many(&mut self, conns: &[ConnId], bytes: &[u8], binary: bool) {
        // The common case, sockets as they are, pays no lookup per subscriber.
        if self.sessions.by_conn.is_empty() && self.sessions.framed.is_empty() {
            return self.sockets.send_many(conns, bytes, binary);
        }
        let mut plain = Vec::with_capacity(conns.len());
        let mut framed_conns = Vec::new();
        for &conn in conns {
            if self.sessions.is_session(conn) {
                self.sessions.send(conn, bytes, self.sockets, self.now);
            } else if self.sessions.is_framed(conn) {
                framed_conns.push(conn);
            } else {
                plain.push(conn);
            }
        }
        self.sockets.send_many(&plain, bytes, binary);
        if !framed_conns.is_empty() {
            self.sockets.send_sockjs(&framed_conns, bytes);
        }
    }

    /// What waits leaves: the sessions' frames of this event, then the coalesced runs.
    fn flush(&mut self) {
        self.sessions.hand_over_due(self.sockets, self.now);
        self.sockets.flush();
    }

    fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        if self.sessions.is_session(conn) {
            self.sessions
                .close(conn, code, reason, self.sockets, self.now);
            return;
        }
        if self.sessions.framed.remove(&conn) {
            let frame = sockjs::close_frame(code, reason);
            self.sockets.send_apart(conn, frame.as_bytes(), false);
        }
        self.sockets.close(conn, code, reason);
    }

    fn forget(&mut self, conn: ConnId) {
        self.sessions.framed.remove(&conn);
        self.sockets.forget(conn);
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

    crate::room::sockets::pass_on_to_inner!();

    fn members(&mut self) -> Option<&mut crate::room::members::Members> {
        self.sockets.members()
    }
}
