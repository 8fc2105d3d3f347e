//! The gateway Durable Object: holds client sockets and their STOMP connections for rooms that
//! live in other objects (see [`crate::relay`] and the README's "Rooms and gateway objects").
//! It carries the Worker's events to the gateway engine's host ([`GatewayHost`]) and lends it
//! the gateway's hibernatable WebSockets ([`sockets`]); it decides nothing itself.
//!
//! # Its name
//!
//! A gateway's name says what it serves (`endpoint:{room}:{k}`: an endpoint's sockets;
//! `shard:{room}:{k}`: a big room's), and it is only ever told it in the route header: by the
//! router, with a socket, and by a room, with a call. It keeps the name in its storage the first
//! time, for the events that carry no route (a socket's message, its close, the alarm), read
//! once per wake.
//!
//! # Hibernation first
//!
//! As in a room: sockets are accepted with the hibernation API and tagged with their member
//! id; each one's session is its attachment; the auto-response answers a client's heart-beat
//! (`"\n"`) without waking the object.
//!
//! # Calls
//!
//! After each event the gateway's calls to rooms (its members' frames) go out in the
//! background, one POST per room ([`super::relay`]); a room's answer, or its failure, is an
//! event of its own. A room's call to the gateway (`relay-to-gateway`) is an event too,
//! answered with the members the gateway no longer holds. No `RefCell` borrow is held across
//! an `.await`.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::DurableObjectState;
use worker::{
    wasm_bindgen_futures, Env, Headers, Request, Response, Result, State, WebSocket, WebSocketPair,
    WebSocketRequestResponsePair,
};

use super::router::ROOMS_BINDING;
use super::websockets::{finish_close, OpenSockets};
use super::{env, logs, now_ms, relay, ROUTE_HEADER};
use crate::gateway::{GatewayHost, GatewayMode, GatewayTurn};
use crate::relay::{RoomAnswer, ToGateway, ToRoom};
use crate::room::routes::Route;
use crate::stomp::subprotocol;

mod exports;
mod sockets;

use sockets::{member_of, GatewayObjectSockets};

/// A STOMP heart-beat, and the auto-response that answers it.
const HEART_BEAT: &str = "\n";

/// Where the gateway keeps its name.
const NAME_KEY: &str = "gateway-name";

/// The runtime's class for a gateway's Durable Object: its handlers are exported in
/// [`exports`].
#[wasm_bindgen::prelude::wasm_bindgen(wasm_bindgen = ::worker::wasm_bindgen)]
pub struct Gateway {
    state: State,
    env: Env,
    live: Rc<RefCell<Option<Live>>>,
}

/// The in-memory cache, rebuilt after each wake.
struct Live {
    /// The gateway's name, as kept in its storage.
    name: String,
    host: GatewayHost,
    sockets: OpenSockets,
}

/// A socket being opened or closed with an event.
#[derive(Default)]
struct Arrival {
    incoming: Option<WebSocket>,
    closing: Option<WebSocket>,
}

impl Gateway {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            live: Rc::new(RefCell::new(None)),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let route = req.headers().get(ROUTE_HEADER)?;
        match route.as_deref().and_then(Route::from_header) {
            Some(Route::GatewaySocket { gateway, sockjs }) => {
                self.open_socket(req.headers(), &gateway, sockjs).await
            }
            Some(Route::RelayToGateway { gateway }) => {
                self.learn_name(&gateway).await?;
                self.relay_to_gateway(&mut req).await
            }
            _ => Response::error("a gateway is reached through the router or a room", 400),
        }
    }

    async fn websocket_message(&self, ws: WebSocket, data: &[u8], binary: bool) -> Result<()> {
        let Some(member) = member_of(&self.state, &ws) else {
            let _ = ws.close(Some(1011), Some("unknown connection"));
            return Ok(());
        };
        self.event(Arrival::default(), |host, sockets, now| {
            host.receive(sockets, member, data, binary, now)
        })
        .await?;
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        self.closed(&ws).await?;
        finish_close(&ws, code, reason);
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket) -> Result<()> {
        self.closed(&ws).await
    }

    async fn alarm(&self) -> Result<Response> {
        self.event(Arrival::default(), |host, sockets, now| {
            host.alarm(sockets, now)
        })
        .await?;
        Response::ok("ok")
    }
}

impl Gateway {
    /// Opens a socket the router sent (the route names the gateway, which it keeps).
    async fn open_socket(&self, headers: &Headers, name: &str, sockjs: bool) -> Result<Response> {
        self.learn_name(name).await?;
        let offered = headers.get("Sec-WebSocket-Protocol")?;
        let address = headers.get("CF-Connecting-IP")?;
        let pair = WebSocketPair::new()?;
        let arrival = Arrival {
            incoming: Some(pair.server.clone()),
            ..Arrival::default()
        };
        let opened = self
            .event(arrival, |host, sockets, now| {
                host.open(sockets, address.clone(), sockjs, now)
            })
            .await?;
        // A refused CONNECT is the gateway's to answer, on the socket: `None` here is a socket
        // the platform would not take.
        if opened.flatten().is_none() {
            return Response::error("the gateway could not open the socket", 503);
        }
        let response = Response::from_websocket(pair.client)?;
        if let Some(chosen) = subprotocol::choose(offered.as_deref()) {
            response.headers().set("Sec-WebSocket-Protocol", chosen)?;
        }
        Ok(response)
    }

