//! The room's [`Sockets`]: hibernatable WebSockets, each tagged with its connection id and
//! carrying its session as its attachment. A fan-out crosses from wasm into JavaScript once,
//! however many sockets it reaches (see [`OpenSockets`]).

use std::collections::HashMap;

use wasm_bindgen::{prelude::wasm_bindgen, JsCast, JsValue};
use worker::{js_sys, web_sys, State, WebSocket};

use super::http::{Outlet, Push};
use crate::room::http::{HttpResponse, ListenerId};
use crate::room::{ConnId, Sockets};

/// Tags a socket with its connection id: `c{id}`.
const CONN_TAG_PREFIX: &str = "c";

#[wasm_bindgen]
extern "C" {
    /// The Durable Object state, typed for the one hibernation call workers-rs does not bind.
    pub(crate) type HibernationState;

    /// When the runtime last answered this socket with the auto-response (a `Date`), or null.
    #[wasm_bindgen(method, catch, js_name = getWebSocketAutoResponseTimestamp)]
    pub(crate) fn auto_response_timestamp(
        this: &HibernationState,
        ws: &web_sys::WebSocket,
    ) -> Result<JsValue, JsValue>;

    /// Accepts a socket for hibernation with tags; throws when the object holds as many as
    /// the platform allows (workers-rs's own binding would panic).
    #[wasm_bindgen(method, catch, js_name = acceptWebSocket)]
    pub(crate) fn accept_hibernatable(
        this: &HibernationState,
        ws: &web_sys::WebSocket,
        tags: &js_sys::Array,
    ) -> Result<(), JsValue>;
}

// The loop of a fan-out, in JavaScript: one call from wasm per message however many sockets
// it reaches, where a loop in Rust pays a crossing (and its shim) per socket. `ids` and `bytes`
// are views of wasm memory, read before anything else runs; the bytes are copied once, as a
// socket may keep what it was given to send. A socket that is closing may refuse a send: its
// close event cleans up, and the sockets after it still get theirs.
#[wasm_bindgen(inline_js = r#"
export function sendTextToEach(sockets, ids, text) {
    sendToEach(sockets, ids, text);
}
export function sendBytesToEach(sockets, ids, bytes) {
    sendToEach(sockets, ids, bytes.slice());
}
function sendToEach(sockets, ids, data) {
    for (const id of ids) {
        const ws = sockets.get(id);
        if (ws === undefined) continue;
        try {
            ws.send(data);
        } catch {}
    }
}
"#)]
extern "C" {
    /// Sends `text` to each socket of `sockets` (a `Map` from id to socket) listed in `ids`.
    #[wasm_bindgen(js_name = sendTextToEach)]
    fn send_text_to_each(sockets: &js_sys::Map, ids: &[u64], text: &str);

    /// Sends `bytes`, as a binary message, to each socket of `sockets` listed in `ids`.
    #[wasm_bindgen(js_name = sendBytesToEach)]
    fn send_bytes_to_each(sockets: &js_sys::Map, ids: &[u64], bytes: &[u8]);
}

/// The handles of an object's open sockets by the id each is tagged with (a room's connection
/// ids, a gateway's member ids), kept between events. Each handle is also kept in a
/// JavaScript `Map` by the same id (a `BigInt`: exact for any `u64`), so that a fan-out hands
/// JavaScript its ids as one array instead of its sockets one by one. Both are changed only
/// here, together; they are rebuilt with the object's memory at each wake. A `WeakMap` from
/// each socket back to its id answers which connection a message came on without asking the
/// runtime for the socket's tags (a call that copies out an array of strings to parse).
pub struct OpenSockets {
    handles: HashMap<u64, WebSocket>,
    by_id: js_sys::Map,
    ids: js_sys::WeakMap,
}

impl Default for OpenSockets {
    fn default() -> Self {
        Self {
            handles: HashMap::new(),
            by_id: js_sys::Map::new(),
            ids: js_sys::WeakMap::new(),
        }
    }
}

