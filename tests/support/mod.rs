//! A simulated room for broker tests: many connections in memory, time stepped by hand, and
//! every effect carried out the way the Durable Object does (sessions saved as JSON, history
//! and queue stores kept, replays answered), plus a simulated hibernation.

#![allow(dead_code)]

use std::collections::BTreeMap;

use stomp_rooms::stomp::{
    Broker, Command, Config, ConnId, Decoded, Decoder, Effect, Frame, Limits, Message,
    ReplayRequest, Session, Version,
};

/// The most a WebSocket attachment holds.
pub const ATTACHMENT_LIMIT: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct Received {
    /// `None` for a heart-beat EOL.
    pub frame: Option<Frame>,
    pub binary: bool,
}

pub struct Room {
    pub broker: Broker,
    pub config: Config,
    pub now: u64,
    pub received: BTreeMap<ConnId, Vec<Received>>,
    decoders: BTreeMap<ConnId, Decoder>,
    pub closed: BTreeMap<ConnId, (u16, String)>,
    pub sessions: BTreeMap<ConnId, String>,
    pub history: Vec<Message>,
    pub queue_store: BTreeMap<u64, Message>,
    pub staged: BTreeMap<(ConnId, String), Vec<(Frame, bool)>>,
    pub log: Vec<Effect>,
}

impl Room {
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Self {
        Self::with_broker(Broker::new(config.clone()), config)
    }

