//! One room's broker: sessions, subscriptions and routing, with acknowledgements, queues,
//! transactions and presence each in a file of their own.
//!
//! The broker is deterministic and does no I/O. The [room engine](super::RoomEngine) feeds it what
//! happened (a connection opened, bytes arrived, a connection closed, a deadline passed) with
//! the current time in milliseconds, and gets back [`Effect`]s to carry out in order: send
//! these bytes to that connection, close it, persist this session, store or forget this
//! message. Durable state is mirrored through effects and given back with the `restore_*`
//! methods after the room wakes. Time never passes inside the broker: every deadline it keeps
//! is a field of a [`Session`], which is persisted, so a deadline survives eviction exactly.

mod acks;
mod delivery;
mod presence;
mod queues;
mod transactions;

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::auth::{authorization_credentials, AllowAll, Authenticator, ConnectRequest};
use super::budget::{Budget, HistoryUsage, Usage};
use super::record;
use super::session::{AckMode, ConnId, Peer, Phase, Session, Subscription};
use crate::room::destinations::{self, SendTarget, SubscribeTarget};
use crate::stomp::{
    Command, Decoded, Decoder, Delivery, Frame, HeartBeat, Limits, Message, ProtocolError, Version,
};

use acks::AckKind;
use queues::{Queue, Waiting};
use transactions::Staged;

use super::rate::{Cost, PublishRate};
pub use queues::QueuedMessage;

/// History is trimmed when a destination holds this many messages more than `history_limit`,
/// so trimming costs one statement per this many messages; replay never returns the extra ones.
pub const TRIM_EVERY: u32 = 32;

/// A peer that promised heart-beats every `n` ms is declared dead after `n * GRACE` ms of silence.
pub const HEART_BEAT_GRACE: u64 = 2;

/// Headers a client may not set on a SEND: the broker sets them on each MESSAGE.
const RESERVED_HEADERS: [&str; 14] = [
    "destination",
    "sender",
    "sender-name",
    "sender-verified",
    "timestamp",
    "transaction",
    "receipt",
    "content-length",
    "subscription",
    "message-id",
    "ack",
    "redelivered",
    "replayed",
    "replay-skipped",
];

/// Who sent a message, as the room stamps it on the MESSAGE.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sender {
    /// `sender`: a verified login, or what names an unverified sender (a session id).
    pub identity: String,
    /// `sender-verified: true` when the identity was proven.
    pub verified: bool,
    /// `sender-name`: the name an unverified sender claimed.
    pub name: Option<String>,
}

impl Sender {
    pub fn of(session: &Session) -> Self {
        Self {
            identity: session.identity(),
            verified: session.verified && session.login.is_some(),
            name: session.login.clone().filter(|_| !session.verified),
        }
    }

    fn stamp(&self, headers: &mut Vec<(String, String)>) {
        headers.push(("sender".to_owned(), self.identity.clone()));
        if self.verified {
            headers.push(("sender-verified".to_owned(), "true".to_owned()));
        }
        if let Some(name) = &self.name {
            headers.push(("sender-name".to_owned(), name.clone()));
        }
    }
}

/// The broker's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Messages kept per `/topic/` destination for replay. Default 100.
    pub history_limit: u32,
    pub limits: Limits,
    /// What the whole room may hold (see [`Budget`]).
    pub budget: Budget,
    /// The shortest heart-beat interval the room agrees to, in ms, either way. The room offers
    /// it in CONNECTED (`heart-beat:{min},{min}`), so by the spec's rule each direction beats
    /// at what the client asked for, but never faster than this. Default 1000.
    pub heart_beat_min_ms: u32,
    /// How long a socket may stay open without sending CONNECT, in ms. Default 30 s.
    pub connect_timeout_ms: u64,
    /// The `server` header of CONNECTED.
    pub server: String,
    /// The transport answers every client heart-beat with one of ours (the WebSocket
    /// auto-response does). Then a client that pings at least as often as it wants to hear
    /// from us needs no heart-beats from the broker: its own pings bring them. Default false.
    #[serde(skip)]
    pub heart_beats_echoed: bool,
    /// How fast each connection may publish.
    pub publish_rate: PublishRate,
    /// Spring-style destination prefixes (empty by default).
    pub destinations: destinations::Prefixes,
    /// Connections the room holds at once; the next gets an ERROR ("room full"). 0: no cap.
    /// Default 5000.
    pub max_connections: u32,
    /// Connections from one client address (`CF-Connecting-IP`) the room holds at once; the
    /// next gets an ERROR ("too many connections"). 0: no cap. Default 100.
    pub max_connections_per_address: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            history_limit: 100,
            limits: Limits::default(),
            budget: Budget::default(),
            heart_beat_min_ms: 1_000,
            connect_timeout_ms: 30_000,
            server: concat!("stomp-rooms/", env!("CARGO_PKG_VERSION")).to_owned(),
            heart_beats_echoed: false,
            publish_rate: PublishRate::default(),
            destinations: destinations::Prefixes::default(),
            max_connections: 5000,
            max_connections_per_address: 100,
        }
    }
}

/// Which history a SUBSCRIBE asked to replay (`replay-last` or `replay-after` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayRequest {
    /// The last `n` messages.
    Last(u32),
    /// Every message with an id greater than this.
    After(u64),
}

