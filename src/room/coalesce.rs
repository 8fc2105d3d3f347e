//! Coalescing: STOMP frames due to the same connections leave as one WebSocket message
//! (STOMP allows several NUL-terminated frames in one; SockJS carries several messages in one
//! `a[...]` frame). The room's engine coalesces what it sends its sockets (see its
//! `coalesce` view, which says when frames wait), a gateway what a room's call brings its
//! sockets.
//!
//! # The rule: runs to the same list of connections
//!
//! A run is the frames of sends whose connections are the very same list (a send to one
//! connection, or a send to many, which the broker builds in the same order for the same
//! subscribers). Anything else done to the sockets sends the runs first (a close, a message
//! that must stay a message of its own, a wake's look at the sessions). Every connection gets
//! its frames in the order they were made, whatever other connections get in between.
//!
//! Why the same list and not per connection: a send to many is one encoding shared by many
//! connections, carried in one call. Regrouping frames per connection would turn one shared
//! send into one per connection, and look up every subscriber of every fan-out, to save
//! messages only where lists merely overlap. Joining the frames of one list keeps a shared send
//! shared and costs a comparison of lists. What it leaves uncoalesced: fan-outs to overlapping
//! lists taking turns, and a fan-out whose list changed because a RECEIPT held its sender back.
//!
//! Runs to lists that share no connection wait side by side (a fan-out reaching plain and
//! SockJS sockets, or subscribers with different subscription ids, is one run per kind), at
//! most [`MAX_RUNS`] and [`MAX_WAITING_BYTES`] of them, the oldest leaving first. A run to a
//! list that shares a connection with a waiting run sends that run first.
//!
//! A run is bounded ([`MAX_COALESCED_FRAMES`], [`MAX_COALESCED_BYTES`]: a frame that would
//! pass either begins the next run; a frame larger than the bound goes alone), all binary or
//! all text, and all for plain sockets or all for SockJS sockets. `coalesce_frames: false` in
//! the settings sends every frame as a message of its own, at once.

use std::collections::HashSet;

use crate::room::session::ConnId;
use crate::room::sockets::{Frames, Sockets};
use crate::sockjs;

/// The most frames one WebSocket message carries.
pub const MAX_COALESCED_FRAMES: usize = 64;

/// The most bytes of frames one WebSocket message carries (a frame larger than this goes
/// alone, as it would without coalescing).
pub const MAX_COALESCED_BYTES: usize = 64 * 1024;

/// A client's WebSocket message this soon after the one before (ms) finds the room busy: the
/// frames it leaves wait for the host's flush, so that messages already queued join them. A
/// room taking 100 messages a second (10 ms apart) sends each at once.
pub const BUSY_WITHIN_MS: u64 = 5;

/// A message's fan-out takes time of its own, during which the clock the room sees stands
/// still: the busy window grows by one millisecond per this many deliveries the last message
/// made (200 µs each), so a fan-out to 1,000 subscribers counts the next message within
/// 205 ms as queued behind it. A delivery sent alone cost the runtime about 50 µs here; a
/// window of exactly that cost put a 1,000-subscriber room on a knife's edge: sent one frame
/// at a time, a fan-out took a little longer than the window, so the next message found the
/// room quiet and was sent one frame at a time too, and the room never caught up (20,000
/// deliveries/s instead of 160,000). A window too wide costs little: what waits leaves at the
/// next 0 ms timer.
pub const DELIVERIES_PER_BUSY_MS: usize = 5;

/// The most runs waiting at once, to lists of connections no two of which share one.
pub const MAX_RUNS: usize = 16;

/// The most bytes of frames waiting in all runs together: past it, the oldest run leaves.
pub const MAX_WAITING_BYTES: usize = 256 * 1024;

/// The runs of frames not yet sent, kept by the engine between events. No two runs share a
/// connection, so the order in which they leave changes no connection's order.
#[derive(Default)]
pub(crate) struct Coalescer {
    enabled: bool,
    runs: Vec<Run>,
    /// When the last client's WebSocket message arrived.
    last_message_ms: Option<u64>,
    /// Deliveries made since then (a frame to each of a run's connections).
    deliveries: usize,
}

/// Where a run leaves by: a room's sockets, or a gateway's.
pub(crate) trait RunSink {
    fn send(&mut self, conn: ConnId, bytes: &[u8], binary: bool);
    fn send_many(&mut self, conns: &[ConnId], bytes: &[u8], binary: bool);
    /// Several frames as one message to each: by default the frames joined.
    fn send_frames(&mut self, conns: &[ConnId], frames: &Frames) {
        match conns {
            [conn] => self.send(*conn, frames.joined(), frames.binary),
            _ => self.send_many(conns, frames.joined(), frames.binary),
        }
    }
}

impl<S: Sockets> RunSink for S {
    fn send(&mut self, conn: ConnId, bytes: &[u8], binary: bool) {
        Sockets::send(self, conn, bytes, binary);
    }

