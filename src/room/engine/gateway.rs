//! The engine's side of gateway objects (see [`crate::relay`] and [`crate::room::members`]):
//! a gateway's call brings its members' joins, frames and departures, each handled as a
//! socket's open, message and close would be; what the room sends them waits in an outbox per
//! gateway for the next call, one in flight at a time.

#[allow(unused_imports)]
use super::*;

use crate::relay::{GatewayAnswer, MemberEvent, MemberId, RoomAnswer, ToGateway, ToRoom};
use crate::room::members::{placement, Members, Placement};
use crate::room::storage::StoredMember;

/// How long past the CONNECT timeout a socket sent to a gateway still counts there (its
/// upgrade forwarded, its CONNECT's first frame on the way).
const PLACED_MARGIN_MS: u64 = 10_000;

impl RoomEngine {
    /// A gateway's call: each event in order. `Joined` opens a connection for the member (the
    /// room's caps count it as any socket), `Data` is what it sent, `Left` closes it. Members
    /// the call names that the room does not hold are answered `unknown`.
    pub fn from_gateway(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        call: &ToRoom,
        now: u64,
    ) -> Result<RoomAnswer, Failed> {
        if self.logs.room().is_none() {
            if let Some(room) = placement::room_of_shard(&call.gateway) {
                self.name_is(room);
            }
        }
        self.with_sessions(sockets, now, |room, sockets| {
            room.rebuild_if_needed(store, sockets, now)?;
            let mut unknown: Vec<MemberId> = Vec::new();
            for event in &call.events {
                let member = event.member();
                let conn = sockets
                    .members()
                    .and_then(|members| members.conn_of(&call.gateway, member));
                match (event, conn) {
                    (MemberEvent::Joined { address, .. }, None) => {
                        room.member_joined(store, sockets, &call.gateway, member, address, now)?
                    }
                    // Joined twice: the member is the room's already.
                    (MemberEvent::Joined { .. }, Some(_)) => {}
                    (MemberEvent::Data { binary, bytes, .. }, Some(conn)) => {
                        room.receive_data(store, sockets, conn, &[bytes], *binary, now)?
                    }
                    (MemberEvent::Left { .. }, Some(conn)) => {
                        room.conn_gone(store, sockets, conn, None, now)?
                    }
                    (MemberEvent::Data { .. } | MemberEvent::Left { .. }, None) => {
                        if !unknown.contains(&member) {
                            unknown.push(member);
                        }
                    }
                }
            }
            Ok(RoomAnswer { unknown })
        })
    }

    /// A gateway's member joins: a connection like a socket's, its session stored with the
    /// event's commit.
    fn member_joined(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        gateway: &str,
        member: MemberId,
        address: &Option<String>,
        now: u64,
    ) -> Result<(), Failed> {
        let Some(members) = sockets.members() else {
            return Ok(());
        };
        self.last_conn += 1;
        let conn = self.last_conn;
        members.insert(gateway, member, conn);
        self.counts.connects += 1;
        let peer = Peer {
            room: self.logs.room().unwrap_or_default().to_owned(),
            address: address.clone(),
            sockjs: false,
        };
        let effects = self.broker.open(conn, peer, now);
        let mut outbox = Outbox::default();
        outbox.changed.insert(conn);
        self.finish_event(store, sockets, Some(conn), effects, outbox, now)
    }

    /// The calls due to gateways: each gateway with something waiting and no call in flight
    /// (it is then, until [`gateway_answered`](Self::gateway_answered)).
    pub fn take_gateway_calls(&mut self, now: u64) -> Vec<(String, ToGateway)> {
        let room = self.logs.room().unwrap_or_default().to_owned();
        self.members.take_calls(&room, now)
    }

