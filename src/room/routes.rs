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

use super::endpoints::{self, EndpointRequest};
use super::http::{percent_decode, percent_encode, Method};
use super::settings::Settings;
use crate::room_name;

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
    /// more, and a destination may be any UTF-8). Only the routes a room serves are carried
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
        match request {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
