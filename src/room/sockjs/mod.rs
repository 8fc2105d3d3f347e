//! SockJS in the room: sessions over HTTP, and the framing of SockJS's `websocket` transport.
//!
//! A socket opened by SockJS's `websocket` transport ([`Peer::sockjs`](crate::room::Peer::sockjs)) is a hibernatable
//! WebSocket like any other, but carries SockJS frames: [`SessionSockets`] opens it with `o`,
//! wraps each frame the room sends in `a["…"]` and sends `c[code,"reason"]` before a close;
//! the room unwraps what the client sends (see `RoomEngine::receive`). Which sockets are framed is
//! part of their kept session, so it survives evictions.
//!
//! A SockJS session over HTTP is a STOMP connection whose frames travel in HTTP requests
//! (`xhr` polling with `xhr_send`, `xhr_streaming`, `eventsource`) instead of a WebSocket.
//!
//! A session is a connection of the room like any other (the same broker, limits, tokens and
//! history); what differs is how its frames leave. The room's sends to it go into the
//! session ([`SessionSockets`]), which hands them to its one receiver (the open request that
//! reads frames) at once, or keeps them until the next receiver comes. A second receiver
//! while one is open gets `c[2010,"Another connection still open"]`. A session with no
//! receiver for [`DISCONNECT_DELAY_MS`] ends (its connection closes, as when a socket goes);
//! one the room closed answers every later receiver with its close frame until then. A
//! receiver cut off mid-answer, or a client that lets more than [`MAX_WAITING_BYTES`] wait,
//! ends its session at once (at the room's next alarm, due immediately).
//!
//! Sessions live in memory only: while a receiver is open the request keeps the object
//! awake, and between two polls the gap is milliseconds, far below the 10 s of quiet that
//! eviction needs. A session that is lost anyway (the object restarted) is unknown to the
//! room: the client's next receiver opens a new session, whose `o` frame sockjs-client takes
//! as "Server lost session" (close code 1006); its STOMP client reconnects from there. The
//! same holds when the engine rebuilds itself after a failed write: it is rebuilt from the
//! sessions kept with sockets, which these are not, so each is closed with
//! `c[1011,"session lost; reconnect"]`, as a socket whose session is lost would be.

mod answers;
mod outlet;
pub mod services;

use std::collections::{BTreeSet, HashMap, HashSet};

pub use answers::{
    answer, greeting, http_date, info, method_of, not_an_upgrade, preflight, refuse_broken_upgrade,
    with_cors,
};
pub use outlet::SessionSockets;

use super::coalesce::MAX_COALESCED_BYTES;
use super::http::{HttpResponse, ListenerId};
use super::session::ConnId;
use super::sockets::Sockets;
use crate::sockjs::{self, Receiver};

/// How long a session waits for its next receiver before it ends, in ms (SockJS's default).
pub const DISCONNECT_DELAY_MS: u64 = 5_000;

/// How often an open receiver gets a heart-beat frame `h`, in ms (SockJS's default). A waiting
/// poll is answered with one after this long.
pub const HEART_BEAT_MS: u64 = 25_000;

/// A streaming answer ends once it has carried this many bytes, and the client opens the next
/// (SockJS's default): browsers keep a streaming XHR's whole body in memory.
pub const RESPONSE_LIMIT: usize = 128 * 1024;

/// The most a session keeps waiting for a client that does not come to read it: past this,
/// the session ends (a slow or vanished client must not hold the room's memory).
pub const MAX_WAITING_BYTES: usize = 4 * 1024 * 1024;

/// The most all of a room's sessions keep waiting together (an object has 128 MB): past this,
/// the sessions holding the most end until the rest fit.
pub const MAX_ROOM_WAITING_BYTES: usize = 16 * 1024 * 1024;

/// The most of a request's body the room reads for a SockJS session's address: an
/// `xhr_send` carries the client's messages; a receiver's body is never read.
pub fn max_body(settings: &crate::room::Settings, session_path: &str) -> Option<usize> {
    let (_, transport) = sockjs::session_path(session_path)?;
    (transport == sockjs::Transport::XhrSend)
        .then(|| max_payload(settings.broker.limits.max_frame_bytes))
}