    /// A room's call (`relay-to-gateway`): what it sends the gateway's members, handled in
    /// one event, answered with the members the gateway no longer holds.
    async fn relay_to_gateway(&self, req: &mut Request) -> Result<Response> {
        let body = match relay::call_body(req).await? {
            Ok(body) => body,
            Err(refusal) => return Ok(refusal),
        };
        let call = match ToGateway::decode(&body) {
            Ok(call) => call,
            Err(malformed) => return Response::error(malformed.to_string(), 400),
        };
        let answer = self
            .event(Arrival::default(), |host, sockets, now| {
                host.from_room(sockets, &call, now)
            })
            .await?;
        match answer {
            Some(answer) => relay::answer(answer.encode()),
            None => Response::error("the gateway could not handle the call; it logged why", 503),
        }
    }

    async fn closed(&self, ws: &WebSocket) -> Result<()> {
        let Some(member) = member_of(&self.state, ws) else {
            return Ok(());
        };
        let arrival = Arrival {
            closing: Some(ws.clone()),
            ..Arrival::default()
        };
        self.event(arrival, |host, sockets, now| {
            host.closed(sockets, member, now)
        })
        .await?;
        Ok(())
    }

    /// Runs one event against the engine (built first if the object was just created or
    /// woken), sends the calls it leaves, and changes the alarm as it asks. The borrow ends
    /// before the first `.await`. `None`: the gateway cannot serve (logged).
    async fn event<T>(
        &self,
        arrival: Arrival,
        work: impl FnOnce(&mut GatewayHost, &mut GatewayObjectSockets, u64) -> GatewayTurn<T>,
    ) -> Result<Option<T>> {
        let Some(name) = self.name().await? else {
            logs::platform_error(
                "a gateway was never told its name",
                None,
                "its sockets are closed",
            );
            for ws in self.state.get_websockets() {
                let _ = ws.close(Some(1011), Some("this gateway lost its name"));
            }
            return Ok(None);
        };
        let now = now_ms();
        let done = {
            let mut slot = self.live.borrow_mut();
            let Some(live) = self.awake(&mut slot, name) else {
                return Ok(None);
            };
            let mut sockets = GatewayObjectSockets {
                state: &self.state,
                open: &mut live.sockets,
                incoming: arrival.incoming,
                closing: arrival.closing,
            };
            work(&mut live.host, &mut sockets, now)
        };
        logs::print(&done.logs);
        self.call_rooms(done.calls);
        if !super::object::change_alarm(self.state.storage(), done.alarm).await {
            if let Ok(mut slot) = self.live.try_borrow_mut() {
                if let Some(live) = slot.as_mut() {
                    live.host.alarm_failed();
                }
            }
        }
        Ok(Some(done.result))
    }

    /// What the object keeps in memory, set up first if it has just been created or woken;
    /// `None` if its name names no gateway (logged).
    fn awake<'a>(&self, slot: &'a mut Option<Live>, name: String) -> Option<&'a mut Live> {
        if slot.is_none() {
            if let Ok(pair) = WebSocketRequestResponsePair::new(HEART_BEAT, HEART_BEAT) {
                self.state.set_websocket_auto_response(&pair);
            }
            // Invalid settings: the defaults, with everyone refused (see `env::settings`).
            let settings = env::settings(&self.env).unwrap_or_default();
            let auth = env::authenticator(&self.env);
            let Some(mode) = GatewayMode::from_name(&name) else {
                logs::platform_error("a gateway with a name no router gives", None, &name);
                return None;
            };
            let settings = crate::room::Settings::clone(&settings);
            *slot = Some(Live {
                name,
                host: GatewayHost::new(mode, settings, auth),
                sockets: OpenSockets::default(),
            });
        }
        slot.as_mut()
    }

    /// The gateway's name: in memory, or read from its storage.
    async fn name(&self) -> Result<Option<String>> {
        if let Some(live) = self.live.borrow().as_ref() {
            return Ok(Some(live.name.clone()));
        }
        self.state.storage().get::<String>(NAME_KEY).await
    }

    /// Keeps the name the route header told, the first time.
    async fn learn_name(&self, told: &str) -> Result<()> {
        match self.name().await? {
            Some(name) if name == told => Ok(()),
            // An object is reached by its name: another one is a bug to hear about.
            Some(name) => {
                logs::platform_error(
                    "a gateway was told another name",
                    None,
                    &format!("it is {name}, it was told {told}"),
                );
                Ok(())
            }
            None => self.state.storage().put(NAME_KEY, told).await,
        }
    }

    /// Sends the gateway's calls to rooms, each in a task of its own.
    fn call_rooms(&self, calls: Vec<(String, ToRoom)>) {
        for (room, call) in calls {
            wasm_bindgen_futures::spawn_local(call_room(self.another(), room, call));
        }
    }

    /// Another handle to this object, for a task that outlives the event.
    fn another(&self) -> Gateway {
        let raw: &JsValue = self.state.as_raw().as_ref();
        Gateway {
            state: State::from(raw.clone().unchecked_into::<DurableObjectState>()),
            env: Env::clone(&self.env),
            live: Rc::clone(&self.live),
        }
    }
}

/// One call to a room, and its answer (or its failure) as an event of the gateway's; that
/// event may send the room's next call.
async fn call_room(gateway: Gateway, room: String, call: ToRoom) {
    let route = Route::RelayToRoom { room: room.clone() };
    let answer = relay::call(&gateway.env, ROOMS_BINDING, &room, &route, &call.encode())
        .await
        .and_then(|body| RoomAnswer::decode(&body).map_err(|malformed| malformed.to_string()));
    let heard = gateway
        .event(Arrival::default(), |host, sockets, now| {
            host.room_answered(sockets, &room, answer, now)
        })
        .await;
    if let Err(error) = heard {
        logs::platform_error(
            "a room's answer could not be heard",
            Some(&room),
            &error.to_string(),
        );
    }
}
