//! What the room keeps in storage, behind a small trait: the Durable Object implements it with
//! SQLite, the native tests in memory.
//!
//! The room reads while it handles an event and writes once at its end: every write of an
//! event goes to [`Storage::commit`] together, after the event's live sends, so a fan-out never
//! waits behind a write and a failed write leaves nothing half-done.

use super::broker::{IdempotencyKey, QueuedMessage};
use super::budget::HistoryUsage;
use super::log::Refusal;
use super::rate::Throttle;
use super::record;
use super::session::ConnId;
use crate::stomp::Message;

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
    /// Clients refused for this reason, ever (the operator's count in `/stats`; see
    /// [`RoomEngine::tally`](super::RoomEngine)). One key per reason of a fixed list.
    Refusals(Refusal),
    /// Webhook deliveries that failed, ever (`/stats`), counted as their lines are logged.
    WebhookFailures,
    /// The last webhook event's `seq` given out.
    WebhookLastEvent,
    /// Webhook events dropped from a full outbox, in all.
    WebhookDropped,
    /// Webhook events dropped since the last delivered batch (the next batch reports them).
    WebhookUnreported,
    /// Failed attempts at the oldest webhook events' batch.
    WebhookAttempts,
    /// When the failed webhook batch is retried (ms).
    WebhookRetryAt,
    /// The failed webhook batch's last event (`seq`; 0: none failed), so its retry carries
    /// the same events under the same `webhook-id`.
    WebhookRetryThrough,
    /// 1 while the room is occupied (`room.occupied` sent, `room.vacated` not yet).
    WebhookOccupied,
    /// When the occupied room became empty (ms; 0: it is not).
    WebhookVacantSince,
}

impl Counter {
    /// Every counter storage may hold. An operator's count is one more variant, its key, its
    /// entry here, and its place in the engine (`RoomEngine::tally_of`).
    pub const ALL: &'static [Counter] = &[
        Self::LastMessageId,
        Self::LastConn,
        Self::Wakes,
        Self::LivenessSweep,
        Self::Refusals(Refusal::Authentication),
        Self::Refusals(Refusal::Permission),
        Self::Refusals(Refusal::TokenExpired),
        Self::Refusals(Refusal::RateLimit),
        Self::Refusals(Refusal::RoomFull),
        Self::Refusals(Refusal::TooManyConnections),
        Self::Refusals(Refusal::TooLarge),
        Self::Refusals(Refusal::ConnectionLimit),
        Self::Refusals(Refusal::RoomBudget),
        Self::Refusals(Refusal::Destination),
        Self::Refusals(Refusal::Protocol),
        Self::WebhookFailures,
        Self::WebhookLastEvent,
        Self::WebhookDropped,
        Self::WebhookUnreported,
        Self::WebhookAttempts,
        Self::WebhookRetryAt,
        Self::WebhookRetryThrough,
        Self::WebhookOccupied,
        Self::WebhookVacantSince,
    ];

    /// The counter stored under this key.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|counter| counter.key() == key)
    }

    /// The counter's key in storage.
    pub fn key(self) -> &'static str {
        match self {
            Self::LastMessageId => "last_message_id",
            Self::LastConn => "next_conn",
            Self::Wakes => "wakes",
            Self::LivenessSweep => "liveness_sweep",
            Self::Refusals(refusal) => refusal.counter_key(),
            Self::WebhookFailures => "webhook_failures",
            Self::WebhookLastEvent => "webhook_last_event",
            Self::WebhookDropped => "webhook_dropped",
            Self::WebhookUnreported => "webhook_unreported",
            Self::WebhookAttempts => "webhook_attempts",
            Self::WebhookRetryAt => "webhook_retry_at",
            Self::WebhookRetryThrough => "webhook_retry_through",
            Self::WebhookOccupied => "webhook_occupied",
            Self::WebhookVacantSince => "webhook_vacant_since",
        }
    }
}

/// One change to storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Counter(Counter, u64),
    /// Append a topic message to its destination's history.
    Archive(Message),
    /// Delete a destination's oldest history beyond its newest `keep_rows` messages and
    /// `keep_bytes` bytes (as [`message_row_bytes`](super::record::message_row_bytes) counts
    /// them); the newest message always stays.
    TrimHistory {
        destination: String,
        keep_rows: u32,
        keep_bytes: u64,
    },
    /// Delete a destination's whole history.
    DropHistory {
        destination: String,
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
    /// A frame staged in an open transaction, as its record (see
    /// [`record::encode_frame`](super::record::encode_frame)).
    Stage {
        conn: ConnId,
        transaction: String,
        record: Vec<u8>,
        binary: bool,
    },
    /// Forget a transaction's staged frames.
    Unstage {
        conn: ConnId,
        transaction: String,
    },
    /// More bytes of a connection's partly-arrived frame, after those stored before.
    PartialAppend {
        conn: ConnId,
        bytes: Vec<u8>,
    },
    /// A connection's partly-arrived frame is now these bytes alone; empty forgets it.
    PartialReset {
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
    /// Keep a publish's idempotency key (replacing an expired one of the same key).
    IdempotencyKey(IdempotencyKey),
    /// Forget the idempotency keys of messages below this id.
    ForgetIdempotencyKeys {
        below_id: u64,
    },
    /// Append a webhook event to the outbox.
    WebhookEvent(WebhookRow),
    /// Forget the outbox's events up to this `seq` (delivered, or dropped past the bound).
    WebhookForget {
        through: u64,
    },
    /// A connection is a member, with its webhook event data.
    WebhookMember {
        conn: ConnId,
        data: String,
    },
    WebhookMemberGone {
        conn: ConnId,
    },
    /// The room's name, for the events the alarm raises alone.
    WebhookRoom(String),
    /// A gateway's member and its session, written in its event's own commit (a RECEIPT after
    /// its SUBSCRIBE promises the subscription): the room's members have no socket of their own
    /// to keep their sessions with.
    Member(StoredMember),
    /// The member's connection is gone.
    MemberGone {
        conn: ConnId,
    },
}

/// A member of the room held by a gateway object, as stored (see [`crate::room::members`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub conn: ConnId,
    /// The gateway object's name.
    pub gateway: String,
    /// The gateway's number for the member's socket.
    pub member: crate::relay::MemberId,
    /// The member's session, as a socket's attachment would keep it.
    pub session: String,
}