/// The largest `xhr_send` body read: any frame the room accepts fits, however JSON escapes it
/// (at most six bytes for one).
pub fn max_payload(max_frame_bytes: usize) -> usize {
    max_frame_bytes.saturating_mul(6).saturating_add(64)
}

/// The open request a session's frames go to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Receiving {
    listener: ListenerId,
    kind: Receiver,
    /// Bytes streamed so far (for the response limit).
    streamed: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SockJsSession {
    conn: ConnId,
    /// Messages (STOMP frames) not yet handed to a receiver.
    waiting: Vec<String>,
    waiting_bytes: usize,
    /// The close frame, once the session is closed (by the room, or cut off).
    closed: Option<String>,
    receiver: Option<Receiving>,
    /// When the session ends unless a receiver comes first (never while one is open).
    ends_at: Option<u64>,
    /// The page's origin, for the CORS headers of answers given later.
    origin: Option<String>,
    /// Bytes after which a streaming answer ends.
    response_limit: usize,
}

/// What a receiver request gets from its session: frames, each encoded for the receiver
/// (a line, or an event), each to be sent in a chunk of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reception {
    /// These frames, and nothing more (a poll with frames waiting, a refusal, a closed
    /// session).
    Now(Vec<Vec<u8>>),
    /// A poll with nothing waiting: hold it; it is answered by the next frames, or with `h`
    /// after [`HEART_BEAT_MS`].
    Wait,
    /// A streaming receiver: these frames, then the answer stays open for more.
    Stream(Vec<Vec<u8>>),
}

/// How a connection's frames travel: given when it opens, so nothing is carried over from one
/// call to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carrier {
    /// A WebSocket carrying STOMP frames as they are.
    WebSocket,
    /// A WebSocket of SockJS's `websocket` transport: opened with `o`, each frame in `a[…]`.
    SockJsWebSocket,
    /// A SockJS session over HTTP.
    SockJsSession(Opening),
}

impl Carrier {
    /// Whether the connection is a socket of its own (a session over HTTP is not).
    pub fn is_socket(&self) -> bool {
        !matches!(self, Self::SockJsSession(_))
    }

    /// Whether what the room sends it is framed as SockJS's.
    pub fn is_sockjs(&self) -> bool {
        !matches!(self, Self::WebSocket)
    }
}

/// A session about to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub id: String,
    /// The page's origin, for the CORS headers of the answers.
    pub origin: Option<String>,
    /// Bytes after which a streaming answer ends ([`RESPONSE_LIMIT`] but for test services).
    pub response_limit: usize,
}

/// The room's SockJS sessions over HTTP, by session id.
#[derive(Debug, Default)]
pub struct SockJsSessions {
    by_id: HashMap<String, SockJsSession>,
    /// The sessions whose connection the room has not closed yet.
    by_conn: HashMap<ConnId, String>,
    by_listener: HashMap<ListenerId, String>,
    /// What all sessions keep waiting, in bytes.
    waiting_bytes: usize,
    /// Sockets that carry SockJS frames (the `websocket` transport).
    framed: HashSet<ConnId>,
    /// Connections of sessions with a receiver whose frames wait for the end of the event's
    /// sends ([`hand_over_due`](Self::hand_over_due)), to leave as one `a[…]` frame.
    due: BTreeSet<ConnId>,
}

impl SockJsSessions {
    /// The socket `conn` carries SockJS frames (restored from its session on a wake).
    pub fn frame(&mut self, conn: ConnId) {
        self.framed.insert(conn);
    }

    pub fn is_framed(&self, conn: ConnId) -> bool {
        !self.framed.is_empty() && self.framed.contains(&conn)
    }

