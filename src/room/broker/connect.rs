//! CONNECT: the version and heart-beats negotiated, the client authenticated, CONNECTED sent.

#[allow(unused_imports)]
use super::*;

impl Broker {
    pub(super) fn on_connect(&mut self, conn: ConnId, frame: &Frame) -> Result<(), ProtocolError> {
        let version = negotiate_version(frame)?;
        if let Some(session) = self.session_mut(conn) {
            session.version = version;
        }
        let client_beat = HeartBeat::parse_header(frame.header("heart-beat"))?;
        let room = self
            .session(conn)
            .map(|s| s.room.as_str())
            .unwrap_or_default();
        let request = connect_request(frame, room, self.config.limits.max_id_bytes, self.now_ms)?;
        let identity = self.auth.authenticate(&request).map_err(auth_refused)?;
        if let Some(login) = identity.login.as_deref().filter(|_| identity.verified) {
            destinations::check_text("login", login, self.config.limits.max_id_bytes)
                .map_err(|error| auth_refused(format!("the token's login: {}", error.detail)))?;
        }
        let min = self.config.heart_beat_min_ms;
        let heart_beat = negotiate_heart_beat(version, client_beat, min);
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
        let connected = connected_frame(version, min, &session.session_id(), &self.config.server);
        let member = presence::member(session);
        let opened = LogEvent::connected(session);
        self.out.push(Effect::Log(opened));
        self.save(conn);
        self.send_frame(conn, &connected);
        self.publish_presence(serde_json::json!({ "type": "join", "member": member }));
        Ok(())
    }
}

/// The version a CONNECT's `accept-version` and this server share, the newest; none: an ERROR
/// naming the versions this server speaks.
pub(crate) fn negotiate_version(frame: &Frame) -> Result<Version, ProtocolError> {
    Version::negotiate(frame.header("accept-version")).ok_or_else(|| {
        ProtocolError::new(
            "unsupported version",
            format!(
                "accept-version {:?} names no version this server speaks; supported: {}",
                frame.header("accept-version").unwrap_or_default(),
                Version::SUPPORTED
            ),
        )
        .with_header("version", Version::SUPPORTED)
    })
}

/// The credentials a CONNECT carries, for the [`Authenticator`] of `room`: its `login` (checked
/// against the id limit), `passcode`, and the token of an `Authorization: Bearer` header.
pub(crate) fn connect_request<'a>(
    frame: &'a Frame,
    room: &'a str,
    max_id_bytes: usize,
    now_ms: u64,
) -> Result<ConnectRequest<'a>, ProtocolError> {
    let login = frame.header("login");
    if let Some(login) = login {
        destinations::check_text("login", login, max_id_bytes)?;
    }
    let bearer = frame
        .header("Authorization")
        .or(frame.header("authorization"))
        .map(|value| authorization_credentials(value, "Bearer").unwrap_or(value.trim()));
    Ok(ConnectRequest {
        room,
        login,
        passcode: frame.header("passcode"),
        bearer,
        now_ms,
    })
}

/// The ERROR for credentials the [`Authenticator`] refused: it closes the socket as a policy
/// violation.
pub(crate) fn auth_refused(reason: String) -> ProtocolError {
    ProtocolError::new("authentication failed", reason).with_close_code(1008)
}

/// The heart-beats both sides keep, with `min` ms as the least the server offers and asks for;
/// STOMP 1.0 has none.
pub(crate) fn negotiate_heart_beat(version: Version, client: (u32, u32), min: u32) -> HeartBeat {
    if version == Version::V1_0 {
        HeartBeat::default()
    } else {
        HeartBeat::negotiate(client, (min, min))
    }
}

/// CONNECTED: the version spoken, the server's heart-beats (`min` ms each way: what it offers
/// and asks for, whatever was negotiated), the session id and the server's name.
pub(crate) fn connected_frame(version: Version, min: u32, session_id: &str, server: &str) -> Frame {
    Frame::new(Command::Connected)
        .with_header("version", version.as_str())
        .with_header("heart-beat", &format!("{min},{min}"))
        .with_header("session", session_id)
        .with_header("server", server)
}
