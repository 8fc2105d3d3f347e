//! The stomp-rooms load generator: drives STOMP over WebSocket (or, for the floor, bare text
//! messages) against a broker URL and prints one JSON object of measurements on stdout.
//! Progress goes to stderr. `scripts/bench.sh` runs it against every system side by side.
//!
//! ```text
//! loadgen fanout --flavor stomp|rabbit|floor --url URL --subscribers N --messages M [--rate R]
//!                [--batch K]   (K SEND frames per WebSocket message from the publisher; STOMP)
//! loadgen rooms  --flavor ... --url URL-with-{room} --rooms R --members K --rate R --seconds S
//!                [--send-to DESTINATION --body json] [--stats URL,URL] [--room-stats URL-with-{room}]
//! loadgen scale  --flavor ... --url URL --members M [--messages N] [--paced-rate R]
//!                [--paced-seconds S] [--parallel P] [--stats URL] [--pids P,P]
//! loadgen storm  --flavor ... --url URL --connections C [--pids P,P]
//! loadgen idle   --flavor ... --url URL --clients N --seconds S [--pids P,P]
//! loadgen codec
//! ```

mod client;
mod codec_bench;
mod measure;
mod scale;
mod stats;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::{Conn, Counts, Flavor};
use measure::{elapsed_ns, Latencies, ProcessSample};
use serde_json::{json, Value};
use tokio::sync::{Barrier, Semaphore};

#[global_allocator]
static ALLOCATOR: codec_bench::CountingAllocator = codec_bench::CountingAllocator;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    command: String,
    options: HashMap<String, String>,
}

impl Args {
    fn parse() -> Self {
        let mut raw = std::env::args().skip(1);
        let command = raw.next().unwrap_or_default();
        let mut options = HashMap::new();
        while let Some(key) = raw.next() {
            let value = raw.next().unwrap_or_default();
            options.insert(key.trim_start_matches("--").to_owned(), value);
        }
        Self { command, options }
    }

    fn text(&self, name: &str, default: &str) -> String {
        self.options
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }

    fn number(&self, name: &str, default: u64) -> u64 {
        self.options
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    fn flavor(&self) -> Flavor {
        match self.text("flavor", "stomp").as_str() {
            "rabbit" => Flavor::Rabbit,
            "floor" => Flavor::Floor,
            _ => Flavor::Stomp,
        }
    }

    fn pids(&self) -> Vec<u32> {
        self.text("pids", "")
            .split(',')
            .filter_map(|p| p.trim().parse().ok())
            .collect()
    }
}

fn main() -> Result<(), Error> {
    let args = Args::parse();
    if args.command == "codec" {
        println!("{}", codec_bench::run());
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        match args.command.as_str() {
            "fanout" => fanout(&args).await,
            "rooms" => rooms(&args).await,
            "scale" => scale::scale(&args).await,
            "storm" => storm(&args).await,
            "idle" => idle(&args).await,
            other => Err(format!(
                "unknown command {other:?}; see the usage in benches/loadgen/src/main.rs"
            )
            .into()),
        }
    })?;
    println!("{result}");
    Ok(())
}

fn room_url(template: &str, room: usize) -> String {
    template.replace("{room}", &format!("bench-{room}"))
}