    /// Forgets a framed socket the room closes itself, without a close frame.
    pub fn unframe(&mut self, conn: ConnId) {
        self.framed.remove(&conn);
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// The open connection of a session (`None` once it is closed).
    pub fn conn_of(&self, id: &str) -> Option<ConnId> {
        self.by_id
            .get(id)
            .filter(|session| session.closed.is_none())
            .map(|session| session.conn)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Receivers open now.
    pub fn receivers(&self) -> usize {
        self.by_listener.len()
    }

    /// A receiver request for a session, as `listener`: what it gets now. `opened`: the
    /// session has just been opened for it, so it gets the `o` frame first.
    pub fn receive(
        &mut self,
        id: &str,
        kind: Receiver,
        listener: ListenerId,
        opened: bool,
        now: u64,
    ) -> Reception {
        let encoded = |frame: &str| {
            let mut bytes = Vec::new();
            kind.encode(frame, &mut bytes);
            bytes
        };
        let Some(session) = self.by_id.get_mut(id) else {
            return Reception::Now(Vec::new());
        };
        if session.receiver.is_some() {
            return Reception::Now(vec![encoded(&sockjs::another_connection_open())]);
        }
        let mut frames: Vec<Vec<u8>> = opened.then(|| encoded(sockjs::OPEN)).into_iter().collect();
        if !kind.streams() && opened {
            // A new session's first poll is answered with `o` alone; what the room sent
            // meanwhile waits for the next.
            return Reception::Now(frames);
        }
        let had_frames = session.take_frames(kind, &mut frames, &mut self.waiting_bytes);
        if session.closed.is_some() {
            // Its end stays where it was: polling a closed session does not keep it.
            return Reception::Now(frames);
        }
        let streamed: usize = frames.iter().map(Vec::len).sum();
        if (had_frames && !kind.streams()) || streamed >= session.response_limit {
            session.ends_at = Some(now + DISCONNECT_DELAY_MS);
            return Reception::Now(frames);
        }
        session.receiver = Some(Receiving {
            listener,
            kind,
            streamed,
        });
        session.ends_at = None;
        self.by_listener.insert(listener, id.to_owned());
        if kind.streams() {
            Reception::Stream(frames)
        } else {
            Reception::Wait
        }
    }

    /// A waiting poll reached [`HEART_BEAT_MS`]: its answer, a heart-beat frame (`None` if it
    /// is no session's).
    pub fn poll_timed_out(&mut self, listener: ListenerId, now: u64) -> Option<HttpResponse> {
        let session = self.detach(listener, now)?;
        let mut body = Vec::new();
        Receiver::Polling.encode(sockjs::HEART_BEAT, &mut body);
        Some(answer(body, Receiver::Polling, session.origin.as_deref()))
    }

    /// A receiver's client went away before its answer ended; `false` if it is no session's.
    /// As SockJS says, that ends the session: at the room's next alarm, due at once, its
    /// connection closes; until then, a receiver gets `c[1002,"Connection interrupted"]`.
    pub fn receiver_gone(&mut self, listener: ListenerId, now: u64) -> bool {
        let Some(id) = self.by_listener.get(&listener).cloned() else {
            return false;
        };
        self.detach(listener, now);
        self.end_now(
            &id,
            sockjs::close_frame(1002, "Connection interrupted"),
            now,
        );
        true
    }

    /// When the next session ends.
    pub fn next_deadline(&self) -> Option<u64> {
        self.by_id.values().filter_map(|s| s.ends_at).min()
    }

    /// Forgets the sessions whose end has come: the connections of those the room has not
    /// closed, for it to close.
    pub fn expire(&mut self, now: u64) -> Vec<ConnId> {
        let ended: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, s)| s.ends_at.is_some_and(|at| at <= now))
            .map(|(id, _)| id.clone())
            .collect();
        let mut open = Vec::new();
        for id in ended {
            if let Some(session) = self.by_id.remove(&id) {
                self.waiting_bytes -= session.waiting_bytes;
                if self.by_conn.remove(&session.conn).is_some() {
                    open.push(session.conn);
                }
            }
        }
        open
    }

