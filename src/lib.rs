//! stomp-rooms: chat rooms at the edge, spoken in STOMP.
//!
//! The crate has two halves:
//!
//! * [`stomp`] and [`room_name`] are the sans-IO core: plain Rust, no `worker` import, compiled and
//!   tested natively. Bytes and frames go in; frames and effects come out.
//! * `edge` (compiled into the Worker) routes WebSocket upgrades to one Durable Object per room and
//!   carries out what the core returns. It only moves bytes and persists state.

pub mod room_name;
pub mod stomp;

mod edge;
