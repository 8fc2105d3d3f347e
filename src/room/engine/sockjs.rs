//! The engine's side of SockJS's HTTP transports: a receiver request (`xhr`, `xhr_streaming`,
//! `eventsource`) opens a session or reads from it, an `xhr_send` carries the client's
//! messages into the room as a socket's would be. The sessions themselves are in
//! [`crate::room::sockjs`].

use super::Room;
use crate::room::http::{allow_origin, HttpOutcome, HttpRequest, HttpResponse, Method};
use crate::room::sockets::Sockets;
use crate::room::sockjs::{self as sessions, Reception, SessionSockets, HEART_BEAT_MS};
use crate::room::storage::Storage;
use crate::room::Failed;
use crate::sockjs::{self, Receiver};

impl Room {
    /// A request of one of SockJS's HTTP transports; `request.destination` is the path after
    /// the endpoint, `/{server}/{session}/{transport}`.
    pub fn sockjs(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        request: &HttpRequest,
        now: u64,
    ) -> Result<HttpOutcome, Failed> {
        self.with_sessions(sockets, now, |room, sockets| {
            room.rebuild_if_needed(store, sockets, now)?;
            room.counts.requests += 1;
            let origin = match allow_origin(&room.settings, request) {
                Ok(origin) => origin,
                Err(refusal) => return Ok(HttpOutcome::Respond(refusal)),
            };
            let Some((id, transport)) = sockjs::session_path(&request.destination) else {
                return Ok(HttpOutcome::Respond(HttpResponse::text(
                    404,
                    "not a SockJS session's address: /{server}/{session}/{transport}",
                )));
            };
            if request.method == Method::Options {
                return Ok(HttpOutcome::Respond(sessions::preflight(
                    &room.settings,
                    request,
                )));
            }
            let wanted = sessions::method_of(transport);
            if request.method != wanted {
                let allow = if wanted == Method::Get { "GET" } else { "POST" };
                let refusal = HttpResponse::text(405, format!("use {allow} for this transport"))
                    .with_header("allow", &format!("OPTIONS, {allow}"));
                return Ok(HttpOutcome::Respond(sessions::with_cors(
                    refusal,
                    origin.as_deref(),
                )));
            }
            match Receiver::of(transport) {
                Some(kind) => room.sockjs_receiver(store, sockets, request, id, kind, origin, now),
                None => room
                    .sockjs_send(store, sockets, request, id, now)
                    .map(|answer| {
                        HttpOutcome::Respond(sessions::with_cors(answer, origin.as_deref()))
                    }),
            }
        })
    }

    /// A request that reads a session's frames: opens the session if it is new.
    #[allow(clippy::too_many_arguments)]
    fn sockjs_receiver<S: Sockets>(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut SessionSockets<'_, S>,
        request: &HttpRequest,
        id: &str,
        kind: Receiver,
        origin: Option<String>,
        now: u64,
    ) -> Result<HttpOutcome, Failed> {
        let mut first = kind.prelude();
        if !sockets.sessions.contains(id) {
            sockets.sessions.opening(id, origin.clone());
            self.open_conn(store, sockets, request.peer.clone(), now)?;
            kind.encode(sockjs::OPEN, &mut first);
        }
        let listener = self.listeners.reserve();
        let reception = sockets.sessions.receive(id, kind, listener, first, now);
        let origin = origin.as_deref();
        Ok(match reception {
            Reception::Now(body) => HttpOutcome::Respond(sessions::answer(body, kind, origin)),
            Reception::Wait => {
                sockets.hold(listener);
                HttpOutcome::Wait {
                    listener,
                    timeout_ms: HEART_BEAT_MS,
                }
            }
            Reception::Stream(body) => {
                sockets.hold(listener);
                let mut keep_alive = Vec::new();
                kind.encode(sockjs::HEART_BEAT, &mut keep_alive);
                HttpOutcome::Stream {
                    listener,
                    head: sessions::answer(body, kind, origin),
                    keep_alive_ms: HEART_BEAT_MS,
                    keep_alive,
                    ends_at_ms: None,
                }
            }
        })
    }

    /// `xhr_send`: the client's messages, as one WebSocket message would bring them.
    fn sockjs_send<S: Sockets>(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut SessionSockets<'_, S>,
        request: &HttpRequest,
        id: &str,
        now: u64,
    ) -> Result<HttpResponse, Failed> {
        let Some(conn) = sockets.sessions.conn_of(id) else {
            return Ok(HttpResponse::text(
                404,
                "no such SockJS session: it ended or never began; open a new one",
            ));
        };
        let limit = max_payload(self.settings.broker.limits.max_frame_bytes);
        let length = request
            .declared_length
            .unwrap_or(0)
            .max(request.body.len() as u64);
        if length > limit as u64 {
            return Ok(HttpResponse::text(
                413,
                format!("the payload is {length} bytes; at most {limit} are read"),
            ));
        }
        if request.body.is_empty() {
            return Ok(HttpResponse::text(500, "Payload expected."));
        }
        let messages = std::str::from_utf8(&request.body)
            .ok()
            .and_then(|text| sockjs::decode_client(text).ok());
        let Some(messages) = messages else {
            return Ok(HttpResponse::text(500, "Broken JSON encoding."));
        };
        let data = messages.concat();
        self.receive_data(store, sockets, conn, data.as_bytes(), false, now)?;
        // A STOMP client's heart-beat, answered in kind as the WebSocket auto-response would.
        if !data.is_empty() && data.bytes().all(|b| b == b'\n' || b == b'\r') {
            sockets.send(conn, b"\n", false);
        }
        Ok(HttpResponse {
            status: 204,
            headers: vec![(
                "content-type".to_owned(),
                "text/plain; charset=UTF-8".to_owned(),
            )],
            body: Vec::new(),
        })
    }
}

/// The largest `xhr_send` body read: any frame the room accepts fits, however JSON escapes it
/// (at most six bytes for one).
pub fn max_payload(max_frame_bytes: usize) -> usize {
    max_frame_bytes.saturating_mul(6).saturating_add(64)
}
