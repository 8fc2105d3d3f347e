//! In-memory [`Storage`] and [`Sockets`] for native tests, examples and fuzzing: the room runs
//! exactly as in the Durable Object, with eviction simulated by dropping the [`Room`] and
//! [waking](crate::room::Room::wake) a new one from these.
//!
//! Both check the room's promises as they go: a send to a closed socket, a session larger than
//! an attachment holds, a queue message stored twice or deleted unknown all panic.
//!
//! [`Room`]: super::Room

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use super::broker::{QueuedMessage, Throttle};
use super::http::{HttpResponse, ListenerId};
use super::session::ConnId;
use super::sockets::Sockets;
use super::storage::{Counter, StagedFrame, Storage, StorageError, Stored, Write};
use crate::stomp::Message;

/// The most a WebSocket attachment holds.
pub const ATTACHMENT_LIMIT: usize = 16 * 1024;

thread_local! {
    static CLOCK: Cell<u64> = const { Cell::new(0) };
}

/// A counter shared by storage and sockets on this thread, so tests can tell which of a
/// commit and a send happened first.
pub fn sequence() -> u64 {
    CLOCK.with(|clock| {
        clock.set(clock.get() + 1);
        clock.get()
    })
}

#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    counters: BTreeMap<Counter, u64>,
    address_rates: BTreeMap<String, Throttle>,
    history: BTreeMap<u64, Message>,
    queued: BTreeMap<u64, QueuedMessage>,
    cursors: BTreeMap<String, u64>,
    staged: Vec<StagedFrame>,
    partials: BTreeMap<ConnId, Vec<u8>>,
    /// Refuse this many of the next commits (a failing disk, for tests).
    pub fail_commits: u32,
    /// The [`sequence`] number of each successful commit.
    pub commits: Vec<u64>,
}

impl MemoryStorage {
    /// A destination's stored history, oldest first.
    pub fn history_of(&self, destination: &str) -> Vec<Message> {
        self.history
            .values()
            .filter(|m| m.destination == destination)
            .cloned()
            .collect()
    }

    /// Ids of the stored queue messages.
    pub fn queued_ids(&self) -> Vec<u64> {
        self.queued.keys().copied().collect()
    }

    /// The stored queue messages, by id.
    pub fn queued(&self) -> Vec<QueuedMessage> {
        self.queued.values().cloned().collect()
    }

    /// The stored frames of open transactions.
    pub fn staged(&self) -> &[StagedFrame] {
        &self.staged
    }

    /// Connections with a stored partial frame.
    pub fn partials(&self) -> Vec<ConnId> {
        self.partials.keys().copied().collect()
    }

    pub fn counter(&self, counter: Counter) -> u64 {
        self.counters.get(&counter).copied().unwrap_or(0)
    }

    fn apply(&mut self, write: &Write) {
        match write {
            Write::Counter(counter, value) => {
                self.counters.insert(*counter, *value);
            }
            Write::Archive(message) => {
                self.history.insert(message.id, message.clone());
            }
            Write::TrimHistory { destination, keep } => {
                let ids: Vec<u64> = self
                    .history
                    .values()
                    .filter(|m| &m.destination == destination)
                    .map(|m| m.id)
                    .collect();
                let drop = ids.len().saturating_sub((*keep).max(1) as usize);
                for id in &ids[..drop] {
                    self.history.remove(id);
                }
            }
            Write::Enqueue(message) => {
                let queued = QueuedMessage {
                    message: message.clone(),
                    redelivered: false,
                    avoid: None,
                };
                assert!(
                    self.queued.insert(message.id, queued).is_none(),
                    "queue message {} stored twice",
                    message.id
                );
            }
            Write::Requeue { message_id, avoid } => {
                let queued = self
                    .queued
                    .get_mut(message_id)
                    .unwrap_or_else(|| panic!("requeued unknown queue message {message_id}"));
                queued.redelivered = true;
                queued.avoid = *avoid;
            }
            Write::Dequeue { message_id } => {
                assert!(
                    self.queued.remove(message_id).is_some(),
                    "dequeued unknown queue message {message_id}"
                );
            }
            Write::QueueCursor { destination, next } => {
                if *next == 0 {
                    self.cursors.remove(destination);
                } else {
                    self.cursors.insert(destination.clone(), *next);
                }
            }
            Write::Stage {
                conn,
                transaction,
                frame,
                binary,
            } => self.staged.push(StagedFrame {
                conn: *conn,
                transaction: transaction.clone(),
                frame: frame.clone(),
                binary: *binary,
            }),
            Write::Unstage { conn, transaction } => self
                .staged
                .retain(|s| !(s.conn == *conn && &s.transaction == transaction)),
            Write::Partial { conn, bytes } => {
                if bytes.is_empty() {
                    self.partials.remove(conn);
                } else {
                    self.partials.insert(*conn, bytes.clone());
                }
            }
            Write::AddressRate { address, throttle } => {
                self.address_rates.insert(address.clone(), *throttle);
            }
            Write::ForgetFullAddressRates { now_us } => {
                self.address_rates.retain(|_, t| !t.is_full_at(*now_us));
            }
        }
    }
}

