//! Cross-origin use of the HTTP rungs: a page on another origin may publish and read when the
//! settings allow its origin (`allowed_origins`, empty: any). A request from an origin that is
//! not allowed is refused outright, not only hidden from the page, since a POST would
//! otherwise still publish (cross-site request forgery).

use super::request::{HttpRequest, HttpResponse};
use crate::room::Settings;

/// The `Access-Control-Allow-Origin` a request gets: its own `Origin` when allowed.
/// `Err` is the refusal for an origin that is not allowed.
pub fn allow_origin(
    settings: &Settings,
    request: &HttpRequest,
) -> Result<Option<String>, HttpResponse> {
    let Some(origin) = request.header("origin") else {
        return Ok(None);
    };
    if settings.origin_allowed(Some(origin), request.header("host")) {
        Ok(Some(origin.to_owned()))
    } else {
        Err(HttpResponse::text(
            403,
            format!("origin {origin} may not use this room: it is not in the room settings' allowed_origins"),
        ))
    }
}

/// Any answer, refusals included, readable by the page that asked when its origin is allowed
/// (so the page can show why), with `Vary: Origin` for caches.
pub fn readable(
    settings: &Settings,
    origin: Option<&str>,
    host: Option<&str>,
    response: HttpResponse,
) -> HttpResponse {
    match origin.filter(|origin| settings.origin_allowed(Some(origin), host)) {
        Some(origin) if response.header("access-control-allow-origin").is_none() => response
            .with_header("access-control-allow-origin", origin)
            .with_header("vary", "Origin"),
        _ => response,
    }
}

/// The answer to a CORS preflight (`OPTIONS`): which methods and headers a page may use.
pub fn preflight(settings: &Settings, request: &HttpRequest) -> HttpResponse {
    let origin = match allow_origin(settings, request) {
        Ok(origin) => origin,
        Err(refusal) => return refusal,
    };
    let mut response = HttpResponse {
        status: 204,
        headers: vec![
            ("allow".to_owned(), "GET, POST, OPTIONS".to_owned()),
            (
                "access-control-allow-methods".to_owned(),
                "GET, POST".to_owned(),
            ),
            ("access-control-max-age".to_owned(), "600".to_owned()),
        ],
        body: Vec::new(),
    };
    if let Some(origin) = origin {
        response = response
            .with_header("access-control-allow-origin", &origin)
            .with_header("vary", "Origin");
        if let Some(asked) = request.header("access-control-request-headers") {
            response = response.with_header("access-control-allow-headers", asked);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_answer_is_readable_by_an_allowed_page_and_only_by_it() {
        let settings = Settings {
            allowed_origins: vec!["https://chat.example".to_owned()],
            ..Settings::default()
        };
        let not_found = || HttpResponse::text(404, "not found");
        let allowed = readable(&settings, Some("https://chat.example"), None, not_found());
        assert_eq!(
            allowed.header("access-control-allow-origin"),
            Some("https://chat.example")
        );
        assert_eq!(allowed.header("vary"), Some("Origin"));
        let other = readable(&settings, Some("https://evil.example"), None, not_found());
        assert_eq!(other.header("access-control-allow-origin"), None);
        let own_page = readable(
            &settings,
            Some("https://rooms.example"),
            Some("rooms.example"),
            not_found(),
        );
        assert_eq!(
            own_page.header("access-control-allow-origin"),
            Some("https://rooms.example")
        );
        assert_eq!(readable(&settings, None, None, not_found()), not_found());
    }
}