/// A socket's handle as the key of a `WeakMap`.
fn key_of(ws: &WebSocket) -> &js_sys::Object {
    let handle: &JsValue = ws.as_ref();
    handle.unchecked_ref()
}

impl OpenSockets {
    pub fn insert(&mut self, id: u64, ws: WebSocket) {
        let id_value = JsValue::from(id);
        self.by_id.set(&id_value, ws.as_ref());
        self.ids.set(key_of(&ws), &id_value);
        self.handles.insert(id, ws);
    }

    pub fn remove(&mut self, id: u64) -> Option<WebSocket> {
        let ws = self.handles.remove(&id)?;
        self.by_id.delete(&JsValue::from(id));
        self.ids.delete(key_of(&ws));
        Some(ws)
    }

    /// The id a socket is kept under, if it is kept here.
    pub fn id_of(&self, ws: &WebSocket) -> Option<u64> {
        u64::try_from(self.ids.get(key_of(ws))).ok()
    }

    pub fn get(&self, id: u64) -> Option<&WebSocket> {
        self.handles.get(&id)
    }

    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Sends one message to each open socket among `ids` (others are skipped): text unless
    /// `binary` (or not UTF-8), as [`send_one`] sends it.
    pub fn send_to_each(&self, ids: &[u64], bytes: &[u8], binary: bool) {
        if ids.is_empty() {
            return;
        }
        match std::str::from_utf8(bytes) {
            Ok(text) if !binary => send_text_to_each(&self.by_id, ids, text),
            _ => send_bytes_to_each(&self.by_id, ids, bytes),
        }
    }
}

/// The connection id a socket was tagged with.
pub fn conn_of(state: &State, ws: &WebSocket) -> Option<ConnId> {
    state
        .get_tags(ws)
        .iter()
        .find_map(|tag| tag.strip_prefix(CONN_TAG_PREFIX)?.parse().ok())
}

/// The sockets of one room, for the duration of one event.
pub struct RoomSockets<'a> {
    pub state: &'a State,
    /// The room's open sockets, kept between events.
    pub open: &'a mut OpenSockets,
    /// A socket being opened, accepted when the room gives it its id.
    pub incoming: Option<WebSocket>,
    /// A socket whose close is being handled: listed even if the runtime no longer lists it.
    pub closing: Option<WebSocket>,
    /// The open HTTP requests (long polls, event streams), kept between events.
    pub held: &'a mut HashMap<ListenerId, Outlet>,
    /// The request being handled, kept open if the room holds it.
    pub incoming_request: Option<Outlet>,
}

