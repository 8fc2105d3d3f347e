//! The edge: what runs inside the Cloudflare Worker. The router reads each request's
//! [`Route`](crate::room::routes::Route) and sends a room's requests to the room's Durable
//! Object with it, which runs the room's SQL ([`crate::room::sql`]) in its SQLite database,
//! implements its [`Sockets`](crate::room::Sockets) with hibernatable WebSockets, and carries
//! events to the room's [`Host`](crate::room::Host). Every decision lives in the room.
//!
//! Rooms spread over objects: the router sends some sockets to gateway objects instead
//! ([`gateway`], which carries events to [`GatewayHost`](crate::gateway::GatewayHost)), and a
//! room and a gateway call each other ([`relay`]).

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
/// the room's (or a gateway's) object. Only the router reaches an object from outside, and it
/// always sets it; objects set it on their calls to each other.
const ROUTE_HEADER: &str = "x-stomp-rooms-route";

/// Milliseconds since the epoch by the runtime's clock (which, in a Worker, moves only between
/// I/O): read without making a `Date`.
fn now_ms() -> u64 {
    worker::js_sys::Date::now() as u64
}
