//! The room Durable Object: one instance per room name, running the STOMP broker for every
//! socket in the room.
//!
//! # Hibernation first
//!
//! Sockets are accepted with the hibernation API, so while they are idle the runtime may evict
//! the object from memory and keep the connections open for free; the next message wakes it.
//! Nothing that matters lives only in memory:
//!
//! * **Attachments** hold each socket's STOMP session (version, login, heart-beats,
//!   subscriptions, unacknowledged message ids, open transaction ids) as JSON. The broker's
//!   limits keep a session under the 16 KiB an attachment allows. Each socket is also tagged
//!   with its connection id, so an incoming message finds its session without parsing JSON.
//! * **SQLite** ([`super::store`]) holds what is room-wide or large: the message-id counter,
//!   topic history, queued messages, transaction frames and partly-arrived frames.
//! * **Memory** holds only a cache: the [`Broker`] rebuilt from the above on the first event
//!   after a wake (its routing index comes from the sessions), and the socket handles.
//!
//! # Heart-beats without waking
//!
//! The room registers a WebSocket auto-response: a bare `"\n"` (a STOMP client's heart-beat) is
//! answered with `"\n"` by the runtime itself, without waking the object, and that reply is the
//! server's heart-beat. With the default offer of `10000,10000`, a stock stomp.js client's
//! pings set the pace in both directions. A client that asks for server heart-beats but does
//! not ping gets them from the alarm, which wakes the room on time for them. Dead clients are
//! found by the alarm too, lazily: at most every `liveness_check_ms` it reads each socket's
//! last auto-response time and closes the ones silent for more than twice their interval.
//!
//! # Effects
//!
//! The broker returns effects and this module carries them out in order. No `await` happens
//! while the broker is borrowed: SQLite and WebSocket sends are synchronous, and the one
//! asynchronous call (setting the alarm) runs after the borrow ends.

use std::cell::{RefCell, RefMut};
use std::collections::{HashMap, HashSet, VecDeque};

use wasm_bindgen::{prelude::wasm_bindgen, JsCast, JsValue};
use worker::{
    console_error, durable_object, DurableObject, Env, Request, Response, Result, ScheduledTime,
    State, WebSocket, WebSocketIncomingMessage, WebSocketPair, WebSocketRequestResponsePair,
};
use worker::{js_sys, web_sys};

use super::settings::{authenticator, Settings};
use super::store::Store;
use crate::stomp::{subprotocol, Broker, Config, ConnId, Effect, Session};

/// A STOMP heart-beat, and the auto-response that answers it.
const HEART_BEAT: &str = "\n";
/// Tags a socket with its connection id: `c{id}`.
const CONN_TAG_PREFIX: &str = "c";
const LAST_MESSAGE_ID: &str = "last_message_id";
/// History is trimmed after this many messages to a destination rather than after each one,
/// so a destination briefly keeps up to this many more than `history_limit`.
const TRIM_EVERY: u32 = 32;
const NEXT_CONN: &str = "next_conn";
const WAKES: &str = "wakes";

#[wasm_bindgen]
extern "C" {
    /// The Durable Object state, typed for the one hibernation call workers-rs does not bind.
    type HibernationState;

    /// `WebSocket.send` with a value already in JavaScript, so one string serves a fan-out.
    type SharedSend;

    #[wasm_bindgen(method, catch, js_name = send)]
    fn send_value(this: &SharedSend, data: &JsValue) -> std::result::Result<(), JsValue>;

    /// When the runtime last answered this socket with the auto-response (a `Date`), or null.
    #[wasm_bindgen(method, catch, js_name = getWebSocketAutoResponseTimestamp)]
    fn auto_response_timestamp(
        this: &HibernationState,
        ws: &web_sys::WebSocket,
    ) -> std::result::Result<JsValue, JsValue>;
}

#[durable_object]
pub struct Room {
    state: State,
    env: Env,
    live: RefCell<Option<Live>>,
}

#[derive(Default, serde::Serialize)]
struct EventCounts {
    connects: u64,
    messages: u64,
    closes: u64,
    alarms: u64,
}

