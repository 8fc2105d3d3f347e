//! A simulated room for native tests: the real room engine over in-memory storage and sockets,
//! many clients, time stepped by hand, the platform's alarm, and eviction.
//!
//! Eviction drops the engine; the next event wakes a new one from what storage and the
//! sockets' kept sessions hold, exactly as the Durable Object does. Each rule test runs twice
//! (see [`room_test!`]): never evicted, and evicted after every step.

#![allow(dead_code)]

pub mod gateways;
pub mod http;
pub mod network;
pub mod tokens;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use stomp_rooms::relay::{GatewayAnswer, RoomAnswer, ToGateway, ToRoom};
use stomp_rooms::room::http::{HttpOutcome, HttpRequest, HttpResponse, ListenerId};
use stomp_rooms::room::members::Placement;
use stomp_rooms::room::testing::{MemorySockets, MemoryStorage, SocketCall};
use stomp_rooms::room::webhooks::Batch;
use stomp_rooms::room::{
    self, AlarmChange, AllowAll, Authenticator, Config, ConnId, Credentials, Failed, Host, Opened,
    Peer, Session, Settings,
};
use stomp_rooms::stomp::{Command, Decoded, Decoder, Frame, Limits, Message, Version};

/// The ERROR a client got: its `message` header and body.
pub fn error_of(frames: &[Frame]) -> (String, String) {
    let error = frames
        .iter()
        .find(|f| f.command == Command::Error)
        .unwrap_or_else(|| panic!("no ERROR among {frames:?}"));
    (
        error.header("message").unwrap_or_default().to_owned(),
        String::from_utf8_lossy(&error.body).into_owned(),
    )
}

/// When the simulated platform evicts the room from memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eviction {
    Never,
    /// After every event: every step starts from what storage and the sessions hold.
    EveryStep,
}

thread_local! {
    static EVICTION: Cell<Eviction> = const { Cell::new(Eviction::Never) };
}

/// Runs the test body with rooms evicted as `eviction` says.
pub fn with_eviction(eviction: Eviction, body: impl FnOnce()) {
    EVICTION.with(|e| e.set(eviction));
    body();
}

/// Declares a rule test twice: `kept_in_memory` and `evicted_after_every_step`.
#[macro_export]
macro_rules! room_test {
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn body() $body
            $(#[$meta])*
            #[test]
            fn kept_in_memory() {
                support::with_eviction(support::Eviction::Never, body);
            }
            $(#[$meta])*
            #[test]
            fn evicted_after_every_step() {
                support::with_eviction(support::Eviction::EveryStep, body);
            }
        }
    };
}

#[derive(Debug, Clone)]
pub struct Received {
    /// `None` for a heart-beat EOL.
    pub frame: Option<Frame>,
    pub binary: bool,
}

/// One WebSocket message a client received: how many frames it carried (heart-beats
/// counted), and whether it was binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketMessage {
    pub frames: usize,
    pub binary: bool,
}

/// The name of the room every test opens sockets to.
pub const ROOM: &str = "lobby";

