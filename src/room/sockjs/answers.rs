//! SockJS's answers over HTTP as plain data: receivers' answers, CORS with credentials,
//! preflights, `/info`, the greeting, and the refusals of a session's WebSocket address
//! without a WebSocket.

use crate::room::http::{allow_origin, HttpRequest, HttpResponse, Method};
use crate::room::settings::Settings;
use crate::room::sockjs::services::Endpoint;
use crate::sockjs::{self, Receiver, Transport};

/// A receiver's answer (or a streaming answer's head).
pub fn answer(body: Vec<u8>, kind: Receiver, origin: Option<&str>) -> HttpResponse {
    let mut response = HttpResponse {
        status: 200,
        headers: vec![("content-type".to_owned(), kind.content_type().to_owned())],
        body,
    };
    if kind == Receiver::XhrStreaming {
        // Cloudflare gzips `application/javascript` for clients that accept it, and a
        // compressor holds a stream's frames back until it has enough of them: a stated
        // encoding is passed on as it is.
        response = response.with_header("content-encoding", "identity");
    }
    with_cors(response, origin)
}

/// SockJS's headers on any answer: CORS with credentials, and no caching.
pub fn with_cors(response: HttpResponse, origin: Option<&str>) -> HttpResponse {
    allow_page(
        response.with_header(
            "cache-control",
            "no-store, no-cache, no-transform, must-revalidate, max-age=0",
        ),
        origin,
    )
}

/// The method a transport's requests use.
pub fn method_of(transport: Transport) -> Method {
    match transport {
        Transport::EventSource | Transport::WebSocket => Method::Get,
        Transport::Xhr | Transport::XhrSend | Transport::XhrStreaming => Method::Post,
    }
}

/// The answer to a CORS preflight (`OPTIONS`) of `/info` or a transport, cacheable for a
/// year as SockJS asks; a page whose origin is not allowed is refused.
pub fn preflight(settings: &Settings, request: &HttpRequest, now: u64) -> HttpResponse {
    let origin = match allow_origin(settings, request) {
        Ok(origin) => origin,
        Err(refusal) => return refusal,
    };
    let transport = sockjs::session_path(&request.destination).map(|(_, t)| t);
    let reads = request.destination == "/info" || transport.map(method_of) == Some(Method::Get);
    let methods = if reads {
        "OPTIONS, GET"
    } else {
        "OPTIONS, POST"
    };
    let response = HttpResponse {
        status: 204,
        headers: vec![
            ("allow".to_owned(), methods.to_owned()),
            (
                "access-control-allow-methods".to_owned(),
                methods.to_owned(),
            ),
            ("access-control-max-age".to_owned(), "31536000".to_owned()),
            (
                "cache-control".to_owned(),
                "public, max-age=31536000".to_owned(),
            ),
            ("expires".to_owned(), http_date(now + YEAR_MS)),
        ],
        body: Vec::new(),
    };
    let response = match request.header("access-control-request-headers") {
        Some(asked) => response.with_header("access-control-allow-headers", asked),
        None => response,
    };
    allow_page(response, origin.as_deref())
}

const YEAR_MS: u64 = 365 * 24 * 3600 * 1000;

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) for a time in ms since the epoch.
pub fn http_date(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let (hour, minute, second) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Days to a civil date (Howard Hinnant's algorithm), for dates after 1970.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {day:02} {} {year} {hour:02}:{minute:02}:{second:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize]
    )
}

/// sockjs-client's first request, `GET {endpoint}/info`: what the endpoint offers, uncached;
/// a page whose origin is not allowed is refused, as on every other SockJS address.
pub fn info(
    settings: &Settings,
    endpoint: Endpoint,
    request: &HttpRequest,
    entropy: u32,
) -> HttpResponse {
    let origin = match allow_origin(settings, request) {
        Ok(origin) => origin,
        Err(refusal) => return refusal,
    };
    let body = sockjs::info(endpoint.websocket, endpoint.cookie_needed, entropy);
    let response = HttpResponse {
        status: 200,
        headers: vec![(
            "content-type".to_owned(),
            "application/json; charset=UTF-8".to_owned(),
        )],
        body: body.into_bytes(),
    };
    with_cors(response, origin.as_deref())
}

