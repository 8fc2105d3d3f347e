//! What the broker asks of its caller: effects to carry out in order, and the deadlines and
//! replays it reads from sessions.

use super::idempotency::IdempotencyKey;
#[allow(unused_imports)]
use super::*;

/// Which history a SUBSCRIBE asked to replay (`replay-last` or `replay-after` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayRequest {
    /// The last `n` messages.
    Last(u32),
    /// Every message with an id greater than this.
    After(u64),
}

/// A connection's deadlines, read from its session (see [`Broker::deadlines`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deadlines {
    /// The socket has not sent CONNECT and must by then.
    pub connect: Option<u64>,
    /// The room owes the client a heart-beat by then.
    pub heart_beat: Option<u64>,
    /// The client is silent past its grace period from then on, unless its pings (answered by
    /// the transport without waking the room) say otherwise.
    pub liveness: Option<u64>,
    /// The connection's token expires.
    pub token: Option<u64>,
}

impl Deadlines {
    /// A socket's before its CONNECT: the CONNECT's, `connect_timeout_ms` after it opened.
    pub fn awaiting_connect(opened_ms: u64, connect_timeout_ms: u64) -> Self {
        Self {
            connect: Some(opened_ms + connect_timeout_ms),
            ..Self::default()
        }
    }

    /// A connection's once connected: the heart-beat it is owed, when it counts as silent
    /// (`HEART_BEAT_GRACE` times the heart-beat it promised after it was last heard, if it
    /// promised one), and its token's expiry.
    pub fn connected(
        beat_due_ms: Option<u64>,
        heard_ms: u64,
        receive_ms: u32,
        expires_ms: Option<u64>,
    ) -> Self {
        let rx = u64::from(receive_ms);
        Self {
            connect: None,
            heart_beat: beat_due_ms,
            liveness: (rx > 0).then(|| heard_ms + rx * super::HEART_BEAT_GRACE),
            token: expires_ms,
        }
    }
}

/// Work for the caller, to be carried out in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send `bytes` to the connection; in a binary WebSocket message when `binary`.
    Send {
        conn: ConnId,
        bytes: Vec<u8>,
        binary: bool,
    },
    /// Send the same `bytes` to each of these connections: a fan-out of identical frames.
    SendMany {
        conns: Vec<ConnId>,
        bytes: Vec<u8>,
        binary: bool,
    },
    /// A RECEIPT frame: it promises that what the frames before it stored is durable.
    Receipt { conn: ConnId, bytes: Vec<u8> },
    /// Close the connection's socket (after the sends before this effect).
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    /// The connection's [`Session`] changed: persist it ([`Broker::session`]).
    SaveSession { conn: ConnId },
    /// A message was published to a topic: append it to that destination's history (when the
    /// room keeps history), and tell the room's HTTP listeners.
    Archive(Message),
    /// A destination's history holds more than it may: delete its oldest messages beyond the
    /// newest `keep_rows` and `keep_bytes`.
    TrimHistory {
        destination: String,
        keep_rows: u32,
        keep_bytes: u64,
    },
    /// A destination's history gives way to another's (see `budget.max_history_destinations`):
    /// delete all of it.
    DropHistory { destination: String },
    /// A queue message must be kept until it is delivered and acknowledged: store it.
    Enqueue(Message),
    /// A stored queue message went back to its queue, to be delivered again, preferably not
    /// to `avoid` (the consumer that refused it).
    Requeue {
        message_id: u64,
        avoid: Option<(ConnId, u32)>,
    },
    /// A stored queue message is done with: delete it.
    Dequeue { message_id: u64 },
    /// A queue's round-robin position changed (0: back to the start, nothing to keep).
    QueueCursor { destination: String, next: u64 },
    /// A subscription asked for history: load it and pass it to [`Broker::replay`].
    Replay {
        conn: ConnId,
        subscription: String,
        destination: String,
        request: ReplayRequest,
        /// The SUBSCRIBE's `receipt`: its RECEIPT follows the replayed messages, and says
        /// when the replay could not be complete (even when nothing was replayed).
        receipt: Option<String>,
    },
    /// A frame joined an open transaction: store its record with the transaction.
    Stage {
        conn: ConnId,
        transaction: String,
        record: Vec<u8>,
        binary: bool,
    },
    /// A transaction ended (committed or aborted): delete its stored frames.
    Unstage { conn: ConnId, transaction: String },
    /// A keyed publish: store its key with the message's own commit, not deferred.
    KeepIdempotencyKey(IdempotencyKey),
    /// Delete the stored idempotency keys of messages below this id (expired, or past the
    /// budget).
    ForgetIdempotencyKeys { below_id: u64 },
    /// Something the operator should hear of (see [`crate::room::log`]).
    Log(LogEvent),
}