pub struct SimulatedRoom {
    /// The room's host, built at the first event (after the settings and the hook are chosen).
    host: Option<Host>,
    pub store: MemoryStorage,
    pub sockets: MemorySockets,
    pub settings: Settings,
    auth: Option<Rc<dyn Authenticator>>,
    pub eviction: Eviction,
    pub now: u64,
    /// The alarm as the platform holds it: it survives eviction.
    pub alarm: Option<u64>,
    /// How many times the room asked the platform to set its alarm (each is a storage write).
    pub alarm_sets: usize,
    /// Test ids of clients → the room's connection ids.
    conns: BTreeMap<ConnId, ConnId>,
    /// The room's connection ids → test ids of clients.
    clients: BTreeMap<ConnId, ConnId>,
    pub received: BTreeMap<ConnId, Vec<Received>>,
    /// The WebSocket messages each plain client received, as messages (see
    /// [`take_messages`](Self::take_messages)).
    messages: BTreeMap<ConnId, Vec<SocketMessage>>,
    decoders: BTreeMap<ConnId, Decoder>,
    /// Events the room failed (storage refused a commit).
    pub failures: Vec<Failed>,
    /// The lines the room logged, as the edge prints them.
    pub logs: Vec<room::log::LogLine>,
    /// `STOMP_STATS_TOKEN`, as the edge reads it.
    pub stats_token: Option<String>,
    /// Clients of SockJS's `websocket` transport, and the SockJS frames each received.
    sockjs_clients: BTreeSet<ConnId>,
    pub sockjs_frames: BTreeMap<ConnId, Vec<String>>,
    /// Every webhook batch the alarm POSTed, in order (retries included).
    pub webhook_posts: Vec<Batch>,
    /// The webhook receiver's next answers (a status, or a failed POST); when none are
    /// scripted it answers 200 while `webhook_receiver_up`, and cannot be reached otherwise.
    pub webhook_answers: VecDeque<Result<u16, String>>,
    pub webhook_receiver_up: bool,
    /// The batches the receiver acknowledged (answered 2xx).
    pub webhook_delivered: Vec<Batch>,
    /// While set, the receiver keeps its answers: batches POSTed wait in `webhook_held` until
    /// the test answers them ([`answer_webhook`](Self::answer_webhook)).
    pub webhook_hold: bool,
    pub webhook_held: Vec<Batch>,
    /// The calls the room made to gateway objects, in order, not yet taken by the test.
    pub gateway_calls: Vec<(String, ToGateway)>,
    /// Within [`burst`](Self::burst): frames a busy room leaves waiting stay waiting until
    /// the burst ends, as they do while the runtime hands the room messages already queued.
    bursting: bool,
}

impl SimulatedRoom {
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Self {
        Self::with_settings(Settings {
            broker: config,
            ..Settings::default()
        })
    }

    pub fn with_settings(settings: Settings) -> Self {
        Self {
            host: None,
            store: MemoryStorage::default(),
            sockets: MemorySockets::default(),
            settings,
            auth: None,
            eviction: EVICTION.with(Cell::get),
            now: 1_000,
            alarm: None,
            alarm_sets: 0,
            conns: BTreeMap::new(),
            clients: BTreeMap::new(),
            received: BTreeMap::new(),
            messages: BTreeMap::new(),
            decoders: BTreeMap::new(),
            failures: Vec::new(),
            logs: Vec::new(),
            stats_token: None,
            sockjs_clients: BTreeSet::new(),
            sockjs_frames: BTreeMap::new(),
            webhook_posts: Vec::new(),
            webhook_answers: VecDeque::new(),
            webhook_receiver_up: true,
            webhook_delivered: Vec::new(),
            webhook_hold: false,
            webhook_held: Vec::new(),
            gateway_calls: Vec::new(),
            bursting: false,
        }
    }

    /// Rooms that accept only these login → passcode pairs.
    pub fn with_credentials(self, users: &[(&str, &str)]) -> Self {
        self.with_authenticator(Rc::new(Credentials {
            users: users
                .iter()
                .map(|(l, p)| (l.to_string(), p.to_string()))
                .collect(),
        }))
    }

    /// Rooms whose CONNECTs this hook decides.
    pub fn with_authenticator(mut self, auth: Rc<dyn Authenticator>) -> Self {
        self.auth = Some(auth);
        self
    }

    /// The room's connection id for a test's client id.
    pub fn conn(&self, client: ConnId) -> ConnId {
        self.conns.get(&client).copied().unwrap_or(ConnId::MAX)
    }

    /// Runs one event through the room's host (which wakes the engine first if it was
    /// evicted), then carries out the platform's part: the alarm it asked for, eviction, and
    /// the clients' decoding.
    fn event(
        &mut self,
        work: impl FnOnce(
            &mut room::RoomEngine,
            &mut MemoryStorage,
            &mut MemorySockets,
            u64,
        ) -> Result<(), Failed>,
    ) {
        let now = self.now;
        let (settings, auth) = (&self.settings, &self.auth);
        let host = self.host.get_or_insert_with(|| {
            let auth: Rc<dyn Authenticator> = auth.clone().unwrap_or_else(|| Rc::new(AllowAll));
            Host::new(settings.clone(), auth)
        });
        let turn = host.event(&mut self.store, &mut self.sockets, now, work);
        // The host's flush, as the edge's timer of 0 ms makes it: at once, unless the events
        // of a burst are still arriving.
        let flushed = (turn.sends_waiting && !self.bursting)
            .then(|| host.flush_sends(&mut self.sockets, now));
        self.absorb(turn);
        if let Some(flushed) = flushed {
            self.absorb(flushed);
        }
        // The runtime never evicts a room between messages it hands over back to back.
        if self.eviction == Eviction::EveryStep && !self.bursting {
            self.hibernate();
        }
        self.collect();
    }

