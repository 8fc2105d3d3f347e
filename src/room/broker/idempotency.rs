//! Idempotent publish: a SEND's `idempotency-key` header (an HTTP POST's `Idempotency-Key`)
//! names one publish in the room. A repeat within `idempotency_window_ms` is answered with the
//! original message's id and delivers, archives and enqueues nothing.
//!
//! The keys live in memory, in message-id order, loaded at every wake, and in storage with the
//! commit of the message they name (the engine commits a keyed publish at the end of its
//! event, never deferred), so a RECEIPT or a 201 promises the key as it promises the message,
//! and a crash or an eviction forgets neither. At most `budget.max_idempotency_keys` are held;
//! past it, and past their window, the oldest are forgotten, in memory and (with the next
//! keyed publish's commit) in storage.
//!
//! A key binds the destination it was first used with (as the client named it): the same key
//! for another destination is refused, as a payment API refuses a key reused for another
//! request. The body of a repeat is not compared: the first publish wins.

use std::collections::VecDeque;

#[allow(unused_imports)]
use super::*;

/// The header a SEND names its publish with (an HTTP POST's `Idempotency-Key` becomes it).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The longest idempotency key, in bytes (a UUID takes 36).
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 200;

/// One remembered publish, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    /// The destination as the publish named it.
    pub destination: String,
    /// The id the publish was given.
    pub message_id: u64,
    /// When it was published (ms).
    pub at_ms: u64,
}

/// The keys the room remembers, oldest (lowest message id) first: ids rise as keys are added.
/// Found by a scan (at most `budget.max_idempotency_keys` short strings, once per keyed
/// publish), which keeps the Worker smaller than an index would.
#[derive(Default)]
pub(super) struct Keys {
    held: VecDeque<IdempotencyKey>,
    /// Storage may hold keys older than the oldest held here (they were forgotten in memory
    /// since the last forget was written): the next keyed publish deletes them.
    stale_in_storage: bool,
}

impl Keys {
    fn find(&self, key: &str) -> Option<&IdempotencyKey> {
        self.held.iter().find(|held| held.key == key)
    }

    /// Adds a key with an id above every held one, in place of an expired one of the same key.
    fn insert(&mut self, entry: IdempotencyKey) {
        self.held.retain(|held| held.key != entry.key);
        self.held.push_back(entry);
    }

    /// Forgets the oldest keys while they are expired by `now` or more than `max` are held.
    fn forget_oldest(&mut self, now: u64, window: u64, max: usize) {
        while let Some(oldest) = self.held.front() {
            let expired = oldest.at_ms.saturating_add(window) <= now;
            if !expired && self.held.len() <= max {
                break;
            }
            self.held.pop_front();
            self.stale_in_storage = true;
        }
    }

    pub(super) fn len(&self) -> usize {
        self.held.len()
    }
}

/// What a keyed publish found: the publish its key names, within the window.
pub(super) struct Repeat {
    pub message_id: u64,
}

