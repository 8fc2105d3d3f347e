//! The engine's side of webhooks ([`crate::room::webhooks`]): events raised from what an event
//! changed, their rows added to that event's own commit (after its sends: no fan-out and no
//! RECEIPT waits for them), and the batches the alarm hands to the edge to POST. A `refusal`
//! event is raised where a refusal is logged, and its rows are deferred: a refused client
//! never costs the room a commit of its own.

#[allow(unused_imports)]
use super::*;

use crate::room::log::url_origin;
use crate::room::webhooks::{member_data, Batch, Refused};

impl RoomEngine {
    /// The next webhook batch to POST, if one is due at `now`: the alarm's caller POSTs it
    /// (outside the event, holding nothing) and answers with
    /// [`webhook_answered`](Self::webhook_answered). Webhook rows ride the group commit with
    /// the messages that raised them, so what waits to be stored is stored first: an event
    /// POSTed and then lost in a crash would see its id given again.
    pub fn webhook_batch(
        &mut self,
        store: &mut impl Storage,
        now: u64,
    ) -> Result<Option<Batch>, Failed> {
        if !self.webhooks.batch_due(now) {
            return Ok(None);
        }
        if !self.deferred.is_empty() {
            if let Err(error) = self.commit(store, now, true) {
                return Err(self.commit_failed(error));
            }
        }
        Ok(self.webhooks.take_batch(now))
    }

    /// The receiver's answer to a batch: its HTTP status, or why the POST failed. A 2xx
    /// deletes the batch's events; anything else schedules a retry, logged (`webhook delivery
    /// failed`) and counted (`webhook_failures`). Needs no sockets: the answer may come after
    /// the alarm that sent the batch has returned. An engine that must first be rebuilt from
    /// storage ignores it (its outbox comes back whole, and the batch goes again).
    pub fn webhook_answered(
        &mut self,
        store: &mut impl Storage,
        batch: &Batch,
        answer: Result<u16, String>,
        now: u64,
    ) -> Result<(), Failed> {
        if self.needs_rebuild {
            return Ok(());
        }
        let (writes, failed_attempt) = self.webhooks.answered(batch, &answer, now);
        if let Some(attempt) = failed_attempt {
            self.log(LogEvent::WebhookFailed {
                webhook: url_origin(&batch.url),
                status: answer.ok(),
                attempt: u32::try_from(attempt).unwrap_or(u32::MAX),
            });
        }
        self.batch.extend(writes);
        if let Err(error) = self.commit(store, now, true) {
            return Err(self.commit_failed(error));
        }
        Ok(())
    }

    /// A commit outside any client's event failed: what it held is gone, the room is rebuilt
    /// from storage at its next event, and the operator hears of it.
    fn commit_failed(&mut self, error: StorageError) -> Failed {
        self.batch.clear();
        self.deferred.clear();
        self.deferred_since = None;
        self.needs_rebuild = true;
        self.log(LogEvent::StorageFailed {
            conn: None,
            error: error.to_string(),
        });
        Failed(error)
    }

    /// Whether a message to this destination makes a webhook event (it is kept for one).
    pub(super) fn webhook_wants(&self, destination: &str) -> bool {
        self.webhooks.wants_message(destination)
    }

    /// The webhook events of what the event changed, in order: members who joined, messages,
    /// members who left, and `room.vacated` if its grace ran out (refusals are raised as they
    /// are logged, see [`webhook_refusal`](Self::webhook_refusal)).
    pub(super) fn raise_webhook_events(&mut self, outbox: &Outbox, now: u64) {
        if !self.webhooks.enabled() {
            return;
        }
        let touched: BTreeSet<ConnId> = outbox
            .changed
            .iter()
            .copied()
            .chain(outbox.closed.iter().map(|&(conn, _)| conn))
            .collect();
        let mut writes = Vec::new();
        for &conn in &touched {
            if let Some(data) = self
                .member_of(conn)
                .filter(|_| !self.webhooks.is_member(conn))
            {
                writes.extend(self.webhooks.member(conn, Some(data), now));
            }
        }
        for message in &outbox.hooked {
            writes.extend(self.webhooks.message(message, now));
        }
        for &conn in &touched {
            if self.webhooks.is_member(conn) && self.member_of(conn).is_none() {
                writes.extend(self.webhooks.member(conn, None, now));
            }
        }
        writes.extend(self.webhooks.vacate_if_due(now));
        self.defer_webhook_writes(writes);
    }

    /// Webhook rows join the group commit of the messages that raised them (a RECEIPT's
    /// commit takes them along): a webhook costs no commit of its own. A batch goes out only
    /// once its rows are stored (see `webhook_batch`).
    fn defer_webhook_writes(&mut self, writes: Vec<Write>) {
        for write in writes {
            match write {
                Write::Counter(..) => self.defer_counter(write),
                write => self.deferred.push(write),
            }
        }
    }

    /// A refusal being logged: its `refusal` event (unless capped), classified as the logs
    /// and `/stats` classify it. Its writes are deferred, committed with the next commit, by
    /// the alarm or before eviction: a flood of refused clients costs no commit each, and a
    /// failed commit loses nothing of another event's (its rows go with the deferred writes).
    pub(super) fn webhook_refusal(&mut self, event: &LogEvent) {
        let LogEvent::Refused {
            conn,
            reason,
            limit,
            login,
            verified,
            ..
        } = event
        else {
            return;
        };
        if !self.webhooks.enabled() {
            return;
        }
        let session = conn.map(|conn| format!("s{conn}"));
        let refused = session.as_deref().map(|session| Refused {
            session,
            login: login.as_deref(),
            verified: *verified,
        });
        let writes = self
            .webhooks
            .refusal(reason.as_str(), *limit, refused, self.clock);
        self.defer_webhook_writes(writes);
    }

    /// A connection's member data, if it is a member: a connected STOMP session.
    fn member_of(&self, conn: ConnId) -> Option<serde_json::Value> {
        let session = self
            .broker
            .session(conn)
            .filter(|s| s.phase == Phase::Connected)?;
        Some(member_data(
            &session.session_id(),
            session.login.as_deref(),
            session.verified,
        ))
    }

    /// At a wake: members the webhooks told of whose sessions are gone (a crash closed their
    /// sockets) leave, sessions not yet told of join, and an occupied room found empty starts
    /// its grace. Their rows go with the wake's commit.
    pub(super) fn reconcile_webhook_members(&mut self, now: u64) {
        if !self.webhooks.enabled() {
            return;
        }
        let mut writes = Vec::new();
        let connected: Vec<ConnId> = self.broker.connections().collect();
        for conn in connected {
            if let Some(data) = self
                .member_of(conn)
                .filter(|_| !self.webhooks.is_member(conn))
            {
                if let Some(session) = self.broker.session(conn) {
                    self.webhooks.note_room(&session.room);
                }
                writes.extend(self.webhooks.member(conn, Some(data), now));
            }
        }
        let gone: Vec<ConnId> = self
            .webhooks
            .members()
            .filter(|&conn| self.member_of(conn).is_none())
            .collect();
        for conn in gone {
            writes.extend(self.webhooks.member(conn, None, now));
        }
        self.webhooks.start_vacancy(now, &mut writes);
        self.batch.extend(writes);
    }
}