/// The in-memory cache, rebuilt from attachments and SQLite after each wake.
struct Live {
    broker: Broker,
    store: Store,
    settings: Settings,
    sockets: HashMap<ConnId, WebSocket>,
    /// Connections with a partly-arrived frame in SQLite.
    partials: HashSet<ConnId>,
    /// The last message id that SQLite can give back after a wake: the `meta` counter, or the
    /// newest history row (trimming never removes it), whichever is higher.
    persisted_message_id: u64,
    /// Messages archived per destination since its history was last trimmed.
    untrimmed: HashMap<String, u32>,
    /// The alarm this instance last scheduled.
    alarm_at: Option<u64>,
    /// Handler invocations since this instance was built, by kind (see `stats`).
    counts: EventCounts,
}

impl DurableObject for Room {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            live: RefCell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        if req.path().ends_with("/stats") {
            return self.stats();
        }
        let offered = req.headers().get("Sec-WebSocket-Protocol")?;
        let pair = WebSocketPair::new()?;
        let alarm = self.with_live(|live, now| {
            live.counts.connects += 1;
            let conn = live.store.bump(NEXT_CONN)?;
            self.state
                .accept_websocket_with_tags(&pair.server, &[&format!("{CONN_TAG_PREFIX}{conn}")]);
            live.sockets.insert(conn, pair.server.clone());
            let effects = live.broker.open(conn, now);
            Ok(effects)
        })?;
        self.schedule(alarm).await;
        let response = Response::from_websocket(pair.client)?;
        if let Some(chosen) = subprotocol::choose(offered.as_deref()) {
            response.headers().set("Sec-WebSocket-Protocol", chosen)?;
        }
        Ok(response)
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let Some(conn) = self.conn_of(&ws) else {
            let _ = ws.close(Some(1011), Some("unknown connection"));
            return Ok(());
        };
        let alarm = self.with_live(|live, now| {
            live.counts.messages += 1;
            let effects = match &message {
                WebSocketIncomingMessage::String(text) => {
                    live.broker.receive(conn, text.as_bytes(), false, now)
                }
                WebSocketIncomingMessage::Binary(bytes) => {
                    live.broker.receive(conn, bytes, true, now)
                }
            };
            live.persist_partial(conn)?;
            Ok(effects)
        })?;
        self.schedule(alarm).await;
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        self.forget(&ws).await?;
        // Complete the closing handshake; 1005 and 1006 are reserved and cannot be sent.
        let code = if matches!(code, 1005 | 1006) {
            1000
        } else {
            code as u16
        };
        let _ = ws.close(Some(code), Some(reason));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        self.forget(&ws).await
    }

    async fn alarm(&self) -> Result<Response> {
        let alarm = self.with_live(|live, now| {
            live.alarm_at = None;
            live.counts.alarms += 1;
            let state: &HibernationState = self.state.as_raw().unchecked_ref();
            for (&conn, ws) in &live.sockets {
                if let Ok(stamp) = state.auto_response_timestamp(ws.as_ref()) {
                    if let Some(date) = stamp.dyn_ref::<js_sys::Date>() {
                        live.broker.note_heart_beat(conn, date.get_time() as u64);
                    }
                }
            }
            Ok(live.broker.tick(now))
        })?;
        self.schedule(alarm).await;
        Response::ok("ok")
    }
}

impl Room {
    /// Runs `work` against the live broker (building it after a wake), carries out the effects
    /// it returns, and says when the alarm should next fire. Never awaits while borrowed.
    fn with_live(
        &self,
        work: impl FnOnce(&mut Live, u64) -> Result<Vec<Effect>>,
    ) -> Result<Option<u64>> {
        let now = now_ms();
        let mut live = self.awake(now)?;
        let effects = work(&mut live, now)?;
        live.carry_out(effects)?;
        // Ids of other messages (presence, private, queued) need the counter written.
        let last_id = live.broker.last_message_id();
        if last_id > live.persisted_message_id {
            live.store.set_counter(LAST_MESSAGE_ID, last_id)?;
            live.persisted_message_id = last_id;
        }
        Ok(live.wanted_alarm(now))
    }

