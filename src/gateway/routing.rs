//! Which room each of a member's frames goes to (README, "Scaling"): by destination on an
//! endpoint gateway, always the shard's room on a shard gateway; UNSUBSCRIBE, ACK and NACK to
//! where their subscription or message came from; a transaction's frames to the one room its
//! first frame bound it to. The first frame for a room joins the member to it: `Joined`, then
//! the kept CONNECT (with `heart-beat:0,0`), then the frame.

use super::engine::GatewayEngine;
use super::frames;
use super::mode::GatewayMode;
use super::outbox::{event_bytes, MAX_OUTBOX_BYTES, MAX_ROOM_OUTBOX_BYTES};
use super::session::{
    Disconnecting, RoutedSubscription, MAX_DISCONNECT_RECEIPT_BYTES, MAX_ROOMS_PER_MEMBER,
};
use super::sockets::GatewaySockets;
use crate::relay::{MemberEvent, MemberId};
use crate::room::{check_new_transaction, destinations, gone, missing_header, required};
use crate::stomp::{Command, Frame, ProtocolError, Version};

impl GatewayEngine {
    /// One frame from a member's client.
    pub(super) fn handle_frame(
        &mut self,
        sockets: &mut impl GatewaySockets,
        member: MemberId,
        frame: Frame,
        binary: bool,
        now: u64,
    ) -> Result<(), ProtocolError> {
        let connected = self.session(member).is_some_and(|s| s.connected);
        let command = frame.command;
        if !command.allows_body() && !frame.body.is_empty() {
            return Err(ProtocolError::new(
                "unexpected body",
                format!("{command} frames may not have a body; only SEND carries one"),
            ));
        }
        match (connected, command) {
            (false, Command::Connect | Command::Stomp) => {
                self.on_connect(sockets, member, &frame, now)
            }
            (false, _) => Err(ProtocolError::new(
                "not connected",
                format!("received {command} before CONNECT; send CONNECT (or STOMP) first"),
            )),
            (true, Command::Connect | Command::Stomp) => Err(ProtocolError::new(
                "already connected",
                "this connection already sent CONNECT",
            )),
            (_, Command::Subscribe) => self.on_subscribe(member, frame, binary),
            (_, Command::Unsubscribe) => self.on_unsubscribe(member, frame, binary),
            (_, Command::Send) => self.on_send(member, frame, binary),
            (_, Command::Ack | Command::Nack) => self.on_ack(member, frame, binary),
            (_, Command::Begin) => self.on_begin(sockets, member, &frame),
            (_, Command::Commit | Command::Abort) => {
                self.on_end_transaction(sockets, member, frame, binary)
            }
            (_, Command::Disconnect) => self.on_disconnect(sockets, member, frame, binary),
            (_, Command::Connected | Command::Message | Command::Receipt | Command::Error) => {
                Err(ProtocolError::new(
                    "unexpected command",
                    format!("{command} is sent by servers, not clients"),
                ))
            }
        }
    }

    /// The room a destination lives in.
    pub fn room_for(&self, destination: &str) -> Result<String, ProtocolError> {
        match &self.mode {
            GatewayMode::Shard { room, .. } => Ok(room.clone()),
            GatewayMode::Endpoint { room, .. } => {
                match self.settings.scaling.room_of(destination) {
                    Some(Ok(named)) => Ok(named),
                    Some(Err(why)) => Err(ProtocolError::new("invalid destination", why)),
                    None => Ok(room.clone()),
                }
            }
        }
    }

    fn on_subscribe(
        &mut self,
        member: MemberId,
        frame: Frame,
        binary: bool,
    ) -> Result<(), ProtocolError> {
        let limits = &self.settings.broker.limits;
        let destination = required(&frame, "destination")?;
        destinations::check_text("destination", destination, limits.max_destination_bytes)?;
        let session = self.session(member).ok_or_else(gone)?;
        // STOMP 1.0 made `id` optional; such a subscription is named by its destination.
        let id = match (frame.header("id"), session.version) {
            (Some(id), _) => id,
            (None, Version::V1_0) => destination,
            (None, _) => return Err(missing_header(Command::Subscribe, "id")),
        };
        destinations::check_text("subscription id", id, limits.max_id_bytes)?;
        if session.subscription(id).is_some() {
            return Err(ProtocolError::new(
                "duplicate subscription",
                format!("this connection already has a subscription with id {id:?}"),
            ));
        }
        let max = limits.max_subscriptions;
        if session.subscriptions.len() >= max {
            return Err(ProtocolError::new(
                "too many subscriptions",
                format!("a connection may hold at most {max} subscriptions (max_subscriptions)"),
            ));
        }
        let subscription = RoutedSubscription {
            id: id.to_owned(),
            room: self.room_for(destination)?,
        };
        self.relay(member, &subscription.room, &frame, binary)?;
        if let Some(held) = self.members.get_mut(&member) {
            held.session.subscriptions.push(subscription);
            self.dirty.insert(member);
        }
        Ok(())
    }

