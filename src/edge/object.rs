//! The room Durable Object: one instance per room name. It carries the Worker's events to the
//! [room engine](crate::room::RoomEngine) and lends it SQLite ([`SqliteStore`]) and the room's
//! WebSockets ([`RoomSockets`]); it decides nothing itself.
//!
//! # What lives where
//!
//! * **Attachments** hold each socket's session (version, login, heart-beats and deadlines,
//!   subscriptions, unacknowledged ids, open transactions) as JSON, under the 16 KiB an
//!   attachment allows. Each socket is tagged with its connection id.
//! * **SQLite** holds what is room-wide or large: counters, topic history, queued messages,
//!   queue positions, transaction frames and partly-arrived frames.
//! * **Memory** holds a cache: the engine, rebuilt from the above on the first event after a
//!   wake ([`RoomEngine::wake`](crate::room::RoomEngine::wake)), and the socket handles; and what lives
//!   only while requests keep the object awake: the HTTP requests the room holds open and
//!   SockJS sessions over HTTP (see [`crate::room::sockjs`]).
//!
//! # Hibernation first
//!
//! Sockets are accepted with the hibernation API, so while they are idle the runtime evicts the
//! object and keeps the connections open for free; the next event wakes it. A bare `"\n"` (a
//! STOMP client's heart-beat) is answered with `"\n"` by the runtime itself, without waking the
//! object (the auto-response), and that reply is the room's heart-beat. The engine reads the
//! time of the last such reply when it checks a client's liveness.
//!
//! # Order of work
//!
//! The engine sends a fan-out before it commits the event's writes (in one `transactionSync`),
//! and a RECEIPT after them; the alarm is set after both, since setting it is a write too. No
//! `RefCell` borrow is held across an `.await`: the engine's work is synchronous, and the one
//! asynchronous call (setting the alarm) runs after the borrow ends, in the background after a
//! socket's message, which is handled with no promise of its own (see [`exports`]). Frames a busy room's
//! event leaves waiting to be coalesced are sent by a timer of 0 ms in the background (see
//! [`Room::flush_sends`]), which also borrows only between awaits.
//!
//! # Gateways
//!
//! A room may have members on gateway objects ([`crate::relay`]): their calls arrive as
//! requests (`relay-to-room`), and the room's calls to them leave after each event, in the
//! background (see [`gateways`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::Duration;

use futures::future::{self, Either};
use futures::StreamExt;

use wasm_bindgen::JsValue;
use worker::{
    js_sys, wasm_bindgen_futures, Delay, Env, Headers, Request, Response, Result, ScheduledTime,
    State, Storage, WebSocket, WebSocketPair, WebSocketRequestResponsePair,
};

use super::http::{self, Outlet, Push};
use super::logs;
use super::registry;
use super::sqlite::SqliteStore;
use super::webhooks;
use super::websockets::{conn_of, OpenSockets, RoomSockets};
use super::{env, now_ms, ROUTE_HEADER};
use crate::room::http::{HttpOutcome, HttpRequest, HttpResponse, ListenerId};
use crate::room::routes::Route;
use crate::room::{self, AlarmChange, Failed, Host, Opened, Peer, Turn};
use crate::stomp::subprotocol;

mod exports;
mod gateways;

/// A STOMP heart-beat, and the auto-response that answers it.
const HEART_BEAT: &str = "\n";

/// The runtime's class for a room's Durable Object: its handlers are exported in [`exports`].
#[wasm_bindgen::prelude::wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
pub struct Room {
    state: State,
    env: Env,
    /// Shared with open event streams, which tell the room when their client goes away.
    live: Rc<RefCell<Option<Live>>>,
}

/// The in-memory cache, rebuilt after each wake.
struct Live {
    /// The engine's host, which wakes it from storage at the first event.
    host: Host,
    store: SqliteStore,
    sockets: OpenSockets,
    /// HTTP requests the room holds open (long polls, event streams).
    held: HashMap<ListenerId, Outlet>,
    /// A timer waits to send the frames an event left waiting (see [`Host::flush_sends`]).
    flush_scheduled: bool,
}