    fn send_many(&mut self, conns: &[ConnId], bytes: &[u8], binary: bool) {
        Sockets::send_many(self, conns, bytes, binary);
    }

    fn send_frames(&mut self, conns: &[ConnId], frames: &Frames) {
        Sockets::send_frames(self, conns, frames);
    }
}

struct Run {
    conns: Vec<ConnId>,
    frames: Frames,
    /// The first frame came as a send to many: a lone frame leaves as it came.
    shared: bool,
    /// For SockJS sockets: leaves as one `a[...]` frame.
    sockjs: bool,
}

impl Run {
    fn new(conns: &[ConnId], bytes: &[u8], binary: bool, shared: bool, sockjs: bool) -> Self {
        Self {
            conns: conns.to_vec(),
            frames: Frames::new(bytes.to_vec(), binary),
            shared,
            sockjs,
        }
    }

    fn takes(&self, conns: &[ConnId], bytes: &[u8], binary: bool, sockjs: bool) -> bool {
        self.frames.binary == binary
            && self.sockjs == sockjs
            && self.frames.len() < MAX_COALESCED_FRAMES
            && self.frames.byte_len() + bytes.len() <= MAX_COALESCED_BYTES
            && self.conns == conns
    }

    fn send(self, sockets: &mut impl RunSink) {
        if self.sockjs {
            let texts: Vec<_> = self.frames.iter().map(String::from_utf8_lossy).collect();
            let message = sockjs::messages_frame(texts.iter().map(AsRef::as_ref));
            return sockets.send_many(&self.conns, message.as_bytes(), false);
        }
        if self.frames.len() > 1 {
            return sockets.send_frames(&self.conns, &self.frames);
        }
        // A run of one frame leaves exactly as it came.
        let binary = self.frames.binary;
        let bytes = self.frames.into_bytes();
        match (self.shared, self.conns.as_slice()) {
            (false, [conn]) => sockets.send(*conn, &bytes, binary),
            (_, conns) => sockets.send_many(conns, &bytes, binary),
        }
    }
}

impl Coalescer {
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            ..Self::default()
        }
    }

    /// A client's WebSocket message arrived: whether the room is busy, so the run it leaves
    /// may wait for the host's flush.
    pub(crate) fn message_arrived(&mut self, now: u64) -> bool {
        let window = BUSY_WITHIN_MS + (self.deliveries / DELIVERIES_PER_BUSY_MS) as u64;
        let busy = self
            .last_message_ms
            .is_some_and(|last| now.saturating_sub(last) < window);
        self.last_message_ms = Some(now);
        self.deliveries = 0;
        self.enabled && busy
    }

    /// A run waits to be sent.
    pub(crate) fn waiting(&self) -> bool {
        !self.runs.is_empty()
    }

    /// One frame due to each of `conns`: joins their run, or begins one. `shared`: it came as
    /// a send to many (a lone frame leaves as it came); `sockjs`: for SockJS sockets.
    pub(crate) fn add(
        &mut self,
        sockets: &mut impl RunSink,
        conns: &[ConnId],
        bytes: &[u8],
        binary: bool,
        shared: bool,
        sockjs: bool,
    ) {
        self.deliveries = self.deliveries.saturating_add(conns.len());
        if !self.enabled {
            return Run::new(conns, bytes, binary, shared, sockjs).send(sockets);
        }
        if let Some(at) = self.runs.iter().position(|run| run.conns == conns) {
            if self.runs[at].takes(conns, bytes, binary, sockjs) {
                self.runs[at].frames.push(bytes);
                return self.keep_within_bounds(sockets);
            }
            self.runs.remove(at).send(sockets);
        } else if !self.runs.is_empty() {
            // Runs to lists that share a connection with this one leave before it.
            let new: HashSet<ConnId> = conns.iter().copied().collect();
            let (overlapping, apart) = std::mem::take(&mut self.runs)
                .into_iter()
                .partition(|run: &Run| run.conns.iter().any(|conn| new.contains(conn)));
            self.runs = apart;
            for run in overlapping {
                run.send(sockets);
            }
        }
        self.runs
            .push(Run::new(conns, bytes, binary, shared, sockjs));
        self.keep_within_bounds(sockets);
    }

    /// The oldest runs leave while more than [`MAX_RUNS`] or [`MAX_WAITING_BYTES`] wait.
    fn keep_within_bounds(&mut self, sockets: &mut impl RunSink) {
        let mut waiting: usize = self.runs.iter().map(|run| run.frames.byte_len()).sum();
        while self.runs.len() > MAX_RUNS || waiting > MAX_WAITING_BYTES {
            let oldest = self.runs.remove(0);
            waiting -= oldest.frames.byte_len();
            oldest.send(sockets);
        }
    }

    /// Sends the runs waiting, if any.
    pub(crate) fn flush(&mut self, sockets: &mut impl RunSink) {
        for run in std::mem::take(&mut self.runs) {
            run.send(sockets);
        }
    }
}
