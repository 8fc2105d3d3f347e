//! The engine's sockets seen through the [coalescer](crate::room::coalesce): what it sends
//! its sockets is coalesced.
//!
//! # When frames wait
//!
//! Within one event, always: the runs leave when the event's sends end, before the event's
//! writes are committed (no fan-out waits behind a write), or before anything else goes to the
//! sockets. Across events, only while the room is busy: a client's WebSocket message that
//! arrives within [`BUSY_WITHIN_MS`](crate::room::coalesce::BUSY_WITHIN_MS) of the one before
//! leaves its runs waiting ([`RoomEngine::sends_waiting`](super::RoomEngine::sends_waiting)),
//! and the host sends them ([`RoomEngine::flush_sends`](super::RoomEngine::flush_sends)) once
//! the runtime has handed the room the messages already waiting for it: those that arrive
//! meanwhile join the runs. A lone message, or the first after a quiet spell, leaves at once,
//! as it would without coalescing.
//!
//! # Where it sits
//!
//! Below SockJS's adapter ([`SessionSockets`](crate::room::sockjs::SessionSockets), which hands
//! a SockJS socket's frames over with [`Sockets::send_sockjs`] and its own frames with
//! [`Sockets::send_apart`]) and above the gateways' members
//! ([`MemberSockets`](super::member_sockets::MemberSockets)): everything the engine sends
//! passes through it, so nothing overtakes a run. What is due to members passes straight on
//! to their gateways' outboxes, whose calls already carry all that waited.

use std::borrow::Cow;

use crate::room::coalesce::Coalescer;
use crate::room::members::Members;
use crate::room::session::ConnId;
use crate::room::sockets::{Frames, Sockets};

/// The sockets with the run between the engine and them (see the module's notes).
pub(super) struct Coalescing<'a, S: Sockets> {
    pub(super) out: &'a mut Coalescer,
    pub(super) sockets: &'a mut S,
}

impl<S: Sockets> Coalescing<'_, S> {
    /// `conns` without the gateways' members among them, who are handed the frame at once:
    /// it waits in their gateways' outboxes, whose calls already carry all that waited, and
    /// whose bounds the event that fills them checks. Kept out of the runs, a member never
    /// holds a run to the end of its event, so the room's own sockets are coalesced whoever
    /// else subscribes.
    fn without_members<'c>(
        &mut self,
        conns: &'c [ConnId],
        bytes: &[u8],
        binary: bool,
    ) -> Cow<'c, [ConnId]> {
        let Some(members) = self.sockets.members().filter(|members| !members.is_empty()) else {
            return Cow::Borrowed(conns);
        };
        let held = |conn: &ConnId| members.member_of(*conn).is_some() || members.departed(*conn);
        if !conns.iter().any(held) {
            return Cow::Borrowed(conns);
        }
        let (held, own): (Vec<ConnId>, Vec<ConnId>) = conns.iter().partition(|conn| held(conn));
        self.sockets.send_to(&held, bytes, binary);
        Cow::Owned(own)
    }
}

impl<S: Sockets> Sockets for Coalescing<'_, S> {
    fn flush(&mut self) {
        self.out.flush(self.sockets);
    }

    fn accept(&mut self, conn: ConnId) -> bool {
        self.sockets.accept(conn)
    }

    fn send(&mut self, conn: ConnId, bytes: &[u8], binary: bool) {
        let one = [conn];
        let own = self.without_members(&one, bytes, binary);
        if !own.is_empty() {
            self.out
                .add(self.sockets, &own, bytes, binary, false, false);
        }
    }

    fn send_many(&mut self, conns: &[ConnId], bytes: &[u8], binary: bool) {
        let own = self.without_members(conns, bytes, binary);
        if !own.is_empty() {
            self.out.add(self.sockets, &own, bytes, binary, true, false);
        }
    }

    fn send_frames(&mut self, conns: &[ConnId], frames: &Frames) {
        self.flush();
        self.sockets.send_frames(conns, frames);
    }

    fn send_apart(&mut self, conn: ConnId, bytes: &[u8], binary: bool) {
        self.flush();
        self.sockets.send_apart(conn, bytes, binary);
    }

    fn send_sockjs(&mut self, conns: &[ConnId], frame: &[u8]) {
        if !conns.is_empty() {
            self.out.add(self.sockets, conns, frame, false, true, true);
        }
    }

    fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        self.flush();
        self.sockets.close(conn, code, reason);
    }

    fn forget(&mut self, conn: ConnId) {
        self.flush();
        self.sockets.forget(conn);
    }

    fn save_session(&mut self, conn: ConnId, session: &str) {
        self.sockets.save_session(conn, session);
    }

    fn sessions(&mut self) -> Vec<(ConnId, Option<String>)> {
        self.flush();
        self.sockets.sessions()
    }

    crate::room::sockets::pass_on_to_inner!();

    fn members(&mut self) -> Option<&mut Members> {
        self.sockets.members()
    }
}
