//! CONNECT at the gateway, as the room's broker answers it (`room/broker/connect.rs`): the
//! version and heart-beats negotiated, the client authenticated with the room's
//! [`Authenticator`](crate::room::Authenticator) against the gateway's own room, CONNECTED sent.
//! The headers that say who the client is are kept, to relay to each room it uses.

use super::engine::GatewayEngine;
use super::session::{KEPT_CONNECT_HEADERS, MAX_KEPT_CONNECT_BYTES};
use super::sockets::GatewaySockets;
use crate::relay::MemberId;
use crate::room::log::Level;
use crate::room::{
    auth_refused, connect_request, connected_frame, negotiate_heart_beat, negotiate_version,
};
use crate::stomp::{Frame, HeartBeat, ProtocolError};

impl GatewayEngine {
    pub(super) fn on_connect(
        &mut self,
        sockets: &mut impl GatewaySockets,
        member: MemberId,
        frame: &Frame,
        now: u64,
    ) -> Result<(), ProtocolError> {
        let version = negotiate_version(frame)?;
        let client_beat = HeartBeat::parse_header(frame.header("heart-beat"))?;
        let limits = &self.settings.broker.limits;
        let request = connect_request(frame, self.mode.room(), limits.max_id_bytes, now)?;
        let kept: Vec<(String, String)> = frame
            .headers
            .iter()
            .filter(|(name, _)| KEPT_CONNECT_HEADERS.contains(&name.as_str()))
            .cloned()
            .collect();
        // Counted as the session keeps them (JSON escapes may grow a value).
        if serde_json::to_string(&kept).map_or(usize::MAX, |json| json.len())
            > MAX_KEPT_CONNECT_BYTES
        {
            return Err(ProtocolError::new(
                "CONNECT too large",
                format!("the CONNECT's version and credential headers may take at most {MAX_KEPT_CONNECT_BYTES} bytes"),
            ));
        }
        let identity = self.auth.authenticate(&request).map_err(auth_refused)?;
        let min = self.settings.broker.heart_beat_min_ms;
        let heart_beat = negotiate_heart_beat(version, client_beat, min);
        // The platform answers each client ping itself: where those answers cover what the
        // client wants to hear, the gateway sends no heart-beats of its own. A SockJS client's
        // pings come framed (`["\n"]`), which the platform does not answer.
        let sockjs = self.session(member).is_some_and(|s| s.sockjs);
        let echoed = !sockjs && heart_beat.echoes_cover_sending();
        let server = self.settings.broker.server.clone();
        let Some(held) = self.members.get_mut(&member) else {
            return Ok(());
        };
        held.decoder.set_version(version);
        let session = &mut held.session;
        session.connected = true;
        session.version = version;
        session.heart_beat = heart_beat;
        session.heard_ms = now;
        session.beat_due_ms =
            (heart_beat.send_ms > 0 && !echoed).then(|| now + u64::from(heart_beat.send_ms));
        let max_id = self.settings.broker.limits.max_id_bytes;
        session.login = identity.login.filter(|login| login.len() <= max_id);
        session.expires_ms = identity.expires_ms;
        session.connect_headers = kept;
        let connected = connected_frame(version, min, &session.session_id(), &server);
        self.dirty.insert(member);
        self.send(sockets, member, &connected.encode(Some(version)));
        // At debug, as a room's own connections: the close is the one line at info.
        self.log(
            Level::Debug,
            serde_json::json!({ "event": "connected", "member": member, "version": version.as_str() }),
        );
        Ok(())
    }
}
