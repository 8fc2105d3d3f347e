//! The room engine: the broker, the persistence policy and the timers of one room, driven by
//! events and the time, with storage and sockets behind traits.
//!
//! # An event, in order
//!
//! 1. The broker handles the event and returns effects.
//! 2. Sends go out at once, in order (frames due to the same connections one after another
//!    leave as one WebSocket message, and while the room is busy they may wait for the
//!    host's flush right after the event: see [`coalesce`]); writes are gathered. A RECEIPT
//!    promises that what came before it is stored, so once an event has writes, the RECEIPT
//!    (and anything after it to the same connection) waits for the commit. No fan-out ever
//!    waits behind a write.
//! 3. The event's writes are committed together ([`Storage::commit`]): all or nothing.
//!    Writes no client waits for (a history row without a RECEIPT, the connection counter)
//!    are deferred to share a later commit: group commit, see [`FLUSH_BATCH`].
//! 4. Then the waiting RECEIPTs go out, and each changed session is kept with its socket
//!    (at most once per event) and its deadlines re-indexed in the [`Timers`].
//!
//! If the commit fails, the connection whose event carried it gets an ERROR and is closed,
//! nothing held for the commit is sent, and the engine rebuilds itself from storage and the
//! kept sessions (as on a wake), so memory never runs ahead of storage; message ids given out
//! before the failure are not given out again. The event returns [`Failed`] for the caller to
//! log. If even the rebuild cannot read storage, the next event tries again.
//!
//! # What is persisted, and why it is enough
//!
//! A woken room must decide exactly as the room that was evicted would have. Sessions (with
//! their deadlines: when the socket opened, when the client was last heard, when its next
//! heart-beat is due) live with the sockets; storage holds counters (message and connection
//! ids, wakes, the last liveness sweep), topic history, queue messages with their redelivery
//! state and round-robin positions, staged transaction frames and partly-arrived frames.
//! History is trimmed by what storage says it holds (read at a wake and after each trim),
//! never by a count kept only in memory.
//!
//! # What a crash may lose
//!
//! A crash (a deploy, an out-of-memory kill) loses what an eviction never does: writes
//! still deferred, at most [`FLUSH_DEADLINE_MS`] of history rows of messages sent without a
//! receipt (their subscribers saw them) and the wake counter. Everything a RECEIPT or a 201
//! promised is stored; ids are never given twice ([`ids`]).

mod alarm;
mod coalesce;
mod commit;
mod gateway;
mod history;
mod http;
mod ids;
mod member_sockets;
mod partials;
mod sockjs;
mod wake;
mod webhooks;

pub use history::HistoryPage;
pub use ids::ID_HEADROOM;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::rc::Rc;

use commit::Outbox;
use history::Trims;
use ids::Ceiling;

use super::auth::Authenticator;
use super::broker::{Broker, Effect};
use super::coalesce::Coalescer;
use super::http::Listeners;
use super::log::{CloseReason, LogEvent, LogLine, Logs, Refusal, Transport};
use super::members::Members;
use super::rate::Throttle;
use super::record;
use super::session::{ConnId, Peer, Phase, Session};
use super::settings::Settings;
use super::sockets::Sockets;
use super::sockjs::{Carrier, SessionSockets, SockJsSessions};
use super::storage::{Counter, ReadFrom, Storage, StorageError, Write};
use super::timers::{RoomTimer, TimerKind, Timers};
use super::webhooks::Webhooks;
use crate::stomp::ProtocolError;
use coalesce::Coalescing;
use member_sockets::MemberSockets;

/// Writes that no client waits for are deferred and committed together: when this many are
/// pending (or [`FLUSH_BYTES`] of rows), with any other commit, with the first event
/// [`FLUSH_DELAY_MS`] after the first of them, or by the alarm [`FLUSH_DEADLINE_MS`] after it.
/// A commit costs the platform far more than the rows in it, and frames waiting to be
/// coalesced leave before it, so a burst of messages costs one commit per this many (at 32,
/// commits took a fifth of a 10-subscriber room's time under an unpaced publisher). What a
/// crash can lose is bounded by time: [`FLUSH_DELAY_MS`] of history.
pub const FLUSH_BATCH: usize = 128;

