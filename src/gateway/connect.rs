//! CONNECT at the gateway, as the room's broker answers it (`room/broker/connect.rs`): the
//! version and heart-beats negotiated, the client authenticated with the room's
//! [`Authenticator`](crate::room::Authenticator) against the gateway's own room, CONNECTED sent.
//! The headers that say who the client is are kept, to relay to each room it uses.

use super::engine::GatewayEngine;
use super::session::{KEPT_CONNECT_HEADERS, MAX_KEPT_CONNECT_BYTES};
use super::sockets::GatewaySockets;
use crate::relay::MemberId;
use crate::room::auth::{authorization_credentials, ConnectRequest};
use crate::room::destinations;
use crate::room::log::Level;
use crate::stomp::{Command, Frame, HeartBeat, ProtocolError, Version};

impl GatewayEngine {
    pub(super) fn on_connect(
        &mut self,
        sockets: &mut impl GatewaySockets,
        member: MemberId,
        frame: &Frame,
        now: u64,
    ) -> Result<(), ProtocolError> {
        let version = Version::negotiate(frame.header("accept-version")).ok_or_else(|| {
            ProtocolError::new(
                "unsupported version",
                format!(
                    "accept-version {:?} names no version this server speaks; supported: {}",
                    frame.header("accept-version").unwrap_or_default(),
                    Version::SUPPORTED
                ),
            )
            .with_header("version", Version::SUPPORTED)
        })?;
        let client_beat = HeartBeat::parse_header(frame.header("heart-beat"))?;
        let limits = &self.settings.broker.limits;
        let login = frame.header("login");
        if let Some(login) = login {
            destinations::check_text("login", login, limits.max_id_bytes)?;
        }
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
        let bearer = frame
            .header("Authorization")
            .or(frame.header("authorization"))
            .map(|value| authorization_credentials(value, "Bearer").unwrap_or(value.trim()));
        let refused =
            |reason| ProtocolError::new("authentication failed", reason).with_close_code(1008);
        let identity = self
            .auth
            .authenticate(&ConnectRequest {
                room: self.mode.room(),
                login,
                passcode: frame.header("passcode"),
                bearer,
                now_ms: now,
            })
            .map_err(refused)?;
        let min = self.settings.broker.heart_beat_min_ms;
        let heart_beat = if version == Version::V1_0 {
            HeartBeat::default()
        } else {
            HeartBeat::negotiate(client_beat, (min, min))
        };
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
        let connected = Frame::new(Command::Connected)
            .with_header("version", version.as_str())
            .with_header("heart-beat", &format!("{min},{min}"))
            .with_header("session", &session.session_id())
            .with_header("server", &server);
        self.dirty.insert(member);
        self.send(sockets, member, &connected.encode(Some(version)));
        self.log(
            Level::Info,
            serde_json::json!({ "event": "connected", "member": member, "version": version.as_str() }),
        );
        Ok(())
    }
}