    /// A call to a gateway was answered, or failed. A failed call forgets every member of
    /// that gateway (the broker closes them: presence says they left, queue messages they
    /// held are requeued) and drops its outbox; the rest of the room goes on. Members the
    /// gateway no longer holds are forgotten as if they had left. An answer to a call this
    /// engine did not make (one in flight when the object crashed) is ignored.
    pub fn gateway_answered(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        gateway: &str,
        answer: Result<GatewayAnswer, String>,
        now: u64,
    ) -> Result<(), Failed> {
        if !self.members.answered(gateway) {
            return Ok(());
        }
        self.with_sessions(sockets, now, |room, sockets| {
            room.rebuild_if_needed(store, sockets, now)?;
            match answer {
                Ok(answer) => {
                    for member in answer.gone {
                        let conn = sockets
                            .members()
                            .and_then(|members| members.conn_of(gateway, member));
                        if let Some(conn) = conn {
                            room.conn_gone(store, sockets, conn, None, now)?;
                        }
                    }
                    Ok(())
                }
                Err(_) => {
                    if let Some(members) = sockets.members() {
                        members.calls_failed += 1;
                    }
                    let mut outbox = Outbox::default();
                    room.forget_gateway(store, sockets, gateway, &mut outbox, now)?;
                    room.finish_event(store, sockets, None, Vec::new(), outbox, now)
                }
            }
        })
    }

    /// Where a socket opening to this room goes (see [`Placement`]): here, or the shard
    /// gateway with the fewest of the room's members once the room holds
    /// `scaling.members_per_object` direct sockets.
    /// A socket sent to a gateway counts there at once, before it joins, until its CONNECT
    /// would have timed out; no more shards open than `max_connections` needs.
    pub fn placement(&mut self, now: u64) -> Placement {
        let direct = self
            .broker
            .connection_count()
            .saturating_sub(self.members.len());
        let scaling = &self.settings.scaling;
        let since = self.placed_since(now);
        let max_shards = placement::max_shards(
            self.settings.broker.max_connections,
            scaling.members_per_gateway,
        );
        let placement = placement::place(
            self.logs.room().unwrap_or_default(),
            direct,
            scaling.members_per_object,
            scaling.members_per_gateway,
            max_shards,
            &self.members.expected(since),
        );
        if let Placement::Gateway(gateway) = &placement {
            self.members.placed(gateway, now);
            self.members.lending().asked(gateway);
        }
        placement
    }

    /// From when a socket sent to a gateway and not joined yet still counts there: until its
    /// CONNECT could no longer arrive.
    fn placed_since(&self, now: u64) -> u64 {
        now.saturating_sub(self.settings.broker.connect_timeout_ms + PLACED_MARGIN_MS)
    }

    /// Lends the router the next sockets for `gateway`, which [`placement`](Self::placement)
    /// just named (see [`crate::room::members::lease`]): none while the last lease is out,
    /// otherwise as many as asked since it ([`Lending`](crate::room::members::Lending)), within
    /// the gateway's share (`scaling.members_per_gateway`), each counted as placed there now.
    /// Returns how many.
    pub fn lease(&mut self, gateway: &str, now: u64) -> u32 {
        let wanted = self.members.lending().lend(gateway, now);
        // Most asks of a burst, while a lease is out: no need to count the gateway's members
        // again (placement just did).
        if wanted == 0 {
            return 0;
        }
        let since = self.placed_since(now);
        let expected = self
            .members
            .expected(since)
            .get(gateway)
            .copied()
            .unwrap_or(0);
        let share = self.settings.scaling.members_per_gateway.max(1) as usize;
        let lent = share.saturating_sub(expected).min(wanted as usize);
        for _ in 0..lent {
            self.members.placed(gateway, now);
        }
        lent as u32
    }

    /// Calls to gateways not answered yet (the platform keeps the object in memory while one
    /// is under way).
    pub fn gateway_calls_in_flight(&self) -> usize {
        self.members.in_flight()
    }

    /// The room's own name (the Durable Object's), for its members' sessions (a token's
    /// `rooms` claim) and its calls to gateways: known from any socket or request that
    /// reached it; a call from a gateway that is not the room's shard needs it told first.
    pub fn name_is(&mut self, room: &str) {
        self.logs.room_is(room);
        self.webhooks.note_room(room);
    }

