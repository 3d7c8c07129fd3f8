//! Which files make up one container log: the live file `<log>` and the rotated ones
//! `<log>.1` (newest) ... `<log>.N` (oldest), as logrotate names them.

use std::path::{Path, PathBuf};

/// `<log>.<n>`: the `n`th newest rotated file of `log`.
pub fn rotated(log: &Path, n: u32) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The files of `log` that exist, oldest first, the live file last (if it exists).
pub fn existing(log: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..)
        .map(|n| rotated(log, n))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    if log.exists() {
        files.push(log.to_path_buf());
    }
    files
}
