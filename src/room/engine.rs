//! The room engine: the broker, the persistence policy and the timers of one room, driven by
//! events and the time, with storage and sockets behind traits.
//!
//! # An event, in order
//!
//! 1. The broker handles the event and returns effects.
//! 2. Sends go out at once, in order; writes are gathered. A RECEIPT promises that what came
//!    before it is stored, so once an event has writes, the RECEIPT (and anything after it to
//!    the same connection) waits for the commit. No fan-out ever waits behind a write.
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

mod history;
mod http;
mod ids;
mod sockjs;

pub use history::HistoryPage;
pub use http::decode_basic;
pub use ids::ID_HEADROOM;
pub use sockjs::max_payload as max_sockjs_payload;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::rc::Rc;

use history::Trims;
use ids::Ceiling;

use super::auth::Authenticator;
use super::broker::{Broker, Effect, Throttle};
use super::endpoints::{endpoint_of, Service};
use super::http::Listeners;
use super::record;
use super::session::{ConnId, Peer, Phase, Session};
use super::settings::Settings;
use super::sockets::Sockets;
use super::sockjs::{SessionSockets, SockJsSessions};
use super::storage::{Counter, ReadFrom, Storage, StorageError, Write};
use super::timers::{TimerKind, Timers};
use crate::stomp::ProtocolError;

/// Writes that no client waits for are deferred and committed together: when this many are
/// pending, with any other commit, with the first event [`FLUSH_DELAY_MS`] after the first of
/// them, or by the alarm [`FLUSH_DEADLINE_MS`] after it. A commit costs the platform far more
/// than the rows in it, so a burst of messages costs one commit per this many.
pub const FLUSH_BATCH: usize = 32;

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

/// What became of a socket that asked to open (see [`Room::open`]).
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
                super::sockjs::framed(&frame).into_bytes(),
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

/// What to do with the platform's alarm (see [`Room::alarm_change`]).
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

pub struct Room {
    broker: Broker,
    auth: Rc<dyn Authenticator>,
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
}

/// Sends held back until the event's writes are committed, and what the event changed.
#[derive(Default)]
struct Outbox {
    /// The connection whose RECEIPT waits for the commit; later sends to it wait too.
    held_for: Option<ConnId>,
    held: Vec<Held>,
    /// Connections whose sessions changed.
    changed: BTreeSet<ConnId>,
    /// Connections closed during the event, and whether their close already went out.
    closed: Vec<(ConnId, bool)>,
    /// Someone waits for this event's writes though no RECEIPT is held (an HTTP publish).
    must_commit: bool,
}

enum Held {
    Send {
        conn: ConnId,
        bytes: Vec<u8>,
        binary: bool,
    },
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
}

impl Room {
    /// Builds the room from storage and the sockets' kept sessions: after the object is
    /// created, on first use and after every eviction.
    pub fn wake(
        settings: Settings,
        auth: Rc<dyn Authenticator>,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        now: u64,
    ) -> Result<Self, Failed> {
        let (mut room, effects) = Self::restore(settings, auth, store, sockets, now)?;
        // What the wake sends (queue messages a vanished consumer held) is framed for the
        // sockets that carry SockJS.
        room.with_sessions(sockets, now, |room, sockets| {
            room.finish_restore(effects, store, sockets)
        })?;
        // What connections gone in a crash left stored (their transactions and partial
        // frames) is deleted at once, so storage holds no more than the room counts.
        let orphans = room
            .batch
            .iter()
            .any(|write| matches!(write, Write::Unstage { .. } | Write::PartialReset { .. }));
        if orphans {
            room.commit(store, now, true)?;
        }
        Ok(room)
    }

