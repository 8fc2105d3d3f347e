//! What the gateway has to tell each room: its members' events, batched while a call to that
//! room is in flight (at most one per room, so they arrive in order without sequence numbers),
//! and bounded in bytes per room so a slow room never grows the gateway's memory.

use std::collections::BTreeMap;

use crate::relay::{MemberEvent, ToRoom};
use crate::room::members::CALL_TIMEOUT_MS;

/// The bytes of events waiting for one room; past it, a member's next frame for that room is
/// refused (its client is told to try again later).
pub const MAX_ROOM_OUTBOX_BYTES: usize = 8 * 1024 * 1024;

/// The bytes of events waiting for all rooms together (a socket may use many rooms).
pub const MAX_OUTBOX_BYTES: usize = 32 * 1024 * 1024;

/// The bytes an event takes in a call, as the outbox counts them.
pub(super) fn event_bytes(event: &MemberEvent) -> usize {
    16 + match event {
        MemberEvent::Joined { address, .. } => address.as_ref().map_or(0, String::len),
        MemberEvent::Data { bytes, .. } => bytes.len(),
        MemberEvent::Left { .. } => 0,
    }
}

#[derive(Debug, Default)]
struct RoomLink {
    pending: Vec<MemberEvent>,
    bytes: usize,
    in_flight: bool,
    /// When the call in flight was taken to be sent.
    sent_ms: u64,
}

/// The events waiting for each room, and which rooms have a call in flight.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    links: BTreeMap<String, RoomLink>,
    /// The bytes waiting for all rooms.
    bytes: usize,
}

impl Outbox {
    /// Whether `bytes` more fit in the room's outbox, and in all rooms'.
    pub fn fits(&self, room: &str, bytes: usize) -> bool {
        let held = self.links.get(room).map_or(0, |link| link.bytes);
        held + bytes + 16 <= MAX_ROOM_OUTBOX_BYTES && self.bytes + bytes + 16 <= MAX_OUTBOX_BYTES
    }

    /// Queues an event for a room. `Left` is always queued (it frees the room's side); callers
    /// check [`fits`](Self::fits) before queuing a member's frames.
    pub fn push(&mut self, room: &str, event: MemberEvent) {
        let link = self.links.entry(room.to_owned()).or_default();
        let bytes = event_bytes(&event);
        link.bytes += bytes;
        self.bytes += bytes;
        link.pending.push(event);
    }

    /// The calls due: every room with events waiting and no call in flight, each then marked
    /// in flight until [`answered`](Self::answered).
    pub fn take_calls(&mut self, gateway: &str, now: u64) -> Vec<(String, ToRoom)> {
        let mut calls = Vec::new();
        for (room, link) in &mut self.links {
            if link.in_flight || link.pending.is_empty() {
                continue;
            }
            link.in_flight = true;
            link.sent_ms = now;
            self.bytes -= link.bytes;
            link.bytes = 0;
            let events = std::mem::take(&mut link.pending);
            let call = ToRoom {
                gateway: gateway.to_owned(),
                events,
            };
            calls.push((room.clone(), call));
        }
        calls
    }

    /// A room answered the call in flight (or it failed): the next may go.
    pub fn answered(&mut self, room: &str) {
        if let Some(link) = self.links.get_mut(room) {
            link.in_flight = false;
            if link.pending.is_empty() {
                self.links.remove(room);
            }
        }
    }

    /// When the earliest call in flight counts as failed, if one is in flight.
    pub fn call_deadline(&self) -> Option<u64> {
        let in_flight = self.links.values().filter(|link| link.in_flight);
        in_flight.map(|link| link.sent_ms + CALL_TIMEOUT_MS).min()
    }

    /// The rooms whose call in flight went unanswered past its deadline at `now`.
    pub fn overdue(&self, now: u64) -> Vec<String> {
        self.links
            .iter()
            .filter(|(_, link)| link.in_flight && link.sent_ms + CALL_TIMEOUT_MS <= now)
            .map(|(room, _)| room.clone())
            .collect()
    }

    /// Whether a call to the room is in flight.
    pub fn in_flight(&self, room: &str) -> bool {
        self.links.get(room).is_some_and(|link| link.in_flight)
    }
}
