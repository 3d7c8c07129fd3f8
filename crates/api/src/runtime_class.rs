//! The RuntimeClass every cluster has, and how nodes advertise the runtimes they have.

/// The RuntimeClass pods running Wasm images get by default.
pub const WASM_CLASS: &str = "wasmtime";
/// The handler (runtime name on the node) of [`WASM_CLASS`].
pub const WASM_HANDLER: &str = "wasm";

/// The label (`runtime.skiff.dev/<handler>=true`) of a node that has the runtime `handler`.
pub fn node_label(handler: &str) -> String {
    format!("runtime.skiff.dev/{handler}")
}
