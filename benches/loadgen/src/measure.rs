//! Clocks, latency samples and process CPU/memory readings.

use std::sync::OnceLock;
use std::time::Instant;

use serde_json::{json, Value};

static START: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds on this process's monotonic clock; publisher and subscribers share it.
pub fn now_ns() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

pub fn elapsed_ns(since: Instant) -> u64 {
    since.elapsed().as_nanos() as u64
}

/// A message body: "{seq} {send time ns} " padded with 'x' to `size` bytes.
pub fn body(seq: u64, size: usize) -> Vec<u8> {
    let mut body = format!("{seq} {} ", now_ns()).into_bytes();
    body.resize(size.max(body.len()), b'x');
    body
}

/// A JSON chat message as a Spring tutorial's page sends it, with `{seq} {send time ns} `
/// (padded to `size` bytes) as its text: `{"type":"TALK","roomId":…,"sender":…,"message":…}`.
pub fn json_body(seq: u64, size: usize, room: &str, sender: &str) -> Vec<u8> {
    let text = String::from_utf8(body(seq, size)).unwrap_or_default();
    serde_json::json!({ "type": "TALK", "roomId": room, "sender": sender, "message": text })
        .to_string()
        .into_bytes()
}

/// The sequence number and send time a body carries (`body` or `json_body`).
pub fn stamp(body: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(body).ok()?;
    const MESSAGE: &str = "\"message\":\"";
    let text = text
        .find(MESSAGE)
        .map_or(text, |at| &text[at + MESSAGE.len()..]);
    let mut fields = text.split(' ');
    let seq = fields.next()?.parse().ok()?;
    let sent = fields.next()?.parse().ok()?;
    Some((seq, sent))
}

/// Publish-to-delivery latencies in microseconds.
#[derive(Default)]
pub struct Latencies {
    micros: Vec<u32>,
}

impl Latencies {
    pub fn record_body(&mut self, body: &[u8]) {
        if let Some((_, sent)) = stamp(body) {
            self.record_sent(sent);
        }
    }

    /// A delivery of a message sent at `sent` (`now_ns()` then), arriving now.
    pub fn record_sent(&mut self, sent: u64) {
        self.micros
            .push((now_ns().saturating_sub(sent) / 1000).min(u64::from(u32::MAX)) as u32);
    }

    pub fn count(&self) -> u64 {
        self.micros.len() as u64
    }

    pub fn merge(&mut self, other: Latencies) {
        self.micros.extend(other.micros);
    }

    fn sorted(&self) -> Vec<u32> {
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        sorted
    }

    pub fn summary(&self) -> Value {
        let sorted = self.sorted();
        if sorted.is_empty() {
            return Value::Null;
        }
        let at =
            |q: f64| f64::from(sorted[((sorted.len() - 1) as f64 * q).round() as usize]) / 1000.0;
        let mean = sorted.iter().map(|&m| f64::from(m)).sum::<f64>() / sorted.len() as f64 / 1000.0;
        json!({ "p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "p999": at(0.999), "max": at(1.0), "mean": mean })
    }

    /// `points` (latency ms, fraction of deliveries at or below it) pairs.
    pub fn cdf(&self, points: usize) -> Value {
        let sorted = self.sorted();
        if sorted.is_empty() {
            return json!([]);
        }
        let pairs: Vec<Value> = (0..=points)
            .map(|i| {
                let q = i as f64 / points as f64;
                let index = ((sorted.len() - 1) as f64 * q).round() as usize;
                json!([f64::from(sorted[index]) / 1000.0, q])
            })
            .collect();
        Value::Array(pairs)
    }
}

/// CPU time and resident memory of the server's processes, from /proc.
pub struct ProcessSample {
    cpu_ticks: u64,
    rss_kb: u64,
    /// CPU ticks by process name (`/proc/{pid}/comm`), to tell workerd from wrangler's node.
    by_name: std::collections::BTreeMap<String, u64>,
}

impl ProcessSample {
    pub fn take(pids: &[u32]) -> Self {
        let mut sample = Self {
            cpu_ticks: 0,
            rss_kb: 0,
            by_name: Default::default(),
        };
        for pid in pids {
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                // Fields after the parenthesised command name: utime and stime are 14 and 15.
                let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
                let fields: Vec<&str> = after_name.split_whitespace().collect();
                let ticks = |i: usize| {
                    fields
                        .get(i)
                        .and_then(|f| f.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                sample.cpu_ticks += ticks(11) + ticks(12);
                let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                *sample.by_name.entry(name.trim().to_owned()).or_default() += ticks(11) + ticks(12);
            }
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                let rss = status.lines().find(|l| l.starts_with("VmRSS:"));
                sample.rss_kb += rss
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        sample
    }

    /// Open files (sockets among them) of each process, as "{name} {pid}": what a connection
    /// costs a server in file descriptors, against each process's open-file limit.
    pub fn open_files(pids: &[u32]) -> Value {
        let mut by_process = serde_json::Map::new();
        for pid in pids {
            let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                continue;
            };
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            by_process.insert(format!("{} {pid}", name.trim()), entries.count().into());
        }
        Value::Object(by_process)
    }

    /// This process (the load generator itself).
    pub fn own() -> Self {
        Self::take(&[std::process::id()])
    }

    /// CPU seconds by process name used between `before` and this sample.
    pub fn cpu_by_process_since(&self, before: &ProcessSample) -> Value {
        let seconds = |name: &String, ticks: &u64| {
            let earlier = before.by_name.get(name).copied().unwrap_or(0);
            (
                name.clone(),
                json!(ticks.saturating_sub(earlier) as f64 / 100.0),
            )
        };
        Value::Object(self.by_name.iter().map(|(n, t)| seconds(n, t)).collect())
    }

    /// Clock ticks are 1/100 s on Linux.
    pub fn cpu_seconds(&self) -> f64 {
        self.cpu_ticks as f64 / 100.0
    }

    pub fn rss_mb(&self) -> f64 {
        self.rss_kb as f64 / 1024.0
    }
}
