//! The active rooms, for an operator: `GET /rooms`. One Durable Object of the rooms' namespace,
//! under a name no room can have ([`REGISTRY_NAME`]), keeps the names of the rooms that hold
//! WebSockets ([`ActiveRooms`], in its SQLite database) and never runs a room's engine. A room
//! tells it only when its sockets go from none to some and back ([`Occupancy`]), never at each
//! join, so a busy room costs the registry nothing; the counts are asked of the listed rooms
//! when the list is read. The registry keeps at most [`MAX_TRACKED`] names, and an answer lists
//! at most [`MAX_LISTED`] rooms (a question to each), with a cursor for the next ones.
//!
//! Who may list is decided as a room decides who connects ([`listing`]): nobody needs anything
//! in open rooms; otherwise a token (which sees the rooms its `rooms` claim allows) or a
//! `STOMP_USERS` login.

use super::auth::{self, pattern, ConnectRequest, Gate, Secrets};
use super::http::HttpCredentials;
use super::http::{percent_encode, HttpRequest, HttpResponse, Method};
use super::settings::Settings;
use super::sql::{SqlDatabase, SqlValue};
use super::storage::StorageError;
use crate::room_name;

/// The registry object's name: a room's name starts with a letter or digit.
pub const REGISTRY_NAME: &str = ".registry";
/// The most room names the registry keeps; rooms that become active beyond it are not listed.
pub const MAX_TRACKED: u64 = 10_000;
/// The most rooms one answer lists: each is asked for its count.
pub const MAX_LISTED: u64 = 100;

/// What a room tells the registry after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occupancy {
    /// Its sockets went from none to some.
    Active,
    /// Its sockets went from some to none.
    Idle,
}

impl Occupancy {
    /// The change, if any, from `before` sockets to `after`.
    pub fn change(before: usize, after: usize) -> Option<Self> {
        match (before, after) {
            (0, 1..) => Some(Self::Active),
            (1.., 0) => Some(Self::Idle),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Idle => "idle",
        }
    }
}

/// One page of the registry: rooms by name, each with when it became active (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub rooms: Vec<(String, u64)>,
    /// More rooms follow the last one.
    pub more: bool,
}

/// The registry's table of active rooms.
pub struct ActiveRooms<D: SqlDatabase> {
    database: D,
}

impl<D: SqlDatabase> ActiveRooms<D> {
    pub fn open(database: impl Into<D>) -> Result<Self, StorageError> {
        let database = database.into();
        database.query(
            "CREATE TABLE IF NOT EXISTS active_rooms (room TEXT PRIMARY KEY, since_ms INTEGER NOT NULL)",
            Vec::new(),
        )?;
        Ok(Self { database })
    }

    /// A room became active: kept (with its first time) unless [`MAX_TRACKED`] are.
    pub fn activate(&self, room: &str, now_ms: u64) -> Result<(), StorageError> {
        self.database.query(
            "INSERT OR IGNORE INTO active_rooms (room, since_ms) SELECT ?, ? \
             WHERE (SELECT count(*) FROM active_rooms) < ?",
            vec![room.into(), now_ms.into(), MAX_TRACKED.into()],
        )?;
        Ok(())
    }

    pub fn forget(&self, room: &str) -> Result<(), StorageError> {
        self.database
            .query("DELETE FROM active_rooms WHERE room = ?", vec![room.into()])?;
        Ok(())
    }

    /// Up to [`MAX_LISTED`] rooms after `after`, by name.
    pub fn page(&self, after: &str) -> Result<Page, StorageError> {
        let rows = self.database.query(
            "SELECT room, since_ms FROM active_rooms WHERE room > ? ORDER BY room LIMIT ?",
            vec![after.into(), (MAX_LISTED + 1).into()],
        )?;
        let mut rooms: Vec<(String, u64)> = rows
            .iter()
            .filter_map(|row| match row.as_slice() {
                [SqlValue::Text(room), since] => Some((room.clone(), since.to_u64())),
                _ => None,
            })
            .collect();
        let more = rooms.len() as u64 > MAX_LISTED;
        rooms.truncate(MAX_LISTED as usize);
        Ok(Page { rooms, more })
    }
}

