//! `/queue/` destinations: competing consumers, round-robin, a prefetch limit per connection
//! (`max_unacked`), and redelivery of what a consumer refused or left unacknowledged.
//!
//! Everything a queue decides is mirrored for storage, so a woken room decides the same: the
//! messages (`Enqueue`/`Dequeue`), each requeued message's `redelivered` flag and the consumer
//! it avoids (`Requeue`), and the round-robin position (`QueueCursor`).

use std::collections::{BTreeSet, VecDeque};

use super::{Broker, Effect};
use crate::room::budget::QueueOverflow;
use crate::room::record;
use crate::room::session::{AckMode, ConnId};
use crate::stomp::{Delivery, Message, ProtocolError};

/// A stored queue message as the room gives it back after a wake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub message: Message,
    /// It was delivered before and went back to the queue.
    pub redelivered: bool,
    /// The consumer `(connection, subscription handle)` that refused it, tried last.
    pub avoid: Option<(ConnId, u32)>,
}

/// A message waiting in a queue; a queue keeps them in id order.
pub(super) struct Waiting {
    pub message: Message,
    pub redelivered: bool,
    pub avoid: Option<(ConnId, u32)>,
}

#[derive(Default)]
pub(super) struct Queue {
    pub waiting: VecDeque<Waiting>,
    /// Round-robin position among the queue's consumers.
    pub next_consumer: u64,
}

impl Broker {
    pub(super) fn queue(&mut self, name: String) -> &mut Queue {
        self.queues.entry(name).or_default()
    }

    /// Hands waiting messages of a queue to its consumers, round-robin, while any has room.
    pub(super) fn dispatch_queue(&mut self, name: &str) {
        loop {
            let Some(queue) = self.queues.get(name) else {
                return;
            };
            let Some(front) = queue.waiting.front() else {
                // An idle queue keeps its round-robin position while it has consumers.
                if !self.index.contains_key(name) {
                    self.forget_idle_queue(name);
                }
                return;
            };
            let consumers = self.subscribers(name);
            if consumers.is_empty() {
                return;
            }
            let start = (queue.next_consumer % consumers.len() as u64) as usize;
            let has_room = |(conn, handle): &(ConnId, u32)| self.has_room(*conn, *handle);
            let rotation = consumers.iter().cycle().skip(start).take(consumers.len());
            let chosen = rotation
                .clone()
                .find(|c| has_room(c) && Some(**c) != front.avoid)
                .or_else(|| rotation.clone().find(|c| has_room(c)))
                .copied();
            let Some((conn, handle)) = chosen else { return };
            let position = consumers
                .iter()
                .position(|c| *c == (conn, handle))
                .unwrap_or(0);
            let Some(queue) = self.queues.get_mut(name) else {
                return;
            };
            let next = position as u64 + 1;
            if queue.next_consumer != next {
                queue.next_consumer = next;
                self.out.push(Effect::QueueCursor {
                    destination: name.to_owned(),
                    next,
                });
            }
            let Some(waiting) = self
                .queues
                .get_mut(name)
                .and_then(|q| q.waiting.pop_front())
            else {
                return;
            };
            let delivery = Delivery::Queue {
                redelivered: waiting.redelivered,
            };
            self.deliver(&[(conn, handle)], &waiting.message, delivery);
            let auto = self
                .session(conn)
                .and_then(|s| s.subscription_by_handle(handle))
                .is_some_and(|s| s.ack == AckMode::Auto);
            if auto {
                self.done_with(&waiting.message);
            } else {
                self.in_flight.insert(waiting.message.id, waiting.message);
            }
        }
    }

    /// Makes room in a queue for one more message of `bytes`, as the budget's overflow rule
    /// says: refuses it, or drops the queue's oldest waiting messages, when dropping them
    /// makes it fit. Nothing is dropped for a message that would be refused all the same.
    pub(super) fn make_room_in_queue(
        &mut self,
        name: &str,
        bytes: u64,
    ) -> Result<(), ProtocolError> {
        let budget = &self.config.budget;
        let refused = match self.usage.admit_queued(budget, name, bytes) {
            Ok(()) => return Ok(()),
            Err(refused) => refused,
        };
        // What must go: messages over the queue's count, bytes over its size or the room's.
        // A queue holding nothing has nothing of its own to drop (a queue past
        // `max_queues` among them).
        let (queue, queued) = (self.usage.queue(name), self.usage.queued_bytes());
        if budget.queue_overflow != QueueOverflow::DropOldest || queue.messages == 0 {
            return Err(refused);
        }
        let messages =
            (u64::from(queue.messages) + 1).saturating_sub(u64::from(budget.max_queue_messages));
        let over = (queue.bytes + bytes)
            .saturating_sub(budget.max_queue_bytes)
            .max((queued + bytes).saturating_sub(budget.max_queued_bytes));
        let waiting = self.queues.get(name).map(|q| &q.waiting);
        let (mut count, mut freed) = (0u64, 0u64);
        for entry in waiting.into_iter().flatten() {
            if count >= messages && freed >= over {
                break;
            }
            count += 1;
            freed += record::message_row_bytes(&entry.message);
        }
        if count < messages || freed < over {
            return Err(refused);
        }
        for _ in 0..count {
            let Some(oldest) = self
                .queues
                .get_mut(name)
                .and_then(|q| q.waiting.pop_front())
            else {
                break;
            };
            self.done_with(&oldest.message);
        }
        Ok(())
    }