impl Live {
    /// An event left frames waiting to be coalesced (see [`Host::flush_sends`]).
    fn sends_waiting(&self) -> bool {
        self.host
            .engine()
            .is_some_and(room::RoomEngine::sends_waiting)
    }
}

/// Which handler of the room an HTTP request is for.
#[derive(Clone, Copy)]
enum Served {
    /// A destination (`/rooms/{room}/topic/…`): the ladder's rungs.
    Destination,
    /// A SockJS HTTP transport under an endpoint.
    SockJs,
}

/// What an event brings besides its work: a socket being opened or closed.
#[derive(Default)]
struct Arrival {
    incoming: Option<WebSocket>,
    closing: Option<WebSocket>,
    /// The room's end of an HTTP request being handled, should the room hold it open.
    request: Option<Outlet>,
}

type Work<'a> = dyn FnMut(
        &mut room::RoomEngine,
        &mut SqliteStore,
        &mut RoomSockets,
        u64,
    ) -> std::result::Result<(), Failed>
    + 'a;

impl Room {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            live: Rc::new(RefCell::new(None)),
        }
    }

    /// A request the router (or the registry) sent. A socket's upgrade needs only its headers
    /// (see [`exports`]); everything else is read as a `Request`.
    async fn fetch(&self, mut req: Request) -> Result<Response> {
        // Between rooms and the registry of active rooms (see `registry`).
        if let Some(answer) = registry::internal(&self.state, &self.env, &req).await {
            return answer;
        }
        // The router read the request's route (and checked a socket's `Origin`).
        let route = req.headers().get(ROUTE_HEADER)?;
        let Some(route) = route.as_deref().and_then(Route::from_header) else {
            return Response::error("a room is reached through the Worker's router", 400);
        };
        let settings = env::settings(&self.env).unwrap_or_default();
        match route {
            Route::Socket {
                room,
                sockjs,
                at_endpoint,
            } => {
                self.open_socket(req.headers(), room, sockjs, at_endpoint)
                    .await
            }
            Route::RelayToRoom { room } => self.relay_to_room(&mut req, &room).await,
            Route::Stats { room } => {
                let request = http::read_request(&mut req, &room, "/stats", None).await?;
                let stats_token = env::stats_token(&self.env);
                self.stats(&request, stats_token.as_deref())
            }
            Route::Destination { room, destination } => {
                let max_body = Some(settings.broker.limits.max_body_bytes);
                let request = http::read_request(&mut req, &room, &destination, max_body).await?;
                self.serve(request, Served::Destination).await
            }
            Route::SockJs { room, session_path } => {
                // Only `xhr_send` carries a body; receivers' requests are never read.
                let max_body = room::sockjs::max_body(&settings, &session_path);
                let request = http::read_request(&mut req, &room, &session_path, max_body).await?;
                self.serve(request, Served::SockJs).await
            }
            _ => Response::error("the router answers this request itself", 400),
        }
    }
}

impl Room {
    /// Opens a socket, or (a room's own socket, when the room holds as many as it may) answers
    /// with the gateway the router sends it to instead.
    async fn open_socket(
        &self,
        headers: &Headers,
        room: String,
        sockjs: bool,
        at_endpoint: bool,
    ) -> Result<Response> {
        let offered = headers.get("Sec-WebSocket-Protocol")?;
        let peer = Peer {
            room,
            address: headers.get("CF-Connecting-IP")?,
            sockjs,
        };
        let pair = WebSocketPair::new()?;
        let arrival = Arrival {
            incoming: Some(pair.server.clone()),
            ..Arrival::default()
        };
        let mut opened = None;
        let mut placed = None;
        self.event(arrival, &mut |room, store, sockets, now| {
            // An endpoint's socket stays: its SockJS framing and endpoint are the room's. (The
            // room counts a socket it places on a gateway until it joins: asked only here.)
            placed = match at_endpoint {
                true => None,
                false => gateways::placement(room, now),
            };
            if placed.is_none() {
                opened = Some(room.open(store, sockets, peer.clone(), now)?);
            }
            Ok(())
        })
        .await?;
        if let Some((gateway, lent)) = placed {
            return gateways::use_gateway(&gateway, sockjs, lent);
        }
        match opened {
            Some(Opened::Accepted(_)) => {}
            // Accepted for the refusal alone, never for hibernation: the runtime closes such a
            // socket at once (a hibernatable one closed outside its own events lingers).
            Some(Opened::Refused {
                messages,
                code,
                reason,
            }) => {
                pair.server.accept()?;
                for message in messages {
                    let text = String::from_utf8_lossy(&message);
                    pair.server.send_with_str(text.as_ref())?;
                }
                pair.server.close(Some(code), Some(reason))?;
            }
            None => return Response::error("the room could not open the socket", 503),
        }
        let response = Response::from_websocket(pair.client)?;
        if let Some(chosen) = subprotocol::choose(offered.as_deref()) {
            response.headers().set("Sec-WebSocket-Protocol", chosen)?;
        }
        Ok(response)
    }