/// Deferred rows of this many bytes in all are committed at once, however few: what waits in
/// memory for a commit stays small whatever the messages' size.
pub const FLUSH_BYTES: u64 = 1024 * 1024;

/// From this long after the first deferred write, the next event commits them.
pub const FLUSH_DELAY_MS: u64 = 100;

/// The latest a deferred write is committed, by the alarm if no event comes first, in ms. A
/// room is evicted only after 10 s without events, so this is always before; and a busy room
/// sets its alarm once per this interval, not once per burst (setting it is a write too).
pub const FLUSH_DEADLINE_MS: u64 = 2_000;

/// The room could not store an event (it has rebuilt itself from storage, or will on the
/// next event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed(pub StorageError);

impl From<StorageError> for Failed {
    fn from(error: StorageError) -> Self {
        Self(error)
    }
}

/// What became of a socket that asked to open (see [`RoomEngine::open`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// Accepted for hibernation, as this connection.
    Accepted(ConnId),
    /// Refused before it was accepted (the room is full, or the platform holds as many
    /// sockets as it may): accept it for this answer alone, send it these messages (the
    /// ERROR, framed for SockJS when it is a SockJS socket), then close it.
    Refused {
        messages: Vec<Vec<u8>>,
        code: u16,
        reason: String,
    },
}

impl Opened {
    /// The connection, when accepted.
    pub fn conn(&self) -> Option<ConnId> {
        match self {
            Self::Accepted(conn) => Some(*conn),
            Self::Refused { .. } => None,
        }
    }

    /// A socket refused before it was accepted, told why by `error`.
    fn refused(error: ProtocolError, sockjs: bool) -> Self {
        let frame = error.to_frame().encode(None);
        let mut reason = error.message.clone();
        reason.truncate(100);
        let messages = if sockjs {
            vec![
                crate::sockjs::OPEN.as_bytes().to_vec(),
                crate::sockjs::stomp_message_frame(&frame).into_bytes(),
                crate::sockjs::close_frame(error.close_code, &reason).into_bytes(),
            ]
        } else {
            vec![frame]
        };
        Self::Refused {
            messages,
            code: error.close_code,
            reason,
        }
    }
}

/// What to do with the platform's alarm (see [`RoomEngine::alarm_change`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmChange {
    /// Set it to fire at this time (ms since the epoch).
    Set(u64),
    /// Delete it: nothing is due.
    Delete,
}

/// Handler calls since the engine was built, by kind (the stats endpoint shows them).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EventCounts {
    pub connects: u64,
    pub messages: u64,
    pub closes: u64,
    pub alarms: u64,
    /// HTTP requests (publishes, polls, streams).
    pub requests: u64,
}

pub struct RoomEngine {
    broker: Broker,
    auth: Rc<dyn Authenticator>,
    /// The run of frames not yet sent (see [`coalesce`]); out of `self` during an event.
    out: Coalescer,
    settings: Settings,
    timers: Timers,
    /// Writes of the event in progress (and of the wake before it), committed at its end.
    batch: Vec<Write>,
    /// Writes no client waits for (history, the connection and wake counters), committed with
    /// the next commit (see [`FLUSH_BATCH`]).
    deferred: Vec<Write>,
    /// When the first of the deferred writes was deferred.
    deferred_since: Option<u64>,
    /// History trims for the next commit, after its archives.
    trims: Trims,
    /// Connections with a partly-arrived frame in storage.
    partials: BTreeSet<ConnId>,
    /// The stored ceiling of message ids given out (see [`ids`]).
    message_ids: Ceiling,
    /// The stored ceiling of connection ids given out.
    conn_ids: Ceiling,
    last_conn: ConnId,
    wakes: u64,
    liveness_swept_ms: u64,
    /// The alarm the caller was last asked to set.
    alarm_set: Option<u64>,
    counts: EventCounts,
    /// A commit failed and rebuilding from storage failed too: rebuild before the next event.
    needs_rebuild: bool,
    /// HTTP requests held open for messages (long polls, event streams).
    listeners: Listeners,
    /// Each client address's publish rate over HTTP, which has no session to keep it in: it
    /// is stored with the publish's own commit, and read back on wake.
    http_throttles: HashMap<String, Throttle>,
    /// SockJS sessions over HTTP, in memory only (see [`crate::room::sockjs`]).
    sockjs: SockJsSessions,
    /// The room's members held by gateway objects, and each gateway's outbox (see
    /// [`crate::room::members`]); out of `self` during an event, as `sockjs` is.
    members: Members,
    /// The lines this event logged, for the host to hand out.
    logs: Logs,
    /// The operator's counts (`/stats`): refusals by reason ([`Refusal`] as the index), each
    /// stored as a counter with the deferred writes, so they survive eviction (see
    /// [`tally`](Self::tally)).
    refusals: [u64; Refusal::ALL.len()],
    /// Webhook deliveries that failed, kept as the refusals are.
    webhook_failures: u64,
    /// Connections carried by SockJS sessions over HTTP, which the broker cannot tell from
    /// WebSockets, for their log lines' `transport` (in memory, as the sessions are).
    over_http: BTreeSet<ConnId>,
    /// What the room tells by webhook, and what it has still to deliver.
    webhooks: Webhooks,
    /// The time of the event in progress (ms), for what [`log`](Self::log) raises with it (a
    /// webhook's `refusal` event).
    clock: u64,
}

