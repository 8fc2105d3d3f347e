//! Coalescing: within one event, frames due to the same connections one after another leave
//! as one WebSocket message (STOMP allows several NUL-terminated frames in one), so a replay
//! of history, or a client's message carrying several SENDs, costs each subscriber one send
//! instead of one per frame. A lone frame leaves exactly as it would one by one, when the
//! event's sends end: no timer, no added latency.
//!
//! # The rule: runs to the same set of connections
//!
//! A run is the frames of consecutive sends whose connections are the very same list (a
//! [`Effect::Send`](crate::room::Effect) to one connection, or an `Effect::SendMany`'s list,
//! which the broker builds in the same order for the same subscribers). The next send to a
//! different list ends the run, and the run leaves before it: every connection gets its
//! frames in the order the room made them, whatever other connections get in between.
//!
//! Why the same list and not per connection: an `Effect::SendMany` is one encoding shared by
//! many connections, carried in one call ([`Sockets::send_many`]). Regrouping frames per
//! connection would turn one shared send into one per connection, and look up every
//! subscriber of every fan-out, to save messages only where lists merely overlap. Joining the
//! frames of one list keeps a shared send shared (one call, the frames joined once) and costs
//! a comparison of lists. What it leaves uncoalesced: fan-outs to different lists taking
//! turns (one SEND to two groups of subscribers after another), and a fan-out whose list
//! changed because a RECEIPT held its sender back.
//!
//! A run is bounded ([`MAX_COALESCED_FRAMES`], [`MAX_COALESCED_BYTES`]: a frame that would
//! pass either begins the next run; a frame larger than the bound goes alone), and is all
//! binary or all text (a frame of the other kind begins the next run). What else a
//! connection is sent (a close) ends the run first. `coalesce_frames: false` in the settings
//! sends every frame as a message of its own.

use crate::room::session::ConnId;
use crate::room::sockets::{Frames, Sockets};

/// The most frames one WebSocket message carries.
pub const MAX_COALESCED_FRAMES: usize = 64;

/// The most bytes of frames one WebSocket message carries (a frame larger than this goes
/// alone, as it would without coalescing).
pub const MAX_COALESCED_BYTES: usize = 64 * 1024;

/// The run of frames of the event's sends not yet sent.
pub(super) struct Coalescer {
    enabled: bool,
    run: Option<Run>,
}

struct Run {
    conns: Vec<ConnId>,
    frames: Frames,
    /// The first frame came as a send to many: a lone frame leaves as it came.
    shared: bool,
}

impl Run {
    fn takes(&self, conns: &[ConnId], bytes: &[u8], binary: bool) -> bool {
        self.frames.binary == binary
            && self.frames.len() < MAX_COALESCED_FRAMES
            && self.frames.byte_len() + bytes.len() <= MAX_COALESCED_BYTES
            && self.conns == conns
    }
}

impl Coalescer {
    pub(super) fn new(enabled: bool) -> Self {
        Self { enabled, run: None }
    }

    /// A frame due to one connection.
    pub(super) fn send(
        &mut self,
        sockets: &mut impl Sockets,
        conn: ConnId,
        bytes: Vec<u8>,
        binary: bool,
    ) {
        self.add(sockets, vec![conn], bytes, binary, false);
    }

    /// One frame due to each of these connections.
    pub(super) fn send_many(
        &mut self,
        sockets: &mut impl Sockets,
        conns: Vec<ConnId>,
        bytes: Vec<u8>,
        binary: bool,
    ) {
        self.add(sockets, conns, bytes, binary, true);
    }

    fn add(
        &mut self,
        sockets: &mut impl Sockets,
        conns: Vec<ConnId>,
        bytes: Vec<u8>,
        binary: bool,
        shared: bool,
    ) {
        if let Some(run) = self
            .run
            .as_mut()
            .filter(|run| run.takes(&conns, &bytes, binary))
        {
            run.frames.push(&bytes);
            return;
        }
        self.flush(sockets);
        let run = Run {
            conns,
            frames: Frames::new(bytes, binary),
            shared,
        };
        if self.enabled {
            self.run = Some(run);
        } else {
            send_run(sockets, run);
        }
    }

    /// Sends the run waiting, if any: before anything else goes to its connections, and at
    /// the end of the event's sends.
    pub(super) fn flush(&mut self, sockets: &mut impl Sockets) {
        if let Some(run) = self.run.take() {
            send_run(sockets, run);
        }
    }
}

/// A run of one frame leaves exactly as it came; a longer one as one message.
fn send_run(sockets: &mut impl Sockets, run: Run) {
    if run.frames.len() > 1 {
        return sockets.send_frames(&run.conns, &run.frames);
    }
    let binary = run.frames.binary;
    let bytes = run.frames.into_bytes();
    match (run.shared, run.conns.as_slice()) {
        (false, [conn]) => sockets.send(*conn, &bytes, binary),
        (_, conns) => sockets.send_many(conns, &bytes, binary),
    }
}
