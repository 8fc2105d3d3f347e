//! Who may read a room's counters (`GET /rooms/{room}/stats`).
//!
//! Without `STOMP_STATS_TOKEN` the counters are read as the active rooms are listed (see
//! [`registry::listing`](super::registry::listing)): with the credentials a room asks of its
//! clients, so nothing in open rooms and a token or `STOMP_USERS` login in secured ones. With
//! it, only that token reads them (`Authorization: Bearer`, or `access_token` in the query,
//! read by [`HttpCredentials`] as every credential is), whatever the rooms ask: counters for
//! the operator, not for every client with a token. Set but empty, nobody reads them.

use super::auth::constant_time_eq;
use super::http::HttpCredentials;
use super::http::{HttpRequest, HttpResponse};

/// What the stats token says of a request for the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsAccess {
    /// No stats token is set: the room's own rule decides.
    RoomRule,
    /// The request carries the stats token.
    Operator,
    /// Refused: no token, another token, or a stats token set but empty.
    Refused(HttpResponse),
}

/// Checks a request for the counters against `STOMP_STATS_TOKEN` (`None`: not set).
pub fn stats_access(stats_token: Option<&str>, request: &HttpRequest) -> StatsAccess {
    let Some(expected) = stats_token else {
        return StatsAccess::RoomRule;
    };
    let expected = expected.trim();
    if expected.is_empty() {
        // Misconfigured: fail closed, as a room with an empty secret does.
        return StatsAccess::Refused(HttpResponse::text(
            503,
            "STOMP_STATS_TOKEN is set but empty: nobody may read the counters until it is fixed",
        ));
    }
    match HttpCredentials::of(request).bearer {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => {
            StatsAccess::Operator
        }
        _ => StatsAccess::Refused(
            HttpResponse::text(
                401,
                "the counters take the operator's stats token (Authorization: Bearer, as \
                 STOMP_STATS_TOKEN is set)",
            )
            .with_header("www-authenticate", "Bearer"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_bearer(token: &str) -> HttpRequest {
        HttpRequest {
            headers: vec![("authorization".into(), format!("Bearer {token}"))],
            ..HttpRequest::default()
        }
    }

    #[test]
    fn without_a_stats_token_the_room_decides() {
        assert_eq!(
            stats_access(None, &HttpRequest::default()),
            StatsAccess::RoomRule
        );
    }

    #[test]
    fn a_stats_token_admits_only_itself() {
        assert_eq!(
            stats_access(Some("s3cret"), &with_bearer("s3cret")),
            StatsAccess::Operator
        );
        let refused = |request: &HttpRequest| match stats_access(Some("s3cret"), request) {
            StatsAccess::Refused(answer) => answer.status,
            other => panic!("admitted: {other:?}"),
        };
        assert_eq!(refused(&with_bearer("other")), 401);
        assert_eq!(refused(&HttpRequest::default()), 401);
    }

    #[test]
    fn an_empty_stats_token_fails_closed() {
        match stats_access(Some("  "), &with_bearer("")) {
            StatsAccess::Refused(answer) => assert_eq!(answer.status, 503),
            other => panic!("admitted: {other:?}"),
        }
    }
}