    /// A stored queue message is done with (delivered to an auto-ack consumer, acknowledged,
    /// or dropped to make room): it leaves the budget and storage.
    pub(super) fn done_with(&mut self, message: &Message) {
        self.usage
            .dequeued(&message.destination, record::message_row_bytes(message));
        self.out.push(Effect::Dequeue {
            message_id: message.id,
        });
    }

    /// Drops a queue that holds nothing and has no consumers, with its round-robin position.
    pub(super) fn forget_idle_queue(&mut self, name: &str) {
        let Some(queue) = self.queues.get(name) else {
            return;
        };
        if !queue.waiting.is_empty() {
            return;
        }
        if queue.next_consumer != 0 {
            self.out.push(Effect::QueueCursor {
                destination: name.to_owned(),
                next: 0,
            });
        }
        self.queues.remove(name);
    }

    fn has_room(&self, conn: ConnId, handle: u32) -> bool {
        let Some(session) = self.session(conn) else {
            return false;
        };
        match session.subscription_by_handle(handle).map(|s| s.ack) {
            None => false,
            Some(AckMode::Auto) => true,
            Some(_) => {
                session.unacked.iter().filter(|u| u.is_queue()).count()
                    < self.config.limits.max_unacked
            }
        }
    }

    /// Puts in-flight queue messages back in their queues at their original places (a queue
    /// waits in id order, as RabbitMQ requeues), and dispatches them (to another consumer
    /// than `avoid` when there is one).
    pub(super) fn requeue(&mut self, mut message_ids: Vec<u64>, avoid: Option<(ConnId, u32)>) {
        message_ids.sort_unstable();
        let mut names = BTreeSet::new();
        for id in message_ids {
            if let Some(message) = self.in_flight.remove(&id) {
                self.out.push(Effect::Requeue {
                    message_id: id,
                    avoid,
                });
                names.insert(message.destination.clone());
                let waiting = &mut self.queue(message.destination.clone()).waiting;
                let place = waiting.partition_point(|w| w.message.id < id);
                waiting.insert(
                    place,
                    Waiting {
                        message,
                        redelivered: true,
                        avoid,
                    },
                );
            }
        }
        for name in names {
            self.dispatch_queue(&name);
        }
    }

    /// After a connection freed room (ACK, NACK), offers it the queues it consumes.
    pub(super) fn dispatch_consumed_queues(&mut self, conn: ConnId) {
        let queues: BTreeSet<String> = self
            .session(conn)
            .map(|s| {
                s.subscriptions
                    .iter()
                    .map(|sub| sub.destination.clone())
                    .collect()
            })
            .unwrap_or_default();
        for name in queues {
            if self.queues.contains_key(&name) {
                self.dispatch_queue(&name);
            }
        }
    }

    /// Re-adds stored queue messages and round-robin positions. Messages a restored session
    /// holds unacknowledged are in flight; the rest wait for a consumer. Call after restoring
    /// every session.
    pub fn restore_queues(
        &mut self,
        mut messages: Vec<QueuedMessage>,
        cursors: Vec<(String, u64)>,
    ) -> Vec<Effect> {
        for (name, next) in cursors {
            self.queue(name).next_consumer = next;
        }
        messages.sort_by_key(|m| m.message.id);
        let held: BTreeSet<u64> = self
            .conns
            .values()
            .flat_map(|c| {
                c.session
                    .unacked
                    .iter()
                    .filter(|u| u.is_queue())
                    .map(|u| u.message_id())
            })
            .collect();
        let mut names = BTreeSet::new();
        for QueuedMessage {
            message,
            redelivered,
            avoid,
        } in messages
        {
            self.last_message_id = self.last_message_id.max(message.id);
            self.usage
                .enqueued(&message.destination, record::message_row_bytes(&message));
            if held.contains(&message.id) {
                self.in_flight.insert(message.id, message);
            } else {
                names.insert(message.destination.clone());
                self.queue(message.destination.clone())
                    .waiting
                    .push_back(Waiting {
                        message,
                        redelivered,
                        avoid,
                    });
            }
        }
        let idle: Vec<String> = self.queues.keys().cloned().collect();
        for name in idle {
            if names.contains(&name) {
                self.dispatch_queue(&name);
            } else if !self.index.contains_key(&name) {
                self.forget_idle_queue(&name);
            }
        }
        self.take()
    }
}
