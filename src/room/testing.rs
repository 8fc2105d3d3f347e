//! In-memory [`Storage`] and [`Sockets`] for native tests, examples and fuzzing: the room runs
//! exactly as in the Durable Object, with eviction simulated by dropping the [`RoomEngine`] and
//! [waking](crate::room::RoomEngine::wake) a new one from these.
//!
//! Both check the room's promises as they go: a send to a closed socket, a session larger than
//! an attachment holds, a queue message stored twice or deleted unknown all panic.
//!
//! [`RoomEngine`]: super::RoomEngine

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use super::broker::{IdempotencyKey, QueuedMessage};
use super::budget::{HistoryUsage, PLATFORM_ROW_BYTES, PLATFORM_SOCKETS};
use super::http::{HttpResponse, ListenerId};
use super::rate::Throttle;
use super::record;
use super::session::ConnId;
use super::sockets::Sockets;
use super::storage::{
    Counter, HistoryRead, PartialFrame, ReadFrom, StagedFrame, Storage, StorageError, Stored,
    StoredMember, WebhookRow, Write,
};
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

/// The room's storage in memory, with the platform's limits: a commit with a row over
/// [`row_limit`](Self::row_limit) bytes fails whole, as SQLite in a Durable Object refuses a
/// row over 2 MB (local workerd does not), and [`stored_bytes`](Self::stored_bytes) counts
/// what it holds, row by row.
#[derive(Debug, Clone)]
pub struct MemoryStorage {
    counters: BTreeMap<Counter, u64>,
    address_rates: BTreeMap<String, Throttle>,
    history: BTreeMap<u64, Message>,
    /// Each destination's highest id trimmed from its history.
    trimmed: BTreeMap<String, u64>,
    /// The highest id any dropped history held.
    dropped: u64,
    queued: BTreeMap<u64, QueuedMessage>,
    cursors: BTreeMap<String, u64>,
    staged: Vec<StagedFrame>,
    /// Each connection's partly-arrived frame, as the rows it was stored in.
    partials: BTreeMap<ConnId, Vec<Vec<u8>>>,
    /// Idempotency keys, by key.
    idempotency_keys: BTreeMap<String, IdempotencyKey>,
    webhook_events: BTreeMap<u64, WebhookRow>,
    webhook_members: BTreeMap<ConnId, String>,
    webhook_room: Option<String>,
    members: BTreeMap<ConnId, StoredMember>,
    /// The largest row a commit may write.
    pub row_limit: u64,
    /// Refuse this many of the next commits (a failing disk, for tests).
    pub fail_commits: u32,
    /// The [`sequence`] number of each successful commit.
    pub commits: Vec<u64>,
    /// Bytes written by each successful commit, rows as [`Write::row_bytes`] counts them.
    pub written: Vec<u64>,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self {
            counters: BTreeMap::new(),
            address_rates: BTreeMap::new(),
            history: BTreeMap::new(),
            trimmed: BTreeMap::new(),
            dropped: 0,
            queued: BTreeMap::new(),
            cursors: BTreeMap::new(),
            staged: Vec::new(),
            partials: BTreeMap::new(),
            idempotency_keys: BTreeMap::new(),
            webhook_events: BTreeMap::new(),
            webhook_members: BTreeMap::new(),
            webhook_room: None,
            members: BTreeMap::new(),
            row_limit: PLATFORM_ROW_BYTES,
            fail_commits: 0,
            commits: Vec::new(),
            written: Vec::new(),
        }
    }
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

    /// A connection's stored partial frame, whole.
    pub fn partial_of(&self, conn: ConnId) -> Vec<u8> {
        self.partials
            .get(&conn)
            .map(|rows| rows.concat())
            .unwrap_or_default()
    }

    /// The stored idempotency keys, by message id.
    pub fn idempotency_keys(&self) -> Vec<IdempotencyKey> {
        let mut keys: Vec<IdempotencyKey> = self.idempotency_keys.values().cloned().collect();
        keys.sort_by_key(|key| key.message_id);
        keys
    }

    pub fn counter(&self, counter: Counter) -> u64 {
        self.counters.get(&counter).copied().unwrap_or(0)
    }

    /// The webhook outbox's events, oldest first.
    pub fn webhook_events(&self) -> Vec<WebhookRow> {
        self.webhook_events.values().cloned().collect()
    }

    /// The rows of queue messages, as the budget counts them.
    pub fn queued_bytes(&self) -> u64 {
        self.queued
            .values()
            .map(|q| record::message_row_bytes(&q.message))
            .sum()
    }

    /// The rows of staged frames, as the budget counts them.
    pub fn staged_bytes(&self) -> u64 {
        self.staged
            .iter()
            .map(|s| record::staged_row_bytes_of(&s.transaction, s.record.len()))
            .sum()
    }

    /// The rows of partly-arrived frames, as the budget counts them.
    pub fn partial_bytes(&self) -> u64 {
        self.partials
            .values()
            .flatten()
            .map(|row| record::partial_row_bytes(row.len()))
            .sum()
    }

    /// The rows of topic history, as the budget counts them.
    pub fn history_bytes(&self) -> u64 {
        self.history.values().map(record::message_row_bytes).sum()
    }

    /// Everything stored, row by row as the room's budget counts rows.
    pub fn stored_bytes(&self) -> u64 {
        self.history_bytes() + self.queued_bytes() + self.staged_bytes() + self.partial_bytes()
    }

    fn history_rows(
        &self,
        destination: &str,
        after: u64,
    ) -> impl DoubleEndedIterator<Item = &Message> {
        let destination = destination.to_owned();
        self.history
            .range(after.saturating_add(1)..)
            .map(|(_, m)| m)
            .filter(move |m| m.destination == destination)
    }

    fn apply(&mut self, write: &Write) {
        match write {
            Write::Counter(counter, value) => {
                self.counters.insert(*counter, *value);
            }
            Write::Archive(message) => {
                self.history.insert(message.id, message.clone());
            }
            Write::TrimHistory {
                destination,
                keep_rows,
                keep_bytes,
            } => {
                let (mut rows, mut bytes) = (0u32, 0u64);
                let drop: Vec<u64> = self
                    .history_rows(destination, 0)
                    .rev()
                    .filter_map(|m| {
                        rows += 1;
                        bytes += record::message_row_bytes(m);
                        (rows > 1 && (rows > *keep_rows || bytes > *keep_bytes)).then_some(m.id)
                    })
                    .collect();
                if let Some(&highest) = drop.iter().max() {
                    let trimmed = self.trimmed.entry(destination.clone()).or_default();
                    *trimmed = highest.max(*trimmed);
                }
                for id in drop {
                    self.history.remove(&id);
                }
            }
            Write::DropHistory { destination } => {
                let held = self.history_rows(destination, 0).map(|m| m.id).max();
                let trimmed = self.trimmed.remove(destination);
                self.dropped = self
                    .dropped
                    .max(held.unwrap_or(0))
                    .max(trimmed.unwrap_or(0));
                self.history.retain(|_, m| &m.destination != destination);
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
                record,
                binary,
            } => self.staged.push(StagedFrame {
                conn: *conn,
                transaction: transaction.clone(),
                record: record.clone(),
                binary: *binary,
            }),
            Write::Unstage { conn, transaction } => self
                .staged
                .retain(|s| !(s.conn == *conn && &s.transaction == transaction)),
            Write::PartialAppend { conn, bytes } => {
                self.partials.entry(*conn).or_default().push(bytes.clone());
            }
            Write::PartialReset { conn, bytes } => {
                if bytes.is_empty() {
                    self.partials.remove(conn);
                } else {
                    self.partials.insert(*conn, vec![bytes.clone()]);
                }
            }
            Write::AddressRate { address, throttle } => {
                self.address_rates.insert(address.clone(), *throttle);
            }
            Write::ForgetFullAddressRates { now_us } => {
                self.address_rates.retain(|_, t| !t.is_full_at(*now_us));
            }
            Write::IdempotencyKey(key) => {
                self.idempotency_keys.insert(key.key.clone(), key.clone());
            }
            Write::ForgetIdempotencyKeys { below_id } => {
                self.idempotency_keys
                    .retain(|_, key| key.message_id >= *below_id);
            }
            Write::WebhookEvent(row) => {
                self.webhook_events.insert(row.seq, row.clone());
            }
            Write::WebhookForget { through } => {
                self.webhook_events.retain(|&seq, _| seq > *through);
            }
            Write::WebhookMember { conn, data } => {
                self.webhook_members.insert(*conn, data.clone());
            }
            Write::WebhookMemberGone { conn } => {
                self.webhook_members.remove(conn);
            }
            Write::WebhookRoom(name) => self.webhook_room = Some(name.clone()),
            Write::Member(member) => {
                self.members.insert(member.conn, member.clone());
            }
            Write::MemberGone { conn } => {
                self.members.remove(conn);
            }
        }
    }
}

