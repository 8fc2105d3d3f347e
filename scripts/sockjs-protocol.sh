#!/usr/bin/env bash
# Runs SockJS's official protocol tests (github.com/sockjs/sockjs-protocol) against this
# Worker under `wrangler dev`, with the test services on (`sockjs_test_services`: /echo,
# /close, /disabled_websocket_echo, /cookie_needed_echo), and prints which pass.
#
#   bash scripts/sockjs-protocol.sh /path/to/a/clone/of/sockjs-protocol [TestClass ...]
#
# The suite is Python 2; this runs its main branch (sockjs-protocol.py, http-quirks.py) with
# the py3 branch's utils.py, after scripts/sockjs-protocol-py3.patch (syntax-level Python 3
# edits that leave every assertion as it is). It needs a clone with both branches (network
# access, so it is not part of `npm test`), Python 3 with venv, and `npm run setup` done.
# Builds the release Worker, serves it on port 8813, takes about a minute.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

CLONE="${1:-}"
if [ -z "$CLONE" ] || ! git -C "$CLONE" rev-parse --git-dir >/dev/null 2>&1; then
    echo "sockjs-protocol: give the path of a clone of https://github.com/sockjs/sockjs-protocol" >&2
    echo "  (git clone https://github.com/sockjs/sockjs-protocol; git -C sockjs-protocol fetch origin py3)" >&2
    exit 2
fi
shift
WORK="$ROOT/.bench/sockjs-protocol"
PORT="${SOCKJS_PROTOCOL_PORT:-8813}"
URL="http://127.0.0.1:$PORT"
step() { echo "sockjs-protocol: [$(date +%H:%M:%S)] $*" >&2; }

step "preparing the suite in $WORK (main branch, py3 branch's utils.py, Python 3 edits)"
rm -rf "$WORK/suite" && mkdir -p "$WORK/suite"
py3_branch=$(git -C "$CLONE" for-each-ref --format='%(refname)' 'refs/heads/py3' 'refs/remotes/*/py3' | head -n 1)
main_branch=$(git -C "$CLONE" for-each-ref --format='%(refname)' 'refs/heads/main' 'refs/remotes/*/main' | head -n 1)
if [ -z "$py3_branch" ] || [ -z "$main_branch" ]; then
    echo "sockjs-protocol: the clone needs its main and py3 branches (git -C $CLONE fetch origin main py3)" >&2
    exit 2
fi
git -C "$CLONE" show "$main_branch:sockjs-protocol.py" > "$WORK/suite/sockjs-protocol.py"
git -C "$CLONE" show "$main_branch:http-quirks.py" > "$WORK/suite/http-quirks.py"
git -C "$CLONE" show "$py3_branch:utils.py" > "$WORK/suite/utils.py"
patch -s -d "$WORK/suite" -p1 < scripts/sockjs-protocol-py3.patch
if [ ! -x "$WORK/venv/bin/python" ]; then
    step "installing the suite's WebSocket clients (websocket-client, ws4py) in a venv"
    python3 -m venv "$WORK/venv" && "$WORK/venv/bin/pip" install -q websocket-client ws4py
fi

if curl -s -o /dev/null "$URL/"; then
    echo "sockjs-protocol: something already answers on port $PORT; stop it, or set SOCKJS_PROTOCOL_PORT." >&2
    exit 1
fi
step "building the release Worker"
bash scripts/build.sh >&2
step "starting wrangler dev with the SockJS test services on port $PORT"
rm -rf "$WORK/state"
setsid env STOMP_ROOMS_SKIP_BUILD=1 wrangler dev --ip 127.0.0.1 --port "$PORT" --inspector-port 9413 \
    --var 'ROOM_SETTINGS:{"sockjs_test_services":true}' \
    --persist-to "$WORK/state" >"$WORK/server.log" 2>&1 &
GROUP=$!
trap 'kill -TERM -- "-$GROUP" 2>/dev/null || true' EXIT
wait_for_server "$URL" "$WORK/server.log" sockjs-protocol || exit 1

step "running the suite (each test prints ok, FAIL or ERROR)"
status=0
SOCKJS_URL="$URL" timeout 900 "$WORK/venv/bin/python" "$WORK/suite/sockjs-protocol.py" -v "$@" \
    2>&1 | tee "$WORK/results.txt" | grep -E ' \.\.\. ' || status=$?
tail -n 3 "$WORK/results.txt"
step "full output: $WORK/results.txt"
exit "$status"
