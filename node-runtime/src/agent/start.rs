//! Starting one container of a pod: pull, resolve, create, start; each failure leaves the
//! container waiting with its Kubernetes reason and a time to retry.

use tokio::time::Instant;

use super::container_config;
use super::env;
use super::pull_policy::{self, Plan};
use super::pull_secrets;
use super::reasons::Failure;
use super::status;
use super::volumes;
use super::worker::Worker;
use crate::runtime::ImageRef;

impl Worker {
    /// Gets record `i`'s image as its `imagePullPolicy` says: the node's copy, or a pull
    /// through the node's image service with the pod's pull secrets (`ErrImagePull`, then
    /// `ImagePullBackOff` while it keeps failing; `ErrImageNeverPull` when it may not pull).
    pub(super) async fn pull(&mut self, i: usize, now: Instant) -> Option<ImageRef> {
        let ctx = self.ctx.clone();
        let pod = self.pod.clone();
        let reference = self.records[i].spec.image.clone().unwrap_or_default();
        let policy = pull_policy::of(&self.records[i].spec);
        let present = ctx.images.image_status(&reference).await.ok().flatten();
        let pulled = match pull_policy::plan(&reference, policy, present) {
            Plan::Use(image) => Ok(*image),
            Plan::NeverPull => {
                let r = &mut self.records[i];
                let message = format!(
                    "Container image \"{reference}\" is not present with pull policy of Never"
                );
                ctx.events
                    .warning(&pod, "ErrImageNeverPull", message.clone());
                r.fail(Failure::NeverPull, message, &ctx.backoff, now);
                return None;
            }
            Plan::Pull => {
                let auth = pull_secrets::auth_for(&ctx.client, &pod, &reference).await;
                ctx.images.pull_image(&reference, auth.as_ref()).await
            }
        };
        let r = &mut self.records[i];
        match pulled {
            Ok(image) => {
                if r.image.as_ref() != Some(&image) {
                    ctx.events.normal(
                        &pod,
                        "Pulled",
                        format!(
                            "Container image \"{reference}\" ({}) is on the node",
                            image.digest
                        ),
                    );
                }
                r.pull_failures = 0;
                r.image = Some(image.clone());
                Some(image)
            }
            Err(err) => {
                r.pull_failures += 1;
                ctx.events.warning(
                    &pod,
                    "Failed",
                    format!("Failed to pull image \"{reference}\": {err}"),
                );
                let failure = Failure::Pull {
                    attempts: r.pull_failures,
                };
                r.fail(failure, err.to_string(), &ctx.backoff, now);
                None
            }
        }
    }

    /// Pulls, resolves, creates and starts record `i` (a new attempt if an earlier one exists).
    pub(super) async fn start(&mut self, i: usize, now: Instant) {
        let ctx = self.ctx.clone();
        let Some(runtime) = self.runtime.clone() else {
            return;
        };
        let pod = self.pod.clone();
        let old = self.records[i].id.take();
        let old_id = old.as_deref().map(|id| self.container_id(id));
        let r = &mut self.records[i];
        if let Some(old) = old {
            r.last_terminated = r
                .state
                .as_ref()
                .and_then(|s| status::terminated(s, old_id.as_deref()));
            if let Err(err) = runtime.remove_container(&old).await {
                tracing::warn!(%err, "removing the exited container failed");
            }
            r.previous_log = r.log_path.take();
            r.restart_count += 1;
        } else if r.started_before {
            r.restart_count += 1;
        }
        r.started_before = false;
        r.state = None;
        r.seen_exit = false;
        let image = match r.pulled.take() {
            Some(image) => image,
            None => match self.pull(i, now).await {
                Some(image) => image,
                None => {
                    let r = &mut self.records[i];
                    r.started_before = r.restart_count > 0;
                    return;
                }
            },
        };
        let prepared = self.volumes.clone().unwrap_or_default();
        let r = &mut self.records[i];
        let env = match env::resolve(&ctx.client, &pod, &r.spec).await {
            Ok(env) => env,
            Err(err) => {
                r.fail(Failure::Config, err.to_string(), &ctx.backoff, now);
                ctx.events.warning(&pod, "Failed", format!("Error: {err}"));
                return;
            }
        };
        let mounts = match volumes::mounts(&pod, &r.spec, &prepared, &env, &ctx.pods_dir).await {
            Ok(mounts) => mounts,
            Err(err) => {
                r.fail(Failure::Config, err.to_string(), &ctx.backoff, now);
                ctx.events.warning(&pod, "Failed", format!("Error: {err}"));
                return;
            }
        };
        let mut config =
            container_config::build(&pod, &r.spec, image, env, r.restart_count, mounts);
        config.resources.memory_bytes = config.resources.memory_bytes.or(ctx.default_memory);
        let sandbox = self.sandbox.clone().unwrap_or_default();
        let id = match runtime.create_container(&sandbox, &config).await {
            Ok(id) => id,
            Err(err) => {
                r.fail(Failure::Create, err.to_string(), &ctx.backoff, now);
                ctx.events.warning(&pod, "Failed", format!("Error: {err}"));
                return;
            }
        };
        ctx.events.normal(
            &pod,
            "Created",
            format!("Created container {}", config.name),
        );
        r.id = Some(id.clone());
        match runtime.start_container(&id).await {
            Ok(()) => {
                ctx.events.normal(
                    &pod,
                    "Started",
                    format!("Started container {}", config.name),
                );
                r.waiting = None;
                r.retry_at = None;
                if let Ok(status) = runtime.container_status(&id).await {
                    r.log_path = Some(status.log_path);
                    r.state = Some(status.state);
                }
            }
            Err(err) => r.fail(Failure::Start, err.to_string(), &ctx.backoff, now),
        }
    }

    /// Starts record `i`'s container that was created but not started.
    pub(super) async fn start_created(&mut self, i: usize, now: Instant) {
        let (Some(id), Some(runtime)) = (self.records[i].id.clone(), self.runtime.clone()) else {
            return;
        };
        if let Err(err) = runtime.start_container(&id).await {
            self.records[i].fail(Failure::Start, err.to_string(), &self.ctx.backoff, now);
        }
    }
}
