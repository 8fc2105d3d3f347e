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
    /// When an event stream must end: its token expires then (ms).
    pub ends_at: Option<u64>,
    /// Bytes streamed that its client had not read yet, when last streamed to.
    pub backlog: usize,
    /// The verified login whose messages it is not sent (`echo=false`).
    pub mute: Option<String>,
}

#[derive(Debug, Default)]
pub struct Listeners {
    last_id: ListenerId,
    by_id: BTreeMap<ListenerId, Listener>,
    by_destination: HashMap<String, BTreeSet<ListenerId>>,
    polls: usize,
    /// Streams' ends, by time.
    ends: BTreeSet<(u64, ListenerId)>,
    /// The backlogs of all streams together.
    backlog: usize,
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
        if let Some(at) = listener.ends_at {
            self.ends.insert((at, id));
        }
        self.backlog += listener.backlog;
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
        if let Some(at) = listener.ends_at {
            self.ends.remove(&(at, id));
        }
        self.backlog -= listener.backlog;
        Some(listener)
    }

    /// A stream's client has `backlog` bytes unread.
    pub fn set_backlog(&mut self, id: ListenerId, backlog: usize) {
        if let Some(listener) = self.by_id.get_mut(&id) {
            self.backlog = self.backlog - listener.backlog + backlog;
            listener.backlog = backlog;
        }
    }

    /// The backlogs of all streams together.
    pub fn backlog(&self) -> usize {
        self.backlog
    }

    /// The open event streams.
    pub fn streams_ids(&self) -> Vec<ListenerId> {
        self.by_id
            .iter()
            .filter(|(_, l)| l.kind == ListenerKind::Stream)
            .map(|(&id, _)| id)
            .collect()
    }

    /// The stream whose client has the most unread.
    pub fn most_backlogged(&self) -> Option<ListenerId> {
        self.by_id
            .iter()
            .filter(|(_, l)| l.backlog > 0)
            .max_by_key(|(_, l)| l.backlog)
            .map(|(&id, _)| id)
    }

    /// When the next stream must end.
    pub fn next_end(&self) -> Option<u64> {
        self.ends.first().map(|&(at, _)| at)
    }

    /// The streams that must have ended by `now`.
    pub fn ended(&self, now: u64) -> Vec<ListenerId> {
        self.ends
            .iter()
            .take_while(|&&(at, _)| at <= now)
            .map(|&(_, id)| id)
            .collect()
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
