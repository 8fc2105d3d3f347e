//! Topic history in the engine: what the broker archives waits to share a commit (group
//! commit), a trim follows a destination's archives in the commit that carries them, and
//! reads come back within the room's read budget, saying what they left out.

use std::collections::BTreeMap;

use super::RoomEngine;
use crate::room::broker::ReplayRequest;
use crate::room::record;
use crate::room::storage::{HistoryRead, ReadFrom, Storage, StorageError, Write};
use crate::stomp::Message;

/// One read of a destination's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryPage {
    /// Oldest first.
    pub messages: Vec<Message>,
    /// Messages the read asked for but left out to stay within `budget.max_read_bytes`:
    /// older ones for a read of the newest, later ones for a read forward from an id.
    pub left_out: u32,
    /// A read after an id that cannot be complete: the history no longer holds every message
    /// after it (trimmed, dropped, beyond `history_limit`, or history is off).
    pub incomplete: bool,
}

/// Trims waiting for the commit: one per destination, `(keep_rows, keep_bytes)`.
pub(super) type Trims = BTreeMap<String, (u32, u64)>;

impl RoomEngine {
    /// Appends a topic message to its history, in the next commit (after the drop of its
    /// destination's history, when this commit drops it).
    pub(super) fn archive(&mut self, message: Message) {
        if self.settings.broker.history_limit == 0 {
            return;
        }
        let dropped = self.batch.iter().any(
            |write| matches!(write, Write::DropHistory { destination } if *destination == message.destination),
        );
        if dropped {
            self.batch.push(Write::Archive(message));
        } else {
            self.deferred.push(Write::Archive(message));
        }
    }

    /// Drops a destination's whole history (it gave way to another's) in this event's commit,
    /// with what of it waited to be stored.
    pub(super) fn drop_history(&mut self, destination: String) {
        let of_it =
            |write: &Write| matches!(write, Write::Archive(m) if m.destination == destination);
        self.deferred.retain(|write| !of_it(write));
        self.batch.retain(|write| !of_it(write));
        self.trims.remove(&destination);
        self.batch.push(Write::DropHistory { destination });
    }

    /// Trims a destination's history after the archives of the next commit.
    pub(super) fn trim(&mut self, destination: String, keep_rows: u32, keep_bytes: u64) {
        self.trims.insert(destination, (keep_rows, keep_bytes));
    }

    /// The trims a commit carries, after its other writes.
    pub(super) fn trim_writes(&self) -> impl Iterator<Item = Write> + '_ {
        self.trims.iter().map(
            |(destination, &(keep_rows, keep_bytes))| Write::TrimHistory {
                destination: destination.clone(),
                keep_rows,
                keep_bytes,
            },
        )
    }

    /// After a commit that trimmed: what storage now holds of those destinations. A read
    /// that fails leaves the count as it was, too high, which only trims sooner.
    pub(super) fn trimmed(&mut self, store: &impl Storage) {
        for destination in std::mem::take(&mut self.trims).into_keys() {
            if let Ok(usage) = store.history_usage(&destination) {
                self.broker.history_stored(&destination, usage);
            }
        }
    }

    /// The history a replay or a poll asks for, at most `history_limit` messages and
    /// `budget.max_read_bytes`, including messages archived and not yet committed (always
    /// the newest). A read of the newest (`Last`, or a replay after an id) keeps the newest
    /// that fit; a read forward (`from: Oldest`, a poll's next page) the oldest.
    pub(super) fn history(
        &self,
        store: &impl Storage,
        destination: &str,
        request: ReplayRequest,
        from: ReadFrom,
    ) -> Result<HistoryPage, StorageError> {
        let limit = self.settings.broker.history_limit;
        let max_bytes = self.settings.broker.budget.max_read_bytes;
        let (after, count) = match request {
            ReplayRequest::Last(n) => (0, n.min(limit)),
            ReplayRequest::After(id) => (id, limit),
        };
        let unstored: Vec<&Message> = self
            .deferred
            .iter()
            .chain(&self.batch)
            .filter_map(|write| match write {
                Write::Archive(m) if m.destination == destination && m.id > after => Some(m),
                _ => None,
            })
            .collect();
        // What storage holds after `after`: asked at most once, and only of a read the
        // budget may have cut short.
        let mut stored = None;
        let mut stored_count = || -> Result<u32, StorageError> {
            if let Some(count) = stored {
                return Ok(count);
            }
            let count = store.history_count(destination, after)?;
            stored = Some(count);
            Ok(count)
        };
        // Only a read that came within a row of the budget can have been cut short by it.
        let max_row = self.settings.broker.budget.max_row_bytes;
        let may_be_cut = |bytes: u64| bytes + max_row > max_bytes;
        // The rows of `messages`, as read so far.
        let mut bytes = 0;
        let mut messages: Vec<Message>;
        match from {
            ReadFrom::Newest => {
                let newest = within(unstored.iter().rev().copied(), count, &mut bytes, max_bytes);
                let wanted = count - newest.len() as u32;
                messages = if wanted > 0 && newest.len() == unstored.len() {
                    let read = HistoryRead {
                        after,
                        count: wanted,
                        max_bytes: max_bytes.saturating_sub(bytes),
                        from,
                    };
                    let stored = store.history(destination, read)?;
                    bytes += stored.iter().map(record::message_row_bytes).sum::<u64>();
                    stored
                } else {
                    Vec::new()
                };
                messages.extend(newest.into_iter().rev());
            }
            ReadFrom::Oldest => {
                let read = HistoryRead {
                    after,
                    count,
                    max_bytes,
                    from,
                };
                messages = store.history(destination, read)?;
                // Messages not yet stored follow only a stored part that was read whole: one
                // the budget may have cut short is counted to be sure.
                let returned = messages.len() as u32;
                bytes = messages.iter().map(record::message_row_bytes).sum();
                if returned < count && (!may_be_cut(bytes) || stored_count()? == returned) {
                    let room = count - returned;
                    let next = within(unstored.iter().copied(), room, &mut bytes, max_bytes);
                    messages.extend(next);
                }
            }
        }
        let returned = messages.len() as u32;
        let mut left_out = 0;
        if returned < count && may_be_cut(bytes) {
            let available = stored_count()? + unstored.len() as u32;
            left_out = available.min(count).saturating_sub(returned);
        }
        let incomplete = match request {
            ReplayRequest::Last(_) => false,
            // With history off, nothing after an id is kept once the room gave a later one.
            ReplayRequest::After(id) if limit == 0 => id < self.broker.last_message_id(),
            // A read of the newest `count` of more than `count` after the id leaves the older
            // ones out (held until the next trim, never to be replayed).
            ReplayRequest::After(id) => {
                store.history_lost(destination)? > id
                    || (from == ReadFrom::Newest
                        && returned + left_out == count
                        && stored_count()? + unstored.len() as u32 > count)
            }
        };
        Ok(HistoryPage {
            messages,
            left_out,
            incomplete,
        })
    }
}

/// The first of `messages`, at most `count`, while their rows add up to at most `max_bytes`
/// (with `bytes` already spent).
fn within<'a>(
    messages: impl Iterator<Item = &'a Message>,
    count: u32,
    bytes: &mut u64,
    max_bytes: u64,
) -> Vec<Message> {
    let mut taken = Vec::new();
    for message in messages.take(count as usize) {
        let row = record::message_row_bytes(message);
        if *bytes + row > max_bytes {
            break;
        }
        *bytes += row;
        taken.push(message.clone());
    }
    taken
}
