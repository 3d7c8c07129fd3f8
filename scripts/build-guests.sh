#!/usr/bin/env bash
# Builds the Wasm example guests (hello, ticker, crasher, counter) from source with Debian's
# toolchain (see shared WASM-TOOLCHAIN notes): WASI preview 1 modules, and hello also as a WASI
# preview 2 command component.
set -euo pipefail
cd "$(dirname "$0")/../wasm-examples"

component_ld=$(command -v wasm-component-ld || echo "$HOME/.cargo/bin/wasm-component-ld")
build() {
  env PATH=/usr/bin:/bin RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$PWD/target" \
    CARGO_TARGET_WASM32_WASIP2_LINKER="$component_ld" \
    /usr/bin/cargo build --quiet --release "$@"
}
build --target wasm32-wasip1
build --target wasm32-wasip2 -p hello

for f in target/wasm32-wasip1/release/{hello,ticker,crasher,counter,volumes}.wasm target/wasm32-wasip2/release/hello.wasm; do
  [ -f "$f" ] || { echo "missing $f" >&2; exit 1; }
  echo "built wasm-examples/$f ($(stat -c %s "$f") bytes)"
done
