# Shared settings for the project's scripts; sourced, not run.
#
# Where tools live, which Rust toolchain builds the wasm, and the environment worker-build needs.
# Every script that builds or installs sources this file, so each fact has one place.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT

# Cargo-installed tools (wasm-bindgen-cli, worker-build) are cached outside the checkout so that
# fresh clones on the same machine reuse them.
TOOLS_DIR="${STOMP_ROOMS_TOOLS:-$HOME/.cache/stomp-rooms/tools}"
export TOOLS_DIR

# node_modules/.bin holds Node 22 (npm package `node`), wrangler, esbuild and wasm-opt.
export PATH="$ROOT/node_modules/.bin:$TOOLS_DIR/bin:$PATH"
export WRANGLER_SEND_METRICS=false
# wrangler dev fetches a sample `Request.cf` object from workers.cloudflare.com at every start,
# and offline prints a stack trace for each try; the Worker reads nothing from `cf`.
export CLOUDFLARE_CF_FETCH_ENABLED=false
# wrangler dev streams every invocation of the Worker to a local observability collector (a
# tail worker of its own, for its local explorer). It is not the platform: it cost the room
# three quarters of its CPU in an unpaced fan-out, and under storage writes it fails by the
# thousand ("trace-stream ... tail session was canceled"), printing each failure. Off unless
# asked for: `X_LOCAL_OBSERVABILITY=true npm start`.
export X_LOCAL_OBSERVABILITY="${X_LOCAL_OBSERVABILITY:-false}"

# Benchmarks and profiles drive a room from one load generator on one address, publishing as
# fast as it can: they lift the per-connection publish rate and the connection caps, which
# would otherwise refuse it (docs/benchmarks.md says so beside the figures).
LOAD_TEST_SETTINGS='{"publish_rate":{"messages_per_s":0,"frames_per_s":0,"bytes_per_s":0},"max_connections":0,"max_connections_per_address":0,"endpoints":["/ws-stomp"]}'

# The config the benchmarks and profiles serve the Worker with: wrangler.toml without its static
# files (and without its build step: they build once, up front). With `[assets]`, `wrangler dev`
# runs its emulation of Cloudflare's asset routing (a router worker, and for paths not listed in
# `run_worker_first` an asset worker's lookup) in the Worker's own process, on the Worker's core,
# for every request; on Cloudflare that routing runs before the Worker, not in its isolate. It
# took over a third of the Worker's CPU in a storm of connects. The floors have no static files.
# Prints the config's path (written under .bench/).
measurement_config() {
    local config="$ROOT/.bench/wrangler.measure.toml"
    mkdir -p "$ROOT/.bench"
    awk '/^\[/ { skip = ($0 == "[assets]" || $0 == "[build]") } !skip' "$ROOT/wrangler.toml" \
        | sed 's|^main = "build/|main = "../build/|' > "$config"
    echo "$config"
}

# The Debian packages that supply a wasm-capable Rust when the active toolchain has no wasm32 std.
DEBIAN_WASM_PACKAGES=(rustc-web cargo-web rust-web-src lld-22)
DEBIAN_WASM_LINKER=/usr/bin/wasm-ld-22

# True when the active (rustup) toolchain already ships the wasm32 standard library.
active_toolchain_has_wasm_std() {
    local libdir
    libdir="$(rustc --print target-libdir --target wasm32-unknown-unknown 2>/dev/null)" || return 1
    compgen -G "$libdir/libstd-*.rlib" >/dev/null
}

# The version of a package as pinned in Cargo.lock.
cargo_lock_version() {
    awk -v name="$1" '$1 == "name" && $3 == "\"" name "\"" { getline; gsub(/"/, "", $3); print $3; exit }' \
        "$ROOT/Cargo.lock"
}

# Exports what a wasm build needs: the toolchain (active one, or Debian's with build-std) and
# the binaries worker-build would otherwise try to download.
use_wasm_toolchain() {
    if ! active_toolchain_has_wasm_std; then
        export PATH="/usr/bin:$PATH"
        export RUSTC_BOOTSTRAP=1
        export CARGO_UNSTABLE_BUILD_STD="std,panic_abort"
        export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="$DEBIAN_WASM_LINKER"
    fi
    export WASM_BINDGEN_BIN="$TOOLS_DIR/bin/wasm-bindgen"
    export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"
    export WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
}

# Waits up to 90 s for a server started in the background to answer at $1; otherwise says
# so, naming its log ($2), as $3 (the calling script), and fails.
wait_for_server() {
    for _ in $(seq 1 90); do curl -s -o /dev/null "$1/" && return 0; sleep 1; done
    echo "$3: wrangler dev did not answer at $1 within 90 s; see $2" >&2
    return 1
}
