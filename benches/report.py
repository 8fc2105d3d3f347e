"""Turns the benchmark's raw results (one JSON object per line) into docs/benchmarks.md,
docs/benchmarks.json and docs/latency-cdf.png, and the ladder's runs (docs/ladder.json, written by
scripts/ladder.sh) into its section of the report and docs/ladder.png.

    python benches/report.py RESULTS.jsonl MACHINE VERSIONS   # scripts/bench.sh: fresh results
    python benches/report.py                                  # re-render from docs/benchmarks.json
    python benches/report.py --core RESULTS.jsonl OUT.json MACHINE VERSIONS COMMIT

The second form changes no figure: it re-renders the report from the raw data already in docs/
(scripts/ladder.sh uses it to refresh the ladder's section). The third (`scripts/bench.sh core`)
writes OUT.json and prints the quick run's side-by-side table, touching nothing in docs/."""

import datetime
import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

docs = Path(__file__).resolve().parent.parent / "docs"
core_out = None
if len(sys.argv) == 7 and sys.argv[1] == "--core":
    results_path, core_out, machine, versions, commit = sys.argv[2:]
    results = [json.loads(line) for line in Path(results_path).read_text().splitlines() if line.strip()]
    measured_on = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
elif len(sys.argv) == 4:
    results_path, machine, versions = sys.argv[1], sys.argv[2], sys.argv[3]
    results = [json.loads(line) for line in Path(results_path).read_text().splitlines() if line.strip()]
    measured_on = datetime.date.today().isoformat()
elif len(sys.argv) == 1:
    if not (docs / "benchmarks.json").exists():
        sys.exit("report.py: docs/benchmarks.json is absent; run scripts/bench.sh to measure everything.")
    raw = json.loads((docs / "benchmarks.json").read_text())
    machine, versions, results = raw["machine"], raw["versions"], raw["results"]
    # Older benchmarks.json files carry no date: keep the one the report already states.
    earlier = (docs / "benchmarks.md").read_text() if (docs / "benchmarks.md").exists() else ""
    found = re.search(r"^Measured (\d{4}-\d{2}-\d{2}) ", earlier, re.M)
    measured_on = raw.get("date") or (found and found.group(1)) or "on an unrecorded date"
else:
    sys.exit("usage: report.py RESULTS.jsonl MACHINE VERSIONS (from scripts/bench.sh), or no arguments to "
             "re-render docs/benchmarks.md from docs/benchmarks.json and docs/ladder.json, or "
             "--core RESULTS.jsonl OUT.json MACHINE VERSIONS COMMIT (from scripts/bench.sh core)")
NAMES = {
    "stomp-rooms": "stomp-rooms",
    "floor": "floor (raw rebroadcast DO)",
    "floor-durable": "durable floor (rebroadcast + SQLite INSERT)",
    "rabbitmq-web-stomp": "RabbitMQ Web-STOMP",
}
SYSTEMS = list(NAMES)


def system_of(r):
    """The durable floor speaks the floor's protocol (its `flavor` is "floor"); bench.sh tags it."""
    return r.get("system") or r.get("flavor")


def pick(scenario, system=None, **match):
    return [r for r in results if r.get("scenario") == scenario and (system is None or system_of(r) == system)
            and all(r.get(k) == v for k, v in match.items())]


def one(scenario, system=None, **match):
    found = pick(scenario, system, **match)
    return found[0] if found else None


def echoes(r):
    """Whether the system delivers a message to its sender too (STOMP subscribers do; the floors don't)."""
    return r.get("flavor") != "floor"


def fmt(value, digits=0):
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "—"


HOOKED = "stomp-rooms-webhooks"


def per_delivery(r):
    """WebSocket messages per delivery at the subscribers (below 1 when several MESSAGE frames shared
    one WebSocket message), or None for results from before the load generator counted them."""
    return (r or {}).get("ws_messages_per_delivery")


def fmt_per_delivery(r):
    value = per_delivery(r)
    return "—" if value is None else f"{value:.3f}"


def per_delivery_lines():
    """Every fan-out's WebSocket messages per delivery, by system, mode and fan-out size."""
    systems = [s for s in SYSTEMS + [HOOKED] if pick("fanout", system=s)]
    modes = [(m, n) for m in ("unpaced", "paced") for n in (10, 100, 1000) if any(one("fanout", system=s, subscribers=n, mode=m) for s in systems)]
    if not modes:
        return []
    out = ["", "### WebSocket messages per delivery", "",
           "Counted at the subscribers: the WebSocket messages they received over the STOMP MESSAGE frames (floors: text",
           "messages) they parsed from them. 1.000 is one WebSocket message per delivery; below 1, several MESSAGE frames",
           "shared one WebSocket message (coalescing). A dash: not counted in this run.", "",
           "| fan-out | subscribers | " + " | ".join(NAMES.get(s, "stomp-rooms, webhooks on") for s in systems) + " |",
           "| --- | --- | " + " | ".join("---" for _ in systems) + " |"]
    for m, n in modes:
        out.append(f"| {m} | {n:,} | " + " | ".join(fmt_per_delivery(one("fanout", system=s, subscribers=n, mode=m)) for s in systems) + " |")
    return out


# Low load (issue 24): 100 messages/s into 10 subscribers for 10 s, several runs per system.
LOWLOAD = "100 messages/s into 10 subscribers for 10 s"


def lowload_runs(system):
    return sorted((r for r in pick("fanout", system=system, mode="lowload") if r.get("latency_ms")), key=lambda r: r.get("run", 0))


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def lowload_p99(system):
    """(median p99, worst p99, runs) of a system's low-load runs, or None."""
    runs = lowload_runs(system)
    if not runs:
        return None
    p99s = [r["latency_ms"]["p99"] for r in runs]
    return median(p99s), max(p99s), len(runs)


# The connection storm (issue 24): several runs per system, the systems taking turns.
STORM = "2,000 WebSockets, 200 at a time"
STORM_NAMES = {"floor": "floor (its clients send nothing once open)",
               "floor-connect": "floor with CONNECT (its clients wait for the CONNECTED it answers)"}


def storm_runs(system):
    return sorted((r for r in pick("storm", system=system) if r.get("connects_per_second") is not None),
                  key=lambda r: r.get("run", 0))


def storm_rate(system):
    """The median of a system's storm runs, in connects/s, or None."""
    return median([r["connects_per_second"] for r in storm_runs(system)])


def storm_lines(systems):
    """Each storm run of each system, with the median and its ratio to the floor's."""
    systems = [s for s in systems if storm_runs(s)]
    if not systems:
        return []
    floor = storm_rate("floor")
    out = ["| system | connects/s of each run | median connects/s | ÷ floor's median | server CPU s of each run | server RSS MiB before → after (last run) |",
           "| --- | --- | --- | --- | --- | --- |"]
    for s in systems:
        runs = storm_runs(s)
        rates = ", ".join(fmt(r["connects_per_second"]) for r in runs)
        cpu = ", ".join(fmt(r.get("server_cpu_seconds"), 2) for r in runs)
        last = runs[-1]
        failed = sum(r.get("failed") or 0 for r in runs)
        note = f" ({failed:,} failed)" if failed else ""
        out.append(f"| {STORM_NAMES.get(s, NAMES.get(s, s))} | {rates}{note} | {fmt(storm_rate(s))} | {ratio(storm_rate(s), floor)} "
                   f"| {cpu} | {fmt(last.get('server_rss_mb_before'))} → {fmt(last.get('server_rss_mb_after'))} |")
    return out


