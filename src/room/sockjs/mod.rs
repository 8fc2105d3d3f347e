//! SockJS sessions over HTTP: a STOMP connection whose frames travel in HTTP requests
//! (`xhr` polling with `xhr_send`, `xhr_streaming`, `eventsource`) instead of a WebSocket.
//!
//! A session is a connection of the room like any other (the same broker, limits, tokens and
//! history); what differs is how its frames leave. The room's sends to it go into the
//! session ([`SessionSockets`]), which hands them to its one receiver (the open request that
//! reads frames) at once, or keeps them until the next receiver comes. A second receiver
//! while one is open gets `c[2010,"Another connection still open"]`. A session with no
//! receiver for [`DISCONNECT_DELAY_MS`] ends (its connection closes, as when a socket goes);
//! one the room closed answers every later receiver with its close frame until then.
//!
//! Sessions live in memory only: while a receiver is open the request keeps the object
//! awake, and between two polls the gap is milliseconds, far below the 10 s of quiet that
//! eviction needs. A session that is lost anyway (the object restarted) is unknown to the
//! room: the client's next receiver opens a new session, whose `o` frame sockjs-client takes
//! as "Server lost session" (close code 1006); its STOMP client reconnects from there.

mod outlet;

use std::collections::HashMap;

pub use outlet::SessionSockets;

use super::endpoints::Endpoint;
use super::http::{allow_origin, HttpRequest, HttpResponse, ListenerId, Method};
use super::session::ConnId;
use super::settings::Settings;
use super::sockets::Sockets;
use crate::sockjs::{self, Receiver, Transport};

/// How long a session waits for its next receiver before it ends, in ms (SockJS's default).
pub const DISCONNECT_DELAY_MS: u64 = 5_000;

/// How often an open receiver gets a heart-beat frame `h` while no other frame comes, in ms
/// (SockJS's default). A waiting poll is answered with one after this long.
pub const HEART_BEAT_MS: u64 = 25_000;

/// A streaming answer ends once it has carried this many bytes, and the client opens the next
/// (SockJS's default): browsers keep a streaming XHR's whole body in memory.
pub const RESPONSE_LIMIT: usize = 128 * 1024;

/// The open request a session's frames go to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Receiving {
    listener: ListenerId,
    kind: Receiver,
    /// Bytes streamed so far (for [`RESPONSE_LIMIT`]).
    streamed: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Session {
    conn: ConnId,
    /// Messages (STOMP frames) not yet handed to a receiver.
    waiting: Vec<String>,
    /// The close frame, once the room has closed the connection.
    closed: Option<String>,
    receiver: Option<Receiving>,
    /// Since when the session has had no receiver; it ends [`DISCONNECT_DELAY_MS`] after.
    idle_since: Option<u64>,
    /// The page's origin, for the CORS headers of answers given later.
    origin: Option<String>,
    /// Bytes after which a streaming answer ends.
    response_limit: usize,
}

/// What a receiver request gets from its session: frames, each encoded for the receiver
/// (a line, or an event), each to be sent in a chunk of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reception {
    /// These frames, and nothing more (a poll with frames waiting, a refusal, a closed
    /// session).
    Now(Vec<Vec<u8>>),
    /// A poll with nothing waiting: hold it; it is answered by the next frames, or with `h`
    /// after [`HEART_BEAT_MS`].
    Wait,
    /// A streaming receiver: these frames, then the answer stays open for more.
    Stream(Vec<Vec<u8>>),
}

/// A session about to open.
#[derive(Debug)]
struct Opening {
    id: String,
    origin: Option<String>,
    response_limit: usize,
}

/// The room's SockJS sessions over HTTP, by session id.
#[derive(Debug, Default)]
pub struct SockJsSessions {
    by_id: HashMap<String, Session>,
    by_conn: HashMap<ConnId, String>,
    by_listener: HashMap<ListenerId, String>,
    /// The session whose connection the room is opening: its `accept` is not a socket's.
    opening: Option<Opening>,
}

