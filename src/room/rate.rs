//! The per-connection rates: SEND frames, all frames, and bytes per second, each with a burst,
//! as a generic cell rate algorithm (GCRA). A connection's whole state is one "theoretical
//! arrival time" per limit, kept in its session, so the limits hold exactly after the room
//! wakes. Every frame a client sends counts (heart-beats aside), and so does what a frame makes
//! the room send back at length (a presence snapshot, a replay of history).

use serde::{Deserialize, Serialize};

use crate::stomp::ProtocolError;

/// How fast one connection (or, over HTTP, one client address) may send (`publish_rate` in the
/// settings). A rate of 0 is no limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublishRate {
    /// SEND frames per second, sustained. Default 50.
    pub messages_per_s: u32,
    /// SEND frames allowed at once above the sustained rate. Default 100.
    pub messages_burst: u32,
    /// Frames of any kind per second, sustained (SEND, SUBSCRIBE, ACK, ...). Default 500.
    pub frames_per_s: u32,
    /// Frames of any kind allowed at once. Default 1,000.
    pub frames_burst: u32,
    /// Bytes per second, sustained: whole frames (headers and body), and what a frame asks
    /// the room to send back at length (a presence snapshot, replayed history). Default 512 KiB.
    pub bytes_per_s: u32,
    /// Bytes allowed at once; at least the largest frame, or it could never be sent.
    /// Default 2 MiB.
    pub bytes_burst: u32,
}

impl Default for PublishRate {
    fn default() -> Self {
        Self {
            messages_per_s: 50,
            messages_burst: 100,
            frames_per_s: 500,
            frames_burst: 1_000,
            bytes_per_s: 512 * 1024,
            bytes_burst: 2 * 1024 * 1024,
        }
    }
}

impl PublishRate {
    /// No limit on any.
    pub const UNLIMITED: Self = Self {
        messages_per_s: 0,
        messages_burst: 0,
        frames_per_s: 0,
        frames_burst: 0,
        bytes_per_s: 0,
        bytes_burst: 0,
    };
}

/// What one frame (or request) costs against the rates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// SEND frames (or HTTP publishes).
    pub messages: u64,
    pub frames: u64,
    pub bytes: u64,
}

impl Cost {
    /// A frame of `bytes`; a SEND when `publish`.
    pub fn frame(bytes: usize, publish: bool) -> Self {
        Self {
            messages: u64::from(publish),
            frames: 1,
            bytes: bytes as u64,
        }
    }

    /// Bytes the room sends back at a frame's request.
    pub fn bytes(bytes: u64) -> Self {
        Self {
            bytes,
            ..Self::default()
        }
    }
}

/// A connection's place against its limits: when each bucket is next empty, in µs since the
/// epoch (the GCRA's theoretical arrival time). Zero means never used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    #[serde(rename = "m", default)]
    pub messages_us: u64,
    #[serde(rename = "f", default, skip_serializing_if = "is_zero")]
    pub frames_us: u64,
    #[serde(rename = "b", default)]
    pub bytes_us: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Throttle {
    pub fn is_unused(&self) -> bool {
        *self == Self::default()
    }

    /// Whether every bucket is full again at `now_us`: the same as never used.
    pub fn is_full_at(&self, now_us: u64) -> bool {
        self.messages_us <= now_us && self.frames_us <= now_us && self.bytes_us <= now_us
    }

    /// Counts `cost` at `now_ms`, or refuses it (and counts nothing) when it would exceed any
    /// limit.
    pub fn admit(
        &mut self,
        rate: &PublishRate,
        cost: Cost,
        now_ms: u64,
    ) -> Result<(), ProtocolError> {
        let now_us = now_ms.saturating_mul(1000);
        let messages = advance(
            self.messages_us,
            cost.messages,
            rate.messages_per_s,
            rate.messages_burst,
            now_us,
        );
        let frames = advance(
            self.frames_us,
            cost.frames,
            rate.frames_per_s,
            rate.frames_burst,
            now_us,
        );
        let bytes = advance(
            self.bytes_us,
            cost.bytes,
            rate.bytes_per_s,
            rate.bytes_burst,
            now_us,
        );
        match (messages, frames, bytes) {
            (Some(messages), Some(frames), Some(bytes)) => {
                self.messages_us = messages;
                self.frames_us = frames;
                self.bytes_us = bytes;
                Ok(())
            }
            (None, _, _) => Err(refusal(format!(
                "this connection sent more than {} messages per second (burst {}); slow down, \
                 then reconnect",
                rate.messages_per_s, rate.messages_burst
            ))),
            (_, None, _) => Err(refusal(format!(
                "this connection sent more than {} frames per second (burst {}); slow down, \
                 then reconnect",
                rate.frames_per_s, rate.frames_burst
            ))),
            (_, _, None) => Err(refusal(format!(
                "this connection sent, or asked the room to send back, more than {} bytes per \
                 second (burst {}); slow down, then reconnect",
                rate.bytes_per_s, rate.bytes_burst
            ))),
        }
    }
}