/// One publisher into N subscribers of one destination. Unpaced (`--rate 0`): as fast as the
/// socket takes them; the figure is delivered messages per second. Paced: latency percentiles.
async fn fanout(args: &Args) -> Result<Value, Error> {
    let flavor = args.flavor();
    let url = room_url(&args.text("url", ""), 0);
    let destination = args.text("destination", "/topic/bench");
    let subscribers = args.number("subscribers", 10) as usize;
    let messages = args.number("messages", 1000);
    let rate = args.number("rate", 0);
    let size = args.number("size", 100) as usize;
    let deadline = Duration::from_secs(args.number("timeout", 120));
    let batch = args.number("batch", 1).max(1) as usize;
    eprintln!("fanout: {flavor:?} {subscribers} subscribers, {messages} messages, rate {rate}/s");

    let ready = Arc::new(Barrier::new(subscribers + 1));
    let mut tasks = Vec::new();
    let connect_limit = Arc::new(Semaphore::new(100));
    for n in 0..subscribers {
        let (url, destination, ready, limit) = (
            url.clone(),
            destination.clone(),
            ready.clone(),
            connect_limit.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let permit = limit.acquire_owned().await;
            let mut conn = Conn::open(flavor, &url, (0, 0), &format!("sub{n}")).await?;
            conn.subscribe(&destination).await?;
            drop(permit);
            let subscribed = conn.counts();
            ready.wait().await;
            let mut latencies = Latencies::default();
            let stop = Instant::now() + deadline;
            while latencies.count() < messages {
                match tokio::time::timeout_at(stop.into(), conn.next_body()).await {
                    Ok(Ok(Some(body))) => latencies.record_body(&body),
                    _ => break,
                }
            }
            Ok::<_, Error>((latencies, conn.counts().since(subscribed)))
        }));
    }
    let mut publisher = Conn::open(flavor, &url, (0, 0), "publisher").await?;
    publisher.batch_sends(batch);
    ready.wait().await;
    eprintln!("fanout: all subscribed; publishing");
    let pids = args.pids();
    let (server_before, client_before) = (ProcessSample::take(&pids), ProcessSample::own());
    let started = Instant::now();
    let interval = (rate > 0).then(|| Duration::from_nanos(1_000_000_000 / rate));
    for seq in 0..messages {
        if let Some(interval) = interval {
            let due = started + interval * seq as u32;
            tokio::time::sleep_until(due.into()).await;
        }
        publisher
            .publish(&destination, &measure::body(seq, size))
            .await?;
        if interval.is_some() && (seq + 1) % batch as u64 == 0 {
            // Paced: each message (each batch) leaves now, or the latency would include waiting.
            publisher.flush().await?;
        }
    }
    publisher.flush().await?;
    let published_in = started.elapsed();
    let (mut all, mut received) = (Latencies::default(), Counts::default());
    for task in tasks {
        let (latencies, counts) = task.await??;
        all.merge(latencies);
        received.add(counts);
    }
    let elapsed = started.elapsed();
    let (server_after, client_after) = (ProcessSample::take(&pids), ProcessSample::own());
    let delivered = all.count();
    eprintln!(
        "fanout: {delivered} of {} deliveries in {:.2} s, in {} WebSocket messages",
        messages * subscribers as u64,
        elapsed.as_secs_f64(),
        received.ws_messages
    );
    Ok(json!({
        "scenario": "fanout", "flavor": flavor.name(), "subscribers": subscribers, "messages": messages,
        "rate": rate, "size": size, "publisher_sends_per_ws_message": if flavor == Flavor::Floor { 1 } else { batch }, "expected": messages * subscribers as u64, "delivered": delivered,
        "seconds": elapsed.as_secs_f64(), "publish_seconds": published_in.as_secs_f64(),
        "delivered_per_second": delivered as f64 / elapsed.as_secs_f64(),
        "latency_ms": all.summary(), "cdf_ms": all.cdf(200),
        // At the subscribers: WebSocket messages received, and MESSAGE frames parsed from them.
        "ws_messages": received.ws_messages, "message_frames": received.deliveries,
        "ws_messages_per_delivery": received.ws_messages_per_delivery(),
        "server_cpu_seconds": server_after.cpu_seconds() - server_before.cpu_seconds(),
        "server_cpu_by_process": server_after.cpu_by_process_since(&server_before),
        "client_cpu_seconds": client_after.cpu_seconds() - client_before.cpu_seconds(),
    }))
}

