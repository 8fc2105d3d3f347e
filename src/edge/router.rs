//! The Worker's fetch handler: reads each request's [`Route`] once, answers what needs no room
//! (refusals, CORS and SockJS preflights, SockJS's greeting and `/info`, the health check
//! ([`health`](super::health)), the list of active rooms ([`registry`](super::registry))),
//! checks a socket's `Origin`, and hands the rest to the room's Durable Object with the route
//! attached, so the object never reads the path again. Everything else under `/` is a static file from
//! `public/`, served by the assets binding before this code runs (see `wrangler.toml`).

use worker::{event, js_sys, Context, Env, Request, Response, Result};

use super::http;
use super::ROUTE_HEADER;
use crate::room::http as room_http;
use crate::room::routes::Route;
use crate::room::sockjs as room_sockjs;
use crate::room::Settings;

/// The Durable Object namespace binding declared in `wrangler.toml`.
pub const ROOMS_BINDING: &str = "ROOMS";

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let method = room_http::Method::parse(req.method().as_ref());
    let upgrade = is_websocket_upgrade(&req)?;
    // Settings that cannot be read hold no rules to serve anyone by: one answer for every
    // request but the health check, which names the problem; the log says what to fix too.
    let settings = match super::env::settings(&env) {
        Ok(settings) => settings,
        Err(_)
            if Route::parse(&Settings::default(), method, &req.path(), upgrade)
                == Route::Health =>
        {
            return super::health::answer(&env)
        }
        Err(problem) => {
            let answer = room_http::HttpResponse::text(503, format!("{problem}; ask its operator"));
            return http::to_response(answer);
        }
    };
    let route = Route::parse(&settings, method, &req.path(), upgrade);
    let answer = match &route {
        Route::Health => return super::health::answer(&env),
        Route::RoomList => return super::registry::list(req, &env).await,
        Route::Socket { at_endpoint, .. } => match refuse_socket(&req, &settings, *at_endpoint)? {
            Some(refusal) => refusal,
            None => return to_room(req, &env, &route).await,
        },
        Route::Destination { .. } | Route::Stats { .. } | Route::SockJs { .. } => {
            return to_room(req, &env, &route).await
        }
        // A CORS preflight needs nothing from the room: answered here, without waking it.
        Route::Preflight { room, path, sockjs } => {
            let head = http::head_of(&req, room, path, method)?;
            match sockjs {
                true => room_sockjs::preflight(&settings, &head, now_ms()),
                false => room_http::preflight(&settings, &head),
            }
        }
        Route::SockJsInfo { room } => {
            let head = http::head_of(&req, room, "/info", method)?;
            let entropy = (js_sys::Math::random() * f64::from(u32::MAX)) as u32;
            let endpoint = room_sockjs::services::endpoint_of(&settings, room);
            room_sockjs::info(&settings, endpoint, &head, entropy)
        }
        Route::SockJsGreeting => room_sockjs::greeting(),
        Route::SockJsNotAnUpgrade => room_sockjs::not_an_upgrade(method),
        Route::Refused { status, text } => readable(&req, &settings, *status, text)?,
    };
    http::to_response(answer)
}

/// Hands the request to the object of the room its route names, with the route.
async fn to_room(req: Request, env: &Env, route: &Route) -> Result<Response> {
    let Some(room) = route.room() else {
        return Response::error("the router answers this request itself", 500);
    };
    let mut forwarded = req.clone_mut()?;
    forwarded
        .headers_mut()?
        .set(ROUTE_HEADER, &route.to_header())?;
    let stub = env
        .durable_object(ROOMS_BINDING)?
        .id_from_name(room)?
        .get_stub()?;
    stub.fetch_with_request(forwarded).await
}

/// A socket's refusal: an upgrade SockJS's protocol calls broken (at an endpoint), or one
/// from a browser page whose `Origin` is not allowed.
fn refuse_socket(
    req: &Request,
    settings: &Settings,
    at_endpoint: bool,
) -> Result<Option<room_http::HttpResponse>> {
    if at_endpoint {
        let connection = req.headers().get("Connection")?;
        if let Some(refusal) = room_sockjs::refuse_broken_upgrade(connection.as_deref()) {
            return Ok(Some(refusal));
        }
    }
    let origin = req.headers().get("Origin")?;
    let host = req.headers().get("Host")?;
    if settings.origin_allowed(origin.as_deref(), host.as_deref()) {
        return Ok(None);
    }
    let text = format!(
        "origin {} may not open WebSockets to this server: it is not in the room settings' \
         allowed_origins",
        origin.unwrap_or_default()
    );
    readable(req, settings, 403, &text).map(Some)
}

fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

fn is_websocket_upgrade(req: &Request) -> Result<bool> {
    let upgrade = req.headers().get("Upgrade")?.unwrap_or_default();
    Ok(req.method() == worker::Method::Get && upgrade.eq_ignore_ascii_case("websocket"))
}

/// A plain-text answer of the router's own, readable by an allowed page like every answer.
fn readable(
    req: &Request,
    settings: &Settings,
    status: u16,
    text: &str,
) -> Result<room_http::HttpResponse> {
    let answer = room_http::HttpResponse::text(status, text);
    let origin = req.headers().get("Origin")?;
    let host = req.headers().get("Host")?;
    Ok(room_http::readable(
        settings,
        origin.as_deref(),
        host.as_deref(),
        answer,
    ))
}
