//! The Worker's fetch handler: reads each request's [`Route`] once, answers what needs no room
//! (refusals, CORS and SockJS preflights, SockJS's greeting and `/info`, the health check
//! ([`health`](super::health)), the list of active rooms ([`registry`](super::registry))),
//! checks a socket's `Origin`, and hands the rest to the room's Durable Object with the route
//! attached, so the object never reads the path again. Everything else under `/` is a static file from
//! `public/`, served by the assets binding before this code runs (see `wrangler.toml`).
//!
//! Sockets may land on gateway objects instead ([`crate::room::scaling`]): an endpoint's, when
//! its rooms are named by destinations, on one of its gateways chosen at random; a room's,
//! when the room holds as many as it may and answers with the gateway to use, on that one (and,
//! for a short while, the next few sockets the room lent it there, without asking the room:
//! [`crate::room::members::lease`]). The router sends the same upgrade there: no object stands
//! in a socket's path but the one that holds it (an object in the path could not hibernate).

use wasm_bindgen::JsCast;
use worker::worker_sys::{web_sys, DurableObjectNamespace};
use worker::{event, js_sys, wasm_bindgen_futures::JsFuture, Context, Env, Headers, Request};
use worker::{Response, Result};

use super::http;
use super::{now_ms, ROUTE_HEADER};
use crate::room::http as room_http;
use crate::room::members::Leases;
use crate::room::routes::{path_of_url, Route, LEASE_HEADER, USE_GATEWAY_HEADER};
use crate::room::sockjs as room_sockjs;
use crate::room::Settings;

/// The Durable Object namespace binding declared in `wrangler.toml`.
pub const ROOMS_BINDING: &str = "ROOMS";

/// The gateway objects' namespace binding declared in `wrangler.toml`.
pub const GATEWAYS_BINDING: &str = "GATEWAYS";

thread_local! {
    /// The leases rooms lent this isolate's router (see [`to_room`]).
    static LEASES: std::cell::RefCell<Leases> = std::cell::RefCell::new(Leases::default());
}

// The runtime's request as it came, not workers-rs's `Request`: making one reads the request's
// `cf` properties, which the runtime builds for each read, and a socket's upgrade needs only
// its method, path and headers. In a storm of connects that was a fifth of the router's time;
// the requests the router answers itself become a `Request` where they need one.
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, _ctx: Context) -> Result<web_sys::Response> {
    let method = room_http::Method::parse(&req.method());
    let headers = Headers(req.headers());
    let url = req.url();
    let path = path_of_url(&url);
    let upgrade = is_websocket_upgrade(&method, &headers)?;
    // Settings that cannot be read hold no rules to serve anyone by: one answer for every
    // request but the health check, which names the problem; the log says what to fix too.
    let settings = match super::env::settings(&env) {
        Ok(settings) => settings,
        Err(_) if Route::parse(&Settings::default(), method, path, upgrade) == Route::Health => {
            return super::health::answer(&env).map(web_sys::Response::from)
        }
        Err(problem) => {
            let answer = room_http::HttpResponse::text(503, format!("{problem}; ask its operator"));
            return http::to_response(answer).map(web_sys::Response::from);
        }
    };
    let route = Route::parse(&settings, method, path, upgrade);
    let answer = match &route {
        Route::Health => return super::health::answer(&env).map(web_sys::Response::from),
        Route::RoomList => {
            return super::registry::list(Request::from(req), &env)
                .await
                .map(web_sys::Response::from)
        }
        Route::Socket { at_endpoint, .. } => {
            match refuse_socket(&headers, &settings, *at_endpoint)? {
                Some(refusal) => refusal,
                None => return to_room(&req, &env, &route).await,
            }
        }
        Route::EndpointGateway { .. } => match refuse_socket(&headers, &settings, true)? {
            Some(refusal) => refusal,
            None => match route.endpoint_gateway(&settings, random_u32()) {
                Some(gateway) => return to_gateway(&req, &env, &gateway).await,
                None => room_http::HttpResponse::text(500, "no gateway for this endpoint"),
            },
        },
        Route::Destination { .. } | Route::Stats { .. } | Route::SockJs { .. } => {
            return to_room(&req, &env, &route).await
        }
        // A CORS preflight needs nothing from the room: answered here, without waking it.
        Route::Preflight { room, path, sockjs } => {
            let head = http::head_of(&Request::from(req), room, path, method)?;
            match sockjs {
                true => room_sockjs::preflight(&settings, &head, now_ms()),
                false => room_http::preflight(&settings, &head),
            }
        }
        Route::SockJsInfo { room } => {
            let head = http::head_of(&Request::from(req), room, "/info", method)?;
            let entropy = random_u32();
            let endpoint = room_sockjs::services::endpoint_of(&settings, room);
            room_sockjs::info(&settings, endpoint, &head, entropy)
        }
        Route::SockJsGreeting => room_sockjs::greeting(),
        Route::SockJsNotAnUpgrade => room_sockjs::not_an_upgrade(method),
        Route::Refused { status, text } => readable(&headers, &settings, *status, text)?,
        // Named by objects only, in the route header: no URL reads as these.
        Route::GatewaySocket { .. } | Route::RelayToRoom { .. } | Route::RelayToGateway { .. } => {
            readable(&headers, &settings, 404, "not found")?
        }
    };
    http::to_response(answer).map(web_sys::Response::from)
}

