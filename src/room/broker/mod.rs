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
mod config;
pub(crate) mod connect;
mod connections;
mod deadlines;
mod delivery;
mod effects;
mod idempotency;
mod presence;
mod publish;
mod queues;
mod restore;
mod subscribe;
pub(crate) mod transactions;

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::auth::{authorization_credentials, AllowAll, Authenticator, ConnectRequest};
use super::budget::{Budget, HistoryUsage, Usage};
use super::log::{CloseReason, LogEvent};
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
pub use config::Config;
pub use effects::{Deadlines, Effect, ReplayRequest};
pub use idempotency::{IdempotencyKey, IDEMPOTENCY_HEADER, MAX_IDEMPOTENCY_KEY_BYTES};
pub use publish::Published;
pub use queues::QueuedMessage;

/// History is trimmed when a destination holds this many messages more than `history_limit`,
/// so trimming costs one statement per this many messages; replay never returns the extra ones.
pub const TRIM_EVERY: u32 = 32;

/// A peer that promised heart-beats every `n` ms is declared dead after `n * GRACE` ms of silence.
pub const HEART_BEAT_GRACE: u64 = 2;

/// Headers a client may not set on a SEND: the broker sets them on each MESSAGE.
const RESERVED_HEADERS: [&str; 15] = [
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
    "replay-incomplete",
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

    /// Who sent a message, as the room stamped it: its `sender` and whether it was verified.
    pub fn stamped_on(message: &Message) -> Option<(&str, bool)> {
        let mut sender = None;
        let mut verified = false;
        for (name, value) in &message.headers {
            match name.as_str() {
                "sender" if sender.is_none() => sender = Some(value.as_str()),
                "sender-verified" => verified = value == "true",
                _ => {}
            }
        }
        sender.map(|sender| (sender, verified))
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
    /// Idempotency keys of recent publishes (see [`idempotency`]).
    keys: idempotency::Keys,
    /// The id of the message the frame being handled published, for its RECEIPT.
    published: Option<u64>,
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
            keys: idempotency::Keys::default(),
            published: None,
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

    /// How many connections are open, without walking them: placement asks on every upgrade.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
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
        let session = Session::new(conn, peer, now_ms);
        self.out.push(Effect::Log(LogEvent::SocketOpened {
            conn,
            transport: if session.sockjs {
                super::log::Transport::SockJs
            } else {
                super::log::Transport::WebSocket
            },
            address: session.address.clone(),
        }));
        self.insert_connection(session);
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
        let per_address = self.config.max_connections_per_address as usize;
        let from_address = address.filter(|_| per_address > 0).map(|address| {
            self.conns
                .values()
                .filter(|c| c.session.address.as_deref() == Some(address))
                .count()
        });
        connection_refusal(
            self.config.max_connections as usize,
            per_address,
            self.conns.len(),
            from_address,
        )
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
        self.end_connection(conn, CloseReason::SocketClosed);
        self.take()
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
        self.published = None;
        let before = self.out.len();
        self.admit_frame(conn, &frame)
            .and_then(|()| self.dispatch_frame(conn, frame, binary))
            .map_err(|error| error.with_receipt(receipt.as_deref()))?;
        let published = self.published.take().filter(|_| command == Command::Send);
        // A SUBSCRIBE that replays history is acknowledged after its replay, by the RECEIPT
        // [`Broker::replay`] sends (which says whether the replay was complete).
        let replay =
            self.out
                .get_mut(before..)
                .into_iter()
                .flatten()
                .find_map(|effect| match effect {
                    Effect::Replay {
                        conn: to, receipt, ..
                    } if *to == conn => Some(receipt),
                    _ => None,
                });
        let receipt = match replay {
            Some(slot) => {
                *slot = receipt;
                None
            }
            None => receipt,
        };
        if let Some(receipt) = receipt {
            let mut reply = Frame::new(Command::Receipt).with_header("receipt-id", &receipt);
            // A SEND's RECEIPT names the message it published (the original, for a repeat).
            if let Some(id) = published {
                reply = reply.with_header("message-id", &id.to_string());
            }
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
            self.end_connection(conn, CloseReason::Disconnect);
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

pub(crate) fn required<'a>(frame: &'a Frame, name: &str) -> Result<&'a str, ProtocolError> {
    frame
        .header(name)
        .ok_or_else(|| missing_header(frame.command, name))
}

pub(crate) fn missing_header(command: Command, name: &str) -> ProtocolError {
    ProtocolError::new(
        format!("missing {name} header"),
        format!("{command} frames must carry a {name} header"),
    )
}

pub(crate) fn gone() -> ProtocolError {
    ProtocolError::new("not connected", "the connection is closed")
}

/// Why one more connection is refused, if it is, by the caps (`max_connections`,
/// `max_connections_per_address`; 0: none) and what is held: `held` connections in all,
/// `from_address` from the connecting client's address (when it has one). The room's sockets
/// and a gateway object's are refused in the same words.
pub fn connection_refusal(
    max: usize,
    per_address: usize,
    held: usize,
    from_address: Option<usize>,
) -> Option<ProtocolError> {
    if max > 0 && held >= max {
        return Some(
            ProtocolError::new(
                "room full",
                format!("the room holds its maximum of {max} connections (max_connections); try again later"),
            )
            .with_close_code(crate::room::budget::TRY_AGAIN_LATER),
        );
    }
    let from_address = from_address.filter(|_| per_address > 0)?;
    (from_address >= per_address).then(|| {
        ProtocolError::new(
            "too many connections",
            format!("the room holds its maximum of {per_address} connections from your address (max_connections_per_address); close one or try again later"),
        )
        .with_close_code(crate::room::budget::TRY_AGAIN_LATER)
    })
}
