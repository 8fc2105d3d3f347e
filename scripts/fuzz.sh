#!/usr/bin/env bash
# Fuzzes the sans-IO core with cargo-fuzz (libFuzzer):  scripts/fuzz.sh <decoder|broker|record> [seconds]
# Installs cargo-fuzz on first use. Findings land in tests/fuzz/artifacts/<target>/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
target="${1:?usage: scripts/fuzz.sh <decoder|broker|record> [seconds]}"
seconds="${2:-600}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz
fi
mkdir -p "tests/fuzz/corpus/$target"
echo "fuzz: running $target for $seconds s (libFuzzer prints progress lines)"
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets a stable toolchain accept them. The core
# has no unsafe code, so AddressSanitizer finds nothing a panic would not, at a third of the
# speed: FUZZ_SANITIZER=address brings it back.
RUSTC_BOOTSTRAP=1 exec cargo fuzz run --sanitizer "${FUZZ_SANITIZER:-none}" --fuzz-dir tests/fuzz \
    "$target" "tests/fuzz/corpus/$target" -- -max_total_time="$seconds" -print_final_stats=1
