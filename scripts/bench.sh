#!/usr/bin/env bash
# Runs the benchmark comparison and writes docs/benchmarks.md, docs/benchmarks.json,
# docs/latency-cdf.png, docs/ladder.json and docs/ladder.png. In one run it measures, side by side:
#   1. stomp-rooms under `wrangler dev` (release build),
#   2. the floor: benches/floor, a Durable Object that rebroadcasts text with no STOMP work,
#   3. the durable floor: the same worker's /durable/{room} object, which also INSERTs each
#      message into SQLite (its own `wrangler dev`, so its CPU and memory are measured apart),
#   4. RabbitMQ Web-STOMP (Debian's rabbitmq-server with rabbitmq_web_stomp),
#   5. stomp-rooms again with webhooks on for every message (fan-out only), POSTing to
#      benches/webhook-receiver.mjs: the fan-out path with its outbox beside it.
# Scenarios on 1-4: fan-out unpaced (10/100/1000 subscribers) and paced at 1,000/s (10/100),
# 100 rooms x 10 members, a connection storm (2,000 sockets, STORM_RUNS times (default 3) per
# system, interleaved; the floor also with its clients sending CONNECT, which it answers), low
# load (100 messages/s into 10 subscribers for 10 s, LOWLOAD_RUNS times (default 5) per system,
# interleaved), and idle clients. Every fan-out
# also counts, at its subscribers, the WebSocket messages received and the STOMP MESSAGE frames
# parsed from them (one WebSocket message may carry several): `ws_messages_per_delivery`.
# It also runs the ladder (scripts/ladder.sh: short polling, long polling, SSE, WebSocket and
# SockJS receivers of one stomp-rooms room) on the stomp-rooms server, writing docs/ladder.json.
# Then the scale scenarios (issue 21, scripts/bench-scale.sh), on two more stomp-rooms servers
# of their own (`direct`: `scaling.members_per_object: 0`, a room never spreads over gateway
# objects; `sharded`: the default `scaling` plus `room_destinations: ["/sub/chat/room/{room}"]`):
#   6. one room, M members (SCALE_MEMBERS, "1000 5000 10000"; a size the open-file limit cannot
#      hold is recorded as not run, and the largest that fits runs instead) and one publisher,
#      unpaced then paced, on each server;
#   7. a Spring tutorial's app: 100 chat rooms x 10 members on the one endpoint /ws-stomp,
#      subscribing /sub/chat/room/{i} and sending to /pub/chat/message with the room in the JSON
#      body, each member 2 messages/s for 10 s: "before" on the direct server (the endpoint is
#      one object), "after" on the sharded one (one object per chat room).
# The servers run on CPU 0 and the load generator on CPU 1 (taskset). Takes about 40 minutes.
#
#   bash scripts/bench.sh          # everything, rewriting docs/benchmarks.{md,json} and the plots
#   bash scripts/bench.sh scale    # only 6 and 7 (about 10 minutes): their results replace the
#                                  # scale results in docs/benchmarks.json, and the report is
#                                  # re-rendered with every other figure as it was
#   bash scripts/bench.sh core     # quick, for iterating (about 6 minutes): only 1, 2 and 4, only
#                                  # the unpaced fan-out, the storm and low load; writes
#                                  # .bench/core.json and .bench/core.md (never docs/) and prints a
#                                  # side-by-side table: ratios to the floor, ahead of RabbitMQ or
#                                  # not, WebSocket messages per delivery, every low-load run's p99
#
# Run `npm run setup` first (the README's setup); this script adds RabbitMQ and matplotlib.
# Leave src/ and public/app/ alone while it runs: wrangler dev rebuilds and restarts the
# servers when they change, which drops every connection mid-measurement.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

ONLY="${1:-all}"
case "$ONLY" in
    all|scale|core) ;;
    *) echo "usage: bash scripts/bench.sh [scale|core]   (no argument: everything; scale: only the scale scenarios;" \
            "core: a quick run of the unpaced fan-out, the storm and low load for stomp-rooms, the floor and RabbitMQ)" >&2
       exit 2 ;;
esac

