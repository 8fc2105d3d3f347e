//! The sans-IO STOMP core: no `worker` import, no clock, no I/O.

pub mod subprotocol;
