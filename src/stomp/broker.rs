//! One room's broker: sessions, subscriptions, routing, acknowledgements and transactions.
//!
//! The broker is deterministic and does no I/O. The caller feeds it what happened (a connection
//! opened, bytes arrived, a connection closed, time passed) with the current time in
//! milliseconds, and gets back [`Effect`]s to carry out in order: send these bytes to that
//! connection, close it, persist this session, store or forget this message. Durable state is
//! mirrored through effects and given back with the `restore_*` methods after the room wakes.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::auth::{AllowAll, Authenticator};
use super::decoder::{Decoded, Decoder};
use super::destination::{self, SendTarget, SubscribeTarget, PRESENCE};
use super::error::ProtocolError;
use super::frame::{write_body, write_header, Command, Frame};
use super::heartbeat::HeartBeat;
use super::limits::Limits;
use super::session::{AckMode, ConnId, Phase, Session, Subscription, Unacked};
use super::version::Version;

/// A peer that promised heart-beats every `n` ms is declared dead after `n * GRACE` ms of silence.
pub const HEART_BEAT_GRACE: u64 = 2;

/// Headers a client may not set on a SEND: the broker sets them on each MESSAGE.
const RESERVED_HEADERS: [&str; 11] = [
    "destination",
    "sender",
    "timestamp",
    "transaction",
    "receipt",
    "content-length",
    "subscription",
    "message-id",
    "ack",
    "redelivered",
    "replayed",
];

/// The room's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub limits: Limits,
    /// Our heart-beat offer `(sx, sy)` in ms: we can send every `sx`, we want to hear from the
    /// client every `sy`. Default `(10000, 10000)`, the same as stomp.js, so a stomp.js
    /// client's pings set the pace and the room's auto-response answers them.
    pub heart_beat: (u32, u32),
    /// How long a socket may stay open without sending CONNECT, in ms. Default 30 s.
    pub connect_timeout_ms: u64,
    /// The `server` header of CONNECTED.
    pub server: String,
    /// The transport answers every client heart-beat with one of ours (the WebSocket
    /// auto-response does). Then a client that pings at least as often as it wants to hear
    /// from us needs no heart-beats from the broker: its own pings bring them. Default false.
    #[serde(skip)]
    pub heart_beats_echoed: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            heart_beat: (10_000, 10_000),
            connect_timeout_ms: 30_000,
            server: concat!("stomp-rooms/", env!("CARGO_PKG_VERSION")).to_owned(),
            heart_beats_echoed: false,
        }
    }
}

/// A published message, as stored for history and queues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Room-monotonic id, sent as `message-id`.
    pub id: u64,
    /// The destination shown to subscribers.
    pub destination: String,
    /// `content-type` and the sender's own headers, forwarded to subscribers.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Deliver in a binary WebSocket message (the SEND arrived in one, or the body is not UTF-8).
    pub binary: bool,
}

/// Which history a SUBSCRIBE asked to replay (`replay-last` or `replay-after` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayRequest {
    /// The last `n` messages.
    Last(u32),
    /// Every message with an id greater than this.
    After(u64),
}

/// When the broker next needs [`Broker::tick`], by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deadlines {
    /// A heart-beat is due to a client that asked for them without pinging, or a socket's
    /// CONNECT timeout passes: work that must happen on time.
    pub send: Option<u64>,
    /// A client that promised heart-beats may have gone silent. Pings answered by the
    /// WebSocket auto-response are invisible until checked, so a caller may check lazily.
    pub liveness: Option<u64>,
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
    /// Close the connection's socket (after the sends before this effect).
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    /// The connection's [`Session`] changed: persist it ([`Broker::session`]).
    SaveSession { conn: ConnId },
    /// A message was published to a topic: append it to that destination's history.
    Archive(Message),
    /// A queue message must be kept until it is delivered and acknowledged: store it.
    Enqueue(Message),
    /// A stored queue message is done with: delete it.
    Dequeue { message_id: u64 },
    /// A subscription asked for history: load it and pass it to [`Broker::replay`].
    Replay {
        conn: ConnId,
        subscription: String,
        destination: String,
        request: ReplayRequest,
    },
    /// A frame joined an open transaction: store it with the transaction.
    Stage {
        conn: ConnId,
        transaction: String,
        frame: Frame,
        binary: bool,
    },
    /// A transaction ended (committed or aborted): delete its stored frames.
    Unstage { conn: ConnId, transaction: String },
}

