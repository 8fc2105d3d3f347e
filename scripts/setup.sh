#!/usr/bin/env bash
# Installs what stomp-rooms needs, from the package registries only, for one purpose:
#
#   bash scripts/setup.sh run    building, serving and deploying (npm start, npm run deploy):
#                                a wasm-capable Rust, wasm-bindgen-cli, worker-build, and
#                                the npm packages (Node 22, wrangler)
#   bash scripts/setup.sh test   all of that, and Chromium for the page tests (npm test,
#                                npm run setup)
#
# Idempotent: a second run checks each step and finishes in seconds. Where it cannot install
# something itself (not Debian, or no root and no sudo), it says exactly what to install.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

PURPOSE="${1:-test}"
case "$PURPOSE" in
    run | test) ;;
    *) echo "setup: usage: bash scripts/setup.sh [run|test] (run: build, serve and deploy; test: also the page tests' browser)" >&2; exit 2 ;;
esac

STEP=""
HINT=""
trap 'echo "setup: FAILED at step \"$STEP\". $HINT" >&2' ERR

step() {
    STEP="$1"
    HINT="$2"
    echo "setup: [$(date +%H:%M:%S)] $STEP"
}

# Stops with what to install by hand, when setup cannot install it itself.
install_by_hand() {
    echo "setup: $1" >&2
    trap - ERR
    exit 1
}

# Debian's apt, run as root (directly or through sudo); false when there is no way to.
can_use_apt() {
    command -v apt-get >/dev/null && command -v dpkg-query >/dev/null || return 1
    [ "$(id -u)" = 0 ] || command -v sudo >/dev/null
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Installs the Debian packages given that are not installed yet.
apt_install() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "setup:   $* already installed"
        return
    fi
    echo "setup:   installing ${missing[*]} from Debian (a minute or two)"
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

step "a Rust toolchain that builds wasm32" \
    "Check that apt can reach Debian's package registry (apt-get update), then run setup again."
if active_toolchain_has_wasm_std; then
    echo "setup:   the active Rust toolchain has the wasm32 std; using it"
elif can_use_apt; then
    apt_install "${DEBIAN_WASM_PACKAGES[@]}"
    # worker-build checks that the wasm32 target directory exists; build-std supplies std itself.
    as_root mkdir -p "$(/usr/bin/rustc --print target-libdir --target wasm32-unknown-unknown)"
else
    install_by_hand "no Rust toolchain here can build wasm32, and setup cannot install one (it uses Debian's apt, as root or with sudo). Install Rust from https://rustup.rs, then run: rustup target add wasm32-unknown-unknown. On Debian or Ubuntu, as root: apt-get install ${DEBIAN_WASM_PACKAGES[*]}. Then run setup again."
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
lock_digest() {
    if command -v sha256sum >/dev/null; then sha256sum package-lock.json; else shasum -a 256 package-lock.json; fi
}
LOCK_STAMP="node_modules/.stomp-rooms-lock"
if [ -f "$LOCK_STAMP" ] && [ "$(cat "$LOCK_STAMP")" = "$(lock_digest)" ]; then
    echo "setup:   node_modules matches package-lock.json"
else
    npm ci --no-audit --no-fund
    lock_digest > "$LOCK_STAMP"
fi
echo "setup:   node $(node --version), wrangler $(wrangler --version 2>/dev/null | tail -n 1)"

if [ "$PURPOSE" = test ]; then
    step "Chromium, for the page tests" \
        "Check that apt can reach Debian's package registry, or set CHROMIUM_PATH to a Chromium or Chrome."
    if [ -n "${CHROMIUM_PATH:-}" ]; then
        [ -x "$CHROMIUM_PATH" ] || install_by_hand "CHROMIUM_PATH is $CHROMIUM_PATH, which is not an executable file. Point it at a Chromium or Chrome binary."
        echo "setup:   using CHROMIUM_PATH=$CHROMIUM_PATH"
    elif can_use_apt; then
        apt_install chromium
    elif [ -x /usr/bin/chromium ]; then
        echo "setup:   /usr/bin/chromium is there"
    else
        install_by_hand "the page tests drive Chromium, and setup cannot install it here (it uses Debian's apt, as root or with sudo). Install Chromium or Google Chrome and set CHROMIUM_PATH to its binary (on macOS: CHROMIUM_PATH=\"/Applications/Google Chrome.app/Contents/MacOS/Google Chrome\"), then run setup again. Running and deploying need no browser: npm start and npm run deploy work without it."
    fi
fi

STEP="" HINT=""
echo "setup: [$(date +%H:%M:%S)] done ($PURPOSE)"
