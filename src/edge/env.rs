//! What a room reads from the Worker's environment: `ROOM_SETTINGS` (a table in
//! `wrangler.toml`, or a JSON string) and the secrets for authentication.

use std::collections::HashMap;
use std::rc::Rc;

use worker::{console_error, Env};

use crate::room::auth::{ConnectRequest, Identity, Key, Verifier};
use crate::room::{AllowAll, Authenticator, Credentials, Gate, Settings};

/// Reads `ROOM_SETTINGS` (absent: the defaults). `Err` says why they are invalid; callers
/// then fail closed, since the settings hold the security rules (token issuer and audience,
/// allowed origins, limits), and logs say what to fix.
pub fn settings(env: &Env) -> Result<Settings, String> {
    let invalid = |error: &dyn std::fmt::Display| {
        let problem = format!("ROOM_SETTINGS is invalid ({error}); fix it in wrangler.toml");
        console_error!("{problem}. Refusing connections until it is fixed.");
        problem
    };
    match env.object_var::<Settings>("ROOM_SETTINGS") {
        Ok(settings) => return Ok(settings),
        Err(error) if env.object_var::<serde_json::Value>("ROOM_SETTINGS").is_ok() => {
            return Err(invalid(&error))
        }
        Err(_) => {}
    }
    let Ok(text) = env.var("ROOM_SETTINGS").map(|v| v.to_string()) else {
        return Ok(Settings::default());
    };
    serde_json::from_str(&text).map_err(|error| invalid(&error))
}

/// The CONNECT authentication hook. Rooms are open unless keys for signed tokens
/// (`STOMP_JWT_SECRET`, `STOMP_JWT_KEYS`) or a login list (`STOMP_USERS`) are configured, as
/// secrets or vars; then every connection needs a valid token or login. A configuration that
/// cannot be read fails closed: nobody gets in, and the log says what to fix.
pub fn authenticator(env: &Env, settings: Option<&Settings>) -> Rc<dyn Authenticator> {
    let Some(settings) = settings else {
        return Rc::new(Misconfigured);
    };
    match gate(env, settings) {
        Ok(None) => Rc::new(AllowAll),
        Ok(Some(gate)) => Rc::new(gate),
        Err(problem) => {
            console_error!("{problem}; refusing every connection until it is fixed.");
            Rc::new(Misconfigured)
        }
    }
}

fn gate(env: &Env, settings: &Settings) -> Result<Option<Gate>, String> {
    let mut keys = Vec::new();
    if let Some(secret) = secret(env, "STOMP_JWT_SECRET") {
        keys.push(Key::shared_secret(&secret));
    }
    if let Some(jwks) = secret(env, "STOMP_JWT_KEYS") {
        keys.extend(Key::parse_jwks(&jwks).map_err(|e| format!("STOMP_JWT_KEYS is invalid: {e}"))?);
    }
    let users = match secret(env, "STOMP_USERS") {
        None => None,
        Some(json) => Some(Credentials {
            users: serde_json::from_str::<HashMap<String, String>>(&json).map_err(|e| {
                format!("STOMP_USERS is not a JSON object of login -> passcode ({e})")
            })?,
        }),
    };
    let tokens = (!keys.is_empty()).then(|| Verifier::new(keys, settings.auth.clone()));
    Ok((tokens.is_some() || users.is_some()).then_some(Gate { tokens, users }))
}

/// A secret, or a var of the same name (handy in `wrangler dev --var`).
fn secret(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|value| !value.is_empty())
}

/// Fails closed when authentication was meant to be on but cannot be read.
struct Misconfigured;

impl Authenticator for Misconfigured {
    fn authenticate(&self, _request: &ConnectRequest) -> Result<Identity, String> {
        Err(
            "the room's authentication is misconfigured; ask its operator to check the logs"
                .to_owned(),
        )
    }
}
