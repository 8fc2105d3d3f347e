//! The active rooms, for an operator: `GET /rooms`. One Durable Object of the rooms' namespace,
//! under a name no room can have ([`REGISTRY_NAME`]), keeps the names of the rooms that hold
//! WebSockets in its SQLite storage and never runs a room's engine (a class of its own would
//! cost a binding, a migration, and 8 KB gzipped of glue in the Worker). A room tells it only
//! when it goes from no sockets to some and back, never at each join, so a busy room costs the
//! registry nothing; the counts are asked from the listed rooms when the list is read. The
//! registry keeps at most [`MAX_TRACKED`] names, and an answer lists at most [`MAX_LISTED`]
//! rooms (a question to each), with a cursor for the next ones.
//!
//! Rooms and the registry talk over paths under [`INTERNAL`], which the router never forwards
//! to an object (it forwards `/rooms/{room}/...` and configured endpoints only).

use serde_json::json;
use worker::{
    wasm_bindgen_futures, web_sys, Env, Method, Request, Response, Result, SqlStorageValue, State,
    Stub,
};

use super::http;
use crate::room::auth::{self, pattern, ConnectRequest, Gate};
use crate::room::http::{self as room_http, HttpResponse};
use crate::room::{decode_basic, Authenticator};
use crate::room_name;

/// The registry object's name: a room's name starts with a letter or digit.
const REGISTRY_NAME: &str = ".registry";
/// Where rooms and the registry send their requests to each other.
const INTERNAL: &str = "/.registry/";
/// The most room names the registry keeps; rooms that become active beyond it are not listed.
pub const MAX_TRACKED: i64 = 10_000;
/// The most rooms one answer lists: each is asked for its count.
pub const MAX_LISTED: i64 = 100;

/// The object of the rooms' namespace with this name.
fn object(env: &Env, name: &str) -> Result<Stub> {
    env.durable_object(super::router::ROOMS_BINDING)?
        .id_from_name(name)?
        .get_stub()
}

/// A request between rooms and the registry, answered by the object it was sent to (a room
/// tells its count; the registry records and lists); `None` for any other request.
pub async fn internal(state: &State, env: &Env, req: &Request) -> Option<Result<Response>> {
    let path = req.path();
    let what = path.strip_prefix(INTERNAL)?;
    Some(match (req.method(), what) {
        (Method::Get, "occupancy") => occupancy(state),
        _ => Registry { state, env }.serve(req, what).await,
    })
}

// ---- The room's side ----

/// Tells the registry, in the background, when the room's sockets went from none to some or
/// back (`before` and `after` an event).
pub fn occupancy_changed(state: &State, env: &Env, before: usize, after: usize) {
    let change = match (before, after) {
        (0, 1..) => "active",
        (1.., 0) => "idle",
        _ => return,
    };
    let (Some(room), Ok(registry)) = (state.id().name(), object(env, REGISTRY_NAME)) else {
        return;
    };
    wasm_bindgen_futures::spawn_local(async move {
        let url = format!("https://registry{INTERNAL}{change}?room={room}");
        // A POST built with web_sys: worker's RequestInit would bring its cf and header
        // conversions into the Worker (8 KB gzipped) for one method.
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        let sent = match web_sys::Request::new_with_str_and_init(&url, &init) {
            Ok(request) => registry
                .fetch_with_request(request.into())
                .await
                .map(|_| ()),
            Err(error) => Err(error.into()),
        };
        if let Err(error) = sent {
            worker::console_error!(
                "could not tell the room registry that {room} is {change}: {error}"
            );
        }
    });
}

/// The registry's question to a room, answered without waking the room's engine: how many
/// sockets it serves (a socket the room is closing has no session left).
fn occupancy(state: &State) -> Result<Response> {
    let connections = state
        .get_websockets()
        .iter()
        .filter(|ws| {
            ws.deserialize_attachment::<String>()
                .ok()
                .flatten()
                .is_some()
        })
        .count();
    json_response(&json!({ "connections": connections }))
}

// ---- The registry ----

struct Registry<'a> {
    state: &'a State,
    env: &'a Env,
}

struct Row {
    room: String,
    since_ms: u64,
}

