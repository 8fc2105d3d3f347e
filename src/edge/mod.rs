//! The edge: what runs inside the Cloudflare Worker. The router sends each room's requests to
//! the room's Durable Object, which implements the room's [`Storage`](crate::room::Storage)
//! with SQLite and its [`Sockets`](crate::room::Sockets) with hibernatable WebSockets, and
//! carries events to the [room engine](crate::room::RoomEngine). Every decision lives there.

mod env;
mod http;
mod object;
mod router;
mod sqlite;
mod websockets;

/// The header in which the router hands a request's [`Route`](crate::room::routes::Route) to
/// the room's object. Only the router reaches an object, and it always sets it.
const ROUTE_HEADER: &str = "x-stomp-rooms-route";
