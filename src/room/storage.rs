//! What the room keeps in storage, behind a small trait: the Durable Object implements it with
//! SQLite, the native tests in memory.
//!
//! The room reads while it handles an event and writes once at its end: every write of an
//! event goes to [`Storage::commit`] together, after the event's live sends, so a fan-out never
//! waits behind a write and a failed write leaves nothing half-done.

use super::broker::{QueuedMessage, Throttle};
use super::session::ConnId;
use crate::stomp::{Frame, Message};

/// A room-wide counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Counter {
    /// The highest message id given out, when no stored history row carries it.
    LastMessageId,
    /// The last connection id given out.
    LastConn,
    /// How many times the room was built in memory (first use and each wake).
    Wakes,
    /// When the room last swept for silent clients (ms).
    LivenessSweep,
}

impl Counter {
    pub const ALL: [Counter; 4] = [
        Self::LastMessageId,
        Self::LastConn,
        Self::Wakes,
        Self::LivenessSweep,
    ];

    /// The counter's key in storage.
    pub fn key(self) -> &'static str {
        match self {
            Self::LastMessageId => "last_message_id",
            Self::LastConn => "next_conn",
            Self::Wakes => "wakes",
            Self::LivenessSweep => "liveness_sweep",
        }
    }
}

/// One change to storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Counter(Counter, u64),
    /// Append a topic message to its destination's history.
    Archive(Message),
    /// Delete all but the newest `keep` messages of a destination's history.
    TrimHistory {
        destination: String,
        keep: u32,
    },
    /// Keep a queue message until it is delivered and acknowledged.
    Enqueue(Message),
    /// A queue message goes back to its queue: mark it redelivered, avoiding that consumer.
    Requeue {
        message_id: u64,
        avoid: Option<(ConnId, u32)>,
    },
    Dequeue {
        message_id: u64,
    },
    /// A queue's round-robin position; 0 forgets it.
    QueueCursor {
        destination: String,
        next: u64,
    },
    /// A frame staged in an open transaction.
    Stage {
        conn: ConnId,
        transaction: String,
        frame: Frame,
        binary: bool,
    },
    /// Forget a transaction's staged frames.
    Unstage {
        conn: ConnId,
        transaction: String,
    },
    /// The partly-arrived frame of a connection; empty forgets it.
    Partial {
        conn: ConnId,
        bytes: Vec<u8>,
    },
    /// Where a client address stands against the publish rate over HTTP.
    AddressRate {
        address: String,
        throttle: Throttle,
    },
    /// Forget the address rates whose buckets are full by `now_us` (they equal no entry).
    ForgetFullAddressRates {
        now_us: u64,
    },
}

/// A frame staged in an open transaction, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedFrame {
    pub conn: ConnId,
    pub transaction: String,
    pub frame: Frame,
    pub binary: bool,
}

/// Everything the room reads back when it wakes (history is read when asked for).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stored {
    /// Each counter's value (0 when never written).
    pub counters: Vec<(Counter, u64)>,
    /// The highest id of any stored message, history or queue.
    pub newest_message_id: u64,
    pub queued: Vec<QueuedMessage>,
    /// Queue round-robin positions.
    pub cursors: Vec<(String, u64)>,
    /// Staged frames, in the order they were staged.
    pub staged: Vec<StagedFrame>,
    pub partials: Vec<(ConnId, Vec<u8>)>,
    /// Client addresses' publish rates over HTTP.
    pub address_rates: Vec<(String, Throttle)>,
}

impl Stored {
    pub fn counter(&self, counter: Counter) -> u64 {
        self.counters
            .iter()
            .find(|(c, _)| *c == counter)
            .map_or(0, |&(_, value)| value)
    }
}

/// Why storage failed, as the platform said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageError(pub String);

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The room's storage.
pub trait Storage {
    /// Reads everything but history, for a wake.
    fn load(&self) -> Result<Stored, StorageError>;
    /// The newest `newest` messages of a destination's history with ids above `after`, oldest
    /// first.
    fn history(
        &self,
        destination: &str,
        after: u64,
        newest: u32,
    ) -> Result<Vec<Message>, StorageError>;
    /// How many messages a destination's history holds.
    fn history_len(&self, destination: &str) -> Result<u32, StorageError>;
    /// Applies the writes in order, all of them or (on error) none.
    fn commit(&mut self, writes: &[Write]) -> Result<(), StorageError>;
}
