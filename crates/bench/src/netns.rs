//! Running a benchmark in a network namespace of its own (loopback up, nothing else), so that
//! the pod bridge, the node proxy's `skiff-svc` link and its ClusterIPs touch nothing of the
//! host's and cannot clash with another cluster on the machine. Needs root.
//!
//! Linux keeps the network namespace per thread: the work runs on a Tokio runtime of its own
//! whose threads all enter the namespace, and the processes they start (wrk, wasmtime) are
//! born in it. The namespace goes when the runtime ends.

use std::fs::File;
use std::future::Future;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use anyhow::Context;
use nix::sched::{setns, unshare, CloneFlags};

/// Whether this process may make network namespaces (it runs as root).
pub fn available() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs `work` to completion in a new network namespace, on a runtime of its own.
pub async fn run<W, F, T>(work: W) -> anyhow::Result<T>
where
    W: FnOnce() -> F + Send + 'static,
    F: Future<Output = anyhow::Result<T>>,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        std::thread::Builder::new()
            .name("bench-netns".into())
            .spawn(move || {
                let netns = Arc::new(enter_new()?);
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .on_thread_start(move || {
                        setns(netns.as_fd(), CloneFlags::CLONE_NEWNET)
                            .expect("entering the benchmark's network namespace");
                    })
                    .build()
                    .context("a runtime for the benchmark's network namespace")?;
                let out = runtime.block_on(work());
                runtime.shutdown_background();
                out
            })
            .context("starting the network namespace's thread")?
            .join()
            .map_err(|_| anyhow::anyhow!("the benchmark's network namespace thread panicked"))?
    })
    .await
    .context("the network namespace's task")?
}

/// Moves the calling thread into a new network namespace, brings its loopback up and returns
/// the namespace.
fn enter_new() -> anyhow::Result<OwnedFd> {
    unshare(CloneFlags::CLONE_NEWNET)
        .context("unshare(CLONE_NEWNET) (the benchmark needs root)")?;
    let netns = OwnedFd::from(File::open("/proc/thread-self/ns/net")?);
    // A child process starts in the namespace of the thread that starts it.
    let up = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .context("running `ip link set lo up` (Debian's iproute2)")?;
    anyhow::ensure!(up.success(), "`ip link set lo up` failed: {up}");
    Ok(netns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_in_a_namespace_of_its_own() {
        let host = std::fs::read_link("/proc/thread-self/ns/net").expect("host netns");
        let (main, worker) = run(|| async {
            let main = std::fs::read_link("/proc/thread-self/ns/net")?;
            let worker =
                tokio::spawn(async { std::fs::read_link("/proc/thread-self/ns/net") }).await??;
            let lo = std::net::TcpListener::bind("127.0.0.1:0")?;
            std::net::TcpStream::connect(lo.local_addr()?)?;
            Ok::<_, anyhow::Error>((main, worker))
        })
        .await
        .expect("the work ran");
        assert_ne!(main, host);
        assert_eq!(main, worker);
    }
}