impl Storage for MemoryStorage {
    fn load(&self) -> Result<Stored, StorageError> {
        let newest = self.history.keys().chain(self.queued.keys()).max();
        Ok(Stored {
            counters: Counter::ALL.iter().map(|&c| (c, self.counter(c))).collect(),
            newest_message_id: newest.copied().unwrap_or(0),
            queued: self.queued.values().cloned().collect(),
            cursors: self.cursors.clone().into_iter().collect(),
            staged: self.staged.clone(),
            partials: self.partials.clone().into_iter().collect(),
            address_rates: self.address_rates.clone().into_iter().collect(),
        })
    }

    fn history(
        &self,
        destination: &str,
        after: u64,
        newest: u32,
    ) -> Result<Vec<Message>, StorageError> {
        let matching: Vec<Message> = self
            .history
            .values()
            .filter(|m| m.destination == destination && m.id > after)
            .cloned()
            .collect();
        let skip = matching.len().saturating_sub(newest as usize);
        Ok(matching[skip..].to_vec())
    }

    fn history_len(&self, destination: &str) -> Result<u32, StorageError> {
        let n = self
            .history
            .values()
            .filter(|m| m.destination == destination)
            .count();
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn commit(&mut self, writes: &[Write]) -> Result<(), StorageError> {
        if self.fail_commits > 0 {
            self.fail_commits -= 1;
            return Err(StorageError("disk full (simulated)".to_owned()));
        }
        for write in writes {
            self.apply(write);
        }
        self.commits.push(sequence());
        Ok(())
    }
}

/// One socket call, as the room made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketCall {
    Send {
        conn: ConnId,
        bytes: Vec<u8>,
        binary: bool,
        /// The [`sequence`] number of the call.
        at: u64,
    },
    SendMany {
        conns: Vec<ConnId>,
        bytes: Vec<u8>,
        binary: bool,
    },
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    SaveSession {
        conn: ConnId,
    },
    /// A request was kept open for messages.
    Hold {
        listener: ListenerId,
    },
    /// A waiting long poll was answered.
    Answer {
        listener: ListenerId,
        response: HttpResponse,
    },
    /// Bytes went to an open event stream.
    Stream {
        listener: ListenerId,
        bytes: Vec<u8>,
    },
    /// An open event stream was ended.
    End {
        listener: ListenerId,
    },
}

#[derive(Debug, Default)]
struct Socket {
    /// The room closed it; what it was sent before stays readable.
    closed: bool,
    session: Option<String>,
    last_ping_ms: Option<u64>,
    received: Vec<(Vec<u8>, bool)>,
}

#[derive(Debug, Default)]
pub struct MemorySockets {
    /// Every socket ever accepted, open or closed.
    open: BTreeMap<ConnId, Socket>,
    /// Closed sockets: code and reason.
    pub closed: BTreeMap<ConnId, (u16, String)>,
    /// Every call, in order; tests may drain it.
    pub log: Vec<SocketCall>,
    /// Event streams whose client has gone: the next bytes for them are refused.
    pub gone_streams: BTreeSet<ListenerId>,
}

impl MemorySockets {
    /// The WebSocket messages a connection received, in order, without draining them.
    pub fn sent(&self, conn: ConnId) -> Vec<Vec<u8>> {
        self.open
            .get(&conn)
            .map(|s| s.received.iter().map(|(bytes, _)| bytes.clone()).collect())
            .unwrap_or_default()
    }

