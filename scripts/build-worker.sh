#!/usr/bin/env bash
# Builds the Worker: the Rust crate to wasm (release, size-optimised, wasm-opt) into build/.
# wrangler runs this before `wrangler dev` and `wrangler deploy`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

# Tests that restart wrangler dev build once up front and skip the rebuild on each start.
if [ "${STOMP_ROOMS_SKIP_BUILD:-}" = 1 ] && [ -f build/index.js ]; then
    echo "build-worker: using the existing build/ (STOMP_ROOMS_SKIP_BUILD=1)"
    exit 0
fi
if [ ! -x "$TOOLS_DIR/bin/worker-build" ]; then
    echo "build-worker: worker-build is not installed; run 'npm run setup' first." >&2
    exit 1
fi

use_wasm_toolchain
echo "build-worker: compiling to wasm with $(rustc --version) (the first build of std takes a few minutes)"
worker-build --release
wasm="build/index_bg.wasm"
echo "build-worker: $wasm is $(stat -c %s "$wasm") bytes, $(gzip -9 -c "$wasm" | wc -c) gzipped"
