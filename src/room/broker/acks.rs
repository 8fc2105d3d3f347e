//! ACK and NACK: which delivered message a client means, in each STOMP version's terms, and
//! what settling it does (a queue message is done, or goes back to its queue).

use super::{missing_header, required, Broker, Effect};
use crate::room::session::{AckMode, ConnId, Unacked};
use crate::stomp::{Frame, ProtocolError, Version};

/// The headers of an ACK or NACK that say which delivery it settles, in any STOMP version.
const ACK_HEADERS: [&str; 4] = ["id", "message-id", "subscription", "transaction"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AckKind {
    Ack,
    Nack,
}

impl Broker {
    pub(super) fn on_ack(
        &mut self,
        conn: ConnId,
        frame: Frame,
        kind: AckKind,
    ) -> Result<(), ProtocolError> {
        if let Some(transaction) = frame.header("transaction") {
            // Only what says which message is meant is kept, so an ACK staged in a
            // transaction is small whatever headers it came with.
            let transaction = transaction.to_owned();
            let mut kept = Frame::new(frame.command);
            kept.headers = frame
                .headers
                .into_iter()
                .filter(|(name, _)| ACK_HEADERS.contains(&name.as_str()))
                .collect();
            return self.stage(conn, transaction, kept, false);
        }
        let session = self.session(conn).ok_or_else(super::gone)?;
        let (message_id, handle) = match session.version {
            Version::V1_2 => parse_ack_id(required(&frame, "id")?)?,
            version => {
                let message_id = required(&frame, "message-id")?;
                let message_id = message_id
                    .parse::<u64>()
                    .map_err(|_| unknown_ack(message_id))?;
                let subscription = match (frame.header("subscription"), version) {
                    (Some(id), _) => Some(id),
                    (None, Version::V1_0) => None,
                    (None, _) => return Err(missing_header(frame.command, "subscription")),
                };
                let handle = match subscription {
                    Some(id) => match session.subscription(id) {
                        Some(subscription) => Some(subscription.handle),
                        // Some 1.1 clients name the subscription differently from its `id`;
                        // the message id alone still says which delivery they mean.
                        None if session.unacked.iter().any(|u| u.message_id() == message_id) => {
                            None
                        }
                        None => {
                            return Err(ProtocolError::new(
                                "unknown subscription",
                                format!("no subscription with id {id:?}, and message {message_id} is not awaiting acknowledgement on this connection"),
                            ))
                        }
                    },
                    None => None,
                };
                (message_id, handle)
            }
        };
        // An id that is not awaiting acknowledgement was already acknowledged, or belonged
        // to a topic message whose tracking gave way to newer ones: acknowledging is idempotent.
        let Some(target) = session
            .unacked
            .iter()
            .find(|u| u.message_id() == message_id && handle.is_none_or(|h| u.handle() == h))
            .copied()
        else {
            return Ok(());
        };
        let cumulative = session
            .subscription_by_handle(target.handle())
            .map(|s| s.ack)
            == Some(AckMode::Client);
        let covered = |u: &Unacked| {
            u.handle() == target.handle()
                && if cumulative {
                    u.message_id() <= message_id
                } else {
                    u.message_id() == message_id
                }
        };
        let settled: Vec<Unacked> = session
            .unacked
            .iter()
            .filter(|u| covered(u))
            .copied()
            .collect();
        if let Some(session) = self.session_mut(conn) {
            session.unacked.retain(|u| !covered(u));
        }
        self.save(conn);
        let mut requeue = Vec::new();
        for unacked in settled.iter().filter(|u| u.is_queue()) {
            match kind {
                AckKind::Ack => match self.in_flight.remove(&unacked.message_id()) {
                    Some(message) => self.done_with(&message),
                    None => self.out.push(Effect::Dequeue {
                        message_id: unacked.message_id(),
                    }),
                },
                AckKind::Nack => requeue.push(unacked.message_id()),
            }
        }
        self.requeue(requeue, Some((conn, target.handle())));
        self.dispatch_consumed_queues(conn);
        Ok(())
    }
}

/// Parses a STOMP 1.2 `ack` id as we issue them, `{message-id}-{subscription handle}`, or a
/// bare message id (which some clients send instead): then any subscription matches.
fn parse_ack_id(id: &str) -> Result<(u64, Option<u32>), ProtocolError> {
    let invalid = || unknown_ack(id);
    match id.split_once('-') {
        Some((message_id, handle)) => Ok((
            message_id.parse().map_err(|_| invalid())?,
            Some(handle.parse().map_err(|_| invalid())?),
        )),
        None => Ok((id.parse().map_err(|_| invalid())?, None)),
    }
}

fn unknown_ack(id: &str) -> ProtocolError {
    ProtocolError::new(
        "invalid ack id",
        format!("{id:?} is not an id this server issued"),
    )
}
