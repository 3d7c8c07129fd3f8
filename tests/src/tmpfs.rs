//! A size-limited tmpfs mounted by a test (for full-disk faults), unmounted when dropped.
//! Needs root.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::command::run;

/// A tmpfs at `path` whose size can be changed while mounted.
pub struct Tmpfs {
    path: PathBuf,
}

fn mount(args: &[&str]) -> anyhow::Result<()> {
    run("mount", args)
}

impl Tmpfs {
    /// Mounts a tmpfs of `megabytes` at `path` (created if missing).
    pub fn mount(path: &Path, megabytes: u64) -> anyhow::Result<Tmpfs> {
        std::fs::create_dir_all(path)?;
        let at = path.display().to_string();
        mount(&[
            "-t",
            "tmpfs",
            "-o",
            &format!("size={megabytes}m"),
            "tmpfs",
            &at,
        ])?;
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }

    /// Grows (or shrinks) the filesystem in place; its files stay.
    pub fn resize(&self, megabytes: u64) -> anyhow::Result<()> {
        let at = self.path.display().to_string();
        mount(&["-o", &format!("remount,size={megabytes}m"), &at])
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: processes that still hold files (on a failed test) do not keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
