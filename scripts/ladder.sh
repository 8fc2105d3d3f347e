#!/usr/bin/env bash
# The ladder benchmark: for one room and one publish rate, delivery latency, server CPU and
# requests per delivered message when the receivers use short polling, long polling,
# server-sent events or STOMP over WebSocket. Writes docs/ladder.json (every run of this one
# invocation, with machine, versions and date) and re-renders docs/benchmarks.md and
# docs/ladder.png from it (benches/report.py, with the rest of the report's existing data).
#
#   bash scripts/ladder.sh
#
# Builds the release Worker, serves it with `wrangler dev` on CPU 0 (port 8811, the same flags
# and LOAD_TEST_SETTINGS as scripts/bench.sh) and runs benches/ladder.mjs on CPU 1, one
# transport at a time, waiting for the server to go idle between runs. Takes about 6 minutes
# once the Worker is built (a first build takes longer). Run `npm run setup` first.
#
# Settings (environment): LADDER_RECEIVERS (10), LADDER_RATE (messages/s, 20), LADDER_SECONDS
# (20), LADDER_INTERVAL_MS (the short-polling interval, 1000), LADDER_WAIT_S (the long poll's
# wait, 25), LADDER_BODY_BYTES (100), LADDER_TRANSPORTS ("short long sse ws sockjs-ws
# sockjs-stream sockjs-es sockjs-poll").
#
# scripts/bench.sh calls this with LADDER_SERVER_GROUP (the process group of its running
# stomp-rooms `wrangler dev`) and LADDER_PORT: then nothing is built or started, and the report
# is left to bench.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

WORK="$ROOT/.bench"
RECEIVERS="${LADDER_RECEIVERS:-10}"
RATE="${LADDER_RATE:-20}"
RUN_SECONDS="${LADDER_SECONDS:-20}"
INTERVAL_MS="${LADDER_INTERVAL_MS:-1000}"
WAIT_S="${LADDER_WAIT_S:-25}"
BODY_BYTES="${LADDER_BODY_BYTES:-100}"
read -r -a TRANSPORTS <<< "${LADDER_TRANSPORTS:-short long sse ws sockjs-ws sockjs-stream sockjs-es sockjs-poll}"
PORT="${LADDER_PORT:-8811}"
URL="http://127.0.0.1:$PORT"
step() { echo "ladder: [$(date +%H:%M:%S)] $*" >&2; }
mkdir -p "$WORK"

for transport in "${TRANSPORTS[@]}"; do
    case "$transport" in short|long|sse|ws|sockjs-ws|sockjs-stream|sockjs-es|sockjs-poll) ;; *)
        echo "ladder: unknown transport '$transport' in LADDER_TRANSPORTS; use short, long, sse, ws, sockjs-ws, sockjs-stream, sockjs-es, sockjs-poll." >&2; exit 2 ;;
    esac
done
source "$ROOT/scripts/measure.sh"

if [ -n "${LADDER_SERVER_GROUP:-}" ]; then
    GROUP="$LADDER_SERVER_GROUP"
    OWN_SERVER=0
    step "using the running stomp-rooms server (process group $GROUP) at $URL"
else
    OWN_SERVER=1
    if curl -s -o /dev/null "$URL/"; then
        echo "ladder: something already answers on port $PORT (scripts/bench.sh or scripts/dev.sh?); stop it, or set LADDER_PORT to a free port." >&2
        exit 1
    fi
    step "installing matplotlib for the report, if missing"
    if [ ! -x "$WORK/venv/bin/python" ]; then
        python3 -m venv "$WORK/venv" && "$WORK/venv/bin/pip" install -q matplotlib
    fi
    step "building the release Worker"
    bash scripts/build.sh >&2

    step "starting stomp-rooms under wrangler dev on CPU 0 (port $PORT)"
    rm -rf "$WORK/state-ladder"
    setsid taskset -c 0 env STOMP_ROOMS_SKIP_BUILD=1 wrangler dev -c "$(measurement_config)" --port "$PORT" --inspector-port 9411 \
        --var "ROOM_SETTINGS:$LOAD_TEST_SETTINGS" \
        --persist-to "$WORK/state-ladder" >"$WORK/ladder-server.log" 2>&1 &
    GROUP=$!
    trap 'kill -TERM -- "-$GROUP" 2>/dev/null || kill -TERM "$GROUP" 2>/dev/null || true' EXIT
    wait_for_server "$URL" "$WORK/ladder-server.log" ladder || exit 1
fi

server_pids() { group_pids "$GROUP"; }
quiet() { wait_until_idle server_pids; }
ladder() { taskset -c 1 node benches/ladder.mjs --url "$URL" --interval-ms "$INTERVAL_MS" --wait-s "$WAIT_S" \
    --body-bytes "$BODY_BYTES" "$@"; }

