//! The engine's side of the HTTP rungs: who a request is, what it may do, and the answers,
//! sharing the room's message ids, history, destinations and authentication with STOMP.

use super::{HistoryPage, Outbox, RoomEngine};
use crate::room::auth::{ConnectRequest, Identity};
use crate::room::broker::{ReplayRequest, Sender, IDEMPOTENCY_HEADER};
use crate::room::budget::TRY_AGAIN_LATER;
use crate::room::destinations::{self, SubscribeTarget};
use crate::room::http::HttpCredentials;
use crate::room::http::{
    allow_origin, message_json, preflight, sse_event, HttpOutcome, HttpRequest, HttpResponse,
    Listener, ListenerId, ListenerKind, Method, KEEP_ALIVE, SSE_RETRY_MS,
};
use crate::room::log::LogEvent;
use crate::room::operator::{stats_access, StatsAccess};
use crate::room::rate::Cost;
use crate::room::session::Subscription;
use crate::room::sockets::Sockets;
use crate::room::storage::{ReadFrom, Storage, Write};
use crate::room::Failed;
use crate::stomp::{header_lines_len, Limits, Message, ProtocolError};

/// The sender of an unverified HTTP publish: there is no session to name it.
pub const HTTP_SENDER: &str = "http";

/// Request headers with this prefix become message headers: `X-Stomp-Priority: high` gives
/// `priority:high`.
const HEADER_PREFIX: &str = "x-stomp-";

/// The request header that names a publish (see [`IDEMPOTENCY_HEADER`]).
const IDEMPOTENCY_REQUEST_HEADER: &str = "idempotency-key";

/// The answer's header saying a publish repeated an earlier one (as payment APIs say it).
const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Addresses whose HTTP publish rate the room remembers before it forgets full buckets.
const MAX_REMEMBERED_ADDRESSES: usize = 1024;

/// An answer now, or a refusal (also an answer now).
type Answer<T> = Result<T, HttpResponse>;

impl RoomEngine {
    /// Handles one HTTP request to a destination of this room.
    pub fn http(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        request: &HttpRequest,
        now: u64,
    ) -> Result<HttpOutcome, Failed> {
        self.webhooks.note_room(&request.peer.room);
        self.with_sessions(sockets, now, |room, sockets| {
            room.http_request(store, sockets, request, now)
        })
    }

    /// The room's counters (`GET /rooms/{room}/stats`, with the platform's own in `extra`)
    /// for whoever [`stats_access`] admits: with `stats_token` (`STOMP_STATS_TOKEN`) set, only
    /// its bearer; otherwise whoever the room lets in (in a room with authentication, only with
    /// a token or login it accepts). A read writes nothing, and counts toward the asker's rate
    /// like any request.
    pub fn stats_request(
        &mut self,
        request: &HttpRequest,
        extra: serde_json::Map<String, serde_json::Value>,
        stats_token: Option<&str>,
        now: u64,
    ) -> HttpResponse {
        self.logs.room_is(&request.peer.room);
        self.webhooks.note_room(&request.peer.room);
        self.clock = now;
        let origin = match allow_origin(&self.settings, request) {
            Ok(origin) => origin,
            Err(refusal) => return self.refusing(request, refusal),
        };
        let admitted = match stats_access(stats_token, request) {
            StatsAccess::RoomRule => self.identify(request, now).map(|_| ()),
            StatsAccess::Operator => Ok(()),
            StatsAccess::Refused(refusal) => Err(refusal),
        };
        let admitted =
            admitted.and_then(|()| self.admit_request(request, Cost::frame(0, false), now));
        let answer = match admitted {
            Ok(()) => {
                let mut stats = self.stats();
                if let Some(fields) = stats.as_object_mut() {
                    fields.extend(extra);
                }
                HttpResponse::json(200, &stats).with_header("cache-control", "no-store")
            }
            Err(refusal) => self.refusing(request, refusal),
        };
        with_cors(answer, origin.as_deref())
    }