/// A connection's deadlines, read from its session (see [`Broker::deadlines`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deadlines {
    /// The socket has not sent CONNECT and must by then.
    pub connect: Option<u64>,
    /// The room owes the client a heart-beat by then.
    pub heart_beat: Option<u64>,
    /// The client is silent past its grace period from then on, unless its pings (answered by
    /// the transport without waking the room) say otherwise.
    pub liveness: Option<u64>,
    /// The connection's token expires.
    pub token: Option<u64>,
}

/// Work for the caller, to be carried out in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send `bytes` to the connection; in a binary WebSocket message when `binary`.
    Send {
        conn: ConnId,
        bytes: Vec<u8>,
        binary: bool,
    },
    /// Send the same `bytes` to each of these connections: a fan-out of identical frames.
    SendMany {
        conns: Vec<ConnId>,
        bytes: Vec<u8>,
        binary: bool,
    },
    /// A RECEIPT frame: it promises that what the frames before it stored is durable.
    Receipt { conn: ConnId, bytes: Vec<u8> },
    /// Close the connection's socket (after the sends before this effect).
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    /// The connection's [`Session`] changed: persist it ([`Broker::session`]).
    SaveSession { conn: ConnId },
    /// A message was published to a topic: append it to that destination's history (when the
    /// room keeps history), and tell the room's HTTP listeners.
    Archive(Message),
    /// A destination's history holds more than it may: delete its oldest messages beyond the
    /// newest `keep_rows` and `keep_bytes`.
    TrimHistory {
        destination: String,
        keep_rows: u32,
        keep_bytes: u64,
    },
    /// A destination's history gives way to another's (see `budget.max_history_destinations`):
    /// delete all of it.
    DropHistory { destination: String },
    /// A queue message must be kept until it is delivered and acknowledged: store it.
    Enqueue(Message),
    /// A stored queue message went back to its queue, to be delivered again, preferably not
    /// to `avoid` (the consumer that refused it).
    Requeue {
        message_id: u64,
        avoid: Option<(ConnId, u32)>,
    },
    /// A stored queue message is done with: delete it.
    Dequeue { message_id: u64 },
    /// A queue's round-robin position changed (0: back to the start, nothing to keep).
    QueueCursor { destination: String, next: u64 },
    /// A subscription asked for history: load it and pass it to [`Broker::replay`].
    Replay {
        conn: ConnId,
        subscription: String,
        destination: String,
        request: ReplayRequest,
    },
    /// A frame joined an open transaction: store its record with the transaction.
    Stage {
        conn: ConnId,
        transaction: String,
        record: Vec<u8>,
        binary: bool,
    },
    /// A transaction ended (committed or aborted): delete its stored frames.
    Unstage { conn: ConnId, transaction: String },
}

struct Connection {
    session: Session,
    decoder: Decoder,
    /// The pieces its partly-arrived frame is stored in (one per message that completed
    /// nothing; one after a message that completed a frame and left a remainder).
    pieces: u64,
}

impl Connection {
    /// The rows its partly-arrived frame takes, as the budget counts them.
    fn partial_bytes(&self) -> u64 {
        self.decoder.pending().len() as u64 + self.pieces * record::ROW_OVERHEAD
    }
}

/// The broker for one room: connection events and bytes go in with the time, [`Effect`]s come
/// out for the caller to carry out in order; durable state is mirrored through effects and
/// given back with the `restore_*` methods after a wake.
pub struct Broker {
    config: Config,
    auth: Rc<dyn Authenticator>,
    conns: BTreeMap<ConnId, Connection>,
    /// Destination → its subscriptions `(connection, handle)`, sorted, so the order (which
    /// decides a queue's round-robin) is the same after the index is rebuilt on a wake.
    index: HashMap<String, Vec<(ConnId, u32)>>,
    last_message_id: u64,
    queues: BTreeMap<String, Queue>,
    /// Queue messages delivered to a client-ack subscription and not yet acknowledged.
    in_flight: HashMap<u64, Message>,
    staged: BTreeMap<(ConnId, String), Vec<Staged>>,
    /// What the room holds, against its budget.
    usage: Usage,
    now_ms: u64,
    out: Vec<Effect>,
}

