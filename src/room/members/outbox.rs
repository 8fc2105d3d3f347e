//! A gateway's outbox in the room: what the room sends that gateway's members until the next
//! call carries it. At most one call is in flight; what comes meanwhile waits for the next, so
//! the gateway gets the room's frames in order without sequence numbers.

use crate::relay::{MemberId, Outgoing, ToGateway};

/// The most a room keeps for one gateway, in [`ToGateway::bytes`]: past it the gateway is too
/// slow (or gone) and the room forgets its members, so a slow gateway never grows the room.
pub const MAX_GATEWAY_OUTBOX_BYTES: usize = 8 << 20;

/// How long a call between a room and a gateway may go unanswered before it counts as failed
/// (its answer lost, so the next call could never go), in either direction.
pub const CALL_TIMEOUT_MS: u64 = 60_000;

#[derive(Debug, Default)]
pub struct Outbox {
    items: Vec<Outgoing>,
    /// The items' bytes, as [`ToGateway::bytes`] counts them.
    bytes: usize,
    /// A call to the gateway is in flight (its answer has not come).
    pub in_flight: bool,
    /// When the call in flight was taken to be sent.
    pub sent_ms: u64,
    /// The outbox went past its bound: the gateway's members are to be forgotten.
    pub overfull: bool,
}

impl Outbox {
    /// Queues one message for these members; refused (and the outbox marked overfull) when
    /// it would take the outbox past [`MAX_GATEWAY_OUTBOX_BYTES`].
    pub fn send(&mut self, members: Vec<MemberId>, binary: bool, bytes: &[u8]) {
        let size = bytes.len() + members.len() * 8;
        if self.admit(size) {
            self.items.push(Outgoing::Send {
                members,
                binary,
                bytes: bytes.to_vec(),
            });
        }
    }

    /// Queues a close of one member (after what was queued for it before).
    pub fn close(&mut self, member: MemberId, code: u16, reason: &str) {
        if self.admit(reason.len() + 16) {
            self.items.push(Outgoing::Close {
                member,
                code,
                reason: reason.to_owned(),
            });
        }
    }

    /// Queues a probe of these members (see [`Outgoing::Probe`]), replacing one still waiting:
    /// however many sweeps pass while a call is in flight, one probe waits, naming at most
    /// the gateway's members.
    pub fn probe(&mut self, members: Vec<MemberId>) {
        if let Some(at) = self
            .items
            .iter()
            .position(|item| matches!(item, Outgoing::Probe { .. }))
        {
            self.bytes -= self.items.remove(at).bytes();
        }
        let probe = Outgoing::Probe { members };
        if self.admit(probe.bytes()) {
            self.items.push(probe);
        }
    }

    /// Counts `size` more bytes before anything is kept.
    fn admit(&mut self, size: usize) -> bool {
        if self.overfull || self.bytes + size > MAX_GATEWAY_OUTBOX_BYTES {
            self.overfull = true;
            self.items.clear();
            self.bytes = 0;
            return false;
        }
        self.bytes += size;
        true
    }

    /// The call due, if any: something waits and no call is in flight (it is then).
    pub fn take_call(&mut self, room: &str, now: u64) -> Option<ToGateway> {
        if self.in_flight || self.overfull || self.items.is_empty() {
            return None;
        }
        self.in_flight = true;
        self.sent_ms = now;
        self.bytes = 0;
        Some(ToGateway {
            room: room.to_owned(),
            items: std::mem::take(&mut self.items),
        })
    }

    /// When the call in flight counts as failed, if one is.
    pub fn call_deadline(&self) -> Option<u64> {
        self.in_flight.then_some(self.sent_ms + CALL_TIMEOUT_MS)
    }

    /// Bytes waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbox_counts_before_it_keeps_and_refuses_past_its_bound() {
        let mut outbox = Outbox::default();
        let big = vec![b'x'; MAX_GATEWAY_OUTBOX_BYTES / 2];
        outbox.send(vec![1], false, &big);
        assert!(!outbox.overfull);
        outbox.send(vec![1], false, &big);
        assert!(outbox.overfull, "the second would pass the bound");
        assert!(outbox.is_empty(), "an overfull outbox keeps nothing");
        assert_eq!(outbox.take_call("r", 0), None);
    }

    #[test]
    fn one_call_in_flight_and_the_rest_waits_for_the_next() {
        let mut outbox = Outbox::default();
        outbox.send(vec![1, 2], false, b"a");
        let call = outbox.take_call("r", 0).unwrap();
        assert_eq!(call.items.len(), 1);
        outbox.send(vec![1], false, b"b");
        outbox.close(2, 1000, "bye");
        assert_eq!(outbox.take_call("r", 0), None, "one in flight");
        outbox.in_flight = false;
        assert_eq!(outbox.take_call("r", 0).unwrap().items.len(), 2);
    }

    #[test]
    fn a_probe_alone_is_a_call_and_a_later_one_replaces_it() {
        let mut outbox = Outbox::default();
        outbox.probe(vec![1, 2]);
        assert_eq!(outbox.take_call("r", 0).unwrap().items.len(), 1);
        outbox.probe(vec![1, 2]);
        outbox.send(vec![1], false, b"a");
        outbox.probe(vec![2]);
        assert_eq!(outbox.bytes(), 1 + 8 + 8);
        outbox.in_flight = false;
        let items = outbox.take_call("r", 0).unwrap().items;
        assert_eq!(items.len(), 2);
        assert_eq!(items[1], Outgoing::Probe { members: vec![2] });
    }
}
