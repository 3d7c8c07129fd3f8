#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what is missing, builds the Wasm guests from
# source, builds the workspace once, then runs unit, integration and end-to-end tests, and clippy.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build-guests.sh

cargo fmt --all -- --check
# A build from scratch gains nothing from incremental state, which would take 4 GB of disk.
export CARGO_INCREMENTAL=0
# One build of every target (the end-to-end tests run target/debug/skiff), then the tests.
cargo build --workspace --all-targets --locked
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# Bounded: a hung test fails the run instead of eating CI's time.
timeout --signal=KILL 2400 cargo test --workspace --locked --no-fail-fast -- --test-threads 2 2>&1 | tee "$log"
tests_status=${PIPESTATUS[0]}
set -e
cargo clippy --workspace --all-targets --locked -- -D warnings

# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$tests_status"
