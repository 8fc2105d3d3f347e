//! One big room: M members subscribed to one destination and one publisher, first unpaced (as
//! fast as the publisher's socket takes messages: deliveries/s) and then paced (latency at a
//! steady rate), on the same connections. The members connect in parallel, at most
//! `--parallel` at a time, with progress on stderr. The room's counters (`--stats`) are read
//! before and after each phase, so the report can say what the room saw: its own connections,
//! and, once big rooms spread over gateway objects, its members there and its calls to them.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};

use crate::client::Conn;
use crate::measure::{self, now_ns, Latencies, ProcessSample};
use crate::{room_url, stats, Args, Error};

/// Paced messages' sequence numbers start here, so each delivery says which phase it is of.
const PACED_SEQ: u64 = 1 << 32;
const UNPACED: usize = 0;
const PACED: usize = 1;

/// What the members' tasks tell the main task as they go.
#[derive(Default)]
struct Tally {
    connected: AtomicUsize,
    failed: AtomicUsize,
    /// Members whose socket closed or failed after they subscribed.
    lost: AtomicUsize,
    first_error: Mutex<Option<String>>,
    delivered: [AtomicU64; 2],
    /// `now_ns()` of each phase's latest delivery: the phase ends there.
    last_delivery_ns: [AtomicU64; 2],
}

impl Tally {
    fn failed(&self, error: &Error) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert_with(|| error.to_string());
    }

    fn settled(&self) -> usize {
        self.connected.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }

    /// Members still subscribed.
    fn listening(&self) -> u64 {
        (self.connected.load(Ordering::Relaxed) - self.lost.load(Ordering::Relaxed)) as u64
    }
}

pub async fn scale(args: &Args) -> Result<Value, Error> {
    let flavor = args.flavor();
    let url = room_url(&args.text("url", ""), 0);
    let destination = args.text("destination", "/topic/chat");
    let members = args.number("members", 1000) as usize;
    let messages = args.number("messages", (200_000 / members.max(1) as u64).max(5));
    let paced_rate = args.number("paced-rate", (10_000 / members.max(1) as u64).max(1));
    let paced_seconds = args.number("paced-seconds", 10);
    let parallel = args.number("parallel", 200).max(1) as usize;
    let size = args.number("size", 100) as usize;
    let timeout = Duration::from_secs(args.number("timeout", 120));
    let stats_url = args.text("stats", "");
    let pids = args.pids();
    let read_stats = || async {
        if stats_url.is_empty() {
            Value::Null
        } else {
            stats::read(&stats_url).await
        }
    };
    eprintln!(
        "scale: {flavor:?} {members} members of {destination} at {url}; {messages} messages \
         unpaced, then {paced_rate}/s for {paced_seconds} s"
    );
    let stats_initial = read_stats().await;

    // The publisher first, so it is one of the room's own sockets however the rest are placed.
    let mut publisher = Conn::open(flavor, &url, (0, 0), "publisher").await?;

    let tally = Arc::new(Tally::default());
    let (stop, stopped) = watch::channel(false);
    let limit = Arc::new(Semaphore::new(parallel));
    let (server_before, connect_started) = (ProcessSample::take(&pids), Instant::now());
    let mut tasks = Vec::with_capacity(members);
    for n in 0..members {
        let (url, destination, tally, limit, mut stopped) = (
            url.clone(),
            destination.clone(),
            tally.clone(),
            limit.clone(),
            stopped.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = [Latencies::default(), Latencies::default()];
            let permit = limit.acquire_owned().await;
            let conn = match Conn::open_lean(flavor, &url, &format!("member{n}")).await {
                Ok(mut conn) => conn.subscribe(&destination).await.map(|()| conn),
                Err(error) => Err(error),
            };
            drop(permit);
            let mut conn = match conn {
                Ok(conn) => conn,
                Err(error) => {
                    tally.failed(&error);
                    return latencies;
                }
            };
            tally.connected.fetch_add(1, Ordering::Relaxed);
            loop {
                tokio::select! {
                    body = conn.next_body() => match body {
                        Ok(Some(body)) => {
                            let Some((seq, sent)) = measure::stamp(&body) else { continue };
                            let phase = if seq >= PACED_SEQ { PACED } else { UNPACED };
                            latencies[phase].record_sent(sent);
                            tally.last_delivery_ns[phase].fetch_max(now_ns(), Ordering::Relaxed);
                            tally.delivered[phase].fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            tally.lost.fetch_add(1, Ordering::Relaxed);
                            return latencies;
                        }
                    },
                    _ = stopped.changed() => break,
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.close()).await;
            latencies
        }));
    }

    let mut last_report = Instant::now();
    while tally.settled() < members {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if last_report.elapsed() >= Duration::from_secs(2) {
            last_report = Instant::now();
            let connected = tally.connected.load(Ordering::Relaxed);
            eprintln!(
                "scale: {connected} of {members} members subscribed, {} failed ({:.0}/s)",
                tally.failed.load(Ordering::Relaxed),
                connected as f64 / connect_started.elapsed().as_secs_f64()
            );
        }
    }
    let connect_seconds = connect_started.elapsed().as_secs_f64();
    let server_connected = ProcessSample::take(&pids);
    let connected = tally.connected.load(Ordering::Relaxed);
    eprintln!(
        "scale: {connected} of {members} members subscribed in {connect_seconds:.1} s, {} failed{}",
        tally.failed.load(Ordering::Relaxed),
        first_error(&tally).map_or(String::new(), |e| format!(" (first: {e})"))
    );
    let stats_connected = read_stats().await;
    let server_open_files = ProcessSample::open_files(&pids);

    let mut runs = Vec::new();
    for (phase, mode, count, rate) in [
        (UNPACED, "unpaced", messages, 0),
        (PACED, "paced", paced_rate * paced_seconds, paced_rate),
    ] {
        if tally.listening() == 0 {
            eprintln!("scale: no member is subscribed any more; nothing to measure");
            break;
        }
        // Whatever the last step left to the room (connects, a backlog) ends before this one.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let stats_before = read_stats().await;
        let mut run = publish_and_wait(
            &mut publisher,
            &tally,
            &destination,
            &pids,
            Phase {
                index: phase,
                count,
                rate,
                size,
                timeout,
            },
        )
        .await?;
        run["mode"] = mode.into();
        run["stats_before"] = stats_before;
        run["stats_after"] = read_stats().await;
        runs.push(run);
    }

    let _ = stop.send(true);
    let mut all = [Latencies::default(), Latencies::default()];
    for task in tasks {
        let [unpaced, paced] = task.await?;
        all[UNPACED].merge(unpaced);
        all[PACED].merge(paced);
    }
    for (run, latencies) in runs.iter_mut().zip(&all) {
        run["latency_ms"] = latencies.summary();
    }
    publisher.close().await;
    Ok(json!({
        "scenario": "scale", "flavor": flavor.name(), "destination": destination, "members": members,
        "connected": connected, "connect_failed": tally.failed.load(Ordering::Relaxed),
        "connect_error": first_error(&tally), "members_lost": tally.lost.load(Ordering::Relaxed),
        "parallel": parallel, "connect_seconds": connect_seconds,
        "connects_per_second": connected as f64 / connect_seconds,
        "connect_server_cpu_seconds": server_connected.cpu_seconds() - server_before.cpu_seconds(),
        "connect_server_cpu_by_process": server_connected.cpu_by_process_since(&server_before),
        "server_rss_mb_connected": server_connected.rss_mb(), "server_open_files_connected": server_open_files,
        "client_rss_mb": ProcessSample::own().rss_mb(),
        "stats_initial": stats_initial, "stats_connected": stats_connected, "runs": runs,
    }))
}

