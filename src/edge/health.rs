//! `GET /healthz`: whether the Worker and its settings are good, for an operator after a
//! deploy, a monitor or a load balancer. `200` with what is configured and what it leaves
//! open; `503` naming the setting to fix, since rooms refuse everyone while it is wrong.

use serde_json::json;
use worker::{Env, Response, Result};

use super::http;
use crate::room::auth;
use crate::room::http::HttpResponse;

pub fn answer(env: &Env) -> Result<Response> {
    let settings = match super::env::settings(env) {
        Ok(settings) => settings,
        Err(problem) => return unhealthy(&problem),
    };
    let gate = match auth::configure(&super::env::secrets(env), &settings.auth) {
        Ok(gate) => gate,
        Err(problem) => {
            return unhealthy(&format!(
                "{problem}; every connection is refused until it is fixed"
            ))
        }
    };
    let mut warnings = Vec::new();
    if gate.is_none() {
        warnings.push(
            "rooms are open to anyone: set STOMP_JWT_SECRET, STOMP_JWT_KEYS or STOMP_USERS \
             (npx wrangler secret put ...) to require a token or a login",
        );
    }
    if settings.allowed_origins.is_empty() {
        warnings.push(
            "allowed_origins is empty: pages on any site may open sockets to the rooms; list \
             your pages' origins in ROOM_SETTINGS",
        );
    }
    let body = json!({
        "status": "ok",
        "settings": "ok",
        "rooms": if gate.is_some() { "secured" } else { "open" },
        "tokens": gate.as_ref().is_some_and(|gate| gate.tokens.is_some()),
        "logins": gate.as_ref().is_some_and(|gate| gate.users.is_some()),
        "allowed_origins": settings.allowed_origins,
        "warnings": warnings,
    });
    http::to_response(HttpResponse::json(200, &body).with_header("cache-control", "no-store"))
}

fn unhealthy(problem: &str) -> Result<Response> {
    let body = json!({ "status": "misconfigured", "problem": problem });
    http::to_response(HttpResponse::json(503, &body).with_header("cache-control", "no-store"))
}