    /// Carries out the platform's part of a turn: its logs, calls and alarm.
    fn absorb<T>(&mut self, turn: room::Turn<T>) {
        self.logs.extend(turn.logs);
        self.gateway_calls.extend(turn.calls);
        match turn.alarm {
            Some(AlarmChange::Set(at)) => {
                self.alarm = Some(at);
                self.alarm_sets += 1;
            }
            Some(AlarmChange::Delete) => self.alarm = None,
            None => {}
        }
        // On failure the engine has rebuilt itself from storage (see `Failed`).
        if let Err(failed) = turn.result {
            self.failures.push(failed);
        }
    }

    /// The host's flush of frames waiting, as the edge's timer makes it, and as the edge makes
    /// it before work that writes outside an event (a webhook's answer).
    fn flush_waiting(&mut self) {
        let waiting = self
            .host
            .as_ref()
            .and_then(Host::engine)
            .is_some_and(|e| e.sends_waiting());
        if let (true, Some(host)) = (waiting, self.host.as_mut()) {
            let flushed = host.flush_sends(&mut self.sockets, self.now);
            self.absorb(flushed);
        }
    }

    /// Runs `steps` as messages the runtime hands a busy room back to back: frames the room
    /// leaves waiting are sent when the burst ends, by the host's flush.
    pub fn burst(&mut self, steps: impl FnOnce(&mut Self)) {
        self.bursting = true;
        steps(self);
        self.bursting = false;
        self.flush_waiting();
        if self.eviction == Eviction::EveryStep {
            self.hibernate();
        }
        self.collect();
    }

    /// How many times the engine was built (first use and every wake).
    pub fn wakes(&self) -> u32 {
        self.host.as_ref().map_or(0, Host::wakes)
    }

    /// Evicts the room now. The platform evicts a room only after 10 s without events, so
    /// by then the alarm for its deferred history writes has fired: they are committed first.
    /// An open HTTP request (a long poll, an event stream) keeps the object awake, so a room
    /// with any is not evicted; nor is one with SockJS sessions over HTTP, whose clients come
    /// back within milliseconds (a session without them ends after 5 s, by the alarm).
    pub fn hibernate(&mut self) {
        // A flush still to come is a timer: it keeps the object awake too.
        let awake = |e: &room::RoomEngine| {
            e.open_requests() > 0
                || e.sockjs_sessions() > 0
                || e.gateway_calls_in_flight() > 0
                || e.sends_waiting()
        };
        if self.host.as_ref().and_then(Host::engine).is_some_and(awake) {
            return;
        }
        self.evict();
    }

    /// Evicts the room as the platform does after a quiet spell: what the alarm would have
    /// committed by then is committed, then the engine is dropped; sockets stay open.
    fn evict(&mut self) {
        if let Some(host) = self.host.as_mut() {
            if let Err(failed) = host.evict(&mut self.store) {
                self.failures.push(failed);
            }
        }
    }

    /// Restarts the object as a crash, an out-of-memory kill or a deploy does, at any moment:
    /// the engine is dropped with nothing flushed (writes still deferred are lost), and the
    /// platform closes every socket (their clients see 1006).
    pub fn restart(&mut self) {
        if let Some(host) = self.host.as_mut() {
            host.crash();
        }
        self.sockets.restart();
    }

    pub fn open(&mut self, client: ConnId) {
        self.open_from(client, None);
    }

    /// Opens a socket to the room `ROOM` from this client address.
    pub fn open_from(&mut self, client: ConnId, address: Option<&str>) {
        self.open_peer(
            client,
            Peer {
                room: ROOM.to_owned(),
                address: address.map(str::to_owned),
                sockjs: false,
            },
        );
    }

