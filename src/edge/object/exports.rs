//! The room object's class as the runtime sees it, exported here rather than by workers-rs's
//! `#[durable_object]`, which makes every handler `async` and turns every request into
//! workers-rs's `Request`. A message on a socket is the room's most frequent event and its
//! work is synchronous, so it is handled within the runtime's call: no promise, future or
//! microtask of its own; the alarm change it may ask for is made in the background, as after a
//! flush. A socket's upgrade is read from the runtime's request as it came: a `Request` would
//! read the request's `cf` properties, which the runtime builds for each read.

use std::rc::Rc;

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use worker::worker_sys::web_sys;
use worker::{js_sys, wasm_bindgen_futures, Env, Request, Response, Result, State};
use worker::{worker_sys, WebSocket};

use super::super::http;
use super::super::websockets::{conn_of, finish_close};
use super::{change_alarm_later, deliver, Arrival, Room};
use crate::room::routes::Route;

#[wasm_bindgen(wasm_bindgen_futures = ::worker::wasm_bindgen_futures)]
impl Room {
    #[wasm_bindgen(constructor)]
    pub fn constructed(state: worker_sys::DurableObjectState, env: Env) -> Room {
        Room::new(State::from(state), env)
    }

    #[wasm_bindgen(js_name = fetch)]
    pub async fn fetch_request(
        &self,
        req: web_sys::Request,
    ) -> std::result::Result<JsValue, JsValue> {
        let (headers, route) = http::attached_route(&req).map_err(JsValue::from)?;
        let answer = match route {
            Some(Route::Socket {
                room,
                sockjs,
                at_endpoint,
            }) => self.open_socket(&headers, room, sockjs, at_endpoint).await,
            _ => self.fetch(Request::from(req)).await,
        };
        http::to_runtime(answer)
    }

    /// A message on one of the room's sockets: text, or an `ArrayBuffer` for binary.
    #[wasm_bindgen(js_name = webSocketMessage)]
    pub fn web_socket_message(
        &self,
        ws: web_sys::WebSocket,
        message: JsValue,
    ) -> std::result::Result<(), JsValue> {
        let ws = WebSocket::from(ws);
        let handled = match message.as_string() {
            Some(text) => self.message_arrived(&ws, text.as_bytes(), false),
            None => {
                let bytes = js_sys::Uint8Array::new(&message).to_vec();
                self.message_arrived(&ws, &bytes, true)
            }
        };
        handled.map_err(JsValue::from)
    }

    #[wasm_bindgen(js_name = webSocketClose)]
    pub async fn web_socket_close(
        &self,
        ws: web_sys::WebSocket,
        code: usize,
        reason: String,
        _was_clean: bool,
    ) -> std::result::Result<JsValue, JsValue> {
        let ws = WebSocket::from(ws);
        self.closed(&ws).await.map_err(JsValue::from)?;
        finish_close(&ws, code, reason);
        Ok(JsValue::NULL)
    }

    #[wasm_bindgen(js_name = webSocketError)]
    pub async fn web_socket_error(
        &self,
        ws: web_sys::WebSocket,
        _error: JsValue,
    ) -> std::result::Result<JsValue, JsValue> {
        let ws = WebSocket::from(ws);
        self.closed(&ws).await.map_err(JsValue::from)?;
        Ok(JsValue::NULL)
    }

    #[wasm_bindgen(js_name = alarm)]
    pub async fn alarm_fired(&self) -> std::result::Result<JsValue, JsValue> {
        http::to_runtime(self.alarm().await)
    }
}

impl Room {
    /// Handles a socket's message now; the alarm change it asks for follows in the background.
    fn message_arrived(&self, ws: &WebSocket, data: &[u8], binary: bool) -> Result<()> {
        let kept = self
            .live
            .borrow()
            .as_ref()
            .and_then(|live| live.sockets.id_of(ws));
        let Some(conn) = kept.or_else(|| conn_of(&self.state, ws)) else {
            let _ = ws.close(Some(1011), Some("unknown connection"));
            return Ok(());
        };
        let alarm = self.handle(Arrival::default(), &mut |room, store, sockets, now| {
            room.receive(store, sockets, conn, data, binary, now)
        })?;
        self.flush_sends_soon();
        change_alarm_later(Rc::downgrade(&self.live), self.state.storage(), alarm);
        Ok(())
    }

    async fn alarm(&self) -> Result<Response> {
        let mut batch = None;
        self.event(Arrival::default(), &mut |room, store, sockets, now| {
            room.alarm(store, sockets, now)?;
            batch = room.webhook_batch(store, now)?;
            Ok(())
        })
        .await?;
        // The webhook POST goes out after the event, in the background: the alarm returns at
        // once, so a slow receiver never holds back the room's next deadlines.
        if let Some(batch) = batch {
            let live = Rc::downgrade(&self.live);
            let reach = self.reach();
            wasm_bindgen_futures::spawn_local(deliver(batch, live, self.state.storage(), reach));
        }
        Response::ok("ok")
    }
}
