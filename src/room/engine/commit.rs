//! One event's work carried out: sends at once, writes gathered and committed together (or
//! deferred, for group commit), then what waited for the commit.

#[allow(unused_imports)]
use super::*;

/// Sends held back until the event's writes are committed, and what the event changed.
#[derive(Default)]
pub(super) struct Outbox {
    /// The connection whose RECEIPT waits for the commit; later sends to it wait too.
    pub(super) held_for: Option<ConnId>,
    pub(super) held: Vec<Held>,
    /// Connections whose sessions changed.
    pub(super) changed: BTreeSet<ConnId>,
    /// Connections closed during the event, and whether their close already went out.
    pub(super) closed: Vec<(ConnId, bool)>,
    /// Someone waits for this event's writes though no RECEIPT is held (an HTTP publish).
    pub(super) must_commit: bool,
    /// Messages that make webhook events.
    pub(super) hooked: Vec<crate::stomp::Message>,
}

pub(super) enum Held {
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

impl RoomEngine {
    pub(super) fn run(
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
    pub(super) fn finish_event(
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
            .and_then(|()| self.settle_members(store, sockets, &mut outbox, now))
            .and_then(|()| {
                if let Some(conn) = origin {
                    self.keep_partial_frame(conn, None);
                }
                self.forget_partial_frames_of_closed();
                // Webhook rows ride this commit; the RECEIPTs already sent never wait for them.
                self.raise_webhook_events(&outbox, now);
                // RECEIPTs waiting for the commit: it happens now.
                let waited_for = !outbox.held.is_empty() || outbox.must_commit;
                if self.commit_due(now, waited_for) {
                    // Frames still being coalesced leave first: no fan-out waits for a write.
                    sockets.flush();
                }
                self.commit(store, now, waited_for)
            });
        if let Err(error) = result {
            self.storage_failed(sockets, origin, &outbox, &error, now);
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

    /// Keeps each changed session with its socket and re-indexes its deadlines.
    pub(super) fn refresh(&mut self, sockets: &mut impl Sockets, outbox: &Outbox) {
        let closed = outbox.closed.iter().map(|&(conn, _)| conn);
        for conn in outbox.changed.iter().copied().chain(closed) {
            if let Some(session) = self.broker.session(conn) {
                sockets.save_session(conn, &session.to_json());
            }
            self.timers.set(conn, self.broker.deadlines(conn));
        }
    }

    pub(super) fn carry_out(
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
                    if self.webhook_wants(&message.destination) {
                        outbox.hooked.push(message.clone());
                    }
                    self.notify_listeners(sockets, &message);
                    self.archive(message);
                }
                Effect::TrimHistory {
                    destination,
                    keep_rows,
                    keep_bytes,
                } => self.trim(destination, keep_rows, keep_bytes),
                Effect::DropHistory { destination } => self.drop_history(destination),
                Effect::Enqueue(message) => {
                    if self.webhook_wants(&message.destination) {
                        outbox.hooked.push(message.clone());
                    }
                    self.batch.push(Write::Enqueue(message))
                }
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
                    receipt,
                } => {
                    let page = self.history(store, &destination, request, ReadFrom::Newest)?;
                    let more = self.broker.replay(
                        conn,
                        &subscription,
                        page.messages,
                        page.left_out,
                        page.incomplete,
                        receipt,
                    );
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
                // In the event's own commit (never deferred), with its message's writes and
                // what was deferred before: a RECEIPT or a 201 promises the key too.
                Effect::KeepIdempotencyKey(key) => self.batch.push(Write::IdempotencyKey(key)),
                Effect::ForgetIdempotencyKeys { below_id } => {
                    self.batch.push(Write::ForgetIdempotencyKeys { below_id })
                }
                Effect::Log(event) => self.log(event),
            }
        }
        Ok(())
    }

    /// Whether [`commit`](Self::commit) writes now.
    pub(super) fn commit_due(&self, now: u64, now_needed: bool) -> bool {
        let given = (self.broker.last_message_id(), self.last_conn);
        now_needed
            || !self.batch.is_empty()
            || self.deferred.len() >= FLUSH_BATCH
            || self.deferred_bytes() >= FLUSH_BYTES
            || self
                .deferred_since
                .is_some_and(|since| now >= since + FLUSH_DELAY_MS)
            || self.message_ids.due(given.0, now)
            || self.conn_ids.due(given.1, now)
    }

    /// The bytes of the rows the deferred writes add.
    fn deferred_bytes(&self) -> u64 {
        self.deferred.iter().filter_map(Write::row_bytes).sum()
    }

    /// Commits the event's writes with the deferred ones, when anything must be committed
    /// now (`now_needed`: a RECEIPT waits; or the event has writes that are not deferrable; or
    /// [`FLUSH_BATCH`] are deferred, or [`FLUSH_BYTES`] of them; or their delay ran out; or an id was given above its
    /// stored ceiling). Each commit carries the id ceilings it needs (see [`ids`]), and the
    /// history trims after everything else.
    pub(super) fn commit(
        &mut self,
        store: &mut impl Storage,
        now: u64,
        now_needed: bool,
    ) -> Result<(), StorageError> {
        // During an event the runs are out of `self` (see `with_sockets`); outside one (a
        // webhook's answer, an eviction) the caller has sent them first.
        debug_assert!(!self.out.waiting(), "frames waiting behind a write");
        let given = (self.broker.last_message_id(), self.last_conn);
        if !self.commit_due(now, now_needed) {
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

    /// Storage refused the event: the connection that caused it hears why and is closed.
    /// Nothing held for the commit is sent.
    pub(super) fn storage_failed(
        &mut self,
        sockets: &mut impl Sockets,
        origin: Option<ConnId>,
        outbox: &Outbox,
        error: &StorageError,
        now: u64,
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
        if let Some(session) = self.broker.session(conn) {
            let closed = LogEvent::closed(session, CloseReason::StorageFailure, now);
            self.log(closed);
        }
    }
}
