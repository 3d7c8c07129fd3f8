//! The tunnels this agent keeps open, one to each API server it knows (its `servers`, and
//! those the `kubernetes` Service's endpoints list: `api_servers.rs`): the
//! way the servers reach its kubelet router (logs, exec, images), so that a node behind NAT or
//! a firewall needs no open port. Each is opened with the agent's own API client (its
//! transport and join token), served with the same router as the listener, and opened again
//! with back-off whenever it closes (a server restarting, a network path dropped).

use std::time::Duration;

use axum::Router;
use skiff_api::backoff::Backoff;
use skiff_client::Client;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Pauses between attempts to open a tunnel: quick after a tunnel that ran a while (a server
/// restarting comes back in seconds), doubling while the server stays away.
const RETRY: Backoff = Backoff {
    initial: Duration::from_millis(250),
    max: Duration::from_secs(5),
    reset_after: Duration::from_secs(10),
};

/// Keeps a tunnel open to each of `client`'s servers for `node`, and to each further server
/// the `kubernetes` Service's endpoints list, serving `app` on it, until `stop` is cancelled.
pub fn start(client: &Client, node: &str, app: Router, stop: &CancellationToken) {
    tokio::spawn(super::api_servers::follow(
        client.clone(),
        node.to_string(),
        app.clone(),
        stop.clone(),
    ));
    for server in client.servers() {
        tokio::spawn(keep_open(
            client.clone(),
            server.clone(),
            node.to_string(),
            app.clone(),
            stop.clone(),
        ));
    }
}

/// Keeps one tunnel to `server` open until `stop`, opening it again with back-off.
pub(super) async fn keep_open(
    client: Client,
    server: String,
    node: String,
    app: Router,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let Some(opened) = stop
            .run_until_cancelled(client.open_tunnel(&server, &node))
            .await
        else {
            return;
        };
        match opened {
            Ok(io) => {
                let since = Instant::now();
                tracing::info!(%server, "tunnel to the API server open");
                let served = skiff_net::tunnel::serve(io, app.clone(), stop.clone()).await;
                if stop.is_cancelled() {
                    return;
                }
                match served {
                    Ok(()) => tracing::info!(%server, "tunnel closed; opening it again"),
                    Err(err) => tracing::warn!(%server, %err, "tunnel broke; opening it again"),
                }
                failures = if RETRY.resets(since.elapsed()) {
                    1
                } else {
                    failures.saturating_add(1)
                };
            }
            Err(err) => {
                failures = failures.saturating_add(1);
                tracing::warn!(%server, %err, "cannot open the tunnel to the API server; retrying");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(RETRY.delay(failures)) => {}
            () = stop.cancelled() => return,
        }
    }
}
