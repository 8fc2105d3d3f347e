//! The registry of active rooms behind `GET /rooms`, carried between objects: the rules, the
//! registry's table and who may list are the room's ([`crate::room::registry`]); this module
//! only sends the rooms' reports, asks the rooms' counts and answers the operator.
//!
//! Rooms and the registry talk over paths under [`INTERNAL`], which the router never forwards
//! to an object (it forwards `/rooms/{room}/...` and configured endpoints only).

use serde_json::json;
use worker::{wasm_bindgen_futures, web_sys, Env, Method, Request, Response, Result, State, Stub};

use super::sqlite::DurableObjectSql;
use super::{http, now_ms};
use crate::room::http::{self as room_http, HttpResponse};
use crate::room::registry::{self, ActiveRooms, Listing, Occupancy, REGISTRY_NAME};

/// Where rooms and the registry send their requests to each other.
const INTERNAL: &str = "/.registry/";

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
    let Some(change) = Occupancy::change(before, after).map(Occupancy::as_str) else {
        return;
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
            super::logs::platform_error(
                "could not tell the room registry",
                Some(&room),
                &format!("{change}: {error}"),
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
    Response::ok(connections.to_string())
}

// ---- The registry ----

struct Registry<'a> {
    state: &'a State,
    env: &'a Env,
}

impl Registry<'_> {
    async fn serve(&self, req: &Request, what: &str) -> Result<Response> {
        let rooms = ActiveRooms::<DurableObjectSql>::open(self.state.storage()).map_err(failed)?;
        let head = http::head_of(req, "", what, room_http::Method::Get)?;
        let room = head.param("room").unwrap_or_default().to_owned();
        match (req.method(), what) {
            (Method::Post, "active") => {
                rooms.activate(&room, now_ms()).map_err(failed)?;
                Response::empty()
            }
            // Reports can cross (idle sent before active, arriving after it): the room itself
            // says whether it is empty.
            (Method::Post, "idle") => {
                if self.connections(&room).await == Some(0) {
                    rooms.forget(&room).map_err(failed)?;
                }
                Response::empty()
            }
            (Method::Get, "list") => self.list(&rooms, &Listing::from_query(&head)).await,
            _ => Response::error("not found", 404),
        }
    }

    /// A page of rooms after the listing's cursor, by name, with their counts, of those its
    /// credentials may see; rooms found empty (a crash never reported them idle) are forgotten
    /// and left out.
    async fn list(
        &self,
        rooms: &ActiveRooms<DurableObjectSql>,
        listing: &Listing,
    ) -> Result<Response> {
        let page = rooms.page(&listing.after).map_err(failed)?;
        let mut listed = Vec::new();
        // One after another: joining the futures would cost the Worker 3 KB gzipped.
        for (room, since_ms) in page.rooms.iter().filter(|(room, _)| listing.shows(room)) {
            match self.connections(room).await {
                Some(0) => rooms.forget(room).map_err(failed)?,
                connections => listed.push(json!({
                    "room": room,
                    "connections": connections,
                    "active_since": since_ms,
                })),
            }
        }
        let next_after = page.rooms.last().map(|(room, _)| room.clone());
        json_response(&json!({ "rooms": listed, "more": page.more, "next_after": next_after }))
    }

    /// The room's count of sockets; `None` if it could not be asked.
    async fn connections(&self, room: &str) -> Option<u64> {
        let mut answer = object(self.env, room)
            .ok()?
            .fetch_with_str(&format!("https://room{INTERNAL}occupancy"))
            .await
            .ok()?;
        answer.text().await.ok()?.trim().parse().ok()
    }
}

// ---- The operator's request ----

/// `GET /rooms[?after={room}]`: the active rooms with their WebSocket counts, asking the
/// credentials a room asks (as `/rooms/{room}/stats` does): none for open rooms; otherwise a
/// token, which lists the rooms its `rooms` claim allows, or a `STOMP_USERS` login.
pub async fn list(req: Request, env: &Env) -> Result<Response> {
    let settings = match super::env::settings(env) {
        Ok(settings) => settings,
        Err(problem) => return text(503, &format!("{problem}; ask its operator")),
    };
    let method = room_http::Method::parse(req.method().as_ref());
    let head = http::head_of(&req, "", "/rooms", method)?;
    let listing = match registry::listing(&settings, &super::env::secrets(env), &head, now_ms()) {
        Ok(listing) => listing,
        Err(refusal) => return http::to_response(refusal),
    };
    let mut answer = object(env, REGISTRY_NAME)?
        .fetch_with_str(&format!(
            "https://registry{INTERNAL}list?{}",
            listing.to_query()
        ))
        .await?;
    let listed = HttpResponse {
        status: 200,
        headers: vec![("content-type".to_owned(), "application/json".to_owned())],
        body: answer.bytes().await?,
    };
    http::to_response(listed.with_header("cache-control", "no-store"))
}

fn failed(error: crate::room::StorageError) -> worker::Error {
    worker::Error::RustError(format!("the room registry's storage failed: {error}"))
}

fn json_response(body: &serde_json::Value) -> Result<Response> {
    http::to_response(HttpResponse::json(200, body))
}

fn text(status: u16, text: &str) -> Result<Response> {
    http::to_response(HttpResponse::text(status, text))
}
