//! The room's budget: everything a client can make a room hold, with its cap, and one ledger
//! ([`Usage`]) that counts it. Each cap is checked before what it bounds is kept, stored or
//! read, so no client, however it behaves, can hold more of the room than this.
//!
//! | what a client can make the room hold | where it lives | bounded by |
//! | --- | --- | --- |
//! | messages waiting in a `/queue/` (and unacknowledged) | memory and SQLite, loaded at every wake | per queue: [`Budget::max_queue_messages`], [`Budget::max_queue_bytes`]; all queues: [`Budget::max_queued_bytes`]; queues: [`Budget::max_queues`] |
//! | frames staged in open transactions | memory and SQLite, loaded at every wake | per connection [`Budget::max_staged_bytes`]; all: [`Budget::max_room_staged_bytes`] |
//! | partly-arrived frames | memory and SQLite, loaded at every wake | each: `max_frame_bytes`; all: [`Budget::max_partial_bytes`] |
//! | topic history | SQLite, read when asked | per destination: `history_limit` messages and [`Budget::max_history_bytes`]; destinations keeping it: [`Budget::max_history_destinations`], the least recently used giving way |
//! | one row of any table | SQLite | [`Budget::max_row_bytes`], below the platform's 2 MB |
//! | webhook events not yet delivered | memory and SQLite, loaded at every wake | `webhooks.max_outbox_events` and `max_outbox_bytes` (at most 16 MiB; see [`crate::room::webhooks`]), the oldest dropped |
//! | what one read or replay builds | memory, for one event | [`Budget::max_read_bytes`] |
//! | idempotency keys of recent publishes | memory and SQLite, loaded at every wake | [`Budget::max_idempotency_keys`], each key at most 200 bytes with a destination of `max_destination_bytes`; expired after `idempotency_window_ms` |
//!
//! Stored bytes in all are therefore at most [`Budget::max_stored_bytes`], which the settings
//! keep under the platform's 10 GB per object.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::session::ConnId;
use crate::stomp::ProtocolError;

/// The platform's largest row (string, BLOB or whole row) in a Durable Object's SQLite.
pub const PLATFORM_ROW_BYTES: u64 = 2_000_000;

/// The platform's most hibernatable WebSockets per Durable Object.
pub const PLATFORM_SOCKETS: usize = 32_768;

/// The platform's storage per Durable Object.
pub const PLATFORM_OBJECT_BYTES: u64 = 10_000_000_000;

/// The most a room's settings may let it store, leaving the platform's limit room for SQLite's
/// own pages and indexes.
pub const MAX_STORED_BYTES: u64 = 8 * 1024 * 1024 * 1024;

/// The most idempotency keys a room's settings may let it hold.
pub const MAX_IDEMPOTENCY_KEYS: u32 = 100_000;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// The room-wide caps (`budget` in the settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Budget {
    /// Messages one `/queue/` holds, waiting or unacknowledged. Default 1,000.
    pub max_queue_messages: u32,
    /// Bytes one `/queue/` holds (as stored). Default 4 MiB.
    pub max_queue_bytes: u64,
    /// Bytes all queues hold together. Default 16 MiB.
    pub max_queued_bytes: u64,
    /// What a full queue does with one more message: refuse it (the sender gets an ERROR,
    /// like RabbitMQ's `reject-publish`) or drop the oldest waiting messages to make room.
    pub queue_overflow: QueueOverflow,
    /// Bytes one connection may stage in its open transactions. Default 2 MiB.
    pub max_staged_bytes: u64,
    /// Bytes all connections may stage together. Default 8 MiB.
    pub max_room_staged_bytes: u64,
    /// Bytes of partly-arrived frames the room holds for all connections together.
    /// Default 8 MiB.
    pub max_partial_bytes: u64,
    /// Queues holding messages at once. Past it, a message to another queue is refused.
    /// Default 1,000.
    pub max_queues: u32,
    /// Topic destinations keeping history at once. Past it, a message to another destination
    /// drops the history of the one whose newest message is the oldest (a room keeps working
    /// whoever fills it with destinations). Default 1,000.
    pub max_history_destinations: u32,
    /// Bytes of history one topic keeps (besides `history_limit` messages); older messages
    /// are trimmed. Default 4 MiB.
    pub max_history_bytes: u64,
    /// Bytes one read builds at once: a poll's answer, a replay, an event stream's first
    /// events. Past it the answer says what it left out. Default 4 MiB.
    pub max_read_bytes: u64,
    /// The largest row the room writes. A message or frame that would make a larger row is
    /// refused to its sender. At most the platform's 2,000,000. Default 1,900,000.
    pub max_row_bytes: u64,
    /// Idempotency keys the room remembers (each at most 200 bytes, with its destination);
    /// past it the oldest are forgotten first, so a repeat of one is published again.
    /// Default 10,000.
    pub max_idempotency_keys: u32,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            max_queue_messages: 1_000,
            max_queue_bytes: 4 * MIB,
            max_queued_bytes: 16 * MIB,
            queue_overflow: QueueOverflow::Reject,
            max_staged_bytes: 2 * MIB,
            max_room_staged_bytes: 8 * MIB,
            max_partial_bytes: 8 * MIB,
            max_queues: 1_000,
            max_history_destinations: 1_000,
            max_history_bytes: 4 * MIB,
            max_read_bytes: 4 * MIB,
            max_row_bytes: 1_900_000,
            max_idempotency_keys: 10_000,
        }
    }
}

