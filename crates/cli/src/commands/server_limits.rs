//! `skiff server` flags that keep one client from hurting the others, and the audit log.

use std::path::PathBuf;

use clap::Args;
use skiff_control_plane::InflightLimits;

/// Request concurrency limits (a small API Priority and Fairness) and the audit log.
#[derive(Args, Debug, Clone)]
pub struct ServerLimitArgs {
    /// Requests all users together may have in flight (watches, logs and exec excepted;
    /// `system:masters` exempt, nodes counted apart); more get 429 with Retry-After.
    #[arg(long, default_value_t = InflightLimits::default().global)]
    pub max_requests_inflight: usize,
    /// Requests one user may have in flight.
    #[arg(long, default_value_t = InflightLimits::default().per_user)]
    pub max_requests_inflight_per_user: usize,
    /// Requests all nodes together may have in flight (each node four times a user's share).
    #[arg(long, default_value_t = InflightLimits::default().system)]
    pub max_requests_inflight_system: usize,
    /// Append one JSON line per API request (an audit.k8s.io/v1 Event at level Metadata:
    /// user, source IP, verb, object, response code; never a body) to this file.
    #[arg(long)]
    pub audit_log_path: Option<PathBuf>,
}

impl ServerLimitArgs {
    /// The concurrency limits these flags give.
    pub fn inflight(&self) -> InflightLimits {
        InflightLimits {
            per_user: self.max_requests_inflight_per_user,
            global: self.max_requests_inflight,
            system: self.max_requests_inflight_system,
        }
    }
}
