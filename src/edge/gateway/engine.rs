//! The gateway engine ([`crate::gateway::GatewayHost`]) as the gateway object drives it, in
//! one place: each event of the object is one call here, and its turn comes back as a
//! [`Done`] (the event's result, the calls it leaves for rooms, the alarm change, log lines).

use std::rc::Rc;

use super::sockets::GatewayObjectSockets;
use crate::gateway::{GatewayHost, GatewayMode, GatewayTurn};
use crate::relay::{GatewayAnswer, MemberId, RoomAnswer, ToGateway, ToRoom};
use crate::room::log::LogLine;
use crate::room::{AlarmChange, Authenticator, Settings};

/// What one event of the gateway left for the object.
pub struct Done<T> {
    /// The event's result; `None` when it failed (the logs say why).
    pub result: Option<T>,
    /// Calls due to rooms, by room name: sent after the event.
    pub calls: Vec<(String, ToRoom)>,
    pub alarm: Option<AlarmChange>,
    pub logs: Vec<LogLine>,
}

impl<T> From<GatewayTurn<T>> for Done<T> {
    fn from(turn: GatewayTurn<T>) -> Self {
        Self {
            result: Some(turn.result),
            calls: turn.calls,
            alarm: turn.alarm,
            logs: turn.logs,
        }
    }
}

/// What became of a socket being opened.
pub enum Opening {
    /// Accepted for hibernation.
    Accepted,
    /// Refused: these messages, then a close with this code and reason.
    #[allow(dead_code)] // the gateway engine answers a refused CONNECT on the socket itself
    Refused {
        messages: Vec<Vec<u8>>,
        code: u16,
        reason: String,
    },
}

/// The gateway engine's host for one gateway object.
pub struct Engine(GatewayHost);

impl Engine {
    /// The engine of the gateway of this name (its mode and room are in its name); `Err` says
    /// why no gateway has that name.
    pub fn new(
        settings: Settings,
        auth: Rc<dyn Authenticator>,
        name: &str,
    ) -> Result<Self, String> {
        let mode =
            GatewayMode::from_name(name).ok_or_else(|| format!("{name:?} is no gateway's name"))?;
        Ok(Self(GatewayHost::new(mode, settings, auth)))
    }

    pub fn open(
        &mut self,
        sockets: &mut GatewayObjectSockets,
        address: Option<String>,
        sockjs: bool,
        now: u64,
    ) -> Done<Opening> {
        let turn = self.0.open(sockets, address, sockjs, now);
        let mut done = Done::from(turn);
        // `None`: the platform refused the socket (logged); the object answers 503.
        let accepted = done.result.take().flatten().is_some();
        Done {
            result: accepted.then_some(Opening::Accepted),
            calls: done.calls,
            alarm: done.alarm,
            logs: done.logs,
        }
    }

    pub fn receive(
        &mut self,
        sockets: &mut GatewayObjectSockets,
        member: MemberId,
        data: &[u8],
        binary: bool,
        now: u64,
    ) -> Done<()> {
        self.0.receive(sockets, member, data, binary, now).into()
    }

    pub fn closed(
        &mut self,
        sockets: &mut GatewayObjectSockets,
        member: MemberId,
        now: u64,
    ) -> Done<()> {
        self.0.closed(sockets, member, now).into()
    }

    pub fn alarm(&mut self, sockets: &mut GatewayObjectSockets, now: u64) -> Done<()> {
        self.0.alarm(sockets, now).into()
    }

    #[allow(clippy::wrong_self_convention)] // the engine's name: an event from a room
    pub fn from_room(
        &mut self,
        sockets: &mut GatewayObjectSockets,
        call: &ToGateway,
        now: u64,
    ) -> Done<GatewayAnswer> {
        self.0.from_room(sockets, call, now).into()
    }

    pub fn room_answered(
        &mut self,
        sockets: &mut GatewayObjectSockets,
        room: &str,
        answer: Result<RoomAnswer, String>,
        now: u64,
    ) -> Done<()> {
        self.0.room_answered(sockets, room, answer, now).into()
    }

    /// The object could not change the platform's alarm as asked: the engine asks again.
    pub fn alarm_failed(&mut self) {
        self.0.alarm_failed();
    }
}