    /// The room's members by gateway, and the calls to gateways, for `/stats`: shown once the
    /// room has members or has called a gateway since it woke (most rooms never do).
    pub(super) fn member_stats(&self) -> serde_json::Value {
        if self.members.is_empty() && self.members.calls_sent == 0 {
            return serde_json::Value::Null;
        }
        serde_json::json!({
            "members": self.members.counts(),
            "gateway_calls": {
                "sent": self.members.calls_sent,
                "failed": self.members.calls_failed,
            },
        })
    }

    /// Calls to gateways unanswered past [`CALL_TIMEOUT_MS`](crate::room::members::CALL_TIMEOUT_MS)
    /// count as failed (an answer lost would hold every later call to that gateway): their
    /// gateways' members are forgotten as for any failed call.
    pub(super) fn fail_overdue_calls(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        outbox: &mut Outbox,
        now: u64,
    ) -> Result<(), StorageError> {
        let Some(members) = sockets.members() else {
            return Ok(());
        };
        for gateway in members.overdue(now) {
            if let Some(members) = sockets.members() {
                members.answered(&gateway);
                members.calls_failed += 1;
            }
            self.forget_gateway(store, sockets, &gateway, outbox, now)?;
        }
        Ok(())
    }

    /// Forgets a gateway's members: the broker closes each, as if its socket had gone.
    pub(super) fn forget_gateway(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        gateway: &str,
        outbox: &mut Outbox,
        now: u64,
    ) -> Result<(), StorageError> {
        let Some(members) = sockets.members() else {
            return Ok(());
        };
        let conns = members.forget_gateway(gateway);
        let mut effects = Vec::new();
        for conn in conns {
            self.counts.closes += 1;
            effects.extend(self.broker.close(conn, now));
            outbox.closed.push((conn, true));
        }
        self.carry_out(effects, store, sockets, outbox)
    }

    /// Before an event's commit: gateways whose outbox went past its bound are forgotten
    /// (which may send more, to other gateways), then the members' sessions the event changed
    /// are written with it, and the rows of members gone are deleted.
    pub(super) fn settle_members(
        &mut self,
        store: &mut impl Storage,
        sockets: &mut impl Sockets,
        outbox: &mut Outbox,
        now: u64,
    ) -> Result<(), StorageError> {
        while let Some(gateway) = sockets.members().and_then(|members| members.overfull()) {
            self.forget_gateway(store, sockets, &gateway, outbox, now)?;
        }
        let Some(members) = sockets.members() else {
            return Ok(());
        };
        for conn in members.take_gone() {
            self.batch.push(Write::MemberGone { conn });
        }
        let closed = outbox.closed.iter().map(|&(conn, _)| conn);
        for conn in outbox.changed.iter().copied().chain(closed) {
            let Some((gateway, member)) = members.member_of(conn) else {
                continue;
            };
            // A member the broker let go whose close waits for the commit (a DISCONNECT's
            // RECEIPT first) leaves storage with this commit all the same.
            let Some(session) = self.broker.session(conn) else {
                self.batch.push(Write::MemberGone { conn });
                continue;
            };
            let write = Write::Member(StoredMember {
                conn,
                gateway: gateway.to_owned(),
                member,
                session: session.to_json(),
            });
            // What a RECEIPT may promise (a subscription, an acknowledgement) is committed
            // with the event; a publish rate's change alone waits for company, as a message's
            // history row does, replacing the row still waiting.
            if members.promises_changed(conn, session) {
                self.batch.push(write);
            } else {
                self.deferred
                    .retain(|w| !matches!(w, Write::Member(m) if m.conn == conn));
                self.deferred.push(write);
            }
        }
        Ok(())
    }
}

/// The member table as storage holds it, for a wake; a rebuild replaces the live table (kept
/// with the sockets during the event) instead, keeping its outboxes.
pub(super) fn restore_members(sockets: &mut impl Sockets, rows: &[StoredMember]) -> Members {
    match sockets.members() {
        Some(live) => {
            live.reload(rows);
            Members::default()
        }
        None => Members::from_rows(rows),
    }
}
