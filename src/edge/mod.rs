//! The edge: what runs inside the Cloudflare Worker. The router reads each request's
//! [`Route`](crate::room::routes::Route) and sends a room's requests to the room's Durable
//! Object with it, which runs the room's SQL ([`crate::room::sql`]) in its SQLite database,
//! implements its [`Sockets`](crate::room::Sockets) with hibernatable WebSockets, and carries
//! events to the room's [`Host`](crate::room::Host). Every decision lives in the room.

mod env;
mod gateway;
mod health;
mod http;
mod logs;
mod object;
mod registry;
mod relay;
mod router;
mod sqlite;
mod webhooks;
mod websockets;

/// The header in which the router hands a request's [`Route`](crate::room::routes::Route) to
/// the room's object. Only the router reaches an object, and it always sets it.
const ROUTE_HEADER: &str = "x-stomp-rooms-route";
