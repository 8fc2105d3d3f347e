//! The gateway's engine: its members' connections, what comes from their sockets and from the
//! rooms, its deadlines. The STOMP connection is answered here (see `connect`), frames are
//! routed to rooms (see `routing`), and the calls to rooms wait in the `outbox`.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use super::frames;
use super::mode::GatewayMode;
use super::outbox::Outbox;
use super::session::{MemberSession, MAX_SESSION_BYTES};
use super::sockets::{CoalescedSockets, GatewaySockets};
use crate::relay::{GatewayAnswer, MemberEvent, MemberId, Outgoing, RoomAnswer, ToGateway, ToRoom};
use crate::room::coalesce::Coalescer;
use crate::room::log::{Level, LogLine};
use crate::room::timers::Timers;
use crate::room::HEART_BEAT_GRACE;
use crate::room::{connection_refusal, AlarmChange, Authenticator, Deadlines, Settings};
use crate::sockjs;
use crate::stomp::{Command, Decoded, Decoder, ProtocolError};

/// The close code for a member whose room was lost.
const LOST_ROOM: u16 = 1011;

pub(super) struct Member {
    pub session: MemberSession,
    /// Partly-arrived frames: in memory only (lost with an eviction).
    pub decoder: Decoder,
}

pub struct GatewayEngine {
    pub(super) mode: GatewayMode,
    pub(super) name: String,
    pub(super) settings: Settings,
    pub(super) auth: Rc<dyn Authenticator>,
    pub(super) members: BTreeMap<MemberId, Member>,
    next_member: MemberId,
    pub(super) outbox: Outbox,
    /// Members whose session changed in this event (saved, and their deadlines indexed, at
    /// its end).
    pub(super) dirty: BTreeSet<MemberId>,
    /// The members' deadlines, by time (as a room's): the next alarm without a walk over
    /// every member at each event, which made a storm of connects quadratic.
    timers: Timers,
    /// Bytes of partly-arrived frames held, per member and in all (within
    /// `budget.max_partial_bytes`, as a room's).
    partial: BTreeMap<MemberId, u64>,
    partial_bytes: u64,
    liveness_swept_ms: u64,
    alarm_set: Option<u64>,
    pub(super) logs: Vec<LogLine>,
}

impl GatewayEngine {
    /// The engine, woken from the sockets' kept sessions. A socket whose session cannot be read
    /// is closed (its client reconnects). Member numbers continue above every socket's and
    /// above `now × 1000`, so a number is not given again to a new socket while a room may
    /// still know it under an old one.
    pub fn wake(
        mode: GatewayMode,
        settings: Settings,
        auth: Rc<dyn Authenticator>,
        sockets: &mut impl GatewaySockets,
        now: u64,
    ) -> Self {
        let mut members = BTreeMap::new();
        let mut next_member = now.saturating_mul(1000);
        for (member, kept) in sockets.sessions() {
            next_member = next_member.max(member.saturating_add(1));
            match kept.as_deref().map(MemberSession::from_json) {
                Some(Ok(session)) => {
                    let mut decoder = Decoder::new(settings.broker.limits.clone());
                    if session.connected {
                        decoder.set_version(session.version);
                    }
                    members.insert(member, Member { session, decoder });
                }
                _ => sockets.close(member, LOST_ROOM, "session lost; reconnect"),
            }
        }
        let mut timers = Timers::default();
        let timeout = settings.broker.connect_timeout_ms;
        for (&member, held) in &members {
            timers.set(member, deadlines_of(&held.session, timeout));
        }
        Self {
            name: mode.name(),
            mode,
            settings,
            auth,
            members,
            next_member,
            outbox: Outbox::default(),
            dirty: BTreeSet::new(),
            timers,
            partial: BTreeMap::new(),
            partial_bytes: 0,
            liveness_swept_ms: 0,
            alarm_set: None,
            logs: Vec::new(),
        }
    }

    pub fn mode(&self) -> &GatewayMode {
        &self.mode
    }

    /// A member's session, while its socket is held.
    pub fn session(&self, member: MemberId) -> Option<&MemberSession> {
        self.members.get(&member).map(|m| &m.session)
    }

