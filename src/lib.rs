//! stomp-rooms: chat rooms at the edge, spoken in STOMP.
//!
//! Three layers, each with one job:
//!
//! * [`stomp`]: the codec, bytes ↔ frames ([`sockjs`]: the SockJS framing some clients wrap
//!   them in).
//! * [`room`]: one room as a sans-IO state machine: broker, persistence policy and timers;
//!   events and the time in, sends and writes out through two small traits.
//! * `edge` (compiled into the Worker only): the router and the Durable Object, which implement
//!   those traits with SQLite, WebSocket attachments and sends, and carry nothing else.
//!
//! [`gateway`] holds client sockets for rooms spread over objects (sans-IO, like the room).
//!
//! [`room_name`] is the rule for room names, shared by the router and the tests. [`relay`] is
//! what a gateway object (which holds client sockets) and a room object say to each other.

pub mod gateway;
pub mod relay;
pub mod room;
pub mod room_name;
pub mod sockjs;
pub mod stomp;

mod edge;