    /// A request to one of the room's destinations over HTTP, or of a SockJS HTTP transport:
    /// answered now, or held open as a long poll (until the room answers or the wait runs
    /// out) or an event stream.
    async fn serve(&self, request: HttpRequest, served: Served) -> Result<Response> {
        let (outlet, pushed) = http::outlet();
        let arrival = Arrival {
            request: Some(outlet),
            ..Arrival::default()
        };
        let mut outcome = None;
        let alarm = self.handle(arrival, &mut |room, store, sockets, now| {
            outcome = Some(match served {
                Served::Destination => room.http(store, sockets, &request, now)?,
                Served::SockJs => room.sockjs(store, sockets, &request, now)?,
            });
            Ok(())
        })?;
        // A request the room holds open gets its drop guard before the first `.await` (setting
        // the alarm), so a client that goes away meanwhile is still noticed.
        let held = match &outcome {
            Some(HttpOutcome::Stream { listener, .. } | HttpOutcome::Wait { listener, .. }) => {
                Some(RequestGone {
                    live: Rc::downgrade(&self.live),
                    storage: Some(self.state.storage()),
                    reach: Some(self.reach()),
                    listener: *listener,
                })
            }
            _ => None,
        };
        self.change_alarm(alarm).await;
        match outcome {
            None => http::to_response(HttpResponse::text(
                503,
                "the room could not store or read this request; try again",
            )),
            Some(HttpOutcome::Respond(answer)) => http::to_response(answer),
            Some(HttpOutcome::Stream {
                listener,
                head,
                keep_alive_ms,
                keep_alive,
                join_writes,
            }) => {
                let gone = held.unwrap_or_else(|| RequestGone::unarmed(listener));
                let keep_alive = (keep_alive, keep_alive_ms);
                http::stream_response(head, pushed, keep_alive, join_writes, gone)
            }
            Some(HttpOutcome::Wait {
                listener,
                timeout_ms,
            }) => {
                let mut pushed = pushed.receiver;
                // Dropped with this future if the client goes away while it waits.
                let gone = held.unwrap_or_else(|| RequestGone::unarmed(listener));
                let timeout = Delay::from(Duration::from_millis(timeout_ms));
                let answer = match future::select(pushed.next(), timeout).await {
                    Either::Left((Some(Push::Answer(answer)), _)) => answer,
                    _ => {
                        let (answer, alarm) = self.poll_timed_out(listener);
                        self.change_alarm(alarm).await;
                        answer
                    }
                };
                gone.disarm();
                http::to_response(answer)
            }
        }
    }

    /// A long poll's wait ran out: the room gives its empty answer and forgets it (a SockJS
    /// session then waits for its next poll, so the alarm may change).
    fn poll_timed_out(&self, listener: ListenerId) -> (HttpResponse, Option<AlarmChange>) {
        let now = now_ms();
        let mut turn = {
            let mut slot = self.live.borrow_mut();
            slot.as_mut().and_then(|live| {
                live.held.remove(&listener);
                live.host
                    .in_memory(now, |engine| engine.http_timeout(listener, now))
            })
        };
        if let Some(turn) = &mut turn {
            logs::print(&turn.logs);
            self.call_gateways(gateways::calls_of(turn));
        }
        match turn {
            Some(Turn {
                result: Ok(answer),
                alarm,
                ..
            }) => (answer, alarm),
            _ => (
                HttpResponse::text(503, "the room restarted; poll again"),
                None,
            ),
        }
    }