impl Sockets for RoomSockets<'_> {
    fn accept(&mut self, conn: ConnId) -> bool {
        let Some(ws) = self.incoming.take() else {
            return false;
        };
        if !accept_tagged(self.state, &ws, &format!("{CONN_TAG_PREFIX}{conn}")) {
            return false;
        }
        self.open.insert(conn, ws);
        true
    }

    fn send(&mut self, conn: ConnId, bytes: &[u8], binary: bool) {
        if let Some(ws) = self.open.get(conn) {
            send_one(ws, bytes, binary);
        }
    }

    fn send_many(&mut self, conns: &[ConnId], bytes: &[u8], binary: bool) {
        self.open.send_to_each(conns, bytes, binary);
    }

    fn close(&mut self, conn: ConnId, code: u16, reason: &str) {
        if let Some(ws) = self.open.remove(conn) {
            close_without_session(&ws, code, reason);
        }
    }

    fn forget(&mut self, conn: ConnId) {
        self.open.remove(conn);
    }

    fn save_session(&mut self, conn: ConnId, session: &str) {
        if let Some(ws) = self.open.get(conn) {
            if let Err(error) = ws.serialize_attachment(session) {
                super::logs::platform_error(
                    "could not keep a connection's session",
                    None,
                    &format!("connection {conn}: {error}"),
                );
            }
        }
    }

    fn hold(&mut self, listener: ListenerId) {
        if let Some(outlet) = self.incoming_request.take() {
            self.held.insert(listener, outlet);
        }
    }

    fn answer(&mut self, listener: ListenerId, response: HttpResponse) {
        if let Some(outlet) = self.held.remove(&listener) {
            // A poll whose client has gone has nobody to tell.
            outlet.push(Push::Answer(response));
        }
    }

    fn stream(&mut self, listener: ListenerId, bytes: &[u8]) -> Option<usize> {
        let unread = self
            .held
            .get(&listener)
            .and_then(|outlet| outlet.push(Push::Bytes(bytes.to_vec())));
        if unread.is_none() {
            self.held.remove(&listener);
        }
        unread
    }

    fn unread(&self, listener: ListenerId) -> usize {
        self.held.get(&listener).map_or(0, Outlet::unread)
    }

    fn end(&mut self, listener: ListenerId) {
        if let Some(outlet) = self.held.remove(&listener) {
            outlet.push(Push::End);
        }
    }

    fn sessions(&mut self) -> Vec<(ConnId, Option<String>)> {
        let mut sockets = self.state.get_websockets();
        if let Some(closing) = &self.closing {
            let listed = conn_of(self.state, closing).is_some_and(|conn| {
                sockets
                    .iter()
                    .any(|ws| conn_of(self.state, ws) == Some(conn))
            });
            if !listed {
                sockets.push(closing.clone());
            }
        }
        let mut sessions = Vec::new();
        for ws in sockets {
            let Some(conn) = conn_of(self.state, &ws) else {
                let _ = ws.close(Some(1011), Some("unknown connection"));
                continue;
            };
            let session = ws.deserialize_attachment::<String>().ok().flatten();
            self.open.insert(conn, ws);
            sessions.push((conn, session));
        }
        sessions
    }

    fn last_ping_ms(&self, conn: ConnId) -> Option<u64> {
        let ws = self.open.get(conn)?;
        let state: &HibernationState = self.state.as_raw().unchecked_ref();
        let stamp = state.auto_response_timestamp(ws.as_ref()).ok()?;
        let date = stamp.dyn_ref::<js_sys::Date>()?;
        Some(date.get_time() as u64)
    }
}

/// Accepts a socket as hibernatable, tagged `tag`; false (logged) if the runtime refuses it.
pub(crate) fn accept_tagged(state: &State, ws: &WebSocket, tag: &str) -> bool {
    let tags = js_sys::Array::of1(&JsValue::from_str(tag));
    let state: &HibernationState = state.as_raw().unchecked_ref();
    if let Err(error) = state.accept_hibernatable(ws.as_ref(), &tags) {
        super::logs::platform_error("the runtime refused a socket", None, &format!("{error:?}"));
        return false;
    }
    true
}

/// Sends one message: text unless `binary` (or not UTF-8).
pub(crate) fn send_one(ws: &WebSocket, bytes: &[u8], binary: bool) {
    // A socket that is closing may refuse a send; its close event cleans up.
    let _ = match std::str::from_utf8(bytes) {
        Ok(text) if !binary => ws.send_with_str(text),
        _ => ws.send_with_bytes(bytes),
    };
}

/// Closes a socket and drops its session first: the runtime lists a closing socket until the
/// client answers (seconds later), and a wake meanwhile must not bring its session back to
/// life. No session: the wake closes it again, harmlessly, and it counts for nothing.
pub(crate) fn close_without_session(ws: &WebSocket, code: u16, reason: &str) {
    let _ = ws.serialize_attachment(Option::<String>::None);
    let _ = ws.close(Some(code), Some(reason));
}

/// Completes the closing handshake a client started, echoing its code; 1005 and 1006 are
/// reserved and cannot be sent, so those are answered 1000.
pub(crate) fn finish_close(ws: &WebSocket, code: usize, reason: String) {
    let code = if matches!(code, 1005 | 1006) {
        1000
    } else {
        code as u16
    };
    let _ = ws.close(Some(code), Some(reason));
}
