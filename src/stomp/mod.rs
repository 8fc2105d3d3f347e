//! The sans-IO STOMP core: no `worker` import, no clock, no I/O.
//!
//! * [`Decoder`] turns received bytes into [`Frame`]s; [`Frame::encode`] turns frames into bytes.
//! * [`Broker`] is one room: it takes connection events and bytes with the current time and
//!   returns [`Effect`]s (send, close, persist) for the caller to carry out.
//! * [`ProtocolError`] is the one error type; it becomes the ERROR frame the peer is sent.
//!
//! ```
//! use stomp_rooms::stomp::{Broker, Config, Effect};
//!
//! let mut room = Broker::new(Config::default());
//! let (alice, bob) = (1, 2);
//! for conn in [alice, bob] {
//!     room.open(conn, 0);
//!     room.receive(conn, b"CONNECT\naccept-version:1.2\nhost:room\n\n\0", false, 0);
//! }
//! room.receive(bob, b"SUBSCRIBE\nid:0\ndestination:/topic/chat\n\n\0", false, 0);
//! let effects = room.receive(alice, b"SEND\ndestination:/topic/chat\n\nhello\0", false, 1);
//! let to_bob: Vec<_> = effects
//!     .iter()
//!     .filter_map(|e| match e {
//!         Effect::Send { conn, bytes, .. } if *conn == bob => Some(String::from_utf8_lossy(bytes)),
//!         _ => None,
//!     })
//!     .collect();
//! assert_eq!(
//!     to_bob,
//!     ["MESSAGE\nsubscription:0\nmessage-id:1\ndestination:/topic/chat\nsender:s1\ntimestamp:1\ncontent-length:5\n\nhello\0"]
//! );
//! ```

mod auth;
mod broker;
mod decoder;
pub mod destination;
mod error;
mod escape;
mod frame;
mod heartbeat;
mod limits;
mod session;
pub mod subprotocol;
mod version;

pub use auth::{AllowAll, Authenticator, Credentials};
pub use broker::{Broker, Config, Effect, Message, ReplayRequest, HEART_BEAT_GRACE};
pub use decoder::{Decoded, Decoder};
pub use error::ProtocolError;
pub use frame::{Command, Frame};
pub use heartbeat::HeartBeat;
pub use limits::Limits;
pub use session::{AckMode, ConnId, Phase, Session, Subscription, Unacked};
pub use version::Version;
