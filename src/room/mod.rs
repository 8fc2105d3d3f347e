//! The room: one chat room's broker, persistence policy and timers as a sans-IO state machine.
//! No `worker` import: events and the time go in, sends and writes come out through two small
//! traits, [`Storage`] and [`Sockets`], which the Durable Object implements with SQLite and
//! hibernatable WebSockets and the native tests implement in memory.
//!
//! * [`routes`] reads a request's URL once, for the router and the object alike.
//! * [`Host`] is the one host of the engine, for the Durable Object and the native harness:
//!   it wakes the engine, runs each event and says how the alarm must change.
//! * [`RoomEngine`] (the engine) orders each event's work: live sends first, then one
//!   all-or-nothing commit of its writes, then the RECEIPTs that promised them; it keeps every
//!   deadline in a [`Timers`] table and says when the alarm should fire.
//! * [`Broker`] holds sessions, subscriptions and routing, with queues, acknowledgements,
//!   transactions and presence each in a file of their own.
//! * A [`Session`] is everything about one connection that must survive eviction, deadlines
//!   included; it is kept with its socket.
//!
//! ```
//! use stomp_rooms::room::testing::{MemorySockets, MemoryStorage};
//! use std::rc::Rc;
//! use stomp_rooms::room::{AllowAll, Peer, RoomEngine, Settings};
//!
//! let (mut store, mut sockets) = (MemoryStorage::default(), MemorySockets::default());
//! let mut room = RoomEngine::wake(Settings::default(), Rc::new(AllowAll), &mut store, &mut sockets, 0).unwrap();
//! let alice = room.open(&mut store, &mut sockets, Peer::default(), 0).unwrap().conn().unwrap();
//! let bob = room.open(&mut store, &mut sockets, Peer::default(), 0).unwrap().conn().unwrap();
//! // Messages 10 ms apart: each event's frames leave at once (a busy room's may wait for
//! // `flush_sends`, see `RoomEngine::sends_waiting`).
//! for (conn, now) in [(alice, 0), (bob, 10)] {
//!     room.receive(&mut store, &mut sockets, conn, b"CONNECT\naccept-version:1.2\n\n\0", false, now).unwrap();
//! }
//! room.receive(&mut store, &mut sockets, bob, b"SUBSCRIBE\nid:0\ndestination:/topic/chat\n\n\0", false, 20).unwrap();
//! room.receive(&mut store, &mut sockets, alice, b"SEND\ndestination:/topic/chat\n\nhello\0", false, 30).unwrap();
//! assert!(!room.sends_waiting());
//! let to_bob = sockets.sent(bob).last().unwrap().clone();
//! assert_eq!(
//!     String::from_utf8(to_bob).unwrap(),
//!     "MESSAGE\nsubscription:0\nmessage-id:1\ndestination:/topic/chat\nsender:s1\ntimestamp:30\ncontent-length:5\n\nhello\0"
//! );
//! // The first message id after a quiet spell is covered by a stored ceiling at once, so its
//! // history row goes with it; later ones need no ceiling and wait to share a commit.
//! assert_eq!(store.history_of("/topic/chat").len(), 1);
//! room.receive(&mut store, &mut sockets, alice, b"SEND\ndestination:/topic/chat\n\nagain\0", false, 40).unwrap();
//! assert_eq!(store.history_of("/topic/chat").len(), 1, "no RECEIPT waits, so the write waits for company");
//! room.flush(&mut store).unwrap();
//! assert_eq!(store.history_of("/topic/chat").len(), 2);
//! ```

pub mod base64;
mod broker;
pub mod budget;
pub(crate) mod coalesce;
pub mod destinations;
pub mod endpoints;
mod engine;
pub mod health;
pub mod host;
pub mod http;
pub mod log;
pub mod members;
pub mod message_json;
pub mod operator;
pub mod rate;
pub mod record;
pub mod registry;
pub mod routes;
pub mod scaling;
mod session;
mod settings;
mod sockets;
pub mod sockjs;
pub mod sql;
mod storage;
pub mod testing;
pub(crate) mod timers;
pub mod webhooks;

pub mod auth;
pub use auth::{AllowAll, Authenticator, Credentials, Gate};
pub(crate) use broker::connect::{
    auth_refused, connect_request, connected_frame, negotiate_heart_beat, negotiate_version,
};
pub(crate) use broker::connection_refusal;
pub(crate) use broker::transactions::check_new_transaction;
pub(crate) use broker::{gone, missing_header, required};
pub use broker::{
    Broker, Config, Deadlines, Effect, QueuedMessage, ReplayRequest, HEART_BEAT_GRACE, TRIM_EVERY,
};
pub use broker::{IdempotencyKey, Published, IDEMPOTENCY_HEADER, MAX_IDEMPOTENCY_KEY_BYTES};
pub use budget::{Budget, HistoryUsage, QueueOverflow, Usage};
pub use coalesce::{
    BUSY_WITHIN_MS, DELIVERIES_PER_BUSY_MS, MAX_COALESCED_BYTES, MAX_COALESCED_FRAMES,
};
pub use engine::{
    AlarmChange, EventCounts, Failed, Opened, RoomEngine, FLUSH_BATCH, FLUSH_BYTES,
    FLUSH_DEADLINE_MS, FLUSH_DELAY_MS, ID_HEADROOM,
};
pub use host::{Host, Turn};
pub use members::{Placement, MAX_GATEWAY_OUTBOX_BYTES};
pub use rate::{Cost, PublishRate, Throttle};
pub use session::{AckMode, ConnId, Peer, Phase, Session, Subscription, Unacked};
pub use settings::Settings;
pub use sockets::{Frames, Sockets};
pub use sockjs::max_payload as max_sockjs_payload;
pub use storage::{
    Counter, HistoryRead, PartialFrame, ReadFrom, StagedFrame, Storage, StorageError, Stored,
    StoredMember, WebhookRow, Write,
};
pub use timers::{RoomTimer, TimerKind, Timers};