/// Hands the request to the object of the room its route names, with the route. A room that
/// holds as many sockets as it may answers a socket with the gateway to use instead
/// ([`USE_GATEWAY_HEADER`]): the same upgrade goes there.
async fn to_room(req: &web_sys::Request, env: &Env, route: &Route) -> Result<web_sys::Response> {
    let Some(room) = route.room() else {
        return Response::error("the router answers this request itself", 500).map(Into::into);
    };
    // A socket to a room that lent this router its next sockets on a gateway goes there
    // without asking the room ([`Leases`]).
    let socket = match route {
        Route::Socket {
            sockjs,
            at_endpoint: false,
            ..
        } => Some(*sockjs),
        _ => None,
    };
    if let Some(sockjs) = socket {
        let leased = LEASES.with_borrow_mut(|leases| leases.take(room, sockjs, now_ms()));
        if let Some(gateway) = leased {
            return to_gateway(req, env, &Route::gateway_socket(&gateway, sockjs)).await;
        }
    }
    let answer = forward(req, env, ROOMS_BINDING, room, route).await?;
    let gateway = match answer.headers().get(USE_GATEWAY_HEADER)? {
        Some(header) if matches!(route, Route::Socket { .. }) => Route::from_use_gateway(&header),
        _ => return Ok(answer),
    };
    let Some(gateway) = gateway else {
        return Response::error("the room named no gateway it could be reached by", 502)
            .map(Into::into);
    };
    let lent = answer.headers().get(LEASE_HEADER)?;
    let lent = lent.and_then(|n| n.parse::<u32>().ok());
    if let (Some(sockjs), Some(lent), Some(name)) = (socket, lent, gateway.gateway()) {
        LEASES.with_borrow_mut(|leases| leases.lend(room, sockjs, name, lent, now_ms()));
    }
    to_gateway(req, env, &gateway).await
}

/// Hands a socket to the gateway object its route names, with the route (which tells the
/// gateway its own name).
async fn to_gateway(req: &web_sys::Request, env: &Env, route: &Route) -> Result<web_sys::Response> {
    let Some(gateway) = route.gateway() else {
        return Response::error("the router answers this request itself", 500).map(Into::into);
    };
    forward(req, env, GATEWAYS_BINDING, gateway, route).await
}

/// The request, with its route attached, to the object of this name in this namespace; its
/// answer as the object gave it.
async fn forward(
    req: &web_sys::Request,
    env: &Env,
    binding: &str,
    name: &str,
    route: &Route,
) -> Result<web_sys::Response> {
    let forwarded = web_sys::Request::new_with_request(req)?;
    forwarded.headers().set(ROUTE_HEADER, &route.to_header())?;
    let namespace: DurableObjectNamespace =
        js_sys::Reflect::get(env.as_ref(), &binding.into())?.unchecked_into();
    let stub = namespace.get(&namespace.id_from_name(name)?)?;
    let answer = JsFuture::from(stub.fetch_with_request(&forwarded)?).await?;
    Ok(answer.unchecked_into())
}

/// A socket's refusal: an upgrade SockJS's protocol calls broken (at an endpoint), or one
/// from a browser page whose `Origin` is not allowed.
fn refuse_socket(
    headers: &Headers,
    settings: &Settings,
    at_endpoint: bool,
) -> Result<Option<room_http::HttpResponse>> {
    if at_endpoint {
        let connection = headers.get("Connection")?;
        if let Some(refusal) = room_sockjs::refuse_broken_upgrade(connection.as_deref()) {
            return Ok(Some(refusal));
        }
    }
    let origin = headers.get("Origin")?;
    let host = headers.get("Host")?;
    if settings.origin_allowed(origin.as_deref(), host.as_deref()) {
        return Ok(None);
    }
    let text = format!(
        "origin {} may not open WebSockets to this server: it is not in the room settings' \
         allowed_origins",
        origin.unwrap_or_default()
    );
    readable(headers, settings, 403, &text).map(Some)
}

fn random_u32() -> u32 {
    (js_sys::Math::random() * f64::from(u32::MAX)) as u32
}

fn is_websocket_upgrade(method: &room_http::Method, headers: &Headers) -> Result<bool> {
    let upgrade = headers.get("Upgrade")?.unwrap_or_default();
    Ok(*method == room_http::Method::Get && upgrade.eq_ignore_ascii_case("websocket"))
}

/// A plain-text answer of the router's own, readable by an allowed page like every answer.
fn readable(
    headers: &Headers,
    settings: &Settings,
    status: u16,
    text: &str,
) -> Result<room_http::HttpResponse> {
    let answer = room_http::HttpResponse::text(status, text);
    let origin = headers.get("Origin")?;
    let host = headers.get("Host")?;
    Ok(room_http::readable(
        settings,
        origin.as_deref(),
        host.as_deref(),
        answer,
    ))
}
