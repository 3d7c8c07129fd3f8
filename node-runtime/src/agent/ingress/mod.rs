//! Ingress (`networking.k8s.io/v1`) served by every agent's node proxy: the Ingresses of the
//! class `skiff` (or of no class while `skiff` is the default) on an HTTP and an HTTPS
//! listener. Ingresses, IngressClasses, Services, EndpointSlices and (for HTTPS) Secrets are
//! mirrored by list and watch as the Service proxy does; each change rebuilds the routes
//! (`routes.rs`) and the certificates (`tls.rs`) the listeners (`server.rs`) read. Backends are
//! the Service's ready endpoints, taken in turn by the Service proxy's balancer.

mod pool;
mod routes;
mod server;
mod status;
mod tls;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use skiff_api::ingress::{is_served_by, SKIFF_CONTROLLER};
use skiff_api::k8s_openapi::api::core::v1::{Secret, Service};
use skiff_api::k8s_openapi::api::discovery::v1::EndpointSlice;
use skiff_api::k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use skiff_client::Client;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::proxy::balancer::Failures;
use super::proxy::mirror;
use routes::{Endpoints, Routes};
use tls::{CertError, Certificates, Resolver};

/// Where the node serves Ingresses; `None`: not on that protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngressListen {
    /// Plain HTTP/1.1 (`--ingress-http-listen`).
    pub http: Option<SocketAddr>,
    /// HTTPS with certificates from TLS Secrets (`--ingress-https-listen`).
    pub https: Option<SocketAddr>,
}

/// The mirrors the routes are built from.
#[derive(Clone, Default)]
struct Mirrors {
    ingresses: mirror::Objects<Ingress>,
    classes: mirror::Objects<IngressClass>,
    services: mirror::Objects<Service>,
    slices: mirror::Objects<EndpointSlice>,
    secrets: mirror::Objects<Secret>,
}

/// Binds the listeners of `listen` (a listener that cannot bind is logged and left out) and
/// serves the cluster's Ingresses on them until `stop`, listing `node_ip` in their status.
pub async fn start(
    client: Client,
    listen: IngressListen,
    node_ip: IpAddr,
    stop: CancellationToken,
) {
    let (routes_tx, routes) = watch::channel(Arc::new(Routes::default()));
    let (certificates_tx, certificates) = watch::channel(Arc::new(Certificates::default()));
    let shared = server::Shared {
        routes,
        failures: Arc::new(Failures::default()),
        pool: Arc::default(),
    };
    let http = bind(listen.http.map(|a| on_node(a, node_ip)), "HTTP").await;
    let https = bind(listen.https.map(|a| on_node(a, node_ip)), "HTTPS").await;
    if http.is_none() && https.is_none() {
        return;
    }
    if let Some(listener) = http {
        tokio::spawn(server::serve(listener, None, shared.clone(), stop.clone()));
    }
    let tls = https.is_some();
    if let Some(listener) = https {
        let acceptor = acceptor(Resolver(certificates));
        tokio::spawn(server::serve(
            listener,
            Some(acceptor),
            shared,
            stop.clone(),
        ));
    }
    let mirrors = Mirrors::default();
    let changed = Arc::new(Notify::new());
    tokio::spawn(mirror::run(
        client.clone(),
        mirrors.ingresses.clone(),
        changed.clone(),
        stop.clone(),
    ));
    tokio::spawn(mirror::run(
        client.clone(),
        mirrors.classes.clone(),
        changed.clone(),
        stop.clone(),
    ));
    tokio::spawn(mirror::run(
        client.clone(),
        mirrors.services.clone(),
        changed.clone(),
        stop.clone(),
    ));
    tokio::spawn(mirror::run(
        client.clone(),
        mirrors.slices.clone(),
        changed.clone(),
        stop.clone(),
    ));
    // The TLS Secrets the Ingresses name, each watched on its own once named (the node
    // authorizer lets a node read those, not every Secret).
    let secrets = tls.then(|| SecretMirrors {
        client: client.clone(),
        started: BTreeSet::new(),
        changed: changed.clone(),
        stop: stop.clone(),
    });
    let published = Published { client, node_ip };
    tokio::spawn(follow(
        mirrors,
        changed,
        routes_tx,
        certificates_tx,
        published,
        secrets,
        stop,
    ));
}

