//! Leader-only work: the controllers and the scheduler run on the member that leads the Raft
//! group, from the moment it has applied an entry of its own term until that term ends. Their
//! writes are fenced to the term, so a deposed leader's late writes fail on every member.

use skiff_raft_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::encryption::Encryption;
use crate::registry::allocation::ServiceRanges;
use crate::registry::Registry;
use crate::runtime::events::EventRecorder;
use crate::{apiserver_lease, authz, bootstrap, certificates, controllers, scheduler};

/// Runs the leader-only work whenever this member leads, each term under a child token of
/// `shutdown` that is cancelled when the term ends; `bootstrapped` turns true once the system
/// objects exist (after the first term this member leads).
pub fn spawn(
    store: Store,
    service_ranges: ServiceRanges,
    encryption: Encryption,
    signing: Option<certificates::Signing>,
    settings: controllers::Settings,
    shutdown: CancellationToken,
    bootstrapped: watch::Sender<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut status = store.status();
        loop {
            let term = tokio::select! {
                _ = shutdown.cancelled() => return,
                leading = status.wait_for(|s| s.leading.is_some()) => match leading {
                    Ok(s) => s.leading.unwrap_or_default(),
                    Err(_) => return,
                },
            };
            tracing::info!(term, "leading: starting the controllers and the scheduler");
            let term_token = shutdown.child_token();
            let registry = Registry::new(store.fenced(term))
                .with_service_ranges(service_ranges)
                .with_encryption(encryption.clone())
                .with_tokens(settings.tokens.clone());
            match bootstrap::ensure_system_objects(&registry).await {
                Ok(()) => {
                    bootstrapped.send_replace(true);
                }
                Err(err) => tracing::warn!(%err, "creating the system namespaces failed"),
            }
            run_term(&registry, settings.clone(), signing.clone(), &term_token);
            // The term's work stops when this iteration ends, however it ends.
            let _term_ends = term_token.drop_guard();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                ended = status.wait_for(|s| s.leading != Some(term)) => {
                    if ended.is_err() {
                        // The store stopped (shutdown or a storage failure).
                        return;
                    }
                }
            }
            tracing::warn!(
                term,
                "leadership ended: stopping the controllers and the scheduler"
            );
        }
    })
}

/// Starts the informers, controllers and scheduler of one leader term.
fn run_term(
    registry: &Registry,
    settings: controllers::Settings,
    signing: Option<certificates::Signing>,
    shutdown: &CancellationToken,
) {
    let informers = crate::runtime::Informers::start(registry, shutdown);
    let scheduler_metrics = settings.metrics.scheduler.clone();
    let csr_queue = settings.metrics.queues.queue("certificate");
    controllers::start(registry, &informers, settings, shutdown);
    let authorizer = authz::Authorizer::start(registry, shutdown);
    certificates::spawn(registry, authorizer, signing, csr_queue, shutdown);
    crate::authz::spawn_aggregation(registry.clone(), shutdown.clone());
    apiserver_lease::spawn_reconciler(
        registry.clone(),
        informers.leases.clone(),
        informers.endpoint_slices.clone(),
        informers.endpoints.clone(),
        shutdown.clone(),
    );
    scheduler::Scheduler {
        registry: registry.clone(),
        pods: informers.pods.clone(),
        nodes: informers.nodes.clone(),
        claims: informers.persistent_volume_claims.clone(),
        volumes: informers.persistent_volumes.clone(),
        classes: informers.storage_classes.clone(),
        events: EventRecorder::new(registry.clone(), scheduler::DEFAULT_SCHEDULER),
        metrics: scheduler_metrics,
    }
    .spawn(shutdown.clone());
}
