//! Leases: a room that sends a socket to one of its shard gateways lends the router the next
//! sockets for that gateway too, counted as placed there at once, so that a storm of connects
//! to a full room costs the room one call per lease rather than one per socket (every socket
//! past `scaling.members_per_object` was two hops: router to room, then router to gateway).
//!
//! One lease per gateway is out at a time ([`Lending`]): while it is, the room places every
//! other socket that asks alone. The next is as large as the asks the last one left uncovered,
//! from [`LEASED_SOCKETS`] to [`MAX_LEASED_SOCKETS`], so a steady storm soon comes one hop per
//! socket. A lease is short ([`LEASE_MS`]) and in memory only, at both ends. The room lets its
//! placements go once a CONNECT could no longer arrive (as for any socket it placed), so a
//! lease the router never used costs the gateway's share nothing for long; a socket that
//! comes by an old lease after the room was evicted is a member of the gateway like any other.

use std::collections::HashMap;

/// The fewest sockets one answer lends the router, within the gateway's share.
pub const LEASED_SOCKETS: u32 = 16;

/// The most sockets one answer lends the router.
pub const MAX_LEASED_SOCKETS: u32 = 256;

/// How long the router may use a lease (ms).
pub const LEASE_MS: u64 = 1_000;

/// The most rooms the router keeps a lease for at once (a lease is a few dozen bytes).
pub const MAX_LEASES: usize = 1_024;

/// The router's leases, by room and by kind of socket (plain or SockJS).
#[derive(Debug, Default)]
pub struct Leases {
    by_room: HashMap<(String, bool), Lease>,
}

#[derive(Debug)]
struct Lease {
    gateway: String,
    left: u32,
    until: u64,
}

impl Leases {
    /// The room lent `count` sockets on the gateway object named `gateway`, replacing its
    /// lease before. A room with none is kept unless [`MAX_LEASES`] rooms hold an unexpired
    /// lease already.
    pub fn lend(&mut self, room: &str, sockjs: bool, gateway: &str, count: u32, now: u64) {
        if count == 0 {
            return;
        }
        let key = (room.to_owned(), sockjs);
        // A room's new lease replaces its old one whatever the bound: the room counts it.
        if self.by_room.len() >= MAX_LEASES && !self.by_room.contains_key(&key) {
            self.by_room
                .retain(|_, lease| lease.until > now && lease.left > 0);
            if self.by_room.len() >= MAX_LEASES {
                return;
            }
        }
        let lease = Lease {
            gateway: gateway.to_owned(),
            left: count,
            until: now + LEASE_MS,
        };
        self.by_room.insert(key, lease);
    }

    /// The gateway a socket to `room` goes to without asking the room, if a lease holds one
    /// more.
    pub fn take(&mut self, room: &str, sockjs: bool, now: u64) -> Option<String> {
        // Asked for every socket the router sends a room: no key is made while none is lent.
        if self.by_room.is_empty() {
            return None;
        }
        let key = (room.to_owned(), sockjs);
        let lease = self.by_room.get_mut(&key)?;
        if lease.until <= now || lease.left == 0 {
            self.by_room.remove(&key);
            return None;
        }
        lease.left -= 1;
        Some(lease.gateway.clone())
    }
}

/// What a room lent routers, by gateway: when it last lent one (that lease is out until
/// [`LEASE_MS`] after) and how many sockets were placed there by asking the room since, which
/// sizes the next. While a lease is out every other ask is placed alone: a router asks again
/// only once its lease is used up, and lending to each ask of a burst would count a lease's
/// worth of sockets on their way per ask, sockets that never come.
#[derive(Debug, Default)]
pub struct Lending {
    by_gateway: HashMap<String, Lent>,
}

#[derive(Debug, Default)]
struct Lent {
    at: Option<u64>,
    asked: u32,
}

impl Lending {
    /// A socket asked the room and was placed on `gateway`.
    pub fn asked(&mut self, gateway: &str) {
        let lent = self.by_gateway.entry(gateway.to_owned()).or_default();
        lent.asked = lent.asked.saturating_add(1);
    }

    /// How many sockets a lease for `gateway` may lend now, before the gateway's share: none
    /// while the last one is out; otherwise as many as asked since it, at least
    /// [`LEASED_SOCKETS`] and at most [`MAX_LEASED_SOCKETS`]. The lease is out from now.
    pub fn lend(&mut self, gateway: &str, now: u64) -> u32 {
        let lent = self.by_gateway.entry(gateway.to_owned()).or_default();
        if lent.at.is_some_and(|at| now < at.saturating_add(LEASE_MS)) {
            return 0;
        }
        let count = lent.asked.clamp(LEASED_SOCKETS, MAX_LEASED_SOCKETS);
        *lent = Lent {
            at: Some(now),
            asked: 0,
        };
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(k: u32) -> String {
        format!("shard:lobby:{k}")
    }

    #[test]
    fn a_lease_gives_as_many_sockets_as_it_lends_then_none() {
        let mut leases = Leases::default();
        leases.lend("lobby", false, &shard(0), 3, 1_000);
        for _ in 0..3 {
            assert_eq!(leases.take("lobby", false, 1_010), Some(shard(0)));
        }
        assert_eq!(
            leases.take("lobby", false, 1_020),
            None,
            "the room is asked again"
        );
    }

    #[test]
    fn a_lease_holds_for_its_time_only() {
        let mut leases = Leases::default();
        leases.lend("lobby", false, &shard(0), 3, 1_000);
        assert_eq!(
            leases.take("lobby", false, 1_000 + LEASE_MS - 1),
            Some(shard(0))
        );
        assert_eq!(leases.take("lobby", false, 1_000 + LEASE_MS), None);
    }

    #[test]
    fn a_lease_is_for_its_room_and_its_kind_of_socket() {
        let mut leases = Leases::default();
        leases.lend("lobby", true, &shard(1), 2, 1_000);
        assert_eq!(
            leases.take("lobby", false, 1_001),
            None,
            "a plain socket asks the room"
        );
        assert_eq!(leases.take("other", true, 1_001), None);
        assert_eq!(leases.take("lobby", true, 1_001), Some(shard(1)));
    }

    #[test]
    fn the_leases_kept_are_bounded_and_a_lease_of_none_is_not_kept() {
        let mut leases = Leases::default();
        leases.lend("lobby", false, &shard(0), 0, 1_000);
        assert_eq!(leases.take("lobby", false, 1_001), None);
        for n in 0..MAX_LEASES + 10 {
            leases.lend(&format!("room-{n}"), false, &shard(0), 1, 1_000);
        }
        assert_eq!(leases.by_room.len(), MAX_LEASES);
        assert_eq!(
            leases.take(&format!("room-{}", MAX_LEASES + 5), false, 1_001),
            None
        );
        leases.lend("room-3", false, &shard(1), 2, 1_001);
        assert_eq!(
            leases.take("room-3", false, 1_002),
            Some(shard(1)),
            "its own is replaced"
        );
        // Once they expire, new ones are kept again.
        leases.lend("late", false, &shard(0), 1, 1_000 + LEASE_MS);
        assert_eq!(leases.take("late", false, 1_001 + LEASE_MS), Some(shard(0)));
    }
}