    /// Opens a socket of SockJS's `websocket` transport: the client sees the SockJS frames
    /// themselves in [`sockjs_frames`](Self::sockjs_frames), and the STOMP frames inside them
    /// as any client's.
    pub fn open_sockjs(&mut self, client: ConnId) {
        self.sockjs_clients.insert(client);
        self.open_peer(
            client,
            Peer {
                room: ROOM.to_owned(),
                address: None,
                sockjs: true,
            },
        );
    }

    fn open_peer(&mut self, client: ConnId, peer: Peer) {
        let mut opened = None;
        self.event(|engine, store, sockets, now| {
            opened = Some(engine.open(store, sockets, peer, now)?);
            Ok(())
        });
        let conn = match opened {
            Some(Opened::Accepted(conn)) => conn,
            Some(Opened::Refused {
                messages,
                code,
                reason,
            }) => self.sockets.refused(&messages, code, &reason),
            None => return,
        };
        self.conns.insert(client, conn);
        self.clients.insert(conn, client);
        // What the room sent while opening (a refusal) reaches the client too.
        self.collect();
    }

    /// An HTTP request to the room `ROOM`; `None` if the room failed it (storage).
    pub fn http(&mut self, mut request: HttpRequest) -> Option<HttpOutcome> {
        request.peer.room = ROOM.to_owned();
        let mut outcome = None;
        self.event(|engine, store, sockets, now| {
            outcome = Some(engine.http(store, sockets, &request, now)?);
            Ok(())
        });
        outcome
    }

    /// A request of a SockJS HTTP transport to the endpoint room `ROOM` (unless the request
    /// names another).
    pub fn sockjs(&mut self, mut request: HttpRequest) -> Option<HttpOutcome> {
        if request.peer.room.is_empty() {
            request.peer.room = ROOM.to_owned();
        }
        let mut outcome = None;
        self.event(|engine, store, sockets, now| {
            outcome = Some(engine.sockjs(store, sockets, &request, now)?);
            Ok(())
        });
        outcome
    }

    /// A long poll's wait ran out.
    pub fn http_timeout(&mut self, listener: ListenerId) -> HttpResponse {
        let mut response = None;
        self.event(|engine, _, _, now| {
            response = Some(engine.http_timeout(listener, now));
            Ok(())
        });
        response.expect("the room is awake while a request is open")
    }

    /// The client of an open request went away.
    pub fn http_closed(&mut self, listener: ListenerId) {
        self.sockets.gone_streams.insert(listener);
        self.event(|engine, _, _, now| {
            engine.http_closed(listener, now);
            Ok(())
        });
    }

    /// Something the room logs, as an event of its own (waking it).
    pub fn log_now(&mut self, event: room::log::LogEvent) {
        self.event(|engine, _, _, _| {
            engine.log_event(event);
            Ok(())
        });
    }

    /// The room's stats (waking it to ask).
    pub fn stats(&mut self) -> serde_json::Value {
        let mut stats = serde_json::Value::Null;
        self.event(|engine, _, _, _| {
            stats = engine.stats();
            Ok(())
        });
        stats
    }

    /// `GET /rooms/{room}/stats` with this request's credentials (and nothing of the platform's).
    pub fn stats_request(&mut self, mut request: HttpRequest) -> HttpResponse {
        request.peer.room = ROOM.to_owned();
        let mut answer = None;
        let stats_token = self.stats_token.clone();
        self.event(|engine, _, _, now| {
            let extra = serde_json::Map::new();
            answer = Some(engine.stats_request(&request, extra, stats_token.as_deref(), now));
            Ok(())
        });
        answer.expect("the room answered")
    }

    /// Drains the answers given to waiting long polls.
    pub fn answers(&mut self) -> Vec<(ListenerId, HttpResponse)> {
        let mut answers = Vec::new();
        self.sockets.log.retain(|call| match call {
            SocketCall::Answer { listener, response } => {
                answers.push((*listener, response.clone()));
                false
            }
            _ => true,
        });
        answers
    }

    /// Drains what went to an event stream, as text.
    pub fn streamed(&mut self, listener: ListenerId) -> String {
        self.stream_chunks(listener).concat()
    }