    fn on_unsubscribe(
        &mut self,
        member: MemberId,
        frame: Frame,
        binary: bool,
    ) -> Result<(), ProtocolError> {
        let session = self.session(member).ok_or_else(gone)?;
        let id = match (frame.header("id"), session.version) {
            (Some(id), _) => Some(id),
            (None, Version::V1_0) => frame.header("destination"),
            (None, _) => None,
        };
        let room = match id.and_then(|id| session.subscription(id)) {
            Some(subscription) => subscription.room.clone(),
            // The room answers an unknown id as it does today.
            None => self.mode.room().to_owned(),
        };
        self.relay(member, &room, &frame, binary)?;
        if let (Some(id), Some(held)) = (id, self.members.get_mut(&member)) {
            held.session.subscriptions.retain(|s| s.id != id);
            self.dirty.insert(member);
        }
        Ok(())
    }

    fn on_send(
        &mut self,
        member: MemberId,
        frame: Frame,
        binary: bool,
    ) -> Result<(), ProtocolError> {
        let limits = &self.settings.broker.limits;
        let destination = required(&frame, "destination")?;
        destinations::check_text("destination", destination, limits.max_destination_bytes)?;
        // A destination filled from the body names its room once filled.
        let routed = self
            .settings
            .broker
            .destinations
            .route(destination, &frame.body)?;
        let room = self.room_for(&routed)?;
        self.bind_transaction(member, &frame, &room, binary)?;
        self.relay(member, &room, &frame, binary)
    }

    fn on_ack(
        &mut self,
        member: MemberId,
        frame: Frame,
        binary: bool,
    ) -> Result<(), ProtocolError> {
        let held = self.members.get_mut(&member).ok_or_else(gone)?;
        let session = &held.session;
        let mut frame = frame;
        // 1.2: the ack id names its room (see `frames::with_room_in_ack`), which gets its own
        // id back; 1.0 and 1.1 name the subscription.
        let named = match session.version {
            Version::V1_2 => {
                let id = frame.header("id").unwrap_or_default().to_owned();
                match frames::room_in_ack(&id) {
                    Some((room, own)) if session.joined(room) => {
                        let own = own.to_owned();
                        for (name, value) in &mut frame.headers {
                            if name == "id" {
                                *value = own;
                                break;
                            }
                        }
                        Some(room.to_owned())
                    }
                    _ => None,
                }
            }
            _ => frame
                .header("subscription")
                .and_then(|id| session.subscription(id))
                .map(|s| s.room.clone()),
        };
        let only = (session.rooms.len() == 1).then(|| session.rooms[0].clone());
        let room = named
            .or(only)
            .unwrap_or_else(|| self.mode.room().to_owned());
        self.bind_transaction(member, &frame, &room, binary)?;
        self.relay(member, &room, &frame, binary)
    }

    /// BEGIN is kept at the gateway until a frame of the transaction says its room.
    fn on_begin(
        &mut self,
        sockets: &mut impl GatewaySockets,
        member: MemberId,
        frame: &Frame,
    ) -> Result<(), ProtocolError> {
        let transaction = required(frame, "transaction")?;
        let limits = &self.settings.broker.limits;
        destinations::check_text("transaction id", transaction, limits.max_id_bytes)?;
        let max = limits.max_transactions;
        let held = self.members.get_mut(&member).ok_or_else(gone)?;
        let session = &mut held.session;
        let open = session.transactions.iter().any(|(t, _)| t == transaction);
        check_new_transaction(transaction, open, session.transactions.len(), max)?;
        session.transactions.push((transaction.to_owned(), None));
        let version = session.version;
        self.dirty.insert(member);
        if let Some(receipt) = frame.header("receipt") {
            self.send(
                sockets,
                member,
                &frames::receipt(receipt).encode(Some(version)),
            );
        }
        Ok(())
    }

    /// COMMIT or ABORT: to the transaction's room; one no frame bound is answered here.
    fn on_end_transaction(
        &mut self,
        sockets: &mut impl GatewaySockets,
        member: MemberId,
        frame: Frame,
        binary: bool,
    ) -> Result<(), ProtocolError> {
        let transaction = required(&frame, "transaction")?;
        let held = self.members.get_mut(&member).ok_or_else(gone)?;
        let session = &mut held.session;
        let at = session
            .transactions
            .iter()
            .position(|(t, _)| t == transaction)
            .ok_or_else(|| {
                ProtocolError::new(
                    "unknown transaction",
                    format!("transaction {transaction:?} is not open on this connection"),
                )
            })?;
        let (_, room) = session.transactions.remove(at);
        let version = session.version;
        self.dirty.insert(member);
        match room {
            Some(room) => self.relay(member, &room, &frame, binary),
            None => {
                if let Some(receipt) = frame.header("receipt") {
                    self.send(
                        sockets,
                        member,
                        &frames::receipt(receipt).encode(Some(version)),
                    );
                }
                Ok(())
            }
        }
    }

