//! The room's members: sockets held by gateway objects (see [`crate::relay`]) that the room
//! runs ordinary broker sessions for. Each member has a [`ConnId`] in the room like any socket;
//! what the room sends it goes into an outbox per gateway, carried by one call at a time.
//!
//! * [`table`]: which connection is which gateway's member, and each gateway's outbox.
//! * [`outbox`]: a gateway's outbox: bounded, one call in flight, frames shared by several of
//!   its members sent once.
//!
//! The engine sees the room's sockets through `MemberSockets` (in `engine/member_sockets.rs`,
//! beside the engine that is its only user, as the sockets' trait hands the engine this
//! table): members' sends go to their gateways' outboxes, and the broker sees no difference.
//! * [`placement`]: where a direct socket goes when the room holds as many as it may.

pub mod lease;
pub mod outbox;
pub mod placement;
pub mod table;

pub use lease::{Leases, Lending, LEASED_SOCKETS, LEASE_MS, MAX_LEASED_SOCKETS};
pub use outbox::{Outbox, CALL_TIMEOUT_MS, MAX_GATEWAY_OUTBOX_BYTES};
pub use placement::{shard_gateway, Placement};
pub use table::Members;

use crate::room::session::ConnId;
