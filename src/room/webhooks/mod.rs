//! Webhooks: the room tells a configured URL what happens in it, as signed JSON batches from
//! a durable outbox (see the README's "Webhooks" section for the receiver's side).
//!
//! * Events: `room.occupied` when the first member arrives; `room.vacated` once the room has
//!   been empty for `vacated_grace_ms` (a reconnect within it sends nothing);
//!   `member.joined` and `member.left` per STOMP session; `message` for destinations matching
//!   the configured patterns; `refusal` for each client refused, as the logs and `/stats`
//!   classify it (capped: [`refusals`]). A member is a STOMP session that sent CONNECT, over a WebSocket or SockJS;
//!   readers over HTTP (polls, event streams) are not members.
//! * Durable: each event's row is a [`Write`] of the commit of the event that caused it (after
//!   that event's sends, like every write), never a write of its own before a fan-out. A
//!   `refusal`'s rows are deferred instead (grouped with the room's other deferred writes), so
//!   refused clients never cost a commit each.
//! * Delivered at least once, in order per room: one batch at a time from the oldest event,
//!   by the alarm ([`Outbox`]), signed as Standard Webhooks sign ([`sign`]).
//!
//! Membership and occupancy are stored too (the members' rows, two counters, the room's
//! name), so a room that wakes after a crash finds the members whose sockets the crash
//! closed and sends their `member.left`, and a room evicted while empty still sends
//! `room.vacated` when its grace ends: the alarm wakes it.

mod event;
mod outbox;
mod refusals;
mod settings;
mod signature;

use serde_json::{json, Value};

pub use event::{event_json, member_data, EventKind, Refused};
pub use outbox::{Batch, Outbox, ANSWER_TIMEOUT_MS, BATCH_OVERHEAD};
pub use refusals::{MAX_PER_WINDOW as MAX_REFUSALS_PER_WINDOW, WINDOW_MS as REFUSAL_WINDOW_MS};
pub use settings::{SigningKey, WebhookSettings};
pub use signature::sign;

use super::auth::pattern;
use super::session::ConnId;
use super::storage::{Counter, Stored, Write};
use crate::stomp::Message;

/// A room's webhooks: what it has told, and what it must still tell.
#[derive(Debug, Default)]
pub struct Webhooks {
    settings: WebhookSettings,
    outbox: Outbox,
    /// Members (connected STOMP sessions), each with its event data as stored (a list: a
    /// map's code would cost the Worker kilobytes, and it is searched only for the
    /// connections an event touched).
    members: Vec<(ConnId, String)>,
    /// `room.occupied` was sent and `room.vacated` not yet.
    occupied: bool,
    /// When the room became empty while occupied.
    vacant_since: Option<u64>,
    /// The room's name as last seen, and as stored (for events raised by the alarm alone).
    room: String,
    stored_room: String,
    /// The cap on `refusal` events (in memory).
    refusals: refusals::RefusalWindow,
}

impl Webhooks {
    /// The webhooks as stored, and the writes that forget what is stored when webhooks are
    /// off: an outbox or members kept from when they were on would otherwise be loaded at
    /// every wake, and told long after the fact if webhooks were turned on again. (The last
    /// event's `seq` stays, so an event id is never given twice.)
    pub fn restore(settings: WebhookSettings, stored: &Stored) -> (Self, Vec<Write>) {
        let room = stored.webhook_room.clone().unwrap_or_default();
        if !settings.enabled() {
            let forget = Self::forget(stored);
            let webhooks = Self {
                stored_room: room.clone(),
                room,
                settings,
                ..Self::default()
            };
            return (webhooks, forget);
        }
        let webhooks = Self {
            outbox: Outbox::restore(stored),
            members: stored.webhook_members.clone(),
            occupied: stored.counter(Counter::WebhookOccupied) > 0,
            vacant_since: Some(stored.counter(Counter::WebhookVacantSince)).filter(|&at| at > 0),
            stored_room: room.clone(),
            room,
            settings,
            refusals: refusals::RefusalWindow::default(),
        };
        (webhooks, Vec::new())
    }

    /// The writes that forget a stored outbox, members and delivery state.
    fn forget(stored: &Stored) -> Vec<Write> {
        let mut writes = Vec::new();
        if let Some(newest) = stored.webhook_events.iter().map(|row| row.seq).max() {
            writes.push(Write::WebhookForget { through: newest });
        }
        for &(conn, _) in &stored.webhook_members {
            writes.push(Write::WebhookMemberGone { conn });
        }
        for counter in [
            Counter::WebhookUnreported,
            Counter::WebhookAttempts,
            Counter::WebhookRetryAt,
            Counter::WebhookRetryThrough,
            Counter::WebhookOccupied,
            Counter::WebhookVacantSince,
        ] {
            if stored.counter(counter) > 0 {
                writes.push(Write::Counter(counter, 0));
            }
        }
        writes
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled()
    }

    /// The room's name, from a session or a request (the object learns it from its route).
    pub fn note_room(&mut self, room: &str) {
        if !room.is_empty() {
            room.clone_into(&mut self.room);
        }
    }

    /// The connections counted as members.
    pub fn members(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.members.iter().map(|&(conn, _)| conn)
    }

    pub fn is_member(&self, conn: ConnId) -> bool {
        self.members.iter().any(|&(c, _)| c == conn)
    }

