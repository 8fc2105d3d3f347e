//! The outbox: the room's webhook events, stored with the commit of the event that caused
//! them, and handed out in batches, oldest first, one batch at a time, until the receiver
//! acknowledges them (at-least-once, in order). A failed batch is retried with capped,
//! jittered exponential backoff; what the outbox holds is bounded, and past the bound the
//! oldest events are dropped and counted (the next batch says how many, in `dropped`).
//!
//! Memory mirrors the stored rows (at most `max_outbox_bytes`), so a batch is formed without a
//! read; the retry state is stored in counters (attempts, when, and the failed batch's last
//! event), so backoff holds across evictions and restarts and a retry carries the same events
//! under the same `webhook-id`. Only the batch in flight is memory's alone: if the object dies
//! with it, the rows are still stored and the batch goes again; an answer to any batch but the
//! one in flight (one handed out before a rebuild) is ignored, so two POSTs never overlap.

use std::collections::VecDeque;

use serde_json::json;

use super::event::{event_json, EventKind};
use super::settings::WebhookSettings;
use super::signature::sign;
use crate::room::storage::{Counter, Stored, WebhookRow, Write};

/// A batch handed out and not answered within this long is handed out again (the answer was
/// lost: the fetch hung, or the object restarted while it waited).
pub const ANSWER_TIMEOUT_MS: u64 = 60_000;

/// Bytes of a batch's body around its events (`{"room":…,"dropped":…,"events":[…]}`).
pub const BATCH_OVERHEAD: usize = 200;

/// One POST for the edge to make: where, with which headers, this body. Answer it with
/// [`RoomEngine::webhook_answered`](crate::room::RoomEngine::webhook_answered), giving it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The `webhook-id`: the room and the first and last event's `seq`.
    pub id: String,
    /// The last event's `seq`: the events up to it are delivered when the POST succeeds.
    pub through: u64,
    /// The drops it reports (its `dropped`): reported once it is delivered.
    pub dropped: u64,
}

#[derive(Debug, Default)]
pub struct Outbox {
    events: VecDeque<WebhookRow>,
    bytes: u64,
    last_seq: u64,
    /// Failed attempts at the oldest events' batch.
    attempts: u64,
    /// When the failed batch is tried again.
    retry_at: u64,
    /// The last event of the batch that failed (stored), so a retry carries the same events
    /// and the same `webhook-id`, across evictions too.
    retry_through: Option<u64>,
    /// Events dropped since the last delivered batch, and in all.
    unreported: u64,
    dropped: u64,
    /// The batch handed out: its last event, and when.
    in_flight: Option<(u64, u64)>,
}

impl Outbox {
    pub fn restore(stored: &Stored) -> Self {
        let events: VecDeque<WebhookRow> = stored.webhook_events.iter().cloned().collect();
        let newest = events.back().map_or(0, |row| row.seq);
        Self {
            bytes: events.iter().map(|row| row.json.len() as u64).sum(),
            events,
            last_seq: stored.counter(Counter::WebhookLastEvent).max(newest),
            attempts: stored.counter(Counter::WebhookAttempts),
            retry_at: stored.counter(Counter::WebhookRetryAt),
            retry_through: Some(stored.counter(Counter::WebhookRetryThrough)).filter(|&s| s > 0),
            unreported: stored.counter(Counter::WebhookUnreported),
            dropped: stored.counter(Counter::WebhookDropped),
            in_flight: None,
        }
    }

    /// Appends an event; returns the writes that store it (and drop the oldest past the bound).
    pub fn append(
        &mut self,
        settings: &WebhookSettings,
        room: &str,
        kind: EventKind,
        data: serde_json::Value,
        now: u64,
    ) -> Vec<Write> {
        self.last_seq += 1;
        let row = WebhookRow {
            seq: self.last_seq,
            at_ms: now,
            json: event_json(room, self.last_seq, kind, now, data),
        };
        self.bytes += row.json.len() as u64;
        let mut writes = vec![
            Write::Counter(Counter::WebhookLastEvent, self.last_seq),
            Write::WebhookEvent(row.clone()),
        ];
        self.events.push_back(row);
        let mut forget = None;
        while self.events.len() > settings.max_outbox_events as usize
            || self.bytes > settings.max_outbox_bytes
        {
            let Some(oldest) = self.events.pop_front() else {
                break;
            };
            self.bytes -= oldest.json.len() as u64;
            self.dropped += 1;
            self.unreported += 1;
            forget = Some(oldest.seq);
        }
        if let Some(through) = forget {
            writes.extend([
                Write::WebhookForget { through },
                Write::Counter(Counter::WebhookDropped, self.dropped),
                Write::Counter(Counter::WebhookUnreported, self.unreported),
            ]);
        }
        writes
    }

    /// When a batch is next due: at once when one is full, after `max_delay_ms` otherwise,
    /// at the retry time after a failure; with a batch in flight, when its answer is overdue.
    pub fn due_at(&self, settings: &WebhookSettings) -> Option<u64> {
        let oldest = self.events.front()?;
        if let Some((_, since)) = self.in_flight {
            return Some(since + ANSWER_TIMEOUT_MS);
        }
        if self.attempts > 0 {
            return Some(self.retry_at);
        }
        let full = self.events.len() >= settings.max_batch_events as usize
            || self.bytes + BATCH_OVERHEAD as u64 >= u64::from(settings.max_batch_bytes);
        Some(if full {
            oldest.at_ms
        } else {
            oldest.at_ms + settings.max_delay_ms
        })
    }