impl Budget {
    /// The most the room can store with these caps: every destination's history full (one
    /// row over, until the commit's trim), and every queue, transaction and partial frame.
    pub fn max_stored_bytes(&self) -> u64 {
        u64::from(self.max_history_destinations)
            .saturating_mul(self.max_history_bytes.saturating_add(self.max_row_bytes))
            .saturating_add(self.max_queued_bytes)
            .saturating_add(self.max_room_staged_bytes)
            .saturating_add(self.max_partial_bytes)
    }

    /// Why these caps cannot work together, if they cannot: a frame of `max_frame_bytes`
    /// must fit a row, a row a read and a history, and everything the platform's storage.
    pub fn check(&self, max_frame_bytes: usize) -> Result<(), String> {
        let frame = max_frame_bytes as u64;
        let rules = [
            (
                self.max_row_bytes <= PLATFORM_ROW_BYTES,
                format!("budget.max_row_bytes ({}) is over the platform's {PLATFORM_ROW_BYTES}-byte rows", self.max_row_bytes),
            ),
            (
                frame + super::record::ROW_OVERHEAD + 4 * KIB <= self.max_row_bytes,
                format!("limits.max_frame_bytes ({frame}) does not fit a row of budget.max_row_bytes ({}) with the room's own headers", self.max_row_bytes),
            ),
            (
                self.max_row_bytes <= self.max_read_bytes,
                "budget.max_read_bytes must hold at least one row (budget.max_row_bytes)".to_owned(),
            ),
            (
                self.max_row_bytes <= self.max_history_bytes,
                "budget.max_history_bytes must hold at least one row (budget.max_row_bytes)".to_owned(),
            ),
            (
                self.max_row_bytes <= self.max_queue_bytes
                    && self.max_queue_bytes <= self.max_queued_bytes,
                "budget.max_queue_bytes must hold at least one row (budget.max_row_bytes), and budget.max_queued_bytes one full queue".to_owned(),
            ),
            (
                self.max_idempotency_keys <= MAX_IDEMPOTENCY_KEYS,
                format!("budget.max_idempotency_keys ({}) is over {MAX_IDEMPOTENCY_KEYS}: every wake loads them, and each keyed publish looks through them", self.max_idempotency_keys),
            ),
            (
                self.max_history_destinations > 0,
                "budget.max_history_destinations must be at least 1 (history_limit 0 keeps none)".to_owned(),
            ),
            (
                self.max_stored_bytes() <= MAX_STORED_BYTES,
                format!(
                    "the budget lets a room store up to {} bytes (budget.max_history_destinations × (max_history_bytes + max_row_bytes) + max_queued_bytes + max_room_staged_bytes + max_partial_bytes), over the {MAX_STORED_BYTES} a room may (the platform allows {PLATFORM_OBJECT_BYTES} per object)",
                    self.max_stored_bytes()
                ),
            ),
        ];
        match rules.into_iter().find(|(holds, _)| !holds) {
            Some((_, problem)) => Err(problem),
            None => Ok(()),
        }
    }
}

/// What a full queue does with one more message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum QueueOverflow {
    /// Refuse it: the sender gets an ERROR naming the limit; nothing accepted is lost.
    #[default]
    #[serde(rename = "reject")]
    Reject,
    /// Drop the queue's oldest waiting messages until it fits.
    #[serde(rename = "drop-oldest")]
    DropOldest,
}

/// A destination's stored history, as storage counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct HistoryUsage {
    pub rows: u32,
    pub bytes: u64,
    /// Its newest message's id: the one with the oldest gives way first.
    pub newest: u64,
}

