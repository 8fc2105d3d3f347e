//! Requests held open for messages: long polls and event streams. They live in memory only:
//! an open request keeps the room's object awake, so it is never evicted while they wait; if
//! the object is restarted anyway, the requests fail and their clients come back with the last
//! id they saw, which history fills in.

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub type ListenerId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// A long poll, answered by the next message (its `after` is the room's last id or less,
    /// so any new message is after it).
    Poll,
    /// An event stream, sent every message.
    Stream,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub destination: String,
    pub kind: ListenerKind,
    /// The allowed cross-origin page that asked, for the CORS header of a later answer.
    pub origin: Option<String>,
    /// The client's address, for the per-address cap.
    pub address: Option<String>,
}

#[derive(Debug, Default)]
pub struct Listeners {
    last_id: ListenerId,
    by_id: BTreeMap<ListenerId, Listener>,
    by_destination: HashMap<String, BTreeSet<ListenerId>>,
    polls: usize,
}

impl Listeners {
    pub fn add(&mut self, listener: Listener) -> ListenerId {
        self.last_id += 1;
        let id = self.last_id;
        if matches!(listener.kind, ListenerKind::Poll) {
            self.polls += 1;
        }
        self.by_destination
            .entry(listener.destination.clone())
            .or_default()
            .insert(id);
        self.by_id.insert(id, listener);
        id
    }

    /// An id for an open request kept elsewhere (a SockJS session's receiver).
    pub fn reserve(&mut self) -> ListenerId {
        self.last_id += 1;
        self.last_id
    }

    pub fn remove(&mut self, id: ListenerId) -> Option<Listener> {
        let listener = self.by_id.remove(&id)?;
        if matches!(listener.kind, ListenerKind::Poll) {
            self.polls -= 1;
        }
        if let Some(ids) = self.by_destination.get_mut(&listener.destination) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_destination.remove(&listener.destination);
            }
        }
        Some(listener)
    }

    /// The listeners of a destination, oldest first.
    pub fn of(&self, destination: &str) -> Vec<ListenerId> {
        self.by_destination
            .get(destination)
            .into_iter()
            .flatten()
            .copied()
            .collect()
    }

    pub fn get(&self, id: ListenerId) -> Option<&Listener> {
        self.by_id.get(&id)
    }

    /// Open requests from one address.
    pub fn from_address(&self, address: &str) -> usize {
        self.by_id
            .values()
            .filter(|l| l.address.as_deref() == Some(address))
            .count()
    }

    pub fn polls(&self) -> usize {
        self.polls
    }

    pub fn streams(&self) -> usize {
        self.by_id.len() - self.polls
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
