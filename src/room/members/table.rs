//! The room's member table: which connection is which gateway's member, both ways, with each
//! gateway's outbox and the calls made to gateways (for `/stats`).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};

use super::lease::Lending;
use super::outbox::Outbox;
use super::ConnId;
use crate::relay::{MemberId, ToGateway};
use crate::room::rate::Throttle;
use crate::room::session::Session;
use crate::room::storage::StoredMember;

/// How the room closes the members of a gateway it forgot: the gateway tells their clients to
/// reconnect.
pub const LOST_CODE: u16 = 1011;
pub const LOST_REASON: &str = "the room lost this connection; reconnect";

/// One gateway as the room knows it.
#[derive(Debug, Default)]
pub struct Gateway {
    pub members: HashMap<MemberId, ConnId>,
    pub outbox: Outbox,
}

#[derive(Debug, Default)]
pub struct Members {
    gateways: BTreeMap<String, Gateway>,
    by_conn: HashMap<ConnId, (String, MemberId)>,
    /// Members that left the table during the event in progress: their rows are deleted in
    /// its commit.
    gone: Vec<ConnId>,
    /// Members that left the table since the last calls were taken: what is still sent to
    /// them (nothing should be) is dropped, never taken for a socket's.
    departed: HashSet<ConnId>,
    /// Sockets the room sent to each gateway that have not joined yet (in memory only: a
    /// burst of sockets opening at once would otherwise all be placed on the same gateway,
    /// since a socket joins only with its first frame), each with when it was sent, oldest
    /// first: a socket that never joins (its client went, or never connected) stops counting
    /// once its CONNECT would have timed out.
    placed: BTreeMap<String, VecDeque<u64>>,
    /// The leases the room lent routers for each gateway ([`Lending`]); in memory only, as
    /// placements are.
    lending: Lending,
    /// A digest of what each member's stored row promises (its session but for its publish
    /// rate and when it was last heard), to tell a change that must be committed with its event
    /// from one that may wait for company.
    promised: HashMap<ConnId, u64>,
    /// Calls made to gateways, and how many of them failed, since the engine was built.
    pub calls_sent: u64,
    pub calls_failed: u64,
}

impl Members {
    /// The table as storage holds it (a wake).
    pub fn from_rows(rows: &[StoredMember]) -> Self {
        let mut members = Self::default();
        members.reload(rows);
        members
    }

    /// Replaces the table with what storage holds (a rebuild after a failed commit), keeping
    /// the outboxes and the calls in flight.
    pub fn reload(&mut self, rows: &[StoredMember]) {
        self.by_conn.clear();
        self.gone.clear();
        self.promised.clear();
        for gateway in self.gateways.values_mut() {
            gateway.members.clear();
        }
        for row in rows {
            self.add(&row.gateway, row.member, row.conn);
        }
    }

    /// A gateway's member joins as connection `conn`: one socket placed there has arrived.
    pub fn insert(&mut self, gateway: &str, member: MemberId, conn: ConnId) {
        if let Some(placed) = self.placed.get_mut(gateway) {
            placed.pop_front();
        }
        self.add(gateway, member, conn);
    }

    /// Puts a member in the table (a join, or a stored row).
    fn add(&mut self, gateway: &str, member: MemberId, conn: ConnId) {
        self.gateways
            .entry(gateway.to_owned())
            .or_default()
            .members
            .insert(member, conn);
        self.by_conn.insert(conn, (gateway.to_owned(), member));
    }

    /// The connection of a gateway's member, when the room holds it.
    pub fn conn_of(&self, gateway: &str, member: MemberId) -> Option<ConnId> {
        self.gateways.get(gateway)?.members.get(&member).copied()
    }

    /// Which gateway's member a connection is, if it is one.
    pub fn member_of(&self, conn: ConnId) -> Option<(&str, MemberId)> {
        self.by_conn
            .get(&conn)
            .map(|(gateway, member)| (gateway.as_str(), *member))
    }

    /// No members, and none left during this turn.
    pub fn is_empty(&self) -> bool {
        self.by_conn.is_empty() && self.departed.is_empty()
    }

    /// The connection was a member that left the table this turn.
    pub fn departed(&self, conn: ConnId) -> bool {
        self.departed.contains(&conn)
    }

    /// How many members the room has.
    pub fn len(&self) -> usize {
        self.by_conn.len()
    }

    /// The member's gateway and outbox, if `conn` is a member.
    pub fn outbox_of(&mut self, conn: ConnId) -> Option<(MemberId, &mut Outbox)> {
        let (gateway, member) = self.by_conn.get(&conn)?;
        let outbox = &mut self.gateways.get_mut(gateway)?.outbox;
        Some((*member, outbox))
    }

    pub fn outbox_named(&mut self, gateway: &str) -> Option<&mut Outbox> {
        self.gateways.get_mut(gateway).map(|g| &mut g.outbox)
    }

    /// The member leaves the table (its connection is gone); its row goes with the event's
    /// commit.
    pub fn remove(&mut self, conn: ConnId) -> Option<(String, MemberId)> {
        let (gateway, member) = self.by_conn.remove(&conn)?;
        self.promised.remove(&conn);
        if let Some(entry) = self.gateways.get_mut(&gateway) {
            entry.members.remove(&member);
        }
        self.gone.push(conn);
        self.departed.insert(conn);
        Some((gateway, member))
    }

