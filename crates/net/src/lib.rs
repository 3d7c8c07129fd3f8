//! Skiff's network listeners, hardened against floods: each accepts at most a bounded number
//! of connections (`accept`), HTTP connections are closed when idle or when a request's
//! headers come too slowly (`http`), and the connection budgets are derived from the
//! process's descriptor limit, leaving a reserve for the store (`descriptors`). The API server
//! reaches agents through connections the agents open (`tunnel`). Clients pace what they send
//! with a token bucket (`token_bucket`). A listener's serving certificate can be renewed while it
//! serves (`tls`), or reloaded from files that change (`reloading_cert`), and so can the CA
//! that peers are verified with (`reloading_ca`), both on `reloading_files`.

pub mod accept;
pub mod descriptors;
mod guarded_body;
pub mod http;
mod idle;
pub mod reloading_ca;
pub mod reloading_cert;
pub mod reloading_files;
mod socket;
pub mod tls;
pub mod token_bucket;
pub mod tunnel;

pub use guarded_body::GuardedBody;

use std::time::Duration;

/// How many connections a listener holds at once and how long it lets them sit idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections served at once; further ones wait in the kernel's backlog, and connections
    /// with no request in flight are closed to make room for them.
    pub max_connections: usize,
    /// A request's headers must arrive within this long of the connection opening or of the
    /// previous response (hyper's `header_read_timeout`): idle keep-alive connections and
    /// slow-header (slowloris) clients are closed after it. Requests in flight, such as
    /// watches and log follows, are never cut by it.
    pub idle_timeout: Duration,
}

/// Connections an API server accepts at once by default (less if the descriptor limit is low).
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default idle timeout: longer than clients keep idle pooled connections (reqwest: 90 s), so
/// a client never sends a request on a connection the server is closing.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}
