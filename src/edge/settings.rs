//! Per-room settings, read from the Worker's environment (`[vars]` in `wrangler.toml`).

use serde::Deserialize;
use std::collections::HashMap;
use worker::{console_error, Env};

use crate::stomp::{AllowAll, Authenticator, Config, Credentials};

/// The `ROOM_SETTINGS` variable: every field optional, defaults documented in the README.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Messages kept per `/topic/` destination for replay. Default 100; trimmed in batches.
    pub history_limit: u32,
    /// How often, at most, the room wakes to look for clients whose heart-beats stopped
    /// (their pings are answered without waking it). Default 5 minutes.
    pub liveness_check_ms: u64,
    /// Limits, heart-beat offer and timeouts of the STOMP broker.
    #[serde(flatten)]
    pub broker: Config,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            history_limit: 100,
            liveness_check_ms: 300_000,
            broker: Config::default(),
        }
    }
}

impl Settings {
    /// Reads `ROOM_SETTINGS`: a table in `wrangler.toml`, or a JSON string (as `--var` and
    /// dashboard variables give). Invalid settings are logged and the defaults used.
    pub fn from_env(env: &Env) -> Self {
        match env.object_var::<Settings>("ROOM_SETTINGS") {
            Ok(settings) => return settings,
            Err(error) if env.object_var::<serde_json::Value>("ROOM_SETTINGS").is_ok() => {
                console_error!("ROOM_SETTINGS is invalid ({error}); fix it in wrangler.toml. Using the defaults.");
                return Settings::default();
            }
            Err(_) => {}
        }
        let Ok(text) = env.var("ROOM_SETTINGS").map(|v| v.to_string()) else {
            return Settings::default();
        };
        serde_json::from_str(&text).unwrap_or_else(|error| {
            console_error!(
                "ROOM_SETTINGS is invalid ({error}); fix it in wrangler.toml. Using the defaults."
            );
            Settings::default()
        })
    }
}

/// The CONNECT authentication hook. Rooms are open unless the `STOMP_USERS` secret (or var)
/// holds a JSON object of login → passcode.
pub fn authenticator(env: &Env) -> Box<dyn Authenticator> {
    let Ok(users) = env
        .secret("STOMP_USERS")
        .map(|s| s.to_string())
        .or_else(|_| env.var("STOMP_USERS").map(|v| v.to_string()))
    else {
        return Box::new(AllowAll);
    };
    match serde_json::from_str::<HashMap<String, String>>(&users) {
        Ok(users) => Box::new(Credentials { users }),
        Err(error) => {
            console_error!("STOMP_USERS is not a JSON object of login -> passcode ({error}); refusing all logins until it is fixed.");
            Box::new(Misconfigured)
        }
    }
}

/// Fails closed when authentication was meant to be on but cannot be read.
struct Misconfigured;

impl Authenticator for Misconfigured {
    fn authenticate(&self, _login: Option<&str>, _passcode: Option<&str>) -> Result<(), String> {
        Err(
            "the room's authentication is misconfigured; ask its operator to fix STOMP_USERS"
                .to_owned(),
        )
    }
}