/// The bucket's next theoretical arrival time after spending `cost`, or `None` if that would
/// go past the burst. `per_s` 0 is no limit; a cost of 0 changes nothing.
fn advance(tat_us: u64, cost: u64, per_s: u32, burst: u32, now_us: u64) -> Option<u64> {
    if per_s == 0 || cost == 0 {
        return Some(tat_us);
    }
    let per_s = u128::from(per_s);
    let spend = u128::from(cost) * 1_000_000 / per_s;
    let limit = u128::from(burst) * 1_000_000 / per_s;
    let next = u128::from(tat_us.max(now_us)) + spend;
    (next - u128::from(now_us) <= limit).then(|| u64::try_from(next).unwrap_or(u64::MAX))
}

fn refusal(detail: String) -> ProtocolError {
    ProtocolError::new("rate limit exceeded", detail).with_close_code(1008)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(messages_per_s: u32, messages_burst: u32) -> PublishRate {
        PublishRate {
            messages_per_s,
            messages_burst,
            ..PublishRate::UNLIMITED
        }
    }

    #[test]
    fn a_burst_passes_then_the_sustained_rate() {
        let rate = rate(10, 5);
        let mut throttle = Throttle::default();
        for _ in 0..5 {
            throttle.admit(&rate, Cost::frame(0, true), 1_000).unwrap();
        }
        let error = throttle
            .admit(&rate, Cost::frame(0, true), 1_000)
            .unwrap_err();
        assert_eq!(error.message, "rate limit exceeded");
        assert!(error
            .detail
            .contains("more than 10 messages per second (burst 5)"));
        // One message's worth of time (100 ms) later, exactly one more fits.
        throttle.admit(&rate, Cost::frame(0, true), 1_100).unwrap();
        assert!(throttle.admit(&rate, Cost::frame(0, true), 1_100).is_err());
        // A full refill after burst / rate = 500 ms.
        for _ in 0..5 {
            throttle.admit(&rate, Cost::frame(0, true), 1_700).unwrap();
        }
    }

    #[test]
    fn bytes_are_limited_apart_from_messages() {
        let rate = PublishRate {
            bytes_per_s: 1000,
            bytes_burst: 3000,
            ..PublishRate::UNLIMITED
        };
        let mut throttle = Throttle::default();
        throttle.admit(&rate, Cost::bytes(2000), 0).unwrap();
        let error = throttle.admit(&rate, Cost::bytes(2000), 0).unwrap_err();
        assert!(error.detail.contains("more than 1000 bytes per second"));
        throttle.admit(&rate, Cost::bytes(2000), 1000).unwrap();
    }

    #[test]
    fn every_frame_counts_toward_the_frame_rate() {
        let rate = PublishRate {
            frames_per_s: 10,
            frames_burst: 3,
            ..PublishRate::UNLIMITED
        };
        let mut throttle = Throttle::default();
        for _ in 0..3 {
            throttle.admit(&rate, Cost::frame(10, false), 0).unwrap();
        }
        let error = throttle
            .admit(&rate, Cost::frame(10, false), 0)
            .unwrap_err();
        assert!(error
            .detail
            .contains("more than 10 frames per second (burst 3)"));
        assert!(
            throttle.admit(&rate, Cost::bytes(1 << 20), 0).is_ok(),
            "a cost without frames passes the frame rate"
        );
    }

    #[test]
    fn no_limit_at_zero() {
        let rate = rate(0, 0);
        let mut throttle = Throttle::default();
        for _ in 0..10_000 {
            throttle
                .admit(&rate, Cost::frame(1 << 20, true), 0)
                .unwrap();
        }
        assert!(throttle.is_unused(), "nothing to remember without a limit");
    }
}