impl Broker {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            auth: Rc::new(AllowAll),
            conns: BTreeMap::new(),
            index: HashMap::new(),
            last_message_id: 0,
            queues: BTreeMap::new(),
            in_flight: HashMap::new(),
            staged: BTreeMap::new(),
            usage: Usage::default(),
            now_ms: 0,
            out: Vec::new(),
        }
    }

    /// Replaces the authentication hook (default: everyone may connect).
    pub fn with_authenticator(mut self, auth: Rc<dyn Authenticator>) -> Self {
        self.auth = auth;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The session of an open connection.
    pub fn session(&self, conn: ConnId) -> Option<&Session> {
        self.conns.get(&conn).map(|c| &c.session)
    }

    /// Ids of the open connections.
    pub fn connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.conns.keys().copied()
    }

    /// The highest message id given out; persist it so ids stay monotonic across restarts.
    pub fn last_message_id(&self) -> u64 {
        self.last_message_id
    }

    /// What the room holds, against its budget.
    pub fn usage(&self) -> &Usage {
        &self.usage
    }

    /// A destination's history as storage holds it (after a trim).
    pub fn history_stored(&mut self, destination: &str, usage: HistoryUsage) {
        if self.config.history_limit > 0 {
            self.usage.set_history(destination, usage);
        }
    }

    /// What reading a destination's history costs against the byte rate (a replay, a poll,
    /// an event stream's first events): up to a read's worth of what it holds.
    pub fn read_cost(&self, destination: &str) -> u64 {
        let held = self.usage.history(destination).bytes;
        held.min(self.config.budget.max_read_bytes)
    }

    /// Bytes consumed from a connection's stream so far (see [`Decoder::consumed`]).
    pub fn consumed(&self, conn: ConnId) -> u64 {
        self.conns.get(&conn).map_or(0, |c| c.decoder.consumed())
    }

    /// Bytes of a frame that has only partly arrived on a connection.
    pub fn partial_frame(&self, conn: ConnId) -> &[u8] {
        self.conns
            .get(&conn)
            .map(|c| c.decoder.pending())
            .unwrap_or_default()
    }

    // ---- events -------------------------------------------------------------------------

    /// A WebSocket was accepted. The client must send CONNECT within `connect_timeout_ms`.
    /// Past the room's connection caps it gets an ERROR at once and is closed.
    pub fn open(&mut self, conn: ConnId, peer: Peer, now_ms: u64) -> Vec<Effect> {
        self.now_ms = now_ms;
        let refused = self.refusal(peer.address.as_deref());
        self.insert_connection(Session::new(conn, peer, now_ms));
        self.save(conn);
        if let Some(error) = refused {
            self.fail(conn, error);
        }
        self.take()
    }

    /// Why the room refuses one more connection from `address`, if it does: the room-wide
    /// and per-address caps. A socket refused as it opens is never accepted for hibernation
    /// (see [`RoomEngine::open`](crate::room::RoomEngine::open)).
    pub fn refusal(&self, address: Option<&str>) -> Option<ProtocolError> {
        let (max, per_address) = (
            self.config.max_connections as usize,
            self.config.max_connections_per_address as usize,
        );
        if max > 0 && self.conns.len() >= max {
            return Some(
                ProtocolError::new(
                    "room full",
                    format!("the room holds its maximum of {max} connections (max_connections); try again later"),
                )
                .with_close_code(crate::room::budget::TRY_AGAIN_LATER),
            );
        }
        let address = address.filter(|_| per_address > 0)?;
        let from_address = self
            .conns
            .values()
            .filter(|c| c.session.address.as_deref() == Some(address))
            .count();
        (from_address >= per_address).then(|| {
            ProtocolError::new(
                "too many connections",
                format!("the room holds its maximum of {per_address} connections from your address (max_connections_per_address); close one or try again later"),
            )
            .with_close_code(crate::room::budget::TRY_AGAIN_LATER)
        })
    }

    /// Bytes arrived on a connection (one WebSocket message; `binary` if it was a binary one).
    ///
    /// Frames before a bad one take effect; the bad one gets an ERROR and the connection closes.
    pub fn receive(&mut self, conn: ConnId, data: &[u8], binary: bool, now_ms: u64) -> Vec<Effect> {
        self.now_ms = now_ms;
        let max = self.config.limits.max_frame_bytes;
        if data.len() > max {
            // Refused before it is copied: no message needs more than a frame.
            let error = ProtocolError::new(
                "message too large",
                format!(
                    "a WebSocket message may carry at most {max} bytes (max_frame_bytes); send \
                     smaller frames, one per message"
                ),
            );
            self.fail(conn, error);
            return self.take();
        }
        let Some(connection) = self.conns.get_mut(&conn) else {
            return Vec::new();
        };
        let consumed = connection.decoder.consumed();
        connection.decoder.push(data);
        self.heard_from(conn);
        let mut frames = 0;
        // A DISCONNECT or an error removes the connection, which ends the loop.
        while let Some(connection) = self.conns.get_mut(&conn) {
            match connection.decoder.next_item() {
                Ok(None) => break,
                Ok(Some(Decoded::HeartBeat)) => {}
                Ok(Some(Decoded::Frame(frame))) => {
                    frames += 1;
                    if let Err(error) = self.handle_frame(conn, frame, binary) {
                        self.fail(conn, error);
                        break;
                    }
                }
                Err(error) => {
                    self.fail(conn, error);
                    break;
                }
            }
        }
        if let Err(error) = self.hold_partial_frame(conn, consumed, data.len(), frames) {
            self.fail(conn, error);
        }
        self.take()
    }

    /// What stays buffered of a connection's stream after a message is a partly-arrived
    /// frame, stored in pieces: within the room's budget of them, counting each piece's row.
    /// A message that completed no frame costs a frame against the rates all the same (it is
    /// a write of its own).
    fn hold_partial_frame(
        &mut self,
        conn: ConnId,
        consumed_before: u64,
        arrived: usize,
        frames: usize,
    ) -> Result<(), ProtocolError> {
        if frames == 0 && arrived > 0 {
            self.charge(conn, Cost::frame(arrived, false))?;
        }
        let Some(connection) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        let pending = connection.decoder.pending().len() as u64;
        connection.pieces = match (pending, connection.decoder.consumed() == consumed_before) {
            (0, _) => 0,
            (_, true) => connection.pieces + u64::from(arrived > 0),
            (_, false) => 1,
        };
        let held = connection.partial_bytes();
        self.usage.set_partial(&self.config.budget, conn, held)
    }

    /// The connection's socket closed or failed: forget it, requeue its unacknowledged queue
    /// messages, abort its transactions, and tell presence subscribers it left.
    pub fn close(&mut self, conn: ConnId, now_ms: u64) -> Vec<Effect> {
        self.now_ms = now_ms;
        self.remove_connection(conn);
        self.take()
    }

    // ---- deadlines ------------------------------------------------------------------------

    /// The connection's deadlines, all read from its persisted session.
    pub fn deadlines(&self, conn: ConnId) -> Deadlines {
        let Some(session) = self.session(conn) else {
            return Deadlines::default();
        };
        match session.phase {
            Phase::AwaitingConnect => Deadlines {
                connect: Some(session.opened_ms + self.config.connect_timeout_ms),
                ..Deadlines::default()
            },
            Phase::Connected => {
                let rx = u64::from(session.heart_beat.receive_ms);
                Deadlines {
                    connect: None,
                    heart_beat: session.beat_due_ms,
                    liveness: (rx > 0).then(|| session.heard_ms + rx * HEART_BEAT_GRACE),
                    token: session.expires_ms,
                }
            }
        }
    }

    /// The CONNECT deadline may have passed: close the socket if it has and no CONNECT came.
    pub fn connect_deadline(&mut self, conn: ConnId, now_ms: u64) -> Vec<Effect> {
        self.now_ms = now_ms;
        if self.deadlines(conn).connect.is_some_and(|at| now_ms >= at) {
            self.fail(
                conn,
                ProtocolError::new("CONNECT timeout", "no CONNECT frame arrived in time"),
            );
        }
        self.take()
    }

    /// The connection's token may have expired: tell the client and close, so it can fetch a
    /// fresh token and reconnect.
    pub fn token_deadline(&mut self, conn: ConnId, now_ms: u64) -> Vec<Effect> {
        self.now_ms = now_ms;
        if self.deadlines(conn).token.is_some_and(|at| now_ms >= at) {
            self.fail(
                conn,
                ProtocolError::new(
                    "token expired",
                    "the connection's token expired: fetch a fresh token and reconnect",
                )
                .with_close_code(1008),
            );
        }
        self.take()
    }

    /// A heart-beat to the client may be due: send it and set the next one.
    pub fn heart_beat_deadline(&mut self, conn: ConnId, now_ms: u64) -> Vec<Effect> {
        self.now_ms = now_ms;
        let Some(connection) = self.conns.get_mut(&conn) else {
            return Vec::new();
        };
        let session = &mut connection.session;
        if session.beat_due_ms.is_some_and(|at| now_ms >= at) {
            session.beat_due_ms = Some(now_ms + u64::from(session.heart_beat.send_ms));
            self.out.push(Effect::Send {
                conn,
                bytes: b"\n".to_vec(),
                binary: false,
            });
            self.save(conn);
        }
        self.take()
    }

    /// The client may have gone silent. `last_ping_ms` is when the transport last answered
    /// one of its heart-beats without waking the room; it counts as hearing from the client.
    pub fn liveness_deadline(
        &mut self,
        conn: ConnId,
        last_ping_ms: Option<u64>,
        now_ms: u64,
    ) -> Vec<Effect> {
        self.now_ms = now_ms;
        let Some(connection) = self.conns.get_mut(&conn) else {
            return Vec::new();
        };
        let session = &mut connection.session;
        if let Some(ping) = last_ping_ms.filter(|&ping| ping > session.heard_ms) {
            session.heard_ms = ping.min(now_ms);
            self.save(conn);
        }
        let overdue = self.deadlines(conn).liveness.is_some_and(|at| now_ms >= at);
        if let Some(session) = self.session(conn).filter(|_| overdue) {
            let rx = session.heart_beat.receive_ms;
            let silent = now_ms.saturating_sub(session.heard_ms);
            self.fail(
                conn,
                ProtocolError::new(
                    "heart-beat timeout",
                    format!("nothing received for {silent} ms; heart-beats were due every {rx} ms"),
                ),
            );
        }
        self.take()
    }

    /// Notes that the client was heard now. The session is rewritten only when that moves its
    /// `heard_ms` by half a heart-beat interval or more: liveness needs no finer clock.
    fn heard_from(&mut self, conn: ConnId) {
        let now = self.now_ms;
        let Some(connection) = self.conns.get_mut(&conn) else {
            return;
        };
        let session = &mut connection.session;
        let rx = u64::from(session.heart_beat.receive_ms);
        if session.phase == Phase::Connected && rx > 0 && now >= session.heard_ms + rx / 2 {
            session.heard_ms = now;
            self.save(conn);
        }
    }

    // ---- restoring after the room wakes -------------------------------------------------

    /// Re-adds a connection from its persisted session and rebuilds its routing entries.
    pub fn restore_session(&mut self, session: Session) {
        self.insert_connection(session);
    }

    /// Sets the last message id given out (persisted by the caller).
    pub fn restore_last_message_id(&mut self, id: u64) {
        self.last_message_id = self.last_message_id.max(id);
    }

    /// Gives back a partial frame persisted before the room was evicted, stored in `pieces`.
    pub fn restore_partial_frame(&mut self, conn: ConnId, bytes: &[u8], pieces: u64) {
        if let Some(connection) = self.conns.get_mut(&conn) {
            connection.decoder.push(bytes);
            connection.pieces = pieces;
            // Stored within the budget; counted whatever the budget is now.
            self.usage.count_partial(conn, connection.partial_bytes());
        }
    }

    /// Gives back what each destination's stored history holds.
    pub fn restore_history(&mut self, history: Vec<(String, HistoryUsage)>) {
        if self.config.history_limit == 0 {
            return;
        }
        for (destination, usage) in history {
            self.usage.set_history(&destination, usage);
        }
    }

    // ---- frames ------------------------------------------------------------------------

    fn handle_frame(
        &mut self,
        conn: ConnId,
        frame: Frame,
        binary: bool,
    ) -> Result<(), ProtocolError> {
        let receipt = frame.header("receipt").map(str::to_owned);
        let command = frame.command;
        self.admit_frame(conn, &frame)
            .and_then(|()| self.dispatch_frame(conn, frame, binary))
            .map_err(|error| error.with_receipt(receipt.as_deref()))?;
        if let Some(receipt) = receipt {
            let reply = Frame::new(Command::Receipt).with_header("receipt-id", &receipt);
            if let Some(version) = self.session(conn).map(|s| s.version) {
                self.out.push(Effect::Receipt {
                    conn,
                    bytes: reply.encode(Some(version)),
                });
            }
        }
        if command == Command::Disconnect {
            self.out.push(Effect::Close {
                conn,
                code: 1000,
                reason: "DISCONNECT".to_owned(),
            });
            self.remove_connection(conn);
        }
        Ok(())
    }

    /// Every frame from the wire (not one replayed by a COMMIT) counts against the
    /// connection's rates, even if staged; a SEND must also be allowed by the token.
    fn admit_frame(&mut self, conn: ConnId, frame: &Frame) -> Result<(), ProtocolError> {
        let connected = self
            .session(conn)
            .is_some_and(|s| s.phase == Phase::Connected);
        if !connected {
            return Ok(());
        }
        let publish = frame.command == Command::Send;
        if let (true, Some(destination), Some(session)) =
            (publish, frame.header("destination"), self.session(conn))
        {
            session.grants.check_publish(destination)?;
        }
        self.charge(conn, Cost::frame(frame.size(), publish))
    }

    /// Counts `cost` against the connection's rates, or refuses it.
    fn charge(&mut self, conn: ConnId, cost: Cost) -> Result<(), ProtocolError> {
        let now = self.now_ms;
        let rate = self.config.publish_rate.clone();
        let Some(session) = self.session_mut(conn) else {
            return Ok(());
        };
        let before = session.throttle;
        session.throttle.admit(&rate, cost, now)?;
        if session.throttle != before {
            self.save(conn);
        }
        Ok(())
    }

    fn dispatch_frame(
        &mut self,
        conn: ConnId,
        frame: Frame,
        binary: bool,
    ) -> Result<(), ProtocolError> {
        let phase = self
            .conns
            .get(&conn)
            .map(|c| c.session.phase)
            .unwrap_or(Phase::AwaitingConnect);
        let command = frame.command;
        if !command.allows_body() && !frame.body.is_empty() {
            return Err(ProtocolError::new(
                "unexpected body",
                format!("{command} frames may not have a body; only SEND carries one"),
            ));
        }
        match (phase, command) {
            (Phase::AwaitingConnect, Command::Connect | Command::Stomp) => {
                self.on_connect(conn, &frame)
            }
            (Phase::AwaitingConnect, _) => Err(ProtocolError::new(
                "not connected",
                format!("received {command} before CONNECT; send CONNECT (or STOMP) first"),
            )),
            (Phase::Connected, Command::Connect | Command::Stomp) => Err(ProtocolError::new(
                "already connected",
                "this connection already sent CONNECT",
            )),
            (_, Command::Send) => self.on_send(conn, frame, binary),
            (_, Command::Subscribe) => self.on_subscribe(conn, &frame),
            (_, Command::Unsubscribe) => self.on_unsubscribe(conn, &frame),
            (_, Command::Ack) => self.on_ack(conn, frame, AckKind::Ack),
            (_, Command::Nack) => self.on_ack(conn, frame, AckKind::Nack),
            (_, Command::Begin) => self.on_begin(conn, &frame),
            (_, Command::Commit) => self.on_commit(conn, &frame),
            (_, Command::Abort) => self.on_abort(conn, &frame),
            (_, Command::Disconnect) => Ok(()),
            (_, Command::Connected | Command::Message | Command::Receipt | Command::Error) => {
                Err(ProtocolError::new(
                    "unexpected command",
                    format!("{command} is sent by servers, not clients"),
                ))
            }
        }
    }

    fn on_connect(&mut self, conn: ConnId, frame: &Frame) -> Result<(), ProtocolError> {
        let version = Version::negotiate(frame.header("accept-version")).ok_or_else(|| {
            ProtocolError::new(
                "unsupported version",
                format!(
                    "accept-version {:?} names no version this server speaks; supported: {}",
                    frame.header("accept-version").unwrap_or_default(),
                    Version::SUPPORTED
                ),
            )
            .with_header("version", Version::SUPPORTED)
        })?;
        if let Some(session) = self.session_mut(conn) {
            session.version = version;
        }
        let client_beat = HeartBeat::parse_header(frame.header("heart-beat"))?;
        let login = frame.header("login");
        if let Some(login) = login {
            destinations::check_text("login", login, self.config.limits.max_id_bytes)?;
        }
        let bearer = frame
            .header("Authorization")
            .or(frame.header("authorization"))
            .map(|value| authorization_credentials(value, "Bearer").unwrap_or(value.trim()));
        let room = self
            .session(conn)
            .map(|s| s.room.as_str())
            .unwrap_or_default();
        let refused =
            |reason| ProtocolError::new("authentication failed", reason).with_close_code(1008);
        let identity = self
            .auth
            .authenticate(&ConnectRequest {
                room,
                login,
                passcode: frame.header("passcode"),
                bearer,
                now_ms: self.now_ms,
            })
            .map_err(refused)?;
        if let Some(login) = identity.login.as_deref().filter(|_| identity.verified) {
            destinations::check_text("login", login, self.config.limits.max_id_bytes)
                .map_err(|error| refused(format!("the token's login: {}", error.detail)))?;
        }
        let min = self.config.heart_beat_min_ms;
        let heart_beat = if version == Version::V1_0 {
            HeartBeat::default()
        } else {
            HeartBeat::negotiate(client_beat, (min, min))
        };
        let echoed = self.config.heart_beats_echoed && heart_beat.echoes_cover_sending();
        let now = self.now_ms;
        let Some(connection) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        connection.decoder.set_version(version);
        let session = &mut connection.session;
        session.phase = Phase::Connected;
        session.login = identity.login;
        session.verified = identity.verified;
        session.grants = identity.grants;
        session.expires_ms = identity.expires_ms;
        session.heart_beat = heart_beat;
        session.heard_ms = now;
        session.beat_due_ms =
            (heart_beat.send_ms > 0 && !echoed).then(|| now + u64::from(heart_beat.send_ms));
        let connected = Frame::new(Command::Connected)
            .with_header("version", version.as_str())
            .with_header("heart-beat", &format!("{min},{min}"))
            .with_header("session", &session.session_id())
            .with_header("server", &self.config.server);
        let member = presence::member(session);
        self.save(conn);
        self.send_frame(conn, &connected);
        self.publish_presence(serde_json::json!({ "type": "join", "member": member }));
        Ok(())
    }

    fn on_send(&mut self, conn: ConnId, frame: Frame, binary: bool) -> Result<(), ProtocolError> {
        let requested = required(&frame, "destination")?;
        let destination = self
            .config
            .destinations
            .route(requested, &frame.body)?
            .into_owned();
        let target =
            destinations::parse_send(&destination, &self.config.limits, &self.config.destinations)?;
        if let Some(transaction) = frame.header("transaction") {
            let transaction = transaction.to_owned();
            return self.stage(conn, transaction, frame, binary);
        }
        let sender = self.session(conn).map(Sender::of).unwrap_or_default();
        self.route(
            &sender,
            target,
            &destination,
            frame.headers,
            frame.body,
            binary,
        )?;
        Ok(())
    }

    /// Publishes a message from outside any connection (an HTTP POST): routed, stored and
    /// delivered exactly as a SEND would be. Returns its id and the effects to carry out.
    pub fn publish(
        &mut self,
        sender: &Sender,
        destination: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        now_ms: u64,
    ) -> Result<(u64, Vec<Effect>), ProtocolError> {
        self.now_ms = now_ms;
        let destination = self
            .config
            .destinations
            .route(destination, &body)?
            .into_owned();
        let target =
            destinations::parse_send(&destination, &self.config.limits, &self.config.destinations)?;
        let id = self.route(sender, target, &destination, headers, body, false);
        let effects = self.take();
        Ok((id?, effects))
    }

    /// Stamps a message with its id, sender and time and sends it on its way; returns its id.
    /// A message the room would store is refused first if it does not fit the budget (a row,
    /// a queue, the destinations), so nothing of it goes out.
    fn route(
        &mut self,
        sender: &Sender,
        target: SendTarget,
        destination: &str,
        own_headers: Vec<(String, String)>,
        body: Vec<u8>,
        binary: bool,
    ) -> Result<u64, ProtocolError> {
        let binary = binary || std::str::from_utf8(&body).is_err();
        // The room stamps who sent it and when; a client cannot forge either. A claimed
        // login is shown apart, as a name, never as the sender.
        let mut headers = Vec::with_capacity(own_headers.len() + 3);
        sender.stamp(&mut headers);
        headers.push(("timestamp".to_owned(), self.now_ms.to_string()));
        headers.extend(
            own_headers
                .into_iter()
                .filter(|(name, _)| !RESERVED_HEADERS.contains(&name.as_str())),
        );
        let row_bytes = record::message_row_bytes_of(destination, &headers, body.len());
        match target {
            SendTarget::Topic(_) if self.config.history_limit > 0 => {
                self.admit_row(row_bytes)?;
            }
            SendTarget::Queue(_) => {
                self.admit_row(row_bytes)?;
                self.make_room_in_queue(destination, row_bytes)?;
            }
            _ => {}
        }
        let mut message = Message {
            id: self.next_message_id(),
            destination: destination.to_owned(),
            headers,
            body,
            binary,
        };
        let id = message.id;
        match target {
            SendTarget::Topic(_) => {
                // Live delivery first: the caller stores the message after the fan-out.
                let subscribers = self.subscribers(destination);
                self.deliver(&subscribers, &message, Delivery::Live);
                self.out.push(Effect::Archive(message));
                self.archived(destination, id, row_bytes);
            }
            SendTarget::Queue(_) => {
                self.usage.enqueued(destination, row_bytes);
                self.out.push(Effect::Enqueue(message.clone()));
                self.queue(destination.to_owned())
                    .waiting
                    .push_back(Waiting {
                        message,
                        redelivered: false,
                        avoid: None,
                    });
                self.dispatch_queue(destination);
            }
            SendTarget::User {
                identity,
                subscribed_as,
            } => {
                message.destination = subscribed_as.clone();
                let mut recipients = self.subscribers(&subscribed_as);
                recipients
                    .retain(|(to, _)| self.session(*to).is_some_and(|s| s.identity() == identity));
                self.deliver(&recipients, &message, Delivery::Live);
            }
        }
        Ok(id)
    }

    /// A row of `bytes` must fit the room's row limit (below the platform's).
    fn admit_row(&self, bytes: u64) -> Result<(), ProtocolError> {
        let max = self.config.budget.max_row_bytes;
        if bytes <= max {
            return Ok(());
        }
        Err(ProtocolError::new(
            "message too large",
            format!(
                "the message would be stored as {bytes} bytes, and the room stores at most \
                 {max} in one (budget.max_row_bytes); send a smaller one"
            ),
        ))
    }

    /// Counts a topic message into its destination's history, and asks for a trim once the
    /// history holds `TRIM_EVERY` messages more than `history_limit` or more bytes than it may.
    /// A destination new to history, when as many keep history as may, takes the place of the
    /// one whose newest message is oldest: that one's history is dropped.
    fn archived(&mut self, destination: &str, id: u64, bytes: u64) {
        let limit = self.config.history_limit;
        if limit == 0 {
            return;
        }
        if let Some(dropped) = self.usage.history_to_drop(&self.config.budget, destination) {
            self.usage.set_history(&dropped, HistoryUsage::default());
            self.out.push(Effect::DropHistory {
                destination: dropped,
            });
        }
        let held = self.usage.archived(destination, id, bytes);
        let keep_bytes = self.config.budget.max_history_bytes;
        if held.rows >= limit + TRIM_EVERY || held.bytes > keep_bytes {
            self.out.push(Effect::TrimHistory {
                destination: destination.to_owned(),
                keep_rows: limit,
                keep_bytes,
            });
            // Storage says what remains once the trim is committed.
            self.usage.set_history(
                destination,
                HistoryUsage {
                    rows: held.rows.min(limit),
                    ..held
                },
            );
        }
    }

    fn on_subscribe(&mut self, conn: ConnId, frame: &Frame) -> Result<(), ProtocolError> {
        let limits = &self.config.limits;
        let destination = required(frame, "destination")?.to_owned();
        let target =
            destinations::parse_subscribe(&destination, limits, &self.config.destinations)?;
        let version = self
            .session(conn)
            .map(|s| s.version)
            .unwrap_or(Version::V1_2);
        // STOMP 1.0 made `id` optional; such a subscription is named by its destination.
        let id = match (frame.header("id"), version) {
            (Some(id), _) => id.to_owned(),
            (None, Version::V1_0) => destination.clone(),
            (None, _) => return Err(missing_header(Command::Subscribe, "id")),
        };
        destinations::check_text("subscription id", &id, limits.max_id_bytes)?;
        let ack = AckMode::parse(frame.header("ack")).ok_or_else(|| {
            ProtocolError::new(
                "invalid ack mode",
                "ack must be auto, client or client-individual",
            )
        })?;
        let replay = parse_replay(frame, target)?;
        let max_subscriptions = limits.max_subscriptions;
        let session = self.session_mut(conn).ok_or_else(gone)?;
        session.grants.check_subscribe(&destination)?;
        if session.subscription(&id).is_some() {
            return Err(ProtocolError::new(
                "duplicate subscription",
                format!("this connection already has a subscription with id {id:?}"),
            ));
        }
        if session.subscriptions.len() >= max_subscriptions {
            return Err(ProtocolError::new(
                "too many subscriptions",
                format!("a connection may hold at most {max_subscriptions} subscriptions (max_subscriptions)"),
            ));
        }
        let handle = session.next_handle;
        session.next_handle = session.next_handle.wrapping_add(1);
        session.subscriptions.push(Subscription {
            id: id.clone(),
            handle,
            destination: destination.clone(),
            ack,
        });
        self.index_subscription(&destination, conn, handle);
        self.save(conn);
        match target {
            SubscribeTarget::Presence => self.send_presence_snapshot(conn, handle)?,
            SubscribeTarget::Queue => self.dispatch_queue(&destination),
            SubscribeTarget::Topic | SubscribeTarget::User => {}
        }
        if let Some(request) = replay {
            self.charge(conn, Cost::bytes(self.read_cost(&destination)))?;
            self.out.push(Effect::Replay {
                conn,
                subscription: id,
                destination,
                request,
            });
        }
        Ok(())
    }

    fn on_unsubscribe(&mut self, conn: ConnId, frame: &Frame) -> Result<(), ProtocolError> {
        let session = self.session(conn).ok_or_else(gone)?;
        let id = match (frame.header("id"), session.version) {
            (Some(id), _) => id,
            (None, Version::V1_0) => required(frame, "destination")?,
            (None, _) => return Err(missing_header(Command::Unsubscribe, "id")),
        };
        let Some(subscription) = session.subscription(id).cloned() else {
            return Err(ProtocolError::new(
                "unknown subscription",
                format!("no subscription with id {id:?}"),
            ));
        };
        self.drop_subscription(conn, &subscription);
        self.save(conn);
        Ok(())
    }

    // ---- connections -------------------------------------------------------------------

    fn insert_connection(&mut self, session: Session) {
        let conn = session.conn;
        self.remove_connection(conn);
        let mut decoder = Decoder::new(self.config.limits.clone());
        if session.phase == Phase::Connected {
            decoder.set_version(session.version);
        }
        for subscription in &session.subscriptions {
            self.index_subscription(&subscription.destination, conn, subscription.handle);
        }
        self.conns.insert(
            conn,
            Connection {
                session,
                decoder,
                pieces: 0,
            },
        );
    }

    fn remove_connection(&mut self, conn: ConnId) {
        let Some(connection) = self.conns.remove(&conn) else {
            return;
        };
        let session = connection.session;
        self.usage.forget_partial(conn);
        for subscription in &session.subscriptions {
            self.unindex(&subscription.destination, conn, subscription.handle);
        }
        for transaction in &session.transactions {
            self.drop_staged(conn, transaction);
            self.out.push(Effect::Unstage {
                conn,
                transaction: transaction.clone(),
            });
        }
        let queued = session
            .unacked
            .iter()
            .filter(|u| u.is_queue())
            .map(|u| u.message_id())
            .collect();
        self.requeue(queued, None);
        if session.phase == Phase::Connected {
            self.publish_presence(
                serde_json::json!({ "type": "leave", "member": presence::member(&session) }),
            );
        }
    }

    /// Removes a subscription; its unacknowledged queue messages go back to the queue.
    fn drop_subscription(&mut self, conn: ConnId, subscription: &Subscription) {
        self.unindex(&subscription.destination, conn, subscription.handle);
        let Some(session) = self.session_mut(conn) else {
            return;
        };
        session
            .subscriptions
            .retain(|s| s.handle != subscription.handle);
        let mut queued = Vec::new();
        session.unacked.retain(|u| {
            if u.handle() != subscription.handle {
                return true;
            }
            if u.is_queue() {
                queued.push(u.message_id());
            }
            false
        });
        self.requeue(queued, None);
    }

    fn index_subscription(&mut self, destination: &str, conn: ConnId, handle: u32) {
        let entries = self.index.entry(destination.to_owned()).or_default();
        if let Err(position) = entries.binary_search(&(conn, handle)) {
            entries.insert(position, (conn, handle));
        }
    }

    fn unindex(&mut self, destination: &str, conn: ConnId, handle: u32) {
        if let Some(entries) = self.index.get_mut(destination) {
            entries.retain(|entry| *entry != (conn, handle));
            if entries.is_empty() {
                self.index.remove(destination);
                self.forget_idle_queue(destination);
            }
        }
    }

    /// Tells the peer what went wrong, then closes its connection and cleans up after it.
    fn fail(&mut self, conn: ConnId, error: ProtocolError) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        let frame = error.to_frame();
        self.send_frame(conn, &frame);
        let mut reason = error.message.clone();
        reason.truncate(100);
        self.out.push(Effect::Close {
            conn,
            code: error.close_code,
            reason,
        });
        self.remove_connection(conn);
    }

    // ---- helpers -----------------------------------------------------------------------

    fn send_frame(&mut self, conn: ConnId, frame: &Frame) {
        let Some(connection) = self.conns.get(&conn) else {
            return;
        };
        let version =
            (connection.session.phase == Phase::Connected).then_some(connection.session.version);
        self.out.push(Effect::Send {
            conn,
            bytes: frame.encode(version),
            binary: false,
        });
    }

    fn session_mut(&mut self, conn: ConnId) -> Option<&mut Session> {
        self.conns.get_mut(&conn).map(|c| &mut c.session)
    }

    fn save(&mut self, conn: ConnId) {
        let effect = Effect::SaveSession { conn };
        if self.out.last() != Some(&effect) {
            self.out.push(effect);
        }
    }

    fn next_message_id(&mut self) -> u64 {
        self.last_message_id += 1;
        self.last_message_id
    }

    fn take(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.out)
    }
}