    /// The room is rebuilding from the sessions kept with sockets, which these are not: every
    /// open session is lost, and its client told so.
    fn lose_all(&mut self, sockets: &mut impl Sockets, now: u64) {
        let conns: Vec<ConnId> = self.by_conn.keys().copied().collect();
        for conn in conns {
            self.close(conn, 1011, "session lost; reconnect", sockets, now);
        }
    }

    /// Closes a session that the room has not closed (cut off, or overflowing): its client is
    /// told `close` and its connection closes at the next alarm, due now.
    fn end_now(&mut self, id: &str, close: String, now: u64) {
        if let Some(session) = self.by_id.get_mut(id) {
            self.waiting_bytes -= session.waiting_bytes;
            session.waiting.clear();
            session.waiting_bytes = 0;
            session.closed.get_or_insert(close);
            session.ends_at = Some(now);
        }
    }

    /// The receiver `listener` is no longer open: its session starts waiting for the next
    /// (a closed one keeps its end).
    fn detach(&mut self, listener: ListenerId, now: u64) -> Option<&SockJsSession> {
        let id = self.by_listener.remove(&listener)?;
        let session = self.by_id.get_mut(&id)?;
        session.receiver = None;
        if session.closed.is_none() || session.ends_at.is_none() {
            session.ends_at = Some(now + DISCONNECT_DELAY_MS);
        }
        Some(session)
    }

    /// The connection just opened is this new session's.
    fn insert(&mut self, conn: ConnId, opening: Opening, now: u64) {
        let Opening {
            id,
            origin,
            response_limit,
        } = opening;
        self.by_conn.insert(conn, id.clone());
        self.by_id.insert(
            id,
            SockJsSession {
                conn,
                waiting: Vec::new(),
                waiting_bytes: 0,
                closed: None,
                receiver: None,
                ends_at: Some(now + DISCONNECT_DELAY_MS),
                origin,
                response_limit,
            },
        );
    }

    fn is_session(&self, conn: ConnId) -> bool {
        !self.by_conn.is_empty() && self.by_conn.contains_key(&conn)
    }

    /// The room sends a message to a session's connection. It waits in the session, and a
    /// session with a receiver is handed what waits when the event's sends end, so that what
    /// one event sends it leaves as one `a[…]` frame, in one write (as a socket's frames are
    /// coalesced, [`crate::room::coalesce`]); early, past [`MAX_COALESCED_BYTES`], or before
    /// a bound would end a session whose receiver can take what waits.
    fn send(&mut self, conn: ConnId, bytes: &[u8], sockets: &mut impl Sockets, now: u64) {
        let Some(id) = self.by_conn.get(&conn).cloned() else {
            return;
        };
        let Some(session) = self.by_id.get(&id) else {
            return;
        };
        if session.closed.is_some() {
            return;
        }
        if session.waiting_bytes + bytes.len() > MAX_WAITING_BYTES && self.due.remove(&conn) {
            self.hand_over(conn, sockets, now);
        }
        let Some(session) = self.by_id.get_mut(&id) else {
            return;
        };
        if session.waiting_bytes + bytes.len() > MAX_WAITING_BYTES {
            self.end_unread(&id, now);
            self.hand_over(conn, sockets, now);
            return;
        }
        // SockJS carries text: a binary STOMP frame is passed on as text.
        session.waiting_bytes += bytes.len();
        session
            .waiting
            .push(String::from_utf8_lossy(bytes).into_owned());
        self.waiting_bytes += bytes.len();
        if session.receiver.is_some() {
            if session.waiting_bytes >= MAX_COALESCED_BYTES {
                self.due.remove(&conn);
                self.hand_over(conn, sockets, now);
            } else {
                self.due.insert(conn);
            }
        }
        if self.waiting_bytes > MAX_ROOM_WAITING_BYTES {
            // Sessions with a receiver take what waits for them before any session is ended.
            self.hand_over_due(sockets, now);
        }
        while self.waiting_bytes > MAX_ROOM_WAITING_BYTES {
            let fullest = self
                .by_id
                .iter()
                .filter(|(_, s)| s.waiting_bytes > 0)
                .max_by_key(|(_, s)| s.waiting_bytes)
                .map(|(id, _)| id.clone());
            let Some(fullest) = fullest else { break };
            self.end_unread(&fullest, now);
        }
    }