    /// Drains the WebSocket messages `(bytes, binary)` a connection received.
    pub fn take_received(&mut self, conn: ConnId) -> Vec<(Vec<u8>, bool)> {
        self.open
            .get_mut(&conn)
            .map(|s| std::mem::take(&mut s.received))
            .unwrap_or_default()
    }

    pub fn is_open(&self, conn: ConnId) -> bool {
        self.open.get(&conn).is_some_and(|s| !s.closed)
    }

    /// Open connections.
    pub fn connections(&self) -> Vec<ConnId> {
        self.open
            .iter()
            .filter(|(_, s)| !s.closed)
            .map(|(&conn, _)| conn)
            .collect()
    }

    /// The session kept with an open socket.
    pub fn kept_session(&self, conn: ConnId) -> Option<&str> {
        self.open
            .get(&conn)
            .filter(|s| !s.closed)?
            .session
            .as_deref()
    }

    /// The client's heart-beat was answered by the transport, without the room, at `at_ms`.
    pub fn ping(&mut self, conn: ConnId, at_ms: u64) {
        if let Some(socket) = self.open.get_mut(&conn) {
            socket.last_ping_ms = Some(at_ms);
        }
    }

    /// The peer went away: the socket is closed (the caller tells the room).
    pub fn drop_socket(&mut self, conn: ConnId) {
        if let Some(socket) = self.open.get_mut(&conn) {
            socket.closed = true;
        }
    }

    fn deliver(&mut self, conn: ConnId, bytes: &[u8], binary: bool) {
        let socket = self
            .open
            .get_mut(&conn)
            .filter(|s| !s.closed)
            .unwrap_or_else(|| panic!("sent to connection {conn}, which is not open"));
        if !binary {
            assert!(
                std::str::from_utf8(bytes).is_ok(),
                "a text message that is not UTF-8"
            );
        }
        socket.received.push((bytes.to_vec(), binary));
    }
}

impl Sockets for MemorySockets {
    fn accept(&mut self, conn: ConnId) {
        assert!(
            self.open.insert(conn, Socket::default()).is_none(),
            "connection id {conn} given out twice"
        );
    }

    fn send(&mut self, conn: ConnId, bytes: &[u8], binary: bool) {
        self.log.push(SocketCall::Send {
            conn,
            bytes: bytes.to_vec(),
            binary,
            at: sequence(),
        });
        self.deliver(conn, bytes, binary);
    }

    fn send_many(&mut self, conns: &[ConnId], bytes: &[u8], binary: bool) {
        self.log.push(SocketCall::SendMany {
            conns: conns.to_vec(),
            bytes: bytes.to_vec(),
            binary,
        });
        for &conn in conns {
            self.deliver(conn, bytes, binary);
        }
    }

    fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        self.log.push(SocketCall::Close {
            conn,
            code,
            reason: reason.to_owned(),
        });
        if let Some(socket) = self.open.get_mut(&conn).filter(|s| !s.closed) {
            socket.closed = true;
            self.closed.insert(conn, (code, reason.to_owned()));
        }
    }

    fn save_session(&mut self, conn: ConnId, session: &str) {
        assert!(
            session.len() <= ATTACHMENT_LIMIT,
            "a session of {} bytes does not fit an attachment",
            session.len()
        );
        self.log.push(SocketCall::SaveSession { conn });
        if let Some(socket) = self.open.get_mut(&conn).filter(|s| !s.closed) {
            socket.session = Some(session.to_owned());
        }
    }

    fn hold(&mut self, listener: ListenerId) {
        self.log.push(SocketCall::Hold { listener });
    }

    fn answer(&mut self, listener: ListenerId, response: HttpResponse) {
        self.log.push(SocketCall::Answer { listener, response });
    }

    fn stream(&mut self, listener: ListenerId, bytes: &[u8]) -> bool {
        if self.gone_streams.contains(&listener) {
            return false;
        }
        self.log.push(SocketCall::Stream {
            listener,
            bytes: bytes.to_vec(),
        });
        true
    }

    fn end(&mut self, listener: ListenerId) {
        self.log.push(SocketCall::End { listener });
    }

    fn sessions(&mut self) -> Vec<(ConnId, Option<String>)> {
        self.open
            .iter()
            .filter(|(_, socket)| !socket.closed)
            .map(|(&conn, socket)| (conn, socket.session.clone()))
            .collect()
    }

    fn last_ping_ms(&self, conn: ConnId) -> Option<u64> {
        self.open.get(&conn)?.last_ping_ms
    }
}
