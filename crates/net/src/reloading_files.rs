//! A value loaded from files and loaded again when they change, as kube-apiserver reloads
//! its serving certificate and client CA: a use at most once every `CHECK_EVERY` looks at the
//! files' metadata (inode, size, modification time, so a rename or a symlink swap over them
//! counts) and reads them outside the lock; uses meanwhile get the held value. Files that do
//! not load (half written, a key that is not the certificate's) are logged and the held value
//! kept until they change again.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// A file that does not load.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct ReloadError {
    /// The file.
    pub path: PathBuf,
    /// Why it does not load.
    pub reason: String,
}

/// How often a use looks at the files.
pub(crate) const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Loads the value from the files, in the order they were given.
type Load<T> = Box<dyn Fn(&[PathBuf]) -> Result<T, ReloadError> + Send + Sync>;

/// A value of type `T` (cheap to clone: an `Arc`) loaded from `files`.
pub struct ReloadingFiles<T> {
    files: Vec<PathBuf>,
    load: Load<T>,
    held: RwLock<Held<T>>,
}

/// The loaded value, the files' stamp it was loaded at (or last failed at), and when the
/// files were last looked at.
struct Held<T> {
    value: T,
    stamp: Option<Vec<Stamp>>,
    checked: Instant,
}

/// What tells that a file changed: its inode, size and modification time (ns).
type Stamp = (u64, u64, i64, i64);

impl<T: Clone> ReloadingFiles<T> {
    /// Loads the value; an error names the file that does not load.
    pub fn new(
        files: Vec<PathBuf>,
        load: impl Fn(&[PathBuf]) -> Result<T, ReloadError> + Send + Sync + 'static,
    ) -> Result<ReloadingFiles<T>, ReloadError> {
        let stamp = stamp(&files);
        let value = load(&files)?;
        Ok(ReloadingFiles {
            files,
            load: Box::new(load),
            held: RwLock::new(Held {
                value,
                stamp,
                checked: Instant::now(),
            }),
        })
    }

    /// The first file, which names the value in logs.
    pub fn file(&self) -> &Path {
        &self.files[0]
    }

    /// The value to use at `now`, loaded again first if the files changed since.
    pub fn at(&self, now: Instant) -> T {
        {
            let held = self.held.read().unwrap_or_else(|p| p.into_inner());
            if now.saturating_duration_since(held.checked) < CHECK_EVERY {
                return held.value.clone();
            }
        }
        let known = {
            let mut held = self.held.write().unwrap_or_else(|p| p.into_inner());
            if now.saturating_duration_since(held.checked) < CHECK_EVERY {
                return held.value.clone();
            }
            // This use looks; others within `CHECK_EVERY` do not.
            held.checked = now;
            held.stamp.clone()
        };
        let current = stamp(&self.files);
        let loaded = match &current {
            Some(current) if Some(current) != known.as_ref() => Some((self.load)(&self.files)),
            _ => None,
        };
        let mut held = self.held.write().unwrap_or_else(|p| p.into_inner());
        match loaded {
            Some(Ok(value)) => {
                tracing::info!(file = %self.file().display(), "reloaded");
                held.value = value;
                held.stamp = current;
            }
            Some(Err(err)) => {
                tracing::warn!(%err, "the changed file does not load: the held value is used");
                held.stamp = current;
            }
            None => {}
        }
        held.value.clone()
    }
}

/// Every file's stamp; `None` if one cannot be read (say, in the middle of a swap).
fn stamp(files: &[PathBuf]) -> Option<Vec<Stamp>> {
    files
        .iter()
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec()))
        })
        .collect()
}

/// Reads `path` whole; the error names it.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, ReloadError> {
    std::fs::read(path).map_err(|e| ReloadError {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}