/// A webhook event in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    /// The room's own event sequence: the outbox's order.
    pub seq: u64,
    /// When the event happened (ms).
    pub at_ms: u64,
    /// The event, as sent.
    pub json: String,
}

impl Write {
    /// The bytes of the row this write adds, for the writes that add one.
    pub fn row_bytes(&self) -> Option<u64> {
        match self {
            Write::Archive(message) | Write::Enqueue(message) => {
                Some(record::message_row_bytes(message))
            }
            Write::Stage {
                transaction,
                record,
                ..
            } => Some(record::staged_row_bytes_of(transaction, record.len())),
            Write::PartialAppend { bytes, .. } | Write::PartialReset { bytes, .. } => {
                Some(record::partial_row_bytes(bytes.len()))
            }
            Write::IdempotencyKey(key) => {
                Some(record::idempotency_row_bytes(&key.key, &key.destination))
            }
            Write::WebhookEvent(row) => Some(row.json.len() as u64 + record::ROW_OVERHEAD),
            Write::WebhookMember { data, .. } => Some(data.len() as u64 + record::ROW_OVERHEAD),
            Write::Member(member) => {
                Some((member.session.len() + member.gateway.len()) as u64 + record::ROW_OVERHEAD)
            }
            _ => None,
        }
    }
}

/// A frame staged in an open transaction, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedFrame {
    pub conn: ConnId,
    pub transaction: String,
    /// The frame's record (see [`record::decode_frame`](super::record::decode_frame)).
    pub record: Vec<u8>,
    pub binary: bool,
}

/// A connection's partly-arrived frame, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialFrame {
    pub conn: ConnId,
    /// Its pieces, joined.
    pub bytes: Vec<u8>,
    /// How many rows hold them.
    pub pieces: u64,
}

/// Everything the room reads back when it wakes (history itself is read when asked for).
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
    /// Each connection's partly-arrived frame.
    pub partials: Vec<PartialFrame>,
    /// Client addresses' publish rates over HTTP.
    pub address_rates: Vec<(String, Throttle)>,
    /// What each destination's history holds.
    pub history: Vec<(String, HistoryUsage)>,
    /// Idempotency keys of recent publishes, by message id.
    pub idempotency_keys: Vec<IdempotencyKey>,
    /// The webhook outbox, oldest first.
    pub webhook_events: Vec<WebhookRow>,
    /// Members as webhooks last told them: connection and event data.
    pub webhook_members: Vec<(ConnId, String)>,
    /// The room's name, once a webhook event named it.
    pub webhook_room: Option<String>,
    /// The gateways' members, by connection.
    pub members: Vec<StoredMember>,
}

impl Stored {
    pub fn counter(&self, counter: Counter) -> u64 {
        self.counters
            .iter()
            .find(|(c, _)| *c == counter)
            .map_or(0, |&(_, value)| value)
    }
}

/// Which end of a destination's history a read starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFrom {
    /// The newest messages (a replay, the last `n`).
    Newest,
    /// The oldest messages after an id (a poll's next page).
    Oldest,
}

/// A read of a destination's history: up to `count` messages with ids above `after`, from
/// one end, within `max_bytes` (as [`message_row_bytes`](super::record::message_row_bytes)
/// counts them). A first row over `max_bytes` ends the read with nothing; the budget keeps
/// every read large enough for one row (`budget.max_read_bytes` holds `max_row_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRead {
    pub after: u64,
    pub count: u32,
    pub max_bytes: u64,
    pub from: ReadFrom,
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
    /// Reads everything but history itself, for a wake.
    fn load(&self) -> Result<Stored, StorageError>;
    /// Messages of a destination's history as `read` says, oldest first.
    fn history(&self, destination: &str, read: HistoryRead) -> Result<Vec<Message>, StorageError>;
    /// How many messages a destination's history holds with ids above `after`.
    fn history_count(&self, destination: &str, after: u64) -> Result<u32, StorageError>;
    /// What a destination's history holds.
    fn history_usage(&self, destination: &str) -> Result<HistoryUsage, StorageError>;
    /// The highest id of a message a destination's history lost (trimmed from it, or dropped
    /// with all of it), 0 if none: a resume after a lower id cannot be complete. A dropped
    /// history keeps nothing of its own (a room may see destinations without end): the
    /// highest id any dropped history held stands for every destination.
    fn history_lost(&self, destination: &str) -> Result<u64, StorageError>;
    /// Applies the writes in order, all of them or (on error) none.
    fn commit(&mut self, writes: &[Write]) -> Result<(), StorageError>;
}