/// Watches of the TLS Secrets Ingresses name, started as they are first named.
struct SecretMirrors {
    client: Client,
    started: BTreeSet<(String, String)>,
    changed: Arc<Notify>,
    stop: CancellationToken,
}

impl SecretMirrors {
    fn watch(&mut self, ingresses: &[&Ingress], secrets: &mirror::Objects<Secret>) {
        let named = ingresses.iter().flat_map(|i| {
            let namespace = i.metadata.namespace.clone().unwrap_or_default();
            i.spec
                .iter()
                .flat_map(|s| s.tls.iter().flatten())
                .filter_map(|t| t.secret_name.clone())
                .map(move |name| (namespace.clone(), name))
        });
        for secret in named.collect::<Vec<_>>() {
            if self.started.insert(secret.clone()) {
                tokio::spawn(mirror::run_named(
                    self.client.clone(),
                    secrets.clone(),
                    secret,
                    self.changed.clone(),
                    self.stop.clone(),
                ));
            }
        }
    }
}

/// `addr`, with an unspecified address (`0.0.0.0`) read as the node's own: a wildcard
/// listener would take its port from every ClusterIP the node proxy serves on this node.
fn on_node(addr: SocketAddr, node_ip: IpAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(node_ip, addr.port())
    } else {
        addr
    }
}

async fn bind(addr: Option<SocketAddr>, what: &str) -> Option<TcpListener> {
    let addr = addr?;
    if addr.ip().is_unspecified() {
        tracing::warn!(
            %addr,
            "the node's own address is unknown (the agent listens on an unspecified address); \
             give the Ingress {what} listener an address: not serving it"
        );
        return None;
    }
    match TcpListener::bind(addr).await {
        Ok(listener) => {
            tracing::info!(%addr, "serving Ingresses over {what}");
            Some(listener)
        }
        Err(err) => {
            tracing::warn!(%addr, %err, "cannot listen for Ingress {what} traffic; not serving it");
            None
        }
    }
}

fn acceptor(resolver: Resolver) -> TlsAcceptor {
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(config))
}

/// Where the node's address goes into the served Ingresses' status.
struct Published {
    client: Client,
    node_ip: IpAddr,
}

/// Rebuilds the routes and certificates after each change of a mirror, logs each TLS Secret
/// problem once while it lasts, and adds the node to the status of the Ingresses it serves.
async fn follow(
    mirrors: Mirrors,
    changed: Arc<Notify>,
    routes: watch::Sender<Arc<Routes>>,
    certificates: watch::Sender<Arc<Certificates>>,
    published: Published,
    mut secret_mirrors: Option<SecretMirrors>,
    stop: CancellationToken,
) {
    let mut reported: BTreeSet<CertError> = BTreeSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = changed.notified() => {}
        }
        let (built, (certs, problems), unlisted) = {
            let ingresses = mirrors.ingresses.lock().expect("mirror lock");
            let classes = mirrors.classes.lock().expect("mirror lock");
            let served: Vec<&Ingress> = ingresses
                .values()
                .filter(|i| is_served_by(i, classes.values(), SKIFF_CONTROLLER))
                .collect();
            let services = mirrors.services.lock().expect("mirror lock");
            let slices = mirrors.slices.lock().expect("mirror lock");
            let endpoints = Endpoints {
                services: &services,
                slices: slices.values().collect(),
            };
            if let Some(watches) = &mut secret_mirrors {
                watches.watch(&served, &mirrors.secrets);
            }
            let secrets = mirrors.secrets.lock().expect("mirror lock");
            let unlisted: Vec<Ingress> = served
                .iter()
                .filter(|i| !status::lists(i, published.node_ip))
                .map(|i| (*i).clone())
                .collect();
            (
                Routes::build(served.iter().copied(), &endpoints),
                Certificates::build(served.iter().copied(), &secrets),
                unlisted,
            )
        };
        routes.send_replace(Arc::new(built));
        certificates.send_replace(Arc::new(certs));
        let problems: BTreeSet<CertError> = problems.into_iter().collect();
        for problem in problems.difference(&reported) {
            tracing::warn!(%problem, "ingress: a host is served without a certificate");
        }
        // Also when the Secrets were not listed yet at the first build.
        for solved in reported.difference(&problems) {
            tracing::info!(%solved, "ingress: a TLS Secret problem is gone");
        }
        reported = problems;
        status::publish(&published.client, published.node_ip, unlisted).await;
    }
}

#[cfg(test)]
mod tests;