impl HistoryUsage {
    /// One message more, with its id and its row's bytes.
    pub fn add(&mut self, id: u64, bytes: u64) {
        self.rows += 1;
        self.bytes += bytes;
        self.newest = self.newest.max(id);
    }
}

/// What a queue holds: messages waiting and unacknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueUsage {
    pub messages: u32,
    pub bytes: u64,
}

/// The ledger: what the room holds now, against its [`Budget`].
#[derive(Debug, Clone, Default)]
pub struct Usage {
    history: HashMap<String, HistoryUsage>,
    queues: HashMap<String, QueueUsage>,
    queued_bytes: u64,
    staged: HashMap<ConnId, u64>,
    staged_bytes: u64,
    partial: HashMap<ConnId, u64>,
    partial_bytes: u64,
}

impl Usage {
    /// The destination whose history gives way for one that has none, when the room keeps
    /// history for as many destinations as it may: the one whose newest message is oldest.
    pub fn history_to_drop(&self, budget: &Budget, destination: &str) -> Option<String> {
        let max = budget.max_history_destinations as usize;
        if self.history.len() < max || self.history.contains_key(destination) {
            return None;
        }
        self.history
            .iter()
            .min_by_key(|(_, usage)| usage.newest)
            .map(|(name, _)| name.clone())
    }

    // ---- history ----------------------------------------------------------------------

    pub fn history(&self, destination: &str) -> HistoryUsage {
        self.history.get(destination).copied().unwrap_or_default()
    }

    /// A destination's history as storage holds it (at a wake, or after a trim).
    pub fn set_history(&mut self, destination: &str, usage: HistoryUsage) {
        if usage.rows == 0 {
            self.history.remove(destination);
        } else {
            self.history.insert(destination.to_owned(), usage);
        }
    }

    /// One message more in a destination's history.
    pub fn archived(&mut self, destination: &str, id: u64, bytes: u64) -> HistoryUsage {
        let add = |usage: &mut HistoryUsage| {
            usage.add(id, bytes);
            *usage
        };
        // Looked up before it is inserted: a destination's name is copied once, not per message.
        if let Some(usage) = self.history.get_mut(destination) {
            return add(usage);
        }
        add(self.history.entry(destination.to_owned()).or_default())
    }

    pub fn history_bytes(&self) -> u64 {
        self.history.values().map(|h| h.bytes).sum()
    }

    // ---- queues -------------------------------------------------------------------------

    pub fn queue(&self, destination: &str) -> QueueUsage {
        self.queues.get(destination).copied().unwrap_or_default()
    }

    pub fn queued_bytes(&self) -> u64 {
        self.queued_bytes
    }

    /// Why a queue cannot take one more message of `bytes`, if it cannot.
    pub fn admit_queued(
        &self,
        budget: &Budget,
        destination: &str,
        bytes: u64,
    ) -> Result<(), ProtocolError> {
        let queue = self.queue(destination);
        if queue.messages >= budget.max_queue_messages {
            return Err(full(
                "queue full",
                format!(
                    "{destination} holds its maximum of {} messages (budget.max_queue_messages); \
                 nothing was accepted: consume the queue or try again later",
                    budget.max_queue_messages
                ),
            ));
        }
        if queue.bytes + bytes > budget.max_queue_bytes {
            return Err(full(
                "queue full",
                format!(
                "{destination} would hold more than {} bytes (budget.max_queue_bytes); nothing \
                 was accepted: consume the queue or try again later",
                budget.max_queue_bytes
            ),
            ));
        }
        let max_queues = budget.max_queues as usize;
        if queue.messages == 0 && self.queues.len() >= max_queues {
            return Err(full(
                "too many queues",
                format!(
                    "the room holds messages in its maximum of {max_queues} queues \
                     (budget.max_queues), and {destination} is not one of them; nothing was \
                     accepted: use a queue in use, or try again later"
                ),
            ));
        }
        if self.queued_bytes + bytes > budget.max_queued_bytes {
            return Err(full(
                "queue full",
                format!(
                    "the room's queues would hold more than {} bytes together \
                 (budget.max_queued_bytes); nothing was accepted: try again later",
                    budget.max_queued_bytes
                ),
            ));
        }
        Ok(())
    }

    pub fn enqueued(&mut self, destination: &str, bytes: u64) {
        let queue = self.queues.entry(destination.to_owned()).or_default();
        queue.messages += 1;
        queue.bytes += bytes;
        self.queued_bytes += bytes;
    }

