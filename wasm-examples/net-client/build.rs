//! A WASI preview 2 command links wasi-libc's command start file (see .cargo/config.toml).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("p2") {
        println!("cargo:rustc-link-arg-bins=/usr/lib/wasm32-wasi/crt1-command.o");
    }
}
