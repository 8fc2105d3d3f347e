//! Building the engine: from storage and the sockets' kept sessions after a wake, and again
//! from them after a failed commit, keeping the ids already given out.

#[allow(unused_imports)]
use super::*;

/// A wake asks the room's gateways which members they hold when the last sweep was at least
/// this long ago (the quiet spell before an eviction).
const WAKE_PROBE_AFTER_MS: u64 = 10_000;

impl RoomEngine {
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
        // Gateways that crashed or were deployed meanwhile (a deploy restarts every object)
        // lost their sockets without telling the room: each is asked which members it holds,
        // unless the room's last sweep asked them moments ago (a room is evicted only after
        // 10 s of quiet, so a wake soon after a sweep follows a crash the sweep came after,
        // and the next sweep asks).
        if now >= room.liveness_swept_ms + WAKE_PROBE_AFTER_MS {
            room.members.probe();
        }
        // What connections gone in a crash left stored (their transactions and partial
        // frames) is deleted at once, so storage holds no more than the room counts.
        // So is what the webhooks found changed (members a crash closed).
        let orphans = room.batch.iter().any(|write| {
            matches!(
                write,
                Write::Unstage { .. }
                    | Write::PartialReset { .. }
                    | Write::WebhookMember { .. }
                    | Write::WebhookMemberGone { .. }
                    | Write::WebhookEvent(_)
                    | Write::Counter(Counter::WebhookVacantSince, _)
                    | Write::Member(_)
                    | Write::MemberGone { .. }
            )
        });
        if orphans {
            room.commit(store, now, true)?;
        }
        Ok(room)
    }

    /// The room as storage and the kept sessions hold it, and what it must send to be so
    /// (carried out by the caller, through the sockets it sees).
    pub(super) fn restore(
        settings: Settings,
        auth: Rc<dyn Authenticator>,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        now: u64,
    ) -> Result<(Self, Vec<Effect>), Failed> {
        let mut stored = store.load()?;
        let settings_level = settings.log_level;
        let mut broker = Broker::new(settings.broker.clone()).with_authenticator(auth.clone());
        let message_ceiling = stored
            .counter(Counter::LastMessageId)
            .max(stored.newest_message_id);
        broker.restore_last_message_id(message_ceiling);
        broker.restore_history(stored.history.clone());
        broker.restore_idempotency_keys(std::mem::take(&mut stored.idempotency_keys), now);
        // With webhooks off, what they stored is forgotten (with the deferred writes).
        let (webhooks, forget_webhooks) = Webhooks::restore(settings.webhooks.clone(), &stored);
        let mut room = RoomEngine {
            webhooks,
            broker,
            auth,
            out: Coalescer::new(settings.coalesce_frames),
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
            logs: Logs::new(settings_level),
            refusals: [0; Refusal::ALL.len()],
            webhook_failures: 0,
            over_http: BTreeSet::new(),
            clock: now,
            members: Members::default(),
        };
        for &(counter, value) in &stored.counters {
            if let Some(count) = room.tally_of(counter) {
                *count = value;
            }
        }
        room.deferred
            .push(Write::Counter(Counter::Wakes, room.wakes));
        room.deferred.extend(forget_webhooks);
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
                Some(session) => {
                    room.logs.room_is(&session.room);
                    room.webhooks.note_room(&session.room);
                    room.broker.restore_session(session)
                }
                None => sockets.close(conn, 1011, "session lost; reconnect"),
            }
        }
        // The gateways' members, whose sessions are stored with the room's own writes.
        let mut members = Vec::new();
        for row in std::mem::take(&mut stored.members) {
            room.last_conn = room.last_conn.max(row.conn);
            let session = Session::from_json(&row.session)
                .ok()
                .filter(|session| session.conn == row.conn);
            match session {
                Some(session) => {
                    room.logs.room_is(&session.room);
                    room.webhooks.note_room(&session.room);
                    room.broker.restore_session(session);
                    members.push(row);
                }
                None => room.batch.push(Write::MemberGone { conn: row.conn }),
            }
        }
        room.members = gateway::restore_members(sockets, &members);
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
        room.reconcile_webhook_members(now);
        let effects = room.broker.restore_queues(stored.queued, stored.cursors);
        Ok((room, effects))
    }

    pub(super) fn finish_restore(
        &mut self,
        effects: Vec<Effect>,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
    ) -> Result<(), Failed> {
        let mut outbox = Outbox::default();
        self.carry_out(effects, store, sockets, &mut outbox)?;
        self.settle_members(store, sockets, &mut outbox, self.clock)?;
        self.refresh(sockets, &outbox);
        Ok(())
    }

    /// After a failed commit, replaces this engine's state with what storage and the kept
    /// sessions hold, keeping the message ids already given out.
    pub(super) fn rebuild_if_needed(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        now: u64,
    ) -> Result<(), Failed> {
        if !self.needs_rebuild {
            return Ok(());
        }
        // `sockets` already sees the SockJS sessions (this runs inside an event).
        let (mut fresh, effects) = RoomEngine::restore(
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
        // even if the room is evicted before its next event; what the restore sent leaves
        // first (no fan-out waits behind a write).
        sockets.flush();
        fresh.commit(store, now, true)?;
        fresh.counts = std::mem::take(&mut self.counts);
        // Open requests live in memory only, and are still open. (SockJS sessions are out of
        // `self` during the event, see `with_sessions`; those open were lost and told so when
        // the wake asked for the kept sessions.)
        fresh.listeners = std::mem::take(&mut self.listeners);
        // Lines logged and counts counted before the failure stand; the counts are written
        // again with the next commit.
        fresh.logs.carry_over(&mut self.logs);
        fresh.over_http = std::mem::take(&mut self.over_http);
        for &counter in Counter::ALL {
            let counted = self.tally_of(counter).map_or(0, |count| *count);
            if let Some(stored) = fresh.tally_of(counter).filter(|stored| **stored < counted) {
                *stored = counted;
                fresh.defer_counter(Write::Counter(counter, counted));
            }
        }
        *self = fresh;
        Ok(())
    }
}