    pub fn with_broker(broker: Broker, config: Config) -> Self {
        Self {
            broker,
            config,
            now: 1_000,
            received: BTreeMap::new(),
            decoders: BTreeMap::new(),
            closed: BTreeMap::new(),
            sessions: BTreeMap::new(),
            history: Vec::new(),
            queue_store: BTreeMap::new(),
            staged: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    pub fn open(&mut self, conn: ConnId) {
        let effects = self.broker.open(conn, self.now);
        self.apply(effects);
    }

    /// Opens and connects with STOMP 1.2 and the given extra CONNECT headers ("k:v\n" lines).
    pub fn connect(&mut self, conn: ConnId, extra: &str) -> Frame {
        self.connect_with(conn, &format!("accept-version:1.2\nhost:room\n{extra}"))
    }

    /// Opens and connects with exactly these CONNECT headers; returns the reply frame.
    pub fn connect_with(&mut self, conn: ConnId, headers: &str) -> Frame {
        self.open(conn);
        let headers = if headers.is_empty() || headers.ends_with('\n') {
            headers.to_owned()
        } else {
            format!("{headers}\n")
        };
        self.raw(conn, format!("CONNECT\n{headers}\n\0").as_bytes());
        let frames = self.take(conn);
        assert_eq!(frames.len(), 1, "expected one reply to CONNECT: {frames:?}");
        frames.into_iter().next().unwrap()
    }

    /// Feeds raw bytes as one text WebSocket message.
    pub fn raw(&mut self, conn: ConnId, bytes: &[u8]) {
        let effects = self.broker.receive(conn, bytes, false, self.now);
        self.apply(effects);
    }

    /// Feeds raw bytes as one binary WebSocket message.
    pub fn raw_binary(&mut self, conn: ConnId, bytes: &[u8]) {
        let effects = self.broker.receive(conn, bytes, true, self.now);
        self.apply(effects);
    }

    /// Sends a frame given as `"COMMAND\nheader:value\n..."` (no blank line, no NUL) and a body.
    pub fn frame(&mut self, conn: ConnId, head: &str, body: &str) {
        self.raw(conn, format!("{head}\n\n{body}\0").as_bytes());
    }

    pub fn subscribe(&mut self, conn: ConnId, id: &str, destination: &str) {
        self.frame(
            conn,
            &format!("SUBSCRIBE\nid:{id}\ndestination:{destination}"),
            "",
        );
    }

    pub fn publish(&mut self, conn: ConnId, destination: &str, body: &str) {
        self.frame(conn, &format!("SEND\ndestination:{destination}"), body);
    }

    pub fn close(&mut self, conn: ConnId) {
        let effects = self.broker.close(conn, self.now);
        self.apply(effects);
    }

    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
        let effects = self.broker.tick(self.now);
        self.apply(effects);
    }

    /// Drains and returns the frames a connection received (heart-beats dropped).
    pub fn take(&mut self, conn: ConnId) -> Vec<Frame> {
        self.take_received(conn)
            .into_iter()
            .filter_map(|r| r.frame)
            .collect()
    }

    pub fn take_received(&mut self, conn: ConnId) -> Vec<Received> {
        self.received.remove(&conn).unwrap_or_default()
    }

    /// Drains and returns the bodies of the MESSAGE frames a connection received.
    pub fn bodies(&mut self, conn: ConnId) -> Vec<String> {
        self.take(conn)
            .into_iter()
            .map(|f| {
                assert_eq!(f.command, Command::Message, "{f:?}");
                String::from_utf8(f.body).unwrap()
            })
            .collect()
    }

    pub fn is_open(&self, conn: ConnId) -> bool {
        self.broker.session(conn).is_some()
    }

    /// Carries out effects the way the room object does.
    pub fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            self.log.push(effect.clone());
            match effect {
                Effect::Send {
                    conn,
                    bytes,
                    binary,
                } => self.client_receives(conn, &bytes, binary),
                Effect::SendMany {
                    conns,
                    bytes,
                    binary,
                } => {
                    for conn in conns {
                        self.client_receives(conn, &bytes, binary);
                    }
                }
                Effect::Close { conn, code, reason } => {
                    self.closed.insert(conn, (code, reason));
                    self.sessions.remove(&conn);
                }
                Effect::SaveSession { conn } => {
                    let session = self.broker.session(conn).expect("saved session exists");
                    let json = session.to_json();
                    assert!(
                        json.len() <= ATTACHMENT_LIMIT,
                        "session of {} bytes",
                        json.len()
                    );
                    self.sessions.insert(conn, json);
                }
                Effect::Archive(message) => self.history.push(message),
                Effect::Enqueue(message) => {
                    assert!(
                        self.queue_store.insert(message.id, message).is_none(),
                        "enqueued twice"
                    );
                }
                Effect::Dequeue { message_id } => {
                    assert!(
                        self.queue_store.remove(&message_id).is_some(),
                        "dequeued unknown {message_id}"
                    );
                }
                Effect::Replay {
                    conn,
                    subscription,
                    destination,
                    request,
                } => {
                    let matching = self.history.iter().filter(|m| m.destination == destination);
                    let messages: Vec<Message> = match request {
                        ReplayRequest::After(id) => {
                            matching.filter(|m| m.id > id).cloned().collect()
                        }
                        ReplayRequest::Last(n) => {
                            let all: Vec<Message> = matching.cloned().collect();
                            all[all.len().saturating_sub(n as usize)..].to_vec()
                        }
                    };
                    let effects = self.broker.replay(conn, &subscription, messages);
                    self.apply(effects);
                }
                Effect::Stage {
                    conn,
                    transaction,
                    frame,
                    binary,
                } => {
                    self.staged
                        .entry((conn, transaction))
                        .or_default()
                        .push((frame, binary));
                }
                Effect::Unstage { conn, transaction } => {
                    self.staged.remove(&(conn, transaction));
                }
            }
        }
    }

    /// A client's end of the socket: decodes what the room sent it.
    fn client_receives(&mut self, conn: ConnId, bytes: &[u8], binary: bool) {
        assert!(
            !self.closed.contains_key(&conn),
            "sent to closed connection {conn}"
        );
        let decoder = self
            .decoders
            .entry(conn)
            .or_insert_with(|| Decoder::new(Limits::default()));
        decoder.push(bytes);
        while let Some(item) = decoder
            .next_item()
            .expect("the server sent a malformed frame")
        {
            let frame = match item {
                Decoded::HeartBeat => None,
                Decoded::Frame(frame) => {
                    if frame.command == Command::Connected {
                        let version = frame.header("version").and_then(Version::parse);
                        decoder.set_version(version.unwrap_or(Version::V1_0));
                    }
                    Some(frame)
                }
            };
            self.received
                .entry(conn)
                .or_default()
                .push(Received { frame, binary });
        }
    }

    /// The room object is evicted and wakes up: a new broker is rebuilt from what was persisted.
    pub fn hibernate(&mut self) {
        let last_id = self.broker.last_message_id();
        let mut broker = Broker::new(self.config.clone());
        for json in self.sessions.values() {
            broker.restore_session(Session::from_json(json).expect("session JSON"), self.now);
        }
        broker.restore_last_message_id(last_id);
        for ((conn, transaction), frames) in &self.staged {
            for (frame, binary) in frames {
                broker.restore_staged(*conn, transaction, frame.clone(), *binary);
            }
        }
        self.broker = broker;
        let queued = self.queue_store.values().cloned().collect();
        let effects = self.broker.restore_queued(queued);
        self.apply(effects);
    }
}