fn parse_replay(
    frame: &Frame,
    target: SubscribeTarget,
) -> Result<Option<ReplayRequest>, ProtocolError> {
    let invalid = |name: &str| {
        ProtocolError::new(
            "invalid replay request",
            format!("{name} must be a non-negative integer (replay-last: how many; replay-after: a message-id)"),
        )
    };
    let request = match (frame.header("replay-last"), frame.header("replay-after")) {
        (None, None) => return Ok(None),
        (Some(n), _) => ReplayRequest::Last(n.trim().parse().map_err(|_| invalid("replay-last"))?),
        (None, Some(id)) => {
            ReplayRequest::After(id.trim().parse().map_err(|_| invalid("replay-after"))?)
        }
    };
    if target != SubscribeTarget::Topic {
        return Err(ProtocolError::new(
            "invalid replay request",
            "history is kept for /topic/ destinations only",
        ));
    }
    Ok(Some(request))
}

fn required<'a>(frame: &'a Frame, name: &str) -> Result<&'a str, ProtocolError> {
    frame
        .header(name)
        .ok_or_else(|| missing_header(frame.command, name))
}

fn missing_header(command: Command, name: &str) -> ProtocolError {
    ProtocolError::new(
        format!("missing {name} header"),
        format!("{command} frames must carry a {name} header"),
    )
}

fn gone() -> ProtocolError {
    ProtocolError::new("not connected", "the connection is closed")
}
