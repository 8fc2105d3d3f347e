//! The gateway object's class as the runtime sees it, exported here rather than by
//! workers-rs's `#[durable_object]`, for the reason the room's are (see the room's
//! `exports`): a socket's upgrade is read from the runtime's request as it came, without
//! workers-rs's `Request`, which reads the request's `cf` properties.

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use worker::worker_sys::{web_sys, DurableObjectState};
use worker::{js_sys, Env, Request, State, WebSocket};

use super::super::http;
use super::Gateway;
use crate::room::routes::Route;

#[wasm_bindgen(wasm_bindgen_futures = ::worker::wasm_bindgen_futures)]
impl Gateway {
    #[wasm_bindgen(constructor)]
    pub fn constructed(state: DurableObjectState, env: Env) -> Gateway {
        Gateway::new(State::from(state), env)
    }

    #[wasm_bindgen(js_name = fetch)]
    pub async fn fetch_request(
        &self,
        req: web_sys::Request,
    ) -> std::result::Result<JsValue, JsValue> {
        let (headers, route) = http::attached_route(&req).map_err(JsValue::from)?;
        let answer = match route {
            Some(Route::GatewaySocket { gateway, sockjs }) => {
                self.open_socket(&headers, &gateway, sockjs).await
            }
            _ => self.fetch(Request::from(req)).await,
        };
        http::to_runtime(answer)
    }

    /// A message on one of the gateway's sockets: text, or an `ArrayBuffer` for binary.
    #[wasm_bindgen(js_name = webSocketMessage)]
    pub async fn web_socket_message(
        &self,
        ws: web_sys::WebSocket,
        message: JsValue,
    ) -> std::result::Result<JsValue, JsValue> {
        let ws = WebSocket::from(ws);
        let handled = match message.as_string() {
            Some(text) => self.websocket_message(ws, text.as_bytes(), false).await,
            None => {
                let bytes = js_sys::Uint8Array::new(&message).to_vec();
                self.websocket_message(ws, &bytes, true).await
            }
        };
        handled.map(|()| JsValue::NULL).map_err(JsValue::from)
    }

    #[wasm_bindgen(js_name = webSocketClose)]
    pub async fn web_socket_close(
        &self,
        ws: web_sys::WebSocket,
        code: usize,
        reason: String,
        was_clean: bool,
    ) -> std::result::Result<JsValue, JsValue> {
        self.websocket_close(WebSocket::from(ws), code, reason, was_clean)
            .await
            .map(|()| JsValue::NULL)
            .map_err(JsValue::from)
    }

    #[wasm_bindgen(js_name = webSocketError)]
    pub async fn web_socket_error(
        &self,
        ws: web_sys::WebSocket,
        _error: JsValue,
    ) -> std::result::Result<JsValue, JsValue> {
        self.websocket_error(WebSocket::from(ws))
            .await
            .map(|()| JsValue::NULL)
            .map_err(JsValue::from)
    }

    #[wasm_bindgen(js_name = alarm)]
    pub async fn alarm_fired(&self) -> std::result::Result<JsValue, JsValue> {
        http::to_runtime(self.alarm().await)
    }
}
