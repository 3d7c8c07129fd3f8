//! Writing a pod's status through `/status` from what its worker knows.

use serde_json::json;

use super::status::{self, ContainerReport, Probed};
use super::worker::Worker;

impl Worker {
    fn reports(&self) -> Vec<ContainerReport> {
        self.records
            .iter()
            .map(|r| ContainerReport {
                name: r.spec.name.clone(),
                role: r.role,
                image: r.spec.image.clone().unwrap_or_default(),
                image_id: r.image.as_ref().map(|i| i.digest.clone()),
                container_id: r.id.as_deref().map(|id| self.container_id(id)),
                restart_count: r.restart_count,
                state: r.state.clone(),
                waiting: r.waiting.clone(),
                last_terminated: r.last_terminated.clone(),
                probed: r.probes.as_ref().map_or_else(Probed::default, |p| Probed {
                    started: p.started(),
                    ready: p.ready(),
                }),
            })
            .collect()
    }

    /// Writes the pod's status when it changed; remembers a refusal to try again. A pod that
    /// ended in a terminal phase no longer counts on the node, nor holds its host ports.
    pub(super) async fn publish(&mut self) {
        let host_ip = &self.ctx.host_ip;
        let mut status = status::pod_status(
            self.policy(),
            &self.reports(),
            status::Addresses {
                host_ip,
                pod_ip: self.pod_ip.as_deref().unwrap_or(host_ip),
            },
            &self.start_time,
            self.published.as_ref(),
            &status::now(),
        );
        if let Some((reason, message)) = &self.failure {
            status.phase = Some("Failed".into());
            status.reason = Some(reason.clone());
            status.message = Some(message.clone());
            if self.records.iter().all(|r| r.id.is_none()) {
                // Rejected before any container was made: nothing waits to be created.
                status.container_statuses = None;
            }
        }
        if self.published.as_ref() == Some(&status) {
            return;
        }
        let body = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "status": status,
        });
        let pods = skiff_api::resources::by_name("pods").expect("pods are served");
        match self
            .ctx
            .client
            .replace_status(pods, Some(&self.namespace), &self.name, &body)
            .await
        {
            Ok(_) => {
                if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
                    self.release();
                    self.host_ports.close();
                }
                self.published = Some(status);
                self.publish_failed = false;
            }
            Err(err) => {
                tracing::warn!(pod = %self.name, %err, "publishing pod status failed; will retry");
                self.publish_failed = true;
            }
        }
    }
}
