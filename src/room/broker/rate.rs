//! The per-connection publish rate: messages and body bytes per second, each with a burst, as
//! a generic cell rate algorithm (GCRA). A connection's whole state is one "theoretical arrival
//! time" per limit, kept in its session, so the limit holds exactly after the room wakes.

use serde::{Deserialize, Serialize};

use crate::stomp::ProtocolError;

/// How fast one connection may publish (`publish_rate` in the settings). A rate of 0 is no limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublishRate {
    /// SEND frames per second, sustained. Default 50.
    pub messages_per_s: u32,
    /// SEND frames allowed at once above the sustained rate. Default 100.
    pub messages_burst: u32,
    /// Body bytes per second, sustained. Default 512 KiB.
    pub bytes_per_s: u32,
    /// Body bytes allowed at once; at least the largest body, or it could never be sent.
    /// Default 2 MiB.
    pub bytes_burst: u32,
}

impl Default for PublishRate {
    fn default() -> Self {
        Self {
            messages_per_s: 50,
            messages_burst: 100,
            bytes_per_s: 512 * 1024,
            bytes_burst: 2 * 1024 * 1024,
        }
    }
}

impl PublishRate {
    /// No limit on either.
    pub const UNLIMITED: Self = Self {
        messages_per_s: 0,
        messages_burst: 0,
        bytes_per_s: 0,
        bytes_burst: 0,
    };
}

/// A connection's place against its limits: when each bucket is next empty, in µs since the
/// epoch (the GCRA's theoretical arrival time). Zero means never used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    #[serde(rename = "m", default)]
    pub messages_us: u64,
    #[serde(rename = "b", default)]
    pub bytes_us: u64,
}

impl Throttle {
    pub fn is_unused(&self) -> bool {
        *self == Self::default()
    }

    /// Whether both buckets are full again at `now_us`: the same as never used.
    pub fn is_full_at(&self, now_us: u64) -> bool {
        self.messages_us <= now_us && self.bytes_us <= now_us
    }

    /// Counts one SEND of `body_bytes` at `now_ms`, or refuses it (and counts nothing) when it
    /// would exceed either limit.
    pub fn admit(
        &mut self,
        rate: &PublishRate,
        body_bytes: usize,
        now_ms: u64,
    ) -> Result<(), ProtocolError> {
        let now_us = now_ms.saturating_mul(1000);
        let messages = advance(
            self.messages_us,
            1,
            rate.messages_per_s,
            rate.messages_burst,
            now_us,
        );
        let bytes = advance(
            self.bytes_us,
            body_bytes as u64,
            rate.bytes_per_s,
            rate.bytes_burst,
            now_us,
        );
        match (messages, bytes) {
            (Some(messages), Some(bytes)) => {
                self.messages_us = messages;
                self.bytes_us = bytes;
                Ok(())
            }
            (None, _) => Err(refusal(format!(
                "this connection sent more than {} messages per second (burst {}); slow down, \
                 then reconnect",
                rate.messages_per_s, rate.messages_burst
            ))),
            (_, None) => Err(refusal(format!(
                "this connection sent more than {} body bytes per second (burst {}); slow down, \
                 then reconnect",
                rate.bytes_per_s, rate.bytes_burst
            ))),
        }
    }
}

/// The bucket's next theoretical arrival time after spending `cost`, or `None` if that would
/// go past the burst. `per_s` 0 is no limit.
fn advance(tat_us: u64, cost: u64, per_s: u32, burst: u32, now_us: u64) -> Option<u64> {
    if per_s == 0 {
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
            throttle.admit(&rate, 0, 1_000).unwrap();
        }
        let error = throttle.admit(&rate, 0, 1_000).unwrap_err();
        assert_eq!(error.message, "rate limit exceeded");
        assert!(error
            .detail
            .contains("more than 10 messages per second (burst 5)"));
        // One message's worth of time (100 ms) later, exactly one more fits.
        throttle.admit(&rate, 0, 1_100).unwrap();
        assert!(throttle.admit(&rate, 0, 1_100).is_err());
        // A full refill after burst / rate = 500 ms.
        for _ in 0..5 {
            throttle.admit(&rate, 0, 1_700).unwrap();
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
        throttle.admit(&rate, 2000, 0).unwrap();
        let error = throttle.admit(&rate, 2000, 0).unwrap_err();
        assert!(error.detail.contains("body bytes"));
        throttle.admit(&rate, 2000, 1000).unwrap();
    }

    #[test]
    fn no_limit_at_zero() {
        let rate = rate(0, 0);
        let mut throttle = Throttle::default();
        for _ in 0..10_000 {
            throttle.admit(&rate, 1 << 20, 0).unwrap();
        }
        assert!(throttle.is_unused(), "nothing to remember without a limit");
    }
}