    pub fn dequeued(&mut self, destination: &str, bytes: u64) {
        if let Some(queue) = self.queues.get_mut(destination) {
            queue.messages = queue.messages.saturating_sub(1);
            queue.bytes = queue.bytes.saturating_sub(bytes);
            if queue.messages == 0 {
                self.queues.remove(destination);
            }
        }
        self.queued_bytes = self.queued_bytes.saturating_sub(bytes);
    }

    // ---- staged frames --------------------------------------------------------------------

    pub fn staged_bytes(&self) -> u64 {
        self.staged_bytes
    }

    /// Why a connection cannot stage one more frame of `bytes`, if it cannot.
    pub fn admit_staged(
        &self,
        budget: &Budget,
        conn: ConnId,
        bytes: u64,
    ) -> Result<(), ProtocolError> {
        let own = self.staged.get(&conn).copied().unwrap_or(0);
        if own + bytes > budget.max_staged_bytes {
            return Err(ProtocolError::new(
                "transaction too large",
                format!(
                    "this connection's open transactions would hold more than {} bytes \
                     (budget.max_staged_bytes); commit or abort them, or send less in one",
                    budget.max_staged_bytes
                ),
            ));
        }
        if self.staged_bytes + bytes > budget.max_room_staged_bytes {
            return Err(full(
                "room busy",
                format!(
                    "the room's open transactions would hold more than {} bytes together \
                 (budget.max_room_staged_bytes); try again later",
                    budget.max_room_staged_bytes
                ),
            ));
        }
        Ok(())
    }

    pub fn staged(&mut self, conn: ConnId, bytes: u64) {
        *self.staged.entry(conn).or_default() += bytes;
        self.staged_bytes += bytes;
    }

    pub fn unstaged(&mut self, conn: ConnId, bytes: u64) {
        if let Some(own) = self.staged.get_mut(&conn) {
            *own = own.saturating_sub(bytes);
            if *own == 0 {
                self.staged.remove(&conn);
            }
        }
        self.staged_bytes = self.staged_bytes.saturating_sub(bytes);
    }

    // ---- partly-arrived frames --------------------------------------------------------

    pub fn partial_bytes(&self) -> u64 {
        self.partial_bytes
    }

    /// Sets the bytes of a connection's partly-arrived frame; refuses (and counts nothing)
    /// when the room would hold more than its budget of them.
    pub fn set_partial(
        &mut self,
        budget: &Budget,
        conn: ConnId,
        bytes: u64,
    ) -> Result<(), ProtocolError> {
        let old = self.partial.get(&conn).copied().unwrap_or(0);
        let total = self.partial_bytes - old + bytes;
        if bytes > old && total > budget.max_partial_bytes {
            return Err(full(
                "room busy",
                format!(
                    "the room holds as many partly-arrived frames as it may ({} bytes, \
                 budget.max_partial_bytes); send each frame whole in one message, or try again \
                 later",
                    budget.max_partial_bytes
                ),
            ));
        }
        self.count_partial(conn, bytes);
        Ok(())
    }

    /// Sets the bytes of a connection's partly-arrived frame, whatever the budget (one stored
    /// within it, given back at a wake).
    pub fn count_partial(&mut self, conn: ConnId, bytes: u64) {
        self.forget_partial(conn);
        if bytes > 0 {
            self.partial.insert(conn, bytes);
            self.partial_bytes += bytes;
        }
    }

    pub fn forget_partial(&mut self, conn: ConnId) {
        if let Some(old) = self.partial.remove(&conn) {
            self.partial_bytes -= old;
        }
    }

    /// Everything the room stores now, by the budget's count.
    pub fn stored_bytes(&self) -> u64 {
        self.history_bytes() + self.queued_bytes + self.staged_bytes + self.partial_bytes
    }

    /// The ledger for operators (the stats endpoint).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "history_destinations": self.history.len(),
            "queues": self.queues.len(),
            "history_bytes": self.history_bytes(),
            "queued_messages": self.queues.values().map(|q| u64::from(q.messages)).sum::<u64>(),
            "queued_bytes": self.queued_bytes,
            "staged_bytes": self.staged_bytes,
            "partial_bytes": self.partial_bytes,
            "stored_bytes": self.stored_bytes(),
        })
    }
}

/// The WebSocket close code of a refusal because the room holds all it may ("try again
/// later"); over HTTP such a refusal is a 507.
pub const TRY_AGAIN_LATER: u16 = 1013;

/// A refusal because the room is full of something: try again later.
fn full(message: &str, detail: String) -> ProtocolError {
    ProtocolError::new(message, detail).with_close_code(TRY_AGAIN_LATER)
}