    /// A frame of a transaction goes to the transaction's room: the first binds it (and the
    /// BEGIN kept here goes first); one for another room is refused.
    fn bind_transaction(
        &mut self,
        member: MemberId,
        frame: &Frame,
        room: &str,
        binary: bool,
    ) -> Result<(), ProtocolError> {
        let Some(transaction) = frame.header("transaction") else {
            return Ok(());
        };
        let held = self.members.get_mut(&member).ok_or_else(gone)?;
        let Some((_, bound)) = held
            .session
            .transactions
            .iter_mut()
            .find(|(t, _)| t == transaction)
        else {
            // Not open: the room says so.
            return Ok(());
        };
        match bound {
            Some(bound) if bound == room => Ok(()),
            Some(bound) => Err(ProtocolError::new(
                "transaction spans rooms",
                format!(
                    "transaction {transaction:?} is bound to room {bound}, and this {} goes to \
                     room {room}: a transaction's frames must all go to one room",
                    frame.command
                ),
            )),
            None => {
                *bound = Some(room.to_owned());
                self.dirty.insert(member);
                let begin = Frame::new(Command::Begin).with_header("transaction", transaction);
                self.relay(member, room, &begin, binary)
            }
        }
    }

    /// DISCONNECT: to every room joined; the client's RECEIPT once all have answered (or at
    /// once, from the gateway, when it joined none).
    fn on_disconnect(
        &mut self,
        sockets: &mut impl GatewaySockets,
        member: MemberId,
        frame: Frame,
        binary: bool,
    ) -> Result<(), ProtocolError> {
        let session = self.session(member).ok_or_else(gone)?;
        let rooms = session.rooms.clone();
        let version = session.version;
        let receipt = frame.header("receipt").map(str::to_owned);
        if let Some(receipt) = receipt.as_deref().filter(|_| !rooms.is_empty()) {
            if receipt.len() > MAX_DISCONNECT_RECEIPT_BYTES {
                return Err(ProtocolError::new(
                    "receipt too long",
                    format!("a DISCONNECT's receipt may be at most {MAX_DISCONNECT_RECEIPT_BYTES} bytes"),
                ));
            }
        }
        for room in &rooms {
            self.relay(member, room, &frame, binary)?;
        }
        match receipt {
            Some(receipt) if !rooms.is_empty() => {
                if let Some(held) = self.members.get_mut(&member) {
                    held.session.disconnecting = Some(Disconnecting {
                        receipt,
                        waiting: rooms,
                    });
                    self.dirty.insert(member);
                }
            }
            receipt => {
                if let Some(receipt) = receipt {
                    self.send(
                        sockets,
                        member,
                        &frames::receipt(&receipt).encode(Some(version)),
                    );
                }
                // The rooms end the member on its DISCONNECT: none needs a `Left`.
                if let Some(held) = self.members.get_mut(&member) {
                    held.session.rooms.clear();
                }
                self.close_member(sockets, member, 1000, "DISCONNECT");
            }
        }
        Ok(())
    }

    /// Queues a frame for a room, joining the member to it first if it is new there.
    fn relay(
        &mut self,
        member: MemberId,
        room: &str,
        frame: &Frame,
        binary: bool,
    ) -> Result<(), ProtocolError> {
        let session = self.session(member).ok_or_else(gone)?;
        let bytes = frame.encode(Some(session.version));
        // A first frame for the room goes with the member's join and its CONNECT.
        let joining = (!session.joined(room)).then(|| {
            let joined = MemberEvent::Joined {
                member,
                address: session.address.clone(),
            };
            let connect = MemberEvent::Data {
                member,
                binary: false,
                bytes: session.relayed_connect().encode(None),
            };
            (joined, connect)
        });
        let join_bytes = joining.as_ref().map_or(0, |(joined, connect)| {
            event_bytes(joined) + event_bytes(connect)
        });
        if !self.outbox.fits(room, bytes.len() + join_bytes) {
            return Err(ProtocolError::new(
                "room busy",
                format!(
                    "room {room} is not keeping up with this gateway (it holds at most \
                     {MAX_ROOM_OUTBOX_BYTES} bytes for a room, {MAX_OUTBOX_BYTES} for all); try \
                     again later"
                ),
            )
            .with_close_code(crate::room::budget::TRY_AGAIN_LATER));
        }
        if let Some((joined, connect)) = joining {
            if session.rooms.len() >= MAX_ROOMS_PER_MEMBER {
                return Err(ProtocolError::new(
                    "too many rooms",
                    format!("a connection may use at most {MAX_ROOMS_PER_MEMBER} rooms at once"),
                ));
            }
            self.outbox.push(room, joined);
            self.outbox.push(room, connect);
            if let Some(held) = self.members.get_mut(&member) {
                held.session.rooms.push(room.to_owned());
                self.dirty.insert(member);
            }
        }
        self.outbox.push(
            room,
            MemberEvent::Data {
                member,
                binary,
                bytes,
            },
        );
        Ok(())
    }
}