    /// The room as storage and the kept sessions hold it, and what it must send to be so
    /// (carried out by the caller, through the sockets it sees).
    fn restore(
        settings: Settings,
        auth: Rc<dyn Authenticator>,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        now: u64,
    ) -> Result<(Self, Vec<Effect>), Failed> {
        let stored = store.load()?;
        let mut broker = Broker::new(settings.broker.clone()).with_authenticator(auth.clone());
        let message_ceiling = stored
            .counter(Counter::LastMessageId)
            .max(stored.newest_message_id);
        broker.restore_last_message_id(message_ceiling);
        broker.restore_history(stored.history.clone());
        let mut room = Room {
            broker,
            auth,
            settings,
            timers: Timers::default(),
            batch: Vec::new(),
            deferred: Vec::new(),
            deferred_since: None,
            trims: Trims::new(),
            partials: BTreeSet::new(),
            message_ids: Ceiling::new(message_ceiling),
            conn_ids: Ceiling::new(stored.counter(Counter::LastConn)),
            last_conn: stored.counter(Counter::LastConn),
            wakes: stored.counter(Counter::Wakes) + 1,
            liveness_swept_ms: stored.counter(Counter::LivenessSweep),
            alarm_set: None,
            counts: EventCounts::default(),
            needs_rebuild: false,
            listeners: Listeners::default(),
            http_throttles: stored.address_rates.iter().cloned().collect(),
            sockjs: SockJsSessions::default(),
        };
        room.deferred
            .push(Write::Counter(Counter::Wakes, room.wakes));
        if room.liveness_swept_ms == 0 {
            // A new room: its first lazy sweep is one check interval away, not due at once.
            room.liveness_swept_ms = now;
            room.batch.push(Write::Counter(Counter::LivenessSweep, now));
        }
        for (conn, kept) in sockets.sessions() {
            // The stored counter may lag behind (its write is deferred, and a failed commit
            // drops it): an id a socket carries is taken.
            room.last_conn = room.last_conn.max(conn);
            let session = kept
                .and_then(|json| Session::from_json(&json).ok())
                .filter(|session| session.conn == conn);
            match session {
                Some(session) => room.broker.restore_session(session),
                None => sockets.close(conn, 1011, "session lost; reconnect"),
            }
        }
        for staged in stored.staged {
            let frame = record::decode_frame(&staged.record);
            if let (Some(frame), Some(_)) = (frame, room.broker.session(staged.conn)) {
                room.broker
                    .restore_staged(staged.conn, &staged.transaction, frame, staged.binary);
            } else {
                room.batch.push(Write::Unstage {
                    conn: staged.conn,
                    transaction: staged.transaction,
                });
            }
        }
        for partial in stored.partials {
            let conn = partial.conn;
            if room.broker.session(conn).is_some() {
                room.broker
                    .restore_partial_frame(conn, &partial.bytes, partial.pieces);
                room.partials.insert(conn);
            } else {
                room.batch.push(Write::PartialReset {
                    conn,
                    bytes: Vec::new(),
                });
            }
        }
        let conns: Vec<ConnId> = room.broker.connections().collect();
        for conn in conns {
            room.timers.set(conn, room.broker.deadlines(conn));
            if room.broker.session(conn).is_some_and(|s| s.sockjs) {
                room.sockjs.frame(conn);
            }
        }
        let effects = room.broker.restore_queues(stored.queued, stored.cursors);
        Ok((room, effects))
    }

