//! The Worker's fetch handler: routes `/rooms/{room}` WebSocket upgrades, HTTP requests to
//! `/rooms/{room}/{destination}` and `/rooms/{room}/stats` to the room's Durable Object,
//! refusing upgrades from browser pages whose `Origin` is not allowed and answering CORS
//! preflights itself; answers `/healthz` ([`health`](super::health)) and lists the active rooms
//! at `/rooms` ([`registry`](super::registry)). Everything else under `/` is a static file from
//! `public/`, served by the assets binding before this code runs (see `wrangler.toml`).

use worker::{event, js_sys, Context, Env, Method, Request, Response, Result};

use super::http;
use crate::room::endpoints::{self, EndpointRequest};
use crate::room::http as room_http;
use crate::room::sockjs as room_sockjs;
use crate::room::Settings;
use crate::room_name;

/// The Durable Object namespace binding declared in `wrangler.toml`.
pub const ROOMS_BINDING: &str = "ROOMS";

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    match path.as_str() {
        "/healthz" => return super::health::answer(&env),
        "/rooms" => return super::registry::list(req, &env).await,
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/rooms/") else {
        return endpoint(req, &env, &path).await;
    };
    let (name, rest) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let room = match room_name::validate(name) {
        Ok(room) => room.to_owned(),
        Err(reason) => return plain_text(&req, &env, 400, &reason.to_string()),
    };
    let upgrade = is_websocket_upgrade(&req)?;
    match rest {
        "" if upgrade => {
            if let Some(refusal) = refuse_origin(&req, &env)? {
                return Ok(refusal);
            }
        }
        // No `Upgrade` header: it is hop-by-hop and the runtime drops it from the response.
        "" => {
            return plain_text(
                &req,
                &env,
                426,
                &format!(
                    "/rooms/{room} speaks STOMP over WebSocket: connect with a WebSocket client \
                     (for example @stomp/stompjs) to ws(s)://<host>/rooms/{room}; over plain \
                     HTTP, POST to and GET from /rooms/{room}/topic/{{name}}"
                ),
            )
        }
        "/stats" if !upgrade => {}
        destination if !upgrade && is_destination(&env, destination) => {
            // A CORS preflight needs nothing from the room: answered here, without waking it.
            if req.method() == Method::Options {
                let head = http::head_of(&req, &room, destination, room_http::Method::Options)?;
                let settings = match super::env::settings(&env) {
                    Ok(settings) => settings,
                    Err(problem) => {
                        return plain_text(&req, &env, 503, &format!("{problem}; ask its operator"))
                    }
                };
                return http::to_response(room_http::preflight(&settings, &head));
            }
        }
        _ => {
            return plain_text(
                &req,
                &env,
                404,
                &format!(
                    "not found: a room is /rooms/{room} (STOMP over WebSocket), \
                     /rooms/{room}/topic/{{name}} (HTTP: POST to publish, GET to poll or stream) \
                     and /rooms/{room}/stats"
                ),
            )
        }
    }
    let stub = env
        .durable_object(ROOMS_BINDING)?
        .id_from_name(&room)?
        .get_stub()?;
    stub.fetch_with_request(req).await
}

/// An upgrade's refusal when its page's `Origin` is not allowed (or the settings are invalid).
fn refuse_origin(req: &Request, env: &Env) -> Result<Option<Response>> {
    let origin = req.headers().get("Origin")?;
    let host = req.headers().get("Host")?;
    let settings = match super::env::settings(env) {
        Ok(settings) => settings,
        Err(problem) => {
            return plain_text(req, env, 503, &format!("{problem}; ask its operator")).map(Some)
        }
    };
    if settings.origin_allowed(origin.as_deref(), host.as_deref()) {
        return Ok(None);
    }
    plain_text(
        req,
        env,
        403,
        &format!(
            "origin {} may not open WebSockets to this server: it is not in the room \
             settings' allowed_origins",
            origin.unwrap_or_default()
        ),
    )
    .map(Some)
}

