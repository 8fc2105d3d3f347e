//! The engine's side of SockJS's HTTP transports: a receiver request (`xhr`, `xhr_streaming`,
//! `eventsource`) opens a session or reads from it, an `xhr_send` carries the client's
//! messages into the room as a socket's would be. The sessions themselves are in
//! [`crate::room::sockjs`].

use super::RoomEngine;
use crate::room::broker::Effect;
use crate::room::http::{allow_origin, HttpOutcome, HttpRequest, HttpResponse, Method};
use crate::room::session::ConnId;
use crate::room::sockets::Sockets;
use crate::room::sockjs::services::{endpoint_of, Service};
use crate::room::sockjs::{
    self as sessions, max_payload, Carrier, Opening, Reception, SessionSockets, HEART_BEAT_MS,
};
use crate::room::storage::Storage;
use crate::room::Failed;
use crate::sockjs::{self, Receiver, Transport};

impl RoomEngine {
    /// A request of one of SockJS's HTTP transports; `request.destination` is the path after
    /// the endpoint, `/{server}/{session}/{transport}`.
    pub fn sockjs(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        request: &HttpRequest,
        now: u64,
    ) -> Result<HttpOutcome, Failed> {
        self.webhooks.note_room(&request.peer.room);
        self.with_sessions(sockets, now, |room, sockets| {
            room.rebuild_if_needed(store, sockets, now)?;
            room.counts.requests += 1;
            // Refusals are logged and counted as every other request's are.
            let origin = match allow_origin(&room.settings, request) {
                Ok(origin) => origin,
                Err(refusal) => return Ok(HttpOutcome::Respond(room.refusing(request, refusal))),
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
                    now,
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
            let outcome = match Receiver::of(transport) {
                Some(kind) => {
                    room.sockjs_receiver(store, sockets, request, id, kind, origin, now)?
                }
                None => {
                    let answer = room.sockjs_send(store, sockets, request, id, now)?;
                    let answer = room.refusing(request, answer);
                    HttpOutcome::Respond(sessions::with_cors(answer, origin.as_deref()))
                }
            };
            let cookie_needed = endpoint_of(&room.settings, &request.peer.room).cookie_needed;
            Ok(if cookie_needed && transport != Transport::XhrSend {
                with_session_cookie(outcome, request)
            } else {
                outcome
            })
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
        let opened = !sockets.sessions.contains(id);
        if opened {
            let opening = Opening {
                id: id.to_owned(),
                origin: origin.clone(),
                response_limit: endpoint_of(&self.settings, &request.peer.room).response_limit,
            };
            let carrier = Carrier::SockJsSession(opening);
            self.open_conn(store, sockets, request.peer.clone(), carrier, now)?;
        }
        let listener = self.listeners.reserve();
        let reception = sockets.sessions.receive(id, kind, listener, opened, now);
        let origin = origin.as_deref();
        let (frames, ends) = match reception {
            Reception::Now(frames) if !kind.streams() => {
                let body = frames.concat();
                return Ok(HttpOutcome::Respond(sessions::answer(body, kind, origin)));
            }
            Reception::Wait => {
                sockets.hold(listener);
                return Ok(HttpOutcome::Wait {
                    listener,
                    timeout_ms: HEART_BEAT_MS,
                });
            }
            // A streaming receiver with nothing more to come (a refusal, a closed session):
            // streamed all the same, then ended.
            Reception::Now(frames) => (frames, true),
            Reception::Stream(frames) => (frames, false),
        };
        sockets.hold(listener);
        // The prelude, then each frame in a chunk of its own, as SockJS clients (and its
        // protocol tests) read them.
        for frame in frames {
            sockets.stream(listener, &frame);
        }
        if ends {
            sockets.end(listener);
        }
        let mut keep_alive = Vec::new();
        kind.encode(sockjs::HEART_BEAT, &mut keep_alive);
        Ok(HttpOutcome::Stream {
            listener,
            head: sessions::answer(kind.prelude(), kind, origin),
            keep_alive_ms: HEART_BEAT_MS,
            keep_alive,
            join_writes: false,
        })
    }

    /// What SockJS's adapter makes of a WebSocket message: a SockJS socket's is unwrapped, a
    /// test service's echoed (`None`: STOMP for the room, as it came).
    pub(super) fn sockjs_received<S: Sockets>(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut SessionSockets<'_, S>,
        conn: ConnId,
        data: &[u8],
        binary: bool,
        now: u64,
    ) -> Option<Result<(), Failed>> {
        if sockets.sessions.is_framed(conn) {
            return Some(self.sockjs_framed(store, sockets, conn, data, binary, now));
        }
        if self.echoes(conn) {
            sockets.send_apart(conn, data, binary);
            return Some(Ok(()));
        }
        None
    }

    /// What a test service does as a connection opens: `/close` closes it at once.
    pub(super) fn test_service_opened(&mut self, conn: ConnId, now: u64) -> Vec<Effect> {
        let Some(session) = self.broker.session(conn) else {
            return Vec::new();
        };
        if endpoint_of(&self.settings, &session.room).service != Service::Close {
            return Vec::new();
        }
        let mut effects = self.broker.close(conn, now);
        effects.push(Effect::Close {
            conn,
            code: 3000,
            reason: "Go away!".to_owned(),
        });
        effects
    }

    /// Whether the connection is to the echo test service (`sockjs_test_services`).
    fn echoes(&self, conn: ConnId) -> bool {
        self.settings.sockjs_test_services
            && self.broker.session(conn).is_some_and(|session| {
                endpoint_of(&self.settings, &session.room).service == Service::Echo
            })
    }

    /// A message on a SockJS-framed socket: a JSON array of strings (or one string). Anything
    /// else (not JSON, binary) ends the socket at once, without a close frame, as SockJS
    /// servers do: the client cannot be trusted to read one.
    fn sockjs_framed<S: Sockets>(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut SessionSockets<'_, S>,
        conn: ConnId,
        data: &[u8],
        binary: bool,
        now: u64,
    ) -> Result<(), Failed> {
        // Held to what an `xhr_send` may carry before it is decoded at all.
        let limit = max_payload(self.settings.broker.limits.max_frame_bytes);
        if data.len() > limit {
            return self.conn_gone(store, sockets, conn, Some((1009, "message too large")), now);
        }
        let text = std::str::from_utf8(data).ok().filter(|_| !binary);
        match text.map(sockjs::decode_client) {
            Some(Ok(messages)) => self.sockjs_deliver(store, sockets, conn, messages, now),
            broken => {
                let reason = if broken.is_none() {
                    "SockJS sends text"
                } else {
                    "Broken framing."
                };
                self.conn_gone(store, sockets, conn, Some((1002, reason)), now)
            }
        }
    }

    /// The SockJS messages one WebSocket message or `xhr_send` brought: STOMP for the broker
    /// (whose frames may span messages), or a test service's.
    fn sockjs_deliver(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        conn: ConnId,
        messages: Vec<String>,
        now: u64,
    ) -> Result<(), Failed> {
        if self.echoes(conn) {
            for message in messages {
                sockets.send(conn, message.as_bytes(), false);
            }
            return Ok(());
        }
        let parts: Vec<&[u8]> = messages.iter().map(String::as_bytes).collect();
        self.receive_data(store, sockets, conn, &parts, false, now)?;
        // A STOMP client's heart-beat arrives framed, so the runtime's auto-response (which
        // answers a bare "\n") does not see it: answered here in kind, as it would be.
        let beats = messages
            .iter()
            .flat_map(|message| message.bytes())
            .all(|b| b == b'\n' || b == b'\r');
        if beats && messages.iter().any(|message| !message.is_empty()) {
            sockets.send(conn, b"\n", false);
        }
        Ok(())
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
        self.sockjs_deliver(store, sockets, conn, messages, now)?;
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

/// Sets the `JSESSIONID` cookie that sticky load balancers route by (`cookie_needed`): the
/// client's own, or a placeholder.
fn with_session_cookie(outcome: HttpOutcome, request: &HttpRequest) -> HttpOutcome {
    let id = request
        .header("cookie")
        .into_iter()
        .flat_map(|cookies| cookies.split(';'))
        .find_map(|cookie| cookie.trim().strip_prefix("JSESSIONID="))
        .unwrap_or("dummy");
    let cookie = format!("JSESSIONID={id}; path=/");
    match outcome {
        HttpOutcome::Respond(response) => {
            HttpOutcome::Respond(response.with_header("set-cookie", &cookie))
        }
        HttpOutcome::Stream {
            listener,
            head,
            keep_alive_ms,
            keep_alive,
            join_writes,
        } => HttpOutcome::Stream {
            listener,
            head: head.with_header("set-cookie", &cookie),
            keep_alive_ms,
            keep_alive,
            join_writes,
        },
        wait @ HttpOutcome::Wait { .. } => wait,
    }
}
