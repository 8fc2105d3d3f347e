#!/usr/bin/env bash
# Builds the Worker and serves it locally: the page at http://127.0.0.1:8787/, rooms at
# ws://127.0.0.1:8787/rooms/{room}. Local Durable Object storage persists under .wrangler/state.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
echo "dev: building and starting wrangler dev on http://127.0.0.1:8787 (Ctrl-C stops it)"
exec wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" "$@"
