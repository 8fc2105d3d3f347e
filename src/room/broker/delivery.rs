//! Delivery: who subscribes to a destination, and one MESSAGE to each of them.

use std::collections::HashMap;

use super::{Broker, Effect, Sender};
use crate::room::session::{AckMode, ConnId, Session, Unacked};
use crate::stomp::{encode_message, Command, Delivery, Frame, Message, MessageFrameKey, Version};

impl Broker {
    pub(super) fn subscribers(&self, destination: &str) -> Vec<(ConnId, u32)> {
        self.index.get(destination).cloned().unwrap_or_default()
    }

    /// Sends one MESSAGE to each target subscription, tracking it where the subscription
    /// acknowledges. Targets whose frames are byte-identical (same version and subscription id,
    /// no per-session `ack` id, no `replay-incomplete` owed) share one encoding and one
    /// [`Effect::SendMany`]: stomp.js names every client's first subscription `sub-0`, so a
    /// large fan-out encodes a handful of frames.
    pub(super) fn deliver(
        &mut self,
        targets: &[(ConnId, u32)],
        message: &Message,
        delivery: Delivery,
    ) {
        let max_unacked = self.config.limits.max_unacked;
        let is_queue = matches!(delivery, Delivery::Queue { .. });
        let mut groups = Groups::default();
        // Sessions this delivery changed (a message tracked, a mark delivered): saved after.
        let mut changed = Vec::new();
        for &(conn, handle) in targets {
            let Some(connection) = self.conns.get_mut(&conn) else {
                continue;
            };
            let session = &mut connection.session;
            let Some(subscription) = session.subscription_by_handle(handle) else {
                continue;
            };
            // A queue message goes to one consumer, whoever sent it: skipping it here would
            // lose it, so echo control is for topics and `/user/` destinations.
            if !subscription.echo && !is_queue && sent_by(session, message) {
                continue;
            }
            let tracked = subscription.ack != AckMode::Auto;
            let replay_incomplete = subscription.replay_incomplete;
            let ack_handle = (session.version == Version::V1_2 && tracked).then_some(handle);
            let shape = (session.version, ack_handle, replay_incomplete);
            groups.add(conn, shape, &subscription.id, targets.len());
            if replay_incomplete {
                // Said once, on this message: the subscription owes it no more.
                if let Some(subscription) = session.subscription_by_handle_mut(handle) {
                    subscription.replay_incomplete = false;
                }
            }
            if tracked {
                // At most `max_unacked` in all (which bounds the session's size). Topic
                // messages are never redelivered, so the oldest topic tracking gives way; a
                // queue message always finds room, as a consumer holds fewer than
                // `max_unacked` of them when it is chosen.
                if session.unacked.len() >= max_unacked {
                    if let Some(oldest) = session.unacked.iter().position(|u| !u.is_queue()) {
                        session.unacked.remove(oldest);
                    }
                }
                if session.unacked.len() < max_unacked {
                    session.unacked.push(Unacked(message.id, handle, is_queue));
                }
            }
            if tracked || replay_incomplete {
                changed.push(conn);
            }
        }
        let binary = message.binary;
        for (key, conns) in groups.groups {
            let bytes = encode_message(message, &key, delivery);
            self.out.push(match conns.as_slice() {
                [conn] => Effect::Send {
                    conn: *conn,
                    bytes,
                    binary,
                },
                _ => Effect::SendMany {
                    conns,
                    bytes,
                    binary,
                },
            });
        }
        for conn in changed {
            self.save(conn);
        }
    }