impl SockJsSessions {
    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// The open connection of a session (`None` once the room closed it).
    pub fn conn_of(&self, id: &str) -> Option<ConnId> {
        self.by_id
            .get(id)
            .filter(|session| session.closed.is_none())
            .map(|session| session.conn)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Receivers open now.
    pub fn receivers(&self) -> usize {
        self.by_listener.len()
    }

    /// The next connection the room opens belongs to this new session, whose streaming
    /// answers end after `response_limit` bytes ([`RESPONSE_LIMIT`] but for test services).
    pub fn opening(&mut self, id: &str, origin: Option<String>, response_limit: usize) {
        self.opening = Some(Opening {
            id: id.to_owned(),
            origin,
            response_limit,
        });
    }

    /// A receiver request for a session, as `listener`: what it gets now. `opened`: the
    /// session has just been opened for it, so it gets the `o` frame first.
    pub fn receive(
        &mut self,
        id: &str,
        kind: Receiver,
        listener: ListenerId,
        opened: bool,
        now: u64,
    ) -> Reception {
        let encoded = |frame: &str| {
            let mut bytes = Vec::new();
            kind.encode(frame, &mut bytes);
            bytes
        };
        let Some(session) = self.by_id.get_mut(id) else {
            return Reception::Now(Vec::new());
        };
        if session.receiver.is_some() {
            return Reception::Now(vec![encoded(&sockjs::another_connection_open())]);
        }
        let mut frames: Vec<Vec<u8>> = opened.then(|| encoded(sockjs::OPEN)).into_iter().collect();
        if !kind.streams() && opened {
            // A new session's first poll is answered with `o` alone; what the room sent
            // meanwhile waits for the next.
            session.idle_since = Some(now);
            return Reception::Now(frames);
        }
        let had_frames = session.take_frames(kind, &mut frames);
        if session.closed.is_some() || (had_frames && !kind.streams()) {
            session.idle_since = Some(now);
            return Reception::Now(frames);
        }
        session.receiver = Some(Receiving {
            listener,
            kind,
            streamed: 0,
        });
        session.idle_since = None;
        self.by_listener.insert(listener, id.to_owned());
        if kind.streams() {
            Reception::Stream(frames)
        } else {
            Reception::Wait
        }
    }

    /// A waiting poll reached [`HEART_BEAT_MS`]: its answer, a heart-beat frame (`None` if it
    /// is no session's).
    pub fn poll_timed_out(&mut self, listener: ListenerId, now: u64) -> Option<HttpResponse> {
        let session = self.detach(listener, now)?;
        let mut body = Vec::new();
        Receiver::Polling.encode(sockjs::HEART_BEAT, &mut body);
        Some(answer(body, Receiver::Polling, session.origin.as_deref()))
    }

    /// A receiver's client went away before its answer ended; `false` if it is no session's.
    /// The session is over, as SockJS says: later receivers get
    /// `c[1002,"Connection interrupted"]`, and its connection closes when it ends.
    pub fn receiver_gone(&mut self, listener: ListenerId, now: u64) -> bool {
        let Some(id) = self.by_listener.get(&listener).cloned() else {
            return false;
        };
        self.detach(listener, now);
        if let Some(session) = self.by_id.get_mut(&id) {
            session
                .closed
                .get_or_insert_with(|| sockjs::close_frame(1002, "Connection interrupted"));
        }
        true
    }

    /// When the next idle session ends.
    pub fn next_deadline(&self) -> Option<u64> {
        self.by_id
            .values()
            .filter_map(|s| s.idle_since)
            .min()
            .map(|since| since + DISCONNECT_DELAY_MS)
    }

    /// Ends the sessions idle for [`DISCONNECT_DELAY_MS`] at `now`: the connections of those
    /// the room has not closed, for it to close.
    pub fn expire(&mut self, now: u64) -> Vec<ConnId> {
        let ended: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, s)| s.idle_since.is_some_and(|t| t + DISCONNECT_DELAY_MS <= now))
            .map(|(id, _)| id.clone())
            .collect();
        let mut open = Vec::new();
        for id in ended {
            if let Some(session) = self.by_id.remove(&id) {
                if self.by_conn.remove(&session.conn).is_some() {
                    open.push(session.conn);
                }
            }
        }
        open
    }

    /// The receiver `listener` is no longer open: its session starts waiting for the next.
    fn detach(&mut self, listener: ListenerId, now: u64) -> Option<&Session> {
        let id = self.by_listener.remove(&listener)?;
        let session = self.by_id.get_mut(&id)?;
        session.receiver = None;
        session.idle_since = Some(now);
        Some(session)
    }

    /// The connection just opened belongs to the session being opened (if any).
    fn accept(&mut self, conn: ConnId, now: u64) -> bool {
        let Some(Opening {
            id,
            origin,
            response_limit,
        }) = self.opening.take()
        else {
            return false;
        };
        self.by_conn.insert(conn, id.clone());
        self.by_id.insert(
            id,
            Session {
                conn,
                waiting: Vec::new(),
                closed: None,
                receiver: None,
                idle_since: Some(now),
                origin,
                response_limit,
            },
        );
        true
    }

    fn is_session(&self, conn: ConnId) -> bool {
        !self.by_conn.is_empty() && self.by_conn.contains_key(&conn)
    }

    /// The room sends a message to a session's connection.
    fn send(&mut self, conn: ConnId, bytes: &[u8], sockets: &mut impl Sockets, now: u64) {
        let Some(id) = self.by_conn.get(&conn) else {
            return;
        };
        let Some(session) = self.by_id.get_mut(id) else {
            return;
        };
        // SockJS carries text: a binary STOMP frame is passed on as text.
        session
            .waiting
            .push(String::from_utf8_lossy(bytes).into_owned());
        self.hand_over(conn, sockets, now);
    }

    /// The room closes a session's connection.
    fn close(
        &mut self,
        conn: ConnId,
        code: u16,
        reason: &str,
        sockets: &mut impl Sockets,
        now: u64,
    ) {
        let Some(session) = self
            .by_conn
            .get(&conn)
            .and_then(|id| self.by_id.get_mut(id))
        else {
            return;
        };
        session.closed = Some(sockjs::close_frame(code, reason));
        self.hand_over(conn, sockets, now);
        self.by_conn.remove(&conn);
    }

    /// Gives what a session has waiting to its receiver, if it has one.
    fn hand_over(&mut self, conn: ConnId, sockets: &mut impl Sockets, now: u64) {
        let Some(id) = self.by_conn.get(&conn) else {
            return;
        };
        let Some(session) = self.by_id.get_mut(id) else {
            return;
        };
        let Some(receiving) = session.receiver.clone() else {
            return;
        };
        let mut frames = Vec::new();
        if !session.take_frames(receiving.kind, &mut frames) {
            return;
        }
        let listener = receiving.listener;
        let done = if receiving.kind.streams() {
            if !frames.iter().all(|frame| sockets.stream(listener, frame)) {
                // The client has gone (and the room forgets its receiver): it takes no more
                // frames, and sockjs-client does not come back to a session whose receiver
                // failed.
                true
            } else {
                let bytes: usize = frames.iter().map(Vec::len).sum();
                let streamed = receiving.streamed + bytes;
                let done = session.closed.is_some() || streamed >= session.response_limit;
                if done {
                    sockets.end(listener);
                } else if let Some(open) = session.receiver.as_mut() {
                    open.streamed = streamed;
                }
                done
            }
        } else {
            sockets.answer(
                listener,
                answer(frames.concat(), receiving.kind, session.origin.as_deref()),
            );
            true
        };
        if done {
            self.detach(listener, now);
        }
    }
}

