//! A pod's own network namespace for its guests: a thread that enters the namespace and
//! drives a current-thread tokio runtime on which every guest of the pod runs. Linux creates a
//! socket in the namespace of the thread that makes it, and the socket keeps that namespace
//! wherever it is used later, so all the guests' sockets (and wasi:http listeners) are the
//! pod's, while the agent's own threads stay in the node's namespace.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use nix::sched::{setns, CloneFlags};
use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

/// The runtime of one pod's guests, in the pod's network namespace; stops when dropped.
pub struct PodNetThread {
    handle: Handle,
    _stop: oneshot::Sender<()>,
}

impl PodNetThread {
    /// Starts the thread `name` in `netns`; fails if the namespace cannot be entered.
    pub fn start(netns: Arc<OwnedFd>, name: &str) -> io::Result<Self> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("netns-{name}"))
            .spawn(move || {
                let runtime = enter(&netns).and_then(|()| {
                    let netns = netns.clone();
                    Builder::new_current_thread()
                        .enable_all()
                        // The blocking pool's threads (name lookups, file I/O) are the pod's too.
                        .on_thread_start(move || {
                            enter(&netns).expect("re-entering a network namespace already entered")
                        })
                        .build()
                });
                match runtime {
                    Ok(runtime) => {
                        let _ = ready_tx.send(Ok(runtime.handle().clone()));
                        runtime.block_on(async {
                            let _ = stopped.await;
                        });
                        runtime.shutdown_background();
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(err));
                    }
                }
            })?;
        let handle = ready_rx
            .recv()
            .map_err(|_| io::Error::other("the pod's network thread ended before it started"))??;
        Ok(PodNetThread {
            handle,
            _stop: stop,
        })
    }

    /// Where the pod's guests are spawned.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

/// Moves the calling thread into `netns`.
fn enter(netns: &OwnedFd) -> io::Result<()> {
    setns(netns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}
