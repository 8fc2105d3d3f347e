//! The gateway engine ([`crate::gateway`]'s `GatewayHost`) as the gateway object drives it,
//! in one place: each event of the object is one call here, and its turn comes back as a
//! [`Done`] (the event's result, the calls it leaves for rooms, the alarm change, log lines).
//!
//! Until the engine is in this build, a gateway holds nobody: it refuses sockets with a STOMP
//! ERROR that says so, and answers a room that every member it names is gone.

use std::rc::Rc;

use super::sockets::GatewayObjectSockets;
use crate::relay::{GatewayAnswer, MemberId, Outgoing, RoomAnswer, ToGateway, ToRoom};
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

impl<T> Done<T> {
    fn only(result: T) -> Self {
        Self {
            result: Some(result),
            calls: Vec::new(),
            alarm: None,
            logs: Vec::new(),
        }
    }
}

/// What became of a socket being opened.
#[allow(dead_code)] // `Accepted` comes with the engine
pub enum Opening {
    /// Accepted for hibernation, with this member id.
    Accepted,
    /// Refused: these messages, then a close with this code and reason.
    Refused {
        messages: Vec<Vec<u8>>,
        code: u16,
        reason: String,
    },
}

/// The gateway engine's host for one gateway object.
pub struct Engine {
    _name: String,
}

impl Engine {
    /// The engine of the gateway of this name (its mode and room are in its name); `Err` says
    /// why no gateway has that name.
    pub fn new(
        _settings: Settings,
        _auth: Rc<dyn Authenticator>,
        name: &str,
    ) -> Result<Self, String> {
        Ok(Self {
            _name: name.to_owned(),
        })
    }

    pub fn open(
        &mut self,
        _sockets: &mut GatewayObjectSockets,
        _address: Option<String>,
        _sockjs: bool,
        _now: u64,
    ) -> Done<Opening> {
        let error = b"ERROR\ncontent-type:text/plain\nmessage:this server's gateways are not \
                      in this build\n\n\0"
            .to_vec();
        Done::only(Opening::Refused {
            messages: vec![error],
            code: 1011,
            reason: "no gateway engine".to_owned(),
        })
    }

    pub fn receive(
        &mut self,
        _sockets: &mut GatewayObjectSockets,
        _member: MemberId,
        _data: &[u8],
        _binary: bool,
        _now: u64,
    ) -> Done<()> {
        Done::only(())
    }

    pub fn closed(
        &mut self,
        _sockets: &mut GatewayObjectSockets,
        _member: MemberId,
        _now: u64,
    ) -> Done<()> {
        Done::only(())
    }

    pub fn alarm(&mut self, _sockets: &mut GatewayObjectSockets, _now: u64) -> Done<()> {
        Done::only(())
    }

    #[allow(clippy::wrong_self_convention)] // the engine's name: an event from a room
    pub fn from_room(
        &mut self,
        _sockets: &mut GatewayObjectSockets,
        call: &ToGateway,
        _now: u64,
    ) -> Done<GatewayAnswer> {
        let mut gone: Vec<MemberId> = call
            .items
            .iter()
            .flat_map(|item| match item {
                Outgoing::Send { members, .. } => members.clone(),
                Outgoing::Close { member, .. } => vec![*member],
            })
            .collect();
        gone.sort_unstable();
        gone.dedup();
        Done::only(GatewayAnswer { gone })
    }

    pub fn room_answered(
        &mut self,
        _sockets: &mut GatewayObjectSockets,
        _room: &str,
        _answer: Result<RoomAnswer, String>,
        _now: u64,
    ) -> Done<()> {
        Done::only(())
    }

    /// The object could not change the platform's alarm as asked: the engine asks again.
    pub fn alarm_failed(&mut self) {}
}
