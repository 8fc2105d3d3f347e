//! The room over plain HTTP, the lower rungs of the ladder: publish with a POST, read with a
//! short poll, a long poll or a server-sent event stream. Requests come in as plain data
//! ([`HttpRequest`]) and answers go out as plain data ([`HttpResponse`], stream chunks), so
//! every rule here is tested natively; the Durable Object only moves bytes.
//!
//! | request | answer |
//! | --- | --- |
//! | `POST /rooms/{room}/topic/{name}` (or `/queue/`, `/user/`) | `201` `{"id": 42, "destination": …}` once stored |
//! | `GET …/topic/{name}?after={id}` or `?last={n}` | `200` `{"messages": [...], "next_after": 42}` |
//! | the same with `&wait={s}` | as soon as a message after `after` exists, or empty after `s` |
//! | `GET …/topic/{name}` with `Accept: text/event-stream` | an event per message, `id` = message id |

mod cors;
mod credentials;
mod joined;
mod json;
mod listeners;
mod request;

pub use crate::room::message_json::message_json;
pub use cors::{allow_origin, preflight, readable};
pub use credentials::HttpCredentials;
pub use joined::{Joined, MAX_JOINED_BYTES};
pub use json::sse_event;
pub use listeners::{Listener, ListenerId, ListenerKind, Listeners};
pub use request::{percent_decode, percent_encode, query_pairs, HttpRequest, HttpResponse, Method};

pub use crate::room::settings::HttpSettings;

/// What the edge does with a request the room has handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    /// Answer now.
    Respond(HttpResponse),
    /// A long poll: keep the request open. The answer comes through
    /// [`Sockets::answer`](crate::room::Sockets::answer) when a message arrives; if none has
    /// after `timeout_ms`, ask [`RoomEngine::http_timeout`](crate::room::RoomEngine::http_timeout) for it.
    Wait {
        listener: ListenerId,
        timeout_ms: u64,
    },
    /// An event stream: answer with `head` now (its body is the stream's first bytes) and keep
    /// the body open: later events come through [`Sockets::stream`](crate::room::Sockets::stream)
    /// until [`Sockets::end`](crate::room::Sockets::end) (the room ends a stream whose
    /// token expires by its alarm); send `keep_alive` every `keep_alive_ms` meanwhile. When
    /// the client goes away, tell [`RoomEngine::http_closed`](crate::room::RoomEngine::http_closed).
    Stream {
        listener: ListenerId,
        head: HttpResponse,
        keep_alive_ms: u64,
        /// [`KEEP_ALIVE`] for the ladder's event streams; SockJS's heart-beat frame for its.
        keep_alive: Vec<u8>,
        /// Whether what the room pushes while the response is still passing on its last write
        /// may leave as one write ([`Joined`]): an event stream's events, yes; a SockJS
        /// receiver's frames, no (its protocol tests read one frame per chunk, and the room
        /// already hands a session what one event sent it as one frame).
        join_writes: bool,
    },
}

/// The comment an idle event stream gets, so proxies do not close it.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// How long an event-stream client waits before reconnecting, sent first (ms).
pub const SSE_RETRY_MS: u32 = 2000;
