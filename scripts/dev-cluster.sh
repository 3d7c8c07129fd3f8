#!/usr/bin/env bash
# Builds what the dev cluster needs and starts it: `scripts/dev-cluster.sh [skiff server flags]`.
# Defaults: data in ./skiff-data, API on https://127.0.0.1:6443, admin credentials in ./skiff-data/admin.kubeconfig.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
scripts/build-guests.sh
cargo build --locked --bin skiff
exec target/debug/skiff server --dev "$@"
