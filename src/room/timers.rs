//! Every deadline of the room in one table: one slot per kind per connection, ordered by time,
//! so the next alarm is read in O(log n) and a connection's deadlines change in O(log n); and one
//! slot per room-wide deadline ([`RoomTimer`]). The model is quinn-proto's timer table and
//! `poll_timeout`: the platform's alarm is set to the earliest slot.
//!
//! A connection's deadlines are fields of its persisted session
//! ([`Broker::deadlines`](super::Broker::deadlines)); the room-wide ones follow from what the
//! room holds (deferred writes, id ceilings, open requests, SockJS sessions). The table is an
//! index of both, rebuilt on wake, so no deadline restarts when the room is evicted.

use std::collections::{BTreeSet, HashMap};

use super::broker::Deadlines;
use super::session::ConnId;

/// What happens when a deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// The socket never sent CONNECT: close it.
    Connect,
    /// The room owes the client a heart-beat: send it.
    HeartBeat,
    /// The client may have gone silent: check its pings, close it if it has.
    Liveness,
    /// The connection's token expires: close it.
    TokenExpiry,
}

impl TimerKind {
    /// Whether the deadline must be met on time (the others may be checked lazily).
    fn on_time(self) -> bool {
        self != Self::Liveness
    }
}

/// A deadline of the room as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoomTimer {
    /// Look for clients gone silent (at most every `liveness_check_ms`).
    LivenessSweep,
    /// Commit the writes deferred for group commit.
    DeferredWrites,
    /// Bring a stored id ceiling back down to the ids given, after a quiet spell.
    IdCeilings,
    /// End the event streams whose token expires, and the waits that ran out.
    OpenRequests,
    /// End the SockJS sessions whose client stopped coming.
    SockJsSessions,
    /// Hand the next webhook batch to the alarm's POST (a batch is full or waited long
    /// enough, a retry's backoff ran out, or an answer is overdue).
    WebhookDelivery,
    /// Send `room.vacated`: the occupied room has been empty for its grace.
    VacatedGrace,
    /// A call to a gateway went unanswered too long: it counts as failed.
    GatewayCalls,
}

impl RoomTimer {
    /// Slots in the table: the last kind's index, plus one.
    const COUNT: usize = Self::GatewayCalls as usize + 1;
}

#[derive(Debug, Default)]
pub struct Timers {
    on_time: BTreeSet<(u64, ConnId, TimerKind)>,
    liveness: BTreeSet<(u64, ConnId, TimerKind)>,
    by_conn: HashMap<ConnId, Deadlines>,
    /// One slot per [`RoomTimer`], by its index (a map here would cost the Worker kilobytes).
    room: [Option<u64>; RoomTimer::COUNT],
}

impl Timers {
    /// Sets a connection's deadlines, replacing the ones it had.
    pub fn set(&mut self, conn: ConnId, deadlines: Deadlines) {
        self.remove(conn);
        if deadlines == Deadlines::default() {
            return;
        }
        for (kind, at) in slots(&deadlines) {
            if let Some(at) = at {
                self.set_of(kind).insert((at, conn, kind));
            }
        }
        self.by_conn.insert(conn, deadlines);
    }

    /// Forgets a connection's deadlines.
    pub fn remove(&mut self, conn: ConnId) {
        let Some(old) = self.by_conn.remove(&conn) else {
            return;
        };
        for (kind, at) in slots(&old) {
            if let Some(at) = at {
                self.set_of(kind).remove(&(at, conn, kind));
            }
        }
    }

    /// Sets a room-wide deadline (`None`: none is due).
    pub fn set_room(&mut self, timer: RoomTimer, at: Option<u64>) {
        self.room[timer as usize] = at;
    }

    /// Whether a room-wide deadline has passed at `now`.
    pub fn room_due(&self, timer: RoomTimer, now: u64) -> bool {
        self.room[timer as usize].is_some_and(|at| at <= now)
    }

    /// The earliest deadline in the table: when the platform's alarm must fire. (Liveness
    /// deadlines count through [`RoomTimer::LivenessSweep`], which batches them.)
    pub fn next(&self) -> Option<u64> {
        self.next_on_time()
            .into_iter()
            .chain(self.room.iter().flatten().copied())
            .min()
    }

    /// The earliest deadline that must be met on time.
    pub fn next_on_time(&self) -> Option<u64> {
        self.on_time.first().map(|&(at, _, _)| at)
    }

    /// The earliest liveness deadline.
    pub fn next_liveness(&self) -> Option<u64> {
        self.liveness.first().map(|&(at, _, _)| at)
    }

    /// The on-time deadlines that have passed at `now`, earliest first.
    pub fn due_on_time(&self, now: u64) -> Vec<(ConnId, TimerKind)> {
        due(&self.on_time, now)
    }

    /// The liveness deadlines that have passed at `now`, earliest first.
    pub fn due_liveness(&self, now: u64) -> Vec<(ConnId, TimerKind)> {
        due(&self.liveness, now)
    }

    fn set_of(&mut self, kind: TimerKind) -> &mut BTreeSet<(u64, ConnId, TimerKind)> {
        if kind.on_time() {
            &mut self.on_time
        } else {
            &mut self.liveness
        }
    }
}

fn slots(deadlines: &Deadlines) -> [(TimerKind, Option<u64>); 4] {
    [
        (TimerKind::Connect, deadlines.connect),
        (TimerKind::HeartBeat, deadlines.heart_beat),
        (TimerKind::Liveness, deadlines.liveness),
        (TimerKind::TokenExpiry, deadlines.token),
    ]
}

fn due(set: &BTreeSet<(u64, ConnId, TimerKind)>, now: u64) -> Vec<(ConnId, TimerKind)> {
    set.iter()
        .take_while(|&&(at, _, _)| at <= now)
        .map(|&(_, conn, kind)| (conn, kind))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_deadlines_follow_sets_and_removals() {
        let mut timers = Timers::default();
        timers.set(
            1,
            Deadlines {
                connect: Some(30),
                ..Deadlines::default()
            },
        );
        timers.set(
            2,
            Deadlines {
                heart_beat: Some(20),
                liveness: Some(10),
                ..Deadlines::default()
            },
        );
        assert_eq!(timers.next_on_time(), Some(20));
        assert_eq!(timers.next_liveness(), Some(10));
        assert_eq!(timers.due_on_time(25), vec![(2, TimerKind::HeartBeat)]);
        timers.set(
            2,
            Deadlines {
                heart_beat: Some(40),
                ..Deadlines::default()
            },
        );
        assert_eq!(timers.next_on_time(), Some(30));
        assert_eq!(timers.next_liveness(), None);
        timers.set_room(RoomTimer::DeferredWrites, Some(25));
        assert_eq!(timers.next(), Some(25), "a room-wide slot counts");
        assert!(timers.room_due(RoomTimer::DeferredWrites, 25));
        assert!(!timers.room_due(RoomTimer::IdCeilings, 25));
        timers.set_room(RoomTimer::DeferredWrites, None);
        assert_eq!(timers.next(), Some(30));
        timers.remove(1);
        timers.remove(1);
        assert_eq!(
            timers.due_on_time(100),
            vec![(2, TimerKind::HeartBeat)],
            "connection 1's deadline is gone"
        );
    }
}
