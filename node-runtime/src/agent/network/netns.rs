//! A pod's network namespace, held by a file descriptor only (no `/run/netns` bind mount): it
//! lives as long as the agent, or the runtime, holds the descriptor, so an agent killed with
//! `-9` leaves nothing behind. Made on a thread of its own, which `unshare`s into the new
//! namespace, opens it and a netlink socket in it, and ends.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;

use nix::sched::{unshare, CloneFlags};
use tokio::task::JoinHandle;

/// A new network namespace and a netlink handle that configures it.
pub struct Namespace {
    pub fd: OwnedFd,
    pub netlink: rtnetlink::Handle,
    /// The netlink connection's task; the handle works while it runs.
    _connection: Connection,
}

/// A netlink connection's task, ended when dropped.
struct Connection(JoinHandle<()>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Makes a network namespace; its netlink connection runs on the current Tokio runtime.
pub async fn create() -> io::Result<Namespace> {
    let runtime = tokio::runtime::Handle::current();
    let (fd, connection, netlink) = tokio::task::spawn_blocking(move || {
        // A thread of its own: the namespace is entered by this thread only, which then ends.
        std::thread::spawn(move || {
            unshare(CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            let fd = OwnedFd::from(File::open("/proc/thread-self/ns/net")?);
            // The socket belongs to the namespace it was opened in, whichever thread uses it.
            let _context = runtime.enter();
            let (connection, netlink, _) = rtnetlink::new_connection()?;
            Ok::<_, io::Error>((fd, connection, netlink))
        })
        .join()
        .map_err(|_| io::Error::other("the network namespace thread panicked"))?
    })
    .await
    .map_err(io::Error::other)??;
    Ok(Namespace {
        fd,
        netlink,
        _connection: Connection(tokio::spawn(connection)),
    })
}
