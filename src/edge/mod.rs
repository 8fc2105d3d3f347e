//! The edge layer: what runs inside the Cloudflare Worker. It routes, moves bytes and persists;
//! every decision about STOMP lives in the sans-IO core ([`crate::stomp`]).

mod room;
mod router;
mod settings;
mod store;
