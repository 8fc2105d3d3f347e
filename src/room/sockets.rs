//! The room's sockets, behind a small trait: the Durable Object implements it with hibernatable
//! WebSockets (each socket's attachment holds its session), the native tests in memory. The
//! requests of the HTTP rungs held open for messages (long polls, event streams) are answered
//! through it too.

use super::http::{HttpResponse, ListenerId};
use super::session::ConnId;

pub trait Sockets {
    /// Accepts the socket that is opening, as connection `conn`; `false` when the platform
    /// refuses it (an object holds at most [`PLATFORM_SOCKETS`](super::budget::PLATFORM_SOCKETS)
    /// hibernatable sockets).
    fn accept(&mut self, conn: ConnId) -> bool;
    /// Sends one WebSocket message: binary when `binary`, else text (`bytes` are then UTF-8).
    fn send(&mut self, conn: ConnId, bytes: &[u8], binary: bool);
    /// Sends the same message to each connection.
    fn send_many(&mut self, conns: &[ConnId], bytes: &[u8], binary: bool) {
        for &conn in conns {
            self.send(conn, bytes, binary);
        }
    }
    /// Sends several frames, in order, to each connection, as one WebSocket message where the
    /// transport carries that (STOMP over WebSocket allows several NUL-terminated frames in
    /// one message): by default the frames joined, as [`send`](Self::send) or
    /// [`send_many`](Self::send_many) would send one.
    fn send_frames(&mut self, conns: &[ConnId], frames: &Frames) {
        self.send_to(conns, frames.joined(), frames.binary);
    }
    /// Sends one message to `conns` as the room sends it to them: a send to the one
    /// connection, or one send to many.
    fn send_to(&mut self, conns: &[ConnId], bytes: &[u8], binary: bool) {
        match conns {
            [conn] => self.send(*conn, bytes, binary),
            _ => self.send_many(conns, bytes, binary),
        }
    }
    /// Sends one WebSocket message that stays a message of its own, never joined with frames
    /// around it (a SockJS frame of the room's own, a test service's echo).
    fn send_apart(&mut self, conn: ConnId, bytes: &[u8], binary: bool) {
        self.send(conn, bytes, binary);
    }
    /// Sends a STOMP frame (or heart-beat) to SockJS sockets, as one SockJS message: by
    /// default in an `a[...]` frame of its own.
    fn send_sockjs(&mut self, conns: &[ConnId], frame: &[u8]) {
        let message = crate::sockjs::stomp_message_frame(frame);
        self.send_to(conns, message.as_bytes(), false);
    }
    /// Sends at once whatever this view of the sockets holds back (frames being coalesced),
    /// before a write: no fan-out waits behind one. The platform's sockets hold nothing back.
    fn flush(&mut self) {}
    /// Closes the socket with a WebSocket close code and reason (after what was sent before).
    fn close(&mut self, conn: ConnId, code: u16, reason: &str);
    /// The client closed the socket (or it failed): let go of it.
    fn forget(&mut self, conn: ConnId);
    /// Keeps the connection's session with its socket, replacing the one kept before.
    fn save_session(&mut self, conn: ConnId, session: &str);
    /// Every open socket's connection and kept session, for a wake.
    fn sessions(&mut self) -> Vec<(ConnId, Option<String>)>;
    /// When the transport last answered the client's heart-beat by itself, without the room.
    fn last_ping_ms(&self, conn: ConnId) -> Option<u64>;
    /// Keeps the request being handled open as `listener` (a long poll or an event stream),
    /// as [`accept`](Self::accept) keeps a socket.
    fn hold(&mut self, listener: ListenerId);
    /// Answers a waiting long poll (see [`HttpOutcome::Wait`](super::http::HttpOutcome)).
    fn answer(&mut self, listener: ListenerId, response: HttpResponse);
    /// Appends bytes to an open event stream: the bytes streamed that its client has not
    /// read yet, or `None` when its client has gone (and the room forgets it).
    fn stream(&mut self, listener: ListenerId, bytes: &[u8]) -> Option<usize>;
    /// The bytes streamed to an open event stream that its client has not read yet.
    fn unread(&self, listener: ListenerId) -> usize;
    /// Ends an open event stream after what was streamed (a SockJS streaming answer that
    /// reached its size limit, or whose session closed).
    fn end(&mut self, listener: ListenerId);
    /// The room's members (sockets held by gateway objects), when these are the engine's own
    /// view of the sockets (`MemberSockets`, in the engine): the platform's
    /// sockets have none, and need not implement this.
    fn members(&mut self) -> Option<&mut super::members::Members> {
        None
    }
}

/// The methods a view of the room's sockets (SockJS's, the coalescer's, the members') passes
/// on to the sockets under it, in its field `sockets`, as they are: what the transport knows
/// of a socket, and the HTTP requests held open.
macro_rules! pass_on_to_inner {
    () => {
        fn last_ping_ms(&self, conn: $crate::room::ConnId) -> Option<u64> {
            self.sockets.last_ping_ms(conn)
        }

        fn hold(&mut self, listener: $crate::room::http::ListenerId) {
            self.sockets.hold(listener);
        }

        fn answer(
            &mut self,
            listener: $crate::room::http::ListenerId,
            response: $crate::room::http::HttpResponse,
        ) {
            self.sockets.answer(listener, response);
        }

        fn stream(
            &mut self,
            listener: $crate::room::http::ListenerId,
            bytes: &[u8],
        ) -> Option<usize> {
            self.sockets.stream(listener, bytes)
        }

        fn unread(&self, listener: $crate::room::http::ListenerId) -> usize {
            self.sockets.unread(listener)
        }

        fn end(&mut self, listener: $crate::room::http::ListenerId) {
            self.sockets.end(listener);
        }
    };
}
pub(crate) use pass_on_to_inner;

/// Frames due to the same connections, in order, each ended as STOMP ends it (a NUL, or a
/// heart-beat's EOL): sent joined as one WebSocket message (see
/// [`Sockets::send_frames`]), or one by one where a transport needs them apart. All binary
/// or all text: a WebSocket message is one or the other.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frames {
    bytes: Vec<u8>,
    /// Where each frame ends in `bytes`.
    ends: Vec<usize>,
    pub binary: bool,
}

impl Frames {
    /// One frame to begin with.
    pub fn new(bytes: Vec<u8>, binary: bool) -> Self {
        let ends = vec![bytes.len()];
        Self {
            bytes,
            ends,
            binary,
        }
    }

    pub fn push(&mut self, frame: &[u8]) {
        self.bytes.extend_from_slice(frame);
        self.ends.push(self.bytes.len());
    }

    /// How many frames.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Their bytes, all of them.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// The frames joined: one WebSocket message's payload.
    pub fn joined(&self) -> &[u8] {
        &self.bytes
    }

    /// The frames one by one, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.bytes[start..end])
    }

    /// The frames, taken back (the first when only one was pushed).
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}
