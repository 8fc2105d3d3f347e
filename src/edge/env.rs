//! What a room reads from the Worker's environment: `ROOM_SETTINGS` (a table in
//! `wrangler.toml`, or a JSON string) and the `STOMP_USERS` secret.

use std::collections::HashMap;
use std::rc::Rc;

use worker::{console_error, Env};

use crate::room::{AllowAll, Authenticator, Credentials, Settings};

/// Reads `ROOM_SETTINGS`. Invalid settings are logged and the defaults used.
pub fn settings(env: &Env) -> Settings {
    let invalid = |error: &dyn std::fmt::Display| {
        console_error!(
            "ROOM_SETTINGS is invalid ({error}); fix it in wrangler.toml. Using the defaults."
        );
        Settings::default()
    };
    match env.object_var::<Settings>("ROOM_SETTINGS") {
        Ok(settings) => return settings,
        Err(error) if env.object_var::<serde_json::Value>("ROOM_SETTINGS").is_ok() => {
            return invalid(&error)
        }
        Err(_) => {}
    }
    let Ok(text) = env.var("ROOM_SETTINGS").map(|v| v.to_string()) else {
        return Settings::default();
    };
    serde_json::from_str(&text).unwrap_or_else(|error| invalid(&error))
}

/// The CONNECT authentication hook. Rooms are open unless the `STOMP_USERS` secret (or var)
/// holds a JSON object of login → passcode.
pub fn authenticator(env: &Env) -> Rc<dyn Authenticator> {
    let Ok(users) = env
        .secret("STOMP_USERS")
        .map(|s| s.to_string())
        .or_else(|_| env.var("STOMP_USERS").map(|v| v.to_string()))
    else {
        return Rc::new(AllowAll);
    };
    match serde_json::from_str::<HashMap<String, String>>(&users) {
        Ok(users) => Rc::new(Credentials { users }),
        Err(error) => {
            console_error!("STOMP_USERS is not a JSON object of login -> passcode ({error}); refusing all logins until it is fixed.");
            Rc::new(Misconfigured)
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