    /// An answer to a request, logged (and counted) as a refusal when its status is one.
    pub(super) fn refusing(&mut self, request: &HttpRequest, answer: HttpResponse) -> HttpResponse {
        let address = request.peer.address.as_deref();
        if let Some(refused) = LogEvent::refused_request(answer.status, &answer.body, address) {
            self.log(refused);
        }
        answer
    }

    /// A long poll waited as long as it may: its empty answer, with where to go on from (for
    /// a SockJS poll, a heart-beat frame).
    pub fn http_timeout(&mut self, listener: ListenerId, now: u64) -> HttpResponse {
        if let Some(heart_beat) = self.sockjs.poll_timed_out(listener, now) {
            return heart_beat;
        }
        let Some(listener) = self.listeners.remove(listener) else {
            return HttpResponse::text(410, "this poll was already answered");
        };
        with_cors(
            self.poll_answer(&HistoryPage::default(), ReadFrom::Oldest, None),
            listener.origin.as_deref(),
        )
    }

    /// The client of an event stream (or a long poll) went away.
    pub fn http_closed(&mut self, listener: ListenerId, now: u64) {
        if !self.sockjs.receiver_gone(listener, now) {
            self.listeners.remove(listener);
        }
    }

    /// Requests held open for messages; the platform never evicts a room that has any.
    pub fn open_requests(&self) -> usize {
        self.listeners.polls() + self.listeners.streams() + self.sockjs.receivers()
    }

    /// SockJS sessions over HTTP; they live in memory only.
    pub fn sockjs_sessions(&self) -> usize {
        self.sockjs.len()
    }

    fn http_request(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        request: &HttpRequest,
        now: u64,
    ) -> Result<HttpOutcome, Failed> {
        self.rebuild_if_needed(store, sockets, now)?;
        self.counts.requests += 1;
        self.logs.room_is(&request.peer.room);
        let origin = match allow_origin(&self.settings, request) {
            Ok(origin) => origin,
            Err(refusal) => return Ok(HttpOutcome::Respond(self.refusing(request, refusal))),
        };
        let answer = match request.method {
            Method::Options => Ok(HttpOutcome::Respond(preflight(&self.settings, request))),
            Method::Post => self
                .publish(store, sockets, request, now)?
                .map(HttpOutcome::Respond),
            Method::Get => self.read(store, sockets, request, origin.clone(), now)?,
            Method::Other => Err(HttpResponse::text(
                405,
                "use GET to read a destination, POST to publish to it",
            )
            .with_header("allow", "GET, POST, OPTIONS")),
        };
        Ok(match answer {
            Ok(HttpOutcome::Respond(response)) | Err(response) => {
                let response = self.refusing(request, response);
                HttpOutcome::Respond(with_cors(response, origin.as_deref()))
            }
            Ok(HttpOutcome::Stream {
                listener,
                head,
                keep_alive_ms,
                keep_alive,
                join_writes,
            }) => HttpOutcome::Stream {
                listener,
                head: with_cors(head, origin.as_deref()),
                keep_alive_ms,
                keep_alive,
                join_writes,
            },
            Ok(wait) => wait,
        })
    }

    /// A topic message went out: answers the long polls and feeds the streams waiting for it.
    /// A stream whose client leaves more unread than it may ends (EventSource reconnects and
    /// resumes after the last event it read), and the most backlogged ones end while all
    /// together leave more unread than the room may hold.
    pub(super) fn notify_listeners(&mut self, sockets: &mut impl Sockets, message: &Message) {
        let max_backlog = self.settings.http.max_stream_backlog_bytes as usize;
        let sender = Sender::stamped_on(message);
        for id in self.listeners.of(&message.destination) {
            let Some(listener) = self.listeners.get(id) else {
                continue;
            };
            if listener
                .mute
                .as_deref()
                .is_some_and(|login| sender == Some((login, true)))
            {
                continue;
            }
            let kind = listener.kind;
            match kind {
                ListenerKind::Poll => {
                    let origin = self.listeners.remove(id).and_then(|l| l.origin);
                    let page = HistoryPage {
                        messages: vec![message.clone()],
                        left_out: 0,
                        incomplete: false,
                    };
                    let answer = self.poll_answer(&page, ReadFrom::Oldest, None);
                    sockets.answer(id, with_cors(answer, origin.as_deref()));
                }
                ListenerKind::Stream => match sockets.stream(id, &sse_event(message)) {
                    None => {
                        self.listeners.remove(id);
                    }
                    Some(backlog) if backlog > max_backlog => self.end_stream(sockets, id),
                    Some(backlog) => self.listeners.set_backlog(id, backlog),
                },
            }
        }
        if self.listeners.backlog() > self.settings.http.max_backlog_bytes as usize {
            self.shed_backlog(sockets, 0);
        }
    }