    /// Hands the sessions with a receiver what this event sent them (see [`send`](Self::send)).
    pub fn hand_over_due(&mut self, sockets: &mut impl Sockets, now: u64) {
        while let Some(conn) = self.due.pop_first() {
            self.hand_over(conn, sockets, now);
        }
    }

    /// Ends a session whose client does not read what waits for it.
    fn end_unread(&mut self, id: &str, now: u64) {
        let reason = "the client does not read what is sent to it";
        self.end_now(id, sockjs::close_frame(1013, reason), now);
    }

    /// The room closes a session's connection.
    fn close(
        &mut self,
        conn: ConnId,
        code: u16,
        reason: &str,
        sockets: &mut impl Sockets,
        now: u64,
    ) {
        let Some(session) = self
            .by_conn
            .get(&conn)
            .and_then(|id| self.by_id.get_mut(id))
        else {
            return;
        };
        // A session already cut off keeps what its client is told, and its end.
        session
            .closed
            .get_or_insert_with(|| sockjs::close_frame(code, reason));
        if session.receiver.is_none() {
            let end = now + DISCONNECT_DELAY_MS;
            session.ends_at = Some(session.ends_at.map_or(end, |at| at.min(end)));
        }
        self.hand_over(conn, sockets, now);
        self.by_conn.remove(&conn);
    }

    /// Gives what a session has waiting to its receiver, if it has one.
    fn hand_over(&mut self, conn: ConnId, sockets: &mut impl Sockets, now: u64) {
        let Some(id) = self.by_conn.get(&conn).cloned() else {
            return;
        };
        let Some(session) = self.by_id.get_mut(&id) else {
            return;
        };
        let Some(receiving) = session.receiver.clone() else {
            return;
        };
        let mut frames = Vec::new();
        if !session.take_frames(receiving.kind, &mut frames, &mut self.waiting_bytes) {
            return;
        }
        let listener = receiving.listener;
        if !receiving.kind.streams() {
            let body = frames.concat();
            sockets.answer(
                listener,
                answer(body, receiving.kind, session.origin.as_deref()),
            );
            self.detach(listener, now);
            return;
        }
        if !frames
            .iter()
            .all(|frame| sockets.stream(listener, frame).is_some())
        {
            // The client has gone, and with it what was streamed: cut off.
            self.detach(listener, now);
            self.end_now(
                &id,
                sockjs::close_frame(1002, "Connection interrupted"),
                now,
            );
            return;
        }
        let streamed = receiving.streamed + frames.iter().map(Vec::len).sum::<usize>();
        if session.closed.is_some() || streamed >= session.response_limit {
            sockets.end(listener);
            self.detach(listener, now);
        } else if let Some(open) = session.receiver.as_mut() {
            open.streamed = streamed;
        }
    }
}

impl SockJsSession {
    /// Appends the waiting messages (one `a[…]` frame) and the close frame, each encoded for
    /// `kind`; `false` if there were none.
    fn take_frames(&mut self, kind: Receiver, into: &mut Vec<Vec<u8>>, total: &mut usize) -> bool {
        let waiting = !self.waiting.is_empty();
        if waiting {
            let frame = sockjs::messages_frame(self.waiting.iter().map(String::as_str));
            self.waiting.clear();
            *total -= self.waiting_bytes;
            self.waiting_bytes = 0;
            let mut bytes = Vec::new();
            kind.encode(&frame, &mut bytes);
            into.push(bytes);
        }
        if let Some(close) = &self.closed {
            let mut bytes = Vec::new();
            kind.encode(close, &mut bytes);
            into.push(bytes);
        }
        waiting || self.closed.is_some()
    }
}
