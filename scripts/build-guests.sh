#!/usr/bin/env bash
# Builds the Wasm example guests (hello, ticker, crasher, counter, volumes) from source with
# Debian's toolchain (see shared WASM-TOOLCHAIN notes): WASI preview 1 modules, hello also as a
# WASI preview 2 command component, and the preview 2 only networking guests: tcp-echo (a
# command on wasi:sockets), net-client (a client resolving a name through the pod's resolver) and http-echo (a wasi:http incoming-handler component).
set -euo pipefail
cd "$(dirname "$0")/../wasm-examples"

component_ld=$(command -v wasm-component-ld || echo "$HOME/.cargo/bin/wasm-component-ld")
build() {
  env PATH=/usr/bin:/bin RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$PWD/target" \
    CARGO_TARGET_WASM32_WASIP2_LINKER="$component_ld" \
    /usr/bin/cargo build --quiet --release "$@"
}
build --target wasm32-wasip1 --workspace --exclude tcp-echo --exclude http-echo
build --target wasm32-wasip2 -p hello -p tcp-echo -p http-echo -p net-client

for f in target/wasm32-wasip1/release/{hello,ticker,crasher,counter,volumes}.wasm target/wasm32-wasip2/release/{hello,tcp-echo,http_echo,net-client}.wasm; do
  [ -f "$f" ] || { echo "missing $f" >&2; exit 1; }
  echo "built wasm-examples/$f ($(stat -c %s "$f") bytes)"
done
