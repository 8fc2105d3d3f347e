//! How many `refusal` events a room raises: refusals cost the refused client nothing, so a
//! flood of them (one address opening socket after socket past `max_connections_per_address`,
//! a client retrying a bad passcode) must neither fill the outbox, pushing the events that
//! matter out of it, nor make the receiver's alerts a flood of their own.

/// At most this many `refusal` events per [`WINDOW_MS`] per room: enough to see an incident
/// begin and who it hits; past it the receiver learns how many more there were.
pub const MAX_PER_WINDOW: u32 = 10;

/// The window the cap counts over, in ms (fixed windows, from the first refusal of each).
pub const WINDOW_MS: u64 = 60_000;

/// The cap's window, in memory only: a room evicted (after 10 s without events, so never
/// during a flood) starts a new window when it wakes, and forgets the refusals it left
/// untold.
#[derive(Debug, Default)]
pub struct RefusalWindow {
    started_ms: u64,
    told: u32,
    /// Refusals not told since the last one told: the next one told says how many
    /// (`suppressed`).
    suppressed: u64,
}

impl RefusalWindow {
    /// Whether a refusal at `now` is told; `Some(n)`: yes, and `n` were suppressed before it.
    pub fn admit(&mut self, now: u64) -> Option<u64> {
        if self.told == 0 || now >= self.started_ms.saturating_add(WINDOW_MS) {
            self.started_ms = now;
            self.told = 0;
        }
        if self.told >= MAX_PER_WINDOW {
            self.suppressed += 1;
            return None;
        }
        self.told += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_cap_refusals_are_counted_and_told_with_the_next_window() {
        let mut window = RefusalWindow::default();
        let told: Vec<Option<u64>> = (0..15).map(|_| window.admit(1_000)).collect();
        assert_eq!(told.iter().flatten().count(), MAX_PER_WINDOW as usize);
        assert_eq!(told[10..], [None; 5]);
        assert_eq!(window.admit(1_000 + WINDOW_MS), Some(5));
        assert_eq!(window.admit(1_000 + WINDOW_MS), Some(0));
    }
}