    /// Whether the member's session changed in what its stored row promises (a subscription,
    /// an unacknowledged message, a transaction...) since it was last written so: then the
    /// row goes with the event's own commit; otherwise (a publish rate, the time it was last
    /// heard) it may wait for the next. Remembers the new digest.
    pub fn promises_changed(&mut self, conn: ConnId, session: &Session) -> bool {
        let mut promised = session.clone();
        promised.throttle = Throttle::default();
        promised.heard_ms = 0;
        let mut hasher = DefaultHasher::new();
        promised.to_json().hash(&mut hasher);
        let digest = hasher.finish();
        self.promised.insert(conn, digest) != Some(digest)
    }

    /// Members that left the table since the last take.
    pub fn take_gone(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.gone)
    }

    /// A gateway whose outbox went past its bound, if any.
    pub fn overfull(&self) -> Option<String> {
        self.gateways
            .iter()
            .find(|(_, gateway)| gateway.outbox.overfull)
            .map(|(name, _)| name.clone())
    }

    /// Forgets a gateway (a failed call, an overfull outbox): its outbox is dropped and its
    /// members leave the table; their connections, for the broker to close. The gateway's
    /// next call closes their sockets (the room no longer serves them, and a member that
    /// only listens would never hear it otherwise); if that call fails too, there is nothing
    /// left to forget.
    pub fn forget_gateway(&mut self, gateway: &str) -> Vec<ConnId> {
        let Some(entry) = self.gateways.remove(gateway) else {
            return Vec::new();
        };
        let mut forgotten: Vec<(ConnId, MemberId)> = entry
            .members
            .into_iter()
            .map(|(member, conn)| (conn, member))
            .collect();
        forgotten.sort_unstable();
        let mut closing = Gateway::default();
        // A call still in flight to it keeps the next from going before its answer.
        closing.outbox.in_flight = entry.outbox.in_flight;
        closing.outbox.sent_ms = entry.outbox.sent_ms;
        for &(conn, member) in &forgotten {
            self.by_conn.remove(&conn);
            self.promised.remove(&conn);
            self.gone.push(conn);
            self.departed.insert(conn);
            closing.outbox.close(member, LOST_CODE, LOST_REASON);
        }
        if !closing.outbox.is_empty() || closing.outbox.in_flight {
            self.gateways.insert(gateway.to_owned(), closing);
        }
        forgotten.into_iter().map(|(conn, _)| conn).collect()
    }

    /// Asks each gateway which of its members it still holds: a gateway that crashed or was
    /// deployed lost its sockets without telling the room. One probe per gateway, naming all
    /// its members, replacing one still waiting; the answer's `gone` are forgotten.
    pub fn probe(&mut self) {
        for gateway in self.gateways.values_mut() {
            if !gateway.members.is_empty() {
                let mut members: Vec<MemberId> = gateway.members.keys().copied().collect();
                members.sort_unstable();
                gateway.outbox.probe(members);
            }
        }
    }

    /// A call to a gateway was answered (or failed): the next may go. `false` when no call
    /// to it was in flight: the answer is to a call of an engine before a crash, and says
    /// nothing about this one's.
    pub fn answered(&mut self, gateway: &str) -> bool {
        match self.gateways.get_mut(gateway) {
            Some(entry) if entry.outbox.in_flight => {
                entry.outbox.in_flight = false;
                true
            }
            _ => false,
        }
    }

    /// The calls due: each gateway with something waiting and no call in flight. A gateway
    /// with neither members nor a call in flight nor anything waiting is let go.
    pub fn take_calls(&mut self, room: &str, now: u64) -> Vec<(String, ToGateway)> {
        let mut calls = Vec::new();
        for (name, gateway) in &mut self.gateways {
            if let Some(call) = gateway.outbox.take_call(room, now) {
                calls.push((name.clone(), call));
            }
        }
        self.calls_sent += calls.len() as u64;
        self.departed.clear();
        self.gateways.retain(|_, gateway| {
            !gateway.members.is_empty() || gateway.outbox.in_flight || !gateway.outbox.is_empty()
        });
        calls
    }

    /// Calls in flight.
    pub fn in_flight(&self) -> usize {
        self.gateways
            .values()
            .filter(|gateway| gateway.outbox.in_flight)
            .count()
    }

    /// When the earliest call in flight counts as failed, if one is in flight.
    pub fn call_deadline(&self) -> Option<u64> {
        let deadlines = self
            .gateways
            .values()
            .filter_map(|g| g.outbox.call_deadline());
        deadlines.min()
    }

    /// The gateways whose call in flight went unanswered past its deadline at `now`.
    pub fn overdue(&self, now: u64) -> Vec<String> {
        self.gateways
            .iter()
            .filter(|(_, g)| g.outbox.call_deadline().is_some_and(|at| at <= now))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// A socket was sent to `gateway` at `now` and will join from there.
    pub fn placed(&mut self, gateway: &str, now: u64) {
        self.placed
            .entry(gateway.to_owned())
            .or_default()
            .push_back(now);
    }

    /// The leases lent for the room's gateways.
    pub fn lending(&mut self) -> &mut Lending {
        &mut self.lending
    }

    /// Members by gateway, with the sockets sent there since `since` that have not joined
    /// yet: what placement balances. Placements before `since` are let go.
    pub fn expected(&mut self, since: u64) -> BTreeMap<String, usize> {
        for placed in self.placed.values_mut() {
            while placed.front().is_some_and(|&at| at < since) {
                placed.pop_front();
            }
        }
        self.placed.retain(|_, placed| !placed.is_empty());
        let mut counts = self.counts();
        for (gateway, placed) in &self.placed {
            *counts.entry(gateway.clone()).or_default() += placed.len();
        }
        counts.retain(|_, count| *count > 0);
        counts
    }

    /// Members by gateway.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        self.gateways
            .iter()
            .filter(|(_, gateway)| !gateway.members.is_empty())
            .map(|(name, gateway)| (name.clone(), gateway.members.len()))
            .collect()
    }
}