    async fn closed(&self, ws: &WebSocket) -> Result<()> {
        let Some(conn) = conn_of(&self.state, ws) else {
            return Ok(());
        };
        let arrival = Arrival {
            closing: Some(ws.clone()),
            ..Arrival::default()
        };
        self.event(arrival, &mut |room, store, sockets, now| {
            room.closed(store, sockets, conn, now)
        })
        .await
    }

    /// Runs one event against the engine (waking it first if the object was evicted), then
    /// sets or deletes the alarm as it asks. The borrow ends before the one `.await`.
    async fn event(&self, arrival: Arrival, work: &mut Work<'_>) -> Result<()> {
        let alarm = self.handle(arrival, work)?;
        self.flush_sends_soon();
        self.change_alarm(alarm).await;
        Ok(())
    }

    /// Sends the frames a busy room's events left waiting, once the runtime has handed the
    /// room the messages already waiting for it: a timer of 0 ms fires after those, and the
    /// frames they leave join the run (see [`crate::room`]'s `coalesce`). In the background,
    /// so the event itself ends at once; one timer at a time.
    fn flush_sends_soon(&self) {
        {
            let mut slot = self.live.borrow_mut();
            let Some(live) = slot.as_mut() else {
                return;
            };
            if !live.sends_waiting() || live.flush_scheduled {
                return;
            }
            live.flush_scheduled = true;
        }
        self.flush_after_timer();
    }

    fn flush_after_timer(&self) {
        let reach = self.reach();
        wasm_bindgen_futures::spawn_local(async move {
            Delay::from(Duration::ZERO).await;
            reach.flush_sends_now();
        });
    }

    /// Sends the frames left waiting now: at the timer (see
    /// [`flush_sends_soon`](Self::flush_sends_soon)), and before work that writes outside an
    /// event (a webhook's answer), since no fan-out waits behind a write. The alarm the flush
    /// asks for is set in the background, after the sends.
    pub(super) fn flush_sends_now(&self) {
        let mut turn = {
            let Ok(mut slot) = self.live.try_borrow_mut() else {
                // Busy (never between events): the timer tries again.
                return self.flush_after_timer();
            };
            let Some(live) = slot.as_mut() else {
                return;
            };
            if !live.sends_waiting() {
                return;
            }
            live.flush_scheduled = false;
            let mut sockets = RoomSockets {
                state: &self.state,
                open: &mut live.sockets,
                incoming: None,
                closing: None,
                held: &mut live.held,
                incoming_request: None,
            };
            live.host.flush_sends(&mut sockets, now_ms())
        };
        logs::print(&turn.logs);
        self.call_gateways(gateways::calls_of(&mut turn));
        change_alarm_later(Rc::downgrade(&self.live), self.state.storage(), turn.alarm);
    }

    /// Sets or deletes the platform's alarm as the engine asked; if that fails, the engine
    /// hears so and asks again at its next event.
    async fn change_alarm(&self, alarm: Option<AlarmChange>) {
        if !change_alarm(self.state.storage(), alarm).await {
            alarm_failed(&self.live);
        }
    }

    /// The synchronous part of [`event`](Self::event): the engine's work, and the alarm change
    /// it asks for, for the caller to make.
    fn handle(&self, arrival: Arrival, work: &mut Work<'_>) -> Result<Option<AlarmChange>> {
        let now = now_ms();
        let (alarm, calls) = {
            let mut slot = self.live.borrow_mut();
            let live = self.awake(&mut slot)?;
            let sockets_before = live.sockets.len();
            let mut sockets = RoomSockets {
                state: &self.state,
                open: &mut live.sockets,
                incoming: arrival.incoming,
                closing: arrival.closing,
                held: &mut live.held,
                incoming_request: arrival.request,
            };
            let mut turn = live.host.event(&mut live.store, &mut sockets, now, work);
            live.flush_scheduled &= turn.sends_waiting;
            // A failed event is among them, as the room logs it.
            logs::print(&turn.logs);
            registry::occupancy_changed(&self.state, &self.env, sockets_before, live.sockets.len());
            (turn.alarm, gateways::calls_of(&mut turn))
        };
        // Sent after the event, in the background; their answers are events of their own.
        self.call_gateways(calls);
        Ok(alarm)
    }