    /// Ends the streams whose clients leave the most unread while all together, with
    /// `incoming` more, leave more than `http.max_backlog_bytes` (asking each stream what is
    /// unread now).
    fn shed_backlog(&mut self, sockets: &mut impl Sockets, incoming: usize) {
        let streams: Vec<ListenerId> = self.listeners.streams_ids();
        for id in streams {
            let unread = sockets.unread(id);
            self.listeners.set_backlog(id, unread);
        }
        let max_total = self.settings.http.max_backlog_bytes as usize;
        while self.listeners.backlog() + incoming > max_total {
            let Some(id) = self.listeners.most_backlogged() else {
                break;
            };
            self.end_stream(sockets, id);
        }
    }

    /// Ends an event stream: its client has fallen behind, or its token expired.
    fn end_stream(&mut self, sockets: &mut impl Sockets, id: ListenerId) {
        self.listeners.remove(id);
        sockets.end(id);
    }

    /// Ends the event streams whose tokens have expired by `now`.
    pub(super) fn end_expired_streams(&mut self, sockets: &mut impl Sockets, now: u64) {
        for id in self.listeners.ended(now) {
            self.end_stream(sockets, id);
        }
    }

    /// POST: publishes the body, answering once the message is stored.
    fn publish(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        request: &HttpRequest,
        now: u64,
    ) -> Result<Answer<HttpResponse>, Failed> {
        let prepared = self.identify(request, now).and_then(|identity| {
            identity
                .grants
                .check_publish(&request.destination)
                .map_err(|refused| HttpResponse::text(403, refused.detail))?;
            let max_body = self.settings.broker.limits.max_body_bytes;
            let length = request.declared_length.unwrap_or(0).max(request.body.len() as u64);
            if length > max_body as u64 {
                return Err(HttpResponse::text(
                    413,
                    format!(
                        "the body is {length} bytes; a message may have at most {max_body} (max_body_bytes)"
                    ),
                ));
            }
            let headers = message_headers(request, &self.settings.broker.limits)?;
            // Headers and body are one frame's worth, as a SEND's would be.
            let max_frame = self.settings.broker.limits.max_frame_bytes;
            let size = request_size(&request.destination, &headers, length);
            if size > max_frame as u64 {
                return Err(HttpResponse::text(
                    413,
                    format!(
                        "the message is {size} bytes with its headers; a message may have at \
                         most {max_frame} (max_frame_bytes)"
                    ),
                ));
            }
            let broker = &self.settings.broker;
            let refused = |error: crate::stomp::ProtocolError| HttpResponse::text(400, error.detail);
            let routed = broker
                .destinations
                .route(&request.destination, &request.body)
                .map_err(refused)?;
            destinations::parse_send(&routed, &broker.limits, &broker.destinations)
                .map_err(refused)?;
            Ok((sender_of(identity), headers))
        });
        let prepared = prepared.and_then(|(sender, headers)| {
            let size = request_size(&request.destination, &headers, request.body.len() as u64);
            let cost = Cost::frame(usize::try_from(size).unwrap_or(usize::MAX), true);
            self.admit_request(request, cost, now)?;
            Ok((sender, headers))
        });
        let (sender, headers) = match prepared {
            Ok(prepared) => prepared,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let published = self.broker.publish(
            &sender,
            &request.destination,
            headers,
            request.body.clone(),
            now,
        );
        let (published, effects) = match published {
            Ok(published) => published,
            Err(error) => return Ok(Err(refusal_of(&error))),
        };
        let outbox = Outbox {
            must_commit: true,
            ..Outbox::default()
        };
        self.finish_event(store, sockets, None, effects, outbox, now)?;
        // A repeat gets the first answer again (its key bound the same destination), saying so.
        let answer = HttpResponse::json(
            201,
            &serde_json::json!({ "id": published.id, "destination": request.destination }),
        );
        Ok(Ok(match published.repeat {
            true => answer.with_header(REPLAYED_HEADER, "true"),
            false => answer,
        }))
    }

    /// Holds an address to the rates a connection has (`publish_rate`), as one client: each
    /// request counts, and what it costs. A publish's place is stored with its commit; a
    /// read's is kept in memory only (a read writes nothing).
    fn admit_request(&mut self, request: &HttpRequest, cost: Cost, now: u64) -> Answer<()> {
        let Some(address) = &request.peer.address else {
            return Ok(());
        };
        // A full bucket is the same as none: forget those before remembering one more.
        if self.http_throttles.len() >= MAX_REMEMBERED_ADDRESSES {
            let now_us = now.saturating_mul(1000);
            self.http_throttles.retain(|_, t| !t.is_full_at(now_us));
            self.batch.push(Write::ForgetFullAddressRates { now_us });
        }
        let rate = &self.settings.broker.publish_rate;
        let throttle = self.http_throttles.entry(address.clone()).or_default();
        let admitted = throttle.admit(rate, cost, now);
        if admitted.is_ok() && cost.messages > 0 && !throttle.is_unused() {
            // Committed with the message itself: no write of its own.
            self.batch.push(Write::AddressRate {
                address: address.clone(),
                throttle: *throttle,
            });
        }
        admitted.map_err(|_| {
            HttpResponse::text(
                429,
                format!(
                    "rate limit exceeded: your address may publish {} messages per second \
                     (burst {}), make {} requests per second (burst {}) and send or read {} \
                     bytes per second (burst {}); slow down",
                    rate.messages_per_s,
                    rate.messages_burst,
                    rate.frames_per_s,
                    rate.frames_burst,
                    rate.bytes_per_s,
                    rate.bytes_burst
                ),
            )
            .with_header("retry-after", "1")
        })
    }

    /// The per-address cap on connections counts requests held open too.
    fn check_address_cap(&self, request: &HttpRequest) -> Answer<()> {
        let max = self.settings.broker.max_connections_per_address as usize;
        match &request.peer.address {
            Some(address) if max > 0 && self.listeners.from_address(address) >= max => {
                Err(too_many(format!(
                    "your address holds its maximum of {max} open requests in this room \
                     (max_connections_per_address)"
                )))
            }
            _ => Ok(()),
        }
    }

    /// GET: a short poll, a long poll or an event stream.
    fn read(
        &mut self,
        store: &impl Storage,
        sockets: &mut impl Sockets,
        request: &HttpRequest,
        origin: Option<String>,
        now: u64,
    ) -> Result<Answer<HttpOutcome>, Failed> {
        let checked = self.check_read(request, now).and_then(|checked| {
            // A read costs a request, and what it reads.
            let cost = Cost {
                frames: 1,
                ..Cost::bytes(self.broker.read_cost(&request.destination))
            };
            self.admit_request(request, cost, now)?;
            Ok(checked)
        });
        let reader = match checked {
            Ok(checked) => checked,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let position = reader.position;
        if reader.stream {
            return Ok(self.open_stream(store, sockets, request, reader, origin));
        }
        // An id the room never gave (its storage was reset, or a client made it up) would
        // skip what comes next: it counts as the room's last id.
        let last_id = self.broker.last_message_id();
        let position = position.map(|position| match position {
            ReplayRequest::After(id) => ReplayRequest::After(id.min(last_id)),
            other => other,
        });
        let wanted = position.unwrap_or(ReplayRequest::Last(self.settings.broker.history_limit));
        // Reading on after an id goes forward, page by page; any other read is the newest.
        let from = match wanted {
            ReplayRequest::After(_) => ReadFrom::Oldest,
            ReplayRequest::Last(_) => ReadFrom::Newest,
        };
        let page = self.history(store, &request.destination, wanted, from)?;
        let wait_s = match request.param("wait").map(str::parse::<u32>) {
            None => 0,
            Some(Ok(wait)) => wait.min(self.settings.http.max_wait_s),
            Some(Err(_)) => {
                return Ok(Err(HttpResponse::text(
                    400,
                    "wait must be a whole number of seconds",
                )))
            }
        };
        // A client that lost messages hears so at once, not after the next one.
        // (A page of only the reader's own messages is answered too, with nothing in it:
        // its `next_after` goes on past them.)
        if !page.messages.is_empty() || page.incomplete || wait_s == 0 {
            let answer = self.poll_answer(&page, from, reader.mute.as_deref());
            return Ok(Ok(HttpOutcome::Respond(answer)));
        }
        let max = self.settings.http.max_waiting_polls as usize;
        if self.listeners.polls() >= max {
            return Ok(Err(too_many(format!(
                "the room holds its maximum of {max} waiting polls (http.max_waiting_polls)"
            ))));
        }
        if let Err(refusal) = self.check_address_cap(request) {
            return Ok(Err(refusal));
        }
        let listener = self.listeners.add(Listener {
            destination: request.destination.clone(),
            kind: ListenerKind::Poll,
            origin,
            address: request.peer.address.clone(),
            ends_at: None,
            backlog: 0,
            mute: reader.mute,
        });
        sockets.hold(listener);
        Ok(Ok(HttpOutcome::Wait {
            listener,
            timeout_ms: u64::from(wait_s) * 1000,
        }))
    }

    /// What a GET may read and how.
    fn check_read(&self, request: &HttpRequest, now: u64) -> Answer<Reader> {
        let broker = &self.settings.broker;
        match destinations::parse_subscribe(
            &request.destination,
            &broker.limits,
            &broker.destinations,
        ) {
            Ok(SubscribeTarget::Topic) => {}
            Ok(_) => {
                return Err(HttpResponse::text(
                    400,
                    format!(
                        "{} cannot be read over HTTP: GET reads /topic/ destinations (queues, \
                         /user/ and presence are for STOMP subscribers)",
                        request.destination
                    ),
                ))
            }
            Err(error) => return Err(HttpResponse::text(400, error.detail)),
        }
        let identity = self.identify(request, now)?;
        identity
            .grants
            .check_subscribe(&request.destination)
            .map_err(|refused| HttpResponse::text(403, refused.detail))?;
        let stream = wants_stream(request).ok_or_else(|| {
            HttpResponse::text(
                406,
                "this endpoint answers application/json (polling) or text/event-stream \
                 (server-sent events); say which in Accept",
            )
        })?;
        Ok(Reader {
            stream,
            position: position(request, stream)?,
            expires_ms: identity.expires_ms,
            mute: mute(request, identity)?,
        })
    }

    fn open_stream(
        &mut self,
        store: &impl Storage,
        sockets: &mut impl Sockets,
        request: &HttpRequest,
        reader: Reader,
        origin: Option<String>,
    ) -> Answer<HttpOutcome> {
        let max = self.settings.http.max_streams as usize;
        if self.listeners.streams() >= max {
            return Err(too_many(format!(
                "the room holds its maximum of {max} event streams (http.max_streams)"
            )));
        }
        self.check_address_cap(request)?;
        let mut body = format!("retry: {SSE_RETRY_MS}\n\n").into_bytes();
        if let Some(position) = reader.position {
            let replay = self
                .history(store, &request.destination, position, ReadFrom::Newest)
                .map_err(|error| {
                    HttpResponse::text(
                        503,
                        format!("the room could not read its history ({error}); try again"),
                    )
                })?;
            let max = self.settings.broker.budget.max_read_bytes;
            let mute = reader.mute.as_deref();
            let event = |message: &Message| match muted(mute, message) {
                true => Vec::new(),
                false => sse_event(message),
            };
            let (events, left_out) = encode_within(&replay, ReadFrom::Newest, max, event);
            if replay.incomplete {
                // Named, like `skipped`: the history no longer holds everything after the
                // client's Last-Event-ID (or `after`).
                body.extend(b"event: incomplete\ndata: {\"incomplete\":true}\n\n");
            }
            if left_out > 0 {
                // A named event: EventSource's `onmessage` does not see it, a listener for
                // `skipped` does.
                body.extend(
                    format!("event: skipped\ndata: {{\"skipped\":{left_out}}}\n\n").into_bytes(),
                );
            }
            body.extend(events.concat());
        }
        // Its first bytes wait for its client like any others.
        self.shed_backlog(sockets, body.len());
        let listener = self.listeners.add(Listener {
            destination: request.destination.clone(),
            kind: ListenerKind::Stream,
            origin,
            address: request.peer.address.clone(),
            ends_at: reader.expires_ms,
            backlog: 0,
            mute: reader.mute,
        });
        sockets.hold(listener);
        let head = HttpResponse {
            status: 200,
            headers: vec![
                ("content-type".to_owned(), "text/event-stream".to_owned()),
                ("cache-control".to_owned(), "no-cache".to_owned()),
                // Tells buffering proxies to pass each event on at once.
                ("x-accel-buffering".to_owned(), "no".to_owned()),
            ],
            body,
        };
        Ok(HttpOutcome::Stream {
            listener,
            head,
            keep_alive_ms: u64::from(self.settings.http.keep_alive_s) * 1000,
            keep_alive: KEEP_ALIVE.to_vec(),
            join_writes: true,
        })
    }

    /// `{"messages": [...], "next_after": id}`: `next_after` is the id to poll after next
    /// time, so consecutive polls miss nothing and repeat nothing. With no messages it is the
    /// room's last id: anything later on this destination has a greater one (a poll's `after`
    /// never exceeds it: an id the room never gave counts as its last). An answer the read
    /// budget cut short says so: `"more": true` reading forward (poll again after
    /// `next_after` for the rest), `"skipped": n` older messages left out of the newest.
    /// A poll after an id the history no longer holds everything after says
    /// `"incomplete": true`.
    /// The messages of `mute` (a verified login, for `echo=false`) are left out of it.
    fn poll_answer(&self, page: &HistoryPage, from: ReadFrom, mute: Option<&str>) -> HttpResponse {
        let max = self.settings.broker.budget.max_read_bytes;
        // A message left out is encoded as nothing, so it still counts as read.
        let json = |message: &Message| match muted(mute, message) {
            true => Vec::new(),
            false => message_json(message).to_string().into_bytes(),
        };
        let (messages, left_out) = encode_within(page, from, max, json);
        let kept = messages.len();
        let next_after = match from {
            ReadFrom::Oldest => page.messages.get(kept.wrapping_sub(1)),
            ReadFrom::Newest => page.messages.last(),
        }
        .map_or_else(|| self.broker.last_message_id(), |m| m.id);
        let mut body = b"{\"messages\":[".to_vec();
        let sent: Vec<Vec<u8>> = messages.into_iter().filter(|m| !m.is_empty()).collect();
        body.extend(sent.join(&b","[..]));
        body.extend(format!("],\"next_after\":{next_after}").into_bytes());
        if page.incomplete {
            body.extend(b",\"incomplete\":true");
        }
        if left_out > 0 {
            body.extend(match from {
                ReadFrom::Oldest => ",\"more\":true".to_owned().into_bytes(),
                ReadFrom::Newest => format!(",\"skipped\":{left_out}").into_bytes(),
            });
        }
        body.push(b'}');
        HttpResponse {
            status: 200,
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("cache-control".to_owned(), "no-store".to_owned()),
            ],
            body,
        }
    }

    /// Who the request is, by the same rules as a CONNECT: a token (`Authorization: Bearer`,
    /// or `access_token` in the query for clients that cannot set headers, like EventSource),
    /// a login and passcode (HTTP Basic), or in an open room a claimed name (`login`).
    fn identify(&self, request: &HttpRequest, now: u64) -> Answer<Identity> {
        let HttpCredentials { bearer, basic } = HttpCredentials::of(request);
        let (login, passcode) = match &basic {
            Some((login, passcode)) => (Some(login.as_str()), Some(passcode.as_str())),
            None => (request.param("login"), None),
        };
        if let Some(login) = login {
            destinations::check_text("login", login, self.settings.broker.limits.max_id_bytes)
                .map_err(|error| HttpResponse::text(400, error.detail))?;
        }
        self.auth
            .authenticate(&ConnectRequest {
                room: &request.peer.room,
                login,
                passcode,
                bearer,
                now_ms: now,
            })
            .map_err(|reason| {
                HttpResponse::text(401, format!("authentication failed: {reason}"))
                    .with_header("www-authenticate", "Bearer")
            })
    }
}

/// A verified login sends as itself; anyone else as [`HTTP_SENDER`], with the name it claims.
fn sender_of(identity: Identity) -> Sender {
    match identity.login {
        Some(login) if identity.verified => Sender {
            identity: login,
            verified: true,
            name: None,
        },
        name => Sender {
            identity: HTTP_SENDER.to_owned(),
            verified: false,
            name,
        },
    }
}

/// What a GET reads, and how.
struct Reader {
    /// It wants an event stream (not JSON).
    stream: bool,
    /// Where it starts.
    position: Option<ReplayRequest>,
    /// When the reader's token expires (ms).
    expires_ms: Option<u64>,
    /// The verified login whose messages it leaves out (`echo=false`).
    mute: Option<String>,
}

/// With `echo=false`, the reader's verified login, whose messages the read leaves out. Over
/// HTTP only a verified reader has messages of its own: an unverified one sends as
/// [`HTTP_SENDER`], like everyone else.
fn mute(request: &HttpRequest, identity: Identity) -> Answer<Option<String>> {
    let Some(value) = request.param("echo") else {
        return Ok(None);
    };
    let echo = Subscription::parse_echo(value)
        .ok_or_else(|| HttpResponse::text(400, "echo must be true or false"))?;
    match identity.login {
        _ if echo => Ok(None),
        Some(login) if identity.verified => Ok(Some(login)),
        _ => Err(HttpResponse::text(
            400,
            "echo=false needs a verified reader (a token or a passcode): an unverified reader's \
             own messages cannot be told from anyone else's",
        )),
    }
}

/// Whether `message` was sent by `mute`'s verified login.
fn muted(mute: Option<&str>, message: &Message) -> bool {
    mute.is_some_and(|login| Sender::stamped_on(message) == Some((login, true)))
}

/// Whether a GET wants an event stream (`Some(true)`), JSON (`Some(false)`), or neither.
fn wants_stream(request: &HttpRequest) -> Option<bool> {
    let Some(accept) = request.header("accept") else {
        return Some(false);
    };
    let types: Vec<&str> = accept
        .split(',')
        .map(|part| part.split(';').next().unwrap_or("").trim())
        .collect();
    if types.contains(&"text/event-stream") {
        Some(true)
    } else if types
        .iter()
        .any(|t| matches!(*t, "application/json" | "application/*" | "*/*" | ""))
    {
        Some(false)
    } else {
        None
    }
}

/// Where a read starts: after an id (`after`, or an event stream's `Last-Event-ID`), or the
/// last `n` messages (`last`); `None` for a poll's default and a stream's live-only start.
fn position(request: &HttpRequest, stream: bool) -> Answer<Option<ReplayRequest>> {
    let resumed = stream.then(|| request.header("last-event-id")).flatten();
    if let Some(after) = resumed.or(request.param("after")) {
        return after
            .trim()
            .parse::<u64>()
            .map(|id| Some(ReplayRequest::After(id)))
            .map_err(|_| HttpResponse::text(400, "after (or Last-Event-ID) must be a message id"));
    }
    match request.param("last").map(str::parse::<u32>) {
        None => Ok(None),
        Some(Ok(n)) => Ok(Some(ReplayRequest::Last(n))),
        Some(Err(_)) => Err(HttpResponse::text(400, "last must be a number of messages")),
    }
}

/// The message headers a POST sets: its `Content-Type`, and each `X-Stomp-{name}` header.
fn message_headers(request: &HttpRequest, limits: &Limits) -> Answer<Vec<(String, String)>> {
    let mut headers = Vec::new();
    // First, so it wins over an `X-Stomp-Idempotency-Key` (a frame's first header does).
    if let Some(key) = request.header(IDEMPOTENCY_REQUEST_HEADER) {
        headers.push((IDEMPOTENCY_HEADER.to_owned(), key.to_owned()));
    }
    if let Some(content_type) = request.header("content-type") {
        headers.push(("content-type".to_owned(), content_type.to_owned()));
    }
    for (name, value) in &request.headers {
        let lower = name.to_ascii_lowercase();
        // The request's own Content-Type is the message's; a second one would contradict it.
        let Some(name) = lower
            .strip_prefix(HEADER_PREFIX)
            .filter(|name| *name != "content-type")
        else {
            continue;
        };
        if name.is_empty() || value.len() > limits.max_header_line_bytes {
            return Err(HttpResponse::text(
                400,
                format!("header {HEADER_PREFIX}{name} is empty or too long"),
            ));
        }
        headers.push((name.to_owned(), value.clone()));
    }
    if headers.len() > limits.max_headers {
        return Err(HttpResponse::text(
            400,
            format!(
                "at most {} message headers (max_headers)",
                limits.max_headers
            ),
        ));
    }
    Ok(headers)
}

/// The encodings of a page's messages that fit in `max` bytes together (at least one: a
/// client must always get on), oldest first, and how many the answer leaves out: what the
/// read left out, and what did not fit once encoded (JSON writes a control character in six
/// bytes). Reading forward the newest give way, reading the newest the oldest.
fn encode_within(
    page: &HistoryPage,
    from: ReadFrom,
    max: u64,
    encode: impl Fn(&Message) -> Vec<u8>,
) -> (Vec<Vec<u8>>, u32) {
    let mut used = 0u64;
    let mut encoded = Vec::new();
    let in_order: Box<dyn Iterator<Item = &Message>> = match from {
        ReadFrom::Oldest => Box::new(page.messages.iter()),
        ReadFrom::Newest => Box::new(page.messages.iter().rev()),
    };
    for message in in_order {
        let bytes = encode(message);
        used += bytes.len() as u64;
        if used > max && !encoded.is_empty() {
            break;
        }
        encoded.push(bytes);
    }
    let cut = (page.messages.len() - encoded.len()) as u32;
    if from == ReadFrom::Newest {
        encoded.reverse();
    }
    (encoded, page.left_out + cut)
}

/// A message's size as a frame would carry it: destination, headers and body.
fn request_size(destination: &str, headers: &[(String, String)], body: u64) -> u64 {
    (destination.len() + header_lines_len(headers)) as u64 + body
}

/// A publish the broker refused, as an HTTP answer: a message too large to store is 413, a
/// room or queue that holds all it may 507 (try later, as [`TRY_AGAIN_LATER`] tells a STOMP
/// client), anything else 400.
fn refusal_of(error: &ProtocolError) -> HttpResponse {
    if error.message == "message too large" {
        HttpResponse::text(413, error.detail.clone())
    } else if error.message == "idempotency key reused" {
        HttpResponse::text(422, error.detail.clone())
    } else if error.close_code == TRY_AGAIN_LATER {
        HttpResponse::text(507, format!("{}: {}", error.message, error.detail))
            .with_header("retry-after", "5")
    } else {
        HttpResponse::text(400, error.detail.clone())
    }
}

fn too_many(detail: String) -> HttpResponse {
    HttpResponse::text(429, format!("{detail}; try again shortly")).with_header("retry-after", "5")
}

/// Adds the CORS headers an allowed cross-origin page needs to read the answer.
fn with_cors(response: HttpResponse, origin: Option<&str>) -> HttpResponse {
    match origin {
        Some(origin) if response.header("access-control-allow-origin").is_none() => response
            .with_header("access-control-allow-origin", origin)
            .with_header(
                "access-control-expose-headers",
                "retry-after, www-authenticate, idempotent-replayed",
            )
            .with_header("vary", "Origin"),
        _ => response,
    }
}
