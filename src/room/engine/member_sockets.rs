//! The room's sockets as the engine sees them: what the room sends a gateway's member goes to
//! that gateway's outbox (a message shared by several of its members once, naming them all),
//! everything else to the sockets as it is. The broker sees no difference.

use std::collections::BTreeMap;

use crate::relay::MemberId;
use crate::room::members::Members;
use crate::room::session::ConnId;
use crate::room::sockets::{Frames, Sockets};

pub struct MemberSockets<'a, S: Sockets> {
    pub members: &'a mut Members,
    pub sockets: &'a mut S,
}

impl<S: Sockets> Sockets for MemberSockets<'_, S> {
    fn accept(&mut self, conn: ConnId) -> bool {
        self.sockets.accept(conn)
    }

    fn send(&mut self, conn: ConnId, bytes: &[u8], binary: bool) {
        if self.members.departed(conn) {
            return;
        }
        match self.members.outbox_of(conn) {
            Some((member, outbox)) => outbox.send(vec![member], binary, bytes),
            None => self.sockets.send(conn, bytes, binary),
        }
    }

    fn send_many(&mut self, conns: &[ConnId], bytes: &[u8], binary: bool) {
        // The common case, a room without members, pays no lookup per subscriber.
        if self.members.is_empty() {
            return self.sockets.send_many(conns, bytes, binary);
        }
        let mut plain = Vec::with_capacity(conns.len());
        let mut by_gateway: BTreeMap<&str, Vec<MemberId>> = BTreeMap::new();
        for &conn in conns {
            match self.members.member_of(conn) {
                Some((gateway, member)) => by_gateway.entry(gateway).or_default().push(member),
                None if self.members.departed(conn) => {}
                None => plain.push(conn),
            }
        }
        if !plain.is_empty() {
            self.sockets.send_many(&plain, bytes, binary);
        }
        let by_gateway: Vec<(String, Vec<MemberId>)> = by_gateway
            .into_iter()
            .map(|(gateway, members)| (gateway.to_owned(), members))
            .collect();
        for (gateway, members) in by_gateway {
            if let Some(outbox) = self.members.outbox_named(&gateway) {
                outbox.send(members, binary, bytes);
            }
        }
    }

    /// Plain sockets get the frames as one message; members get them one by one, as before
    /// (their gateway's call already carries all that waited, and what a gateway sends its
    /// sockets is its own business).
    fn send_frames(&mut self, conns: &[ConnId], frames: &Frames) {
        if self.members.is_empty() {
            return self.sockets.send_frames(conns, frames);
        }
        let (held, plain): (Vec<ConnId>, Vec<ConnId>) = conns.iter().partition(|&&conn| {
            self.members.member_of(conn).is_some() || self.members.departed(conn)
        });
        if !plain.is_empty() {
            self.sockets.send_frames(&plain, frames);
        }
        if !held.is_empty() {
            for frame in frames.iter() {
                self.send_many(&held, frame, frames.binary);
            }
        }
    }

    fn flush(&mut self) {
        self.sockets.flush();
    }

    /// A member's close goes to its gateway (which closes the socket after what was sent
    /// before), and the member leaves the table.
    fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        if self.members.departed(conn) {
            return;
        }
        match self.members.outbox_of(conn) {
            Some((member, outbox)) => {
                outbox.close(member, code, reason);
                self.members.remove(conn);
            }
            None => self.sockets.close(conn, code, reason),
        }
    }

    fn forget(&mut self, conn: ConnId) {
        if self.members.remove(conn).is_none() && !self.members.departed(conn) {
            self.sockets.forget(conn);
        }
    }

    /// A member's session is written with its event's commit (see the engine), not here.
    fn save_session(&mut self, conn: ConnId, session: &str) {
        if self.members.member_of(conn).is_none() && !self.members.departed(conn) {
            self.sockets.save_session(conn, session);
        }
    }

    /// The sockets' own sessions: members' are in storage.
    fn sessions(&mut self) -> Vec<(ConnId, Option<String>)> {
        self.sockets.sessions()
    }

    // A member has no socket here (its gateway keeps it alive): the rest as it is.
    crate::room::sockets::pass_on_to_inner!();

    fn members(&mut self) -> Option<&mut Members> {
        Some(self.members)
    }
}