/// `GET {endpoint}`: SockJS's greeting.
pub fn greeting() -> HttpResponse {
    HttpResponse {
        status: 200,
        headers: vec![(
            "content-type".to_owned(),
            "text/plain; charset=UTF-8".to_owned(),
        )],
        body: b"Welcome to SockJS!\n".to_vec(),
    }
}

/// A session's WebSocket address asked for without a WebSocket: 400 for a GET, 405 (with
/// `Allow`, and no body) for any other method, as SockJS servers answer.
pub fn not_an_upgrade(method: Method) -> HttpResponse {
    if method == Method::Get {
        return HttpResponse::text(400, "Can \"Upgrade\" only to \"WebSocket\".");
    }
    HttpResponse {
        status: 405,
        headers: vec![("allow".to_owned(), "GET".to_owned())],
        body: Vec::new(),
    }
}

/// The refusal of a WebSocket upgrade whose `Connection` header does not say `Upgrade` (a
/// proxy rewrote it): it cannot become a WebSocket.
pub fn refuse_broken_upgrade(connection: Option<&str>) -> Option<HttpResponse> {
    let upgrades = connection
        .unwrap_or_default()
        .split(',')
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    (!upgrades).then(|| HttpResponse::text(400, "\"Connection\" must be \"Upgrade\"."))
}

/// Lets the page that asked read the answer: its own origin with credentials (sockjs-client
/// sends its requests with credentials, so `*` would not do), or `*` without one.
fn allow_page(response: HttpResponse, origin: Option<&str>) -> HttpResponse {
    match origin {
        Some(origin) => response
            .with_header("access-control-allow-origin", origin)
            .with_header("access-control-allow-credentials", "true")
            .with_header("vary", "Origin"),
        None => response.with_header("access-control-allow-origin", "*"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_websocket_address_without_a_websocket_is_refused_as_sockjs_says() {
        assert_eq!(not_an_upgrade(Method::Get).status, 400);
        let post = not_an_upgrade(Method::Post);
        assert_eq!((post.status, post.body.len()), (405, 0));
        assert_eq!(post.headers, vec![("allow".to_owned(), "GET".to_owned())]);
        assert_eq!(refuse_broken_upgrade(Some("keep-alive, Upgrade")), None);
        assert_eq!(
            refuse_broken_upgrade(Some("close")).map(|r| r.status),
            Some(400)
        );
        assert_eq!(refuse_broken_upgrade(None).map(|r| r.status), Some(400));
        assert_eq!(greeting().body, b"Welcome to SockJS!\n");
    }

    #[test]
    fn info_follows_allowed_origins() {
        let settings = Settings {
            allowed_origins: vec!["https://chat.example".to_owned()],
            ..Settings::default()
        };
        let asking = |origin: &str| HttpRequest {
            headers: vec![("origin".to_owned(), origin.to_owned())],
            ..HttpRequest::default()
        };
        let allowed = info(
            &settings,
            Endpoint::default(),
            &asking("https://chat.example"),
            1,
        );
        assert_eq!(allowed.status, 200);
        assert_eq!(
            allowed.header("access-control-allow-origin"),
            Some("https://chat.example")
        );
        let refused = info(
            &settings,
            Endpoint::default(),
            &asking("https://evil.example"),
            1,
        );
        assert_eq!(refused.status, 403);
        assert_eq!(refused.header("access-control-allow-origin"), None);
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            http_date(1_709_210_096_000),
            "Thu, 29 Feb 2024 12:34:56 GMT"
        );
    }
}