/// A `GET /rooms` the operator may make: the cursor, and the room patterns the credentials may
/// see (`None`: every room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub after: String,
    pub visible: Option<Vec<String>>,
}

impl Listing {
    /// The listing as the query the registry object reads (see [`from_query`](Self::from_query)).
    pub fn to_query(&self) -> String {
        let mut query = format!("after={}", percent_encode(&self.after));
        if let Some(patterns) = &self.visible {
            query.push_str("&visible=");
            query.push_str(&percent_encode(&patterns.join(" ")));
        }
        query
    }

    /// The listing the Worker sent the registry object (see [`to_query`](Self::to_query)).
    pub fn from_query(request: &HttpRequest) -> Self {
        Self {
            after: request.param("after").unwrap_or_default().to_owned(),
            visible: request.param("visible").map(|patterns| {
                patterns
                    .split(' ')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
        }
    }

    /// Whether a listed room is one these credentials may see.
    pub fn shows(&self, room: &str) -> bool {
        self.visible
            .as_ref()
            .is_none_or(|patterns| pattern::any_matches(patterns, room))
    }
}

/// Checks a `GET /rooms[?after={room}]` as a room checks a request: the method, the page's
/// origin, then the credentials a room asks (a token or a `STOMP_USERS` login, unless rooms
/// are open); the refusal otherwise.
pub fn listing(
    settings: &Settings,
    secrets: &Secrets,
    request: &HttpRequest,
    now_ms: u64,
) -> Result<Listing, HttpResponse> {
    if request.method != Method::Get {
        let refusal = HttpResponse::text(405, "GET /rooms lists the active rooms");
        return Err(refusal.with_header("allow", "GET"));
    }
    if !settings.origin_allowed(request.header("origin"), request.header("host")) {
        return Err(HttpResponse::text(
            403,
            "this origin may not list rooms: it is not in the room settings' allowed_origins",
        ));
    }
    let visible =
        match auth::configure(secrets, &settings.auth) {
            Err(_) => return Err(HttpResponse::text(
                503,
                "the rooms' authentication is misconfigured; ask the operator to check the logs",
            )),
            Ok(None) => None,
            Ok(Some(gate)) => allowed_rooms(&gate, request, now_ms).map_err(|reason| {
                HttpResponse::text(401, format!("authentication failed: {reason}"))
                    .with_header("www-authenticate", "Bearer")
            })?,
        };
    let after = request.param("after").unwrap_or_default();
    if !after.is_empty() && room_name::validate(after).is_err() {
        return Err(HttpResponse::text(
            400,
            "after= takes a room name: the next_after of the last answer",
        ));
    }
    Ok(Listing {
        after: after.to_owned(),
        visible,
    })
}

/// The room patterns these credentials may see (`None`: every room), or why they are refused.
fn allowed_rooms(
    gate: &Gate,
    request: &HttpRequest,
    now_ms: u64,
) -> Result<Option<Vec<String>>, String> {
    let HttpCredentials { bearer, basic } = HttpCredentials::of(request);
    match (bearer, basic, &gate.tokens, &gate.users) {
        (Some(token), _, Some(verifier), _) => Ok(verifier.verify(token, now_ms)?.rooms),
        (_, Some((login, passcode)), _, Some(users)) => {
            auth::Authenticator::authenticate(
                users,
                &ConnectRequest {
                    room: "",
                    login: Some(&login),
                    passcode: Some(&passcode),
                    bearer: None,
                    now_ms,
                },
            )?;
            Ok(None)
        }
        _ => Err(
            "listing rooms takes a token (Authorization: Bearer) or a STOMP_USERS login \
             (Authorization: Basic), as a room does"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_change_between_none_and_some_is_told() {
        assert_eq!(Occupancy::change(0, 1), Some(Occupancy::Active));
        assert_eq!(Occupancy::change(3, 0), Some(Occupancy::Idle));
        assert_eq!(Occupancy::change(1, 2), None);
        assert_eq!(Occupancy::change(0, 0), None);
    }

    fn get(query: &[(&str, &str)], headers: &[(&str, &str)]) -> HttpRequest {
        HttpRequest {
            method: Method::Get,
            query: query
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            ..HttpRequest::default()
        }
    }

    fn status(result: Result<Listing, HttpResponse>) -> u16 {
        result.map_or_else(|refusal| refusal.status, |_| 200)
    }

    #[test]
    fn open_rooms_are_listed_to_anyone_and_secured_ones_to_their_logins() {
        let settings = Settings::default();
        let open = listing(&settings, &Secrets::default(), &get(&[], &[]), 0);
        assert_eq!(open.map(|l| l.visible), Ok(None));
        let secured = Secrets {
            users: Some(r#"{"carol":"pass"}"#.to_owned()),
            ..Secrets::default()
        };
        assert_eq!(status(listing(&settings, &secured, &get(&[], &[]), 0)), 401);
        // "carol:pass" and "carol:nope" in base64.
        let right = get(&[], &[("authorization", "Basic Y2Fyb2w6cGFzcw==")]);
        let wrong = get(&[], &[("authorization", "Basic Y2Fyb2w6bm9wZQ==")]);
        assert_eq!(
            listing(&settings, &secured, &right, 0).map(|l| l.visible),
            Ok(None)
        );
        assert_eq!(status(listing(&settings, &secured, &wrong, 0)), 401);
    }

    #[test]
    fn a_listing_is_refused_with_what_is_wrong() {
        let settings = Settings {
            allowed_origins: vec!["https://chat.example".into()],
            ..Settings::default()
        };
        let open = Secrets::default();
        let mut post = get(&[], &[]);
        post.method = Method::Post;
        assert_eq!(status(listing(&settings, &open, &post, 0)), 405);
        let elsewhere = get(
            &[],
            &[
                ("origin", "https://evil.example"),
                ("host", "rooms.example"),
            ],
        );
        assert_eq!(status(listing(&settings, &open, &elsewhere, 0)), 403);
        assert_eq!(
            status(listing(&settings, &open, &get(&[("after", "-x")], &[]), 0)),
            400
        );
        let empty_secret = Secrets {
            jwt_secret: Some(String::new()),
            ..Secrets::default()
        };
        assert_eq!(
            status(listing(&settings, &empty_secret, &get(&[], &[]), 0)),
            503
        );
        let next = listing(&settings, &open, &get(&[("after", "lobby")], &[]), 0);
        assert_eq!(next.map(|l| l.after), Ok("lobby".to_owned()));
    }

    #[test]
    fn a_listing_reaches_the_registry_object_as_it_was_decided() {
        for listing in [
            Listing {
                after: "lobby".into(),
                visible: Some(vec!["team-*".into(), "a b&c=%".into()]),
            },
            Listing {
                after: String::new(),
                visible: None,
            },
        ] {
            let query = crate::room::http::query_pairs(&listing.to_query());
            let request = HttpRequest {
                query,
                ..HttpRequest::default()
            };
            let carried = Listing::from_query(&request);
            assert_eq!(carried.after, listing.after);
            let patterns = |l: &Listing| l.visible.as_ref().map(|v| v.join(" "));
            assert_eq!(patterns(&carried), patterns(&listing));
        }
    }

    #[test]
    fn a_token_sees_the_rooms_its_claim_allows() {
        let listing = Listing {
            after: String::new(),
            visible: Some(vec!["team-*".to_owned()]),
        };
        assert!(listing.shows("team-a"));
        assert!(!listing.shows("lobby"));
        let everyone = Listing {
            after: String::new(),
            visible: None,
        };
        assert!(everyone.shows("lobby"));
    }
}
