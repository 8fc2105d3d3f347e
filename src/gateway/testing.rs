//! Gateway sockets in memory, for the native tests (and a simulated network of rooms and
//! gateways): what each socket was sent, whether it closed, its kept session, and when the
//! platform last answered its ping.

use std::collections::BTreeMap;

use super::session::MAX_SESSION_BYTES;
use super::sockets::GatewaySockets;
use crate::relay::MemberId;

#[derive(Debug, Default, Clone)]
pub struct MemorySocket {
    /// Messages sent to it, in order: bytes and whether binary.
    pub received: Vec<(Vec<u8>, bool)>,
    /// Closed by the gateway: code and reason.
    pub closed: Option<(u16, String)>,
    /// Let go after its client closed it.
    pub forgotten: bool,
    pub session: Option<String>,
    pub last_ping_ms: Option<u64>,
}

#[derive(Debug, Default)]
pub struct MemoryGatewaySockets {
    pub sockets: BTreeMap<MemberId, MemorySocket>,
    /// Refuse the next sockets (the platform's cap).
    pub refuse: bool,
}

impl MemoryGatewaySockets {
    /// The text messages a socket was sent, drained.
    pub fn take_text(&mut self, member: MemberId) -> Vec<String> {
        self.sockets
            .get_mut(&member)
            .map(|s| std::mem::take(&mut s.received))
            .unwrap_or_default()
            .into_iter()
            .map(|(bytes, _)| String::from_utf8_lossy(&bytes).into_owned())
            .collect()
    }

    /// How a socket was closed, if it was.
    pub fn closed(&self, member: MemberId) -> Option<(u16, String)> {
        self.sockets.get(&member).and_then(|s| s.closed.clone())
    }

    /// The platform answered the client's ping at `at`.
    pub fn ping(&mut self, member: MemberId, at: u64) {
        if let Some(socket) = self.sockets.get_mut(&member) {
            socket.last_ping_ms = Some(at);
        }
    }

    fn open(&self, member: MemberId) -> bool {
        self.sockets
            .get(&member)
            .is_some_and(|s| s.closed.is_none() && !s.forgotten)
    }
}

impl GatewaySockets for MemoryGatewaySockets {
    fn accept(&mut self, member: MemberId) -> bool {
        if self.refuse {
            return false;
        }
        assert!(
            self.sockets
                .insert(member, MemorySocket::default())
                .is_none(),
            "member {member} given out twice"
        );
        true
    }

    fn send(&mut self, member: MemberId, bytes: &[u8], binary: bool) {
        assert!(self.open(member), "a send to member {member}, not open");
        if let Some(socket) = self.sockets.get_mut(&member) {
            socket.received.push((bytes.to_vec(), binary));
        }
    }

    fn close(&mut self, member: MemberId, code: u16, reason: &str) {
        if let Some(socket) = self.sockets.get_mut(&member) {
            socket.closed.get_or_insert((code, reason.to_owned()));
        }
    }

    fn forget(&mut self, member: MemberId) {
        if let Some(socket) = self.sockets.get_mut(&member) {
            socket.forgotten = true;
        }
    }

    fn save_session(&mut self, member: MemberId, session: &str) {
        assert!(
            session.len() <= MAX_SESSION_BYTES,
            "a session of {} bytes does not fit an attachment",
            session.len()
        );
        if let Some(socket) = self.sockets.get_mut(&member) {
            socket.session = Some(session.to_owned());
        }
    }

    fn sessions(&mut self) -> Vec<(MemberId, Option<String>)> {
        self.sockets
            .iter()
            .filter(|(_, s)| s.closed.is_none() && !s.forgotten)
            .map(|(member, s)| (*member, s.session.clone()))
            .collect()
    }

    fn last_ping_ms(&self, member: MemberId) -> Option<u64> {
        self.sockets.get(&member).and_then(|s| s.last_ping_ms)
    }
}
