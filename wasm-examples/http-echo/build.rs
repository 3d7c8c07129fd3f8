//! A library component links wasi-libc's reactor start file (see .cargo/config.toml).
fn main() {
    println!("cargo:rustc-link-arg-cdylib=/usr/lib/wasm32-wasi/crt1-reactor.o");
}
