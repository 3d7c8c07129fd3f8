//! The agent-opened tunnel, as k3s's: an agent opens an HTTP/1.1 connection to each API
//! server it knows and upgrades it to [`PROTOCOL`]; over the upgraded connection the server
//! speaks HTTP/2 as the client and the agent serves its kubelet router, so that the server
//! reaches an agent behind NAT or a firewall with no port open on the node. HTTP/2 (hyper's,
//! on the `h2` crate) multiplexes one stream per proxied request, and WebSockets (exec) ride
//! its extended CONNECT (RFC 8441).
//!
//! [`Tunnels`] is the server's side (one tunnel per node, a newer one replacing the older),
//! [`serve`] the agent's.

mod cutoff;
mod registry;
mod serve;

use std::time::Duration;

pub use registry::{Tunnel, TunnelError, Tunnels};
pub use serve::serve;

/// The `Upgrade` token of a tunnel request.
pub const PROTOCOL: &str = "skiff-tunnel";

/// How often each side pings an idle tunnel, so that a peer that vanished without closing
/// (a dropped network path) is noticed and the agent dials again.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// How long a ping may go unanswered before the tunnel is closed.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Each stream's flow-control window: what one request may have in flight unread.
const STREAM_WINDOW: u32 = 1 << 20;
/// Streams open at once on one tunnel (the agent's limit, which the server's side obeys).
const MAX_STREAMS: u32 = 200;
/// The connection's window: room for every stream's window at once, so that streams whose
/// reader stalls (a slow `logs -f` client) never hold up the others.
const CONNECTION_WINDOW: u32 = STREAM_WINDOW * (MAX_STREAMS + 1);

#[cfg(test)]
mod tests;
