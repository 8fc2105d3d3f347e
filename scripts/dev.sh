#!/usr/bin/env bash
# Builds the Worker and serves it locally: the page at http://127.0.0.1:8787/, rooms at
# ws://127.0.0.1:8787/rooms/{room}. Local Durable Object storage persists under .wrangler/state.
# Arguments go to `wrangler dev`: `npm start -- --port 8788` (or PORT=8788 npm start) serves on
# another port, `--ip 0.0.0.0` on every interface.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

# wrangler refuses a flag given twice, so ours are added only when the caller gave none.
ip=127.0.0.1
port="${PORT:-8787}"
ours_ip=(--ip "$ip")
ours_port=(--port "$port")
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        --port) port="${args[i + 1]:-}"; ours_port=() ;;
        --port=*) port="${args[i]#--port=}"; ours_port=() ;;
        --ip) ip="${args[i + 1]:-}"; ours_ip=() ;;
        --ip=*) ip="${args[i]#--ip=}"; ours_ip=() ;;
    esac
done
echo "dev: building and starting wrangler dev on http://$ip:$port (Ctrl-C stops it)"
echo "dev: offline, wrangler's warnings that it cannot reach Cloudflare are harmless"
# (The ${a[@]+...} form keeps an empty array from tripping `set -u` in the bash of macOS.)
exec wrangler dev ${ours_ip[@]+"${ours_ip[@]}"} ${ours_port[@]+"${ours_port[@]}"} "$@"