    /// Delivers history requested by an [`Effect::Replay`], oldest first, marked `replayed:true`.
    /// When the read left `skipped` older messages out (see `budget.max_read_bytes`), the
    /// first replayed message says so in `replay-skipped`. When the history no longer holds
    /// everything after the id a `replay-after` asked from (it was trimmed or dropped), the
    /// replay is `incomplete`: the subscription owes its client a `replay-incomplete: true`,
    /// on the first MESSAGE it receives, replayed or (when nothing replayed reaches it: none
    /// was left, or `echo: false` kept every one from it) live. The SUBSCRIBE's RECEIPT, sent
    /// after the replay when one was asked for (`receipt`), says so too.
    pub fn replay(
        &mut self,
        conn: ConnId,
        subscription: &str,
        mut messages: Vec<Message>,
        skipped: u32,
        incomplete: bool,
        receipt: Option<String>,
    ) -> Vec<Effect> {
        messages.sort_by_key(|m| m.id);
        let handle = self
            .session(conn)
            .and_then(|s| s.subscription(subscription))
            .map(|s| s.handle);
        if let Some(handle) = handle {
            if incomplete {
                let owed = self
                    .session_mut(conn)
                    .and_then(|session| session.subscription_by_handle_mut(handle));
                if let Some(subscription) = owed {
                    subscription.replay_incomplete = true;
                    // Kept with the session, in case no message follows before an eviction.
                    self.save(conn);
                }
            }
            // Echo control may keep the first from this subscriber: the mark goes on the
            // first it receives.
            let first = self.session(conn).and_then(|session| {
                let echo = session
                    .subscription_by_handle(handle)
                    .is_none_or(|s| s.echo);
                messages.iter().position(|m| echo || !sent_by(session, m))
            });
            if let Some(first) = first.and_then(|i| messages.get_mut(i)) {
                if skipped > 0 {
                    first
                        .headers
                        .push(("replay-skipped".to_owned(), skipped.to_string()));
                }
            }
            for message in &messages {
                self.deliver(&[(conn, handle)], message, Delivery::Replayed);
            }
        }
        if let Some(receipt) = receipt {
            let mut reply = Frame::new(Command::Receipt).with_header("receipt-id", &receipt);
            if incomplete {
                reply = reply.with_header("replay-incomplete", "true");
            }
            if let Some(version) = self.session(conn).map(|s| s.version) {
                self.out.push(Effect::Receipt {
                    conn,
                    bytes: reply.encode(Some(version)),
                });
            }
        }
        self.take()
    }
}

/// Whether `session` sent `message`, by the `sender` and `sender-verified` the room stamped
/// on it (see [`Session::sent`]).
fn sent_by(session: &Session, message: &Message) -> bool {
    Sender::stamped_on(message).is_some_and(|(sender, verified)| session.sent(sender, verified))
}

/// What tells one MESSAGE frame of a fan-out from another, besides the subscription id.
type Shape = (Version, Option<u32>, bool);

/// Frame shapes a fan-out looks through one by one before it indexes them: most fan-outs have
/// one (stomp.js names every client's first subscription `sub-0`), and an index costs a
/// hash per target.
const SHAPES_SCANNED: usize = 8;

/// A fan-out's targets grouped by the frame each gets, in the order the groups were found.
#[derive(Default)]
struct Groups {
    groups: Vec<(MessageFrameKey, Vec<ConnId>)>,
    /// The groups by shape, then subscription id, once there are more than [`SHAPES_SCANNED`].
    index: HashMap<Shape, HashMap<String, usize>>,
}

impl Groups {
    /// Adds a target to its frame's group, or begins one (the first with room for every
    /// target, as most fan-outs have one group).
    fn add(&mut self, conn: ConnId, shape: Shape, subscription: &str, targets: usize) {
        let found = if self.groups.len() <= SHAPES_SCANNED {
            self.groups.iter().position(|(key, _)| {
                (key.version, key.ack_handle, key.replay_incomplete) == shape
                    && key.subscription == subscription
            })
        } else {
            let by_id = self.index.get(&shape);
            by_id.and_then(|by_id| by_id.get(subscription)).copied()
        };
        if let Some(group) = found {
            return self.groups[group].1.push(conn);
        }
        let (version, ack_handle, replay_incomplete) = shape;
        let key = MessageFrameKey {
            version,
            subscription: subscription.to_owned(),
            ack_handle,
            replay_incomplete,
        };
        let mut conns = Vec::with_capacity(if self.groups.is_empty() { targets } else { 1 });
        conns.push(conn);
        self.groups.push((key, conns));
        if self.groups.len() > SHAPES_SCANNED {
            let from = if self.index.is_empty() {
                0
            } else {
                self.groups.len() - 1
            };
            for (at, (key, _)) in self.groups.iter().enumerate().skip(from) {
                let shape = (key.version, key.ack_handle, key.replay_incomplete);
                let by_id = self.index.entry(shape).or_default();
                by_id.insert(key.subscription.clone(), at);
            }
        }
    }
}
