//! The client's pool of HTTP connections, replaced once its certificate rotates: connections
//! keep the certificate of their handshake, and the server checks its validity on every
//! request, so after a rotation new requests go over new connections (the kubelet closes its
//! connections after a rotation too). Requests under way, watches among them, finish on the
//! old pool, which closes when the last of them ends. Each pool has TLS sessions of its own:
//! a connection that resumed a session of the old certificate would go on presenting it (a
//! resumed TLS 1.3 session keeps the client certificate of its first handshake), so after a
//! rotation no session of the old pool is resumed.

use std::sync::{Arc, RwLock};

use tokio_rustls::rustls::client::Resumption;
use tokio_rustls::rustls::ClientConfig;

use crate::ClientIdentity;

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The current pool of HTTP connections, and how to make the next one.
pub(crate) struct Connections {
    tls: Option<Arc<ClientConfig>>,
    identity: Option<Arc<ClientIdentity>>,
    /// The pool, and the identity's generation it was made for.
    current: RwLock<(u64, reqwest::Client)>,
}

impl Connections {
    /// A pool speaking `tls` (whose client certificate, if any, `identity` resolves).
    pub fn new(
        tls: Option<Arc<ClientConfig>>,
        identity: Option<Arc<ClientIdentity>>,
    ) -> Result<Connections, reqwest::Error> {
        let generation = identity.as_ref().map_or(0, |i| i.generation());
        let pool = build(tls.as_deref())?;
        Ok(Connections {
            tls,
            identity,
            current: RwLock::new((generation, pool)),
        })
    }

    /// The pool for the certificate presented now: a new one after a rotation (the old one
    /// stays with the requests that hold it, if a new pool cannot be made).
    pub fn current(&self) -> reqwest::Client {
        let generation = self.identity.as_ref().map_or(0, |i| i.generation());
        {
            let current = self.current.read().expect("connections lock");
            if current.0 == generation {
                return current.1.clone();
            }
        }
        let mut current = self.current.write().expect("connections lock");
        if current.0 != generation {
            match build(self.tls.as_deref()) {
                Ok(pool) => *current = (generation, pool),
                Err(err) => {
                    tracing::warn!(error = %err, "keeping the HTTP connections of the rotated-out certificate")
                }
            }
        }
        current.1.clone()
    }
}

/// A pool speaking `tls`, with a session cache of its own.
fn build(tls: Option<&ClientConfig>) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(user_agent());
    if let Some(config) = tls {
        let mut config = config.clone();
        config.resumption = Resumption::default();
        builder = builder.use_preconfigured_tls(config);
    }
    builder.build()
}

/// `PROGRAM/VERSION (OS/ARCH)`, as client-go names its callers after their executable
/// (`kubectl/v1.32.0 (linux/amd64) ...`): the server records a writer's fields under the
/// first word when it names no field manager.
fn user_agent() -> String {
    let program = std::env::current_exe()
        .ok()
        .and_then(|path| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "skiff".to_string());
    format!(
        "{program}/{} ({})",
        env!("CARGO_PKG_VERSION"),
        skiff_api::platform::platform()
    )
}