    /// What the object keeps in memory, set up first if it has just been created or woken (the
    /// engine itself is woken by its host at the event).
    fn awake<'a>(&self, slot: &'a mut Option<Live>) -> Result<&'a mut Live> {
        if let Some(live) = slot {
            return Ok(live);
        }
        // The auto-response answers each client heart-beat with ours.
        self.state
            .set_websocket_auto_response(&WebSocketRequestResponsePair::new(
                HEART_BEAT, HEART_BEAT,
            )?);
        // Invalid settings: the defaults, with everyone refused (see `env::settings`).
        let settings = env::settings(&self.env).unwrap_or_default();
        let auth = env::authenticator(&self.env);
        let store = SqliteStore::open(self.state.storage()).map_err(storage_error)?;
        Ok(slot.insert(Live {
            host: Host::new(room::Settings::clone(&settings), auth),
            store,
            sockets: OpenSockets::default(),
            held: HashMap::new(),
            flush_scheduled: false,
        }))
    }

    /// Counters for operators and the benchmark: `GET /rooms/{room}/stats`, with the stats
    /// token when `STOMP_STATS_TOKEN` is set, else the credentials the room asks of its clients
    /// (see [`room::RoomEngine::stats_request`]). `wakes`
    /// counts the times the object was rebuilt in memory (first use and every wake from
    /// eviction); `events_since_wake` counts the handler calls of this instance by kind, so
    /// heart-beats answered by the auto-response show up as no `messages` at all; `stored`
    /// counts the messages in SQLite. Reading them writes nothing.
    fn stats(&self, request: &HttpRequest, stats_token: Option<&str>) -> Result<Response> {
        let mut answer = None;
        let alarm = self.handle(Arrival::default(), &mut |room, store, _, now| {
            let mut extra = serde_json::Map::new();
            extra.insert("sockets".into(), self.state.get_websockets().len().into());
            if let Ok((history, queued)) = store.message_counts() {
                let stored = serde_json::json!({ "history": history, "queued": queued });
                extra.insert("stored".into(), stored);
            }
            answer = Some(room.stats_request(request, extra, stats_token, now));
            Ok(())
        })?;
        // Only the wake's deferred counters can be pending: stored by the alarm.
        change_alarm_later(Rc::downgrade(&self.live), self.state.storage(), alarm);
        http::to_response(
            answer.unwrap_or_else(|| HttpResponse::text(503, "the room could not wake")),
        )
    }
}

/// POSTs a webhook batch and hands the receiver's answer to the engine still in memory (one
/// evicted or restarted meanwhile sends the batch again: its answer was overdue).
async fn deliver(
    batch: room::webhooks::Batch,
    live: Weak<RefCell<Option<Live>>>,
    storage: Storage,
    reach: gateways::Reach,
) {
    let answer = webhooks::post(&batch).await;
    // Its answer is stored at once: frames waiting to coalesce leave first.
    reach.flush_sends_now();
    let Some(strong) = live.upgrade() else {
        return;
    };
    let turn = {
        let Ok(mut slot) = strong.try_borrow_mut() else {
            untold(&batch, "the room was busy with another event");
            return;
        };
        let Some(Live { host, store, .. }) = slot.as_mut() else {
            untold(&batch, "the room was not in memory");
            return;
        };
        let now = now_ms();
        host.in_memory(now, |engine| {
            engine.webhook_answered(store, &batch, answer, now)
        })
    };
    let Some(mut turn) = turn else {
        untold(&batch, "the room was not in memory");
        return;
    };
    // A failed delivery, or storing its answer failed (then the batch goes again): the room
    // logged it.
    logs::print(&turn.logs);
    reach.call_gateways(gateways::calls_of(&mut turn));
    change_alarm_later(live, storage, turn.alarm);
}

