//! Carries the HTTP rungs between the runtime and the room: a `Request` becomes an
//! [`HttpRequest`], an [`HttpResponse`] a `Response`, and an open request (a long poll, an
//! event stream) a channel the room pushes into through [`RoomSockets`](super::websockets).

use std::time::Duration;

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender};
use futures::{future, stream, StreamExt};
use worker::{Delay, Headers, Method as HttpMethod, Request, Response, Result};

use crate::room::http::{percent_decode, HttpRequest, HttpResponse, Method};
use crate::room::Peer;

/// What the room pushes into an open request.
pub enum Push {
    /// A long poll's answer.
    Answer(HttpResponse),
    /// The next bytes of an event stream.
    Bytes(Vec<u8>),
    /// The end of an event stream.
    End,
}

/// The room's end of an open request.
pub type Outlet = UnboundedSender<Push>;

/// The request as the room sees it; the body is read only for a POST.
pub async fn read_request(
    req: &mut Request,
    room: &str,
    destination: &str,
    max_body: usize,
) -> Result<HttpRequest> {
    let method = match req.method() {
        HttpMethod::Get => Method::Get,
        HttpMethod::Post => Method::Post,
        HttpMethod::Options => Method::Options,
        _ => Method::Other,
    };
    let mut request = head_of(req, room, destination, method)?;
    // A body declared over the room's limit is not read: the room refuses it by its length.
    if method == Method::Post && request.declared_length.is_none_or(|n| n <= max_body as u64) {
        request.body = req.bytes().await?;
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

/// `a=1&b=x%20y` → pairs, percent-decoded (`+` is a space).
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            // An undecodable value is kept as it came, so the room refuses it by name.
            let decode = |text: &str| {
                let text = text.replace('+', " ");
                percent_decode(&text).unwrap_or(text)
            };
            (decode(name), decode(value))
        })
        .collect()
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
/// [`Push::End`], with `keep_alive` every `keep_alive_ms` so proxies keep an idle stream open;
/// it ends after `ends_after_ms` (its token expires). `keep` lives as long as the stream.
pub fn stream_response(
    head: HttpResponse,
    pushed: UnboundedReceiver<Push>,
    keep_alive: (Vec<u8>, u64),
    ends_after_ms: Option<u64>,
    keep: impl Sized + 'static,
) -> Result<Response> {
    let headers = headers_of(&head)?;
    // `None` marks the end the room asked for.
    let events = pushed.filter_map(|push| {
        future::ready(match push {
            Push::Bytes(bytes) => Some(Some(bytes)),
            Push::End => Some(None),
            Push::Answer(_) => None,
        })
    });
    let (keep_alive, keep_alive_ms) = keep_alive;
    let keep_alive = stream::unfold(keep_alive, move |bytes| async move {
        Delay::from(Duration::from_millis(keep_alive_ms.max(1000))).await;
        Some((Some(bytes.clone()), bytes))
    });
    let end = async move {
        match ends_after_ms {
            Some(ms) => Delay::from(Duration::from_millis(ms)).await,
            None => future::pending::<()>().await,
        }
    };
    let body = stream::once(future::ready(Some(head.body)))
        .chain(stream::select(events, keep_alive))
        .take_while(|chunk| future::ready(chunk.is_some()))
        .filter_map(future::ready)
        .take_until(end)
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
