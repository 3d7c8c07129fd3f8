//! A pod's runtime and sandbox: re-attached after an agent restart, or chosen (by the pod's
//! RuntimeClass, else by its pulled images) and made once.

use std::sync::Arc;

use tokio::time::Instant;

use super::dns;
use super::log_index::pod_log_dir;
use super::reasons::Failure;
use super::recovery;
use super::runtime_choice::{self, ChoiceError};
use super::worker::Worker;
use crate::runtime::{ContainerRuntime, PodNetwork, PodSandboxConfig};

impl Worker {
    /// Re-attaches to this pod's sandbox and containers if they outlived an agent restart:
    /// the latest attempt of each container is taken over, not started again.
    pub(super) async fn adopt(&mut self) {
        let Some(found) = self.ctx.survivors.take(&self.uid) else {
            return;
        };
        let runtime = found.runtime;
        self.container_events = Some(runtime.subscribe());
        let latest = recovery::latest_by_name(&found.containers);
        for r in &mut self.records {
            if let Some(container) = latest.get(&r.spec.name) {
                r.id = Some(container.id.clone());
                r.restart_count = container.attempt;
                r.started_before = false;
                r.image = Some(container.image.clone());
                r.state = Some(container.state.clone());
                r.log_path = Some(container.log_path.clone());
            }
        }
        let sandbox = self.uid.clone();
        self.learn_pod_ip(runtime.as_ref(), &sandbox).await;
        self.sandbox = Some(sandbox);
        self.runtime = Some(runtime);
    }

    /// Chooses the runtime and makes the pod sandbox on it, once; false while it cannot.
    pub(super) async fn ensure_sandbox(&mut self, now: Instant) -> bool {
        if self.sandbox.is_some() {
            return true;
        }
        if self.waiting_to_retry(now) {
            return false;
        }
        let runtime = match self.runtime.clone() {
            Some(runtime) => runtime,
            None => match self.choose_runtime(now).await {
                Some(runtime) => {
                    self.container_events = Some(runtime.subscribe());
                    self.runtime = Some(runtime.clone());
                    runtime
                }
                None => return false,
            },
        };
        let Some(network) = self.ensure_network(now).await else {
            return false;
        };
        let config = PodSandboxConfig {
            network: network.clone(),
            uid: self.uid.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            labels: self.pod.metadata.labels.clone().unwrap_or_default(),
            log_directory: pod_log_dir(&self.ctx.pods_dir, &self.uid),
            hostname: self
                .pod
                .spec
                .as_ref()
                .and_then(|spec| spec.hostname.clone())
                .unwrap_or_else(|| self.name.clone()),
            dns: Some(dns::pod_dns(
                &self.namespace,
                self.pod.spec.as_ref(),
                &self.ctx.cluster_dns,
                &self.ctx.node_dns,
            )),
        };
        match runtime.run_pod_sandbox(&config).await {
            Ok(id) => {
                self.learn_pod_ip(runtime.as_ref(), &id).await;
                if let Some(network) = &network {
                    self.pod_ip = Some(network.ip.to_string());
                }
                self.sandbox = Some(id);
                true
            }
            Err(err) => {
                let message = format!("creating the pod sandbox: {err}");
                self.all_fail(Failure::Sandbox, message, now);
                false
            }
        }
    }

    /// The pod's own network, attached once (Some(None): the pod shares the node's network,
    /// as every pod of a host-network node and `hostNetwork` pods do); None while it cannot
    /// be attached (no address left, a netlink failure), which the pod shows.
    async fn ensure_network(&mut self, now: Instant) -> Option<Option<PodNetwork>> {
        let host_network = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let Some(networks) = self.ctx.network.clone().filter(|_| !host_network) else {
            return Some(None);
        };
        if let Some(network) = &self.network {
            return Some(Some(network.clone()));
        }
        match networks.attach(&self.uid).await {
            Ok(network) => {
                self.network = Some(network.clone());
                Some(Some(network))
            }
            Err(err) => {
                let message = format!("setting up the pod network: {err}");
                self.all_fail_with_event("FailedCreatePodSandBox", Failure::Sandbox, message, now);
                None
            }
        }
    }

    async fn learn_pod_ip(&mut self, runtime: &dyn ContainerRuntime, sandbox: &String) {
        self.pod_ip = match runtime.pod_sandbox_status(sandbox).await {
            Ok(status) => status.ip,
            Err(err) => {
                tracing::warn!(pod = %self.name, %err, "pod sandbox status failed");
                None
            }
        };
    }

    /// Every container waits for the same failure.
    pub(super) fn all_fail(&mut self, failure: Failure, message: String, now: Instant) {
        for r in &mut self.records {
            r.fail(failure, message.clone(), &self.ctx.backoff, now);
        }
    }

    /// Every container waits for the same failure, with a warning event `reason` the first time
    /// this message is seen (not again while the pod keeps waiting for it).
    pub(super) fn all_fail_with_event(
        &mut self,
        reason: &str,
        failure: Failure,
        message: String,
        now: Instant,
    ) {
        let repeated = self
            .records
            .iter()
            .any(|r| r.waiting.as_ref().is_some_and(|(_, m)| *m == message));
        if !repeated {
            self.ctx.events.warning(&self.pod, reason, message.clone());
        }
        self.all_fail(failure, message, now);
    }

    /// Chooses the pod's runtime: by its RuntimeClass, else by its images, pulled first.
    /// When this node has no runtime for them, the containers wait `RuntimeUnavailable` with
    /// the reason (and one `FailedCreatePodSandBox` event) and the choice is tried again with
    /// back-off, as pulls are.
    async fn choose_runtime(&mut self, now: Instant) -> Option<Arc<dyn ContainerRuntime>> {
        let class = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.runtime_class_name.clone());
        let chosen = match class {
            Some(class) => {
                runtime_choice::by_class(&self.ctx.client, &self.ctx.runtimes, &class).await
            }
            None => {
                let mut images = Vec::new();
                for i in 0..self.records.len() {
                    let image = self.pull(i, now).await?;
                    self.records[i].pulled = Some(image.clone());
                    images.push(image);
                }
                runtime_choice::by_images(&self.ctx.runtimes, &images)
            }
        };
        let err = match chosen {
            Ok(runtime) => return Some(runtime),
            Err(err) => err,
        };
        let failure = match err {
            ChoiceError::Lookup { .. } => Failure::Sandbox,
            ChoiceError::NoRuntimeForImage { .. }
            | ChoiceError::LinuxImage { .. }
            | ChoiceError::NoHandler { .. } => {
                self.runtime_unavailable += 1;
                Failure::RuntimeUnavailable {
                    attempts: self.runtime_unavailable,
                }
            }
            ChoiceError::UnknownClass { .. } => Failure::Config,
        };
        let message = err.to_string();
        self.all_fail_with_event("FailedCreatePodSandBox", failure, message, now);
        None
    }
}
