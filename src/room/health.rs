//! `GET /healthz`: whether the Worker and its settings are good, for an operator after a
//! deploy, a monitor or a load balancer. `200` with what is configured and what it leaves
//! open; `503` naming the setting to fix, since rooms refuse everyone while it is wrong.

use serde_json::json;

use super::auth::{self, Secrets};
use super::http::HttpResponse;
use super::settings::Settings;

/// The health check's answer for these settings (or why they could not be read) and secrets.
pub fn report(settings: Result<&Settings, &str>, secrets: &Secrets) -> HttpResponse {
    let settings = match settings {
        Ok(settings) => settings,
        Err(problem) => return unhealthy(problem),
    };
    let gate = match auth::configure(secrets, &settings.auth) {
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
    HttpResponse::json(200, &body).with_header("cache-control", "no-store")
}

fn unhealthy(problem: &str) -> HttpResponse {
    let body = json!({ "status": "misconfigured", "problem": problem });
    HttpResponse::json(503, &body).with_header("cache-control", "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(answer: &HttpResponse) -> serde_json::Value {
        serde_json::from_slice(&answer.body).expect("the answer is JSON")
    }

    #[test]
    fn open_rooms_are_healthy_with_their_warnings() {
        let answer = report(Ok(&Settings::default()), &Secrets::default());
        assert_eq!(answer.status, 200);
        let body = body(&answer);
        assert_eq!(body["rooms"], "open");
        assert_eq!(body["warnings"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn secured_rooms_with_origins_have_no_warning() {
        let settings = Settings {
            allowed_origins: vec!["https://chat.example".into()],
            ..Settings::default()
        };
        let secrets = Secrets {
            users: Some(r#"{"carol":"pass"}"#.into()),
            ..Secrets::default()
        };
        let body = body(&report(Ok(&settings), &secrets));
        assert_eq!(body["rooms"], "secured");
        assert_eq!(body["logins"], true);
        assert_eq!(body["tokens"], false);
        assert_eq!(body["warnings"], serde_json::json!([]));
    }

    #[test]
    fn what_cannot_be_read_is_named_in_a_503() {
        let answer = report(Err("ROOM_SETTINGS is invalid (x)"), &Secrets::default());
        assert_eq!(answer.status, 503);
        assert_eq!(body(&answer)["problem"], "ROOM_SETTINGS is invalid (x)");
        let empty = Secrets {
            jwt_secret: Some(" ".into()),
            ..Secrets::default()
        };
        let answer = report(Ok(&Settings::default()), &empty);
        assert_eq!(answer.status, 503);
        let problem = body(&answer)["problem"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            problem.contains("STOMP_JWT_SECRET is set but empty"),
            "{problem}"
        );
    }
}
