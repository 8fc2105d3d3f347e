//! The edge: what runs inside the Cloudflare Worker. The router sends each room's requests to
//! the room's Durable Object, which implements the room's [`Storage`](crate::room::Storage)
//! with SQLite and its [`Sockets`](crate::room::Sockets) with hibernatable WebSockets, and
//! carries events to the [room engine](crate::room::Room). Every decision lives there.

mod env;
mod health;
mod http;
mod object;
mod registry;
mod router;
mod sqlite;
mod websockets;
