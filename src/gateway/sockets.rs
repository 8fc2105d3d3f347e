//! A gateway's client sockets, behind a small trait: the Durable Object implements it with
//! hibernatable WebSockets (each socket's attachment keeps its session), the native tests in
//! memory ([`testing`](super::testing)).

use crate::relay::MemberId;
use crate::room::coalesce::RunSink;

pub trait GatewaySockets {
    /// Accepts the socket that is opening, as `member`; `false` when the platform refuses it.
    fn accept(&mut self, member: MemberId) -> bool;
    /// Sends one WebSocket message: binary when `binary`, else text (`bytes` are then UTF-8).
    fn send(&mut self, member: MemberId, bytes: &[u8], binary: bool);
    /// Sends the same message to each member's socket.
    fn send_many(&mut self, members: &[MemberId], bytes: &[u8], binary: bool) {
        for &member in members {
            self.send(member, bytes, binary);
        }
    }
    /// Closes the socket with a WebSocket close code and reason (after what was sent before).
    fn close(&mut self, member: MemberId, code: u16, reason: &str);
    /// The client closed the socket (or it failed): let go of it.
    fn forget(&mut self, member: MemberId);
    /// Keeps the socket's session with it, replacing the one kept before.
    fn save_session(&mut self, member: MemberId, session: &str);
    /// Every open socket and its kept session, for a wake.
    fn sessions(&mut self) -> Vec<(MemberId, Option<String>)>;
    /// When the platform last answered the client's heart-beat by itself, without the gateway.
    fn last_ping_ms(&self, member: MemberId) -> Option<u64>;
}

/// A gateway's sockets as the coalescer's way out (see [`crate::room::coalesce`]): what a
/// room's call brings several members leaves as one message each where it can.
pub(super) struct CoalescedSockets<'a, G: GatewaySockets>(pub &'a mut G);

impl<G: GatewaySockets> RunSink for CoalescedSockets<'_, G> {
    fn send(&mut self, member: MemberId, bytes: &[u8], binary: bool) {
        self.0.send(member, bytes, binary);
    }

    fn send_many(&mut self, members: &[MemberId], bytes: &[u8], binary: bool) {
        self.0.send_many(members, bytes, binary);
    }
}