    /// Drains what went to an event stream, each write as its text.
    pub fn stream_chunks(&mut self, listener: ListenerId) -> Vec<String> {
        let mut chunks = Vec::new();
        self.sockets.log.retain(|call| match call {
            SocketCall::Stream {
                listener: to,
                bytes,
            } if *to == listener => {
                chunks.push(String::from_utf8_lossy(bytes).into_owned());
                false
            }
            _ => true,
        });
        chunks
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
    pub fn raw(&mut self, client: ConnId, bytes: &[u8]) {
        self.message(client, bytes, false);
    }

    /// Feeds raw bytes as one binary WebSocket message.
    pub fn raw_binary(&mut self, client: ConnId, bytes: &[u8]) {
        self.message(client, bytes, true);
    }

    fn message(&mut self, client: ConnId, bytes: &[u8], binary: bool) {
        let conn = self.conn(client);
        if !self.sockets.is_open(conn) {
            return;
        }
        self.event(|engine, store, sockets, now| {
            engine.receive(store, sockets, conn, bytes, binary, now)
        });
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

    /// The client closes its socket.
    pub fn close(&mut self, client: ConnId) {
        let conn = self.conn(client);
        if !self.sockets.is_open(conn) {
            return;
        }
        // The socket is still listed while its close is handled, as a hibernatable one is.
        self.event(|engine, store, sockets, now| engine.closed(store, sockets, conn, now));
        self.sockets.drop_socket(conn);
    }

    /// The client's heart-beat is answered by the transport, without waking the room.
    pub fn ping(&mut self, client: ConnId) {
        let conn = self.conn(client);
        self.sockets.ping(conn, self.now);
        self.collect();
    }

    /// Time passes; the platform's alarm fires whenever it is due on the way.
    pub fn advance(&mut self, ms: u64) {
        let until = self.now + ms;
        while let Some(at) = self.alarm.filter(|&at| at <= until) {
            self.now = self.now.max(at);
            self.alarm = None;
            // As the object's alarm handler: the alarm's event, then the webhook batch it
            // hands out POSTed outside it, then the answer as an event of its own. The object
            // is not evicted while its POST is under way.
            let mut batch = None;
            let eviction = std::mem::replace(&mut self.eviction, Eviction::Never);
            self.event(|engine, store, sockets, now| {
                engine.alarm(store, sockets, now)?;
                batch = engine.webhook_batch(store, now)?;
                Ok(())
            });
            self.eviction = eviction;
            match batch {
                Some(batch) => self.post_webhook(batch),
                None if eviction == Eviction::EveryStep => self.hibernate(),
                None => {}
            }
        }
        self.now = until;
    }

    /// The receiver answers a batch as scripted, and the room hears its answer.
    fn post_webhook(&mut self, batch: Batch) {
        if self.webhook_hold {
            self.webhook_held.push(batch.clone());
            self.webhook_posts.push(batch);
            if self.eviction == Eviction::EveryStep {
                self.hibernate();
            }
            return;
        }
        let answer = self.webhook_answers.pop_front().unwrap_or_else(|| {
            if self.webhook_receiver_up {
                Ok(200)
            } else {
                Err("connection refused".to_owned())
            }
        });
        if matches!(answer, Ok(200..=299)) {
            self.webhook_delivered.push(batch.clone());
        }
        self.flush_waiting();
        self.event(|engine, store, _, now| engine.webhook_answered(store, &batch, answer, now));
        self.webhook_posts.push(batch);
    }

    /// The receiver answers a batch now (one it held, say), and the room hears it.
    pub fn answer_webhook(&mut self, batch: &Batch, answer: Result<u16, String>) {
        if matches!(answer, Ok(200..=299)) {
            self.webhook_delivered.push(batch.clone());
        }
        self.flush_waiting();
        self.event(|engine, store, _, now| engine.webhook_answered(store, batch, answer, now));
    }

    /// The Worker is deployed again with these settings: the object restarts (as
    /// [`restart`](Self::restart)) and wakes with them.
    pub fn redeploy(&mut self, settings: Settings) {
        self.restart();
        self.settings = settings;
        self.host = None;
    }

    /// The next alarm the room would set (waking it to ask).
    pub fn next_alarm(&mut self) -> Option<u64> {
        let mut next = None;
        self.event(|engine, _, _, _| {
            next = engine.next_alarm();
            Ok(())
        });
        next
    }

    /// Drains and returns the frames a client received (heart-beats dropped).
    pub fn take(&mut self, conn: ConnId) -> Vec<Frame> {
        self.take_received(conn)
            .into_iter()
            .filter_map(|r| r.frame)
            .collect()
    }

    /// Drains the WebSocket messages a plain client received (a SockJS client's are in
    /// `sockjs_frames`), each with the frames it carried; its frames stay to be taken.
    pub fn take_messages(&mut self, client: ConnId) -> Vec<SocketMessage> {
        self.messages.remove(&client).unwrap_or_default()
    }

    pub fn take_received(&mut self, conn: ConnId) -> Vec<Received> {
        self.received.remove(&conn).unwrap_or_default()
    }

    /// Drains and returns the bodies of the MESSAGE frames a client received.
    pub fn bodies(&mut self, conn: ConnId) -> Vec<String> {
        self.take(conn)
            .into_iter()
            .map(|f| {
                assert_eq!(f.command, Command::Message, "{f:?}");
                String::from_utf8(f.body).unwrap()
            })
            .collect()
    }

    pub fn is_open(&self, client: ConnId) -> bool {
        self.sockets.is_open(self.conn(client))
    }

    /// How the room closed a client's socket: code and reason.
    pub fn closed(&self, client: ConnId) -> Option<(u16, String)> {
        self.sockets.closed.get(&self.conn(client)).cloned()
    }

    /// A client's session as kept with its socket (what survives eviction).
    pub fn session(&self, client: ConnId) -> Option<Session> {
        let json = self.sockets.kept_session(self.conn(client))?;
        Some(Session::from_json(json).expect("a kept session is valid JSON"))
    }

    /// A destination's stored history.
    pub fn history(&self, destination: &str) -> Vec<Message> {
        self.store.history_of(destination)
    }

    /// A gateway object's call: the room's answer (`None` when the event failed).
    pub fn gateway_call(&mut self, call: &ToRoom) -> Option<RoomAnswer> {
        let mut answer = None;
        self.event(|engine, store, sockets, now| {
            answer = Some(engine.from_gateway(store, sockets, call, now)?);
            Ok(())
        });
        answer
    }

    /// A gateway answered the room's call to it (or the call failed).
    pub fn gateway_answered(&mut self, gateway: &str, answer: Result<GatewayAnswer, String>) {
        self.event(|engine, store, sockets, now| {
            engine.gateway_answered(store, sockets, gateway, answer, now)
        });
    }

    /// Where the room places a socket opening to it now.
    pub fn placement(&mut self) -> Placement {
        let mut placement = None;
        self.event(|engine, _, _, now| {
            placement = Some(engine.placement(now));
            Ok(())
        });
        placement.expect("the room woke")
    }

    /// The sockets the room lends the router on `gateway` (see `RoomEngine::lease`).
    pub fn lease(&mut self, gateway: &str) -> u32 {
        let mut lent = None;
        self.event(|engine, _, _, now| {
            lent = Some(engine.lease(gateway, now));
            Ok(())
        });
        lent.expect("the room woke")
    }

    /// The socket calls made so far (drained).
    pub fn take_log(&mut self) -> Vec<SocketCall> {
        std::mem::take(&mut self.sockets.log)
    }

    /// Decodes what each client's socket received, as the client would.
    fn collect(&mut self) {
        for conn in self.sockets.with_unread() {
            let Some(&client) = self.clients.get(&conn) else {
                continue;
            };
            for (bytes, binary) in self.sockets.take_received(conn) {
                if self.sockjs_clients.contains(&client) {
                    self.sockjs_client_receives(client, &bytes);
                } else {
                    let frames = self.client_receives(client, &bytes, binary);
                    let message = SocketMessage { frames, binary };
                    self.messages.entry(client).or_default().push(message);
                }
            }
        }
    }

    /// A SockJS client's end: keeps the SockJS frame, and decodes the STOMP inside `a[...]`.
    fn sockjs_client_receives(&mut self, client: ConnId, bytes: &[u8]) {
        let text = String::from_utf8(bytes.to_vec()).expect("SockJS frames are text");
        if let Some(array) = text.strip_prefix('a') {
            let messages: Vec<String> =
                serde_json::from_str(array).expect("a SockJS messages frame is a JSON array");
            for message in messages {
                self.client_receives(client, message.as_bytes(), false);
            }
        }
        self.sockjs_frames.entry(client).or_default().push(text);
    }

    /// A client's end of the socket: decodes what the room sent it; how many frames (and
    /// heart-beats) the message completed.
    fn client_receives(&mut self, client: ConnId, bytes: &[u8], binary: bool) -> usize {
        let mut completed = 0;
        let decoder = self
            .decoders
            .entry(client)
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
                .entry(client)
                .or_default()
                .push(Received { frame, binary });
            completed += 1;
        }
        completed
    }
}

/// One step of a random session, for the property tests and the broker fuzz target.
#[derive(Debug, Clone)]
pub enum Step {
    /// A socket opens and sends nothing yet.
    Open(ConnId),
    /// A socket opens and connects: STOMP 1.`minor`, a login, and `heart-beat:cx,cy`.
    Connect {
        conn: ConnId,
        minor: u8,
        heart_beat: (u32, u32),
    },
    Bytes {
        conn: ConnId,
        bytes: Vec<u8>,
        binary: bool,
    },
    Close(ConnId),
    /// The client's heart-beat, answered by the transport without waking the room.
    Ping(ConnId),
    Tick(u64),
    Hibernate,
    /// The object restarts as a crash or a deploy does (see [`SimulatedRoom::restart`]).
    Restart,
}

impl SimulatedRoom {
    /// Carries out a step; bytes for a client that is not open are dropped, and opening a
    /// client again after it closed gives it a new connection.
    pub fn step(&mut self, step: Step) {
        match step {
            Step::Open(client) => {
                if !self.is_open(client) {
                    self.decoders.remove(&client);
                    self.open(client);
                }
            }
            Step::Connect {
                conn: client,
                minor,
                heart_beat: (cx, cy),
            } => {
                if !self.is_open(client) {
                    self.decoders.remove(&client);
                    self.open(client);
                    let connect = format!(
                        "CONNECT\naccept-version:1.{}\nlogin:u{client}\nheart-beat:{cx},{cy}\n\n\0",
                        minor % 3
                    );
                    self.raw(client, connect.as_bytes());
                }
            }
            Step::Bytes {
                conn,
                bytes,
                binary,
            } => {
                if binary {
                    self.raw_binary(conn, &bytes)
                } else {
                    self.raw(conn, &bytes)
                }
            }
            Step::Close(conn) => self.close(conn),
            Step::Ping(conn) => self.ping(conn),
            Step::Tick(ms) => self.advance(ms),
            Step::Hibernate => self.hibernate(),
            Step::Restart => self.restart(),
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
    match template % 12 {
        0 => format!(
            "CONNECT\naccept-version:1.{}\nheart-beat:{b},{a}\nlogin:u{pick}\n\n\0",
            pick % 3
        ),
        1 => {
            // History is kept for topics only; asking elsewhere is an error.
            let replay = if destination.starts_with("/topic/") {
                format!("replay-last:{pick}\n")
            } else {
                String::new()
            };
            format!("SUBSCRIBE\nid:{id}\ndestination:{destination}\nack:{ack}\n{replay}\n\0")
        }
        2 => format!("SEND\ndestination:{destination}\nreceipt:r{b}\n\nbody {b}\0"),
        3 => format!("SEND\ndestination:{destination}\ntransaction:{id}\ncontent-length:1\n\n\0\0"),
        4 => format!("ACK\nid:{b}-{pick}\nmessage-id:{b}\nsubscription:{id}\n\n\0"),
        5 => format!("NACK\nid:{b}-{pick}\nmessage-id:{b}\nsubscription:{id}\n\n\0"),
        6 => format!("BEGIN\ntransaction:{id}\n\n\0"),
        7 => format!("COMMIT\ntransaction:{id}\n\n\0"),
        8 => format!("ABORT\ntransaction:{id}\n\n\0"),
        9 => format!("UNSUBSCRIBE\nid:{id}\n\n\0"),
        10 => format!(
            "SUBSCRIBE\nid:r{id}\ndestination:/topic/{}\nreplay-after:{b}\n\n\0",
            if a % 2 == 0 { "a" } else { "b" }
        ),
        _ => "DISCONNECT\nreceipt:bye\n\n\0".to_owned(),
    }
}
