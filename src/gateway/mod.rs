//! The gateway: an object that holds client sockets and their STOMP *connections* (CONNECT,
//! heart-beats, liveness, frame limits, partial frames) and relays each socket's frames to the
//! rooms they are for, as a member of each (see [`crate::relay`] and README, "Scaling"). Like
//! the room it is sans-IO: events and the time go in, sends, closes and calls to rooms come out,
//! through [`GatewaySockets`] and the [`GatewayTurn`] each event returns. No `worker` import.
//!
//! * [`GatewayMode`]: what a gateway is for, read from its object's name.
//! * [`GatewayHost`]: the one host of the engine (the Durable Object and the native tests);
//!   wakes it from the sockets' kept sessions after an eviction.
//! * `engine`: the connections and the routing of their frames; `session`: what of a socket
//!   must survive eviction (kept with the socket); `outbox`: the calls to rooms, at most one in
//!   flight per room.

mod connect;
mod engine;
mod frames;
mod host;
mod mode;
mod outbox;
mod routing;
mod session;
mod sockets;
pub mod testing;

pub use engine::GatewayEngine;
pub use host::{GatewayHost, GatewayTurn};
pub use mode::GatewayMode;
pub use outbox::{MAX_OUTBOX_BYTES, MAX_ROOM_OUTBOX_BYTES};
pub use session::{
    MemberSession, MAX_ACK_IDS, MAX_DISCONNECT_RECEIPT_BYTES, MAX_KEPT_CONNECT_BYTES,
    MAX_ROOMS_PER_MEMBER, MAX_SESSION_BYTES,
};
pub use sockets::GatewaySockets;
