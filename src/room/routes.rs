//! The one grammar of the Worker's URLs: a request's method, path and upgrade become a
//! [`Route`], read once by the router and carried to the room's object, which acts on it
//! without reading the path again.
//!
//! | path | upgrade | route |
//! | --- | --- | --- |
//! | `/rooms/{room}` | yes | a socket to the room |
//! | `/rooms/{room}` | no | refused: 426, the room speaks WebSocket |
//! | `/rooms/{room}/stats` | no | the room's counters |
//! | `/rooms/{room}/{destination}` | no | the HTTP rungs (`OPTIONS`: a preflight) |
//! | an endpoint's paths (see [`super::endpoints`]) | either | sockets, SockJS |
//! | `/rooms` | no | the active rooms, for an operator |
//! | `/healthz` | no | the health check |
//!
//! Everything else under `/` is a static file, served before the Worker runs.
//!
//! With `scaling.room_destinations` set, an endpoint's sockets land on its gateway objects
//! ([`Route::EndpointGateway`]; README, "Scaling"). Some routes come from no URL at all: the
//! router or an object names them in the route header ([`Route::to_header`]) when it hands a
//! socket to a gateway ([`Route::GatewaySocket`]) or when a room and a gateway call each other
//! ([`Route::RelayToRoom`], [`Route::RelayToGateway`]).

use super::endpoints::{self, EndpointRequest};
use super::http::{percent_decode, percent_encode, Method};
use super::settings::Settings;
use crate::room_name;

/// The header of a room's response that sends a socket to a gateway instead (see
/// [`Route::gateway_socket`]): only the router reads it, from a room object's answer.
pub const USE_GATEWAY_HEADER: &str = "x-stomp-rooms-use-gateway";

/// The header beside [`USE_GATEWAY_HEADER`] saying how many more sockets the router may send
/// to that gateway without asking the room ([`crate::room::members::lease`]).
pub const LEASE_HEADER: &str = "x-stomp-rooms-lease";

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A WebSocket to a room: `/rooms/{room}`, or a Spring-style endpoint's (`at_endpoint`),
    /// whose frames SockJS may wrap (`sockjs`).
    Socket {
        room: String,
        sockjs: bool,
        at_endpoint: bool,
    },
    /// A WebSocket to an endpoint whose rooms are named by destinations
    /// (`scaling.room_destinations`): it lands on one of the endpoint's gateway objects,
    /// which the router picks ([`Route::endpoint_gateway`]).
    EndpointGateway { room: String, sockjs: bool },
    /// A WebSocket handed to the gateway object of this name: by the router, for an endpoint's
    /// socket, or for a room that holds as many sockets as it may (its answer, see
    /// [`Route::gateway_socket`]). Never read from a URL.
    GatewaySocket { gateway: String, sockjs: bool },
    /// A gateway's call to a room (a [`ToRoom`](crate::relay::ToRoom) body). Never read from a
    /// URL: only objects send it, to each other.
    RelayToRoom { room: String },
    /// A room's call to a gateway (a [`ToGateway`](crate::relay::ToGateway) body). Never read
    /// from a URL.
    RelayToGateway { gateway: String },
    /// A room's destination over HTTP (percent-decoded): the ladder's rungs.
    Destination { room: String, destination: String },
    /// A room's counters.
    Stats { room: String },
    /// A request of a SockJS HTTP transport; `session_path` is the part after the endpoint.
    SockJs { room: String, session_path: String },
    /// A CORS preflight of a destination (or, `sockjs`, of SockJS's paths): answered without
    /// the room.
    Preflight {
        room: String,
        path: String,
        sockjs: bool,
    },
    /// sockjs-client's first request (`{endpoint}/info`).
    SockJsInfo { room: String },
    /// SockJS's greeting (`GET {endpoint}`).
    SockJsGreeting,
    /// A SockJS session's WebSocket address without a WebSocket upgrade.
    SockJsNotAnUpgrade,
    /// The health check: whether the Worker and its settings are good (`GET /healthz`).
    Health,
    /// The active rooms, for an operator (`GET /rooms`).
    RoomList,
    /// Refused, with this status and a text that says what is there instead.
    Refused { status: u16, text: String },
}