struct Connection {
    session: Session,
    decoder: Decoder,
    opened_ms: u64,
    last_received_ms: u64,
    last_sent_ms: u64,
}

struct Waiting {
    message: Message,
    redelivered: bool,
    /// The consumer that NACKed it, tried last.
    avoid: Option<(ConnId, u32)>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// Round-robin position among the queue's consumers.
    next_consumer: usize,
}

struct Staged {
    frame: Frame,
    binary: bool,
}

/// The broker for one room: connection events and bytes go in with the time, [`Effect`]s come
/// out for the caller to carry out in order; durable state is mirrored through effects and
/// given back with the `restore_*` methods after a wake.
pub struct Broker {
    config: Config,
    auth: Box<dyn Authenticator>,
    conns: BTreeMap<ConnId, Connection>,
    /// Destination → its subscriptions `(connection, handle)`, in subscription order.
    index: HashMap<String, Vec<(ConnId, u32)>>,
    last_message_id: u64,
    queues: BTreeMap<String, Queue>,
    /// Queue messages delivered to a client-ack subscription and not yet acknowledged.
    in_flight: HashMap<u64, Message>,
    staged: BTreeMap<(ConnId, String), Vec<Staged>>,
    now_ms: u64,
    out: Vec<Effect>,
}

impl Broker {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            auth: Box::new(AllowAll),
            conns: BTreeMap::new(),
            index: HashMap::new(),
            last_message_id: 0,
            queues: BTreeMap::new(),
            in_flight: HashMap::new(),
            staged: BTreeMap::new(),
            now_ms: 0,
            out: Vec::new(),
        }
    }

    /// Replaces the authentication hook (default: everyone may connect).
    pub fn with_authenticator(mut self, auth: Box<dyn Authenticator>) -> Self {
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

    // ---- events -------------------------------------------------------------------------

    /// A WebSocket was accepted. The client must send CONNECT within `connect_timeout_ms`.
    pub fn open(&mut self, conn: ConnId, now_ms: u64) -> Vec<Effect> {
        self.now_ms = now_ms;
        self.insert_connection(Session::new(conn), now_ms);
        self.save(conn);
        self.take()
    }

    /// Bytes arrived on a connection (one WebSocket message; `binary` if it was a binary one).
    ///
    /// Frames before a bad one take effect; the bad one gets an ERROR and the connection closes.
    pub fn receive(&mut self, conn: ConnId, data: &[u8], binary: bool, now_ms: u64) -> Vec<Effect> {
        self.now_ms = now_ms;
        let Some(connection) = self.conns.get_mut(&conn) else {
            return Vec::new();
        };
        connection.last_received_ms = now_ms;
        connection.decoder.push(data);
        // A DISCONNECT or an error removes the connection, which ends the loop.
        while let Some(connection) = self.conns.get_mut(&conn) {
            match connection.decoder.next_item() {
                Ok(None) => break,
                Ok(Some(Decoded::HeartBeat)) => {}
                Ok(Some(Decoded::Frame(frame))) => {
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
        self.take()
    }

    /// The connection's socket closed or failed: forget it, requeue its unacknowledged queue
    /// messages, abort its transactions, and tell presence subscribers it left.
    pub fn close(&mut self, conn: ConnId, now_ms: u64) -> Vec<Effect> {
        self.now_ms = now_ms;
        self.remove_connection(conn);
        self.take()
    }

    /// The client's heart-beat was answered without waking us (WebSocket auto-response) at
    /// `at_ms`: it counts as traffic in both directions.
    pub fn note_heart_beat(&mut self, conn: ConnId, at_ms: u64) {
        if let Some(connection) = self.conns.get_mut(&conn) {
            connection.last_received_ms = connection.last_received_ms.max(at_ms);
            connection.last_sent_ms = connection.last_sent_ms.max(at_ms);
        }
    }

    /// Time passed: send heart-beats that are due, close connections that went silent or never
    /// sent CONNECT.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Effect> {
        self.now_ms = now_ms;
        let mut failed = Vec::new();
        for (&conn, c) in &mut self.conns {
            let hb = c.session.heart_beat;
            match c.session.phase {
                Phase::AwaitingConnect => {
                    if now_ms >= c.opened_ms + self.config.connect_timeout_ms {
                        failed.push((
                            conn,
                            ProtocolError::new(
                                "CONNECT timeout",
                                "no CONNECT frame arrived in time",
                            ),
                        ));
                    }
                }
                Phase::Connected => {
                    let rx = u64::from(hb.receive_ms);
                    if rx > 0 && now_ms >= c.last_received_ms + rx * HEART_BEAT_GRACE {
                        failed.push((
                            conn,
                            ProtocolError::new(
                                "heart-beat timeout",
                                format!("nothing received for {} ms; heart-beats were due every {rx} ms", now_ms - c.last_received_ms),
                            ),
                        ));
                        continue;
                    }
                    let tx = u64::from(hb.send_ms);
                    let echoed = self.config.heart_beats_echoed && hb.echoes_cover_sending();
                    if tx > 0 && !echoed && now_ms >= c.last_sent_ms + tx {
                        c.last_sent_ms = now_ms;
                        self.out.push(Effect::Send {
                            conn,
                            bytes: b"\n".to_vec(),
                            binary: false,
                        });
                    }
                }
            }
        }
        for (conn, error) in failed {
            self.fail(conn, error);
        }
        self.take()
    }

    /// When [`Broker::tick`] next has work: a heart-beat due or a deadline passing.
    pub fn next_deadline(&self) -> Option<u64> {
        let deadlines = self.deadlines();
        deadlines.send.into_iter().chain(deadlines.liveness).min()
    }

    /// The next deadlines, split by kind so the caller can schedule them differently.
    pub fn deadlines(&self) -> Deadlines {
        let mut deadlines = Deadlines::default();
        let earliest =
            |slot: &mut Option<u64>, at: u64| *slot = Some(slot.map_or(at, |t| t.min(at)));
        for c in self.conns.values() {
            let hb = c.session.heart_beat;
            match c.session.phase {
                Phase::AwaitingConnect => earliest(
                    &mut deadlines.send,
                    c.opened_ms + self.config.connect_timeout_ms,
                ),
                Phase::Connected => {
                    let echoed = self.config.heart_beats_echoed && hb.echoes_cover_sending();
                    if hb.send_ms > 0 && !echoed {
                        earliest(&mut deadlines.send, c.last_sent_ms + u64::from(hb.send_ms));
                    }
                    if hb.receive_ms > 0 {
                        let silent_until =
                            c.last_received_ms + u64::from(hb.receive_ms) * HEART_BEAT_GRACE;
                        earliest(&mut deadlines.liveness, silent_until);
                    }
                }
            }
        }
        deadlines
    }

    /// Bytes of a frame that has only partly arrived on a connection.
    pub fn partial_frame(&self, conn: ConnId) -> &[u8] {
        self.conns
            .get(&conn)
            .map(|c| c.decoder.pending())
            .unwrap_or_default()
    }

    /// Gives back a partial frame persisted before the room was evicted.
    pub fn restore_partial_frame(&mut self, conn: ConnId, bytes: &[u8]) {
        if let Some(connection) = self.conns.get_mut(&conn) {
            connection.decoder.push(bytes);
        }
    }

    /// Delivers history requested by an [`Effect::Replay`], oldest first, marked `replayed:true`.
    pub fn replay(
        &mut self,
        conn: ConnId,
        subscription: &str,
        mut messages: Vec<Message>,
    ) -> Vec<Effect> {
        messages.sort_by_key(|m| m.id);
        let handle = self
            .session(conn)
            .and_then(|s| s.subscription(subscription))
            .map(|s| s.handle);
        if let Some(handle) = handle {
            for message in &messages {
                self.deliver(&[(conn, handle)], message, Delivery::Replayed);
            }
        }
        self.take()
    }

    // ---- restoring after the room wakes -------------------------------------------------

    /// Re-adds a connection from its persisted session and rebuilds its routing entries.
    pub fn restore_session(&mut self, session: Session, now_ms: u64) {
        self.insert_connection(session, now_ms);
    }

    /// Sets the last message id given out (persisted by the caller).
    pub fn restore_last_message_id(&mut self, id: u64) {
        self.last_message_id = self.last_message_id.max(id);
    }

    /// Re-adds stored queue messages. Those a restored session holds unacknowledged are in
    /// flight; the rest wait for a consumer. Call after restoring every session.
    pub fn restore_queued(&mut self, mut messages: Vec<Message>) -> Vec<Effect> {
        messages.sort_by_key(|m| m.id);
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
        for message in messages {
            self.last_message_id = self.last_message_id.max(message.id);
            if held.contains(&message.id) {
                self.in_flight.insert(message.id, message);
            } else {
                names.insert(message.destination.clone());
                let queue = self.queues.entry(message.destination.clone()).or_default();
                // Held by no session, so never delivered (a requeued message is redelivered
                // only after the room wakes; the flag is not persisted).
                queue.waiting.push_back(Waiting {
                    message,
                    redelivered: false,
                    avoid: None,
                });
            }
        }
        for name in names {
            self.dispatch_queue(&name);
        }
        self.take()
    }

    /// Re-adds a frame staged in an open transaction.
    pub fn restore_staged(&mut self, conn: ConnId, transaction: &str, frame: Frame, binary: bool) {
        self.staged
            .entry((conn, transaction.to_owned()))
            .or_default()
            .push(Staged { frame, binary });
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
        self.dispatch_frame(conn, frame, binary)
            .map_err(|error| error.with_receipt(receipt.as_deref()))?;
        if let Some(receipt) = receipt {
            let reply = Frame::new(Command::Receipt).with_header("receipt-id", &receipt);
            self.send_frame(conn, &reply);
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
            destination::check_text("login", login, self.config.limits.max_id_bytes)?;
        }
        self.auth
            .authenticate(login, frame.header("passcode"))
            .map_err(|reason| ProtocolError::new("authentication failed", reason))?;
        let heart_beat = if version == Version::V1_0 {
            HeartBeat::default()
        } else {
            HeartBeat::negotiate(client_beat, self.config.heart_beat)
        };
        let Some(connection) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        connection.decoder.set_version(version);
        let session = &mut connection.session;
        session.phase = Phase::Connected;
        session.login = login.map(str::to_owned);
        session.heart_beat = heart_beat;
        let (sx, sy) = self.config.heart_beat;
        let connected = Frame::new(Command::Connected)
            .with_header("version", version.as_str())
            .with_header("heart-beat", &format!("{sx},{sy}"))
            .with_header("session", &session.session_id())
            .with_header("server", &self.config.server);
        let member = presence_member(session);
        self.save(conn);
        self.send_frame(conn, &connected);
        self.publish_presence(serde_json::json!({ "type": "join", "member": member }));
        Ok(())
    }

    fn on_send(&mut self, conn: ConnId, frame: Frame, binary: bool) -> Result<(), ProtocolError> {
        let destination = required(&frame, "destination")?.to_owned();
        let target = destination::parse_send(&destination, &self.config.limits)?;
        if let Some(transaction) = frame.header("transaction") {
            let transaction = transaction.to_owned();
            return self.stage(conn, transaction, frame, binary);
        }
        let binary = binary || std::str::from_utf8(&frame.body).is_err();
        // The room stamps who sent it and when; a client cannot forge either.
        let sender = self
            .session(conn)
            .map(Session::identity)
            .unwrap_or_default();
        let mut headers = vec![
            ("sender".to_owned(), sender),
            ("timestamp".to_owned(), self.now_ms.to_string()),
        ];
        headers.extend(
            frame
                .headers
                .iter()
                .filter(|(name, _)| !RESERVED_HEADERS.contains(&name.as_str()))
                .cloned(),
        );
        let mut message = Message {
            id: 0,
            destination: destination.clone(),
            headers,
            body: frame.body,
            binary,
        };
        match target {
            SendTarget::Topic(_) => {
                message.id = self.next_message_id();
                self.out.push(Effect::Archive(message.clone()));
                let subscribers = self.subscribers(&destination);
                self.deliver(&subscribers, &message, Delivery::Live);
            }
            SendTarget::Queue(_) => {
                message.id = self.next_message_id();
                self.out.push(Effect::Enqueue(message.clone()));
                let queue = self.queues.entry(destination.clone()).or_default();
                queue.waiting.push_back(Waiting {
                    message,
                    redelivered: false,
                    avoid: None,
                });
                self.dispatch_queue(&destination);
            }
            SendTarget::User {
                identity,
                subscribed_as,
            } => {
                message.id = self.next_message_id();
                message.destination = subscribed_as.clone();
                let mut recipients = self.subscribers(&subscribed_as);
                recipients
                    .retain(|(to, _)| self.session(*to).is_some_and(|s| s.identity() == identity));
                self.deliver(&recipients, &message, Delivery::Live);
            }
        }
        Ok(())
    }

    fn on_subscribe(&mut self, conn: ConnId, frame: &Frame) -> Result<(), ProtocolError> {
        let limits = &self.config.limits;
        let destination = required(frame, "destination")?.to_owned();
        let target = destination::parse_subscribe(&destination, limits)?;
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
        destination::check_text("subscription id", &id, limits.max_id_bytes)?;
        let ack = AckMode::parse(frame.header("ack")).ok_or_else(|| {
            ProtocolError::new(
                "invalid ack mode",
                "ack must be auto, client or client-individual",
            )
        })?;
        let replay = parse_replay(frame, target)?;
        let max_subscriptions = limits.max_subscriptions;
        let session = self.session_mut(conn).ok_or_else(gone)?;
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
        self.index
            .entry(destination.clone())
            .or_default()
            .push((conn, handle));
        self.save(conn);
        match target {
            SubscribeTarget::Presence => self.send_presence_snapshot(conn, handle),
            SubscribeTarget::Queue => self.dispatch_queue(&destination),
            SubscribeTarget::Topic | SubscribeTarget::User => {}
        }
        if let Some(request) = replay {
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

    fn on_ack(&mut self, conn: ConnId, frame: Frame, kind: AckKind) -> Result<(), ProtocolError> {
        if let Some(transaction) = frame.header("transaction") {
            let transaction = transaction.to_owned();
            return self.stage(conn, transaction, frame, false);
        }
        let session = self.session(conn).ok_or_else(gone)?;
        let (message_id, handle) = match session.version {
            Version::V1_2 => parse_ack_id(required(&frame, "id")?)?,
            version => {
                let message_id = required(&frame, "message-id")?;
                let message_id = message_id
                    .parse::<u64>()
                    .map_err(|_| unknown_ack(message_id))?;
                let subscription = match (frame.header("subscription"), version) {
                    (Some(id), _) => Some(id),
                    (None, Version::V1_0) => None,
                    (None, _) => return Err(missing_header(frame.command, "subscription")),
                };
                let handle = match subscription {
                    Some(id) => {
                        Some(session.subscription(id).map(|s| s.handle).ok_or_else(|| {
                            ProtocolError::new(
                                "unknown subscription",
                                format!("no subscription with id {id:?}"),
                            )
                        })?)
                    }
                    None => None,
                };
                (message_id, handle)
            }
        };
        // An id that is not awaiting acknowledgement was already acknowledged, or belonged
        // to a topic message whose tracking gave way to newer ones: acknowledging is idempotent.
        let Some(target) = session
            .unacked
            .iter()
            .find(|u| u.message_id() == message_id && handle.is_none_or(|h| u.handle() == h))
            .copied()
        else {
            return Ok(());
        };
        let cumulative = session
            .subscription_by_handle(target.handle())
            .map(|s| s.ack)
            == Some(AckMode::Client);
        let covered = |u: &Unacked| {
            u.handle() == target.handle()
                && if cumulative {
                    u.message_id() <= message_id
                } else {
                    u.message_id() == message_id
                }
        };
        let settled: Vec<Unacked> = session
            .unacked
            .iter()
            .filter(|u| covered(u))
            .copied()
            .collect();
        if let Some(session) = self.session_mut(conn) {
            session.unacked.retain(|u| !covered(u));
        }
        self.save(conn);
        let mut requeue = Vec::new();
        for unacked in settled.iter().filter(|u| u.is_queue()) {
            match kind {
                AckKind::Ack => {
                    self.in_flight.remove(&unacked.message_id());
                    self.out.push(Effect::Dequeue {
                        message_id: unacked.message_id(),
                    });
                }
                AckKind::Nack => requeue.push(unacked.message_id()),
            }
        }
        self.requeue(requeue, Some((conn, target.handle())));
        self.dispatch_consumed_queues(conn);
        Ok(())
    }

    fn on_begin(&mut self, conn: ConnId, frame: &Frame) -> Result<(), ProtocolError> {
        let transaction = required(frame, "transaction")?;
        let limits = &self.config.limits;
        destination::check_text("transaction id", transaction, limits.max_id_bytes)?;
        let max = limits.max_transactions;
        let session = self.session_mut(conn).ok_or_else(gone)?;
        if session.transactions.iter().any(|t| t == transaction) {
            return Err(ProtocolError::new(
                "duplicate transaction",
                format!("transaction {transaction:?} is already open"),
            ));
        }
        if session.transactions.len() >= max {
            return Err(ProtocolError::new(
                "too many transactions",
                format!("a connection may have at most {max} open transactions (max_transactions)"),
            ));
        }
        session.transactions.push(transaction.to_owned());
        self.save(conn);
        Ok(())
    }

    fn on_commit(&mut self, conn: ConnId, frame: &Frame) -> Result<(), ProtocolError> {
        let transaction = self.end_transaction(conn, frame)?;
        let staged = self.staged.remove(&(conn, transaction)).unwrap_or_default();
        for Staged { mut frame, binary } in staged {
            // The staged frame was validated and receipted when it arrived; now it takes effect.
            frame
                .headers
                .retain(|(name, _)| name != "transaction" && name != "receipt");
            self.dispatch_frame(conn, frame, binary)?;
        }
        Ok(())
    }

    fn on_abort(&mut self, conn: ConnId, frame: &Frame) -> Result<(), ProtocolError> {
        let transaction = self.end_transaction(conn, frame)?;
        self.staged.remove(&(conn, transaction));
        Ok(())
    }

    /// Closes the transaction named by a COMMIT or ABORT and returns its id.
    fn end_transaction(&mut self, conn: ConnId, frame: &Frame) -> Result<String, ProtocolError> {
        let transaction = required(frame, "transaction")?.to_owned();
        let session = self.session_mut(conn).ok_or_else(gone)?;
        let before = session.transactions.len();
        session.transactions.retain(|t| *t != transaction);
        if session.transactions.len() == before {
            return Err(unknown_transaction(&transaction));
        }
        self.save(conn);
        self.out.push(Effect::Unstage {
            conn,
            transaction: transaction.clone(),
        });
        Ok(transaction)
    }

    fn stage(
        &mut self,
        conn: ConnId,
        transaction: String,
        frame: Frame,
        binary: bool,
    ) -> Result<(), ProtocolError> {
        let session = self.session(conn).ok_or_else(gone)?;
        if !session.transactions.contains(&transaction) {
            return Err(unknown_transaction(&transaction));
        }
        let max = self.config.limits.max_transaction_frames;
        let staged = self.staged.entry((conn, transaction.clone())).or_default();
        if staged.len() >= max {
            return Err(ProtocolError::new(
                "transaction too large",
                format!("a transaction may hold at most {max} frames (max_transaction_frames)"),
            ));
        }
        staged.push(Staged {
            frame: frame.clone(),
            binary,
        });
        self.out.push(Effect::Stage {
            conn,
            transaction,
            frame,
            binary,
        });
        Ok(())
    }

    // ---- delivery ----------------------------------------------------------------------

    fn subscribers(&self, destination: &str) -> Vec<(ConnId, u32)> {
        self.index.get(destination).cloned().unwrap_or_default()
    }

    /// Sends one MESSAGE to each target subscription, tracking it where the subscription
    /// acknowledges. Targets whose frames are byte-identical (same version and subscription id,
    /// no per-session `ack` id) share one encoding and one [`Effect::SendMany`]: stomp.js names
    /// every client's first subscription `sub-0`, so a large fan-out encodes a handful of frames.
    fn deliver(&mut self, targets: &[(ConnId, u32)], message: &Message, delivery: Delivery) {
        let max_unacked = self.config.limits.max_unacked;
        let now = self.now_ms;
        let is_queue = matches!(delivery, Delivery::Queue { .. });
        let mut groups: Vec<(FrameKey, Vec<ConnId>)> = Vec::new();
        // Keyed by frame shape, then subscription id, so a repeat target clones nothing.
        let mut group_of: HashMap<(Version, Option<u32>), HashMap<String, usize>> = HashMap::new();
        let mut tracked_by = Vec::new();
        for &(conn, handle) in targets {
            let Some(connection) = self.conns.get_mut(&conn) else {
                continue;
            };
            let session = &mut connection.session;
            let Some(subscription) = session.subscription_by_handle(handle) else {
                continue;
            };
            let tracked = subscription.ack != AckMode::Auto;
            let ack_handle = (session.version == Version::V1_2 && tracked).then_some(handle);
            let by_id = group_of.entry((session.version, ack_handle)).or_default();
            match by_id.get(subscription.id.as_str()) {
                Some(&group) => groups[group].1.push(conn),
                None => {
                    by_id.insert(subscription.id.clone(), groups.len());
                    let key = FrameKey {
                        version: session.version,
                        subscription: subscription.id.clone(),
                        ack_handle,
                    };
                    groups.push((key, vec![conn]));
                }
            }
            connection.last_sent_ms = now;
            if tracked {
                if !is_queue && session.unacked.len() >= max_unacked {
                    // Topic messages are never redelivered, so the oldest topic tracking gives way.
                    if let Some(oldest) = session.unacked.iter().position(|u| !u.is_queue()) {
                        session.unacked.remove(oldest);
                    }
                }
                if is_queue || session.unacked.len() < max_unacked {
                    session.unacked.push(Unacked(message.id, handle, is_queue));
                }
                tracked_by.push(conn);
            }
        }
        let binary = message.binary;
        for (key, conns) in groups {
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
        for conn in tracked_by {
            self.save(conn);
        }
    }

    /// Hands waiting messages of a queue to its consumers, round-robin, while any has room.
    fn dispatch_queue(&mut self, name: &str) {
        loop {
            let Some(queue) = self.queues.get(name) else {
                return;
            };
            let Some(front) = queue.waiting.front() else {
                // An idle queue keeps its round-robin position while it has consumers.
                if !self.index.contains_key(name) {
                    self.queues.remove(name);
                }
                return;
            };
            let consumers = self.subscribers(name);
            if consumers.is_empty() {
                return;
            }
            let start = queue.next_consumer % consumers.len();
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
            queue.next_consumer = position + 1;
            let Some(waiting) = queue.waiting.pop_front() else {
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
                self.out.push(Effect::Dequeue {
                    message_id: waiting.message.id,
                });
            } else {
                self.in_flight.insert(waiting.message.id, waiting.message);
            }
        }
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

    /// Puts in-flight queue messages back at the front of their queues, in id order, and
    /// dispatches them (to another consumer than `avoid` when there is one).
    fn requeue(&mut self, mut message_ids: Vec<u64>, avoid: Option<(ConnId, u32)>) {
        message_ids.sort_unstable();
        let mut names = BTreeSet::new();
        for id in message_ids.into_iter().rev() {
            if let Some(message) = self.in_flight.remove(&id) {
                names.insert(message.destination.clone());
                let queue = self.queues.entry(message.destination.clone()).or_default();
                queue.waiting.push_front(Waiting {
                    message,
                    redelivered: true,
                    avoid,
                });
            }
        }
        for name in names {
            self.dispatch_queue(&name);
        }
    }

    /// After a connection freed room (ACK, NACK), offers it the queues it consumes.
    fn dispatch_consumed_queues(&mut self, conn: ConnId) {
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

    fn send_presence_snapshot(&mut self, conn: ConnId, handle: u32) {
        let members: Vec<_> = self
            .conns
            .values()
            .filter(|c| c.session.phase == Phase::Connected)
            .map(|c| presence_member(&c.session))
            .collect();
        let message =
            self.presence_message(serde_json::json!({ "type": "members", "members": members }));
        self.deliver(&[(conn, handle)], &message, Delivery::Live);
    }

    fn publish_presence(&mut self, event: serde_json::Value) {
        let subscribers = self.subscribers(PRESENCE);
        if subscribers.is_empty() {
            return;
        }
        let message = self.presence_message(event);
        self.deliver(&subscribers, &message, Delivery::Live);
    }

    fn presence_message(&mut self, body: serde_json::Value) -> Message {
        Message {
            id: self.next_message_id(),
            destination: PRESENCE.to_owned(),
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: body.to_string().into_bytes(),
            binary: false,
        }
    }

    // ---- connections -------------------------------------------------------------------

    fn insert_connection(&mut self, session: Session, now_ms: u64) {
        let conn = session.conn;
        self.remove_connection(conn);
        let mut decoder = Decoder::new(self.config.limits.clone());
        if session.phase == Phase::Connected {
            decoder.set_version(session.version);
        }
        for subscription in &session.subscriptions {
            self.index
                .entry(subscription.destination.clone())
                .or_default()
                .push((conn, subscription.handle));
        }
        self.conns.insert(
            conn,
            Connection {
                session,
                decoder,
                opened_ms: now_ms,
                last_received_ms: now_ms,
                last_sent_ms: now_ms,
            },
        );
    }

    fn remove_connection(&mut self, conn: ConnId) {
        let Some(connection) = self.conns.remove(&conn) else {
            return;
        };
        let session = connection.session;
        for subscription in &session.subscriptions {
            self.unindex(&subscription.destination, conn, subscription.handle);
        }
        for transaction in &session.transactions {
            self.staged.remove(&(conn, transaction.clone()));
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
                serde_json::json!({ "type": "leave", "member": presence_member(&session) }),
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

    fn unindex(&mut self, destination: &str, conn: ConnId, handle: u32) {
        if let Some(entries) = self.index.get_mut(destination) {
            entries.retain(|entry| *entry != (conn, handle));
            if entries.is_empty() {
                self.index.remove(destination);
                if self
                    .queues
                    .get(destination)
                    .is_some_and(|q| q.waiting.is_empty())
                {
                    self.queues.remove(destination);
                }
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
            code: 1002,
            reason,
        });
        self.remove_connection(conn);
    }

    // ---- helpers -----------------------------------------------------------------------

    fn send_frame(&mut self, conn: ConnId, frame: &Frame) {
        let Some(connection) = self.conns.get_mut(&conn) else {
            return;
        };
        connection.last_sent_ms = self.now_ms;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckKind {
    Ack,
    Nack,
}

/// How a message reaches a subscription, which decides its extra headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Live,
    Replayed,
    Queue { redelivered: bool },
}

/// What makes one subscriber's MESSAGE frame differ from another's.
#[derive(Debug)]
struct FrameKey {
    version: Version,
    subscription: String,
    /// The subscription's handle, when the frame carries a STOMP 1.2 `ack` id.
    ack_handle: Option<u32>,
}

/// Serializes a MESSAGE for one subscription directly, without building a [`Frame`]: this is
/// the fan-out hot path.
fn encode_message(message: &Message, key: &FrameKey, delivery: Delivery) -> Vec<u8> {
    let escaping = Some(key.version);
    let mut out = Vec::with_capacity(message.body.len() + 160 + message.destination.len());
    out.extend_from_slice(b"MESSAGE\n");
    write_header(&mut out, "subscription", &key.subscription, escaping);
    write_header(&mut out, "message-id", &message.id.to_string(), escaping);
    write_header(&mut out, "destination", &message.destination, escaping);
    if let Some(handle) = key.ack_handle {
        write_header(
            &mut out,
            "ack",
            &format!("{}-{handle}", message.id),
            escaping,
        );
    }
    match delivery {
        Delivery::Queue { redelivered: true } => {
            write_header(&mut out, "redelivered", "true", escaping)
        }
        Delivery::Replayed => write_header(&mut out, "replayed", "true", escaping),
        Delivery::Live | Delivery::Queue { redelivered: false } => {}
    }
    for (name, value) in &message.headers {
        write_header(&mut out, name, value, escaping);
    }
    write_body(&mut out, &message.body);
    out
}

/// Parses a STOMP 1.2 `ack` id as we issue them, `{message-id}-{subscription handle}`, or a
/// bare message id (which some clients send instead): then any subscription matches.
fn parse_ack_id(id: &str) -> Result<(u64, Option<u32>), ProtocolError> {
    let invalid = || unknown_ack(id);
    match id.split_once('-') {
        Some((message_id, handle)) => Ok((
            message_id.parse().map_err(|_| invalid())?,
            Some(handle.parse().map_err(|_| invalid())?),
        )),
        None => Ok((id.parse().map_err(|_| invalid())?, None)),
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

fn presence_member(session: &Session) -> serde_json::Value {
    serde_json::json!({ "session": session.session_id(), "login": session.login })
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

fn unknown_ack(id: &str) -> ProtocolError {
    ProtocolError::new(
        "invalid ack id",
        format!("{id:?} is not an id this server issued"),
    )
}

fn unknown_transaction(transaction: &str) -> ProtocolError {
    ProtocolError::new(
        "unknown transaction",
        format!("transaction {transaction:?} is not open; send BEGIN first"),
    )
}

fn gone() -> ProtocolError {
    ProtocolError::new("not connected", "the connection is closed")
}
