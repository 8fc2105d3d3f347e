//! The routing tables of connections and subscriptions, kept in step with the sessions.

#[allow(unused_imports)]
use super::*;

impl Broker {
    pub(super) fn insert_connection(&mut self, session: Session) {
        let conn = session.conn;
        self.remove_connection(conn);
        let mut decoder = Decoder::new(self.config.limits.clone());
        if session.phase == Phase::Connected {
            decoder.set_version(session.version);
        }
        for subscription in &session.subscriptions {
            self.index_subscription(&subscription.destination, conn, subscription.handle);
        }
        self.conns.insert(
            conn,
            Connection {
                session,
                decoder,
                pieces: 0,
            },
        );
    }

    pub(super) fn remove_connection(&mut self, conn: ConnId) {
        let Some(connection) = self.conns.remove(&conn) else {
            return;
        };
        let session = connection.session;
        self.usage.forget_partial(conn);
        for subscription in &session.subscriptions {
            self.unindex(&subscription.destination, conn, subscription.handle);
        }
        for transaction in &session.transactions {
            self.drop_staged(conn, transaction);
            self.out.push(Effect::Unstage {
                conn,
                transaction: transaction.clone(),
            });
        }
        let queued = session
            .unacked
            .iter()
            .filter(|u| u.is_queue())
            .map(|u| u.message_id())
            .collect();
        self.requeue(queued, None);
        if session.phase == Phase::Connected {
            self.publish_presence(
                serde_json::json!({ "type": "leave", "member": presence::member(&session) }),
            );
        }
    }

    /// Removes a subscription; its unacknowledged queue messages go back to the queue.
    pub(super) fn drop_subscription(&mut self, conn: ConnId, subscription: &Subscription) {
        self.unindex(&subscription.destination, conn, subscription.handle);
        let Some(session) = self.session_mut(conn) else {
            return;
        };
        session
            .subscriptions
            .retain(|s| s.handle != subscription.handle);
        let mut queued = Vec::new();
        session.unacked.retain(|u| {
            if u.handle() != subscription.handle {
                return true;
            }
            if u.is_queue() {
                queued.push(u.message_id());
            }
            false
        });
        self.requeue(queued, None);
    }

    pub(super) fn index_subscription(&mut self, destination: &str, conn: ConnId, handle: u32) {
        let entries = self.index.entry(destination.to_owned()).or_default();
        if let Err(position) = entries.binary_search(&(conn, handle)) {
            entries.insert(position, (conn, handle));
        }
    }

    pub(super) fn unindex(&mut self, destination: &str, conn: ConnId, handle: u32) {
        if let Some(entries) = self.index.get_mut(destination) {
            entries.retain(|entry| *entry != (conn, handle));
            if entries.is_empty() {
                self.index.remove(destination);
                self.forget_idle_queue(destination);
            }
        }
    }

    /// Tells the peer what went wrong, then closes its connection and cleans up after it.
    pub(super) fn fail(&mut self, conn: ConnId, error: ProtocolError) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        let frame = error.to_frame();
        self.send_frame(conn, &frame);
        let mut reason = error.message.clone();
        reason.truncate(100);
        self.out.push(Effect::Close {
            conn,
            code: error.close_code,
            reason,
        });
        if let Some(refused) = self
            .session(conn)
            .and_then(|session| LogEvent::refused(session, &error))
        {
            self.out.push(Effect::Log(refused));
        }
        self.end_connection(conn, CloseReason::of(&error));
    }

    /// A connection ends: logged with why and how long it lived, then forgotten.
    pub(super) fn end_connection(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(session) = self.session(conn) {
            let closed = LogEvent::closed(session, reason, self.now_ms);
            self.out.push(Effect::Log(closed));
        }
        self.remove_connection(conn);
    }
}