def lowload_lines(systems):
    systems = [s for s in systems if lowload_runs(s)]
    if not systems:
        return []
    floor = lowload_p99("floor")
    runs = max(len(lowload_runs(s)) for s in systems)
    out = ["", f"### Low load: {LOWLOAD}", "",
           f"One publisher, each message flushed as it is sent; the systems take turns, {runs} runs each, each run in a",
           "fresh room. p99 varies from run to run, so every run's p99 is shown, then the medians over runs and the",
           "worst max. **vs floor**: the median p99 less the floor's median p99.", "",
           "| system | p99 ms of each run | median p50 ms | median p99 ms | worst max ms | vs floor (median p99) | delivered | WebSocket messages per delivery |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in systems:
        rs = lowload_runs(s)
        p99 = lowload_p99(s)
        delivered, expected = sum(r["delivered"] for r in rs), sum(r["expected"] for r in rs)
        versus = f"{p99[0] - floor[0]:+,.1f} ms" if floor and s != "floor" else "—"
        frames = sum(r.get("message_frames") or 0 for r in rs)
        ws = sum(r.get("ws_messages") or 0 for r in rs)
        out.append(f"| {NAMES.get(s, s)} | {', '.join(fmt(r['latency_ms']['p99'], 1) for r in rs)} "
                   f"| {fmt(median(r['latency_ms']['p50'] for r in rs), 1)} | {fmt(p99[0], 1)} "
                   f"| {fmt(max(r['latency_ms']['max'] for r in rs), 1)} | {versus} "
                   f"| {delivered:,} of {expected:,} | {f'{ws / frames:.3f}' if frames else '—'} |")
    return out


def core_report():
    """The quick run (`scripts/bench.sh core`): stomp-rooms, the floor and RabbitMQ side by side,
    against issue 24's targets."""
    systems = ["stomp-rooms", "floor", "rabbitmq-web-stomp"]

    def cells(values, digits=0):
        return " | ".join(fmt(v, digits) for v in values)

    def ahead(ours, rabbit, lower_is_better=False):
        if ours is None or rabbit is None:
            return "—"
        return "yes" if (ours < rabbit if lower_is_better else ours > rabbit) else "no"

    out = [f"# Quick benchmark (scripts/bench.sh core), {measured_on}", "",
           f"Commit {commit}. {machine}. {versions}.", "",
           "| scenario | stomp-rooms | floor | RabbitMQ | stomp-rooms ÷ floor | target | met | ahead of RabbitMQ "
           "| WebSocket messages per delivery (stomp-rooms / floor / RabbitMQ) |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n in (10, 100, 1000):
        rs = [one("fanout", system=s, subscribers=n, mode="unpaced") for s in systems]
        rate = [(r or {}).get("delivered_per_second") for r in rs]
        notes = [f" (incomplete: {r['delivered']:,} of {r['expected']:,})" if r and r["delivered"] < r["expected"] else "" for r in rs]
        met = "—" if not (rate[0] and rate[1]) else ("yes" if rate[0] >= 1.5 * rate[1] and (rate[2] is None or rate[0] > rate[2]) else "no")
        out.append(f"| unpaced fan-out, {n:,} subscribers (deliveries/s) | " + " | ".join(fmt(v) + note for v, note in zip(rate, notes))
                   + f" | {ratio(rate[0], rate[1])} | ≥ 1.5× floor, ahead of RabbitMQ | {met} | {ahead(rate[0], rate[2])} | "
                   + " / ".join(fmt_per_delivery(r) for r in rs) + " |")
    storm = [storm_rate(s) for s in systems]
    runs = max((len(storm_runs(s)) for s in systems), default=0)
    met = "—" if not (storm[0] and storm[1]) else ("yes" if storm[0] >= 0.8 * storm[1] else "no")
    out.append(f"| connection storm, {STORM}: median connects/s over {runs} runs | {cells(storm)} | {ratio(storm[0], storm[1])} "
               f"| ≥ 0.8× floor | {met} | {ahead(storm[0], storm[2])} | — |")
    connect_floor = storm_rate("floor-connect")
    out.append(f"| the same storm, the floor's clients sending CONNECT | {fmt(storm[0])} | {fmt(connect_floor)} | {fmt(storm[2])} "
               f"| {ratio(storm[0], connect_floor)} | (context) | — | {ahead(storm[0], storm[2])} | — |")
    low = [lowload_p99(s) for s in systems]
    medians = [x and x[0] for x in low]
    diff = f"{medians[0] - medians[1]:+,.1f} ms" if medians[0] is not None and medians[1] is not None else "—"
    met = "—" if diff == "—" else ("yes" if medians[0] - medians[1] <= 5 else "no")

    def low_per_delivery(s):
        rs = lowload_runs(s)
        frames, ws = sum(r.get("message_frames") or 0 for r in rs), sum(r.get("ws_messages") or 0 for r in rs)
        return f"{ws / frames:.3f}" if frames else "—"
    out.append(f"| low load, {LOWLOAD}: median p99 ms over {max((x[2] for x in low if x), default=0)} runs | {cells(medians, 1)} "
               f"| {diff} | within 5 ms of floor | {met} | {ahead(medians[0], medians[2], lower_is_better=True)} | "
               + " / ".join(low_per_delivery(s) for s in systems) + " |")
    out += ["", f"### Connection storm: {STORM}, each run", ""] + storm_lines(systems[:2] + ["floor-connect"] + systems[2:])
    out += lowload_lines(systems)
    out += ["", "| low-load run | " + " | ".join(f"{NAMES[s]} p99 ms" for s in systems) + " | stomp-rooms − floor |",
            "| --- | " + " | ".join("---" for _ in systems) + " | --- |"]
    by_run = {s: {r.get("run"): r for r in lowload_runs(s)} for s in systems}
    for run in sorted({k for runs in by_run.values() for k in runs}):
        p99 = [(by_run[s].get(run) or {}).get("latency_ms", {}).get("p99") for s in systems]
        gap = f"{p99[0] - p99[1]:+,.1f} ms" if p99[0] is not None and p99[1] is not None else "—"
        out.append(f"| {run} | {cells(p99, 1)} | {gap} |")
    Path(core_out).write_text(json.dumps({"date": measured_on, "machine": machine, "versions": versions, "commit": commit,
                                          "results": results}, indent=1) + "\n")
    print("\n".join(out))


if core_out:
    core_report()
    sys.exit(0)


lines = [
    "# Benchmarks",
    "",
    f"Measured {measured_on} by `scripts/bench.sh` on this project's machine: {machine}.",
    f"Versions: {versions}. Servers ran on CPU 0 and the load generator (`benches/loadgen`, Rust,",
    "tokio + tokio-tungstenite) on CPU 1, pinned with `taskset`; everything on loopback. stomp-rooms and",
    "the two floors run under `wrangler dev` (workerd, local SQLite; one `wrangler dev` each), RabbitMQ 3",
    "with its Web-STOMP plugin. The floor rebroadcasts each message and stores nothing; the durable floor",
    "does the same and then INSERTs the message into a SQLite history table, as stomp-rooms archives it.",
    "Raw figures: [benchmarks.json](benchmarks.json). Latency is publish → delivery on one clock.",
    "stomp-rooms runs with its per-connection publish rate and connection caps lifted",
    "(`LOAD_TEST_SETTINGS` in `scripts/env.sh`): one load generator on one address publishing as fast as it",
    "can is exactly what those limits refuse. Every other setting is the default. It is served from",
    "`wrangler.toml` without its static files (`measurement_config` in `scripts/env.sh`): with them,",
    "`wrangler dev` runs its emulation of Cloudflare's asset routing in the Worker's own process for every",
    "request (on Cloudflare it runs before the Worker, not in it), and the floors have none.",
    "",
    "## Fan-out: 1 publisher into N subscribers",
    "",
    "Unpaced: the publisher sends as fast as its socket takes messages (100-byte bodies); the figure is",
    "deliveries per second until every subscriber has every message.",
    "",
    "| subscribers | " + " | ".join(f"{NAMES[s]} deliveries/s" for s in SYSTEMS) + " | stomp-rooms ÷ floor | stomp-rooms ÷ durable floor | stomp-rooms ÷ RabbitMQ |",
    "| --- | " + " | ".join("---" for _ in SYSTEMS) + " | --- | --- | --- |",
]
for n in (10, 100, 1000):
    row = {s: one("fanout", system=s, subscribers=n, mode="unpaced") for s in SYSTEMS}
    rate = {s: (row[s] or {}).get("delivered_per_second") for s in SYSTEMS}
    lost = {s: row[s] and row[s]["delivered"] < row[s]["expected"] for s in SYSTEMS}
    cells = [fmt(rate[s]) + (" (incomplete)" if lost[s] else "") for s in SYSTEMS]
    lines.append(f"| {n} | " + " | ".join(cells) + f" | {ratio(rate['stomp-rooms'], rate['floor'])} | {ratio(rate['stomp-rooms'], rate['floor-durable'])}"
                 f" | {ratio(rate['stomp-rooms'], rate['rabbitmq-web-stomp'])} |")

lines += [
    "",
    "Paced at 1,000 messages/s for 3 s: latency in ms (p50 / p99 / p99.9), and how many deliveries arrived.",
    "",
    "| subscribers | " + " | ".join(NAMES[s] for s in SYSTEMS) + " |",
    "| --- | " + " | ".join("---" for _ in SYSTEMS) + " |",
]
for n in (10, 100, 1000):
    cells = []
    for s in SYSTEMS:
        r = one("fanout", system=s, subscribers=n, mode="paced")
        if not r or not r.get("latency_ms"):
            cells.append("—")
            continue
        l = r["latency_ms"]
        cells.append(f"{fmt(l['p50'], 1)} / {fmt(l['p99'], 1)} / {fmt(l['p999'], 1)} ({r['delivered']:,} of {r['expected']:,})")
    lines.append(f"| {n} | " + " | ".join(cells) + " |")

lines += ["", "Where the time goes during the unpaced fan-out (CPU seconds used while it ran; server on CPU 0, client on CPU 1):", "",
          "| system | subscribers | wall s | server CPU s (by process) | load generator CPU s |", "| --- | --- | --- | --- | --- |"]
for s in SYSTEMS:
    for n in (10, 100, 1000):
        r = one("fanout", system=s, subscribers=n, mode="unpaced")
        if r:
            split = ", ".join(f"{name} {cpu:.2f}" for name, cpu in (r.get("server_cpu_by_process") or {}).items() if cpu)
            server = fmt(r.get("server_cpu_seconds"), 2) + (f" ({split})" if split else "")
            lines.append(f"| {NAMES[s]} | {n} | {fmt(r['seconds'], 2)} | {server} | {fmt(r.get('client_cpu_seconds'), 2)} |")


def cpu_split(r):
    """A fan-out result's server CPU seconds as (worker process names, worker s, wrangler's node s, the rest s).
    The worker is the process that runs the server's code: workerd (stomp-rooms and the floors) or
    Erlang's beam (RabbitMQ); "node" is wrangler's local proxy; the rest is e.g. esbuild or wrappers."""
    split = r.get("server_cpu_by_process") or {}
    workers = sorted(name for name in split if name == "workerd" or name.startswith("beam"))
    worker = sum(split[name] for name in workers)
    node = split.get("node", 0)
    return workers, worker, node, sum(cpu for name, cpu in split.items() if name not in workers and name != "node")


def per_delivery_us(r):
    """(worker names, worker µs, node µs, rest µs) per delivery of a fan-out result, or None."""
    if not r or not r.get("delivered") or not r.get("server_cpu_by_process"):
        return None
    workers, worker, node, rest = cpu_split(r)
    return workers, 1e6 * worker / r["delivered"], 1e6 * node / r["delivered"], 1e6 * rest / r["delivered"]


lines += ["", "### CPU per delivery", "",
          "Server CPU microseconds per delivered message in the unpaced fan-out, from the CPU time of each of the",
          "server's processes (`/proc`, 10 ms ticks): the worker process that runs the server's code (workerd for",
          "stomp-rooms and the floors, Erlang's beam for RabbitMQ), wrangler's node proxy apart, and anything",
          "else in the server's process group (esbuild, wrappers).", "",
          "| system | subscribers | deliveries | worker µs/delivery | worker ÷ floor's | worker ÷ durable floor's | wrangler node µs/delivery | other µs/delivery |",
          "| --- | --- | --- | --- | --- | --- | --- | --- |"]
for s in SYSTEMS:
    for n in (10, 100, 1000):
        r = one("fanout", system=s, subscribers=n, mode="unpaced")
        us = per_delivery_us(r)
        if not us:
            continue
        workers, worker, node, rest = us
        floor = per_delivery_us(one("fanout", system="floor", subscribers=n, mode="unpaced"))
        durable = per_delivery_us(one("fanout", system="floor-durable", subscribers=n, mode="unpaced"))
        label = "+".join(workers) or "none found"
        lines.append(f"| {NAMES[s]} | {n} | {r['delivered']:,} | {fmt(worker, 1)} ({label}) | {ratio(worker, floor and floor[1])}"
                     f" | {ratio(worker, durable and durable[1])} | {fmt(node, 1)} | {fmt(rest, 1)} |")

lines += per_delivery_lines()
lines += lowload_lines(SYSTEMS)

hooked_runs = pick("fanout", system=HOOKED)
if hooked_runs:
    lines += ["", "### With webhooks on for every message", "",
              "The same fan-outs into a second stomp-rooms whose settings send a `message` webhook event for every",
              "topic message (`webhooks.destinations: [\"/topic/**\"]`) to `benches/webhook-receiver.mjs`, which",
              "answers each batch with 204 at once: the room stores every event in its outbox with the message's",
              "own commit and POSTs the batches from its alarm, beside the fan-out.", "",
              "| subscribers | webhooks off deliveries/s | webhooks on deliveries/s | on ÷ off | off p50 / p99 ms (paced) | on p50 / p99 ms (paced) | off worker µs/delivery | on worker µs/delivery | webhooks' worker µs per message |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n in (10, 100, 1000):
        off, on = (one("fanout", system=s, subscribers=n, mode="unpaced") for s in ("stomp-rooms", HOOKED))
        off_paced, on_paced = (one("fanout", system=s, subscribers=n, mode="paced") for s in ("stomp-rooms", HOOKED))
        def rate(r):
            return (r or {}).get("delivered_per_second")
        def latency(r):
            l = (r or {}).get("latency_ms")
            return f"{fmt(l['p50'], 1)} / {fmt(l['p99'], 1)}" if l else "—"
        def worker_us(r):
            us = per_delivery_us(r)
            return fmt(us[1], 1) if us else "—"
        # What webhooks add to each message, whatever its fan-out: the per-delivery difference
        # times the deliveries a message makes.
        us_off, us_on = per_delivery_us(off), per_delivery_us(on)
        extra = (us_on[1] - us_off[1]) * n if us_off and us_on else None
        lines.append(f"| {n} | {fmt(rate(off))} | {fmt(rate(on))} | {ratio(rate(on), rate(off))} | {latency(off_paced)}"
                     f" | {latency(on_paced)} | {worker_us(off)} | {worker_us(on)} | {fmt(extra, 0) if extra is None or extra >= 0 else 'none measured'} |")
    hooks = one("webhooks") or {}
    received = hooks.get("received") or {}
    lines += ["", "A webhook for a message costs the room its event's JSON, one more row in the group commit, its",
              "share of a signed batch and its POST, and the row's deletion once delivered: a fixed cost per",
              "message, beside the fan-out's cost per delivery. With many subscribers it is lost in the fan-out;",
              "with 10 it is a large share of each message, and a room that must carry the most messages a second",
              "into few subscribers should send webhooks only for the destinations that need them",
              "(`webhooks.destinations`). The last column is that fixed cost as measured (the difference in",
              "worker µs per delivery times the subscribers; small fan-outs measure it best, large ones drown it",
              "in noise)."]
    lines += ["", f"The receiver got {fmt(received.get('message_events'))} `message` events for the "
              f"{fmt(hooks.get('published'))} messages published in these runs, in {fmt(received.get('batches'))} batches "
              f"({fmt(received.get('bytes'))} bytes)."]

lines += ["", "## 100 rooms × 10 members, each publishing 2 messages/s for 10 s", "",
          "| system | published | delivered (of expected) | deliveries/s | p50 ms | p99 ms | p99.9 ms |", "| --- | --- | --- | --- | --- | --- | --- |"]


def rooms_expected(r):
    return r["published"] * (r["members"] if echoes(r) else r["members"] - 1)


for s in SYSTEMS:
    r = one("rooms", system=s)
    if r:
        l = r.get("latency_ms") or {}
        lines.append(f"| {NAMES[s]} | {r['published']:,} | {r['delivered']:,} (of {rooms_expected(r):,}) | {fmt(r['delivered_per_second'])} | {fmt(l.get('p50'), 1)} | {fmt(l.get('p99'), 1)} | {fmt(l.get('p999'), 1)} |")
lines += ["", "stomp-rooms and RabbitMQ deliver each message to its sender too (it subscribes to its room); the floors do not.", ""]

lines += [f"## Connection storm: {STORM}, each through CONNECT/CONNECTED", "",
          "The systems take turns, each run in a fresh room; the figure compared is each system's median.",
          "The floor's clients send nothing once their socket is open; the floor with CONNECT is the same",
          "floor, its clients sending CONNECT and waiting for the CONNECTED frame it answers with (one event",
          "and one send, no STOMP work), as stomp-rooms' and RabbitMQ's clients do.", ""]
lines += storm_lines(["stomp-rooms", "floor", "floor-connect", "floor-durable", "rabbitmq-web-stomp"]) + [""]

lines += ["## Idle: 1,000 stomp.js-style clients (10 s heart-beats, \"\\n\" pings) for 120 s", "",
          "Room counters are read twice, 70 s apart, while the clients only ping. A wake is counted each time the",
          "object is rebuilt in memory after eviction (the counter request itself wakes a hibernated room);",
          "events are the handler calls of the instance that answered the second read.", "",
          "| system | pings sent | heart-beats received | server CPU s (whole run) | room wakes in the 70 s | handler calls since the last wake |",
          "| --- | --- | --- | --- | --- | --- |"]
for s in SYSTEMS:
    r = one("idle", system=s)
    if not r:
        continue
    before, after = r.get("room_stats_before") or {}, r.get("room_stats_after") or {}
    if before and after:
        wakes = (after.get("wakes") or 0) - (before.get("wakes") or 0)
        events = after.get("events_since_wake", {})
        if wakes == 0:
            eb = before.get("events_since_wake", {})
            events = {k: v - eb.get(k, 0) for k, v in events.items()}
        woken, calls = str(wakes), ", ".join(f"{k} {v}" for k, v in sorted(events.items()))
    else:
        woken, calls = "not applicable", "not applicable"
    lines.append(f"| {NAMES[s]} | {r['pings_sent']:,} | {r['heart_beats_received']:,} | {fmt(r['server_cpu_seconds'], 2)} | {woken} | {calls} |")

# Issue 21's scenarios (scripts/bench-scale.sh; `bash scripts/bench.sh scale` runs them alone).
PLACEMENTS = ("direct", "sharded")


def run_of(r, mode):
    """The unpaced or paced phase of a scale result."""
    return next((run for run in (r or {}).get("runs") or [] if run.get("mode") == mode), None)


def worker_seconds(run):
    """The worker's CPU seconds (workerd: every object of the server) during a run, or None."""
    if not run or not run.get("server_cpu_by_process"):
        return None
    return cpu_split(run)[1]


def per_message_us(run, messages):
    seconds = worker_seconds(run)
    return 1e6 * seconds / messages if seconds is not None and messages else None


def gateway_calls(stats):
    """(sent, failed) room → gateway calls a room's counters report, or (None, None) before rooms
    had gateways. `gateway_calls` is a number (sent) or an object with `sent` and `failed`."""
    calls = (stats or {}).get("gateway_calls")
    if isinstance(calls, dict):
        return calls.get("sent"), calls.get("failed")
    return (calls, None) if isinstance(calls, (int, float)) else (None, None)


def gateway_members(stats):
    """(members on gateways, gateways) from a room's counters, or (None, None) if it has none:
    `members` is an object of counts by gateway (or a number of members)."""
    members = (stats or {}).get("members")
    if isinstance(members, dict):
        counts = [v for v in members.values() if isinstance(v, (int, float))]
        return sum(counts), len(counts)
    return (members, None) if isinstance(members, (int, float)) else (None, None)


def calls_per_message(run):
    if not run:
        return None
    before, after = gateway_calls(run.get("stats_before"))[0], gateway_calls(run.get("stats_after"))[0]
    if after is None or not run.get("messages"):
        return None
    # The counter starts again when the room wakes: a smaller one counts from that wake.
    return (after - (before or 0) if after >= (before or 0) else after) / run["messages"]


def delivered_cell(run):
    if not run:
        return "—"
    return f"{run['delivered']:,} of {run['expected']:,}" + ("" if run["delivered"] >= run["expected"] else " (incomplete)")


scale_results = pick("scale")
seed_results = pick("seed-app")
if scale_results or seed_results:
    first = (scale_results or seed_results)[0]
    # Sizes that ran somewhere (those the open-file limit left out are listed below the tables).
    sizes = sorted({r["members"] for r in scale_results if r.get("members") and not r.get("skipped")})
    lines += ["", "## One room past one object, and a Spring app's chat rooms (issue 21)", "",
              f"Measured {first.get('measured_at', 'on an unrecorded date')} at commit {first.get('commit', 'not recorded')} "
              "by `scripts/bench.sh` (alone: `bash scripts/bench.sh scale`), on the same machine, on two stomp-rooms servers "
              "of their own (`wrangler dev`, CPU 0; the load generator on CPU 1), each with `LOAD_TEST_SETTINGS` and the "
              "Spring tutorial's destinations (`destinations.topics: [\"/sub/\"]`, `destinations.application: "
              "{\"/pub/chat/message\": \"/sub/chat/room/{roomId}\"}`):",
              "",
              "- **direct**: `scaling.members_per_object: 0`: every socket of a room is on the room's own object, as before "
              "rooms had gateways;",
              "- **sharded**: the default `scaling` (a room's object holds 1,000 sockets itself, `members_per_object`; the "
              "next go to gateway objects of 1,000 each, `members_per_gateway`; the room sends a message to each gateway "
              "once, for all of its members there, and one call may carry several messages) and `scaling.room_destinations: [\"/sub/chat/room/{room}\"]` (each chat room of an endpoint in an "
              "object of its own, its sockets on the endpoint's gateways).",
              "",
              "Every object of a server runs in its one workerd process, pinned to one core: here spreading a room over "
              "objects cannot add cores, so the sharded columns show what spreading costs (calls between objects, CPU per "
              "message) and what one core still carries, not the parallelism separate machines give it in production. "
              "The same process holds every socket of a server, about 4.3 open files each under `wrangler dev`, so its "
              f"open-file limit ({fmt(first.get('open_file_limit'))} here) caps the members of a run: sizes past it are "
              "listed below the tables as not run, and the largest size that fits runs in their place.",
              "",
              "### One room, M members and one publisher",
              "",
              "M members connect to `/rooms/{room}` (at most "
              f"{first.get('parallel', 200)} opening at once) and subscribe to `/topic/chat`; one publisher, connected "
              "first (so one of the room's own sockets in both servers), sends 100-byte messages. Unpaced: as fast as its "
              "socket takes them, about 200,000 deliveries' worth (200,000 ÷ M messages: 200 into 1,000 members); "
              "deliveries/s runs from the first send to the last delivery. **worker µs per message**: workerd's CPU during "
              "the run (all of the server's objects, room and gateways) over the messages published; per delivery, over "
              "the member count again.",
              "",
              "| members | direct deliveries/s | sharded deliveries/s | sharded ÷ direct | direct delivered | sharded delivered "
              "| direct worker µs per message (per delivery) | sharded worker µs per message (per delivery) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for m in sizes:
        r = {p: one("scale", placement=p, members=m) for p in PLACEMENTS}
        run = {p: run_of(r[p], "unpaced") for p in PLACEMENTS}
        rate = {p: (run[p] or {}).get("delivered_per_second") for p in PLACEMENTS}

        def cpu(p):
            us = per_message_us(run[p], (run[p] or {}).get("messages"))
            return f"{fmt(us, 0)} ({fmt(us / m, 1)})" if us is not None else "—"
        lines.append(f"| {m:,} | {fmt(rate['direct'])} | {fmt(rate['sharded'])} | {ratio(rate['sharded'], rate['direct'])} "
                     f"| {delivered_cell(run['direct'])} | {delivered_cell(run['sharded'])} | {cpu('direct')} | {cpu('sharded')} |")

    lines += ["", "Paced: the publisher sends at a steady rate for the run's seconds, about 10,000 deliveries a second "
              "(10,000 ÷ M messages/s, rounded down: 10 into 1,000 members). Latency publish → delivery in ms "
              "(p50 / p99 / p99.9). Worker µs per message here include the server's idle time between messages.", "",
              "| members | messages/s | seconds | direct latency | sharded latency | direct delivered | sharded delivered "
              "| direct worker µs per message | sharded worker µs per message |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for m in sizes:
        r = {p: one("scale", placement=p, members=m) for p in PLACEMENTS}
        run = {p: run_of(r[p], "paced") for p in PLACEMENTS}
        some = run["direct"] or run["sharded"]
        if not some:
            continue

        def latency(p):
            l = (run[p] or {}).get("latency_ms")
            return f"{fmt(l['p50'], 1)} / {fmt(l['p99'], 1)} / {fmt(l['p999'], 1)}" if l else "—"

        def cpu(p):
            return fmt(per_message_us(run[p], (run[p] or {}).get("messages")), 0)
        lines.append(f"| {m:,} | {some['rate']} | {some['messages'] / some['rate']:g} | {latency('direct')} | {latency('sharded')} "
                     f"| {delivered_cell(run['direct'])} | {delivered_cell(run['sharded'])} | {cpu('direct')} | {cpu('sharded')} |")

    lines += ["", "What the room's counters (`GET /rooms/{room}/stats`) said once every member was subscribed, and what "
              "follows from them per message. **room's own sockets**: its `sockets`, the WebSockets the runtime holds for "
              "the room object itself (the publisher among them); the room writes each message to each of these itself, "
              "so its WebSocket sends per message are this less the publisher. Its `connections` (STOMP sessions) count "
              "these and its members on gateways. **members on gateways**: its `members`, by gateway. **gateway calls per message**: the room's "
              "calls to its gateways during the run (`gateway_calls`, each a request between objects) over the messages "
              "published, unpaced / paced; each call carries one WebSocket message for all of that gateway's members "
              "that the message reached. A dash: the counter is absent (a room without gateways has none). "
              "**connect**: seconds until all were subscribed, connects/s, and the worker's CPU seconds meanwhile. "
              "**open files**: the busiest server process's open files once all were subscribed, and per member.", "",
              "| members | placement | connect s (connects/s; worker CPU s) | room's own sockets | members on gateways (gateways) "
              "| gateway calls per message (unpaced / paced) | failed gateway calls | open files (per member) |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for m in sizes:
        for p in PLACEMENTS:
            r = one("scale", placement=p, members=m)
            if not r or r.get("skipped") or r.get("failed"):
                continue
            stats = r.get("stats_connected") or {}
            on_gateways, gateways = gateway_members(stats)
            failed = gateway_calls((run_of(r, "paced") or run_of(r, "unpaced") or {}).get("stats_after"))[1]
            connect_cpu = sum(v for k, v in (r.get("connect_server_cpu_by_process") or {}).items() if k == "workerd")
            per = [calls_per_message(run_of(r, mode)) for mode in ("unpaced", "paced")]
            files = max((r.get("server_open_files_connected") or {}).values(), default=None)
            files_cell = f"{fmt(files)} ({fmt(files / r['connected'], 1)})" if files and r.get("connected") else "—"
            lines.append(f"| {m:,} | {p} | {fmt(r['connect_seconds'], 1)} ({fmt(r['connects_per_second'])}; {fmt(connect_cpu, 1)}) "
                         f"| {fmt(stats.get('sockets'))} | {fmt(on_gateways)}" + (f" ({gateways})" if gateways is not None else "")
                         + f" | {' / '.join(fmt(x, 2) for x in per)} | {fmt(failed)} | {files_cell} |")
    for r in scale_results:
        if r.get("skipped"):
            lines.append(f"\n{r['members']:,} members, {r.get('placement')}: not run ({r['skipped']}).")
        elif r.get("failed"):
            lines.append(f"\n{r['members']:,} members, {r.get('placement')}: the run failed; the end of its log: "
                         f"`{r['failed'].strip().splitlines()[-1] if r['failed'].strip() else 'empty'}`.")
        elif r.get("connect_failed") or r.get("members_lost"):
            lines.append(f"\n{r['members']:,} members, {r.get('placement')}: {r.get('connect_failed', 0):,} failed to connect"
                         f" (first: {r.get('connect_error') or 'no error recorded'}), {r.get('members_lost', 0):,} lost during the run.")

    if seed_results:
        seed = {v: one("seed-app", variant=v) for v in ("before", "after")}
        lines += ["", "### A Spring tutorial's app: 100 chat rooms × 10 members on one endpoint", "",
                  "1,000 clients connect to the one endpoint `/ws-stomp` (a plain WebSocket, STOMP 1.2), 10 for each of 100 "
                  "chat rooms; each subscribes to `/sub/chat/room/{i}` and sends the tutorial's JSON chat message "
                  "(`{\"type\": \"TALK\", \"roomId\": \"{i}\", \"sender\": …, \"message\": …}`) to `/pub/chat/message`, "
                  "routed by its body, 2 messages/s each for 10 s (offsets spread over the interval). Each member hears every "
                  "message of its room, its own included. **before**: on the direct server: no `scaling.room_destinations`, "
                  "the endpoint is one object holding all 1,000 sockets and every chat room. **after**: on the sharded "
                  "server, `scaling.room_destinations: [\"/sub/chat/room/{room}\"]`: each chat room is an object of its own "
                  "and the sockets are on the endpoint's gateway objects. **worker CPU**: workerd's from the moment all were "
                  "subscribed to the end (2 s after the last send), the share of that window it was busy, and its CPU over "
                  "the messages delivered in that time (deliveries over 10: a saturated server's backlog, published but not "
                  "yet delivered, is not counted). The counters of the endpoint's room (`/rooms/ws-stomp/stats`) and of the "
                  "100 chat rooms (`/rooms/bench-{i}/stats`, summed) are read once all are subscribed: their own sockets, "
                  "their members on gateways and the (chat room, gateway) pairs those are spread over. **gateway calls**: "
                  "the chat rooms' calls to gateways from then until just after the run (a saturated server may still owe "
                  "some), over the messages published: a call carries whatever the room had for that gateway meanwhile, "
                  "so a busy room makes fewer calls than messages × gateways.", "",
                  "| | before: the endpoint is one object | after: one object per chat room |", "| --- | --- | --- |"]

        def stats_of(r, when, room):
            return next((s.get("stats") or {} for s in (r or {}).get(when) or [] if s.get("url", "").endswith(f"/rooms/{room}/stats")), {})

        def cell(v, f):
            r = seed[v]
            if not r:
                return "—"
            if r.get("failed"):
                return "failed"
            return f(r)

        def latency_cells(r):
            l = r.get("latency_ms") or {}
            return f"{fmt(l.get('p50'), 1)} / {fmt(l.get('p99'), 1)} / {fmt(l.get('p999'), 1)}"

        def cpu_cells(r):
            seconds = worker_seconds(r)
            handled = r["delivered"] / r["members"] if r.get("members") else None
            per = 1e6 * seconds / handled if seconds is not None and handled else None
            window = r.get("server_cpu_window_seconds")
            busy = f" ({seconds / window:.0%} of {fmt(window, 1)} s)" if seconds is not None and window else ""
            return f"{fmt(seconds, 2)} s{busy}; {fmt(per, 0)} µs per message delivered"

        def chat_rooms_cells(r):
            s = r.get("rooms_stats_subscribed") or {}
            if not s:
                return "—"
            text = f"{fmt(s.get('sockets'))} own sockets in {fmt(s.get('rooms'))} rooms"
            if s.get("members") is not None:
                text += f", {fmt(s['members'])} members on gateways ({fmt(s.get('room_gateway_pairs'))} room–gateway pairs)"
            return text + (f"; {fmt(s['unanswered'])} did not answer" if s.get("unanswered") else "")

        def chat_calls_cells(r):
            before, after = r.get("rooms_stats_subscribed") or {}, r.get("rooms_stats_after") or {}
            if "gateway_calls_sent" not in after:
                return "—"
            # Counters start again when a room wakes; summed over rooms, a smaller sum counts from then.
            sent, failed = (after.get(k, 0) - before.get(k, 0) if after.get(k, 0) >= before.get(k, 0) else after.get(k, 0)
                            for k in ("gateway_calls_sent", "gateway_calls_failed"))
            return f"{fmt(sent)} ({fmt(sent / r['published'], 2)} per message)" + (f", {fmt(failed)} failed" if failed else "")

        def room_cells(room):
            def f(r):
                s = stats_of(r, "stats_subscribed", room)
                on_gateways, gateways = gateway_members(s)
                text = f"{fmt(s.get('sockets'))} own sockets"
                if on_gateways is not None:
                    text += f", {fmt(on_gateways)} members on gateways" + (f" ({gateways})" if gateways is not None else "")
                return text
            return f

        rows = [
            ("messages published", lambda r: fmt(r["published"])),
            ("delivered (of published × 10)", lambda r: f"{r['delivered']:,} of {rooms_expected(r):,}"
             + ("" if r["delivered"] >= rooms_expected(r) else " (incomplete)")),
            ("deliveries/s", lambda r: fmt(r["delivered_per_second"])),
            ("latency p50 / p99 / p99.9 ms", latency_cells),
            ("worker CPU", cpu_cells),
            ("`/rooms/ws-stomp` (the endpoint's room)", room_cells("ws-stomp")),
            ("the 100 chat rooms, summed", chat_rooms_cells),
            ("the chat rooms' gateway calls", chat_calls_cells),
        ]
        for name, f in rows:
            lines.append(f"| {name} | {cell('before', f)} | {cell('after', f)} |")

codec = one("codec")
wasm = one("wasm")
lines += ["", "## Codec (native, one core)", ""]
if codec:
    lines += ["| operation | MB/s | frames/s | heap allocations per frame |", "| --- | --- | --- | --- |",
              f"| parse ({codec['frame_bytes']}-byte SEND frames) | {fmt(codec['parse_mb_per_s'])} | {fmt(codec['parse_frames_per_s'])} | {codec['parse_allocations_per_frame']:.1f} |",
              f"| serialize | {fmt(codec['serialize_mb_per_s'])} | {fmt(codec['serialize_frames_per_s'])} | {codec['serialize_allocations_per_frame']:.1f} |"]
if wasm:
    lines += ["", "## Worker size", "", f"`build/index_bg.wasm`: {wasm['raw_bytes']:,} bytes raw, {wasm['gzip_bytes']:,} bytes gzip -9 "
              f"({wasm['gzip_bytes'] / 1024:.0f} KiB; target ≤ 300 KB)."]

# Targets, computed from the figures above. Each one that compares with the floor is also computed
# against the durable floor, which pays the platform's cost of storing each message as stomp-rooms does:
# what is missed against the floor but met against the durable floor is the platform's cost of
# durability; what is missed against both is ours.
def unpaced(system, n):
    r = one("fanout", system=system, subscribers=n, mode="unpaced")
    return r and r.get("delivered_per_second")


def paced(system, n):
    r = one("fanout", system=system, subscribers=n, mode="paced")
    return r if r and r.get("latency_ms") else None


def throughput_target(ours, theirs, at_least, unit):
    if not (ours and theirs):
        return None
    return f"{ours / theirs:.2f}× ({fmt(ours)} vs {fmt(theirs)} {unit})", ours >= at_least * theirs


def p99_within(ours, theirs, ms):
    if not (ours and theirs):
        return None
    a, b = ours["latency_ms"]["p99"], theirs["latency_ms"]["p99"]
    return f"{a - b:+,.1f} ms ({fmt(a, 1)} vs {fmt(b, 1)} ms)", a - b <= ms


def complete_and_p99(ours, theirs, expected, times):
    """Every message delivered (by `ours`) and its p99 at most `times` the reference's."""
    if not (ours and theirs and ours.get("latency_ms") and theirs.get("latency_ms")):
        return None
    a, b = ours["latency_ms"]["p99"], theirs["latency_ms"]["p99"]
    delivered, due = ours["delivered"], expected(ours)
    return (f"{delivered:,} of {due:,} delivered; p99 {ratio(a, b)} ({fmt(a, 1)} vs {fmt(b, 1)} ms)",
            delivered >= due and b > 0 and a <= times * b)


def lowload_within(reference, ms):
    ours, theirs = lowload_p99("stomp-rooms"), lowload_p99(reference)
    if not (ours and theirs):
        return None
    return (f"{ours[0] - theirs[0]:+,.1f} ms (median p99 {fmt(ours[0], 1)} vs {fmt(theirs[0], 1)} ms over {ours[2]} and "
            f"{theirs[2]} runs; worst {fmt(ours[1], 1)} vs {fmt(theirs[1], 1)} ms)", ours[0] - theirs[0] <= ms)


def rooms_result(system):
    r = one("rooms", system=system)
    return r if r and r.get("latency_ms") else None


TARGETS = []  # (what, function of the reference system giving (measured, met) or None)
def fanout_target(n, ref):
    """Issue 24's: at least 1.5x the reference's deliveries/s, and ahead of RabbitMQ's."""
    outcome = throughput_target(unpaced("stomp-rooms", n), unpaced(ref, n), 1.5, "deliveries/s")
    rabbit = unpaced("rabbitmq-web-stomp", n)
    if outcome is None or not rabbit:
        return outcome
    ahead = unpaced("stomp-rooms", n) > rabbit
    return (f"{outcome[0]}; RabbitMQ {fmt(rabbit)}: {'ahead' if ahead else 'behind'}", outcome[1] and ahead)


for n in (10, 100, 1000):
    TARGETS.append((f"unpaced fan-out into {n:,} subscribers: deliveries/s ≥ 1.5× the reference's and ahead of RabbitMQ's",
                    lambda ref, n=n: fanout_target(n, ref)))
TARGETS += [
    ("1,000 msgs/s into 10 subscribers: p99 within 5 ms of the reference's",
     lambda ref: p99_within(paced("stomp-rooms", 10), paced(ref, 10), 5)),
    (f"low load, {LOWLOAD}: median p99 over runs within 5 ms of the reference's",
     lambda ref: lowload_within(ref, 5)),
    ("1,000 msgs/s into 100 subscribers: every message delivered, p99 ≤ 2× the reference's",
     lambda ref: complete_and_p99(paced("stomp-rooms", 100), paced(ref, 100), lambda r: r["expected"], 2)),
    ("100 rooms × 10 members: every message delivered, p99 ≤ 2× the reference's",
     lambda ref: complete_and_p99(rooms_result("stomp-rooms"), rooms_result(ref), rooms_expected, 2)),
    ("connection storm (with CONNECT), median of the runs: connects/s ≥ 0.8× the reference's",
     lambda ref: throughput_target(storm_rate("stomp-rooms"), storm_rate(ref), 0.8, "connects/s")),
]


def met(outcome):
    return "—" if outcome is None else ("yes" if outcome[1] else "no")


lines += ["", "## Targets", "",
          "Each comparison is computed twice: against the floor (the target) and against the durable floor, which",
          "also stores every message. A target missed against the floor but met against the durable floor is the",
          "platform's cost of durability; one missed against both is the cost of our code.", "",
          "| target | measured against the floor | met | against the durable floor | met |", "| --- | --- | --- | --- | --- |"]
for what, check in TARGETS:
    floor, durable = check("floor"), check("floor-durable")
    lines.append(f"| {what} | {floor[0] if floor else '—'} | {met(floor)} | {durable[0] if durable else '—'} | {met(durable)} |")
idle = one("idle", system="stomp-rooms")
if idle and idle.get("room_stats_after"):
    after, before = idle["room_stats_after"], idle.get("room_stats_before") or {}
    calls = after.get("events_since_wake", {})
    if after.get("wakes") == before.get("wakes"):
        calls = {k: v - (before.get("events_since_wake") or {}).get(k, 0) for k, v in calls.items()}
    heart_beat_wakes = calls.get("messages", 0) + calls.get("alarms", 0)
    lines.append(f"| idle: 0 wakes from heart-beats | {heart_beat_wakes} message or alarm calls in 70 s of 1,000 pinging clients | {'yes' if heart_beat_wakes == 0 else 'no'} | — | — |")
if wasm:
    lines.append(f"| wasm ≤ 300 KB gzip | {wasm['gzip_bytes'] / 1000:.0f} KB | {'yes' if wasm['gzip_bytes'] <= 300_000 else 'no'} | — | — |")

# Where the limit sits: the busiest process during the unpaced fan-out.
lines += ["", "## Where the limit sits", ""]
for n in (10, 100, 1000):
    r = one("fanout", system="stomp-rooms", subscribers=n, mode="unpaced")
    if not r:
        continue
    split = r.get("server_cpu_by_process") or {}
    workerd = split.get("workerd", r.get("server_cpu_seconds") or 0)
    lines.append(
        f"- {n} subscribers: workerd used {workerd:.2f} CPU s of {r['seconds']:.2f} s wall on its pinned core "
        f"({100 * workerd / r['seconds']:.0f}%), wrangler's node {split.get('node', 0):.2f} s, the load generator "
        f"{r.get('client_cpu_seconds', 0):.2f} s ({100 * r.get('client_cpu_seconds', 0) / r['seconds']:.0f}% of its core)."
    )
lines += [
    "",
    "The server's core is saturated by workerd while wrangler's local proxy and the load generator have",
    "room to spare, so the ceiling is the Durable Object's work inside workerd. The floors run on the same",
    "workerd with no STOMP work: the gap between the floor and the durable floor is the platform's cost of",
    "storing each message (one SQLite INSERT and its commit); the gap between the durable floor and",
    "stomp-rooms is the cost of our code per message (wasm entry, frame parsing, routing, per-subscriber",
    "bookkeeping). CPU per delivery, above, shows the same split in microseconds.",
]

# The ladder: one room, one publish rate, each way of receiving in turn (docs/ladder.json, one
# invocation of scripts/ladder.sh, either alone or from scripts/bench.sh).
LADDER_NAMES = {"short": "short polling", "long": "long polling", "sse": "server-sent events", "ws": "WebSocket (STOMP)",
                "sockjs-ws": "SockJS websocket", "sockjs-stream": "SockJS xhr-streaming", "sockjs-es": "SockJS eventsource",
                "sockjs-poll": "SockJS xhr-polling"}
ladder_path = docs / "ladder.json"
ladder = json.loads(ladder_path.read_text()) if ladder_path.exists() else None
ladder_runs = [r for r in (ladder or {}).get("runs", []) if r.get("transport") in LADDER_NAMES]
lines += ["", "## The ladder: polling, long polling, server-sent events, WebSocket, and SockJS", ""]
if not ladder_runs:
    lines.append("Not measured yet: run `bash scripts/ladder.sh`.")
else:
    first = ladder_runs[0]
    short = next((r for r in ladder_runs if r["transport"] == "short"), None)
    long_poll = next((r for r in ladder_runs if r["transport"] == "long"), None)
    by = ladder.get("by", "scripts/ladder.sh")
    idle = ladder.get("idle") or {}
    idle_rate = idle["server_cpu_seconds"] / idle["seconds"] if idle.get("seconds") else None
    lines += [
        f"Measured {ladder['date'][:10]} by `{by}`" + (" (its ladder step, `scripts/ladder.sh`, on its stomp-rooms server)" if by != "scripts/ladder.sh" else "")
        + f", all rows in one invocation and measured apart from the sections above; on {ladder['machine']}; {ladder['versions']};"
        f" commit {ladder.get('commit', 'not recorded')}.",
        "Raw figures: [ladder.json](ladder.json).",
        "",
        f"One room, one publisher: a STOMP client on one WebSocket SENDs {first['rate']:g} messages/s for {first['seconds']:g} s "
        f"({first['published']:,} messages, {first['body_bytes']}-byte bodies) to `/topic/ladder`, and {first['receivers']} receivers "
        "read that topic, all of them one way per run (a fresh room each run; the SockJS runs a fresh topic of the",
        "`/ws-stomp` endpoint's room):",
        "",
        f"- short polling: `GET /rooms/{{room}}/topic/ladder?after={{next_after}}` every "
        f"{short['interval_ms'] if short else '—'} ms, the receivers spread evenly over the interval;",
        f"- long polling: the same with `&wait={long_poll['wait_s'] if long_poll else '—'}`, re-issued as soon as it answers;",
        "- server-sent events: one `GET` with `Accept: text/event-stream` per receiver, held open;",
        "- WebSocket: one STOMP connection per receiver, subscribed to the topic;",
        "- SockJS (`/ws-stomp`, as Spring's clients connect): one SockJS session per receiver carrying STOMP, over the",
        "  `websocket` transport, or over `xhr_streaming`, `eventsource` or `xhr` polling with `xhr_send` for what the",
        "  client sends (CONNECT, SUBSCRIBE).",
        "",
        "Server on CPU 0 (`wrangler dev`, `LOAD_TEST_SETTINGS`), the client (`benches/ladder.mjs`, Node, publisher and",
        "receivers in one process) on CPU 1. Columns: **p50 / p99 ms**, publish → receipt, from the send time the",
        "publisher writes into each body, read on the same clock; **deliveries**, messages received (each counted once",
        "per receiver) of messages published × receivers; **requests per delivery**, the HTTP requests (WebSocket",
        "upgrades for WebSocket) the receivers made from their first connection to the end of the window, divided by",
        "deliveries (the publisher's one WebSocket is the same in every run and not counted); **server CPU s**, CPU",
        "time of the stomp-rooms `wrangler dev` process group (workerd and wrangler's node proxy; `/proc`, 10 ms",
        "ticks) over the window, which runs from the first publish until every receiver has every message;",
        "**CPU µs per delivery**, that divided by deliveries. Each row includes the publishing itself (the same",
        "in every run) and the server's idle cost"
        + (f" ({idle_rate:.3f} CPU s per second with no clients, measured just before the runs)." if idle_rate is not None else "."),
        "",
        "| transport | how | p50 ms | p99 ms | deliveries | requests per delivery | server CPU s | window s | CPU µs per delivery |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in ladder_runs:
        l = r.get("latency_ms") or {}
        got = f"{r['delivered']:,} of {r['expected']:,}" + ("" if r.get("complete") else " (incomplete)")
        per = r.get("requests_per_delivery")
        lines.append(f"| {LADDER_NAMES[r['transport']]} | {r['how']} | {fmt(l.get('p50'), 1)} | {fmt(l.get('p99'), 1)} | {got} "
                     f"| {'—' if per is None else f'{per:.4f}'} ({r['requests']:,} requests) | {fmt(r.get('server_cpu_seconds'), 2)} "
                     f"| {fmt(r.get('window_seconds'), 1)} | {fmt(r.get('cpu_us_per_delivery'), 1)} |")
    saturated = [r for r in ladder_runs if r.get("server_cpu_seconds") and r.get("window_seconds")
                 and r["server_cpu_seconds"] >= 0.9 * r["window_seconds"]]
    for r in saturated:
        lines.append(f"\n{LADDER_NAMES[r['transport']]}: the server was busy for {r['server_cpu_seconds'] / r['window_seconds']:.0%} of the "
                     "window (one core), so its latency is mostly requests queueing behind each other.")
    troubled = [r for r in ladder_runs if not r.get("complete") or r.get("errors") or r.get("duplicates")]
    for r in troubled:
        what = ", ".join(f"{k} ({v}×)" for k, v in (r.get("errors") or {}).items()) or "none recorded"
        lines.append(f"\n{LADDER_NAMES[r['transport']]}: {r['missing']:,} deliveries missing, {r.get('duplicates', 0):,} "
                     f"duplicates; receiver errors: {what}.")
    floor = ladder.get("request_floor") or {}
    if floor.get("requests"):
        per_request_ms = floor["server_cpu_seconds"] * 1000 / floor["requests"]
        lines += ["", f"**What a request costs by itself.** {floor['requests']} requests that the Worker answers without any room "
                  f"(a room's address without a WebSocket upgrade, `426`), one at a time, cost the same server {per_request_ms:.1f} ms "
                  "of CPU each under `wrangler dev` (workerd and wrangler's proxy). That is most of what each poll costs above: the "
                  "rungs that make a request per message pay it per message, the rungs that hold one connection pay it once."]
    lines += ["", "![Latency, requests and server CPU per delivery by transport](ladder.png)"]

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    names = [LADDER_NAMES[r["transport"]].replace(" (STOMP)", "") for r in ladder_runs]
    xs = range(len(ladder_runs))
    p50 = [max((r.get("latency_ms") or {}).get("p50") or 0, 0.01) for r in ladder_runs]
    p99 = [max((r.get("latency_ms") or {}).get("p99") or 0, 0.01) for r in ladder_runs]
    axes[0].bar([x - 0.2 for x in xs], p50, width=0.4, label="p50", color="C0")
    axes[0].bar([x + 0.2 for x in xs], p99, width=0.4, label="p99", color="C1")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("publish → receipt latency (ms, log scale)")
    axes[0].legend(fontsize=8)
    panels = ((axes[1], "requests_per_delivery", "receiver requests per delivery", "C2"),
              (axes[2], "cpu_us_per_delivery", "server CPU µs per delivery", "C3"))
    for ax, key, label, color in panels:
        values = [r.get(key) or 0 for r in ladder_runs]
        ax.bar(list(xs), values, color=color)
        ax.set_ylabel(label)
        for x, v in zip(xs, values):
            ax.annotate(f"{v:.3g}", (x, v), ha="center", va="bottom", fontsize=7)
    if all(r.get("requests_per_delivery") for r in ladder_runs):
        axes[1].set_yscale("log")
        axes[1].set_ylabel("receiver requests per delivery (log scale)")
    for ax in axes:
        ax.set_xticks(list(xs))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.grid(True, axis="y", which="both", alpha=0.3)
    interval = f", short polling every {short['interval_ms']} ms" if short else ""
    fig.suptitle(f"The ladder: {first['receivers']} receivers, {first['rate']:g} messages/s for {first['seconds']:g} s{interval}"
                 f" ({ladder['date'][:10]})", fontsize=10)
    fig.tight_layout()
    fig.savefig(docs / "ladder.png", dpi=120)
    plt.close(fig)

profiles = sorted(docs.glob("profile-*.md"))
if profiles:
    lines += [
        "",
        "## Where the time goes: V8 CPU profiles",
        "",
        "Written by `PROFILE_DOCS=1 bash scripts/profile.sh ...` (see the README), a separate run from the",
        "tables above. Categories: our wasm (the Rust crate), JS glue (wasm-bindgen and workers-rs",
        "JavaScript), runtime APIs (`WebSocket.send`, SQLite `exec`, alarms: the platform's work on our",
        "behalf), native (V8 and workerd outside JavaScript, garbage collection).",
    ]
    for profile in profiles:
        lines += [""] + profile.read_text().strip().splitlines()

(docs / "benchmarks.md").write_text("\n".join(lines) + "\n")
(docs / "benchmarks.json").write_text(
    json.dumps({"date": measured_on if re.fullmatch(r"\d{4}-\d{2}-\d{2}", measured_on) else None,
                "machine": machine, "versions": versions, "results": results}, indent=1) + "\n")

fig, ax = plt.subplots(figsize=(8, 5))
for color, s in enumerate(SYSTEMS):  # one colour per system, one line style per fan-out size
    for n, style in ((10, ":"), (100, "-"), (1000, "--")):
        r = one("fanout", system=s, subscribers=n, mode="paced")
        if r and r.get("cdf_ms"):
            xs = [max(p[0], 0.01) for p in r["cdf_ms"]]
            ys = [p[1] for p in r["cdf_ms"]]
            ax.plot(xs, ys, style, color=f"C{color}", label=f"{NAMES[s]}, {n} subscribers")
ax.set_xscale("log")
ax.set_xlabel("publish → delivery latency (ms, log scale)")
ax.set_ylabel("fraction of deliveries")
ax.set_title("Fan-out at 1,000 messages/s")
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(docs / "latency-cdf.png", dpi=120)
print("\n".join(lines))
