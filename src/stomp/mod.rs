//! The STOMP codec: bytes ↔ frames, and nothing else. No `worker` import, no clock, no I/O.
//!
//! * [`Decoder`] turns received bytes into [`Frame`]s; [`Frame::encode`] turns frames into bytes.
//! * [`encode_message`] writes a stored [`Message`] as a MESSAGE frame (the fan-out hot path).
//! * [`ProtocolError`] is the one error type; it becomes the ERROR frame the peer is sent.
//! * [`Limits`] bound everything a peer can make us hold, checked before it is kept.
//!
//! ```
//! use stomp_rooms::stomp::{Command, Decoded, Decoder, Limits};
//!
//! let mut decoder = Decoder::new(Limits::default());
//! decoder.push(b"SEND\ndestination:/topic/chat\n\nhel");
//! assert!(decoder.next_item().unwrap().is_none(), "the frame has not fully arrived");
//! decoder.push(b"lo\0\n");
//! let Some(Decoded::Frame(frame)) = decoder.next_item().unwrap() else { panic!() };
//! assert_eq!(frame.command, Command::Send);
//! assert_eq!(frame.header("destination"), Some("/topic/chat"));
//! assert_eq!(frame.body, b"hello");
//! ```

mod decoder;
mod error;
mod escape;
mod frame;
mod heartbeat;
mod limits;
mod message;
pub mod subprotocol;
mod version;

pub use decoder::{Decoded, Decoder};
pub use error::ProtocolError;
pub use frame::{header_lines_len, Command, Frame};
pub use heartbeat::HeartBeat;
pub use limits::Limits;
pub use message::{encode_message, Delivery, Message, MessageFrameKey};
pub use version::Version;
