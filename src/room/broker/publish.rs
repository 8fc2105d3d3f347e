//! SEND: where a message goes (topic, queue, private), the checks before it is kept, its id,
//! its history row and its fan-out.

#[allow(unused_imports)]
use super::*;

/// What became of a publish from outside any connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The message's id (the original's, for a repeat).
    pub id: u64,
    /// Its idempotency key named an earlier publish: nothing was sent.
    pub repeat: bool,
}

impl Broker {
    pub(super) fn on_send(
        &mut self,
        conn: ConnId,
        frame: Frame,
        binary: bool,
    ) -> Result<(), ProtocolError> {
        let requested = required(&frame, "destination")?;
        let destination = self
            .config
            .destinations
            .route(requested, &frame.body)?
            .into_owned();
        let target =
            destinations::parse_send(&destination, &self.config.limits, &self.config.destinations)?;
        if let Some(transaction) = frame.header("transaction") {
            // Its key is checked now; whether it repeats a publish, when it is committed.
            self.idempotency_key(&frame.headers)?;
            let transaction = transaction.to_owned();
            return self.stage(conn, transaction, frame, binary);
        }
        let requested = requested.to_owned();
        let sender = self.session(conn).map(Sender::of).unwrap_or_default();
        let (id, _) = self.route_once(
            &sender,
            target,
            &requested,
            &destination,
            frame.headers,
            frame.body,
            binary,
        )?;
        self.published = Some(id);
        Ok(())
    }

    /// Publishes a message from outside any connection (an HTTP POST): routed, stored and
    /// delivered exactly as a SEND would be, once per idempotency key. Returns what became of
    /// it and the effects to carry out.
    pub fn publish(
        &mut self,
        sender: &Sender,
        requested: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        now_ms: u64,
    ) -> Result<(Published, Vec<Effect>), ProtocolError> {
        self.now_ms = now_ms;
        let destination = self
            .config
            .destinations
            .route(requested, &body)?
            .into_owned();
        let target =
            destinations::parse_send(&destination, &self.config.limits, &self.config.destinations)?;
        let routed = self.route_once(
            sender,
            target,
            requested,
            &destination,
            headers,
            body,
            false,
        );
        let effects = self.take();
        let (id, repeat) = routed?;
        Ok((Published { id, repeat }, effects))
    }

    /// Stamps a message with its id, sender and time and sends it on its way; returns its id.
    /// A message the room would store is refused first if it does not fit the budget (a row,
    /// a queue, the destinations), so nothing of it goes out.
    pub(super) fn route(
        &mut self,
        sender: &Sender,
        target: SendTarget,
        destination: &str,
        own_headers: Vec<(String, String)>,
        body: Vec<u8>,
        binary: bool,
    ) -> Result<u64, ProtocolError> {
        let binary = binary || std::str::from_utf8(&body).is_err();
        // The room stamps who sent it and when; a client cannot forge either. A claimed
        // login is shown apart, as a name, never as the sender.
        let mut headers = Vec::with_capacity(own_headers.len() + 3);
        sender.stamp(&mut headers);
        headers.push(("timestamp".to_owned(), self.now_ms.to_string()));
        headers.extend(
            own_headers
                .into_iter()
                .filter(|(name, _)| !RESERVED_HEADERS.contains(&name.as_str())),
        );
        let row_bytes = record::message_row_bytes_of(destination, &headers, body.len());
        match target {
            SendTarget::Topic(_) if self.config.history_limit > 0 => {
                self.admit_row(row_bytes)?;
            }
            SendTarget::Queue(_) => {
                self.admit_row(row_bytes)?;
                self.make_room_in_queue(destination, row_bytes)?;
            }
            _ => {}
        }
        let mut message = Message {
            id: self.next_message_id(),
            destination: destination.to_owned(),
            headers,
            body,
            binary,
        };
        let id = message.id;
        match target {
            SendTarget::Topic(_) => {
                // Live delivery first: the caller stores the message after the fan-out.
                let subscribers = self.subscribers(destination);
                self.deliver(&subscribers, &message, Delivery::Live);
                self.out.push(Effect::Archive(message));
                self.archived(destination, id, row_bytes);
            }
            SendTarget::Queue(_) => {
                self.usage.enqueued(destination, row_bytes);
                self.out.push(Effect::Enqueue(message.clone()));
                self.queue(destination.to_owned())
                    .waiting
                    .push_back(Waiting {
                        message,
                        redelivered: false,
                        avoid: None,
                    });
                self.dispatch_queue(destination);
            }
            SendTarget::User {
                identity,
                subscribed_as,
            } => {
                message.destination = subscribed_as.clone();
                let mut recipients = self.subscribers(&subscribed_as);
                recipients
                    .retain(|(to, _)| self.session(*to).is_some_and(|s| s.identity() == identity));
                self.deliver(&recipients, &message, Delivery::Live);
            }
        }
        Ok(id)
    }

    /// A row of `bytes` must fit the room's row limit (below the platform's).
    pub(super) fn admit_row(&self, bytes: u64) -> Result<(), ProtocolError> {
        let max = self.config.budget.max_row_bytes;
        if bytes <= max {
            return Ok(());
        }
        Err(ProtocolError::new(
            "message too large",
            format!(
                "the message would be stored as {bytes} bytes, and the room stores at most \
                 {max} in one (budget.max_row_bytes); send a smaller one"
            ),
        ))
    }

    /// Counts a topic message into its destination's history, and asks for a trim once the
    /// history holds `TRIM_EVERY` messages more than `history_limit` or more bytes than it may.
    /// A destination new to history, when as many keep history as may, takes the place of the
    /// one whose newest message is oldest: that one's history is dropped.
    pub(super) fn archived(&mut self, destination: &str, id: u64, bytes: u64) {
        let limit = self.config.history_limit;
        if limit == 0 {
            return;
        }
        if let Some(dropped) = self.usage.history_to_drop(&self.config.budget, destination) {
            self.usage.set_history(&dropped, HistoryUsage::default());
            self.out.push(Effect::DropHistory {
                destination: dropped,
            });
        }
        let held = self.usage.archived(destination, id, bytes);
        let keep_bytes = self.config.budget.max_history_bytes;
        if held.rows >= limit + TRIM_EVERY || held.bytes > keep_bytes {
            self.out.push(Effect::TrimHistory {
                destination: destination.to_owned(),
                keep_rows: limit,
                keep_bytes,
            });
            // Storage says what remains once the trim is committed.
            self.usage.set_history(
                destination,
                HistoryUsage {
                    rows: held.rows.min(limit),
                    ..held
                },
            );
        }
    }
}
