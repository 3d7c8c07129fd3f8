//! Accepting at most N connections at once, with running out of descriptors (EMFILE, ENFILE)
//! treated as back-pressure: accepting pauses and resumes, the process carries on.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// How long accepting pauses after the process ran out of descriptors.
const DESCRIPTOR_BACKOFF: Duration = Duration::from_millis(100);
/// How often a full listener asks its idle connections again to make room.
const PRESSURE_REPEAT: Duration = Duration::from_secs(1);

/// A listener that holds at most `max` accepted connections: each comes with a permit, and
/// the slot is free again when the permit is dropped. At the limit, new connections wait in
/// the kernel's backlog; waiting signals `pressure`, on which servers shed idle connections.
pub struct Acceptor {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    max: usize,
    pressure: Arc<Notify>,
    /// Whether the current stretch of being full (or out of descriptors) was logged.
    full_logged: bool,
    exhausted_logged: bool,
}

/// One accepted connection and its slot.
pub struct Accepted {
    pub stream: TcpStream,
    /// The peer's address.
    pub from: SocketAddr,
    /// The connection's slot, freed when dropped.
    pub permit: OwnedSemaphorePermit,
}

impl Acceptor {
    /// Accepts on `listener`, at most `max` (at least 1) connections at once.
    pub fn new(listener: TcpListener, max: usize) -> Self {
        let max = max.max(1);
        Acceptor {
            listener,
            permits: Arc::new(Semaphore::new(max)),
            max,
            pressure: Arc::new(Notify::new()),
            full_logged: false,
            exhausted_logged: false,
        }
    }

    /// Notified each time a connection waits for a free slot.
    pub fn pressure(&self) -> Arc<Notify> {
        self.pressure.clone()
    }

    /// Waits for a free slot, then for a connection. Errors of single connections (reset
    /// before accepted) and descriptor exhaustion are waited out, never returned.
    pub async fn accept(&mut self) -> Accepted {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if !self.full_logged {
                    self.full_logged = true;
                    tracing::warn!(
                        addr = ?self.listener.local_addr().ok(),
                        max = self.max,
                        "connection limit reached: new connections wait and idle ones are closed"
                    );
                }
                self.wait_for_slot().await
            }
        };
        loop {
            match self.listener.accept().await {
                Ok((stream, from)) => {
                    self.exhausted_logged = false;
                    if self.permits.available_permits() > self.max / 2 {
                        self.full_logged = false;
                    }
                    return Accepted {
                        stream,
                        from,
                        permit,
                    };
                }
                Err(err) if is_descriptor_exhaustion(&err) => {
                    if !self.exhausted_logged {
                        self.exhausted_logged = true;
                        tracing::warn!(%err, "out of file descriptors: accepting pauses");
                    }
                    self.pressure.notify_waiters();
                    tokio::time::sleep(DESCRIPTOR_BACKOFF).await;
                }
                Err(err) => tracing::debug!(%err, "accepting a connection failed"),
            }
        }
    }

    /// Waits for a free slot, signalling `pressure` now and every `PRESSURE_REPEAT` (a
    /// connection busy at the first signal may be idle at the next).
    async fn wait_for_slot(&self) -> OwnedSemaphorePermit {
        loop {
            self.pressure.notify_waiters();
            let acquire = self.permits.clone().acquire_owned();
            if let Ok(permit) = tokio::time::timeout(PRESSURE_REPEAT, acquire).await {
                return permit.expect("the semaphore is never closed");
            }
        }
    }

    /// Waits until every accepted connection has ended.
    pub async fn drain(&self) {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        let _ = self.permits.acquire_many(all).await;
    }
}

/// EMFILE (this process) or ENFILE (the system) ran out of descriptors.
pub fn is_descriptor_exhaustion(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(code) if code == nix::libc::EMFILE || code == nix::libc::ENFILE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_at_most_max_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut acceptor = Acceptor::new(listener, 2);
        let _clients: Vec<_> = futures_connect(addr, 3).await;
        let first = acceptor.accept().await;
        let _second = acceptor.accept().await;
        let third = tokio::time::timeout(Duration::from_millis(50), acceptor.accept()).await;
        assert!(
            third.is_err(),
            "a third connection was accepted over the limit of 2"
        );
        drop(first);
        let third = tokio::time::timeout(Duration::from_secs(5), acceptor.accept()).await;
        assert!(third.is_ok(), "a freed slot was not reused");
    }

    async fn futures_connect(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
        let mut streams = Vec::new();
        for _ in 0..n {
            streams.push(TcpStream::connect(addr).await.unwrap());
        }
        streams
    }

    #[test]
    fn emfile_and_enfile_are_exhaustion() {
        assert!(is_descriptor_exhaustion(&io::Error::from_raw_os_error(
            nix::libc::EMFILE
        )));
        assert!(is_descriptor_exhaustion(&io::Error::from_raw_os_error(
            nix::libc::ENFILE
        )));
        assert!(!is_descriptor_exhaustion(&io::Error::from_raw_os_error(
            nix::libc::ECONNABORTED
        )));
    }
}
