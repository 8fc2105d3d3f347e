#!/usr/bin/env bash
# Installs everything stomp-rooms needs to build, run and test, from the package registries only.
# Idempotent: a second run checks each step and finishes in seconds.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

STEP=""
HINT=""
trap 'echo "setup: FAILED at step \"$STEP\". $HINT" >&2' ERR

step() {
    STEP="$1"
    HINT="$2"
    echo "setup: [$(date +%H:%M:%S)] $STEP"
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

step "Debian packages (wasm32 Rust toolchain, Chromium for the page tests)" \
    "Check that apt can reach Debian's package registry (apt-get update), then run setup again."
wanted=(chromium)
if active_toolchain_has_wasm_std; then
    echo "setup:   the active Rust toolchain has the wasm32 std; using it"
else
    wanted+=("${DEBIAN_WASM_PACKAGES[@]}")
fi
missing=()
for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup:   installing ${missing[*]} from Debian (a minute or two)"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "setup:   ${wanted[*]} already installed"
fi
if ! active_toolchain_has_wasm_std; then
    # worker-build checks that the wasm32 target directory exists; build-std supplies std itself.
    as_root mkdir -p "$(/usr/bin/rustc --print target-libdir --target wasm32-unknown-unknown)"
fi

# cargo install builds with the default (native) toolchain into our tools directory.
install_crate() {
    local crate="$1" version="$2" binary="$3" expected="$4"
    if "$TOOLS_DIR/bin/$binary" --version 2>/dev/null | grep -q -- "$expected"; then
        echo "setup:   $crate $expected already installed"
    else
        echo "setup:   compiling $crate $version from crates.io (several minutes on 2 cores)"
        cargo install --root "$TOOLS_DIR" --force "$crate" --version "$version"
    fi
}

WASM_BINDGEN_VERSION="$(cargo_lock_version wasm-bindgen)"
step "wasm-bindgen-cli $WASM_BINDGEN_VERSION" \
    "It must match wasm-bindgen in Cargo.lock; check crates.io is reachable, then run setup again."
install_crate wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen "$WASM_BINDGEN_VERSION"

step "worker-build 0.8" "Check crates.io is reachable, then run setup again."
install_crate worker-build "^0.8" worker-build "0.8."

step "npm packages (Node 22, wrangler, esbuild, binaryen, stomp.js, ws, playwright-core)" \
    "Check the npm registry is reachable; delete node_modules and run setup again."
LOCK_STAMP="node_modules/.stomp-rooms-lock"
if [ -f "$LOCK_STAMP" ] && [ "$(cat "$LOCK_STAMP")" = "$(sha256sum package-lock.json)" ]; then
    echo "setup:   node_modules matches package-lock.json"
else
    npm ci --no-audit --no-fund
    sha256sum package-lock.json > "$LOCK_STAMP"
fi
echo "setup:   node $(node --version), wrangler $(wrangler --version 2>/dev/null | tail -n 1)"

STEP="" HINT=""
echo "setup: [$(date +%H:%M:%S)] done"