impl Route {
    /// Reads a request: its method, its path (as sent: percent-escaped) and whether it asks
    /// for a WebSocket upgrade.
    pub fn parse(settings: &Settings, method: Method, path: &str, upgrade: bool) -> Self {
        match path.strip_prefix("/rooms/") {
            Some(rest) => Self::to_room(settings, method, rest, upgrade),
            None if path == "/rooms" && !upgrade => Self::RoomList,
            None if path == "/healthz" && !upgrade => Self::Health,
            None => Self::to_endpoint(settings, method, path, upgrade),
        }
    }

    /// The route as a header value, for the router to hand to the room's object: its kind and
    /// fields separated by spaces, each percent-escaped to printable ASCII (a header carries no
    /// more, and a destination may be any UTF-8). Only the routes an object serves are carried
    /// (the others encode as `-`, which reads back as nothing). Written by hand: a serde
    /// derive for this enum costs the Worker kilobytes.
    pub fn to_header(&self) -> String {
        let flag = |on: bool| if on { "1" } else { "0" };
        let fields: Vec<&str> = match self {
            Self::Socket {
                room,
                sockjs,
                at_endpoint,
            } => vec!["socket", room, flag(*sockjs), flag(*at_endpoint)],
            Self::Destination { room, destination } => vec!["destination", room, destination],
            Self::Stats { room } => vec!["stats", room],
            Self::SockJs { room, session_path } => vec!["sockjs", room, session_path],
            Self::GatewaySocket { gateway, sockjs } => {
                vec!["gateway-socket", gateway, flag(*sockjs)]
            }
            Self::RelayToRoom { room } => vec!["relay-to-room", room],
            Self::RelayToGateway { gateway } => vec!["relay-to-gateway", gateway],
            _ => vec!["-"],
        };
        let escaped: Vec<String> = fields.iter().map(|field| percent_encode(field)).collect();
        escaped.join(" ")
    }

    /// The route the router handed on (see [`to_header`](Self::to_header)).
    pub fn from_header(header: &str) -> Option<Self> {
        let fields: Vec<String> = header
            .split(' ')
            .map(percent_decode)
            .collect::<Option<_>>()?;
        let flag = |field: &str| match field {
            "1" => Some(true),
            "0" => Some(false),
            _ => None,
        };
        Some(match fields.as_slice() {
            [kind, room, sockjs, at_endpoint] if kind == "socket" => Self::Socket {
                room: room.clone(),
                sockjs: flag(sockjs)?,
                at_endpoint: flag(at_endpoint)?,
            },
            [kind, room, destination] if kind == "destination" => Self::Destination {
                room: room.clone(),
                destination: destination.clone(),
            },
            [kind, room] if kind == "stats" => Self::Stats { room: room.clone() },
            [kind, room, session_path] if kind == "sockjs" => Self::SockJs {
                room: room.clone(),
                session_path: session_path.clone(),
            },
            [kind, gateway, sockjs] if kind == "gateway-socket" => Self::GatewaySocket {
                gateway: gateway.clone(),
                sockjs: flag(sockjs)?,
            },
            [kind, room] if kind == "relay-to-room" => Self::RelayToRoom { room: room.clone() },
            [kind, gateway] if kind == "relay-to-gateway" => Self::RelayToGateway {
                gateway: gateway.clone(),
            },
            _ => return None,
        })
    }

    /// The room whose object serves this route, if the router hands it on.
    pub fn room(&self) -> Option<&str> {
        match self {
            Self::Socket { room, .. }
            | Self::Destination { room, .. }
            | Self::Stats { room }
            | Self::SockJs { room, .. } => Some(room),
            _ => None,
        }
    }

    /// The gateway object a socket is handed to, if it is handed to one.
    pub fn gateway(&self) -> Option<&str> {
        match self {
            Self::GatewaySocket { gateway, .. } => Some(gateway),
            _ => None,
        }
    }

    /// Where the router sends an endpoint's socket ([`EndpointGateway`](Self::EndpointGateway)):
    /// gateway `endpoint:{room}:{k}`, `k` one of `scaling.endpoint_gateways` chosen by
    /// `entropy` (random), so an endpoint's sockets spread over that many objects. `None` for
    /// any other route.
    pub fn endpoint_gateway(&self, settings: &Settings, entropy: u32) -> Option<Self> {
        let Self::EndpointGateway { room, sockjs } = self else {
            return None;
        };
        let k = entropy % settings.scaling.endpoint_gateways.max(1);
        Some(Self::GatewaySocket {
            gateway: format!("endpoint:{room}:{k}"),
            sockjs: *sockjs,
        })
    }

