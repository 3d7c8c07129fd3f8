//! Test support for end-to-end tests: locating the `skiff` binary, running dev servers and
//! multi-master control planes as real processes on loopback, a local OCI registry, Linux
//! pods' images and runtime state, a Prometheus server, running CLI commands and the Python client's scripts, and waiting on conditions with
//! deadlines.

mod cli;
mod cluster;
mod command;
mod credentials;
mod guests;
mod hosts;
mod kubectl;
mod linearizability;
pub mod linux;
mod netns;
mod process;
mod prometheus;
mod python;
mod registry;
mod tmpfs;
mod wait;
pub mod webdriver;

pub use cli::{CliOutput, Skiff};
pub use cluster::{Cluster, Member, Writer};
pub use credentials::{
    https_client, https_client_builder, kubeconfig_client, kubeconfig_client_builder,
    kubeconfig_for,
};
pub use guests::{copy_example_guest, example_guest, wat_guest};
pub use hosts::{start_agent_on, start_agents_on, start_server_on};
pub use kubectl::{
    kubectl, kubectl_1_20, kubectl_1_20_command, kubectl_command, kubectl_output, table_header,
};
pub use linearizability::{
    check, check_measured, load_history, save_history, KeyEffort, Op, OpKind, Outcome, Verdict,
};
pub use netns::Network;
pub use process::{
    start_agent, start_with_agent_flags, start_with_agents, DevServer, SkiffProcess,
};
pub use prometheus::Prometheus;
pub use python::{PythonClient, PythonScript};
pub use registry::Registry;
pub use tmpfs::Tmpfs;
pub use wait::wait_until;

use std::path::PathBuf;

/// The repository root (parent of this crate).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The directory of the `wasm32-wasip2` guests `scripts/build-guests.sh` builds, after checking
/// that each of `files` is there (an error naming the first that is not).
pub fn wasip2_guests(files: &[&str]) -> anyhow::Result<PathBuf> {
    let release = repo_root().join("wasm-examples/target/wasm32-wasip2/release");
    for file in files {
        let guest = release.join(file);
        anyhow::ensure!(
            guest.exists(),
            "{} is missing: build the guests first with scripts/build-guests.sh",
            guest.display()
        );
    }
    Ok(release)
}

/// Path of an example manifest, failing clearly when its guest has not been built.
pub fn example(name: &str) -> PathBuf {
    if let Err(missing) = example_guest(name) {
        panic!("{missing}");
    }
    repo_root().join(format!("wasm-examples/{name}/deploy.yaml"))
}
