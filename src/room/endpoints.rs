//! Spring-style endpoints (`endpoints` in the settings): a fixed path such as `/ws-stomp`
//! whose connections all share one room, as Spring's clients expect (their rooms live in
//! destinations). Each endpoint speaks STOMP over a plain WebSocket at its path and at
//! `{path}/websocket`, and through SockJS at `{path}/{server}/{session}/{transport}`: the
//! `websocket` transport, and the HTTP ones (`xhr`, `xhr_send`, `xhr_streaming`,
//! `eventsource`; see [`crate::room::sockjs`]), with `{path}/info` for sockjs-client.

use crate::room_name;
use crate::sockjs::{self, Transport};

/// What a request to an endpoint asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointRequest {
    /// A WebSocket carrying STOMP frames as they are (`{path}`, `{path}/websocket`).
    PlainWebSocket,
    /// A WebSocket carrying SockJS frames (`{path}/{server}/{session}/websocket`).
    SockJsWebSocket,
    /// A request of one of SockJS's HTTP transports (`{path}/{server}/{session}/xhr` …);
    /// `session_path` is the part after the endpoint.
    SockJsHttp { session_path: String },
    /// sockjs-client's first request (`{path}/info`).
    Info,
    /// SockJS's greeting (`GET {path}` without an upgrade).
    Greeting,
    /// Another path under the endpoint.
    Other,
}

/// The endpoint `path` belongs to, the room its connections share, and what it asks for;
/// `None` when it is under no endpoint.
pub fn route(endpoints: &[String], path: &str, upgrade: bool) -> Option<(String, EndpointRequest)> {
    endpoints.iter().find_map(|endpoint| {
        let endpoint = endpoint.trim_end_matches('/');
        let rest = path.strip_prefix(endpoint)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        let room = room_of(endpoint)?;
        let request = match (rest.trim_end_matches('/'), upgrade) {
            ("" | "/websocket", true) => EndpointRequest::PlainWebSocket,
            ("/info", false) => EndpointRequest::Info,
            ("", false) => EndpointRequest::Greeting,
            (_, upgrade) => match (sockjs::session_path(rest), upgrade) {
                (Some((_, Transport::WebSocket)), true) => EndpointRequest::SockJsWebSocket,
                (Some((_, transport)), false) if transport != Transport::WebSocket => {
                    EndpointRequest::SockJsHttp {
                        session_path: rest.to_owned(),
                    }
                }
                _ => EndpointRequest::Other,
            },
        };
        Some((room, request))
    })
}

/// The room an endpoint's connections share: its path as a room name (`/ws-stomp` →
/// `ws-stomp`, `/api/ws` → `api.ws`), or `None` if that is no valid name.
pub fn room_of(endpoint: &str) -> Option<String> {
    let name = endpoint.trim_matches('/').replace('/', ".");
    room_name::validate(&name).ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints() -> Vec<String> {
        vec!["/ws-stomp".into(), "/api/ws/".into()]
    }

    #[test]
    fn an_endpoint_routes_its_paths_to_one_room() {
        let route = |path, upgrade| route(&endpoints(), path, upgrade);
        let room = || "ws-stomp".to_owned();
        assert_eq!(
            route("/ws-stomp", true),
            Some((room(), EndpointRequest::PlainWebSocket))
        );
        assert_eq!(
            route("/ws-stomp/websocket", true),
            Some((room(), EndpointRequest::PlainWebSocket))
        );
        assert_eq!(
            route("/ws-stomp/123/abc/websocket", true),
            Some((room(), EndpointRequest::SockJsWebSocket))
        );
        assert_eq!(
            route("/ws-stomp/info", false),
            Some((room(), EndpointRequest::Info))
        );
        assert_eq!(
            route("/ws-stomp", false),
            Some((room(), EndpointRequest::Greeting))
        );
        assert_eq!(
            route("/ws-stomp/123/abc/xhr_streaming", false),
            Some((
                room(),
                EndpointRequest::SockJsHttp {
                    session_path: "/123/abc/xhr_streaming".into()
                }
            ))
        );
        assert_eq!(
            route("/ws-stomp/123/abc/jsonp", false),
            Some((room(), EndpointRequest::Other))
        );
        assert_eq!(
            route("/ws-stomp/123/abc/xhr", true),
            Some((room(), EndpointRequest::Other))
        );
        assert_eq!(
            route("/api/ws/info", false),
            Some(("api.ws".to_owned(), EndpointRequest::Info))
        );
        assert_eq!(route("/ws-stompx", true), None);
        assert_eq!(route("/rooms/lobby", true), None);
    }

    #[test]
    fn an_endpoint_that_is_no_room_name_routes_nothing() {
        assert_eq!(route(&["/-bad".to_owned()], "/-bad", true), None);
    }
}