    /// A room's answer to a socket it will not hold: the route the router sends the same
    /// upgrade on with, to `gateway` (the room never carries a socket it does not hold: an
    /// object in a socket's path could not hibernate). The room answers it in the
    /// [`USE_GATEWAY_HEADER`] of its response, as a header value ([`to_header`](Self::to_header)).
    pub fn gateway_socket(gateway: &str, sockjs: bool) -> Self {
        Self::GatewaySocket {
            gateway: gateway.to_owned(),
            sockjs,
        }
    }

    /// The gateway a room's answer sends the socket to (see
    /// [`gateway_socket`](Self::gateway_socket)): the route, if the header names one.
    pub fn from_use_gateway(header: &str) -> Option<Self> {
        Self::from_header(header).filter(|route| route.gateway().is_some())
    }

    /// `/rooms/{rest}`.
    fn to_room(settings: &Settings, method: Method, rest: &str, upgrade: bool) -> Self {
        let (name, rest) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let room = match room_name::validate(name) {
            Ok(room) => room.to_owned(),
            Err(reason) => return refused(400, reason.to_string()),
        };
        let destination = percent_decode(rest).filter(|d| settings.broker.destinations.is_known(d));
        match (rest, upgrade, destination) {
            ("", true, _) => Self::Socket {
                room,
                sockjs: false,
                at_endpoint: false,
            },
            // No `Upgrade` header: it is hop-by-hop and the runtime drops it from the response.
            ("", false, _) => refused(
                426,
                format!(
                    "/rooms/{room} speaks STOMP over WebSocket: connect with a WebSocket client \
                     (for example @stomp/stompjs) to ws(s)://<host>/rooms/{room}; over plain \
                     HTTP, POST to and GET from /rooms/{room}/topic/{{name}}"
                ),
            ),
            ("/stats", false, _) => Self::Stats { room },
            (_, false, Some(destination)) if method == Method::Options => Self::Preflight {
                room,
                path: destination,
                sockjs: false,
            },
            (_, false, Some(destination)) => Self::Destination { room, destination },
            _ => refused(
                404,
                format!(
                    "not found: a room is /rooms/{room} (STOMP over WebSocket), \
                     /rooms/{room}/topic/{{name}} (HTTP: POST to publish, GET to poll or stream) \
                     and /rooms/{room}/stats"
                ),
            ),
        }
    }

    /// A path under a Spring-style endpoint, or nothing.
    fn to_endpoint(settings: &Settings, method: Method, path: &str, upgrade: bool) -> Self {
        let Some((room, request)) = endpoints::route(settings, path, upgrade) else {
            return refused(404, "not found: rooms live at /rooms/{room}".to_owned());
        };
        let gateways = settings.scaling.rooms_by_destination();
        match request {
            EndpointRequest::PlainWebSocket if gateways => Self::EndpointGateway {
                room,
                sockjs: false,
            },
            EndpointRequest::SockJsWebSocket if gateways => {
                Self::EndpointGateway { room, sockjs: true }
            }
            EndpointRequest::PlainWebSocket => Self::Socket {
                room,
                sockjs: false,
                at_endpoint: true,
            },
            EndpointRequest::SockJsWebSocket => Self::Socket {
                room,
                sockjs: true,
                at_endpoint: true,
            },
            // A gateway carries SockJS's `websocket` transport only: a session over HTTP would
            // live in the endpoint's own room and never see the rooms its destinations name.
            EndpointRequest::SockJsHttp { .. } if gateways => refused(
                404,
                "this endpoint's rooms live in objects of their own (scaling.room_destinations):                  SockJS reaches them over its websocket transport only"
                    .to_owned(),
            ),
            EndpointRequest::SockJsHttp { session_path } if method == Method::Options => {
                Self::Preflight {
                    room,
                    path: session_path,
                    sockjs: true,
                }
            }
            EndpointRequest::SockJsHttp { session_path } => Self::SockJs { room, session_path },
            EndpointRequest::Info if method == Method::Options => Self::Preflight {
                room,
                path: "/info".to_owned(),
                sockjs: true,
            },
            EndpointRequest::Info => Self::SockJsInfo { room },
            EndpointRequest::Greeting => Self::SockJsGreeting,
            EndpointRequest::NotAnUpgrade => Self::SockJsNotAnUpgrade,
            EndpointRequest::Other => refused(
                404,
                "this endpoint serves STOMP over WebSocket, plain or through SockJS (transports \
                 websocket, xhr_streaming, xhr, eventsource)"
                    .to_owned(),
            ),
        }
    }
}