impl Session {
    /// Appends the waiting messages (one `a[…]` frame) and the close frame, each encoded for
    /// `kind`; `false` if there were none.
    fn take_frames(&mut self, kind: Receiver, into: &mut Vec<Vec<u8>>) -> bool {
        let waiting = !self.waiting.is_empty();
        if waiting {
            let frame = sockjs::messages_frame(self.waiting.iter().map(String::as_str));
            self.waiting.clear();
            let mut bytes = Vec::new();
            kind.encode(&frame, &mut bytes);
            into.push(bytes);
        }
        if let Some(close) = &self.closed {
            let mut bytes = Vec::new();
            kind.encode(close, &mut bytes);
            into.push(bytes);
        }
        waiting || self.closed.is_some()
    }
}

/// A receiver's answer (or a streaming answer's head).
pub fn answer(body: Vec<u8>, kind: Receiver, origin: Option<&str>) -> HttpResponse {
    let mut response = HttpResponse {
        status: 200,
        headers: vec![("content-type".to_owned(), kind.content_type().to_owned())],
        body,
    };
    if kind == Receiver::XhrStreaming {
        // Cloudflare gzips `application/javascript` for clients that accept it, and a
        // compressor holds a stream's frames back until it has enough of them: a stated
        // encoding is passed on as it is.
        response = response.with_header("content-encoding", "identity");
    }
    with_cors(response, origin)
}