/// One step of a random session, for the property tests and the broker fuzz target.
#[derive(Debug, Clone)]
pub enum Step {
    Open(ConnId),
    Bytes {
        conn: ConnId,
        bytes: Vec<u8>,
        binary: bool,
    },
    Close(ConnId),
    Tick(u64),
    Hibernate,
}

impl Room {
    /// Carries out a step; bytes for a connection that is not open are dropped, and opening
    /// an id again after it closed is allowed.
    pub fn step(&mut self, step: Step) {
        match step {
            Step::Open(conn) => {
                if !self.is_open(conn) {
                    self.closed.remove(&conn);
                    self.open(conn);
                }
            }
            Step::Bytes {
                conn,
                bytes,
                binary,
            } => {
                if self.is_open(conn) {
                    if binary {
                        self.raw_binary(conn, &bytes)
                    } else {
                        self.raw(conn, &bytes)
                    }
                }
            }
            Step::Close(conn) => self.close(conn),
            Step::Tick(ms) => self.advance(ms),
            Step::Hibernate => self.hibernate(),
        }
    }
}

/// A well-formed (if not always valid) client frame picked by three numbers, so random
/// sessions reach deep into the broker instead of stopping at the parser.
pub fn scripted_frame(template: u8, a: u8, b: u16) -> String {
    const DESTINATIONS: [&str; 7] = [
        "/topic/a",
        "/topic/b",
        "/queue/q",
        "/user/s1/x",
        "/user/x",
        "/presence",
        "/nope",
    ];
    const ACKS: [&str; 3] = ["auto", "client", "client-individual"];
    let destination = DESTINATIONS[usize::from(a) % DESTINATIONS.len()];
    let ack = ACKS[usize::from(a / 8) % ACKS.len()];
    let id = b % 4;
    let pick = a % 4;
    match template % 11 {
        0 => format!("CONNECT\naccept-version:1.{pick}\nheart-beat:{b},{a}\nlogin:u{pick}\n\n\0"),
        1 => format!(
            "SUBSCRIBE\nid:{id}\ndestination:{destination}\nack:{ack}\nreplay-last:{pick}\n\n\0"
        ),
        2 => format!("SEND\ndestination:{destination}\nreceipt:r{b}\n\nbody {b}\0"),
        3 => format!("SEND\ndestination:{destination}\ntransaction:{id}\ncontent-length:1\n\n\0\0"),
        4 => format!("ACK\nid:{b}-{pick}\nmessage-id:{b}\nsubscription:{id}\n\n\0"),
        5 => format!("NACK\nid:{b}-{pick}\nmessage-id:{b}\nsubscription:{id}\n\n\0"),
        6 => format!("BEGIN\ntransaction:{id}\n\n\0"),
        7 => format!("COMMIT\ntransaction:{id}\n\n\0"),
        8 => format!("ABORT\ntransaction:{id}\n\n\0"),
        9 => format!("UNSUBSCRIBE\nid:{id}\n\n\0"),
        _ => "DISCONNECT\nreceipt:bye\n\n\0".to_owned(),
    }
}