    /// The live broker, rebuilt first if the object has just woken. The borrow must end
    /// before any `.await`.
    fn awake(&self, now: u64) -> Result<RefMut<'_, Live>> {
        let mut slot = self.live.borrow_mut();
        if slot.is_none() {
            *slot = Some(self.wake(now)?);
        }
        RefMut::filter_map(slot, Option::as_mut)
            .map_err(|_| worker::Error::RustError("room state missing".into()))
    }

    /// Rebuilds the broker from SQLite and the sockets' attachments.
    fn wake(&self, now: u64) -> Result<Live> {
        let settings = Settings::from_env(&self.env);
        let store = Store::open(self.state.storage().sql())?;
        store.bump(WAKES)?;
        self.state
            .set_websocket_auto_response(&WebSocketRequestResponsePair::new(
                HEART_BEAT, HEART_BEAT,
            )?);
        // The auto-response answers each client heart-beat with ours (see the module docs).
        let config = Config {
            heart_beats_echoed: true,
            ..settings.broker.clone()
        };
        let mut broker = Broker::new(config).with_authenticator(authenticator(&self.env));
        let persisted_message_id = store
            .counter(LAST_MESSAGE_ID)?
            .max(store.newest_archived_id()?);
        broker.restore_last_message_id(persisted_message_id);
        let mut sockets = HashMap::new();
        for ws in self.state.get_websockets() {
            let session = self.conn_of(&ws).and_then(|conn| {
                let json = ws.deserialize_attachment::<String>().ok().flatten()?;
                Session::from_json(&json)
                    .ok()
                    .filter(|session| session.conn == conn)
            });
            match session {
                Some(session) => {
                    sockets.insert(session.conn, ws);
                    broker.restore_session(session, now);
                }
                None => {
                    let _ = ws.close(Some(1011), Some("session lost; reconnect"));
                }
            }
        }
        for staged in store.staged()? {
            broker.restore_staged(
                staged.conn,
                &staged.transaction,
                staged.frame,
                staged.binary,
            );
        }
        let mut partials = HashSet::new();
        for (conn, bytes) in store.partials()? {
            broker.restore_partial_frame(conn, &bytes);
            partials.insert(conn);
        }
        let mut live = Live {
            broker,
            store,
            settings,
            sockets,
            partials,
            persisted_message_id,
            untrimmed: HashMap::new(),
            alarm_at: None,
            counts: EventCounts::default(),
        };
        let queued = live.store.queued()?;
        let effects = live.broker.restore_queued(queued);
        live.carry_out(effects)?;
        Ok(live)
    }

    /// A socket closed or failed: the broker forgets its connection.
    async fn forget(&self, ws: &WebSocket) -> Result<()> {
        let Some(conn) = self.conn_of(ws) else {
            return Ok(());
        };
        let alarm = self.with_live(|live, now| {
            live.counts.closes += 1;
            live.sockets.remove(&conn);
            live.partials.remove(&conn);
            live.store.forget_connection(conn)?;
            Ok(live.broker.close(conn, now))
        })?;
        self.schedule(alarm).await;
        Ok(())
    }

    async fn schedule(&self, alarm: Option<u64>) {
        let Some(at) = alarm else { return };
        // An absolute time: a bare integer would be taken as an offset from now.
        let when = ScheduledTime::new(js_sys::Date::new(&JsValue::from_f64(at as f64)));
        match self.state.storage().set_alarm(when).await {
            Ok(()) => {
                if let Some(live) = self.live.borrow_mut().as_mut() {
                    live.alarm_at = Some(at);
                }
            }
            Err(error) => console_error!("could not set the room's alarm: {error}"),
        }
    }

    fn conn_of(&self, ws: &WebSocket) -> Option<ConnId> {
        self.state
            .get_tags(ws)
            .iter()
            .find_map(|tag| tag.strip_prefix(CONN_TAG_PREFIX)?.parse().ok())
    }

    /// Counters for operators and the benchmark: `GET /rooms/{room}/stats`. `wakes` counts the
    /// times the object was rebuilt in memory (first use and every wake from eviction);
    /// `events_since_wake` counts the handler calls of this instance by kind, so heart-beats
    /// answered by the auto-response show up as no `messages` at all.
    fn stats(&self) -> Result<Response> {
        let live = self.awake(now_ms())?;
        Response::from_json(&serde_json::json!({
            "connections": live.broker.connections().count(),
            "sockets": self.state.get_websockets().len(),
            "wakes": live.store.counter(WAKES)?,
            "events_since_wake": live.counts,
            "last_message_id": live.broker.last_message_id(),
        }))
    }
}

