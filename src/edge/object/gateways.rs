//! The room object's side of its gateways ([`crate::relay`]): a gateway's call is an event of
//! the room's (its members joined, sent frames, left); after every event the room's calls to
//! its gateways (what it sends their members) go out in the background, one POST per gateway
//! (the room keeps at most one in flight to each), and each answer, or its failure, is an event
//! of its own. No `RefCell` borrow is held across an `.await`: a call's task holds handles to
//! the object, and borrows its cache only in the event that hears the answer.
//!
//! A room's own socket that finds the room full is answered with the gateway to use
//! ([`use_gateway`]): the router sends the same upgrade there.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::DurableObjectState;
use worker::{wasm_bindgen_futures, Env, Request, Response, Result, State};

use super::{Arrival, Live, Room};
use crate::edge::relay;
use crate::edge::router::GATEWAYS_BINDING;
use crate::relay::{GatewayAnswer, RoomAnswer, ToGateway, ToRoom};
use crate::room::routes::{Route, LEASE_HEADER, USE_GATEWAY_HEADER};
use crate::room::{Failed, Placement, RoomEngine, Turn};

use super::super::sqlite::SqliteStore;
use super::super::websockets::RoomSockets;

impl Room {
    /// A gateway's call (`relay-to-room`): its events handled in order, in one event of the
    /// room's, answered with the members the room does not hold. A call the room could not
    /// handle is answered 503, and the gateway takes it as failed.
    pub(super) async fn relay_to_room(&self, req: &mut Request, room: &str) -> Result<Response> {
        let body = match relay::call_body(req).await? {
            Ok(body) => body,
            Err(refusal) => return Ok(refusal),
        };
        let call = match ToRoom::decode(&body) {
            Ok(call) => call,
            Err(malformed) => return Response::error(malformed.to_string(), 400),
        };
        let mut answer = None;
        self.event(Arrival::default(), &mut |engine, store, sockets, now| {
            answer = Some(from_gateway(engine, store, sockets, room, &call, now)?);
            Ok(())
        })
        .await?;
        match answer {
            Some(answer) => relay::answer(answer.encode()),
            None => Response::error("the room could not handle the call; it logged why", 503),
        }
    }

    /// Sends the room's calls to its gateways, each in a task of its own.
    pub(super) fn call_gateways(&self, calls: Vec<(String, ToGateway)>) {
        let reach = self.reach();
        for (gateway, call) in calls {
            if let Some(room) = reach.room() {
                wasm_bindgen_futures::spawn_local(call_gateway(room, gateway, call));
            }
        }
    }

    /// What a task or a guard that outlives this event needs to send the room's calls.
    pub(super) fn reach(&self) -> Reach {
        Reach {
            state: self.state.as_raw().unchecked_ref::<JsValue>().clone(),
            env: Env::clone(&self.env),
            live: Rc::downgrade(&self.live),
        }
    }
}

/// Handles to the room's object for work that ends after its event (a webhook's answer, a
/// request's client gone): the calls that work leaves go out as an event's do. The cache is
/// held weakly, as that work holds it.
pub(super) struct Reach {
    state: JsValue,
    env: Env,
    live: Weak<RefCell<Option<Live>>>,
}

impl Reach {
    pub(super) fn call_gateways(&self, calls: Vec<(String, ToGateway)>) {
        if let (false, Some(room)) = (calls.is_empty(), self.room()) {
            room.call_gateways(calls);
        }
    }

    /// Sends the frames the room's events left waiting, while it is in memory.
    pub(super) fn flush_sends_now(&self) {
        if let Some(room) = self.room() {
            room.flush_sends_now();
        }
    }

    /// Another handle to the room's object, while it is in memory.
    fn room(&self) -> Option<Room> {
        Some(Room {
            state: State::from(self.state.clone().unchecked_into::<DurableObjectState>()),
            env: Env::clone(&self.env),
            live: self.live.upgrade()?,
        })
    }
}

/// One call to a gateway, and its answer (or its failure) as an event of the room's; that
/// event may send the gateway's next call.
async fn call_gateway(room: Room, gateway: String, call: ToGateway) {
    let route = Route::RelayToGateway {
        gateway: gateway.clone(),
    };
    let answer = relay::call(
        &room.env,
        GATEWAYS_BINDING,
        &gateway,
        &route,
        &call.encode(),
    )
    .await
    .and_then(|body| GatewayAnswer::decode(&body).map_err(|malformed| malformed.to_string()));
    let mut answer = Some(answer);
    let heard = room
        .event(Arrival::default(), &mut |engine, store, sockets, now| {
            let answer = answer
                .take()
                .unwrap_or_else(|| Err("the answer was heard already".to_owned()));
            gateway_answered(engine, store, sockets, &gateway, answer, now)
        })
        .await;
    if let Err(error) = heard {
        crate::edge::logs::platform_error(
            "a gateway's answer could not be heard",
            None,
            &format!("{gateway}: {error}"),
        );
    }
}

/// The answer that sends a socket to a gateway instead: the router reads its header and sends
/// the same upgrade there (a client reached without the router sees a refusal), and the next
/// `lent` sockets too, without asking.
pub(super) fn use_gateway(gateway: &str, sockjs: bool, lent: u32) -> Result<Response> {
    let route = Route::gateway_socket(gateway, sockjs);
    let answer = Response::error("this room's sockets are served by its gateways", 503)?;
    answer
        .headers()
        .set(USE_GATEWAY_HEADER, &route.to_header())?;
    if lent > 0 {
        answer.headers().set(LEASE_HEADER, &lent.to_string())?;
    }
    Ok(answer)
}

// ---- The room engine's side, in one place. ----

/// The gateway a new socket of the room goes to, if the room holds as many as it may, with
/// the sockets lent the router on it.
pub(super) fn placement(engine: &mut RoomEngine, now: u64) -> Option<(String, u32)> {
    match engine.placement(now) {
        Placement::Here => None,
        Placement::Gateway(gateway) => {
            let lent = engine.lease(&gateway, now);
            Some((gateway, lent))
        }
    }
}

fn from_gateway(
    engine: &mut RoomEngine,
    store: &mut SqliteStore,
    sockets: &mut RoomSockets,
    room: &str,
    call: &ToRoom,
    now: u64,
) -> std::result::Result<RoomAnswer, Failed> {
    // The room learns its name from its sockets, and a gateway's call may come first: the
    // route names it (members' tokens are checked against it).
    engine.name_is(room);
    engine.from_gateway(store, sockets, call, now)
}

fn gateway_answered(
    engine: &mut RoomEngine,
    store: &mut SqliteStore,
    sockets: &mut RoomSockets,
    gateway: &str,
    answer: std::result::Result<GatewayAnswer, String>,
    now: u64,
) -> std::result::Result<(), Failed> {
    engine.gateway_answered(store, sockets, gateway, answer, now)
}

/// The calls an event left for the room's gateways.
pub(super) fn calls_of<T>(turn: &mut Turn<T>) -> Vec<(String, ToGateway)> {
    std::mem::take(&mut turn.calls)
}