/// Many rooms, every member publishing at a steady rate and hearing the others. Each member
/// subscribes to `--destination` and publishes to `--send-to` (the same by default), both with
/// `{room}` filled; `--body json` sends a Spring tutorial's JSON chat message naming its room
/// (`roomId`), for destinations routed by the body. `--stats` URLs are read once everyone is
/// subscribed and again at the end; so is `--room-stats` for every room, summed.
async fn rooms(args: &Args) -> Result<Value, Error> {
    let flavor = args.flavor();
    let template = args.text("url", "");
    let destination_template = args.text("destination", "/topic/chat");
    let send_template = args.text("send-to", &destination_template);
    let json_bodies = args.text("body", "text") == "json";
    let (room_count, members) = (
        args.number("rooms", 100) as usize,
        args.number("members", 10) as usize,
    );
    let rate = args.number("rate", 2).max(1);
    let seconds = args.number("seconds", 10);
    let size = args.number("size", 100) as usize;
    let stats_urls: Vec<String> = args
        .text("stats", "")
        .split(',')
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect();
    eprintln!(
        "rooms: {flavor:?} {room_count} rooms x {members} members, {rate} msg/s each, {seconds} s"
    );
    let total = room_count * members;
    // Every member, and this task: `subscribed` once all are, then this task reads the
    // counters and the CPU before `go` starts the clock.
    let subscribed = Arc::new(Barrier::new(total + 1));
    let ready = Arc::new(Barrier::new(total + 1));
    let limit = Arc::new(Semaphore::new(100));
    let mut tasks = Vec::new();
    for room in 0..room_count {
        for member in 0..members {
            let url = room_url(&template, room);
            let room_name = format!("bench-{room}");
            let destination = destination_template.replace("{room}", &room_name);
            let send_to = send_template.replace("{room}", &room_name);
            let (subscribed, ready, limit) = (subscribed.clone(), ready.clone(), limit.clone());
            tasks.push(tokio::spawn(async move {
                let permit = limit.acquire_owned().await;
                let sender = format!("r{room}m{member}");
                let conn = Conn::open(flavor, &url, (0, 0), &sender).await;
                let mut conn = conn?;
                conn.subscribe(&destination).await?;
                drop(permit);
                let counted_from = conn.counts();
                subscribed.wait().await;
                ready.wait().await;
                let (mut writer, mut reader) = conn.split();
                let started = Instant::now();
                let stop = started + Duration::from_secs(seconds);
                let write = tokio::spawn(async move {
                    let interval = Duration::from_nanos(1_000_000_000 / rate);
                    // Members start at different offsets, as people do.
                    let offset =
                        interval.mul_f64(((room * 7919 + member * 104_729) % 1000) as f64 / 1000.0);
                    let mut seq = 0u64;
                    loop {
                        let due = started + offset + interval * seq as u32;
                        if due >= stop {
                            break;
                        }
                        tokio::time::sleep_until(due.into()).await;
                        let body = if json_bodies {
                            measure::json_body(seq, size, &room_name, &sender)
                        } else {
                            measure::body(seq, size)
                        };
                        writer.publish(&send_to, &body).await?;
                        writer.flush().await?;
                        seq += 1;
                    }
                    writer.flush().await?;
                    Ok::<_, Error>(seq)
                });
                let mut latencies = Latencies::default();
                let drain_until = stop + Duration::from_secs(2);
                while let Ok(Ok(Some(body))) =
                    tokio::time::timeout_at(drain_until.into(), reader.next_body()).await
                {
                    latencies.record_body(&body);
                }
                let sent = write.await??;
                Ok::<_, Error>((sent, latencies, reader.counts().since(counted_from)))
            }));
        }
    }
    let pids = args.pids();
    let (server_before, client_before) = (ProcessSample::take(&pids), ProcessSample::own());
    subscribed.wait().await;
    let mut stats_subscribed = Vec::new();
    for url in &stats_urls {
        stats_subscribed.push(json!({ "url": url, "stats": stats::read(url).await }));
    }
    let room_stats = args.text("room-stats", "");
    let rooms_subscribed = stats::sum_over_rooms(&room_stats, room_count).await;
    let (server_subscribed, subscribed_at) = (ProcessSample::take(&pids), Instant::now());
    ready.wait().await;
    let (mut sent, mut all, mut received) = (0, Latencies::default(), Counts::default());
    for task in tasks {
        let (s, l, counts) = task.await??;
        sent += s;
        all.merge(l);
        received.add(counts);
    }
    let (server_after, client_after) = (ProcessSample::take(&pids), ProcessSample::own());
    let measured_seconds = subscribed_at.elapsed().as_secs_f64();
    let mut stats_after = Vec::new();
    for url in &stats_urls {
        stats_after.push(json!({ "url": url, "stats": stats::read(url).await }));
    }
    let rooms_after = stats::sum_over_rooms(&room_stats, room_count).await;
    eprintln!("rooms: {sent} published, {} delivered", all.count());
    Ok(json!({
        "scenario": "rooms", "flavor": flavor.name(), "rooms": room_count, "members": members, "rate": rate,
        "seconds": seconds, "destination": destination_template, "send_to": send_template,
        "published": sent, "delivered": all.count(),
        "delivered_per_second": all.count() as f64 / seconds as f64, "latency_ms": all.summary(),
        "ws_messages": received.ws_messages, "message_frames": received.deliveries,
        "ws_messages_per_delivery": received.ws_messages_per_delivery(),
        "server_cpu_seconds_incl_setup": server_after.cpu_seconds() - server_before.cpu_seconds(),
        "client_cpu_seconds_incl_setup": client_after.cpu_seconds() - client_before.cpu_seconds(),
        "server_cpu_seconds": server_after.cpu_seconds() - server_subscribed.cpu_seconds(),
        "server_cpu_by_process": server_after.cpu_by_process_since(&server_subscribed),
        "server_cpu_window_seconds": measured_seconds,
        "stats_subscribed": stats_subscribed, "stats_after": stats_after,
        "rooms_stats_subscribed": rooms_subscribed, "rooms_stats_after": rooms_after,
    }))
}

