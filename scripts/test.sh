#!/usr/bin/env bash
# Runs every test: formatting and lints, the native Rust tests (the sans-IO core), then the
# end-to-end tests against the real Worker build served by `wrangler dev`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

started=$(date +%s)
stage() { echo; echo "test: [$(( $(date +%s) - started ))s] $1"; }

stage "cargo fmt --check"
cargo fmt --all -- --check || { echo "test: formatting differs; run 'cargo fmt' and commit." >&2; exit 1; }

stage "cargo clippy -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

stage "cargo test (native core)"
cargo test --quiet

stage "build the page and the Worker (release wasm)"
bash scripts/build.sh

stage "the project's commands (npm start's flags, setup per purpose, deploy's warnings)"
STOMP_ROOMS_SKIP_BUILD=1 node --test --test-concurrency=1 --test-timeout=300000 tests/scripts/*.test.mjs

stage "end-to-end tests (wrangler dev + real clients)"
STOMP_ROOMS_SKIP_BUILD=1 node --test --test-concurrency=1 --test-timeout=300000 tests/e2e/*.test.mjs

stage "all tests passed"
