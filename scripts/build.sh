#!/usr/bin/env bash
# Builds what wrangler serves: the chat page's script (stomp.js bundled by esbuild into
# public/assets/) and the Worker (the Rust crate to size-optimised wasm, in build/).
# wrangler runs this before `wrangler dev` and `wrangler deploy`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

# Tests that restart wrangler dev build once up front and skip the rebuild on each start.
if [ "${STOMP_ROOMS_SKIP_BUILD:-}" = 1 ] && [ -f build/index.js ] && [ -f public/assets/chat.js ]; then
    echo "build: using the existing build/ and public/assets/ (STOMP_ROOMS_SKIP_BUILD=1)"
    exit 0
fi
if [ ! -x "$TOOLS_DIR/bin/worker-build" ] || [ ! -x node_modules/.bin/esbuild ]; then
    echo "build: the toolchain is not installed; run 'npm run setup' first." >&2
    exit 1
fi

echo "build: bundling the chat page (public/app -> public/assets/chat.js)"
esbuild public/app/chat.mjs --bundle --minify --format=esm --target=es2022 \
    --outfile=public/assets/chat.js --log-level=warning

use_wasm_toolchain
echo "build: compiling the Worker to wasm with $(rustc --version) (the first build of std takes a few minutes)"
# STOMP_ROOMS_NO_OPT=1 skips wasm-opt, which keeps function names for profiling.
worker-build --release ${STOMP_ROOMS_NO_OPT:+--no-opt}
wasm="build/index_bg.wasm"
if [ -z "${STOMP_ROOMS_NO_OPT:-}" ]; then
    # worker-build keeps the function-name section (wasm-opt --debuginfo): a third of the
    # file, shipped for nothing. Drop it (and DWARF), with the features worker-build enables,
    # and optimise for size again until nothing shrinks (2 KB gzipped, a few seconds).
    wasm-opt "$wasm" --strip-debug -Oz --converge -o "$wasm" --enable-mutable-globals --enable-sign-ext \
        --enable-nontrapping-float-to-int --enable-bulk-memory --enable-multivalue \
        --enable-reference-types --enable-exception-handling
fi
echo "build: $wasm is $(wc -c < "$wasm" | tr -d " ") bytes, $(gzip -9 -c "$wasm" | wc -c) gzipped"
