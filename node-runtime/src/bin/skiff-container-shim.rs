//! The Linux runtime's container shim as a binary of its own (the `skiff` binary runs the same
//! code as its hidden `container-shim` subcommand); the runtime's tests use it.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(skiff_node_runtime::runtime::linux::shim::main(&args));
}
