//! Container logs, shared by the runtimes and the agent's log server: written in the CRI
//! log format (`<time> <stream> <F|P> <line>`, as the kubelet and containerd write them),
//! rotated at a size cap, guarded against filling the node's disk, and read back by seeking
//! rather than by reading files whole.
//!
//! A log `<dir>/<container>/<attempt>.log` rotates to `<attempt>.log.1` (newest) ...
//! `<attempt>.log.<max_files-1>` (oldest), so one attempt never holds more than
//! `max_files × max_size` bytes (plus one record).

mod files;
mod guard;
mod reader;
mod record;
mod render;
mod tail;
mod writer;

pub use reader::{LogReader, StillWriting};
pub use record::Stream;
pub use render::LogRequest;
pub use writer::LogWriter;

/// Caps on container logs, as the kubelet's `--container-log-max-size`,
/// `--container-log-max-files` and a free-space floor for the disk they live on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogLimits {
    /// Rotate the live file before it passes this many bytes.
    pub max_size: u64,
    /// Files kept per container attempt, the live one counted (at least 1).
    pub max_files: u32,
    /// Drop output (after one marker line) while the log filesystem has less free.
    pub min_free: u64,
}

impl Default for LogLimits {
    /// The kubelet's defaults: 10Mi × 5 files; and 100Mi kept free.
    fn default() -> Self {
        LogLimits {
            max_size: 10 * 1024 * 1024,
            max_files: 5,
            min_free: 100 * 1024 * 1024,
        }
    }
}