impl RoomEngine {
    /// A socket is opening: accepted for hibernation as a connection, or refused first
    /// (a full room; the platform's own limit) so that it is never held: a refused socket
    /// closed at once, while the room holds none of it.
    pub fn open(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        peer: Peer,
        now: u64,
    ) -> Result<Opened, Failed> {
        let carrier = match peer.sockjs {
            true => Carrier::SockJsWebSocket,
            false => Carrier::WebSocket,
        };
        self.with_sessions(sockets, now, |room, sockets| {
            room.open_conn(store, sockets, peer, carrier, now)
        })
    }

    /// One WebSocket message arrived on a connection (SockJS's, framed or for a test service,
    /// is its adapter's, in `engine/sockjs.rs`).
    pub fn receive(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        conn: ConnId,
        data: &[u8],
        binary: bool,
        now: u64,
    ) -> Result<(), Failed> {
        let busy = self.out.message_arrived(now);
        self.with_sockets(sockets, now, busy, |room, sockets| {
            if let Some(handled) = room.sockjs_received(store, sockets, conn, data, binary, now) {
                return handled;
            }
            room.receive_data(store, sockets, conn, &[data], binary, now)
        })
    }

    /// A connection's socket closed or failed.
    pub fn closed(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        conn: ConnId,
        now: u64,
    ) -> Result<(), Failed> {
        self.with_sessions(sockets, now, |room, sockets| {
            room.conn_gone(store, sockets, conn, None, now)
        })
    }

    /// A connection is gone and the broker forgets it: its socket closed, or (`ended`, a
    /// close code and reason) the room ends the socket itself, without a SockJS close frame.
    fn conn_gone<S: Sockets>(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut SessionSockets<'_, S>,
        conn: ConnId,
        ended: Option<(u16, &str)>,
        now: u64,
    ) -> Result<(), Failed> {
        self.rebuild_if_needed(store, sockets, now)?;
        sockets.sessions.unframe(conn);
        let mut outbox = Outbox::default();
        match ended {
            Some((code, reason)) => {
                sockets.sockets.close(conn, code, reason);
                outbox.closed.push((conn, true));
            }
            None => sockets.forget(conn),
        }
        self.counts.closes += 1;
        let effects = self.broker.close(conn, now);
        outbox.changed.insert(conn);
        self.finish_event(store, sockets, Some(conn), effects, outbox, now)
    }

    /// Counters for operators: connections, wakes, handler calls since this wake, last id.
    pub fn stats(&self) -> serde_json::Value {
        let mut stats = serde_json::json!({
            "connections": self.broker.connection_count(),
            "wakes": self.wakes,
            "events_since_wake": self.counts,
            "last_message_id": self.broker.last_message_id(),
            "open_requests": {
                "waiting_polls": self.listeners.polls(),
                "streams": self.listeners.streams(),
                "sockjs_receivers": self.sockjs.receivers(),
            },
            "sockjs_sessions": self.sockjs.len(),
            "held": self.broker.usage().to_json(),
            // Kept across evictions (see `tally`).
            "refusals": self.refusal_counts(),
        });
        // Shown once a delivery failed; the outbox itself under `webhooks`.
        if let (Some(fields), true) = (stats.as_object_mut(), self.webhook_failures > 0) {
            fields.insert("webhook_failures".into(), self.webhook_failures.into());
        }
        if self.webhooks.enabled() {
            stats["webhooks"] = self.webhooks.stats();
        }
        if let (Some(fields), serde_json::Value::Object(members)) =
            (stats.as_object_mut(), self.member_stats())
        {
            fields.extend(members);
        }
        stats
    }