impl Storage for MemoryStorage {
    fn load(&self) -> Result<Stored, StorageError> {
        let newest = self.history.keys().chain(self.queued.keys()).max();
        let mut history: BTreeMap<String, HistoryUsage> = BTreeMap::new();
        for message in self.history.values() {
            history
                .entry(message.destination.clone())
                .or_default()
                .add(message.id, record::message_row_bytes(message));
        }
        Ok(Stored {
            counters: Counter::ALL.iter().map(|&c| (c, self.counter(c))).collect(),
            newest_message_id: newest.copied().unwrap_or(0),
            queued: self.queued.values().cloned().collect(),
            cursors: self.cursors.clone().into_iter().collect(),
            staged: self.staged.clone(),
            partials: self
                .partials
                .iter()
                .map(|(&conn, rows)| PartialFrame {
                    conn,
                    bytes: rows.concat(),
                    pieces: rows.len() as u64,
                })
                .collect(),
            address_rates: self.address_rates.clone().into_iter().collect(),
            history: history.into_iter().collect(),
            idempotency_keys: self.idempotency_keys(),
            webhook_events: self.webhook_events.values().cloned().collect(),
            webhook_members: self.webhook_members.clone().into_iter().collect(),
            webhook_room: self.webhook_room.clone(),
            members: self.members.values().cloned().collect(),
        })
    }

