//! The platform's alarm: what it meets when it fires, and when the engine next needs it.

#[allow(unused_imports)]
use super::*;

impl RoomEngine {
    /// The alarm fired: meets the deadlines that have passed.
    pub fn alarm(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        now: u64,
    ) -> Result<(), Failed> {
        self.index_room_deadlines();
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
            if room.timers.room_due(RoomTimer::LivenessSweep, now) {
                for (conn, _) in room.timers.due_liveness(now) {
                    touched.push(conn);
                    let ping = sockets.last_ping_ms(conn);
                    effects.extend(room.broker.liveness_deadline(conn, ping, now));
                }
                // Members have no heart-beats here: their gateways are asked instead.
                if let Some(members) = sockets.members() {
                    members.probe();
                }
                room.liveness_swept_ms = now;
                room.batch.push(Write::Counter(Counter::LivenessSweep, now));
            }
            if room.timers.room_due(RoomTimer::OpenRequests, now) {
                room.end_expired_streams(sockets, now);
            }
            // SockJS sessions whose client stopped coming: closed as a socket that went.
            if room.timers.room_due(RoomTimer::SockJsSessions, now) {
                for conn in sockets.sessions.expire(now) {
                    touched.push(conn);
                    room.counts.closes += 1;
                    effects.extend(room.broker.close(conn, now));
                }
            }
            // Deferred writes and id ceilings due now are committed with the event.
            let mut outbox = Outbox::default();
            if room.timers.room_due(RoomTimer::GatewayCalls, now) {
                room.fail_overdue_calls(store, sockets, &mut outbox, now)?;
            }
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
    /// (see [`Settings`]). When an alarm already set is kept: [`AlarmChange::needed`].
    pub fn alarm_change(&mut self, now: u64) -> Option<AlarmChange> {
        // Writes deferred by an event that committed nothing (a count) wait from now.
        if !self.deferred.is_empty() && self.deferred_since.is_none() {
            self.deferred_since = Some(now);
        }
        let wanted = self.next_alarm();
        AlarmChange::needed(wanted, &mut self.alarm_set, now)
    }

    /// When the room next has a deadline to meet: the earliest slot of its timer table.
    pub fn next_alarm(&mut self) -> Option<u64> {
        self.index_room_deadlines();
        self.timers.next()
    }

    /// Puts the room-wide deadlines in the timer table, from what the room holds now.
    fn index_room_deadlines(&mut self) {
        let ceilings = self.message_ids.lowers_at().into_iter();
        let ceilings = ceilings.chain(self.conn_ids.lowers_at()).min();
        let deferred = self.deferred_since.map(|since| since + FLUSH_DEADLINE_MS);
        let slots = [
            (RoomTimer::LivenessSweep, self.liveness_sweep_at()),
            (RoomTimer::DeferredWrites, deferred),
            (RoomTimer::IdCeilings, ceilings),
            (RoomTimer::OpenRequests, self.listeners.next_end()),
            (RoomTimer::SockJsSessions, self.sockjs.next_deadline()),
            (RoomTimer::WebhookDelivery, self.webhooks.delivery_at()),
            (RoomTimer::VacatedGrace, self.webhooks.vacated_at()),
            (RoomTimer::GatewayCalls, self.members.call_deadline()),
        ];
        for (timer, at) in slots {
            self.timers.set_room(timer, at);
        }
    }

    /// When the room next sweeps: when its first client may have gone silent, at most every
    /// `liveness_check_ms`; and, while it has members, every `liveness_check_ms` (5 minutes
    /// when that is 0), to probe their gateways.
    pub(super) fn liveness_sweep_at(&self) -> Option<u64> {
        let check_ms = self.settings.liveness_check_ms;
        let first = self.timers.next_liveness();
        let sockets = first.map(|first| first.max(self.liveness_swept_ms + check_ms));
        let probe_ms = match check_ms {
            0 => Settings::default().liveness_check_ms,
            ms => ms,
        };
        let members = (!self.members.is_empty()).then(|| self.liveness_swept_ms + probe_ms);
        sockets.into_iter().chain(members).min()
    }

    /// Commits writes still pending from the wake (its counters), for a caller that reads
    /// the room without an event, such as the stats endpoint.
    /// The id ceilings come down to the ids given, as after a quiet spell, so a room
    /// flushed before it is evicted wakes with its ids continuing exactly.
    pub fn flush(&mut self, store: &mut impl Storage) -> Result<(), Failed> {
        let now = u64::MAX - FLUSH_DEADLINE_MS;
        Ok(self.commit(store, now, true)?)
    }
}

impl AlarmChange {
    /// How the platform's alarm must change for an object (a room or a gateway) that next
    /// wants it at `wanted`, given the alarm it last set (`alarm_set`, updated to match). An
    /// alarm already set earlier than needed is kept (it will fire, meet what is due and ask for
    /// the next one); one no longer needed at all is deleted unless it is due within 10 s, so an
    /// object whose last deadline went away is not woken for nothing half a minute later.
    pub fn needed(wanted: Option<u64>, alarm_set: &mut Option<u64>, now: u64) -> Option<Self> {
        match (wanted, *alarm_set) {
            (None, None) => None,
            // Deleting is a write too: an alarm due within 10 s is left to fire (group commit
            // sets one 2 s ahead whenever writes are deferred).
            (None, Some(set)) if set <= now + 10_000 => None,
            (None, Some(_)) => {
                *alarm_set = None;
                Some(AlarmChange::Delete)
            }
            // An alarm asked for at or before the wanted time fires then, or, when that time
            // has passed, as soon as the object is free: asking again would cost a storage
            // write per event while it waits (a full webhook batch is due at once, and a busy
            // object keeps its alarm waiting). The alarm's own event forgets it (`alarm_set`).
            (Some(wanted), Some(set)) if set <= wanted => None,
            (Some(wanted), _) => {
                *alarm_set = Some(wanted);
                Some(AlarmChange::Set(wanted))
            }
        }
    }
}