/// SockJS's headers on any answer: CORS with credentials, and no caching.
pub fn with_cors(response: HttpResponse, origin: Option<&str>) -> HttpResponse {
    allow_page(
        response.with_header(
            "cache-control",
            "no-store, no-cache, no-transform, must-revalidate, max-age=0",
        ),
        origin,
    )
}

/// The method a transport's requests use.
pub fn method_of(transport: Transport) -> Method {
    match transport {
        Transport::EventSource | Transport::WebSocket => Method::Get,
        Transport::Xhr | Transport::XhrSend | Transport::XhrStreaming => Method::Post,
    }
}

/// The answer to a CORS preflight (`OPTIONS`) of `/info` or a transport, cacheable for a
/// year as SockJS asks; a page whose origin is not allowed is refused.
pub fn preflight(settings: &Settings, request: &HttpRequest, now: u64) -> HttpResponse {
    let origin = match allow_origin(settings, request) {
        Ok(origin) => origin,
        Err(refusal) => return refusal,
    };
    let transport = sockjs::session_path(&request.destination).map(|(_, t)| t);
    let reads = request.destination == "/info" || transport.map(method_of) == Some(Method::Get);
    let methods = if reads {
        "OPTIONS, GET"
    } else {
        "OPTIONS, POST"
    };
    let response = HttpResponse {
        status: 204,
        headers: vec![
            ("allow".to_owned(), methods.to_owned()),
            (
                "access-control-allow-methods".to_owned(),
                methods.to_owned(),
            ),
            ("access-control-max-age".to_owned(), "31536000".to_owned()),
            (
                "cache-control".to_owned(),
                "public, max-age=31536000".to_owned(),
            ),
            ("expires".to_owned(), http_date(now + YEAR_MS)),
        ],
        body: Vec::new(),
    };
    let response = match request.header("access-control-request-headers") {
        Some(asked) => response.with_header("access-control-allow-headers", asked),
        None => response,
    };
    allow_page(response, origin.as_deref())
}

const YEAR_MS: u64 = 365 * 24 * 3600 * 1000;

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) for a time in ms since the epoch.
pub fn http_date(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let (hour, minute, second) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Days to a civil date (Howard Hinnant's algorithm), for dates after 1970.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year} {hour:02}:{minute:02}:{second:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize]
    )
}

/// sockjs-client's first request, `GET {endpoint}/info`: what the endpoint offers, uncached.
pub fn info(endpoint: Endpoint, request: &HttpRequest, entropy: u32) -> HttpResponse {
    let body = sockjs::info(endpoint.websocket, endpoint.cookie_needed, entropy);
    let response = HttpResponse {
        status: 200,
        headers: vec![(
            "content-type".to_owned(),
            "application/json; charset=UTF-8".to_owned(),
        )],
        body: body.into_bytes(),
    };
    with_cors(response, request.header("origin"))
}

/// Lets the page that asked read the answer: its own origin with credentials (sockjs-client
/// sends its requests with credentials, so `*` would not do), or `*` without one.
fn allow_page(response: HttpResponse, origin: Option<&str>) -> HttpResponse {
    match origin {
        Some(origin) => response
            .with_header("access-control-allow-origin", origin)
            .with_header("access-control-allow-credentials", "true")
            .with_header("vary", "Origin"),
        None => response.with_header("access-control-allow-origin", "*"),
    }
}

#[cfg(test)]
mod tests {
    use super::http_date;

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            http_date(1_709_210_096_000),
            "Thu, 29 Feb 2024 12:34:56 GMT"
        );
    }
}
