//! How an endpoint's room serves SockJS: a STOMP room, or one of the test services SockJS's
//! protocol tests expect (`sockjs_test_services` in the settings), each its own room.

use super::RESPONSE_LIMIT;
use crate::room::settings::Settings;

/// The services SockJS's protocol tests expect beside an echo (`sockjs_test_services`):
/// `/echo`, `/close` (every session is closed at once with `c[3000,"Go away!"]`),
/// `/disabled_websocket_echo` (no WebSocket transport) and `/cookie_needed_echo` (a
/// `JSESSIONID` cookie on each answer), each its own room.
pub const TEST_SERVICES: [&str; 4] = [
    "/echo",
    "/close",
    "/disabled_websocket_echo",
    "/cookie_needed_echo",
];

/// The response limit of the test services, as the protocol tests expect it.
const TEST_RESPONSE_LIMIT: usize = 4096;

/// What an endpoint's connections get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The room's STOMP broker.
    Stomp,
    /// Each SockJS message sent back as it came (a test service).
    Echo,
    /// The session closed as soon as it opens (a test service).
    Close,
}

/// How an endpoint's room serves SockJS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub service: Service,
    /// Whether the `websocket` transport is offered (`/info` says so).
    pub websocket: bool,
    /// Whether answers set a `JSESSIONID` cookie, for load balancers that need one.
    pub cookie_needed: bool,
    /// Bytes after which a streaming answer ends.
    pub response_limit: usize,
}

impl Default for Endpoint {
    fn default() -> Self {
        Self {
            service: Service::Stomp,
            websocket: true,
            cookie_needed: false,
            response_limit: RESPONSE_LIMIT,
        }
    }
}

/// How the room `room` serves SockJS: a STOMP room, unless it is a test service.
pub fn endpoint_of(settings: &Settings, room: &str) -> Endpoint {
    if !settings.sockjs_test_services {
        return Endpoint::default();
    }
    let test = Endpoint {
        service: Service::Echo,
        response_limit: TEST_RESPONSE_LIMIT,
        ..Endpoint::default()
    };
    match room {
        "echo" => test,
        "close" => Endpoint {
            service: Service::Close,
            ..test
        },
        "disabled_websocket_echo" => Endpoint {
            websocket: false,
            ..test
        },
        "cookie_needed_echo" => Endpoint {
            cookie_needed: true,
            ..test
        },
        _ => Endpoint::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_services_exist_only_when_asked_for() {
        let mut settings = Settings::default();
        assert_eq!(endpoint_of(&settings, "echo"), Endpoint::default());
        settings.sockjs_test_services = true;
        assert_eq!(endpoint_of(&settings, "close").service, Service::Close);
        assert_eq!(endpoint_of(&settings, "echo").response_limit, 4096);
        assert!(endpoint_of(&settings, "cookie_needed_echo").cookie_needed);
        assert!(!endpoint_of(&settings, "disabled_websocket_echo").websocket);
        assert_eq!(endpoint_of(&settings, "lobby"), Endpoint::default());
    }
}