    fn finish_restore(
        &mut self,
        effects: Vec<Effect>,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
    ) -> Result<(), Failed> {
        let mut outbox = Outbox::default();
        self.carry_out(effects, store, sockets, &mut outbox)?;
        self.refresh(sockets, &outbox);
        Ok(())
    }

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
        self.with_sessions(sockets, now, |room, sockets| {
            room.open_conn(store, sockets, peer, now)
        })
    }

    /// One WebSocket message arrived on a connection (a SockJS-framed socket's is unwrapped
    /// here).
    pub fn receive(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        conn: ConnId,
        data: &[u8],
        binary: bool,
        now: u64,
    ) -> Result<(), Failed> {
        self.with_sessions(sockets, now, |room, sockets| {
            if sockets.sessions.is_framed(conn) {
                return room.sockjs_framed(store, sockets, conn, data, binary, now);
            }
            if room.echoes(conn) {
                sockets.send(conn, data, binary);
                return Ok(());
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

    /// The alarm fired: meets the deadlines that have passed.
    pub fn alarm(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        now: u64,
    ) -> Result<(), Failed> {
        self.with_sessions(sockets, now, |room, sockets| {
            room.rebuild_if_needed(store, sockets, now)?;
            room.counts.alarms += 1;
            room.alarm_set = None;
            let mut effects = Vec::new();
            let mut touched = Vec::new();
            for (conn, kind) in room.timers.due_on_time(now) {
                touched.push(conn);
                effects.extend(match kind {
                    TimerKind::Connect => room.broker.connect_deadline(conn, now),
                    TimerKind::HeartBeat => room.broker.heart_beat_deadline(conn, now),
                    TimerKind::TokenExpiry => room.broker.token_deadline(conn, now),
                    TimerKind::Liveness => Vec::new(),
                });
            }
            if room.liveness_sweep_at().is_some_and(|at| now >= at) {
                for (conn, _) in room.timers.due_liveness(now) {
                    touched.push(conn);
                    let ping = sockets.last_ping_ms(conn);
                    effects.extend(room.broker.liveness_deadline(conn, ping, now));
                }
                room.liveness_swept_ms = now;
                room.batch.push(Write::Counter(Counter::LivenessSweep, now));
            }
            room.end_expired_streams(sockets, now);
            // SockJS sessions whose client stopped coming: closed as a socket that went.
            for conn in sockets.sessions.expire(now) {
                touched.push(conn);
                room.counts.closes += 1;
                effects.extend(room.broker.close(conn, now));
            }
            let mut outbox = Outbox::default();
            outbox.changed.extend(touched);
            room.finish_event(store, sockets, None, effects, outbox, now)
        })
    }

    /// The caller could not change the platform's alarm as [`alarm_change`](Self::alarm_change)
    /// asked: the room no longer counts on it, so the next event asks again.
    pub fn alarm_failed(&mut self) {
        self.alarm_set = None;
    }

    /// How the caller must change the platform's alarm after an event, if at all. Deadlines
    /// that must be met on time are; liveness is checked at most every `liveness_check_ms`
    /// (see [`Settings`]). An alarm already set earlier than needed is kept (it will fire, meet
    /// what is due and ask for the next one); one no longer needed at all is deleted unless it
    /// is due within 10 s, so a room whose last deadline went away (a socket sent CONNECT) is
    /// not woken for nothing half a minute later.
    pub fn alarm_change(&mut self, now: u64) -> Option<AlarmChange> {
        match (self.next_alarm(), self.alarm_set) {
            (None, None) => None,
            // Deleting is a write too: an alarm due within 10 s is left to fire (group commit
            // sets one 2 s ahead whenever writes are deferred).
            (None, Some(set)) if set <= now + 10_000 => None,
            (None, Some(_)) => {
                self.alarm_set = None;
                Some(AlarmChange::Delete)
            }
            (Some(wanted), Some(set)) if set <= wanted && set > now => None,
            (Some(wanted), _) => {
                self.alarm_set = Some(wanted);
                Some(AlarmChange::Set(wanted))
            }
        }
    }

    /// Commits writes still pending from the wake (its counters), for a caller that reads
    /// the room without an event, such as the stats endpoint.
    /// The id ceilings come down to the ids given, as after a quiet spell, so a room
    /// flushed before it is evicted wakes with its ids continuing exactly.
    pub fn flush(&mut self, store: &mut impl Storage) -> Result<(), Failed> {
        let now = u64::MAX - FLUSH_DEADLINE_MS;
        Ok(self.commit(store, now, true)?)
    }

    /// When the room next has a deadline to meet.
    pub fn next_alarm(&self) -> Option<u64> {
        let on_time = self.timers.next_on_time();
        on_time
            .into_iter()
            .chain(self.liveness_sweep_at())
            .chain(self.sockjs.next_deadline())
            .chain(self.listeners.next_end())
            .chain(self.deferred_since.map(|since| since + FLUSH_DEADLINE_MS))
            .chain(self.message_ids.lowers_at())
            .chain(self.conn_ids.lowers_at())
            .min()
    }

    /// Counters for operators: connections, wakes, handler calls since this wake, last id.
    pub fn stats(&self) -> serde_json::Value {
        serde_json::json!({
            "connections": self.broker.connections().count(),
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
        })
    }

    // ---- one event ----------------------------------------------------------------------

    /// Runs an event's work with the room's sockets seen through its SockJS sessions, so what
    /// the room sends to a session's connection goes to the session.
    fn with_sessions<S: Sockets, T>(
        &mut self,
        sockets: &mut S,
        now: u64,
        work: impl FnOnce(&mut Self, &mut SessionSockets<'_, S>) -> T,
    ) -> T {
        let mut sessions = std::mem::take(&mut self.sockjs);
        let result = work(
            self,
            &mut SessionSockets {
                sessions: &mut sessions,
                sockets,
                now,
            },
        );
        self.sockjs = sessions;
        result
    }

    fn open_conn<S: Sockets>(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut SessionSockets<'_, S>,
        peer: Peer,
        now: u64,
    ) -> Result<Opened, Failed> {
        self.rebuild_if_needed(store, sockets, now)?;
        self.counts.connects += 1;
        // A session over HTTP is told of a refusal through its session, once opened.
        let socket = !sockets.sessions.opening_session();
        if let Some(error) = self
            .broker
            .refusal(peer.address.as_deref())
            .filter(|_| socket)
        {
            return Ok(Opened::refused(error, peer.sockjs));
        }
        self.last_conn += 1;
        let conn = self.last_conn;
        if peer.sockjs {
            sockets.sessions.framing_next();
        }
        if !sockets.accept(conn) {
            let error = ProtocolError::new(
                "room full",
                format!(
                    "the room holds as many sockets as the platform allows ({}); try again later",
                    crate::room::budget::PLATFORM_SOCKETS
                ),
            )
            .with_close_code(crate::room::budget::TRY_AGAIN_LATER);
            return Ok(Opened::refused(error, peer.sockjs));
        }
        let closes_at_once = endpoint_of(&self.settings, &peer.room).service == Service::Close;
        let mut effects = self.broker.open(conn, peer, now);
        if closes_at_once && self.broker.session(conn).is_some() {
            effects.extend(self.broker.close(conn, now));
            effects.push(Effect::Close {
                conn,
                code: 3000,
                reason: "Go away!".to_owned(),
            });
        }
        self.run(store, sockets, Some(conn), effects, now)?;
        Ok(Opened::Accepted(conn))
    }

    /// Whether the connection is to the echo test service (`sockjs_test_services`).
    fn echoes(&self, conn: ConnId) -> bool {
        self.settings.sockjs_test_services
            && self.broker.session(conn).is_some_and(|session| {
                endpoint_of(&self.settings, &session.room).service == Service::Echo
            })
    }

    /// What a connection sent, in one or more messages (SockJS carries several in one
    /// request); each is held to a frame's size on its own.
    fn receive_data(
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

    fn liveness_sweep_at(&self) -> Option<u64> {
        let first = self.timers.next_liveness()?;
        Some(first.max(self.liveness_swept_ms + self.settings.liveness_check_ms))
    }

    fn run(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        origin: Option<ConnId>,
        effects: Vec<Effect>,
        now: u64,
    ) -> Result<(), Failed> {
        self.finish_event(store, sockets, origin, effects, Outbox::default(), now)
    }

    /// Carries out an event's effects, commits its writes, then sends what waited for them.
    fn finish_event(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        origin: Option<ConnId>,
        effects: Vec<Effect>,
        mut outbox: Outbox,
        now: u64,
    ) -> Result<(), Failed> {
        let result = self
            .carry_out(effects, store, sockets, &mut outbox)
            .and_then(|()| {
                if let Some(conn) = origin {
                    self.keep_partial_frame(conn, None);
                }
                self.forget_partial_frames_of_closed();
                // RECEIPTs waiting for the commit: it happens now.
                let waited_for = !outbox.held.is_empty() || outbox.must_commit;
                self.commit(store, now, waited_for)
            });
        if let Err(error) = result {
            self.storage_failed(sockets, origin, &outbox, &error);
            self.needs_rebuild = true;
            // Best effort now; if storage cannot be read either, the next event tries again.
            let _ = self.rebuild_if_needed(store, sockets, now);
            return Err(Failed(error));
        }
        for held in std::mem::take(&mut outbox.held) {
            match held {
                Held::Send {
                    conn,
                    bytes,
                    binary,
                } => sockets.send(conn, &bytes, binary),
                Held::Close { conn, code, reason } => sockets.close(conn, code, &reason),
            }
        }
        self.refresh(sockets, &outbox);
        Ok(())
    }

    /// After a failed commit, replaces this engine's state with what storage and the kept
    /// sessions hold, keeping the message ids already given out.
    fn rebuild_if_needed(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        now: u64,
    ) -> Result<(), Failed> {
        if !self.needs_rebuild {
            return Ok(());
        }
        // `sockets` already sees the SockJS sessions (this runs inside an event).
        let (mut fresh, effects) = Room::restore(
            self.settings.clone(),
            self.auth.clone(),
            store,
            sockets,
            now,
        )?;
        fresh.finish_restore(effects, store, sockets)?;
        fresh
            .broker
            .restore_last_message_id(self.broker.last_message_id());
        // Connection ids given out since the last stored one stay taken too.
        fresh.last_conn = fresh.last_conn.max(self.last_conn);
        // Stored at once (their ceilings), so ids given out before the failure stay taken
        // even if the room is evicted before its next event.
        fresh.commit(store, now, true)?;
        fresh.counts = std::mem::take(&mut self.counts);
        // Open requests live in memory only, and are still open. (SockJS sessions are out of
        // `self` during the event, see `with_sessions`; those open were lost and told so when
        // the wake asked for the kept sessions.)
        fresh.listeners = std::mem::take(&mut self.listeners);
        *self = fresh;
        Ok(())
    }

    /// Keeps each changed session with its socket and re-indexes its deadlines.
    fn refresh(&mut self, sockets: &mut impl Sockets, outbox: &Outbox) {
        let closed = outbox.closed.iter().map(|&(conn, _)| conn);
        for conn in outbox.changed.iter().copied().chain(closed) {
            if let Some(session) = self.broker.session(conn) {
                sockets.save_session(conn, &session.to_json());
            }
            self.timers.set(conn, self.broker.deadlines(conn));
        }
    }

    fn carry_out(
        &mut self,
        effects: Vec<Effect>,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        outbox: &mut Outbox,
    ) -> Result<(), StorageError> {
        let mut pending: VecDeque<Effect> = effects.into();
        while let Some(effect) = pending.pop_front() {
            match effect {
                Effect::Send {
                    conn,
                    bytes,
                    binary,
                } => {
                    if outbox.held_for == Some(conn) {
                        outbox.held.push(Held::Send {
                            conn,
                            bytes,
                            binary,
                        });
                    } else {
                        sockets.send(conn, &bytes, binary);
                    }
                }
                Effect::SendMany {
                    mut conns,
                    bytes,
                    binary,
                } => {
                    if let Some(held) = outbox.held_for.filter(|c| conns.contains(c)) {
                        conns.retain(|&c| c != held);
                        outbox.held.push(Held::Send {
                            conn: held,
                            bytes: bytes.clone(),
                            binary,
                        });
                    }
                    sockets.send_many(&conns, &bytes, binary);
                }
                Effect::Receipt { conn, bytes } => {
                    let unstored = !self.batch.is_empty() || !self.deferred.is_empty();
                    if outbox.held_for == Some(conn) || unstored {
                        outbox.held_for = Some(conn);
                        outbox.held.push(Held::Send {
                            conn,
                            bytes,
                            binary: false,
                        });
                    } else {
                        sockets.send(conn, &bytes, false);
                    }
                }
                Effect::Close { conn, code, reason } => {
                    let now = outbox.held_for != Some(conn);
                    if now {
                        sockets.close(conn, code, &reason);
                    } else {
                        outbox.held.push(Held::Close { conn, code, reason });
                    }
                    outbox.closed.push((conn, now));
                }
                Effect::SaveSession { conn } => {
                    outbox.changed.insert(conn);
                }
                Effect::Archive(message) => {
                    self.notify_listeners(sockets, &message);
                    self.archive(message);
                }
                Effect::TrimHistory {
                    destination,
                    keep_rows,
                    keep_bytes,
                } => self.trim(destination, keep_rows, keep_bytes),
                Effect::DropHistory { destination } => self.drop_history(destination),
                Effect::Enqueue(message) => self.batch.push(Write::Enqueue(message)),
                Effect::Requeue { message_id, avoid } => {
                    self.batch.push(Write::Requeue { message_id, avoid })
                }
                Effect::Dequeue { message_id } => self.batch.push(Write::Dequeue { message_id }),
                Effect::QueueCursor { destination, next } => {
                    self.batch.push(Write::QueueCursor { destination, next })
                }
                Effect::Replay {
                    conn,
                    subscription,
                    destination,
                    request,
                } => {
                    let page = self.history(store, &destination, request, ReadFrom::Newest)?;
                    let more =
                        self.broker
                            .replay(conn, &subscription, page.messages, page.left_out);
                    for effect in more.into_iter().rev() {
                        pending.push_front(effect);
                    }
                }
                Effect::Stage {
                    conn,
                    transaction,
                    record,
                    binary,
                } => self.batch.push(Write::Stage {
                    conn,
                    transaction,
                    record,
                    binary,
                }),
                Effect::Unstage { conn, transaction } => {
                    self.batch.push(Write::Unstage { conn, transaction })
                }
            }
        }
        Ok(())
    }

    /// Commits the event's writes with the deferred ones, when anything must be committed
    /// now (`now_needed`: a RECEIPT waits; or the event has writes that are not deferrable; or
    /// [`FLUSH_BATCH`] are deferred; or their delay ran out; or an id was given above its
    /// stored ceiling). Each commit carries the id ceilings it needs (see [`ids`]), and the
    /// history trims after everything else.
    fn commit(
        &mut self,
        store: &mut impl Storage,
        now: u64,
        now_needed: bool,
    ) -> Result<(), StorageError> {
        let given = (self.broker.last_message_id(), self.last_conn);
        let due = now_needed
            || !self.batch.is_empty()
            || self.deferred.len() >= FLUSH_BATCH
            || self
                .deferred_since
                .is_some_and(|since| now >= since + FLUSH_DELAY_MS)
            || self.message_ids.due(given.0, now)
            || self.conn_ids.due(given.1, now);
        if !due {
            if !self.deferred.is_empty() && self.deferred_since.is_none() {
                self.deferred_since = Some(now);
            }
            return Ok(());
        }
        let ceilings = (
            self.message_ids.plan(given.0, now),
            self.conn_ids.plan(given.1, now),
        );
        let mut writes = std::mem::take(&mut self.deferred);
        writes.append(&mut self.batch);
        writes.extend(
            ceilings
                .0
                .map(|c| Write::Counter(Counter::LastMessageId, c)),
        );
        writes.extend(ceilings.1.map(|c| Write::Counter(Counter::LastConn, c)));
        writes.extend(self.trim_writes());
        self.deferred_since = None;
        if writes.is_empty() {
            return Ok(());
        }
        store.commit(&writes)?;
        if let Some(ceiling) = ceilings.0 {
            self.message_ids.stored_as(ceiling, given.0, now);
        }
        if let Some(ceiling) = ceilings.1 {
            self.conn_ids.stored_as(ceiling, given.1, now);
        }
        self.trimmed(store);
        Ok(())
    }

    /// Forgets the stored partial frames of connections the room no longer has: closed by a
    /// deadline, an error or a client, whatever the event.
    fn forget_partial_frames_of_closed(&mut self) {
        let gone: Vec<ConnId> = self
            .partials
            .iter()
            .copied()
            .filter(|&conn| self.broker.session(conn).is_none())
            .collect();
        for conn in gone {
            self.partials.remove(&conn);
            self.batch.push(Write::PartialReset {
                conn,
                bytes: Vec::new(),
            });
        }
    }

    /// Stores what a message added to a connection's partly-arrived frame, at a cost linear
    /// in what arrives: while no frame completes, each message's bytes are appended as a
    /// piece of their own; once one does, the remainder replaces them. `arrived` is the
    /// bytes consumed before the message and its parts; without it, only a connection that
    /// is gone has its pieces forgotten.
    fn keep_partial_frame(&mut self, conn: ConnId, arrived: Option<(u64, &[&[u8]])>) {
        let pending = self.broker.partial_frame(conn);
        let open = self.broker.session(conn).is_some();
        // A connection that is gone has its pieces forgotten with the others' (see
        // `forget_partial_frames_of_closed`).
        let Some((consumed, parts)) = arrived.filter(|_| open) else {
            return;
        };
        if pending.is_empty() {
            if self.partials.remove(&conn) {
                self.batch.push(Write::PartialReset {
                    conn,
                    bytes: Vec::new(),
                });
            }
        } else if self.broker.consumed(conn) == consumed {
            for part in parts.iter().filter(|part| !part.is_empty()) {
                self.batch.push(Write::PartialAppend {
                    conn,
                    bytes: part.to_vec(),
                });
            }
            self.partials.insert(conn);
        } else {
            self.batch.push(Write::PartialReset {
                conn,
                bytes: pending.to_vec(),
            });
            self.partials.insert(conn);
        }
    }

    /// Storage refused the event: the connection that caused it hears why and is closed.
    /// Nothing held for the commit is sent.
    fn storage_failed(
        &mut self,
        sockets: &mut impl Sockets,
        origin: Option<ConnId>,
        outbox: &Outbox,
        error: &StorageError,
    ) {
        self.batch.clear();
        self.deferred.clear();
        self.deferred_since = None;
        let Some(conn) = origin else { return };
        if outbox.closed.iter().any(|&(c, sent)| c == conn && sent) {
            return;
        }
        let version = self
            .broker
            .session(conn)
            .filter(|s| s.phase == Phase::Connected)
            .map(|s| s.version);
        let frame = ProtocolError::new(
            "storage failure",
            format!("the room could not store what this connection just sent ({error}), so none of it was kept; reconnect and send it again"),
        )
        .to_frame();
        sockets.send(conn, &frame.encode(version), false);
        sockets.close(conn, 1011, "storage failure");
    }
}