    /// Refusals by reason since the room was created (reasons never seen are left out).
    fn refusal_counts(&self) -> serde_json::Map<String, serde_json::Value> {
        Refusal::ALL
            .iter()
            .zip(self.refusals)
            .filter(|&(_, count)| count > 0)
            .map(|(reason, count)| (reason.as_str().to_owned(), count.into()))
            .collect()
    }

    /// The lines logged since the last take (the host hands them to the edge after each event).
    pub fn take_logs(&mut self) -> Vec<LogLine> {
        self.logs.take()
    }

    /// Logs an event the host saw (a failed event), at the room's level.
    pub fn log_event(&mut self, event: LogEvent) {
        self.log(event);
    }

    /// Logs an event at the room's level; a refusal or a failed webhook delivery is counted
    /// too (whatever the level), and a refusal makes the webhook's `refusal` event.
    pub(super) fn log(&mut self, mut event: LogEvent) {
        if let Some(conn) = event.conn().filter(|conn| self.over_http.contains(conn)) {
            event.came_by(Transport::SockJs);
            if matches!(event, LogEvent::Closed { .. }) {
                self.over_http.remove(&conn);
            }
        }
        match &event {
            LogEvent::Refused { reason, .. } => {
                self.tally(Counter::Refusals(*reason));
                self.webhook_refusal(&event);
            }
            LogEvent::WebhookFailed { .. } => self.tally(Counter::WebhookFailures),
            _ => {}
        }
        self.logs.record(&event);
    }

    /// Counts one more of an operator's counts, stored with the deferred writes (nobody
    /// waits for it): committed with the next commit, by the alarm, or before eviction.
    pub(super) fn tally(&mut self, counter: Counter) {
        let Some(count) = self.tally_of(counter) else {
            return;
        };
        *count += 1;
        let write = Write::Counter(counter, *count);
        self.defer_counter(write);
    }

    /// Where an operator's count is kept in memory (`None`: the counter is not one). A new
    /// count is a field of the engine and an arm here.
    pub(super) fn tally_of(&mut self, counter: Counter) -> Option<&mut u64> {
        match counter {
            Counter::Refusals(reason) => Some(&mut self.refusals[reason as usize]),
            Counter::WebhookFailures => Some(&mut self.webhook_failures),
            _ => None,
        }
    }

    /// Defers a counter's write, replacing one of the same counter still deferred.
    fn defer_counter(&mut self, write: Write) {
        let Write::Counter(counter, _) = write else {
            return;
        };
        match self
            .deferred
            .iter_mut()
            .find(|w| matches!(w, Write::Counter(c, _) if *c == counter))
        {
            Some(deferred) => *deferred = write,
            None => self.deferred.push(write),
        }
    }

    // ---- one event ----------------------------------------------------------------------