fn first_error(tally: &Tally) -> Option<String> {
    tally
        .first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

struct Phase {
    index: usize,
    count: u64,
    /// Messages per second; 0: as fast as the socket takes them.
    rate: u64,
    size: usize,
    timeout: Duration,
}

/// Publishes a phase's messages, then waits until every member still subscribed has each of
/// them (or the timeout): its deliveries/s to the last delivery and the server's CPU.
async fn publish_and_wait(
    publisher: &mut Conn,
    tally: &Tally,
    destination: &str,
    pids: &[u32],
    phase: Phase,
) -> Result<Value, Error> {
    let listening = tally.listening();
    let expected = phase.count * listening;
    let already = tally.delivered[phase.index].load(Ordering::Relaxed);
    let base = if phase.index == PACED { PACED_SEQ } else { 0 };
    eprintln!(
        "scale: {} messages to {listening} members, rate {}/s",
        phase.count, phase.rate
    );
    let (server_before, client_before) = (ProcessSample::take(pids), ProcessSample::own());
    let (started, started_ns) = (Instant::now(), now_ns());
    let interval = (phase.rate > 0).then(|| Duration::from_nanos(1_000_000_000 / phase.rate));
    for seq in 0..phase.count {
        if let Some(interval) = interval {
            tokio::time::sleep_until((started + interval * seq as u32).into()).await;
        }
        publisher
            .publish(destination, &measure::body(base + seq, phase.size))
            .await?;
        if interval.is_some() {
            publisher.flush().await?;
        }
    }
    publisher.flush().await?;
    let publish_seconds = started.elapsed().as_secs_f64();
    let deadline = started + phase.timeout;
    let mut last_report = Instant::now();
    let delivered = loop {
        let delivered = tally.delivered[phase.index].load(Ordering::Relaxed) - already;
        if delivered >= expected || Instant::now() >= deadline || tally.listening() == 0 {
            break delivered;
        }
        if last_report.elapsed() >= Duration::from_secs(2) {
            last_report = Instant::now();
            eprintln!("scale: {delivered} of {expected} deliveries");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let (server_after, client_after) = (ProcessSample::take(pids), ProcessSample::own());
    let last_ns = tally.last_delivery_ns[phase.index].load(Ordering::Relaxed);
    let seconds = if delivered > 0 && last_ns > started_ns {
        (last_ns - started_ns) as f64 / 1e9
    } else {
        started.elapsed().as_secs_f64()
    };
    eprintln!("scale: {delivered} of {expected} deliveries in {seconds:.2} s");
    Ok(json!({
        "messages": phase.count, "rate": phase.rate, "size": phase.size, "members_listening": listening,
        "expected": expected, "delivered": delivered, "complete": delivered >= expected,
        "seconds": seconds, "publish_seconds": publish_seconds,
        "delivered_per_second": delivered as f64 / seconds,
        "server_cpu_seconds": server_after.cpu_seconds() - server_before.cpu_seconds(),
        "server_cpu_by_process": server_after.cpu_by_process_since(&server_before),
        "client_cpu_seconds": client_after.cpu_seconds() - client_before.cpu_seconds(),
    }))
}