    fn history(&self, destination: &str, read: HistoryRead) -> Result<Vec<Message>, StorageError> {
        let rows: Vec<&Message> = match read.from {
            ReadFrom::Newest => self.history_rows(destination, read.after).rev().collect(),
            ReadFrom::Oldest => self.history_rows(destination, read.after).collect(),
        };
        let mut bytes = 0;
        let mut messages: Vec<Message> = rows
            .into_iter()
            .take(read.count as usize)
            .take_while(|m| {
                bytes += record::message_row_bytes(m);
                bytes <= read.max_bytes
            })
            .cloned()
            .collect();
        messages.sort_by_key(|m| m.id);
        Ok(messages)
    }

    fn history_count(&self, destination: &str, after: u64) -> Result<u32, StorageError> {
        let n = self.history_rows(destination, after).count();
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn history_usage(&self, destination: &str) -> Result<HistoryUsage, StorageError> {
        let mut usage = HistoryUsage::default();
        for message in self.history_rows(destination, 0) {
            usage.add(message.id, record::message_row_bytes(message));
        }
        Ok(usage)
    }

    fn history_lost(&self, destination: &str) -> Result<u64, StorageError> {
        let trimmed = self.trimmed.get(destination).copied().unwrap_or(0);
        Ok(trimmed.max(self.dropped))
    }

    fn commit(&mut self, writes: &[Write]) -> Result<(), StorageError> {
        if self.fail_commits > 0 {
            self.fail_commits -= 1;
            return Err(StorageError("disk full (simulated)".to_owned()));
        }
        if let Some(row) = writes
            .iter()
            .filter_map(Write::row_bytes)
            .find(|&bytes| bytes > self.row_limit)
        {
            return Err(StorageError(format!(
                "string or blob too big: a row of {row} bytes (the platform allows {})",
                self.row_limit
            )));
        }
        for write in writes {
            self.apply(write);
        }
        self.commits.push(sequence());
        self.written
            .push(writes.iter().filter_map(Write::row_bytes).sum());
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
        /// The [`sequence`] number of the call.
        at: u64,
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

/// The room's sockets in memory, with the platform's limits: at most
/// [`PLATFORM_SOCKETS`] open at once, and event streams whose clients read only when told
/// (see [`slow_streams`](Self::slow_streams)).
#[derive(Debug, Default)]
pub struct MemorySockets {
    /// Every socket ever accepted, open or closed.
    open: BTreeMap<ConnId, Socket>,
    /// Sockets the room still holds a handle to: accepted (or listed at a wake), and neither
    /// closed by the room nor let go after their client closed them.
    pub handles: BTreeSet<ConnId>,
    /// Sockets open now.
    open_count: usize,
    /// Sockets with received messages not yet drained.
    unread: BTreeSet<ConnId>,
    /// Sockets refused before they were accepted.
    refusals: u64,
    /// Closed sockets: code and reason.
    pub closed: BTreeMap<ConnId, (u16, String)>,
    /// Every call, in order; tests may drain it.
    pub log: Vec<SocketCall>,
    /// Event streams whose client has gone: the next bytes for them are refused.
    pub gone_streams: BTreeSet<ListenerId>,
    /// Event streams whose client reads nothing: what is streamed to them piles up, and
    /// [`stream`](Sockets::stream) says how much.
    pub slow_streams: BTreeMap<ListenerId, usize>,
}

impl MemorySockets {
    /// The WebSocket messages a connection received, in order, without draining them.
    pub fn sent(&self, conn: ConnId) -> Vec<Vec<u8>> {
        self.open
            .get(&conn)
            .map(|s| s.received.iter().map(|(bytes, _)| bytes.clone()).collect())
            .unwrap_or_default()
    }

    /// The connections with received messages not yet drained.
    pub fn with_unread(&self) -> Vec<ConnId> {
        self.unread.iter().copied().collect()
    }

    /// Drains the WebSocket messages `(bytes, binary)` a connection received.
    pub fn take_received(&mut self, conn: ConnId) -> Vec<(Vec<u8>, bool)> {
        self.unread.remove(&conn);
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

    /// The client's heart-beat was answered by the transport at `at_ms`, without the room: the
    /// platform's auto-response sends the client `"\n"` back, and that is the room's heart-beat.
    pub fn ping(&mut self, conn: ConnId, at_ms: u64) {
        if !self.is_open(conn) {
            return;
        }
        if let Some(socket) = self.open.get_mut(&conn) {
            socket.last_ping_ms = Some(at_ms);
        }
        self.deliver(conn, b"\n", false);
    }

    /// The object restarted (a crash, a deploy): the platform closes every socket, and the
    /// room hears of none of it.
    pub fn restart(&mut self) {
        for (conn, socket) in self.open.iter_mut().filter(|(_, s)| !s.closed) {
            socket.closed = true;
            self.closed
                .insert(*conn, (1006, "the object restarted".to_owned()));
        }
        self.open_count = 0;
        self.handles.clear();
    }

    /// A socket refused before it was accepted: it gets `messages` and is closed, and the
    /// room never holds it. Its id is one no connection of the room's has.
    pub fn refused(&mut self, messages: &[Vec<u8>], code: u16, reason: &str) -> ConnId {
        self.refusals += 1;
        let conn = u64::MAX / 2 + self.refusals;
        let socket = Socket {
            closed: true,
            received: messages.iter().map(|m| (m.clone(), false)).collect(),
            ..Socket::default()
        };
        self.open.insert(conn, socket);
        self.unread.insert(conn);
        self.closed.insert(conn, (code, reason.to_owned()));
        conn
    }

    /// The peer went away: the socket is closed (the caller tells the room).
    pub fn drop_socket(&mut self, conn: ConnId) {
        if let Some(socket) = self.open.get_mut(&conn).filter(|s| !s.closed) {
            socket.closed = true;
            self.open_count -= 1;
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
        self.unread.insert(conn);
    }
}

impl Sockets for MemorySockets {
    fn accept(&mut self, conn: ConnId) -> bool {
        if self.open_count >= PLATFORM_SOCKETS {
            return false;
        }
        assert!(
            self.open.insert(conn, Socket::default()).is_none(),
            "connection id {conn} given out twice"
        );
        self.open_count += 1;
        self.handles.insert(conn);
        true
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
            at: sequence(),
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
            self.open_count -= 1;
            self.closed.insert(conn, (code, reason.to_owned()));
        }
        self.handles.remove(&conn);
    }

    fn forget(&mut self, conn: ConnId) {
        self.handles.remove(&conn);
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

    fn stream(&mut self, listener: ListenerId, bytes: &[u8]) -> Option<usize> {
        if self.gone_streams.contains(&listener) {
            return None;
        }
        self.log.push(SocketCall::Stream {
            listener,
            bytes: bytes.to_vec(),
        });
        let unread = match self.slow_streams.get_mut(&listener) {
            Some(unread) => {
                *unread += bytes.len();
                *unread
            }
            None => 0,
        };
        Some(unread)
    }

    fn unread(&self, listener: ListenerId) -> usize {
        self.slow_streams.get(&listener).copied().unwrap_or(0)
    }

    fn end(&mut self, listener: ListenerId) {
        self.log.push(SocketCall::End { listener });
    }

    fn sessions(&mut self) -> Vec<(ConnId, Option<String>)> {
        let listed: Vec<(ConnId, Option<String>)> = self
            .open
            .iter()
            .filter(|(_, socket)| !socket.closed)
            .map(|(&conn, socket)| (conn, socket.session.clone()))
            .collect();
        self.handles = listed.iter().map(|&(conn, _)| conn).collect();
        listed
    }

    fn last_ping_ms(&self, conn: ConnId) -> Option<u64> {
        self.open.get(&conn)?.last_ping_ms
    }
}