    /// A connection is now a member with this data (`Some`), or no longer one (`None`):
    /// the writes that store it and its events (`room.occupied` before the first
    /// `member.joined`; the grace before `room.vacated` starts after the last `member.left`).
    pub fn member(&mut self, conn: ConnId, data: Option<Value>, now: u64) -> Vec<Write> {
        let mut writes = Vec::new();
        if !self.enabled() {
            return writes;
        }
        match (self.is_member(conn), data) {
            (false, Some(data)) => {
                if !self.occupied {
                    self.occupied = true;
                    writes.push(Write::Counter(Counter::WebhookOccupied, 1));
                    self.append(EventKind::Occupied, json!({}), now, &mut writes);
                }
                if self.vacant_since.take().is_some() {
                    writes.push(Write::Counter(Counter::WebhookVacantSince, 0));
                }
                let text = data.to_string();
                self.members.push((conn, text.clone()));
                writes.push(Write::WebhookMember { conn, data: text });
                self.append(EventKind::Joined, data, now, &mut writes);
            }
            (true, None) => {
                let at = self.members.iter().position(|&(c, _)| c == conn);
                let data = at
                    .map(|at| self.members.swap_remove(at).1)
                    .unwrap_or_default();
                writes.push(Write::WebhookMemberGone { conn });
                let data = serde_json::from_str(&data).unwrap_or_else(|_| json!({}));
                self.append(EventKind::Left, data, now, &mut writes);
                self.start_vacancy(now, &mut writes);
            }
            _ => {}
        }
        writes
    }

    /// An occupied room found empty (after the last member left, or at a wake that found
    /// none) starts its grace.
    pub fn start_vacancy(&mut self, now: u64, writes: &mut Vec<Write>) {
        if self.occupied && self.members.is_empty() && self.vacant_since.is_none() {
            self.vacant_since = Some(now);
            writes.push(Write::Counter(Counter::WebhookVacantSince, now));
        }
    }

    /// When `room.vacated` is due, if the room is empty and occupied.
    pub fn vacated_at(&self) -> Option<u64> {
        let since = self.vacant_since.filter(|_| self.enabled())?;
        Some(since + self.settings.vacated_grace_ms)
    }

    /// `room.vacated`, if its grace has run out by `now`.
    pub fn vacate_if_due(&mut self, now: u64) -> Vec<Write> {
        let mut writes = Vec::new();
        if self.vacated_at().is_some_and(|at| at <= now) {
            self.occupied = false;
            self.vacant_since = None;
            writes.push(Write::Counter(Counter::WebhookOccupied, 0));
            writes.push(Write::Counter(Counter::WebhookVacantSince, 0));
            self.append(EventKind::Vacated, json!({}), now, &mut writes);
        }
        writes
    }

    /// Whether a message to this destination makes a `message` event.
    pub fn wants_message(&self, destination: &str) -> bool {
        self.settings.sends(EventKind::Message)
            && pattern::any_matches(&self.settings.destinations, destination)
    }

    /// A message was published: a `message` event if its destination matches.
    pub fn message(&mut self, message: &Message, now: u64) -> Vec<Write> {
        let mut writes = Vec::new();
        if self.wants_message(&message.destination) {
            // The event's other fields and the batch's frame besides its data.
            let room = self.room.len() * 2 + 200;
            let max =
                (self.settings.max_batch_bytes as usize).saturating_sub(BATCH_OVERHEAD + room);
            let data = event::message_data(message, max);
            self.append(EventKind::Message, data, now, &mut writes);
        }
        writes
    }

    /// A client was refused (see [`refusal_data`](event::refusal_data)): the writes of its
    /// `refusal` event, unless the cap ([`refusals`]) holds it back and counts it.
    pub fn refusal(
        &mut self,
        reason: &str,
        limit: Option<&str>,
        refused: Option<Refused<'_>>,
        now: u64,
    ) -> Vec<Write> {
        let mut writes = Vec::new();
        if !self.settings.sends(EventKind::Refusal) {
            return writes;
        }
        if let Some(suppressed) = self.refusals.admit(now) {
            let data = event::refusal_data(reason, limit, refused, suppressed);
            self.append(EventKind::Refusal, data, now, &mut writes);
        }
        writes
    }

    fn append(&mut self, kind: EventKind, data: Value, now: u64, writes: &mut Vec<Write>) {
        if !self.settings.sends(kind) {
            return;
        }
        if self.room != self.stored_room {
            writes.push(Write::WebhookRoom(self.room.clone()));
            self.stored_room.clone_from(&self.room);
        }
        writes.extend(
            self.outbox
                .append(&self.settings, &self.room, kind, data, now),
        );
    }

    /// When the next batch is due.
    pub fn delivery_at(&self) -> Option<u64> {
        self.outbox
            .due_at(&self.settings)
            .filter(|_| self.enabled())
    }

    /// Whether a batch is due at `now` (to POST, or to retry).
    pub fn batch_due(&self, now: u64) -> bool {
        self.settings.url.is_some()
            && self
                .outbox
                .due_at(&self.settings)
                .is_some_and(|at| at <= now)
    }

    /// The next batch to POST, if one is due.
    pub fn take_batch(&mut self, now: u64) -> Option<Batch> {
        self.outbox.take_batch(&self.settings, &self.room, now)
    }

    /// The answer to a batch (see [`Outbox::answered`]).
    pub fn answered(
        &mut self,
        batch: &Batch,
        answer: &Result<u16, String>,
        now: u64,
    ) -> (Vec<Write>, Option<u64>) {
        self.outbox.answered(&self.settings, batch, answer, now)
    }

    /// For the stats endpoint: the outbox's depth and bytes, drops and the failed attempts at
    /// its oldest batch (failures in all are the room's `webhook_failures`).
    pub fn stats(&self) -> Value {
        let mut stats = self.outbox.stats();
        stats["members"] = self.members.len().into();
        stats["occupied"] = self.occupied.into();
        stats
    }
}
