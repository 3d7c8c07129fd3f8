#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what is missing, builds the Wasm guests from
# source, builds the workspace once, then runs unit, integration and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build-guests.sh

cargo fmt --all -- --check
# One build of every target (the end-to-end tests run target/debug/skiff), then the tests.
cargo build --workspace --all-targets --locked
cargo test --workspace --locked -- --test-threads 2
cargo clippy --workspace --all-targets --locked -- -D warnings
