//! Streaming exec (`skiff exec`, the CRI's `Exec`): a command in a running container with
//! its standard streams, a terminal size channel when it has a TTY, and its exit code.

use std::pin::Pin;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};

/// What to run and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    /// Runs the command on a pseudo-terminal: stdout carries both output streams.
    pub tty: bool,
    /// Whether the caller sends standard input (else the command reads end of file).
    pub stdin: bool,
}

/// A terminal's size in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalSize {
    pub width: u16,
    pub height: u16,
}

/// A running exec. Dropping it (and its streams) kills the command.
pub struct ExecSession {
    /// The command's standard input, when the request asked for it; dropping it closes it.
    pub stdin: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    /// Its standard output (the terminal's output with a TTY).
    pub stdout: Pin<Box<dyn AsyncRead + Send>>,
    /// Its standard error (None with a TTY, where it goes to `stdout`).
    pub stderr: Option<Pin<Box<dyn AsyncRead + Send>>>,
    /// Resizes the terminal (None without a TTY).
    pub resize: Option<mpsc::Sender<TerminalSize>>,
    /// The exit code once it ends (128 + the signal for one killed by a signal).
    pub exit: oneshot::Receiver<i32>,
}

impl std::fmt::Debug for ExecSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecSession")
            .field("stdin", &self.stdin.is_some())
            .field("tty", &self.resize.is_some())
            .finish_non_exhaustive()
    }
}
