//! Ending a pod on the node: for a deleted pod, run its containers' preStop hooks
//! (`pre_stop.rs`); stop its containers within what is left of the grace period, remove its
//! sandbox, host ports and volumes, and for a deleted pod remove it from the API for good.

use std::time::Duration;

use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_client::DeleteParams;

use super::lifecycle;
use super::pre_stop::{self, Hook};
use super::probes::Target;
use super::volumes;
use super::worker::Worker;
use crate::runtime::ContainerState;

/// Pause between attempts of the final delete.
const DELETE_RETRY: Duration = Duration::from_secs(1);

impl Worker {
    /// The agent is stopping: the pod's containers stop with it, unless its runtime keeps
    /// them running for the next agent.
    pub(super) async fn agent_stopping(&mut self) {
        if self.runtime.as_ref().is_some_and(|r| r.outlives_agent()) {
            tracing::debug!(pod = %self.name, "leaving the pod running for the next agent");
            return;
        }
        self.teardown(false).await
    }

    /// Stops everything of this pod, which then no longer counts on the node; for a deleted
    /// pod, removes it from the API for good.
    pub(super) async fn teardown(&mut self, final_delete: bool) {
        let grace = lifecycle::termination_grace(
            self.pod.metadata.deletion_grace_period_seconds,
            self.pod
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds),
        );
        let grace = if final_delete {
            self.run_pre_stop_hooks(grace).await
        } else {
            grace
        };
        if let Some(runtime) = self.runtime.clone() {
            for r in &self.records {
                let Some(id) = r.id.as_ref() else {
                    continue;
                };
                if matches!(r.state, Some(ContainerState::Running { .. })) {
                    self.ctx.events.normal(
                        &self.pod,
                        "Killing",
                        format!("Stopping container {}", r.spec.name),
                    );
                }
                if let Err(err) = runtime.stop_container(id, grace).await {
                    tracing::warn!(pod = %self.name, %err, "stopping container failed");
                }
            }
            if let Err(err) = runtime.remove_pod_sandbox(&self.uid).await {
                tracing::warn!(pod = %self.name, %err, "removing the pod sandbox failed");
            }
        }
        self.host_ports.close();
        if self.network.take().is_some() {
            if let Some(networks) = &self.ctx.network {
                networks.detach(&self.uid).await;
            }
        }
        if let Err(err) = volumes::remove(&self.ctx.pods_dir, &self.uid).await {
            tracing::warn!(pod = %self.name, %err, "removing the pod's volumes failed");
        }
        self.ctx.logs.remove(&self.namespace, &self.name, &self.uid);
        self.release();
        if final_delete {
            self.delete_from_api().await;
        }
    }

    /// Runs the preStop hooks of the running containers together within `grace`; the grace
    /// left for stopping them.
    async fn run_pre_stop_hooks(&self, grace: Duration) -> Duration {
        let Some(runtime) = self.runtime.clone() else {
            return grace;
        };
        let pod_ip = self
            .pod_ip
            .clone()
            .unwrap_or_else(|| self.ctx.host_ip.clone());
        let mut hooks = Vec::new();
        for r in &self.records {
            let (Some(id), Some(ContainerState::Running { .. })) = (&r.id, &r.state) else {
                continue;
            };
            match Hook::of(&r.spec, &pod_ip, grace) {
                None => {}
                Some(Ok(hook)) => {
                    let target = Target {
                        pod_ip: pod_ip.clone(),
                        runtime: runtime.clone(),
                        container_id: id.clone(),
                    };
                    hooks.push((r.spec.name.clone(), hook, target));
                }
                Some(Err(err)) => self.failed_hook(&r.spec.name, &err.to_string()),
            }
        }
        if hooks.is_empty() {
            return grace;
        }
        let started = tokio::time::Instant::now();
        let runs = hooks
            .iter()
            .map(|(name, hook, target)| async move { (name, hook.run(target, grace).await) });
        for (name, result) in futures::future::join_all(runs).await {
            if let Err(why) = result {
                self.failed_hook(name, &why.to_string());
            }
        }
        pre_stop::grace_after_hooks(grace, started.elapsed())
    }

    fn failed_hook(&self, container: &str, why: &str) {
        tracing::warn!(pod = %self.name, container, why, "preStop hook failed");
        self.ctx.events.warning(
            &self.pod,
            "FailedPreStopHook",
            format!("PreStopHook failed for container {container}: {why}"),
        );
    }

    /// The final delete (grace 0) once the containers are gone, guarded by uid.
    async fn delete_from_api(&self) {
        let pods = self.ctx.client.api::<Pod>(Some(&self.namespace));
        for _ in 0..5 {
            match pods.get(&self.name).await {
                Ok(current) if current.metadata.uid.as_deref() != Some(self.uid.as_str()) => return,
                Ok(_) => {}
                Err(err) if err.is_not_found() => return,
                Err(err) => {
                    tracing::warn!(pod = %self.name, %err, "reading pod before final delete failed");
                    tokio::time::sleep(DELETE_RETRY).await;
                    continue;
                }
            }
            match pods
                .delete(
                    &self.name,
                    &DeleteParams {
                        grace_period_seconds: Some(0),
                    },
                )
                .await
            {
                Ok(()) => return,
                Err(err) if err.is_not_found() => return,
                Err(err) => {
                    tracing::warn!(pod = %self.name, %err, "final delete failed; retrying");
                    tokio::time::sleep(DELETE_RETRY).await;
                }
            }
        }
    }
}
