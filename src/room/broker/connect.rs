//! CONNECT: the version and heart-beats negotiated, the client authenticated, CONNECTED sent.

#[allow(unused_imports)]
use super::*;

impl Broker {
    pub(super) fn on_connect(&mut self, conn: ConnId, frame: &Frame) -> Result<(), ProtocolError> {
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
        if let Some(session) = self.session_mut(conn) {
            session.version = version;
        }
        let client_beat = HeartBeat::parse_header(frame.header("heart-beat"))?;
        let login = frame.header("login");
        if let Some(login) = login {
            destinations::check_text("login", login, self.config.limits.max_id_bytes)?;
        }
        let bearer = frame
            .header("Authorization")
            .or(frame.header("authorization"))
            .map(|value| authorization_credentials(value, "Bearer").unwrap_or(value.trim()));
        let room = self
            .session(conn)
            .map(|s| s.room.as_str())
            .unwrap_or_default();
        let refused =
            |reason| ProtocolError::new("authentication failed", reason).with_close_code(1008);
        let identity = self
            .auth
            .authenticate(&ConnectRequest {
                room,
                login,
                passcode: frame.header("passcode"),
                bearer,
                now_ms: self.now_ms,
            })
            .map_err(refused)?;
        if let Some(login) = identity.login.as_deref().filter(|_| identity.verified) {
            destinations::check_text("login", login, self.config.limits.max_id_bytes)
                .map_err(|error| refused(format!("the token's login: {}", error.detail)))?;
        }
        let min = self.config.heart_beat_min_ms;
        let heart_beat = if version == Version::V1_0 {
            HeartBeat::default()
        } else {
            HeartBeat::negotiate(client_beat, (min, min))
        };
        let echoed = self.config.heart_beats_echoed && heart_beat.echoes_cover_sending();
        let now = self.now_ms;
        let Some(connection) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        connection.decoder.set_version(version);
        let session = &mut connection.session;
        session.phase = Phase::Connected;
        session.login = identity.login;
        session.verified = identity.verified;
        session.grants = identity.grants;
        session.expires_ms = identity.expires_ms;
        session.heart_beat = heart_beat;
        session.heard_ms = now;
        session.beat_due_ms =
            (heart_beat.send_ms > 0 && !echoed).then(|| now + u64::from(heart_beat.send_ms));
        let connected = Frame::new(Command::Connected)
            .with_header("version", version.as_str())
            .with_header("heart-beat", &format!("{min},{min}"))
            .with_header("session", &session.session_id())
            .with_header("server", &self.config.server);
        let member = presence::member(session);
        let opened = LogEvent::connected(session);
        self.out.push(Effect::Log(opened));
        self.save(conn);
        self.send_frame(conn, &connected);
        self.publish_presence(serde_json::json!({ "type": "join", "member": member }));
        Ok(())
    }
}