/// A request to a Spring-style endpoint (`endpoints` in the settings), or to nothing.
async fn endpoint(req: Request, env: &Env, path: &str) -> Result<Response> {
    let upgrade = is_websocket_upgrade(&req)?;
    let settings = super::env::settings(env).unwrap_or_default();
    let Some((room, request)) = endpoints::route(&settings, path, upgrade) else {
        return plain_text(&req, env, 404, "not found: rooms live at /rooms/{room}");
    };
    match request {
        EndpointRequest::PlainWebSocket | EndpointRequest::SockJsWebSocket => {
            let connection = req.headers().get("Connection")?;
            if let Some(refusal) = room_sockjs::refuse_broken_upgrade(connection.as_deref()) {
                return http::to_response(refusal);
            }
            if let Some(refusal) = refuse_origin(&req, env)? {
                return Ok(refusal);
            }
            let stub = env
                .durable_object(ROOMS_BINDING)?
                .id_from_name(&room)?
                .get_stub()?;
            stub.fetch_with_request(req).await
        }
        EndpointRequest::SockJsHttp { session_path } => {
            // A CORS preflight needs nothing from the room: answered here, without waking it.
            if req.method() == Method::Options {
                let head = http::head_of(&req, &room, &session_path, room_http::Method::Options)?;
                return http::to_response(room_sockjs::preflight(&settings, &head, now_ms()));
            }
            let stub = env
                .durable_object(ROOMS_BINDING)?
                .id_from_name(&room)?
                .get_stub()?;
            stub.fetch_with_request(req).await
        }
        EndpointRequest::Info => sockjs_info(&req, &settings, &room),
        EndpointRequest::Greeting => http::to_response(room_sockjs::greeting()),
        EndpointRequest::NotAnUpgrade => {
            let method = room_http::Method::parse(req.method().as_ref());
            http::to_response(room_sockjs::not_an_upgrade(method))
        }
        EndpointRequest::Other => plain_text(
            &req,
            env,
            404,
            "this endpoint serves STOMP over WebSocket, plain or through SockJS (transports \
             websocket, xhr_streaming, xhr, eventsource)",
        ),
    }
}

/// sockjs-client's `/info` (and its preflight).
fn sockjs_info(req: &Request, settings: &Settings, room: &str) -> Result<Response> {
    let method = match req.method() {
        Method::Options => room_http::Method::Options,
        _ => room_http::Method::Get,
    };
    let head = http::head_of(req, room, "/info", method)?;
    if method == room_http::Method::Options {
        return http::to_response(room_sockjs::preflight(settings, &head, now_ms()));
    }
    let entropy = (js_sys::Math::random() * f64::from(u32::MAX)) as u32;
    let endpoint = endpoints::endpoint_of(settings, room);
    http::to_response(room_sockjs::info(settings, endpoint, &head, entropy))
}

/// A destination the HTTP rungs serve (the settings may add Spring-style prefixes).
fn is_destination(env: &Env, path: &str) -> bool {
    super::env::settings(env)
        .unwrap_or_default()
        .broker
        .destinations
        .is_known(path)
}

fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

fn is_websocket_upgrade(req: &Request) -> Result<bool> {
    let upgrade = req.headers().get("Upgrade")?.unwrap_or_default();
    Ok(req.method() == Method::Get && upgrade.eq_ignore_ascii_case("websocket"))
}

/// A plain-text answer of the router's own, readable by an allowed page like every answer
/// (with settings that cannot be read, no page is allowed).
fn plain_text(req: &Request, env: &Env, status: u16, text: &str) -> Result<Response> {
    let answer = room_http::HttpResponse::text(status, text);
    let answer = match super::env::settings(env) {
        Ok(settings) => {
            let origin = req.headers().get("Origin")?;
            let host = req.headers().get("Host")?;
            room_http::readable(&settings, origin.as_deref(), host.as_deref(), answer)
        }
        Err(_) => answer,
    };
    http::to_response(answer)
}
