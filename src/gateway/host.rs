//! The one host of a gateway engine, for the Durable Object and the native tests alike: it
//! holds the engine while the object is in memory, wakes it from the sockets' kept sessions on
//! the first event after an eviction, and after each event saves the sessions it changed and
//! hands back the calls to rooms now due, the alarm change and the log lines.

use std::rc::Rc;

use super::engine::GatewayEngine;
use super::mode::GatewayMode;
use super::sockets::GatewaySockets;
use crate::relay::{GatewayAnswer, MemberId, RoomAnswer, ToGateway, ToRoom};
use crate::room::log::LogLine;
use crate::room::{AlarmChange, Authenticator, Settings};

/// What one event left for the caller: its result, the calls to make to rooms (each room's
/// marked in flight until [`GatewayHost::room_answered`] says how it went), the change to the
/// platform's alarm (`None`: leave it), and the lines logged (see [`crate::room::log`]).
#[derive(Debug)]
pub struct GatewayTurn<T> {
    pub result: T,
    pub calls: Vec<(String, ToRoom)>,
    pub alarm: Option<AlarmChange>,
    pub logs: Vec<LogLine>,
}

/// A gateway engine as the platform hosts it.
pub struct GatewayHost {
    mode: GatewayMode,
    settings: Settings,
    auth: Rc<dyn Authenticator>,
    engine: Option<GatewayEngine>,
    wakes: u32,
}

impl GatewayHost {
    /// A host for the gateway `mode` names, with the rooms' settings and CONNECT hook.
    pub fn new(mode: GatewayMode, settings: Settings, auth: Rc<dyn Authenticator>) -> Self {
        Self {
            mode,
            settings,
            auth,
            engine: None,
            wakes: 0,
        }
    }

    /// The gateway object's name (what rooms call back).
    pub fn name(&self) -> String {
        self.mode.name()
    }

    /// A socket opens (`address`: the client's, for the rooms' per-address cap; `sockjs`: it
    /// carries SockJS's `websocket` transport). `None`: the platform refused it.
    pub fn open(
        &mut self,
        sockets: &mut impl GatewaySockets,
        address: Option<String>,
        sockjs: bool,
        now: u64,
    ) -> GatewayTurn<Option<MemberId>> {
        self.event(sockets, now, |engine, sockets| {
            engine.open(sockets, address, sockjs, now)
        })
    }

    /// A WebSocket message from a member's client.
    pub fn receive(
        &mut self,
        sockets: &mut impl GatewaySockets,
        member: MemberId,
        data: &[u8],
        binary: bool,
        now: u64,
    ) -> GatewayTurn<()> {
        self.event(sockets, now, |engine, sockets| {
            engine.receive(sockets, member, data, binary, now)
        })
    }

    /// A member's client closed its socket, or it failed.
    pub fn closed(
        &mut self,
        sockets: &mut impl GatewaySockets,
        member: MemberId,
        now: u64,
    ) -> GatewayTurn<()> {
        self.event(sockets, now, |engine, sockets| {
            engine.closed(sockets, member)
        })
    }

    /// The platform's alarm fired.
    pub fn alarm(&mut self, sockets: &mut impl GatewaySockets, now: u64) -> GatewayTurn<()> {
        self.event(sockets, now, |engine, sockets| engine.alarm(sockets, now))
    }

    /// A room's call: what it sends and closes for members here.
    pub fn from_room(
        &mut self,
        sockets: &mut impl GatewaySockets,
        call: &ToGateway,
        now: u64,
    ) -> GatewayTurn<GatewayAnswer> {
        self.event(sockets, now, |engine, sockets| {
            engine.from_room(sockets, call)
        })
    }

    /// The room answered the call in flight to it, or the call failed (`Err`: why).
    pub fn room_answered(
        &mut self,
        sockets: &mut impl GatewaySockets,
        room: &str,
        answer: Result<RoomAnswer, String>,
        now: u64,
    ) -> GatewayTurn<()> {
        self.event(sockets, now, |engine, sockets| {
            engine.room_answered(sockets, room, answer)
        })
    }

    /// The caller could not change the alarm as asked: the next event asks again.
    pub fn alarm_failed(&mut self) {
        if let Some(engine) = self.engine.as_mut() {
            engine.alarm_failed();
        }
    }

    /// The engine, when it is in memory.
    pub fn engine(&self) -> Option<&GatewayEngine> {
        self.engine.as_ref()
    }

    /// How many times the engine was built in this host (first use and every wake).
    pub fn wakes(&self) -> u32 {
        self.wakes
    }

    /// The platform evicts the object after a quiet spell: the engine is dropped, the sockets
    /// (and their sessions) stay. Calls in flight and events not yet sent die with it.
    pub fn evict(&mut self) {
        self.engine = None;
    }

    /// The object ends without warning: for a gateway the same as an eviction (it stores
    /// nothing of its own; the sessions are with the sockets).
    pub fn crash(&mut self) {
        self.engine = None;
    }

    fn event<S: GatewaySockets, T>(
        &mut self,
        sockets: &mut S,
        now: u64,
        work: impl FnOnce(&mut GatewayEngine, &mut S) -> T,
    ) -> GatewayTurn<T> {
        let engine = match self.engine.take() {
            Some(engine) => engine,
            None => {
                self.wakes += 1;
                GatewayEngine::wake(
                    self.mode.clone(),
                    self.settings.clone(),
                    self.auth.clone(),
                    sockets,
                    now,
                )
            }
        };
        let engine = self.engine.insert(engine);
        engine.fail_overdue_calls(sockets, now);
        let result = work(engine, sockets);
        engine.save_sessions(sockets);
        GatewayTurn {
            result,
            calls: engine.take_calls(now),
            alarm: engine.alarm_change(now),
            logs: engine.take_logs(),
        }
    }
}
