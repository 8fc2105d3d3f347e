//! Spring-style endpoints (`endpoints` in the settings): a fixed path such as `/ws-stomp`
//! whose connections all share one room, as Spring's clients expect (their rooms live in
//! destinations). Each endpoint speaks STOMP over a plain WebSocket at its path and at
//! `{path}/websocket`, and through SockJS at `{path}/{server}/{session}/{transport}`: the
//! `websocket` transport, and the HTTP ones (`xhr`, `xhr_send`, `xhr_streaming`,
//! `eventsource`; see [`crate::room::sockjs`]), with `{path}/info` for sockjs-client.

use super::settings::Settings;
use super::sockjs::services::{endpoint_of, TEST_SERVICES};
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
    /// A session's WebSocket address without a WebSocket upgrade.
    NotAnUpgrade,
    /// Another path under the endpoint.
    Other,
}

/// The endpoint `path` belongs to, the room its connections share, and what it asks for;
/// `None` when it is under no endpoint.
pub fn route(settings: &Settings, path: &str, upgrade: bool) -> Option<(String, EndpointRequest)> {
    let tests = settings.sockjs_test_services.then_some(&TEST_SERVICES[..]);
    let configured = settings.endpoints.iter().map(String::as_str);
    configured
        .chain(tests.into_iter().flatten().copied())
        .find_map(|endpoint| {
            let endpoint = endpoint.trim_end_matches('/');
            let rest = path.strip_prefix(endpoint)?;
            if !(rest.is_empty() || rest.starts_with('/')) {
                return None;
            }
            let room = room_of(endpoint)?;
            let websocket = endpoint_of(settings, &room).websocket;
            let request = match (rest.trim_end_matches('/'), upgrade) {
                (_, true) if !websocket => EndpointRequest::Other,
                ("" | "/websocket", true) => EndpointRequest::PlainWebSocket,
                ("/info", false) => EndpointRequest::Info,
                ("", false) if rest.len() <= 1 => EndpointRequest::Greeting,
                (_, upgrade) => match (sockjs::session_path(rest), upgrade) {
                    (Some((_, Transport::WebSocket)), true) => EndpointRequest::SockJsWebSocket,
                    (Some((_, Transport::WebSocket)), false) => EndpointRequest::NotAnUpgrade,
                    (Some(_), false) => EndpointRequest::SockJsHttp {
                        session_path: rest.to_owned(),
                    },
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

    fn settings() -> Settings {
        Settings {
            endpoints: vec!["/ws-stomp".into(), "/api/ws/".into()],
            ..Settings::default()
        }
    }

    #[test]
    fn an_endpoint_routes_its_paths_to_one_room() {
        let route = |path, upgrade| route(&settings(), path, upgrade);
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
        assert_eq!(
            route("/ws-stomp//", false),
            Some((room(), EndpointRequest::Other))
        );
        assert_eq!(
            route("/ws-stomp/1/a/websocket", false),
            Some((room(), EndpointRequest::NotAnUpgrade))
        );
        assert_eq!(route("/ws-stompx", true), None);
        assert_eq!(route("/rooms/lobby", true), None);
    }

    #[test]
    fn an_endpoint_that_is_no_room_name_routes_nothing() {
        let settings = Settings {
            endpoints: vec!["/-bad".to_owned()],
            ..Settings::default()
        };
        assert_eq!(route(&settings, "/-bad", true), None);
    }

    #[test]
    fn the_test_services_exist_only_when_asked_for() {
        let mut settings = settings();
        assert_eq!(route(&settings, "/echo/info", false), None);
        settings.sockjs_test_services = true;
        assert_eq!(
            route(&settings, "/echo/info", false),
            Some(("echo".to_owned(), EndpointRequest::Info))
        );
        assert_eq!(
            route(&settings, "/disabled_websocket_echo/0/a/websocket", true),
            Some(("disabled_websocket_echo".to_owned(), EndpointRequest::Other))
        );
    }
}