WORK="$ROOT/.bench"
RESULTS="$WORK/results.jsonl"
LOADGEN="$ROOT/benches/loadgen/target/release/stomp-rooms-loadgen"
ROOMS_PORT=8811 FLOOR_PORT=8812 DURABLE_PORT=8813 HOOKED_PORT=8814 RECEIVER_PORT=8815 RABBIT_WS_PORT=15674
step() { echo "bench: [$(date +%H:%M:%S)] $*" >&2; }
# Progress through the measured scenarios, "(n of total)" when the total is known (core).
SCENARIO=0 SCENARIOS_TOTAL=""
scenario_step() { SCENARIO=$((SCENARIO + 1)); step "$*${SCENARIOS_TOTAL:+ ($SCENARIO of $SCENARIOS_TOTAL)}"; }
LOWLOAD_RUNS="${LOWLOAD_RUNS:-5}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

mkdir -p "$WORK"
# Thousands of sockets on each side: raise the open-file limit as far as allowed.
ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true

step "open-file limit: $(ulimit -n)"
step "installing what only the benchmark needs (rabbitmq-server, matplotlib), if missing"
if [ "$ONLY" != scale ] && ! command -v rabbitmq-server >/dev/null; then
    as_root apt-get update -q && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends rabbitmq-server
fi
if [ ! -x "$WORK/venv/bin/python" ]; then
    python3 -m venv "$WORK/venv" && "$WORK/venv/bin/pip" install -q matplotlib
fi

step "building the load generator and the release Worker"
# Into its own target directory whatever CARGO_TARGET_DIR says: $LOADGEN is there.
cargo build --release --quiet --manifest-path benches/loadgen/Cargo.toml --target-dir benches/loadgen/target
bash scripts/build.sh >&2

