//! The Worker's fetch handler: routes `/rooms/{room}` WebSocket upgrades (and
//! `/rooms/{room}/stats`) to the room's Durable Object, refusing upgrades from browser pages
//! whose `Origin` is not allowed. Everything else under `/` is a static file from `public/`, served by the assets
//! binding before this code runs (see `wrangler.toml`).

use worker::{event, Context, Env, Method, Request, Response, Result};

use crate::room_name;

/// The Durable Object namespace binding declared in `wrangler.toml`.
const ROOMS_BINDING: &str = "ROOMS";

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let Some(rest) =
        path.strip_prefix("/rooms/")
            .or(if path == "/rooms" { Some("") } else { None })
    else {
        return plain_text(404, "not found: rooms live at /rooms/{room}");
    };
    let (room, stats) = match rest.strip_suffix("/stats") {
        Some(room) => (room, true),
        None => (rest, false),
    };
    let room = match room_name::validate(room) {
        Ok(room) => room.to_owned(),
        Err(reason) => return plain_text(400, &reason.to_string()),
    };
    if !stats && !is_websocket_upgrade(&req)? {
        // No `Upgrade` header: it is hop-by-hop and the runtime drops it from the response.
        return plain_text(
            426,
            &format!(
                "/rooms/{room} speaks STOMP over WebSocket: connect with a WebSocket client \
                 (for example @stomp/stompjs) to ws(s)://<host>/rooms/{room}"
            ),
        );
    }
    if !stats {
        let origin = req.headers().get("Origin")?;
        let host = req.headers().get("Host")?;
        if !super::env::settings(&env).origin_allowed(origin.as_deref(), host.as_deref()) {
            return plain_text(
                403,
                &format!(
                    "origin {} may not open WebSockets to this server: it is not in the \
                     room settings' allowed_origins",
                    origin.unwrap_or_default()
                ),
            );
        }
    }
    let stub = env
        .durable_object(ROOMS_BINDING)?
        .id_from_name(&room)?
        .get_stub()?;
    stub.fetch_with_request(req).await
}

fn is_websocket_upgrade(req: &Request) -> Result<bool> {
    let upgrade = req.headers().get("Upgrade")?.unwrap_or_default();
    Ok(req.method() == Method::Get && upgrade.eq_ignore_ascii_case("websocket"))
}

fn plain_text(status: u16, text: &str) -> Result<Response> {
    let response = Response::ok(format!("{text}\n"))?.with_status(status);
    response
        .headers()
        .set("Content-Type", "text/plain; charset=utf-8")?;
    Ok(response)
}