impl Registry<'_> {
    async fn serve(&self, req: &Request, what: &str) -> Result<Response> {
        let sql = self.state.storage().sql();
        sql.exec(
            "CREATE TABLE IF NOT EXISTS active_rooms (room TEXT PRIMARY KEY, since_ms INTEGER NOT NULL)",
            None,
        )?;
        let head = http::head_of(req, "", what, room_http::Method::Get)?;
        let room = head.param("room").unwrap_or_default().to_owned();
        match (req.method(), what) {
            (Method::Post, "active") => {
                sql.exec(
                    "INSERT OR IGNORE INTO active_rooms (room, since_ms) SELECT ?, ? \
                     WHERE (SELECT count(*) FROM active_rooms) < ?",
                    vec![
                        room.into(),
                        SqlStorageValue::Float(now_ms() as f64),
                        SqlStorageValue::Integer(MAX_TRACKED),
                    ],
                )?;
                Response::empty()
            }
            // Reports can cross (idle sent before active, arriving after it): the room itself
            // says whether it is empty.
            (Method::Post, "idle") => {
                if self.connections(&room).await == Some(0) {
                    self.forget(&room)?;
                }
                Response::empty()
            }
            (Method::Get, "list") => self.list(head.param("after").unwrap_or_default()).await,
            _ => Response::error("not found", 404),
        }
    }

    /// Up to [`MAX_LISTED`] rooms after `after`, by name, with their counts; rooms found empty
    /// (a crash never reported them idle) are forgotten and left out.
    async fn list(&self, after: &str) -> Result<Response> {
        let rows: Vec<Row> = self
            .state
            .storage()
            .sql()
            .exec(
                "SELECT room, since_ms FROM active_rooms WHERE room > ? ORDER BY room LIMIT ?",
                vec![after.into(), SqlStorageValue::Integer(MAX_LISTED + 1)],
            )?
            .raw()
            .filter_map(|row| match row.ok()?.as_slice() {
                [SqlStorageValue::String(room), since] => Some(Row {
                    room: room.clone(),
                    since_ms: match since {
                        SqlStorageValue::Integer(ms) => *ms as u64,
                        SqlStorageValue::Float(ms) => *ms as u64,
                        _ => 0,
                    },
                }),
                _ => None,
            })
            .collect();
        let more = rows.len() as i64 > MAX_LISTED;
        let rows = &rows[..rows.len().min(MAX_LISTED as usize)];
        let mut rooms = Vec::new();
        // One after another: joining the futures would cost the Worker 3 KB gzipped.
        for row in rows {
            match self.connections(&row.room).await {
                Some(0) => self.forget(&row.room)?,
                connections => rooms.push(json!({
                    "room": row.room,
                    "connections": connections,
                    "active_since": row.since_ms,
                })),
            }
        }
        let next_after = rows.last().map(|row| row.room.clone());
        json_response(&json!({ "rooms": rooms, "more": more, "next_after": next_after }))
    }

    /// The room's count of sockets; `None` if it could not be asked.
    async fn connections(&self, room: &str) -> Option<u64> {
        let mut answer = object(self.env, room)
            .ok()?
            .fetch_with_str(&format!("https://room{INTERNAL}occupancy"))
            .await
            .ok()?;
        let text = answer.text().await.ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()?["connections"].as_u64()
    }

    fn forget(&self, room: &str) -> Result<()> {
        self.state
            .storage()
            .sql()
            .exec("DELETE FROM active_rooms WHERE room = ?", vec![room.into()])?;
        Ok(())
    }
}

// ---- The operator's request ----

/// `GET /rooms[?after={room}]`: the active rooms with their WebSocket counts, asking the
/// credentials a room asks (as `/rooms/{room}/stats` does): none for open rooms; otherwise a
/// token, which lists the rooms its `rooms` claim allows, or a `STOMP_USERS` login.
pub async fn list(req: Request, env: &Env) -> Result<Response> {
    if req.method() != Method::Get {
        return http::to_response(
            HttpResponse::text(405, "GET /rooms lists the active rooms")
                .with_header("allow", "GET"),
        );
    }
    let settings = match super::env::settings(env) {
        Ok(settings) => settings,
        Err(problem) => return text(503, &format!("{problem}; ask its operator")),
    };
    let head = http::head_of(&req, "", "/rooms", room_http::Method::Get)?;
    if !settings.origin_allowed(head.header("origin"), head.header("host")) {
        return text(
            403,
            "this origin may not list rooms: it is not in the room settings' allowed_origins",
        );
    }
    let visible =
        match auth::configure(&super::env::secrets(env), &settings.auth) {
            Err(_) => return text(
                503,
                "the rooms' authentication is misconfigured; ask the operator to check the logs",
            ),
            Ok(None) => None,
            Ok(Some(gate)) => {
                match allowed_rooms(
                    &gate,
                    head.header("authorization"),
                    head.param("access_token"),
                ) {
                    Ok(rooms) => rooms,
                    Err(reason) => {
                        return http::to_response(
                            HttpResponse::text(401, format!("authentication failed: {reason}"))
                                .with_header("www-authenticate", "Bearer"),
                        )
                    }
                }
            }
        };
    let after = head.param("after").unwrap_or_default();
    if !after.is_empty() && room_name::validate(after).is_err() {
        return text(
            400,
            "after= takes a room name: the next_after of the last answer",
        );
    }
    let mut answer = object(env, REGISTRY_NAME)?
        .fetch_with_str(&format!("https://registry{INTERNAL}list?after={after}"))
        .await?;
    let mut listed: serde_json::Value = serde_json::from_str(&answer.text().await?)?;
    if let (Some(patterns), Some(rooms)) = (visible, listed["rooms"].as_array_mut()) {
        rooms.retain(|row| {
            row["room"]
                .as_str()
                .is_some_and(|room| pattern::any_matches(&patterns, room))
        });
    }
    http::to_response(HttpResponse::json(200, &listed).with_header("cache-control", "no-store"))
}

/// The room patterns these credentials may see (`None`: every room), or why they are refused.
fn allowed_rooms(
    gate: &Gate,
    authorization: Option<&str>,
    access_token: Option<&str>,
) -> std::result::Result<Option<Vec<String>>, String> {
    let bearer = authorization
        .and_then(|value| auth::authorization_credentials(value, "Bearer"))
        .or(access_token);
    let basic = authorization
        .and_then(|value| auth::authorization_credentials(value, "Basic"))
        .and_then(decode_basic);
    match (bearer, basic, &gate.tokens, &gate.users) {
        (Some(token), _, Some(verifier), _) => Ok(verifier.verify(token.trim(), now_ms())?.rooms),
        (_, Some((login, passcode)), _, Some(users)) => {
            users.authenticate(&ConnectRequest {
                room: "",
                login: Some(&login),
                passcode: Some(&passcode),
                bearer: None,
                now_ms: now_ms(),
            })?;
            Ok(None)
        }
        _ => Err(
            "listing rooms takes a token (Authorization: Bearer) or a STOMP_USERS login \
                  (Authorization: Basic), as a room does"
                .to_owned(),
        ),
    }
}

fn json_response(body: &serde_json::Value) -> Result<Response> {
    http::to_response(HttpResponse::json(200, body))
}

fn text(status: u16, text: &str) -> Result<Response> {
    http::to_response(HttpResponse::text(status, text))
}

fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}
