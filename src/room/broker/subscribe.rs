//! SUBSCRIBE and UNSUBSCRIBE, and the history a subscription asks to replay.

#[allow(unused_imports)]
use super::*;

impl Broker {
    pub(super) fn on_subscribe(
        &mut self,
        conn: ConnId,
        frame: &Frame,
    ) -> Result<(), ProtocolError> {
        let limits = &self.config.limits;
        let destination = required(frame, "destination")?.to_owned();
        let target =
            destinations::parse_subscribe(&destination, limits, &self.config.destinations)?;
        let version = self
            .session(conn)
            .map(|s| s.version)
            .unwrap_or(Version::V1_2);
        // STOMP 1.0 made `id` optional; such a subscription is named by its destination.
        let id = match (frame.header("id"), version) {
            (Some(id), _) => id.to_owned(),
            (None, Version::V1_0) => destination.clone(),
            (None, _) => return Err(missing_header(Command::Subscribe, "id")),
        };
        destinations::check_text("subscription id", &id, limits.max_id_bytes)?;
        let ack = AckMode::parse(frame.header("ack")).ok_or_else(|| {
            ProtocolError::new(
                "invalid ack mode",
                "ack must be auto, client or client-individual",
            )
        })?;
        let replay = parse_replay(frame, target)?;
        let echo = parse_echo(frame)?;
        let max_subscriptions = limits.max_subscriptions;
        let session = self.session_mut(conn).ok_or_else(gone)?;
        session.grants.check_subscribe(&destination)?;
        if session.subscription(&id).is_some() {
            return Err(ProtocolError::new(
                "duplicate subscription",
                format!("this connection already has a subscription with id {id:?}"),
            ));
        }
        if session.subscriptions.len() >= max_subscriptions {
            return Err(ProtocolError::new(
                "too many subscriptions",
                format!("a connection may hold at most {max_subscriptions} subscriptions (max_subscriptions)"),
            ));
        }
        let handle = session.next_handle;
        session.next_handle = session.next_handle.wrapping_add(1);
        session.subscriptions.push(Subscription {
            id: id.clone(),
            handle,
            destination: destination.clone(),
            ack,
            echo,
            replay_incomplete: false,
        });
        self.index_subscription(&destination, conn, handle);
        self.save(conn);
        match target {
            SubscribeTarget::Presence => self.send_presence_snapshot(conn, handle)?,
            SubscribeTarget::Queue => self.dispatch_queue(&destination),
            SubscribeTarget::Topic | SubscribeTarget::User => {}
        }
        if let Some(request) = replay {
            self.charge(conn, Cost::bytes(self.read_cost(&destination)))?;
            self.out.push(Effect::Replay {
                conn,
                subscription: id,
                destination,
                request,
                receipt: None,
            });
        }
        Ok(())
    }

    pub(super) fn on_unsubscribe(
        &mut self,
        conn: ConnId,
        frame: &Frame,
    ) -> Result<(), ProtocolError> {
        let session = self.session(conn).ok_or_else(gone)?;
        let id = match (frame.header("id"), session.version) {
            (Some(id), _) => id,
            (None, Version::V1_0) => required(frame, "destination")?,
            (None, _) => return Err(missing_header(Command::Unsubscribe, "id")),
        };
        let Some(subscription) = session.subscription(id).cloned() else {
            return Err(ProtocolError::new(
                "unknown subscription",
                format!("no subscription with id {id:?}"),
            ));
        };
        self.drop_subscription(conn, &subscription);
        self.save(conn);
        Ok(())
    }
}

/// The `echo` header: `false` (or `0`, `no`, `off`, any case) keeps the subscriber's own
/// messages from it; `true` (`1`, `yes`, `on`) or no header delivers them, as by default.
fn parse_echo(frame: &Frame) -> Result<bool, ProtocolError> {
    let Some(value) = frame.header("echo") else {
        return Ok(true);
    };
    Subscription::parse_echo(value).ok_or_else(|| {
        ProtocolError::new(
            "invalid echo header",
            "echo must be true or false (false: this subscription does not receive messages its \
             own session, or its verified login, sent)",
        )
    })
}

pub(super) fn parse_replay(
    frame: &Frame,
    target: SubscribeTarget,
) -> Result<Option<ReplayRequest>, ProtocolError> {
    let invalid = |name: &str| {
        ProtocolError::new(
            "invalid replay request",
            format!("{name} must be a non-negative integer (replay-last: how many; replay-after: a message-id)"),
        )
    };
    let request = match (frame.header("replay-last"), frame.header("replay-after")) {
        (None, None) => return Ok(None),
        (Some(n), _) => ReplayRequest::Last(n.trim().parse().map_err(|_| invalid("replay-last"))?),
        (None, Some(id)) => {
            ReplayRequest::After(id.trim().parse().map_err(|_| invalid("replay-after"))?)
        }
    };
    if target != SubscribeTarget::Topic {
        return Err(ProtocolError::new(
            "invalid replay request",
            "history is kept for /topic/ destinations only",
        ));
    }
    Ok(Some(request))
}
