//! What a room reads from the Worker's environment: `ROOM_SETTINGS` (a table in
//! `wrangler.toml`, or a JSON string) and the secrets for authentication. Both are read once
//! per isolate (the environment changes only with a deploy, which starts new isolates), so
//! the router and every object in the isolate act on the same reading.

use std::cell::OnceCell;
use std::rc::Rc;

use wasm_bindgen::JsValue;
use worker::{js_sys, Env};

use crate::room::auth::{self, Secrets};
use crate::room::{Authenticator, Settings};

thread_local! {
    static SETTINGS: OnceCell<Result<Rc<Settings>, String>> = const { OnceCell::new() };
    static HOOK: OnceCell<Rc<dyn Authenticator>> = const { OnceCell::new() };
}

/// `ROOM_SETTINGS` (absent: the defaults). `Err` says why they are invalid and where to fix
/// them; callers then fail closed, since the settings hold the security rules (token issuer
/// and audience, allowed origins, limits), and the log says what to fix (once per isolate).
pub fn settings(env: &Env) -> Result<Rc<Settings>, String> {
    SETTINGS.with(|cell| cell.get_or_init(|| read_settings(env)).clone())
}

fn read_settings(env: &Env) -> Result<Rc<Settings>, String> {
    // A table in wrangler.toml arrives as an object, `--var` as a string: both are read as
    // JSON, by one deserializer (a second one for JavaScript values would double its code).
    let value = js_sys::Reflect::get(env.as_ref(), &JsValue::from_str("ROOM_SETTINGS"))
        .unwrap_or(JsValue::UNDEFINED);
    if value.is_undefined() || value.is_null() {
        return Ok(Rc::new(Settings::default()));
    }
    // Where the operator fixes it: a string came from `--var`, `.dev.vars` or a dashboard
    // variable, never from the table in wrangler.toml.
    let (text, source) = match value.as_string() {
        Some(text) => (
            text,
            "where that JSON string is set (a --var, .dev.vars, or a variable in the dashboard)",
        ),
        None => (
            js_sys::JSON::stringify(&value)
                .ok()
                .and_then(|text| text.as_string())
                .unwrap_or_default(),
            "in [vars.ROOM_SETTINGS] in wrangler.toml",
        ),
    };
    let invalid = |error: &dyn std::fmt::Display| {
        let problem = format!("ROOM_SETTINGS is invalid ({error}); fix it {source}");
        super::logs::platform_error(
            "settings invalid; refusing connections until they are fixed",
            None,
            &problem,
        );
        problem
    };
    let mut settings: Settings = serde_json::from_str(&text).map_err(|error| invalid(&error))?;
    settings.check().map_err(|problem| invalid(&problem))?;
    // Webhooks sign with a secret: a URL without one fails closed like any invalid setting.
    settings.webhooks = settings
        .webhooks
        .with_secret(secret(env, "WEBHOOK_SECRET").as_deref())
        .map_err(|problem| invalid(&problem))?;
    Ok(Rc::new(settings))
}

/// The CONNECT hook (see [`auth::hook`]): rooms are open unless keys for signed tokens
/// (`STOMP_JWT_SECRET`, `STOMP_JWT_KEYS`) or a login list (`STOMP_USERS`) are set, as secrets
/// or vars; with settings or secrets that cannot be read, nobody gets in.
pub fn authenticator(env: &Env) -> Rc<dyn Authenticator> {
    HOOK.with(|cell| {
        cell.get_or_init(|| {
            let settings = settings(env).ok();
            let (hook, problem) = auth::hook(&secrets(env), settings.as_ref().map(|s| &s.auth));
            if let Some(problem) = problem {
                super::logs::platform_error("authentication misconfigured", None, &problem);
            }
            hook
        })
        .clone()
    })
}

/// The authentication secrets as configured (see [`auth::configure`] for what they mean).
pub fn secrets(env: &Env) -> Secrets {
    Secrets {
        jwt_secret: secret(env, "STOMP_JWT_SECRET"),
        jwt_keys: secret(env, "STOMP_JWT_KEYS"),
        users: secret(env, "STOMP_USERS"),
    }
}

/// `STOMP_STATS_TOKEN`: when set, the one token that reads a room's counters (see
/// [`crate::room::operator`]).
pub fn stats_token(env: &Env) -> Option<String> {
    secret(env, "STOMP_STATS_TOKEN")
}

/// A secret, or a var of the same name (handy in `wrangler dev --var`), as it is set: an
/// empty one is set, and refused (see [`auth::configure`]).
fn secret(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
}
