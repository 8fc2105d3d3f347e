//! A connection's deadlines: what each is, and what the broker does when one passes. Each is a
//! field of the connection's persisted session, so it survives eviction exactly.

#[allow(unused_imports)]
use super::*;

impl Broker {
    /// The connection's deadlines, all read from its persisted session.
    pub fn deadlines(&self, conn: ConnId) -> Deadlines {
        let Some(session) = self.session(conn) else {
            return Deadlines::default();
        };
        match session.phase {
            Phase::AwaitingConnect => {
                Deadlines::awaiting_connect(session.opened_ms, self.config.connect_timeout_ms)
            }
            Phase::Connected => Deadlines::connected(
                session.beat_due_ms,
                session.heard_ms,
                session.heart_beat.receive_ms,
                session.expires_ms,
            ),
        }
    }

    /// The CONNECT deadline may have passed: close the socket if it has and no CONNECT came.
    pub fn connect_deadline(&mut self, conn: ConnId, now_ms: u64) -> Vec<Effect> {
        self.now_ms = now_ms;
        if self.deadlines(conn).connect.is_some_and(|at| now_ms >= at) {
            self.fail(
                conn,
                ProtocolError::new("CONNECT timeout", "no CONNECT frame arrived in time"),
            );
        }
        self.take()
    }

    /// The connection's token may have expired: tell the client and close, so it can fetch a
    /// fresh token and reconnect.
    pub fn token_deadline(&mut self, conn: ConnId, now_ms: u64) -> Vec<Effect> {
        self.now_ms = now_ms;
        if self.deadlines(conn).token.is_some_and(|at| now_ms >= at) {
            self.fail(
                conn,
                ProtocolError::new(
                    "token expired",
                    "the connection's token expired: fetch a fresh token and reconnect",
                )
                .with_close_code(1008),
            );
        }
        self.take()
    }

    /// A heart-beat to the client may be due: send it and set the next one.
    pub fn heart_beat_deadline(&mut self, conn: ConnId, now_ms: u64) -> Vec<Effect> {
        self.now_ms = now_ms;
        let Some(connection) = self.conns.get_mut(&conn) else {
            return Vec::new();
        };
        let session = &mut connection.session;
        if session.beat_due_ms.is_some_and(|at| now_ms >= at) {
            session.beat_due_ms = Some(now_ms + u64::from(session.heart_beat.send_ms));
            self.out.push(Effect::Send {
                conn,
                bytes: b"\n".to_vec(),
                binary: false,
            });
            self.save(conn);
        }
        self.take()
    }

    /// The client may have gone silent. `last_ping_ms` is when the transport last answered
    /// one of its heart-beats without waking the room; it counts as hearing from the client.
    pub fn liveness_deadline(
        &mut self,
        conn: ConnId,
        last_ping_ms: Option<u64>,
        now_ms: u64,
    ) -> Vec<Effect> {
        self.now_ms = now_ms;
        let Some(connection) = self.conns.get_mut(&conn) else {
            return Vec::new();
        };
        let session = &mut connection.session;
        if let Some(ping) = last_ping_ms.filter(|&ping| ping > session.heard_ms) {
            session.heard_ms = ping.min(now_ms);
            self.save(conn);
        }
        let overdue = self.deadlines(conn).liveness.is_some_and(|at| now_ms >= at);
        if let Some(session) = self.session(conn).filter(|_| overdue) {
            let rx = session.heart_beat.receive_ms;
            let silent = now_ms.saturating_sub(session.heard_ms);
            self.fail(
                conn,
                ProtocolError::new(
                    "heart-beat timeout",
                    format!("nothing received for {silent} ms; heart-beats were due every {rx} ms"),
                ),
            );
        }
        self.take()
    }

    /// Notes that the client was heard now. The session is rewritten only when that moves its
    /// `heard_ms` by half a heart-beat interval or more: liveness needs no finer clock.
    pub(super) fn heard_from(&mut self, conn: ConnId) {
        let now = self.now_ms;
        let Some(connection) = self.conns.get_mut(&conn) else {
            return;
        };
        let session = &mut connection.session;
        let rx = u64::from(session.heart_beat.receive_ms);
        if session.phase == Phase::Connected && rx > 0 && now >= session.heard_ms + rx / 2 {
            session.heard_ms = now;
            self.save(conn);
        }
    }
}