fn refused(status: u16, text: String) -> Route {
    Route::Refused { status, text }
}

/// The path of a URL as the runtime serializes it (`scheme://host[:port]/path[?query]`),
/// without its query: the first `/` after the host begins it (such a URL always has one).
pub fn path_of_url(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    let rest = &url[after_scheme..];
    let path = rest.find('/').map_or("/", |at| &rest[at..]);
    path.split(['?', '#']).next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_s_path_is_what_follows_its_host_up_to_its_query() {
        assert_eq!(
            path_of_url("https://chat.example/rooms/lobby?x=1#y"),
            "/rooms/lobby"
        );
        assert_eq!(
            path_of_url("http://127.0.0.1:8787/rooms/a%3Fb/topic/c"),
            "/rooms/a%3Fb/topic/c"
        );
        assert_eq!(path_of_url("https://chat.example"), "/");
        assert_eq!(path_of_url("https://chat.example/"), "/");
        assert_eq!(path_of_url("https://chat.example/?q"), "/");
    }

    fn spring() -> Settings {
        Settings {
            endpoints: vec!["/ws-stomp".into()],
            ..Settings::default()
        }
    }

    fn get(path: &str) -> Route {
        Route::parse(&spring(), Method::Get, path, false)
    }

    fn upgrade(path: &str) -> Route {
        Route::parse(&spring(), Method::Get, path, true)
    }

    fn status(route: Route) -> u16 {
        match route {
            Route::Refused { status, .. } => status,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_room_is_a_socket_its_counters_and_its_destinations() {
        assert_eq!(
            upgrade("/rooms/lobby"),
            Route::Socket {
                room: "lobby".into(),
                sockjs: false,
                at_endpoint: false
            }
        );
        assert_eq!(
            get("/rooms/lobby/stats"),
            Route::Stats {
                room: "lobby".into()
            }
        );
        assert_eq!(
            get("/rooms/lobby/topic/a%20b"),
            Route::Destination {
                room: "lobby".into(),
                destination: "/topic/a b".into()
            }
        );
        assert_eq!(
            Route::parse(&spring(), Method::Options, "/rooms/lobby/queue/q", false),
            Route::Preflight {
                room: "lobby".into(),
                path: "/queue/q".into(),
                sockjs: false
            }
        );
    }

    #[test]
    fn a_bad_room_name_is_refused_with_the_rule() {
        for path in ["/rooms/", "/rooms/-x", "/rooms/a%20b/topic/x"] {
            let Route::Refused { status, text } = get(path) else {
                panic!("{path} was not refused");
            };
            assert_eq!(status, 400, "{path}");
            assert!(text.contains("room name"), "{path}: {text}");
        }
    }

    #[test]
    fn what_a_room_does_not_serve_is_refused_with_what_it_does() {
        let text = match get("/rooms/lobby") {
            Route::Refused { status: 426, text } => text,
            other => panic!("{other:?}"),
        };
        assert!(text.contains("ws(s)://<host>/rooms/lobby"), "{text}");
        assert_eq!(status(get("/rooms/lobby/nope/x")), 404);
        assert_eq!(status(upgrade("/rooms/lobby/stats")), 404);
        assert_eq!(status(upgrade("/rooms/lobby/topic/x")), 404);
        // Not UTF-8 once decoded, or a broken escape.
        assert_eq!(status(get("/rooms/lobby/topic/%FF")), 404);
        assert_eq!(status(get("/rooms/lobby/topic/%Z1")), 404);
    }

    #[test]
    fn an_operator_has_the_health_check_and_the_list_of_rooms() {
        assert_eq!(get("/healthz"), Route::Health);
        assert_eq!(get("/rooms"), Route::RoomList);
        assert_eq!(Route::RoomList.room(), None, "answered by the router");
        assert_eq!(status(upgrade("/rooms")), 404);
    }

    #[test]
    fn a_room_may_be_called_stats_or_rooms() {
        assert_eq!(
            get("/rooms/stats/stats"),
            Route::Stats {
                room: "stats".into()
            }
        );
        assert_eq!(upgrade("/rooms/rooms").room(), Some("rooms"));
    }

    #[test]
    fn settings_may_add_destination_prefixes() {
        let mut settings = spring();
        assert_eq!(status(get("/rooms/lobby/sub/chat")), 404);
        settings.broker.destinations.topics = vec!["/sub/".into()];
        assert_eq!(
            Route::parse(&settings, Method::Post, "/rooms/lobby/sub/chat", false),
            Route::Destination {
                room: "lobby".into(),
                destination: "/sub/chat".into()
            }
        );
    }

    #[test]
    fn an_endpoint_routes_sockets_sockjs_and_its_answers() {
        let room = || "ws-stomp".to_owned();
        assert_eq!(
            upgrade("/ws-stomp"),
            Route::Socket {
                room: room(),
                sockjs: false,
                at_endpoint: true
            }
        );
        assert_eq!(
            upgrade("/ws-stomp/1/a/websocket"),
            Route::Socket {
                room: room(),
                sockjs: true,
                at_endpoint: true
            }
        );
        assert_eq!(
            get("/ws-stomp/1/a/xhr_streaming"),
            Route::SockJs {
                room: room(),
                session_path: "/1/a/xhr_streaming".into()
            }
        );
        assert_eq!(
            Route::parse(&spring(), Method::Options, "/ws-stomp/1/a/xhr", false),
            Route::Preflight {
                room: room(),
                path: "/1/a/xhr".into(),
                sockjs: true
            }
        );
        assert_eq!(get("/ws-stomp/info"), Route::SockJsInfo { room: room() });
        assert_eq!(
            Route::parse(&spring(), Method::Options, "/ws-stomp/info", false),
            Route::Preflight {
                room: room(),
                path: "/info".into(),
                sockjs: true
            }
        );
        assert_eq!(get("/ws-stomp"), Route::SockJsGreeting);
        assert_eq!(get("/ws-stomp/1/a/websocket"), Route::SockJsNotAnUpgrade);
        assert_eq!(status(get("/ws-stomp/1/a/jsonp")), 404);
        assert_eq!(status(get("/elsewhere")), 404);
        assert_eq!(get("/ws-stomp/info").room(), None, "answered by the router");
    }

    #[test]
    fn a_route_survives_the_trip_to_the_room_object_in_a_header() {
        for route in [
            upgrade("/rooms/lobby"),
            get("/rooms/lobby/topic/x"),
            get("/rooms/lobby/topic/caf%C3%A9%20%25%22%0A"),
            get("/ws-stomp/1/a/xhr"),
        ] {
            let header = route.to_header();
            assert!(
                header.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "a header value is printable ASCII: {header}"
            );
            assert_eq!(Route::from_header(&header), Some(route));
        }
        assert_eq!(Route::from_header("stats"), None);
        assert_eq!(Route::from_header("socket lobby 2 0"), None);
        assert_eq!(Route::from_header("stats %ZZ"), None);
        assert_eq!(Route::from_header(&get("/ws-stomp/info").to_header()), None);
    }

    fn scaled() -> Settings {
        let mut settings = spring();
        settings.scaling.room_destinations = vec!["/sub/chat/room/{room}".into()];
        settings.scaling.endpoint_gateways = 3;
        settings
    }

    #[test]
    fn an_endpoint_with_room_destinations_sends_its_sockets_to_gateways() {
        let settings = scaled();
        let plain = Route::parse(&settings, Method::Get, "/ws-stomp", true);
        let sockjs = Route::parse(&settings, Method::Get, "/ws-stomp/1/a/websocket", true);
        assert_eq!(
            plain,
            Route::EndpointGateway {
                room: "ws-stomp".into(),
                sockjs: false
            }
        );
        assert_eq!(
            sockjs,
            Route::EndpointGateway {
                room: "ws-stomp".into(),
                sockjs: true
            }
        );
        assert_eq!(plain.room(), None, "no room object serves it whole");
        // The router picks one of the endpoint's gateways at random.
        let names: Vec<String> = (0..6)
            .map(|entropy| match plain.endpoint_gateway(&settings, entropy) {
                Some(Route::GatewaySocket {
                    gateway,
                    sockjs: false,
                }) => gateway,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            [0, 1, 2, 0, 1, 2].map(|k| format!("endpoint:ws-stomp:{k}"))
        );
        assert_eq!(
            sockjs.endpoint_gateway(&settings, u32::MAX),
            Some(Route::gateway_socket("endpoint:ws-stomp:0", true))
        );
        assert_eq!(
            upgrade("/ws-stomp").endpoint_gateway(&settings, 1),
            None,
            "a socket to the endpoint's own room is not one"
        );
    }

    #[test]
    fn an_endpoint_with_room_destinations_keeps_its_other_routes_but_sockjs_over_http() {
        let settings = scaled();
        let route = |method, path| Route::parse(&settings, method, path, false);
        assert_eq!(route(Method::Get, "/ws-stomp/info"), get("/ws-stomp/info"));
        assert_eq!(route(Method::Get, "/ws-stomp"), Route::SockJsGreeting);
        // Its SockJS sessions over HTTP would live in the endpoint's room alone.
        for (method, path) in [
            (Method::Post, "/ws-stomp/1/a/xhr"),
            (Method::Get, "/ws-stomp/1/a/eventsource"),
            (Method::Options, "/ws-stomp/1/a/xhr_send"),
        ] {
            let Route::Refused { status, text } = route(method, path) else {
                panic!("{path} was not refused");
            };
            assert_eq!(status, 404, "{path}");
            assert!(text.contains("websocket transport only"), "{text}");
        }
        assert_eq!(
            Route::parse(&settings, Method::Get, "/rooms/7", true),
            upgrade("/rooms/7"),
            "a room's own socket still reaches the room"
        );
    }

    #[test]
    fn gateway_and_relay_routes_travel_in_the_header_only() {
        for route in [
            Route::gateway_socket("endpoint:ws-stomp:3", true),
            Route::gateway_socket("shard:lobby:0", false),
            Route::RelayToRoom {
                room: "lobby".into(),
            },
            Route::RelayToGateway {
                gateway: "shard:caf\u{e9}:12".into(),
            },
        ] {
            let header = route.to_header();
            assert!(
                header.bytes().all(|b| (0x20..0x7f).contains(&b)),
                "a header value is printable ASCII: {header}"
            );
            assert_eq!(Route::from_header(&header), Some(route));
        }
        assert_eq!(
            Route::from_header("relay-to-room lobby"),
            Some(Route::RelayToRoom {
                room: "lobby".into()
            })
        );
        assert_eq!(Route::from_header("relay-to-gateway"), None);
        assert_eq!(Route::from_header("gateway-socket g 2"), None);
        // No URL names them, whatever it spells.
        for path in [
            "/relay-to-room/lobby",
            "/rooms/lobby/relay-to-room",
            "/gateway-socket/x",
            "/rooms/relay-to-gateway",
        ] {
            for upgrade in [false, true] {
                let route = Route::parse(&scaled(), Method::Post, path, upgrade);
                assert!(
                    !matches!(
                        route,
                        Route::RelayToRoom { .. }
                            | Route::RelayToGateway { .. }
                            | Route::GatewaySocket { .. }
                    ),
                    "{path}: {route:?}"
                );
            }
        }
    }

    #[test]
    fn a_rooms_answer_names_the_gateway_the_router_sends_the_socket_to() {
        let answer = Route::gateway_socket("shard:lobby:1", false).to_header();
        assert_eq!(
            Route::from_use_gateway(&answer),
            Some(Route::GatewaySocket {
                gateway: "shard:lobby:1".into(),
                sockjs: false
            })
        );
        assert_eq!(
            Route::from_use_gateway(&Route::gateway_socket("shard:lobby:1", false).to_header())
                .and_then(|route| route.gateway().map(str::to_owned)),
            Some("shard:lobby:1".into())
        );
        // Only a socket's hand-over: no other route, nothing malformed.
        assert_eq!(
            Route::from_use_gateway(&upgrade("/rooms/lobby").to_header()),
            None
        );
        assert_eq!(
            Route::from_use_gateway("relay-to-gateway shard:lobby:1"),
            None
        );
        assert_eq!(Route::from_use_gateway("gateway-socket %ZZ 0"), None);
    }
}
