//! Ids that are never given twice, whatever moment the process dies.
//!
//! Message ids and connection ids are given out below a *ceiling* that storage holds: before
//! an event's sends can be seen outside the object, every id they carry is at most a stored
//! ceiling. The event that gives out an id above it commits a new ceiling, [`ID_HEADROOM`]
//! ahead, in the same synchronous turn as its sends (after them, so no fan-out waits), and a
//! busy room raises it in commits it makes anyway, once less than half the headroom is left.
//! A restarted room (a deploy, a crash) continues from the ceiling, so ids it gave out
//! before it died, stored or not, are never given again; at most the headroom is skipped.
//!
//! When the room goes quiet (no raise for [`FLUSH_DEADLINE_MS`](super::FLUSH_DEADLINE_MS))
//! the ceiling comes back down to the last id given, so a room evicted after a quiet spell
//! (always, as the platform evicts after 10 s without events) wakes with ids continuing
//! exactly where they stopped.

use super::FLUSH_DEADLINE_MS;

/// How far ahead of the ids given out a raised ceiling reaches.
pub const ID_HEADROOM: u64 = 1024;

/// One kind of id: the stored ceiling, and when it was last raised.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Ceiling {
    /// No id above this was given out, by storage's account.
    pub stored: u64,
    /// When the ceiling was raised above the ids given, if it is.
    raised_at: Option<u64>,
}

impl Ceiling {
    pub fn new(stored: u64) -> Self {
        Self {
            stored,
            raised_at: None,
        }
    }

    /// An id above the stored ceiling was given: the event must commit a new one.
    pub fn crossed(&self, given: u64) -> bool {
        given > self.stored
    }

    /// When the ceiling comes back down if nothing raises it meanwhile.
    pub fn lowers_at(&self) -> Option<u64> {
        self.raised_at.map(|at| at + FLUSH_DEADLINE_MS)
    }

    /// Raised, and nothing raised it again for [`FLUSH_DEADLINE_MS`]: due to come down.
    fn is_quiet(&self, now: u64) -> bool {
        self.lowers_at().is_some_and(|at| now >= at)
    }

    /// Whether a commit must be made now for this ceiling: crossed by `given`, or quiet.
    pub fn due(&self, given: u64, now: u64) -> bool {
        self.crossed(given) || self.is_quiet(now)
    }

    /// The ceiling a commit made at `now` should store for `given`, if it should change
    /// (see [`planned`](Self::planned)). A quiet ceiling already at `given` is where it comes
    /// down to: it settles, and asks for no more commits.
    pub fn plan(&mut self, given: u64, now: u64) -> Option<u64> {
        let quiet = self.is_quiet(now);
        let planned = self.planned(given, quiet);
        if quiet && planned.is_none() {
            self.raised_at = None;
        }
        planned
    }

    /// The ceiling a commit made now should store for `given`, if it should change: raised
    /// when crossed, or in a commit made anyway while raised with less than half the headroom
    /// left; lowered to `given` once `quiet`.
    fn planned(&self, given: u64, quiet: bool) -> Option<u64> {
        let wanted = if self.crossed(given) {
            given + ID_HEADROOM
        } else if quiet {
            given
        } else if self.raised_at.is_some() && given + ID_HEADROOM / 2 > self.stored {
            given + ID_HEADROOM
        } else {
            self.stored
        };
        (wanted != self.stored).then_some(wanted)
    }

    /// A planned ceiling was committed at `now`.
    pub fn stored_as(&mut self, ceiling: u64, given: u64, now: u64) {
        self.stored = ceiling;
        self.raised_at = (ceiling > given).then_some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ceiling_is_raised_ahead_once_crossed_or_nearly_and_lowered_when_quiet() {
        let mut ceiling = Ceiling::new(10);
        assert!(!ceiling.crossed(10));
        assert!(ceiling.crossed(11));
        assert_eq!(ceiling.planned(11, false), Some(11 + ID_HEADROOM));
        ceiling.stored_as(11 + ID_HEADROOM, 11, 5);
        assert_eq!(ceiling.lowers_at(), Some(5 + FLUSH_DEADLINE_MS));
        assert_eq!(ceiling.planned(12, false), None, "plenty of headroom left");
        let nearly = 11 + ID_HEADROOM / 2 + 1;
        assert_eq!(ceiling.planned(nearly, false), Some(nearly + ID_HEADROOM));
        assert_eq!(
            ceiling.planned(20, true),
            Some(20),
            "quiet: down to the last id"
        );
        ceiling.stored_as(20, 20, 9);
        assert_eq!(ceiling.lowers_at(), None);
        assert_eq!(ceiling.planned(20, true), None);
        assert_eq!(
            ceiling.planned(20, false),
            None,
            "a lowered ceiling waits to be crossed before it is raised"
        );
        assert_eq!(
            ceiling.planned(21, true),
            Some(21 + ID_HEADROOM),
            "a crossed ceiling is raised even when quiet"
        );
    }
}