    /// Runs an event's work with the room's sockets seen through its SockJS sessions, so what
    /// the room sends to a session's connection goes to the session.
    /// Members' sends go to their gateways' outboxes the same way (see [`MemberSockets`]).
    fn with_sessions<S: Sockets, T>(
        &mut self,
        sockets: &mut S,
        now: u64,
        work: impl FnOnce(&mut Self, &mut SessionSockets<'_, Coalescing<'_, MemberSockets<'_, S>>>) -> T,
    ) -> T {
        self.with_sockets(sockets, now, false, work)
    }

    /// [`with_sessions`](Self::with_sessions) for a client's message, which continues a run
    /// of frames left waiting, and leaves its own last run waiting for
    /// [`flush_sends`](Self::flush_sends) when `keep_run` (the room is busy: see
    /// [`coalesce`]).
    fn with_sockets<S: Sockets, T>(
        &mut self,
        sockets: &mut S,
        now: u64,
        keep_run: bool,
        work: impl FnOnce(&mut Self, &mut SessionSockets<'_, Coalescing<'_, MemberSockets<'_, S>>>) -> T,
    ) -> T {
        self.clock = now;
        let mut sessions = std::mem::take(&mut self.sockjs);
        let mut members = std::mem::take(&mut self.members);
        let mut out = std::mem::take(&mut self.out);
        let mut members_sockets = MemberSockets {
            members: &mut members,
            sockets,
        };
        let mut coalescing = Coalescing {
            out: &mut out,
            sockets: &mut members_sockets,
        };
        if !keep_run {
            // Only a client's message continues a run left waiting: anything else may write
            // before it sends, and no fan-out waits behind a write.
            coalescing.flush();
        }
        let result = work(
            self,
            &mut SessionSockets {
                sessions: &mut sessions,
                sockets: &mut coalescing,
                now,
            },
        );
        // A SockJS session over HTTP gets what the event sent it now, as one frame: its
        // receiver is an HTTP answer, which no later event's frames could join.
        sessions.hand_over_due(&mut coalescing, now);
        if !keep_run {
            coalescing.flush();
        }
        self.out = out;
        self.sockjs = sessions;
        self.members = members;
        result
    }

    /// Frames wait to be sent: the caller calls [`flush_sends`](Self::flush_sends) once the
    /// runtime has handed the room the messages already waiting for it (see [`coalesce`]).
    pub fn sends_waiting(&self) -> bool {
        self.out.waiting()
    }

    /// Sends the frames waiting (see [`sends_waiting`](Self::sends_waiting)).
    pub fn flush_sends(&mut self, sockets: &mut impl Sockets, now: u64) {
        self.with_sessions(sockets, now, |_, _| ());
    }

    pub(super) fn open_conn<S: Sockets>(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut SessionSockets<'_, S>,
        peer: Peer,
        carrier: Carrier,
        now: u64,
    ) -> Result<Opened, Failed> {
        self.rebuild_if_needed(store, sockets, now)?;
        self.counts.connects += 1;
        self.webhooks.note_room(&peer.room);
        // A session over HTTP is told of a refusal through its session, once opened.
        let sockjs = carrier.is_sockjs();
        let framed = carrier.is_socket() && sockjs;
        self.logs.room_is(&peer.room);
        if let Some(error) = self
            .broker
            .refusal(peer.address.as_deref())
            .filter(|_| carrier.is_socket())
        {
            self.log(LogEvent::refused_socket(
                &error,
                sockjs,
                peer.address.as_deref(),
            ));
            return Ok(Opened::refused(error, framed));
        }
        self.last_conn += 1;
        let conn = self.last_conn;
        if !carrier.is_socket() {
            self.over_http.insert(conn);
        }
        if !sockets.open(conn, carrier) {
            let error = ProtocolError::new(
                "room full",
                format!(
                    "the room holds as many sockets as the platform allows ({}); try again later",
                    crate::room::budget::PLATFORM_SOCKETS
                ),
            )
            .with_close_code(crate::room::budget::TRY_AGAIN_LATER);
            self.log(LogEvent::refused_socket(
                &error,
                sockjs,
                peer.address.as_deref(),
            ));
            return Ok(Opened::refused(error, framed));
        }
        let mut effects = self.broker.open(conn, peer, now);
        effects.extend(self.test_service_opened(conn, now));
        self.run(store, sockets, Some(conn), effects, now)?;
        Ok(Opened::Accepted(conn))
    }

    /// What a connection sent, in one or more messages (SockJS carries several in one
    /// request); each is held to a frame's size on its own.
    pub(super) fn receive_data(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        conn: ConnId,
        parts: &[&[u8]],
        binary: bool,
        now: u64,
    ) -> Result<(), Failed> {
        self.rebuild_if_needed(store, sockets, now)?;
        self.counts.messages += 1;
        let consumed = self.broker.consumed(conn);
        let mut effects = Vec::new();
        for part in parts {
            effects.extend(self.broker.receive(conn, part, binary, now));
        }
        self.keep_partial_frame(conn, Some((consumed, parts)));
        self.run(store, sockets, Some(conn), effects, now)
    }
}