    /// The next batch, if one is due at `now`, signed; it is in flight until answered.
    pub fn take_batch(
        &mut self,
        settings: &WebhookSettings,
        room: &str,
        now: u64,
    ) -> Option<Batch> {
        let url = settings.url.clone()?;
        if self.due_at(settings).is_none_or(|at| at > now) {
            return None;
        }
        let limit = (settings.max_batch_bytes as usize).saturating_sub(BATCH_OVERHEAD + room.len());
        let mut included = 0;
        let mut size = 0;
        for row in &self.events {
            let over = included > 0
                && (included >= settings.max_batch_events as usize
                    || size + row.json.len() + 1 > limit
                    || self.retry_through.is_some_and(|through| row.seq > through));
            if over {
                break;
            }
            included += 1;
            size += row.json.len() + 1;
        }
        let mut rows = String::with_capacity(size);
        for row in self.events.iter().take(included) {
            if !rows.is_empty() {
                rows.push(',');
            }
            rows.push_str(&row.json);
        }
        let first = self.events.front()?.seq;
        let through = self.events.get(included - 1)?.seq;
        let body = format!(
            "{{\"room\":{},\"dropped\":{},\"events\":[{}]}}",
            json!(room),
            self.unreported,
            rows
        );
        let id = format!("{room}.{first}-{through}");
        let timestamp = now / 1000;
        let signature = sign(&settings.key, &id, timestamp, &body);
        self.in_flight = Some((through, now));
        Some(Batch {
            dropped: self.unreported,
            url,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("user-agent".into(), "stomp-rooms-webhooks".into()),
                ("webhook-id".into(), id.clone()),
                ("webhook-timestamp".into(), timestamp.to_string()),
                ("webhook-signature".into(), signature),
            ],
            body,
            id,
            through,
        })
    }

    /// The receiver answered a batch (`Ok(status)`: it answered with a status; 2xx
    /// acknowledges), or the POST failed. Returns the writes, and for a failure which attempt
    /// at this batch it was (the engine logs and counts it).
    pub fn answered(
        &mut self,
        settings: &WebhookSettings,
        batch: &Batch,
        answer: &Result<u16, String>,
        now: u64,
    ) -> (Vec<Write>, Option<u64>) {
        if self
            .in_flight
            .is_none_or(|(in_flight, _)| in_flight != batch.through)
        {
            // Not the batch in flight: a stale answer (handed out before a rebuild) must not
            // free the way for a second POST while one is under way. Its events go again.
            return (Vec::new(), None);
        }
        self.in_flight = None;
        let (through, reported) = (batch.through, batch.dropped);
        if matches!(answer, Ok(200..=299)) {
            while self.events.front().is_some_and(|row| row.seq <= through) {
                if let Some(row) = self.events.pop_front() {
                    self.bytes -= row.json.len() as u64;
                }
            }
            self.unreported = self.unreported.saturating_sub(reported);
            self.attempts = 0;
            self.retry_at = 0;
            self.retry_through = None;
            let writes = vec![
                Write::WebhookForget { through },
                Write::Counter(Counter::WebhookAttempts, 0),
                Write::Counter(Counter::WebhookRetryAt, 0),
                Write::Counter(Counter::WebhookRetryThrough, 0),
                Write::Counter(Counter::WebhookUnreported, self.unreported),
            ];
            return (writes, None);
        }
        self.attempts += 1;
        let delay = backoff(settings, self.attempts, now ^ through);
        self.retry_at = now + delay;
        self.retry_through = Some(through);
        let writes = vec![
            Write::Counter(Counter::WebhookAttempts, self.attempts),
            Write::Counter(Counter::WebhookRetryAt, self.retry_at),
            Write::Counter(Counter::WebhookRetryThrough, through),
        ];
        (writes, Some(self.attempts))
    }

    /// For the stats endpoint.
    pub fn stats(&self) -> serde_json::Value {
        json!({
            "outbox": self.events.len(),
            "outbox_bytes": self.bytes,
            "dropped": self.dropped,
            "attempts": self.attempts,
        })
    }
}

/// The delay before retry number `attempts`: `retry_min_ms` doubled per failure, capped at
/// `retry_max_ms`, then jittered into its upper half so rooms that failed together spread out.
fn backoff(settings: &WebhookSettings, attempts: u64, seed: u64) -> u64 {
    let doublings = attempts.saturating_sub(1).min(40) as u32;
    let base = settings
        .retry_min_ms
        .saturating_mul(1u64 << doublings)
        .min(settings.retry_max_ms);
    let half = base / 2;
    base - half + splitmix(seed ^ attempts) % (half + 1)
}

fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_its_jitter_and_is_capped() {
        let settings = WebhookSettings::default();
        for seed in 0..50 {
            let first = backoff(&settings, 1, seed);
            assert!((500..=1_000).contains(&first), "{first}");
            let fifth = backoff(&settings, 5, seed);
            assert!((8_000..=16_000).contains(&fifth), "{fifth}");
            let late = backoff(&settings, 30, seed);
            assert!((300_000..=600_000).contains(&late), "{late}");
        }
    }
}