PIDS_TO_STOP=()
cleanup() {
    for pid in "${PIDS_TO_STOP[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
    rabbitmqctl -n "bench@localhost" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

wait_http() { # url seconds
    for _ in $(seq 1 "$2"); do curl -s -o /dev/null "$1" && return 0; sleep 1; done
    echo "bench: $1 did not answer; see the logs in $WORK" >&2; return 1
}

source "$ROOT/scripts/measure.sh"
loadgen() { taskset -c 1 "$LOADGEN" "$@"; }
# Appends the JSON on stdin to the results, with each JSON argument's fields added.
record() { python3 -c 'import json,sys; d=json.load(sys.stdin); [d.update(json.loads(a)) for a in sys.argv[1:]]; print(json.dumps(d))' "$@" >> "$RESULTS"; }
source "$ROOT/scripts/bench-scale.sh"

if [ "$ONLY" = scale ]; then
    RESULTS="$WORK/scale-results.jsonl"
    : > "$RESULTS"
    scale_scenarios
    if [ -f docs/benchmarks.json ]; then
        step "replacing the scale results in docs/benchmarks.json and re-rendering docs/benchmarks.md"
        python3 - "$RESULTS" <<'EOF'
import json, sys
fresh = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
measured = {r.get("scenario") for r in fresh}  # a part left out (SCALE_PLACEMENTS=) keeps its results
raw = json.load(open("docs/benchmarks.json"))
raw["results"] = [r for r in raw["results"] if r.get("scenario") not in measured] + fresh
open("docs/benchmarks.json", "w").write(json.dumps(raw, indent=1) + "\n")
EOF
        "$WORK/venv/bin/python" benches/report.py > /dev/null
    else
        step "docs/benchmarks.json is absent, so the report was not rendered: run scripts/bench.sh for all of it (results: $RESULTS)"
    fi
    step "done"
    exit 0
fi

step "starting stomp-rooms (port $ROOMS_PORT), the floor (port $FLOOR_PORT)$([ "$ONLY" = all ] && echo " and the durable floor (port $DURABLE_PORT)") on CPU 0"
rm -rf "$WORK/state-rooms" "$WORK/state-floor" "$WORK/state-durable"
MEASURE_CONFIG="$(measurement_config)"
setsid taskset -c 0 env STOMP_ROOMS_SKIP_BUILD=1 wrangler dev -c "$MEASURE_CONFIG" --port "$ROOMS_PORT" --inspector-port 9411 \
    --var "ROOM_SETTINGS:$LOAD_TEST_SETTINGS" \
    --persist-to "$WORK/state-rooms" >"$WORK/rooms.log" 2>&1 &
ROOMS_GROUP=$!; PIDS_TO_STOP+=("$ROOMS_GROUP")
(cd benches/floor && exec setsid taskset -c 0 wrangler dev --port "$FLOOR_PORT" --inspector-port 9412 \
    --persist-to "$WORK/state-floor" >"$WORK/floor.log" 2>&1) &
FLOOR_GROUP=$!; PIDS_TO_STOP+=("$FLOOR_GROUP")
if [ "$ONLY" = all ]; then  # the durable floor and the webhooks run: the full run only
    # The same worker again, serving only /durable/{room} here: a process of its own keeps its CPU,
    # memory and idle figures apart from the plain floor's (the idle run drives all systems at once).
    (cd benches/floor && exec setsid taskset -c 0 wrangler dev --port "$DURABLE_PORT" --inspector-port 9413 \
        --persist-to "$WORK/state-durable" >"$WORK/durable.log" 2>&1) &
    DURABLE_GROUP=$!; PIDS_TO_STOP+=("$DURABLE_GROUP")

    step "starting stomp-rooms with webhooks on for every message (port $HOOKED_PORT) on CPU 0, its receiver (port $RECEIVER_PORT) on CPU 1"
    rm -rf "$WORK/state-hooked"
    # The load-test settings, plus a webhook for every topic's messages to the receiver.
    HOOKED_SETTINGS="$(python3 -c 'import json,sys; s=json.loads(sys.argv[1]); s["webhooks"]={"url":sys.argv[2],"destinations":["/topic/**"]}; print(json.dumps(s))' \
        "$LOAD_TEST_SETTINGS" "http://127.0.0.1:$RECEIVER_PORT/hooks")"
    setsid taskset -c 1 node benches/webhook-receiver.mjs "$RECEIVER_PORT" "$WORK/webhook-counts.json" >"$WORK/receiver.log" 2>&1 &
    RECEIVER_PID=$!; PIDS_TO_STOP+=("$RECEIVER_PID")
    setsid taskset -c 0 env STOMP_ROOMS_SKIP_BUILD=1 wrangler dev -c "$MEASURE_CONFIG" --port "$HOOKED_PORT" --inspector-port 9414 \
        --var "ROOM_SETTINGS:$HOOKED_SETTINGS" --var "WEBHOOK_SECRET:whsec_$(head -c 32 /dev/urandom | base64)" \
        --persist-to "$WORK/state-hooked" >"$WORK/hooked.log" 2>&1 &
    HOOKED_GROUP=$!; PIDS_TO_STOP+=("$HOOKED_GROUP")
fi

step "starting RabbitMQ with Web-STOMP (port $RABBIT_WS_PORT) on CPU 0"
# The server itself, not Debian's wrapper, which switches user and caps open files at 1024.
RABBIT_SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server
[ -x "$RABBIT_SERVER" ] || RABBIT_SERVER="$(command -v rabbitmq-server)"
rm -rf "$WORK/rabbit" && mkdir -p "$WORK/rabbit/mnesia" "$WORK/rabbit/log"
echo "[rabbitmq_web_stomp]." > "$WORK/rabbit/enabled_plugins"
printf 'web_stomp.tcp.port = %s\nlisteners.tcp.default = 5673\nloopback_users = none\n' "$RABBIT_WS_PORT" > "$WORK/rabbit/rabbitmq.conf"
setsid taskset -c 0 env RABBITMQ_NODENAME=bench@localhost RABBITMQ_MNESIA_BASE="$WORK/rabbit/mnesia" \
    RABBITMQ_LOG_BASE="$WORK/rabbit/log" RABBITMQ_ENABLED_PLUGINS_FILE="$WORK/rabbit/enabled_plugins" \
    RABBITMQ_CONFIG_FILE="$WORK/rabbit/rabbitmq" RABBITMQ_DIST_PORT=25673 \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none" \
    RABBITMQ_FEATURE_FLAGS_FILE="$WORK/rabbit/feature_flags" bash -c 'cd "$0" && exec "$1"' "$WORK/rabbit" "$RABBIT_SERVER" \
    >"$WORK/rabbit.log" 2>&1 &
RABBIT_GROUP=$!; PIDS_TO_STOP+=("$RABBIT_GROUP")

wait_http "http://127.0.0.1:$ROOMS_PORT/" 90
wait_http "http://127.0.0.1:$FLOOR_PORT/rooms/warmup/stats" 90
if [ "$ONLY" = all ]; then
    wait_http "http://127.0.0.1:$HOOKED_PORT/" 90
    wait_http "http://127.0.0.1:$DURABLE_PORT/durable/warmup/stats" 90
fi
wait_http "http://127.0.0.1:$RABBIT_WS_PORT/ws" 120

# Each system: the loadgen --flavor it speaks, its URL and destination, and what its results carry
# besides (the durable floor speaks the floor's protocol; "system" tells the report it apart).
declare -A FLAVOR=([stomp]=stomp [floor]=floor [floorconnect]=stomp [durable]=floor [rabbit]=rabbit)
declare -A URL=(
    [stomp]="ws://127.0.0.1:$ROOMS_PORT/rooms/{room}"
    [floor]="ws://127.0.0.1:$FLOOR_PORT/rooms/{room}"
    [floorconnect]="ws://127.0.0.1:$FLOOR_PORT/rooms/{room}"
    [durable]="ws://127.0.0.1:$DURABLE_PORT/durable/{room}"
    [rabbit]="ws://127.0.0.1:$RABBIT_WS_PORT/ws"
)
declare -A DEST=([stomp]="/topic/chat" [floor]="/topic/chat" [durable]="/topic/chat" [rabbit]="/topic/{room}")
declare -A TAG=([stomp]='{}' [floor]='{}' [floorconnect]='{"system": "floor-connect"}' [durable]='{"system": "floor-durable"}' [rabbit]='{}')
pids_of() {
    case "$1" in
        stomp) group_pids "$ROOMS_GROUP" ;;
        floor|floorconnect) group_pids "$FLOOR_GROUP" ;;
        durable) group_pids "$DURABLE_GROUP" ;;
        rabbit) group_pids "$RABBIT_GROUP" ;;
        hooked) group_pids "$HOOKED_GROUP" ;;
    esac
}
all_server_pids() { local flavor pids=""; for flavor in "${SYSTEMS[@]}"; do pids="$pids,$(pids_of "$flavor")"; done; echo "$pids"; }
quiet() { wait_until_idle all_server_pids; }

# The scenarios that the full run and `core` share.
fanout_unpaced() { # system subscribers
    local system="$1" subscribers="$2" messages
    messages=$(( 200000 / subscribers )); [ "$messages" -gt 5000 ] && messages=5000
    quiet
    scenario_step "fan-out, unpaced: $system, 1 -> $subscribers subscribers, $messages messages"
    loadgen fanout --flavor "${FLAVOR[$system]}" --url "${URL[$system]/\{room\}/fan-$subscribers-$RANDOM}" \
        --destination "${DEST[$system]/\{room\}/fan$subscribers}" --subscribers "$subscribers" \
        --messages "$messages" --pids "$(pids_of "$system")" --timeout 120 | record '{"mode":"unpaced"}' "${TAG[$system]}"
}
# Runs `scenario RUN SYSTEM` RUNS times for each system, the systems taking turns: a slow minute
# of the machine then falls on all of them.
take_turns() { # runs scenario systems...
    local runs="$1" scenario="$2" run system
    shift 2
    for run in $(seq 1 "$runs"); do
        for system in "$@"; do
            quiet
            "$scenario" "$run" "$system"
        done
    done
}
# The connection storm, STORM_RUNS times (default 3) per system, each run in a fresh room; the
# report takes each system's median (the floor's rate varied from 438 to 618 connects/s between
# single runs). The floor's clients send nothing once their socket is open; `floorconnect` is the
# same floor, its clients sending CONNECT and waiting for the CONNECTED it answers with no STOMP
# work, as stomp-rooms' and RabbitMQ's clients do.
STORM_RUNS="${STORM_RUNS:-3}"
storm_run() { # run system
    local run="$1" system="$2"
    scenario_step "connection storm, run $run of $STORM_RUNS, 2000 connections: $system"
    loadgen storm --flavor "${FLAVOR[$system]}" --url "${URL[$system]/\{room\}/storm-$run-$RANDOM}" \
        --connections 2000 --pids "$(pids_of "$system")" | record "{\"run\":$run}" "${TAG[$system]}"
}
connection_storms() { take_turns "$STORM_RUNS" storm_run "$@"; } # systems...
# The issue's low load: 100 messages/s into 10 subscribers for 10 s, each publish flushed at once.
# Its p99 varies a lot from run to run, so it runs LOWLOAD_RUNS times, each in a fresh room.
lowload_run() { # run system
    local run="$1" system="$2"
    scenario_step "low load, run $run of $LOWLOAD_RUNS: $system, 100 messages/s into 10 subscribers for 10 s"
    loadgen fanout --flavor "${FLAVOR[$system]}" --url "${URL[$system]/\{room\}/low-$run-$RANDOM}" \
        --destination "${DEST[$system]/\{room\}/low$run}" --subscribers 10 --messages 1000 --rate 100 \
        --pids "$(pids_of "$system")" --timeout 60 | record "{\"mode\":\"lowload\",\"run\":$run}" "${TAG[$system]}"
}
lowload() { take_turns "$LOWLOAD_RUNS" lowload_run "$@"; } # systems...
describe_machine() {
    MACHINE="$(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1)), $(free -g | awk '/Mem:/ {print $2}') GiB"
    VERSIONS="workerd $(node_modules/.bin/workerd --version 2>/dev/null | awk '{print $2}'), wrangler $(wrangler --version 2>/dev/null | tail -1), RabbitMQ $(dpkg-query -W -f='${Version}' rabbitmq-server)"
}

if [ "$ONLY" = core ]; then
    RESULTS="$WORK/core-results.jsonl"
    : > "$RESULTS"
    SYSTEMS=(stomp floor rabbit)
    SCENARIOS_TOTAL=$(( ${#SYSTEMS[@]} * 3 + 4 * STORM_RUNS + ${#SYSTEMS[@]} * LOWLOAD_RUNS ))
    for system in "${SYSTEMS[@]}"; do
        for subscribers in 10 100 1000; do fanout_unpaced "$system" "$subscribers"; done
    done
    connection_storms stomp floor floorconnect rabbit
    lowload "${SYSTEMS[@]}"
    describe_machine
    COMMIT="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo ' (src/ modified)')"
    step "writing $WORK/core.json and $WORK/core.md"
    "$WORK/venv/bin/python" benches/report.py --core "$RESULTS" "$WORK/core.json" "$MACHINE" "$VERSIONS" "$COMMIT" \
        | tee "$WORK/core.md"
    step "done"
    exit 0
fi

: > "$RESULTS"
SYSTEMS=(stomp floor durable rabbit)
for system in "${SYSTEMS[@]}"; do
    flavor="${FLAVOR[$system]}"
    for subscribers in 10 100 1000; do
        fanout_unpaced "$system" "$subscribers"
        # 1,000 msgs/s into 1,000 subscribers is a million deliveries a second: past every
        # system's ceiling here (each kept up with a tenth of it), so it measured only backlog.
        [ "$subscribers" = 1000 ] && continue
        quiet
        step "fan-out, paced at 1000/s for 3 s: $system, 1 -> $subscribers subscribers"
        loadgen fanout --flavor "$flavor" --url "${URL[$system]/\{room\}/paced-$subscribers-$RANDOM}" \
            --destination "${DEST[$system]/\{room\}/paced$subscribers}" --subscribers "$subscribers" \
            --messages 3000 --rate 1000 --pids "$(pids_of "$system")" --timeout 120 | record '{"mode":"paced"}' "${TAG[$system]}"
    done
    quiet
    step "100 rooms x 10 members, 2 msg/s each, 10 s: $system"
    loadgen rooms --flavor "$flavor" --url "${URL[$system]}" --destination "${DEST[$system]}" \
        --rooms 100 --members 10 --rate 2 --seconds 10 --pids "$(pids_of "$system")" | record "${TAG[$system]}"
done
connection_storms stomp floor floorconnect durable rabbit
lowload "${SYSTEMS[@]}"

# Webhooks on for every message: the same unpaced and paced fan-outs as stomp-rooms' above.
HOOKED_MESSAGES=0
for subscribers in 10 100 1000; do
    messages=$(( 200000 / subscribers )); [ "$messages" -gt 5000 ] && messages=5000
    HOOKED_MESSAGES=$(( HOOKED_MESSAGES + messages ))
    quiet
    step "fan-out, unpaced, webhooks on: 1 -> $subscribers subscribers, $messages messages"
    loadgen fanout --flavor stomp --url "ws://127.0.0.1:$HOOKED_PORT/rooms/fan-$subscribers-$RANDOM" \
        --destination /topic/chat --subscribers "$subscribers" --messages "$messages" \
        --pids "$(pids_of hooked)" --timeout 120 | record '{"mode":"unpaced","system":"stomp-rooms-webhooks"}'
    [ "$subscribers" = 1000 ] && continue
    HOOKED_MESSAGES=$(( HOOKED_MESSAGES + 3000 ))
    quiet
    step "fan-out, paced at 1000/s for 3 s, webhooks on: 1 -> $subscribers subscribers"
    loadgen fanout --flavor stomp --url "ws://127.0.0.1:$HOOKED_PORT/rooms/paced-$subscribers-$RANDOM" \
        --destination /topic/chat --subscribers "$subscribers" --messages 3000 --rate 1000 \
        --pids "$(pids_of hooked)" --timeout 120 | record '{"mode":"paced","system":"stomp-rooms-webhooks"}'
done
# The outboxes drain at their own pace after the last delivery: give them a while, then ask the
# receiver what it got (it writes its counts when stopped).
sleep 20
kill -TERM "$RECEIVER_PID" 2>/dev/null || true; sleep 1
echo "{\"scenario\": \"webhooks\", \"published\": $HOOKED_MESSAGES, \"received\": $(cat "$WORK/webhook-counts.json" 2>/dev/null || echo '{}')}" >> "$RESULTS"

quiet
step "idle: 1000 clients with 10 s heart-beats for 120 s, all ${#SYSTEMS[@]} systems at once"
stats() { curl -sf "http://127.0.0.1:$1/$2/idle/stats" || echo '{}'; } # port, rooms|durable
IDLE_JOBS=()
for system in "${SYSTEMS[@]}"; do
    url="${URL[$system]/\{room\}/idle}"
    loadgen idle --flavor "${FLAVOR[$system]}" --url "$url" --clients 1000 --seconds 120 --pids "$(pids_of "$system")" \
        > "$WORK/idle-$system.json" &
    IDLE_JOBS+=($!)
done
# Connecting takes a few seconds; then the clients only ping. Read the rooms' counters well inside
# the quiet period, and again before the clients hang up (their closes would wake the rooms).
sleep 40
ROOMS_STATS_BEFORE=$(stats "$ROOMS_PORT" rooms); FLOOR_STATS_BEFORE=$(stats "$FLOOR_PORT" rooms)
DURABLE_STATS_BEFORE=$(stats "$DURABLE_PORT" durable)
sleep 70
ROOMS_STATS_AFTER=$(stats "$ROOMS_PORT" rooms); FLOOR_STATS_AFTER=$(stats "$FLOOR_PORT" rooms)
DURABLE_STATS_AFTER=$(stats "$DURABLE_PORT" durable)
wait "${IDLE_JOBS[@]}"   # not a bare `wait`: the servers are background jobs too
record "{\"room_stats_before\": $ROOMS_STATS_BEFORE, \"room_stats_after\": $ROOMS_STATS_AFTER}" < "$WORK/idle-stomp.json"
record "{\"room_stats_before\": $FLOOR_STATS_BEFORE, \"room_stats_after\": $FLOOR_STATS_AFTER}" < "$WORK/idle-floor.json"
record "{\"room_stats_before\": $DURABLE_STATS_BEFORE, \"room_stats_after\": $DURABLE_STATS_AFTER}" "${TAG[durable]}" \
    < "$WORK/idle-durable.json"
record '{}' < "$WORK/idle-rabbit.json"

quiet
step "the ladder on stomp-rooms: short polling, long polling, SSE and WebSocket receivers (docs/ladder.json)"
LADDER_SERVER_GROUP="$ROOMS_GROUP" LADDER_PORT="$ROOMS_PORT" bash scripts/ladder.sh \
    || step "the ladder failed (above); the report keeps the ladder of the previous docs/ladder.json, with its date"

scale_scenarios

step "codec micro-benchmarks"
taskset -c 1 "$LOADGEN" codec | record '{}'

wasm=build/index_bg.wasm
echo "{\"scenario\": \"wasm\", \"raw_bytes\": $(stat -c %s "$wasm"), \"gzip_bytes\": $(gzip -9 -c "$wasm" | wc -c)}" >> "$RESULTS"

step "writing docs/benchmarks.md, docs/benchmarks.json, docs/latency-cdf.png and docs/ladder.png"
describe_machine
"$WORK/venv/bin/python" benches/report.py "$RESULTS" "$MACHINE" "$VERSIONS"
step "done"
