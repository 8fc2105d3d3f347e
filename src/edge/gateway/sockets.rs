//! The gateway's sockets: hibernatable WebSockets, each tagged with its member id and carrying
//! its STOMP connection's session as its attachment (as a room's sockets carry theirs, see
//! [`super::super::websockets`]).

use wasm_bindgen::JsCast;
use worker::{js_sys, State, WebSocket};

use super::super::websockets::{
    accept_tagged, close_without_session, send_one, HibernationState, OpenSockets,
};
use crate::gateway::GatewaySockets;
use crate::relay::MemberId;

/// Tags a socket with its member id: `m{id}`.
const MEMBER_TAG_PREFIX: &str = "m";

/// The member id a socket was tagged with.
pub fn member_of(state: &State, ws: &WebSocket) -> Option<MemberId> {
    state
        .get_tags(ws)
        .iter()
        .find_map(|tag| tag.strip_prefix(MEMBER_TAG_PREFIX)?.parse().ok())
}

/// The sockets of one gateway, for the duration of one event.
pub struct GatewayObjectSockets<'a> {
    pub state: &'a State,
    /// The gateway's open sockets, kept between events.
    pub open: &'a mut OpenSockets,
    /// A socket being opened, accepted when the gateway gives it its id.
    pub incoming: Option<WebSocket>,
    /// A socket whose close is being handled: listed even if the runtime no longer lists it.
    pub closing: Option<WebSocket>,
}

impl GatewaySockets for GatewayObjectSockets<'_> {
    fn accept(&mut self, member: MemberId) -> bool {
        let Some(ws) = self.incoming.take() else {
            return false;
        };
        if !accept_tagged(self.state, &ws, &format!("{MEMBER_TAG_PREFIX}{member}")) {
            return false;
        }
        self.open.insert(member, ws);
        true
    }

    fn send(&mut self, member: MemberId, bytes: &[u8], binary: bool) {
        if let Some(ws) = self.open.get(member) {
            send_one(ws, bytes, binary);
        }
    }

    /// One message to several members: crosses into JavaScript once.
    fn send_many(&mut self, members: &[MemberId], bytes: &[u8], binary: bool) {
        self.open.send_to_each(members, bytes, binary);
    }

    fn close(&mut self, member: MemberId, code: u16, reason: &str) {
        if let Some(ws) = self.open.remove(member) {
            close_without_session(&ws, code, reason);
        }
    }

    fn forget(&mut self, member: MemberId) {
        self.open.remove(member);
    }

    fn save_session(&mut self, member: MemberId, session: &str) {
        if let Some(ws) = self.open.get(member) {
            if let Err(error) = ws.serialize_attachment(session) {
                super::super::logs::platform_error(
                    "could not keep a gateway connection's session",
                    None,
                    &format!("member {member}: {error}"),
                );
            }
        }
    }

    fn sessions(&mut self) -> Vec<(MemberId, Option<String>)> {
        let mut sockets = self.state.get_websockets();
        if let Some(closing) = &self.closing {
            let listed = member_of(self.state, closing).is_some_and(|member| {
                sockets
                    .iter()
                    .any(|ws| member_of(self.state, ws) == Some(member))
            });
            if !listed {
                sockets.push(closing.clone());
            }
        }
        let mut sessions = Vec::new();
        for ws in sockets {
            let Some(member) = member_of(self.state, &ws) else {
                let _ = ws.close(Some(1011), Some("unknown connection"));
                continue;
            };
            let session = ws.deserialize_attachment::<String>().ok().flatten();
            self.open.insert(member, ws);
            sessions.push((member, session));
        }
        sessions
    }

    fn last_ping_ms(&self, member: MemberId) -> Option<u64> {
        let ws = self.open.get(member)?;
        let state: &HibernationState = self.state.as_raw().unchecked_ref();
        let stamp = state.auto_response_timestamp(ws.as_ref()).ok()?;
        let date = stamp.dyn_ref::<js_sys::Date>()?;
        Some(date.get_time() as u64)
    }
}
