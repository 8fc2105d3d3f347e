#!/usr/bin/env bash
# Profiles the room under load: builds the release Worker and the load generator, serves the
# Worker with `wrangler dev` (CPU 0, inspector on), runs one load-generator scenario (CPU 1)
# while V8 samples the Worker's isolate, and writes to .profile/:
#   <scenario>.cpuprofile  the V8 CPU profile (Chrome DevTools: Performance > Load profile)
#   <scenario>.md          time by category (our wasm, JS glue, runtime APIs, native) and the
#                          top functions by self time
#   <scenario>.loadgen.json  what the load generator measured meanwhile
#
#   bash scripts/profile.sh [fanout|paced|rooms|storm] [more load-generator options]
#   e.g. bash scripts/profile.sh fanout --subscribers 1000 --messages 200
#
# Run `npm run setup` first. Defaults: fanout into 100 subscribers, 2,000 messages.
# Set PROFILE_NAMES=1 to build without wasm-opt, so our Rust functions keep their names in the
# profile (a slightly slower build than the one deployed). PROFILE_LABEL names the output
# files (default: the scenario); PROFILE_DOCS=1 also writes the summary to
# docs/profile-<label>.md, which the benchmark report includes.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

SCENARIO="${1:-fanout}"
shift || true
PORT=8831 INSPECTOR=9431
OUT_DIR="$ROOT/.profile"
LOADGEN="$ROOT/benches/loadgen/target/release/stomp-rooms-loadgen"
step() { echo "profile: [$(date +%H:%M:%S)] $*" >&2; }

case "$SCENARIO" in
    fanout) LOAD=(fanout --subscribers 100 --messages 2000) ;;
    paced) LOAD=(fanout --subscribers 100 --messages 3000 --rate 1000) ;;
    rooms) LOAD=(rooms --rooms 100 --members 10 --rate 2 --seconds 10) ;;
    storm) LOAD=(storm --connections 2000) ;;
    *) echo "profile: unknown scenario '$SCENARIO'; use fanout, paced, rooms or storm." >&2; exit 2 ;;
esac
mkdir -p "$OUT_DIR"

# The load generator's options as it acts on them: the scenario's defaults, each replaced by
# the same option given on the command line (it takes an option's last value), then the rest.
effective_load() {
    local -A given=()
    local args=("$@") i name out=("${LOAD[0]}")
    for ((i = 0; i < ${#args[@]}; i++)); do
        if [[ ${args[i]} == --* ]]; then given[${args[i]}]="${args[i + 1]:-}"; fi
    done
    for ((i = 1; i < ${#LOAD[@]}; i += 2)); do
        name=${LOAD[i]}
        out+=("$name" "${given[$name]:-${LOAD[i + 1]}}")
        unset "given[$name]"
    done
    for name in "${!given[@]}"; do out+=("$name" "${given[$name]}"); done
    echo "${out[*]}"
}

step "building the load generator and the release Worker"
# Into its own target directory whatever CARGO_TARGET_DIR says: $LOADGEN is there.
cargo build --release --quiet --manifest-path benches/loadgen/Cargo.toml --target-dir benches/loadgen/target
if [ "${PROFILE_NAMES:-}" = 1 ]; then
    step "PROFILE_NAMES=1: building without wasm-opt, keeping function names"
    STOMP_ROOMS_NO_OPT=1 bash scripts/build.sh >&2
else
    bash scripts/build.sh >&2
fi

ulimit -n 1048576 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
rm -rf "$OUT_DIR/state"
step "starting wrangler dev on port $PORT (CPU 0), inspector on $INSPECTOR"
setsid taskset -c 0 env STOMP_ROOMS_SKIP_BUILD=1 wrangler dev -c "$(measurement_config)" --port "$PORT" --inspector-port "$INSPECTOR" \
    --var "ROOM_SETTINGS:$LOAD_TEST_SETTINGS" \
    --persist-to "$OUT_DIR/state" --show-interactive-dev-session=false >"$OUT_DIR/wrangler.log" 2>&1 &
SERVER=$!
trap 'kill -TERM -- "-$SERVER" 2>/dev/null || true' EXIT
wait_for_server "http://127.0.0.1:$PORT" "$OUT_DIR/wrangler.log" profile || exit 1
# Wake the isolate so the inspector lists it.
curl -s -o /dev/null "http://127.0.0.1:$PORT/rooms/warmup/stats"

LABEL="${PROFILE_LABEL:-$SCENARIO}"
ROOM="profile-$SCENARIO-$RANDOM"
URL="ws://127.0.0.1:$PORT/rooms/$ROOM"
[ "$SCENARIO" = rooms ] && URL="ws://127.0.0.1:$PORT/rooms/{room}"
step "profiling: loadgen $(effective_load "$@")"
node scripts/profile.mjs --inspector "$INSPECTOR" --out "$OUT_DIR/$LABEL" -- \
    taskset -c 1 "$LOADGEN" "${LOAD[@]}" --flavor stomp --url "$URL" --destination /topic/chat \
    --pids "$(pgrep -g "$SERVER" | paste -sd, -)" --timeout 120 "$@"
if [ "${PROFILE_DOCS:-}" = 1 ]; then
    {
        echo "### $LABEL: \`loadgen $(effective_load "$@")\`"
        echo
        echo "Profiled $(date +%Y-%m-%d) by \`scripts/profile.sh\` (V8 sampling every 100 µs, which slows the"
        echo "Worker; compare shares, not absolute times, with the benchmark). Build: $([ "${PROFILE_NAMES:-}" = 1 ] && echo 'without wasm-opt, names kept' || echo 'release, as deployed')."
        python3 - "$OUT_DIR/$LABEL.loadgen.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
if "delivered" in d:
    what = "%s deliveries" % format(d["delivered"], ",")
    if d.get("ws_messages"):
        what += " in %s WebSocket messages (%.3f per delivery)" % (
            format(d["ws_messages"], ","), d["ws_messages_per_delivery"])
    rate = d.get("delivered_per_second", 0)
else:
    what = "%s connections" % format(d.get("connected", 0), ",")
    rate = d.get("connects_per_second", 0)
print("Meanwhile the load generator saw %s, %s/s (slowed by the sampling)." % (what, format(round(rate), ",")))
PY
        echo
        cat "$OUT_DIR/$LABEL.md"
    } > "docs/profile-$LABEL.md"
    step "wrote docs/profile-$LABEL.md"
fi
step "done: $OUT_DIR/$LABEL.md, $OUT_DIR/$LABEL.cpuprofile"