    /// Whether a call to `room` is in flight (the next waits for its answer).
    pub fn call_in_flight(&self, room: &str) -> bool {
        self.outbox.in_flight(room)
    }

    /// The members held.
    pub fn members(&self) -> impl Iterator<Item = MemberId> + '_ {
        self.members.keys().copied()
    }

    // ---- events -------------------------------------------------------------------------

    /// A socket opens: accepted as a new member (`None`: the platform refused it). A SockJS
    /// socket is sent its open frame.
    pub fn open(
        &mut self,
        sockets: &mut impl GatewaySockets,
        address: Option<String>,
        sockjs: bool,
        now: u64,
    ) -> Option<MemberId> {
        let member = self.next_member;
        self.next_member += 1;
        if !sockets.accept(member) {
            return None;
        }
        if sockjs {
            sockets.send(member, sockjs::OPEN.as_bytes(), false);
        }
        // The rooms' connection caps hold for the sockets a gateway holds for them (a socket
        // that never joins a room is held here only).
        let caps = &self.settings.broker;
        let per_address = caps.max_connections_per_address as usize;
        let from_address = address
            .as_deref()
            .filter(|_| per_address > 0)
            .map(|address| {
                let from = |m: &&Member| m.session.address.as_deref() == Some(address);
                self.members.values().filter(from).count()
            });
        let held = self.members.len();
        let max = caps.max_connections as usize;
        if let Some(error) = connection_refusal(max, per_address, held, from_address) {
            self.log(
                Level::Warn,
                serde_json::json!({
                    "event": "refused", "member": member, "message": error.message,
                    "detail": error.detail,
                }),
            );
            let bytes = error.to_frame().encode(None);
            sockets.send(member, &frames::for_socket(&bytes, sockjs), false);
            if sockjs {
                let close = sockjs::close_frame(error.close_code, &error.message);
                sockets.send(member, close.as_bytes(), false);
            }
            sockets.close(member, error.close_code, &error.message);
            return Some(member);
        }
        let session = MemberSession::new(member, address, sockjs, now);
        let decoder = Decoder::new(self.settings.broker.limits.clone());
        self.members.insert(member, Member { session, decoder });
        self.dirty.insert(member);
        Some(member)
    }

    /// A WebSocket message from a member's client.
    pub fn receive(
        &mut self,
        sockets: &mut impl GatewaySockets,
        member: MemberId,
        data: &[u8],
        binary: bool,
        now: u64,
    ) {
        let Some(held) = self.members.get(&member) else {
            return;
        };
        if held.session.disconnecting.is_some() {
            return;
        }
        let max = self.settings.broker.limits.max_frame_bytes;
        if !held.session.sockjs {
            if data.len() > max {
                let error = ProtocolError::new(
                    "message too large",
                    format!(
                        "a WebSocket message may carry at most {max} bytes (max_frame_bytes); \
                         send smaller frames, one per message"
                    ),
                );
                return self.fail(sockets, member, error);
            }
            return self.feed(sockets, member, data, binary, now);
        }
        if data.len() > crate::room::max_sockjs_payload(max) {
            return self.close_member(sockets, member, 1009, "message too large");
        }
        let text = std::str::from_utf8(data).ok().filter(|_| !binary);
        match text.map(sockjs::decode_client) {
            Some(Ok(messages)) => {
                for message in messages {
                    self.feed(sockets, member, message.as_bytes(), false, now);
                }
            }
            broken => {
                let reason = if broken.is_none() {
                    "SockJS sends text"
                } else {
                    "Broken framing."
                };
                self.close_member(sockets, member, 1002, reason);
            }
        }
    }

    /// STOMP bytes from a member: every whole frame handled in order; a bad one ends it.
    fn feed(
        &mut self,
        sockets: &mut impl GatewaySockets,
        member: MemberId,
        data: &[u8],
        binary: bool,
        now: u64,
    ) {
        let Some(held) = self.members.get_mut(&member) else {
            return;
        };
        held.decoder.push(data);
        let session = &mut held.session;
        let rx = u64::from(session.heart_beat.receive_ms);
        if session.connected && rx > 0 && now >= session.heard_ms + rx / 2 {
            session.heard_ms = now;
            self.dirty.insert(member);
        }
        // A DISCONNECT or an error ends the member, which ends the loop.
        while let Some(held) = self.members.get_mut(&member) {
            if held.session.disconnecting.is_some() {
                break;
            }
            match held.decoder.next_item() {
                Ok(None) => break,
                Ok(Some(Decoded::HeartBeat)) => {}
                Ok(Some(Decoded::Frame(frame))) => {
                    let receipt = frame.header("receipt").map(str::to_owned);
                    if let Err(error) = self.handle_frame(sockets, member, frame, binary, now) {
                        self.fail(sockets, member, error.with_receipt(receipt.as_deref()));
                        break;
                    }
                }
                Err(error) => {
                    self.fail(sockets, member, error);
                    break;
                }
            }
        }
        if let Err(error) = self.hold_partial(member) {
            self.fail(sockets, member, error);
        }
    }

    /// Counts what a member's decoder holds of a frame not yet whole against the budget of
    /// partly-arrived frames for all members.
    fn hold_partial(&mut self, member: MemberId) -> Result<(), ProtocolError> {
        let held = self
            .members
            .get(&member)
            .map_or(0, |m| m.decoder.pending().len() as u64);
        let old = self.partial.get(&member).copied().unwrap_or(0);
        let total = self.partial_bytes - old + held;
        let max = self.settings.broker.budget.max_partial_bytes;
        if held > old && total > max {
            return Err(ProtocolError::new(
                "gateway busy",
                format!(
                    "the gateway holds as many partly-arrived frames as it may ({max} bytes, \
                     budget.max_partial_bytes); send each frame whole in one message, or try \
                     again later"
                ),
            )
            .with_close_code(crate::room::budget::TRY_AGAIN_LATER));
        }
        self.partial_bytes = total;
        if held == 0 {
            self.partial.remove(&member);
        } else {
            self.partial.insert(member, held);
        }
        Ok(())
    }

    /// The client closed its socket (or it failed): its rooms are told.
    pub fn closed(&mut self, sockets: &mut impl GatewaySockets, member: MemberId) {
        sockets.forget(member);
        if let Some(session) = self.session(member) {
            let rooms = session.rooms.len();
            self.log(
                Level::Info,
                serde_json::json!({ "event": "closed", "member": member, "rooms": rooms }),
            );
        }
        self.end_member(member);
    }

    /// A room's call: its sends and closes for members here, in order, and its probes. Members
    /// it names that the gateway no longer holds (or that never joined that room) are answered
    /// `gone`.
    pub fn from_room(
        &mut self,
        sockets: &mut impl GatewaySockets,
        call: &ToGateway,
    ) -> GatewayAnswer {
        let room = call.room.as_str();
        let mut gone = BTreeSet::new();
        // Frames of the call to the same members leave as one message each (see
        // `crate::room::coalesce`): a call carries all that waited at the room.
        let mut out = Coalescer::new(self.settings.coalesce_frames);
        for item in &call.items {
            match item {
                Outgoing::Send {
                    members,
                    binary,
                    bytes,
                } => {
                    let held: Vec<MemberId> = members
                        .iter()
                        .copied()
                        .filter(|m| {
                            let joined = self.session(*m).is_some_and(|s| s.joined(room));
                            if !joined {
                                gone.insert(*m);
                            }
                            joined
                        })
                        .collect();
                    if !frames::is_connected(bytes) {
                        self.deliver(sockets, &mut out, room, &held, bytes, *binary);
                    }
                }
                Outgoing::Close {
                    member,
                    code,
                    reason,
                } => {
                    if !self.session(*member).is_some_and(|s| s.joined(room)) {
                        gone.insert(*member);
                        continue;
                    }
                    out.flush(&mut CoalescedSockets(sockets));
                    self.room_closed(sockets, room, *member, *code, reason);
                }
                // The room asks which of its members are still here (see `Outgoing::Probe`).
                Outgoing::Probe { members } => gone.extend(
                    members
                        .iter()
                        .filter(|m| !self.session(**m).is_some_and(|s| s.joined(room))),
                ),
            }
        }
        out.flush(&mut CoalescedSockets(sockets));
        GatewayAnswer {
            gone: gone.into_iter().collect(),
        }
    }

    /// A room's message to members: to their sockets, once for all of the plain ones and once
    /// for all of the SockJS ones, less a DISCONNECT's RECEIPTs held back until the last.
    fn deliver<G: GatewaySockets>(
        &mut self,
        sockets: &mut G,
        out: &mut Coalescer,
        room: &str,
        members: &[MemberId],
        bytes: &[u8],
        binary: bool,
    ) {
        let (mut plain, mut framed) = (Vec::new(), Vec::new());
        let named = match self.mode {
            GatewayMode::Endpoint { .. } => frames::with_room_in_ack(bytes, room),
            GatewayMode::Shard { .. } => None,
        };
        let bytes = named.as_deref().unwrap_or(bytes);
        for &member in members {
            let Some(held) = self.members.get_mut(&member) else {
                continue;
            };
            let session = &mut held.session;
            if let Some(bye) = &session.disconnecting {
                let receipt = frames::decode_if(bytes, Command::Receipt, session.version);
                if receipt.is_some_and(|r| r.header("receipt-id") == Some(bye.receipt.as_str())) {
                    out.flush(&mut CoalescedSockets(&mut *sockets));
                    self.disconnect_answered(sockets, member, room);
                    continue;
                }
            }
            let Some(held) = self.members.get(&member) else {
                continue;
            };
            let session = &held.session;
            if session.sockjs {
                framed.push(member);
            } else {
                plain.push(member);
            }
        }
        let mut sink = CoalescedSockets(sockets);
        if !plain.is_empty() {
            out.add(&mut sink, &plain, bytes, binary, true, false);
        }
        if !framed.is_empty() {
            out.add(&mut sink, &framed, bytes, false, true, true);
        }
    }

    /// A room closed a member: the socket closes with its code (after what the room sent
    /// before), and the member's other rooms are told it left. During a DISCONNECT, it is that
    /// room's answer.
    fn room_closed(
        &mut self,
        sockets: &mut impl GatewaySockets,
        room: &str,
        member: MemberId,
        code: u16,
        reason: &str,
    ) {
        let Some(held) = self.members.get_mut(&member) else {
            return;
        };
        held.session.rooms.retain(|r| r != room);
        if held.session.disconnecting.is_some() {
            return self.disconnect_answered(sockets, member, room);
        }
        self.close_member(sockets, member, code, reason);
    }

    /// One of the rooms a DISCONNECT went to answered it: after the last, the client gets its
    /// RECEIPT and the socket closes.
    fn disconnect_answered(
        &mut self,
        sockets: &mut impl GatewaySockets,
        member: MemberId,
        room: &str,
    ) {
        let Some(held) = self.members.get_mut(&member) else {
            return;
        };
        let session = &mut held.session;
        let Some(bye) = session.disconnecting.as_mut() else {
            return;
        };
        bye.waiting.retain(|r| r != room);
        self.dirty.insert(member);
        if bye.waiting.is_empty() {
            let bytes = frames::receipt(&bye.receipt).encode(Some(session.version));
            // The rooms ended the member on its DISCONNECT: none needs a `Left`.
            session.rooms.clear();
            self.send(sockets, member, &bytes);
            self.close_member(sockets, member, 1000, "DISCONNECT");
        }
    }

    /// A room answered the call in flight to it, or the call failed: members it does not know
    /// (or, on a failure, every member in it) are told the room is lost and closed.
    pub fn room_answered(
        &mut self,
        sockets: &mut impl GatewaySockets,
        room: &str,
        answer: Result<RoomAnswer, String>,
    ) {
        self.outbox.answered(room);
        let lost: Vec<MemberId> = match &answer {
            Ok(answer) => answer.unknown.clone(),
            Err(error) => {
                self.log(
                    Level::Warn,
                    serde_json::json!({
                        "event": "room_call_failed", "room": room, "error": error,
                    }),
                );
                self.members.keys().copied().collect()
            }
        };
        for member in lost {
            if self.session(member).is_some_and(|s| s.joined(room)) {
                let error = ProtocolError::new(
                    format!("lost room {room}"),
                    format!("the connection to room {room} was lost; reconnect"),
                )
                .with_close_code(LOST_ROOM);
                self.fail(sockets, member, error);
            }
        }
    }

    /// Calls to rooms unanswered past [`CALL_TIMEOUT_MS`](crate::room::members::CALL_TIMEOUT_MS)
    /// count as failed (an answer lost would hold every later call to that room): their
    /// members are told the room is lost, as for any failed call. Run before every event.
    pub fn fail_overdue_calls(&mut self, sockets: &mut impl GatewaySockets, now: u64) {
        for room in self.outbox.overdue(now) {
            let error = format!("no answer in {} ms", crate::room::members::CALL_TIMEOUT_MS);
            self.room_answered(sockets, &room, Err(error));
        }
    }

    /// The alarm fired: CONNECT timeouts, heart-beats owed, and (at most every
    /// `liveness_check_ms`) clients gone silent.
    pub fn alarm(&mut self, sockets: &mut impl GatewaySockets, now: u64) {
        self.alarm_set = None;
        let timeout = self.settings.broker.connect_timeout_ms;
        let sweep = self.liveness_sweep_at().is_some_and(|at| now >= at);
        let members: Vec<MemberId> = self.members.keys().copied().collect();
        for member in members {
            let ping = sockets.last_ping_ms(member);
            let Some(held) = self.members.get_mut(&member) else {
                continue;
            };
            let session = &mut held.session;
            if !session.connected {
                if now >= session.opened_ms + timeout {
                    let error =
                        ProtocolError::new("CONNECT timeout", "no CONNECT frame arrived in time");
                    self.fail(sockets, member, error);
                }
                continue;
            }
            if session.expires_ms.is_some_and(|at| now >= at) {
                let error = ProtocolError::new(
                    "token expired",
                    "the connection's token expired: fetch a fresh token and reconnect",
                )
                .with_close_code(1008);
                self.fail(sockets, member, error);
                continue;
            }
            if session.beat_due_ms.is_some_and(|at| now >= at) {
                session.beat_due_ms = Some(now + u64::from(session.heart_beat.send_ms));
                self.dirty.insert(member);
                self.send(sockets, member, b"\n");
            }
            let Some(session) = self.members.get_mut(&member).map(|m| &mut m.session) else {
                continue;
            };
            let rx = u64::from(session.heart_beat.receive_ms);
            if !sweep || rx == 0 {
                continue;
            }
            if let Some(ping) = ping.filter(|&ping| ping > session.heard_ms) {
                session.heard_ms = ping.min(now);
                self.dirty.insert(member);
            }
            if now >= session.heard_ms + rx * HEART_BEAT_GRACE {
                let silent = now.saturating_sub(session.heard_ms);
                let error = ProtocolError::new(
                    "heart-beat timeout",
                    format!("nothing received for {silent} ms; heart-beats were due every {rx} ms"),
                );
                self.fail(sockets, member, error);
            }
        }
        if sweep {
            self.liveness_swept_ms = now;
        }
    }

    // ---- after each event ---------------------------------------------------------------

    /// Saves the sessions the event changed with their sockets, and indexes their deadlines.
    /// A session grown past what an attachment holds ends its member (the bounds keep it from
    /// happening).
    pub fn save_sessions(&mut self, sockets: &mut impl GatewaySockets) {
        let timeout = self.settings.broker.connect_timeout_ms;
        while let Some(member) = self.dirty.pop_first() {
            let Some(held) = self.members.get(&member) else {
                continue;
            };
            self.timers
                .set(member, deadlines_of(&held.session, timeout));
            let json = held.session.to_json();
            if json.len() > MAX_SESSION_BYTES {
                let error = ProtocolError::new(
                    "session too large",
                    format!("the connection's state grew past {MAX_SESSION_BYTES} bytes; use fewer rooms, subscriptions or transactions"),
                );
                self.fail(sockets, member, error);
                self.dirty.remove(&member);
                continue;
            }
            sockets.save_session(member, &json);
        }
    }

    /// The calls to rooms due now, each marked in flight until its room answers.
    pub fn take_calls(&mut self, now: u64) -> Vec<(String, ToRoom)> {
        self.outbox.take_calls(&self.name, now)
    }

    /// The log lines since the last call, at or above `log_level`.
    pub fn take_logs(&mut self) -> Vec<LogLine> {
        std::mem::take(&mut self.logs)
    }

    /// How the platform's alarm must change after an event, if at all (as the room's).
    pub fn alarm_change(&mut self, now: u64) -> Option<AlarmChange> {
        AlarmChange::needed(self.next_alarm(), &mut self.alarm_set, now)
    }

    /// The caller could not change the alarm as asked: the next event asks again.
    pub fn alarm_failed(&mut self) {
        self.alarm_set = None;
    }

    /// When the gateway next has a deadline to meet.
    pub fn next_alarm(&self) -> Option<u64> {
        [
            self.timers.next_on_time(),
            self.liveness_sweep_at(),
            self.outbox.call_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// When silent clients are next looked for: when the first may be, but at most every
    /// `liveness_check_ms`.
    fn liveness_sweep_at(&self) -> Option<u64> {
        let first = self.timers.next_liveness()?;
        Some(first.max(self.liveness_swept_ms + self.settings.liveness_check_ms))
    }

    // ---- helpers ------------------------------------------------------------------------

    /// Sends one STOMP message (or heart-beat) to a member's socket, SockJS-framed if it is.
    pub(super) fn send(&self, sockets: &mut impl GatewaySockets, member: MemberId, bytes: &[u8]) {
        let sockjs = self.session(member).is_some_and(|s| s.sockjs);
        sockets.send(member, &frames::for_socket(bytes, sockjs), false);
    }

    /// Tells the client what went wrong, then closes its socket; its rooms are told it left.
    pub(super) fn fail(
        &mut self,
        sockets: &mut impl GatewaySockets,
        member: MemberId,
        error: ProtocolError,
    ) {
        let Some(session) = self.session(member) else {
            return;
        };
        let version = session.connected.then_some(session.version);
        let bytes = error.to_frame().encode(version);
        self.log(
            Level::Warn,
            serde_json::json!({
                "event": "refused", "member": member, "message": error.message,
                "detail": error.detail,
            }),
        );
        self.send(sockets, member, &bytes);
        let mut reason = error.message.clone();
        truncate(&mut reason, 100);
        self.close_member(sockets, member, error.close_code, &reason);
    }

    /// Closes a member's socket (a SockJS one is told with a close frame first); its rooms
    /// are told it left.
    pub(super) fn close_member(
        &mut self,
        sockets: &mut impl GatewaySockets,
        member: MemberId,
        code: u16,
        reason: &str,
    ) {
        let Some(session) = self.session(member) else {
            return;
        };
        if session.sockjs {
            sockets.send(member, sockjs::close_frame(code, reason).as_bytes(), false);
        }
        sockets.close(member, code, reason);
        self.end_member(member);
    }

    /// Forgets a member; each room it joined is told it left.
    fn end_member(&mut self, member: MemberId) {
        let Some(held) = self.members.remove(&member) else {
            return;
        };
        self.dirty.remove(&member);
        self.timers.remove(member);
        self.partial_bytes -= self.partial.remove(&member).unwrap_or(0);
        for room in held.session.rooms {
            self.outbox.push(&room, MemberEvent::Left { member });
        }
    }

    /// Logs a line at `level` (when the settings' `log_level` lets it through), naming the
    /// gateway.
    pub(super) fn log(&mut self, level: Level, mut line: serde_json::Value) {
        if level < self.settings.log_level {
            return;
        }
        if let Some(object) = line.as_object_mut() {
            object.insert("level".to_owned(), level.as_str().into());
            object.insert("gateway".to_owned(), self.name.clone().into());
        }
        let json = line.to_string();
        self.logs.push(LogLine { level, json });
    }
}

/// Cuts a text to at most `max` bytes, at a character boundary.
fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// A member's deadlines, from its session: its CONNECT's until it connects; then the
/// heart-beat it is owed, its token's expiry, and when it counts as silent.
fn deadlines_of(session: &MemberSession, connect_timeout_ms: u64) -> Deadlines {
    match session.connected {
        false => Deadlines::awaiting_connect(session.opened_ms, connect_timeout_ms),
        true => Deadlines::connected(
            session.beat_due_ms,
            session.heard_ms,
            session.heart_beat.receive_ms,
            session.expires_ms,
        ),
    }
}
