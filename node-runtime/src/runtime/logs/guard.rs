//! The node-wide guard that keeps logs from filling the disk they share with the node's data:
//! below a free-space floor on the log file's filesystem, output is dropped (as the kubelet
//! evicts at `nodefs.available`), and a marker line says so.

use std::path::Path;

/// How many bytes a writer lets through between two looks at the free space.
pub const CHECK_EVERY: u64 = 256 * 1024;

/// Bytes available to unprivileged writers on the filesystem holding `path`.
pub fn available(path: &Path) -> std::io::Result<u64> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    Ok(stat.blocks_available() as u64 * stat.fragment_size() as u64)
}