/// Opens `count` connections, at most `parallel` at a time; each result in order.
async fn open_many(
    flavor: Flavor,
    url: &str,
    count: usize,
    parallel: usize,
    heart_beat: (u32, u32),
    name: &str,
) -> Result<Vec<Result<Conn, Error>>, Error> {
    let limit = Arc::new(Semaphore::new(parallel));
    let mut tasks = Vec::new();
    for n in 0..count {
        let (url, limit, login) = (url.to_owned(), limit.clone(), format!("{name}{n}"));
        tasks.push(tokio::spawn(async move {
            let permit = limit.acquire_owned().await;
            let conn = Conn::open(flavor, &url, heart_beat, &login).await;
            drop(permit);
            conn
        }));
    }
    let mut conns = Vec::new();
    for task in tasks {
        conns.push(task.await?);
    }
    Ok(conns)
}

/// C connections, each opened and taken through CONNECT/CONNECTED, at most 200 at a time.
async fn storm(args: &Args) -> Result<Value, Error> {
    let flavor = args.flavor();
    let url = room_url(&args.text("url", ""), 0);
    let count = args.number("connections", 2000) as usize;
    let pids = args.pids();
    eprintln!("storm: {flavor:?} {count} connections");
    let before = ProcessSample::take(&pids);
    let started = Instant::now();
    let mut conns = Vec::new();
    let mut failed = 0;
    for conn in open_many(flavor, &url, count, 200, (0, 0), "storm").await? {
        match conn {
            Ok(conn) => conns.push(conn),
            Err(_) => failed += 1,
        }
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = ProcessSample::take(&pids);
    eprintln!(
        "storm: {} connected, {failed} failed, in {:.2} s",
        conns.len(),
        elapsed.as_secs_f64()
    );
    let result = json!({
        "scenario": "storm", "flavor": flavor.name(), "connections": count, "connected": conns.len(),
        "failed": failed, "seconds": elapsed.as_secs_f64(),
        "connects_per_second": conns.len() as f64 / elapsed.as_secs_f64(),
        "server_rss_mb_before": before.rss_mb(), "server_rss_mb_after": after.rss_mb(),
        "server_cpu_seconds": after.cpu_seconds() - before.cpu_seconds(),
    });
    for mut conn in conns {
        conn.close().await;
    }
    Ok(result)
}

/// N stomp.js-style clients (10 s heart-beats, "\n" pings) held open and otherwise idle.
async fn idle(args: &Args) -> Result<Value, Error> {
    let flavor = args.flavor();
    let url = room_url(&args.text("url", ""), 0);
    let count = args.number("clients", 1000) as usize;
    let seconds = args.number("seconds", 120);
    let pids = args.pids();
    eprintln!("idle: {flavor:?} {count} clients for {seconds} s");
    let mut conns = Vec::new();
    for conn in open_many(flavor, &url, count, 100, (10_000, 10_000), "idle").await? {
        conns.push(conn?);
    }
    eprintln!("idle: all connected; holding");
    let before = ProcessSample::take(&pids);
    let started = Instant::now();
    let stop = started + Duration::from_secs(seconds);
    let mut holders = Vec::new();
    for (n, conn) in conns.into_iter().enumerate() {
        holders.push(tokio::spawn(async move {
            let (mut writer, mut reader) = conn.split();
            let ping = tokio::spawn(async move {
                // Pings spread over the 10 s period, as independent clients would be.
                let mut at = started + Duration::from_millis((n as u64 * 9973) % 10_000);
                let mut pings = 0u64;
                while at < stop {
                    tokio::time::sleep_until(at.into()).await;
                    if writer.heart_beat().await.is_err() {
                        break;
                    }
                    pings += 1;
                    at += Duration::from_secs(10);
                }
                pings
            });
            let mut received = 0u64;
            while let Ok(Ok(Some(_))) =
                tokio::time::timeout_at(stop.into(), reader.next_raw()).await
            {
                received += 1;
            }
            (ping.await.unwrap_or(0), received)
        }));
    }
    let (mut pings, mut received) = (0, 0);
    for holder in holders {
        let (p, r) = holder.await?;
        pings += p;
        received += r;
    }
    let after = ProcessSample::take(&pids);
    eprintln!("idle: {pings} pings sent, {received} heart-beats received");
    Ok(json!({
        "scenario": "idle", "flavor": flavor.name(), "clients": count, "seconds": seconds,
        "pings_sent": pings, "heart_beats_received": received,
        "server_cpu_seconds": after.cpu_seconds() - before.cpu_seconds(),
        "server_rss_mb": after.rss_mb(), "elapsed_ns": elapsed_ns(started),
    }))
}