/// A webhook answer the room could not hear: one line, since the batch goes again (a
/// receiver that dedupes by `webhook-id` or event `id` sees it twice).
fn untold(batch: &room::webhooks::Batch, why: &str) {
    logs::platform_error(
        "webhook answer not recorded; the batch goes again",
        batch.id.rsplit_once('.').map(|(room, _)| room),
        why,
    );
}

/// Sets or deletes the alarm in the background, for a caller that cannot wait; the engine
/// hears if that failed.
fn change_alarm_later(
    live: Weak<RefCell<Option<Live>>>,
    storage: Storage,
    alarm: Option<AlarmChange>,
) {
    if alarm.is_none() {
        return;
    }
    wasm_bindgen_futures::spawn_local(async move {
        if !change_alarm(storage, alarm).await {
            if let Some(live) = live.upgrade() {
                alarm_failed(&live);
            }
        }
    });
}

/// The engine counted on an alarm the platform did not set.
fn alarm_failed(live: &RefCell<Option<Live>>) {
    if let Ok(mut slot) = live.try_borrow_mut() {
        if let Some(live) = slot.as_mut() {
            live.host.alarm_failed();
        }
    }
}

/// Sets or deletes the platform's alarm as the engine asked; `false` if that failed.
pub(super) async fn change_alarm(storage: Storage, alarm: Option<AlarmChange>) -> bool {
    let changed = match alarm {
        None => return true,
        // An absolute time: a bare integer would be taken as an offset from now.
        Some(AlarmChange::Set(at)) => {
            let when = ScheduledTime::new(js_sys::Date::new(&JsValue::from_f64(at as f64)));
            storage.set_alarm(when).await
        }
        Some(AlarmChange::Delete) => storage.delete_alarm().await,
    };
    if let Err(error) = changed {
        logs::platform_error(
            "could not change the room's alarm",
            None,
            &error.to_string(),
        );
        return false;
    }
    true
}

/// Dropped with an event stream's body, when its client goes away (or the stream ends), or
/// with a waiting poll cancelled by its client: the room forgets the request at once rather
/// than at its next message.
struct RequestGone {
    live: Weak<RefCell<Option<Live>>>,
    /// To set the alarm the room then asks for (a cut-off SockJS session ends at once).
    storage: Option<Storage>,
    /// To send the calls the room then makes to its gateways.
    reach: Option<gateways::Reach>,
    listener: ListenerId,
}

impl RequestGone {
    /// A guard that tells nothing (for a request the room did not hold).
    fn unarmed(listener: ListenerId) -> Self {
        Self {
            live: Weak::new(),
            storage: None,
            reach: None,
            listener,
        }
    }

    /// The request was answered: nothing to tell the room.
    fn disarm(mut self) {
        self.live = Weak::new();
    }
}

impl Drop for RequestGone {
    fn drop(&mut self) {
        let Some(live) = self.live.upgrade() else {
            return;
        };
        // Busy with an event: the room notices at the stream's next message instead.
        let Ok(mut slot) = live.try_borrow_mut() else {
            return;
        };
        let Some(live) = slot.as_mut() else {
            return;
        };
        let now = now_ms();
        live.held.remove(&self.listener);
        let listener = self.listener;
        let mut turn = live
            .host
            .in_memory(now, |engine| engine.http_closed(listener, now));
        if let Some(turn) = &mut turn {
            logs::print(&turn.logs);
            if let Some(reach) = &self.reach {
                reach.call_gateways(gateways::calls_of(turn));
            }
        }
        if let (Some(storage), Some(turn)) = (self.storage.take(), turn) {
            change_alarm_later(self.live.clone(), storage, turn.alarm);
        }
    }
}

fn storage_error(error: crate::room::StorageError) -> worker::Error {
    worker::Error::RustError(format!("the room's storage failed: {error}"))
}
