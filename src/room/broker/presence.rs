//! `/presence`: the room's members on subscribe, then a join or leave event as they come and go.

use super::{Broker, Cost};
use crate::room::destinations::PRESENCE;
use crate::room::session::{ConnId, Phase, Session};
use crate::stomp::{Delivery, Message, ProtocolError};

/// A member as presence events show it: `{"session": "s1", "login": "alice" | null,
/// "verified": bool}`; an unverified login is only the name the client claims.
pub(super) fn member(session: &Session) -> serde_json::Value {
    serde_json::json!({
        "session": session.session_id(),
        "login": session.login,
        "verified": session.verified,
    })
}

impl Broker {
    /// Sends a new subscriber the room's members. The snapshot grows with the room, so its
    /// bytes count against the subscriber's byte rate: subscribing over and over cannot make
    /// the room build and send it faster than the rate allows.
    pub(super) fn send_presence_snapshot(
        &mut self,
        conn: ConnId,
        handle: u32,
    ) -> Result<(), ProtocolError> {
        let members: Vec<_> = self
            .conns
            .values()
            .filter(|c| c.session.phase == Phase::Connected)
            .map(|c| member(&c.session))
            .collect();
        let body = serde_json::json!({ "type": "members", "members": members }).to_string();
        self.charge(conn, Cost::bytes(body.len() as u64))?;
        let message = self.presence_message(body.into_bytes());
        self.deliver(&[(conn, handle)], &message, Delivery::Live);
        Ok(())
    }

    pub(super) fn publish_presence(&mut self, event: serde_json::Value) {
        let subscribers = self.subscribers(PRESENCE);
        if subscribers.is_empty() {
            return;
        }
        let message = self.presence_message(event.to_string().into_bytes());
        self.deliver(&subscribers, &message, Delivery::Live);
    }

    fn presence_message(&mut self, body: Vec<u8>) -> Message {
        Message {
            id: self.next_message_id(),
            destination: PRESENCE.to_owned(),
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body,
            binary: false,
        }
    }
}