impl Broker {
    /// The publish's idempotency key, if it has one and the room keeps them: checked against
    /// its limit (an error names it).
    pub(super) fn idempotency_key(
        &self,
        headers: &[(String, String)],
    ) -> Result<Option<String>, ProtocolError> {
        if self.config.idempotency_window_ms == 0 {
            return Ok(None);
        }
        let Some((_, key)) = headers.iter().find(|(name, _)| name == IDEMPOTENCY_HEADER) else {
            return Ok(None);
        };
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
            return Err(ProtocolError::new(
                "bad idempotency key",
                format!(
                    "an idempotency key must have 1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes; this \
                     one has {}",
                    key.len()
                ),
            ));
        }
        Ok(Some(key.clone()))
    }

    /// The earlier publish `key` names within the window, if any; a key used for another
    /// destination is refused.
    pub(super) fn repeat_of(
        &self,
        key: &str,
        destination: &str,
    ) -> Result<Option<Repeat>, ProtocolError> {
        let window = self.config.idempotency_window_ms;
        let Some(entry) = self
            .keys
            .find(key)
            .filter(|entry| entry.at_ms.saturating_add(window) > self.now_ms)
        else {
            return Ok(None);
        };
        if entry.destination != destination {
            return Err(ProtocolError::new(
                "idempotency key reused",
                format!(
                    "idempotency key {key:?} already named a publish to {:?} (message {}) in \
                     the last {window} ms (idempotency_window_ms); use a new key for each \
                     publish",
                    entry.destination, entry.message_id
                ),
            ));
        }
        Ok(Some(Repeat {
            message_id: entry.message_id,
        }))
    }

    /// Refuses a transaction's COMMIT, before any of its frames takes effect, when a staged
    /// publish's key names a publish to another destination: an earlier one within the
    /// window, or another staged in the same transaction. A COMMIT is all or nothing, so its
    /// frames are not dispatched until every key is known to be usable.
    pub(super) fn check_staged_keys(&self, staged: &[Staged]) -> Result<(), ProtocolError> {
        // Each key's destination within the transaction, as its first publish named it.
        let mut bound: HashMap<String, &str> = HashMap::new();
        for Staged { frame, .. } in staged {
            if frame.command != Command::Send {
                continue;
            }
            let (Some(key), Some(destination)) = (
                self.idempotency_key(&frame.headers)?,
                frame.header("destination"),
            ) else {
                continue;
            };
            match bound.get(key.as_str()) {
                Some(&first) if first != destination => {
                    return Err(ProtocolError::new(
                        "idempotency key reused",
                        format!(
                            "idempotency key {key:?} names publishes to both {first:?} and \
                             {destination:?} in this transaction; use a new key for each \
                             publish"
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    self.repeat_of(&key, destination)?;
                    bound.insert(key, destination);
                }
            }
        }
        Ok(())
    }

    /// Remembers a keyed publish, stored with the message's own commit, and forgets the
    /// oldest keys past the window or the budget (in storage, with the same commit).
    pub(super) fn remember_key(&mut self, key: String, destination: &str, message_id: u64) {
        let entry = IdempotencyKey {
            key,
            destination: destination.to_owned(),
            message_id,
            at_ms: self.now_ms,
        };
        self.keys.insert(entry.clone());
        let max = self.config.budget.max_idempotency_keys as usize;
        self.keys
            .forget_oldest(self.now_ms, self.config.idempotency_window_ms, max);
        if std::mem::take(&mut self.keys.stale_in_storage) {
            // Everything below the oldest key held (the new one, at least, is held).
            let below_id = self.keys.held.front().map_or(message_id, |k| k.message_id);
            self.out.push(Effect::ForgetIdempotencyKeys { below_id });
        }
        // A key forgotten at once (a budget of 0) is not stored either.
        if self
            .keys
            .held
            .back()
            .is_some_and(|k| k.message_id == message_id)
        {
            self.out.push(Effect::KeepIdempotencyKey(entry));
        }
    }

    /// Gives back the keys storage holds, after a wake: those still within the window, at
    /// most the budget's newest.
    pub fn restore_idempotency_keys(&mut self, keys: Vec<IdempotencyKey>, now_ms: u64) {
        // Storage gives them by message id, each key once.
        let stored = keys.len();
        self.keys.held = keys.into();
        let max = self.config.budget.max_idempotency_keys as usize;
        self.keys
            .forget_oldest(now_ms, self.config.idempotency_window_ms, max);
        self.keys.stale_in_storage = self.keys.len() < stored;
    }

    /// Publishes once per idempotency key: a repeat within the window returns the original
    /// id and sends nothing. Returns the id and whether it was a repeat.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn route_once(
        &mut self,
        sender: &Sender,
        target: SendTarget,
        requested: &str,
        destination: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        binary: bool,
    ) -> Result<(u64, bool), ProtocolError> {
        let key = self.idempotency_key(&headers)?;
        if let Some(key) = &key {
            if let Some(repeat) = self.repeat_of(key, requested)? {
                return Ok((repeat.message_id, true));
            }
        }
        let id = self.route(sender, target, destination, headers, body, binary)?;
        if let Some(key) = key {
            self.remember_key(key, requested, id);
        }
        Ok((id, false))
    }
}