# Warm-up, not recorded: the first requests down each path pay for compiling it, and doubles as
# a check that the server speaks every transport before the long runs.
for transport in "${TRANSPORTS[@]}"; do
    step "warm-up: $transport, 2 receivers, 3 s"
    if ! ladder --transport "$transport" --receivers 2 --rate "$RATE" --seconds 3 --pids "$(group_pids "$GROUP")" \
        > "$WORK/ladder-warmup-$transport.json"; then
        echo "ladder: the $transport warm-up failed (above); the server's log is $WORK/ladder-server.log (or bench.sh's rooms.log)." >&2
        exit 1
    fi
done

quiet
step "idle baseline: the server's CPU for 10 s with no clients"
pids="$(group_pids "$GROUP")"
idle_before=$(cpu_ticks "$pids"); sleep 10; idle_after=$(cpu_ticks "$pids")
IDLE_CPU_SECONDS=$(awk -v t=$(( idle_after - idle_before )) 'BEGIN { printf "%.2f", t / 100 }')

# What an HTTP request costs the server before a room does anything: requests the Worker
# answers itself (a room's address without a WebSocket upgrade gets 426), one at a time.
quiet
FLOOR_REQUESTS=300
step "request floor: $FLOOR_REQUESTS requests the Worker answers without a room"
pids="$(group_pids "$GROUP")"
floor_before=$(cpu_ticks "$pids")
taskset -c 1 node -e '
const [url, n] = [process.argv[1], Number(process.argv[2])];
for (let i = 0; i < n; i++) await (await fetch(url)).arrayBuffer();
' "http://127.0.0.1:$PORT/rooms/ladder-floor" "$FLOOR_REQUESTS" --input-type=module
floor_after=$(cpu_ticks "$pids")
FLOOR_CPU_SECONDS=$(awk -v t=$(( floor_after - floor_before )) 'BEGIN { printf "%.2f", t / 100 }')

RUNS="$WORK/ladder-runs.jsonl"
: > "$RUNS"
for transport in "${TRANSPORTS[@]}"; do
    quiet
    how="$transport"; [ "$transport" = short ] && how="short, every $INTERVAL_MS ms"
    step "$how: $RECEIVERS receivers, $RATE msg/s for $RUN_SECONDS s"
    if ! ladder --transport "$transport" --receivers "$RECEIVERS" --rate "$RATE" --seconds "$RUN_SECONDS" \
        --pids "$(group_pids "$GROUP")" > "$WORK/ladder-$transport.json"; then
        echo "ladder: the $transport run failed (above); see $WORK/ladder-server.log (or bench.sh's rooms.log)." >&2
        exit 1
    fi
    cat "$WORK/ladder-$transport.json" >> "$RUNS"
    python3 - "$WORK/ladder-$transport.json" <<'EOF' >&2
import json, sys
r = json.load(open(sys.argv[1]))
l = r.get("latency_ms") or {}
print(f"ladder: {r['transport']}: {r['delivered']:,} of {r['expected']:,} deliveries, p50 {l.get('p50')} ms, p99 {l.get('p99')} ms, "
      f"{r['requests']:,} requests, server CPU {r['server_cpu_seconds']} s")
if not r["complete"]:
    print(f"ladder: WARNING: {r['transport']} lost {r['missing']:,} deliveries; errors: {r['errors']}. The report marks it incomplete.")
EOF
done

MACHINE="$(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/Mem:/ {print $2}') GiB"
VERSIONS="workerd $(node_modules/.bin/workerd --version 2>/dev/null | awk '{print $2}'), wrangler $(wrangler --version 2>/dev/null | tail -1), Node $(node --version)"
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[ -z "$(git status --porcelain -- src Cargo.toml Cargo.lock wrangler.toml 2>/dev/null)" ] || COMMIT="$COMMIT with uncommitted changes"
python3 - "$RUNS" "$MACHINE" "$VERSIONS" "$COMMIT" "$IDLE_CPU_SECONDS" "$OWN_SERVER" "$LOAD_TEST_SETTINGS" \
    "$FLOOR_REQUESTS" "$FLOOR_CPU_SECONDS" <<'EOF'
import datetime, json, sys
runs_path, machine, versions, commit, idle_cpu, own_server, settings, floor_n, floor_cpu = sys.argv[1:]
runs = [json.loads(line) for line in open(runs_path) if line.strip()]
ladder = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "by": "scripts/ladder.sh" if own_server == "1" else "scripts/bench.sh",
    "machine": machine,
    "versions": versions,
    "commit": commit,
    "room_settings": json.loads(settings),
    "idle": {"seconds": 10, "server_cpu_seconds": float(idle_cpu)},
    "request_floor": {"requests": int(floor_n), "server_cpu_seconds": float(floor_cpu)},
    "runs": runs,
}
open("docs/ladder.json", "w").write(json.dumps(ladder, indent=1) + "\n")
EOF
step "wrote docs/ladder.json"

if [ "$OWN_SERVER" = 1 ]; then
    if [ -f docs/benchmarks.json ]; then
        step "re-rendering docs/benchmarks.md (the other sections from docs/benchmarks.json) and docs/ladder.png"
        "$WORK/venv/bin/python" benches/report.py > /dev/null
    else
        step "docs/benchmarks.json is absent, so docs/benchmarks.md was not rendered: run scripts/bench.sh for the whole report"
    fi
fi
step "done"