impl Live {
    /// Carries out the broker's effects in order (replays feed more effects back in).
    fn carry_out(&mut self, effects: Vec<Effect>) -> Result<()> {
        let mut pending: VecDeque<Effect> = effects.into();
        while let Some(effect) = pending.pop_front() {
            match effect {
                Effect::Send {
                    conn,
                    bytes,
                    binary,
                } => {
                    let Some(ws) = self.sockets.get(&conn) else {
                        continue;
                    };
                    // A socket that is closing may refuse a send; its close event cleans up.
                    let _ = match std::str::from_utf8(&bytes) {
                        Ok(text) if !binary => ws.send_with_str(text),
                        _ => ws.send_with_bytes(&bytes),
                    };
                }
                Effect::SendMany {
                    conns,
                    bytes,
                    binary,
                } => {
                    // Crosses into JavaScript once, however many sockets it goes to.
                    let value: JsValue = match (binary, std::str::from_utf8(&bytes)) {
                        (false, Ok(text)) => JsValue::from_str(text),
                        _ => js_sys::Uint8Array::from(bytes.as_slice()).into(),
                    };
                    for conn in conns {
                        if let Some(ws) = self.sockets.get(&conn) {
                            let socket: &web_sys::WebSocket = ws.as_ref();
                            let _ = socket.unchecked_ref::<SharedSend>().send_value(&value);
                        }
                    }
                }
                Effect::Close { conn, code, reason } => {
                    if let Some(ws) = self.sockets.remove(&conn) {
                        let _ = ws.close(Some(code), Some(reason));
                    }
                    self.store.forget_connection(conn)?;
                    self.partials.remove(&conn);
                }
                Effect::SaveSession { conn } => {
                    if let (Some(ws), Some(session)) =
                        (self.sockets.get(&conn), self.broker.session(conn))
                    {
                        ws.serialize_attachment(session.to_json())?;
                    }
                }
                Effect::Archive(message) => {
                    self.store.archive(&message)?;
                    // The newest history row is never trimmed, so it carries the id counter.
                    self.persisted_message_id = self.persisted_message_id.max(message.id);
                    let count = self
                        .untrimmed
                        .entry(message.destination.clone())
                        .or_default();
                    *count += 1;
                    if *count >= TRIM_EVERY {
                        *count = 0;
                        self.store
                            .trim_history(&message.destination, self.settings.history_limit)?;
                    }
                }
                Effect::Enqueue(message) => self.store.enqueue(&message)?,
                Effect::Dequeue { message_id } => self.store.dequeue(message_id)?,
                Effect::Replay {
                    conn,
                    subscription,
                    destination,
                    request,
                } => {
                    let messages = self.store.history(&destination, request)?;
                    let more = self.broker.replay(conn, &subscription, messages);
                    for effect in more.into_iter().rev() {
                        pending.push_front(effect);
                    }
                }
                Effect::Stage {
                    conn,
                    transaction,
                    frame,
                    binary,
                } => self.store.stage(conn, &transaction, &frame, binary)?,
                Effect::Unstage { conn, transaction } => self.store.unstage(conn, &transaction)?,
            }
        }
        Ok(())
    }

    /// When the alarm should fire: on time for heart-beats and CONNECT timeouts, lazily (at
    /// most every `liveness_check_ms`) for finding clients whose pings stopped.
    fn wanted_alarm(&self, now: u64) -> Option<u64> {
        let deadlines = self.broker.deadlines();
        let liveness = deadlines
            .liveness
            .map(|at| at.max(now + self.settings.liveness_check_ms));
        let wanted = deadlines.send.into_iter().chain(liveness).min()?;
        // An alarm already set for earlier will fire, tick, and schedule the next one.
        match self.alarm_at {
            Some(scheduled) if scheduled <= wanted && scheduled > now => None,
            _ => Some(wanted),
        }
    }

    /// Persists a frame that has only partly arrived, so an eviction does not lose it. Most
    /// messages hold whole frames, so this writes only when there is, or was, a partial one.
    fn persist_partial(&mut self, conn: ConnId) -> Result<()> {
        let partial = self.broker.partial_frame(conn);
        if !partial.is_empty() {
            self.store.save_partial(conn, partial)?;
            self.partials.insert(conn);
        } else if self.partials.remove(&conn) {
            self.store.save_partial(conn, &[])?;
        }
        Ok(())
    }
}

fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}
