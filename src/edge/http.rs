//! Carries the HTTP rungs between the runtime and the room: a `Request` becomes an
//! [`HttpRequest`], an [`HttpResponse`] a `Response`, and an open request (a long poll, an
//! event stream) a channel the room pushes into through [`RoomSockets`](super::websockets).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::mpsc::{self, UnboundedReceiver, UnboundedSender};
use futures::{future, stream, StreamExt};
use wasm_bindgen::JsValue;
use worker::worker_sys::web_sys;
use worker::{Delay, Headers, Method as HttpMethod, Request, Response, Result};

use crate::room::http::{query_pairs, HttpRequest, HttpResponse, Joined, Method, MAX_JOINED_BYTES};
use crate::room::routes::Route;
use crate::room::Peer;

/// A request as an object has it from the runtime: its headers, and the route the router (or
/// another object) attached, read without making workers-rs's `Request`, which reads the
/// request's `cf` properties (see the objects' `exports`).
pub fn attached_route(req: &web_sys::Request) -> Result<(Headers, Option<Route>)> {
    let headers = Headers(req.headers());
    let route = headers.get(super::ROUTE_HEADER)?;
    Ok((headers, route.as_deref().and_then(Route::from_header)))
}

/// A handler's answer as the runtime takes it.
pub fn to_runtime(answer: Result<Response>) -> std::result::Result<JsValue, JsValue> {
    answer
        .map(|answer| web_sys::Response::from(answer).into())
        .map_err(JsValue::from)
}

/// What the room pushes into an open request.
pub enum Push {
    /// A long poll's answer.
    Answer(HttpResponse),
    /// The next bytes of an event stream.
    Bytes(Vec<u8>),
    /// The end of an event stream.
    End,
}

/// The room's end of an open request, counting what it pushed that the client has not read.
pub struct Outlet {
    sender: UnboundedSender<Push>,
    unread: Rc<Cell<usize>>,
}

/// An open request's two ends: the room's, and what its response reads from.
pub fn outlet() -> (Outlet, Pushed) {
    let (sender, receiver) = mpsc::unbounded();
    let unread = Rc::new(Cell::new(0));
    let pushed = Pushed {
        receiver,
        unread: unread.clone(),
    };
    (Outlet { sender, unread }, pushed)
}

impl Outlet {
    /// Pushes into the request: the bytes now unread, or `None` when its client has gone.
    pub fn push(&self, push: Push) -> Option<usize> {
        if let Push::Bytes(bytes) = &push {
            self.unread.set(self.unread.get() + bytes.len());
        }
        self.sender.unbounded_send(push).ok()?;
        Some(self.unread.get())
    }

    /// Bytes pushed that the response has not yet passed on.
    pub fn unread(&self) -> usize {
        self.unread.get()
    }
}

/// What an open request's response reads: the room's pushes, and the count of bytes unread.
pub struct Pushed {
    pub receiver: UnboundedReceiver<Push>,
    unread: Rc<Cell<usize>>,
}

/// The request as the room sees it. The body is read only when the room says the request
/// takes one (`max_body`), and never past that: a body without a length (or longer than it
/// says) stops being read at `max_body + 1` bytes, and the room refuses it by that length.
pub async fn read_request(
    req: &mut Request,
    room: &str,
    destination: &str,
    max_body: Option<usize>,
) -> Result<HttpRequest> {
    let method = match req.method() {
        HttpMethod::Get => Method::Get,
        HttpMethod::Post => Method::Post,
        HttpMethod::Options => Method::Options,
        _ => Method::Other,
    };
    let mut request = head_of(req, room, destination, method)?;
    let Some(max_body) = max_body.filter(|_| method == Method::Post) else {
        return Ok(request);
    };
    // A body declared over the limit is not read at all.
    if request.declared_length.is_some_and(|n| n > max_body as u64) {
        return Ok(request);
    }
    let Ok(mut body) = req.stream() else {
        return Ok(request);
    };
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if request.body.len() + chunk.len() > max_body {
            request.declared_length = Some((request.body.len() + chunk.len()) as u64);
            request.body.clear();
            break;
        }
        request.body.extend(chunk);
    }
    Ok(request)
}

/// The request without its body (enough for a CORS preflight).
pub fn head_of(
    req: &Request,
    room: &str,
    destination: &str,
    method: Method,
) -> Result<HttpRequest> {
    // The raw URL, not `Request::url()`: parsing it with the `url` crate would bring its
    // IDNA tables into the Worker (about 100 KB gzipped) for nothing a room needs.
    let url = req.inner().url();
    let query = url.split_once('?').map_or("", |(_, query)| query);
    Ok(HttpRequest {
        method,
        destination: destination.to_owned(),
        query: query_pairs(query),
        headers: req
            .headers()
            .entries()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .filter(|(name, _)| name != super::ROUTE_HEADER)
            .collect(),
        body: Vec::new(),
        declared_length: req
            .headers()
            .get("Content-Length")?
            .and_then(|length| length.trim().parse().ok()),
        peer: Peer {
            room: room.to_owned(),
            address: req.headers().get("CF-Connecting-IP")?,
            sockjs: false,
        },
    })
}

pub fn to_response(answer: HttpResponse) -> Result<Response> {
    let headers = headers_of(&answer)?;
    // A 204 has no body at all, not an empty one.
    let response = if answer.body.is_empty() {
        Response::empty()?
    } else {
        Response::from_bytes(answer.body)?
    };
    Ok(response.with_status(answer.status).with_headers(headers))
}

/// An event stream: the head's body first, then what the room pushes until it pushes
/// [`Push::End`] (it does when the stream's token expires, too), pushes that are ready
/// together joined into one write when `join_writes` ([`Joined`]), with `keep_alive` every
/// `keep_alive_ms` so proxies keep an idle stream open. What the room pushed stops counting
/// as unread once the response passes it on. `keep` lives as long as the stream.
pub fn stream_response(
    head: HttpResponse,
    pushed: Pushed,
    keep_alive: (Vec<u8>, u64),
    join_writes: bool,
    keep: impl Sized + 'static,
) -> Result<Response> {
    let headers = headers_of(&head)?;
    let Pushed { receiver, unread } = pushed;
    // `None` marks the end the room asked for.
    let events = receiver.filter_map(move |push| {
        future::ready(match push {
            Push::Bytes(bytes) => {
                unread.set(unread.get().saturating_sub(bytes.len()));
                Some(Some(bytes))
            }
            Push::End => Some(None),
            Push::Answer(_) => None,
        })
    });
    // Pushes ready together leave as one write (see `Joined`); a bound of one push, each alone.
    let events = Joined::new(events, if join_writes { MAX_JOINED_BYTES } else { 0 });
    let (keep_alive, keep_alive_ms) = keep_alive;
    let keep_alive = stream::unfold(keep_alive, move |bytes| async move {
        Delay::from(Duration::from_millis(keep_alive_ms.max(1000))).await;
        Some((Some(bytes.clone()), bytes))
    });
    let body = stream::once(future::ready(Some(head.body)))
        .chain(stream::select(events, keep_alive))
        .take_while(|chunk| future::ready(chunk.is_some()))
        .filter_map(future::ready)
        .map(move |chunk| {
            let _ = &keep;
            Ok::<Vec<u8>, worker::Error>(chunk)
        });
    Ok(Response::from_stream(body)?
        .with_status(head.status)
        .with_headers(headers))
}

fn headers_of(answer: &HttpResponse) -> Result<Headers> {
    let headers = Headers::new();
    for (name, value) in &answer.headers {
        headers.append(name, value)?;
    }
    Ok(headers)
}
