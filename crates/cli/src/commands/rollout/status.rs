//! `skiff rollout status`: follow a workload's status through a watch and print its
//! progress as `kubectl rollout status` does, until it is rolled out or fails.

use std::time::Duration;

use futures::StreamExt;
use skiff_api::k8s_openapi::api::apps::v1::Deployment;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_api::k8s_openapi::serde::de::DeserializeOwned;
use skiff_api::k8s_openapi::serde::Serialize;
use skiff_api::k8s_openapi::{Metadata, Resource};
use skiff_client::{Api, ListParams};

/// A workload whose rollout can be followed.
pub trait Rollout: Resource + Metadata<Ty = ObjectMeta> + DeserializeOwned + Serialize {
    /// Where the rollout stands; an error once it failed.
    fn progress(&self) -> anyhow::Result<Progress>;
}

impl Rollout for Deployment {
    fn progress(&self) -> anyhow::Result<Progress> {
        progress(self)
    }
}

/// `Progressing`'s reason once the rollout passed `progressDeadlineSeconds`.
const DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";

/// Where a rollout stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    Waiting(String),
    Done(String),
}

/// The rollout's state from the Deployment's status; an error once it passed its deadline.
fn progress(d: &Deployment) -> anyhow::Result<Progress> {
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let status = d.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or(0);
    if d.metadata.generation.unwrap_or(0) > observed {
        return Ok(Progress::Waiting(
            "Waiting for deployment spec update to be observed...".into(),
        ));
    }
    let exceeded = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some(DEADLINE_EXCEEDED));
    if exceeded {
        anyhow::bail!("deployment {name:?} exceeded its progress deadline");
    }
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let waiting = |what: String| {
        Ok(Progress::Waiting(format!(
            "Waiting for deployment {name:?} rollout to finish: {what}..."
        )))
    };
    if updated < desired {
        return waiting(format!(
            "{updated} out of {desired} new replicas have been updated"
        ));
    }
    if replicas > updated {
        return waiting(format!(
            "{} old replicas are pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return waiting(format!(
            "{available} of {updated} updated replicas are available"
        ));
    }
    Ok(Progress::Done(format!(
        "deployment {name:?} successfully rolled out"
    )))
}

/// Prints `obj`'s progress when it changed since `last`; true once the rollout is done.
fn report<K: Rollout>(obj: &K, last: &mut String) -> anyhow::Result<bool> {
    let (message, done) = match obj.progress()? {
        Progress::Waiting(message) => (message, false),
        Progress::Done(message) => (message, true),
    };
    if message != *last {
        println!("{message}");
        *last = message;
    }
    Ok(done)
}

pub async fn run<K: Rollout + Send + 'static>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let follow = follow(api, name);
    if timeout.is_zero() {
        return follow.await;
    }
    let kind = K::KIND.to_lowercase();
    tokio::time::timeout(timeout, follow)
        .await
        .map_err(|_| anyhow::anyhow!("timed out waiting for {kind} {name:?} to roll out"))?
}

/// Watches the workload until its rollout is done (or fails), starting over when the
/// watch ends, expires or breaks.
async fn follow<K: Rollout + Send + 'static>(api: &Api<K>, name: &str) -> anyhow::Result<()> {
    let mut last = String::new();
    loop {
        let current = api.get(name).await?;
        if report(&current, &mut last)? {
            return Ok(());
        }
        let from = current
            .metadata()
            .resource_version
            .clone()
            .unwrap_or_default();
        let events = api.watch(&ListParams::default(), &from).await?;
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            // An expired watch (410) or a server gone mid-stream: read again (the client
            // fails over between servers) and watch from there.
            let Ok(event) = event else {
                break;
            };
            if event.object.metadata().name.as_deref() != Some(name) {
                continue;
            }
            if event.event_type == "DELETED" {
                anyhow::bail!("{} {name:?} was deleted", K::KIND.to_lowercase());
            }
            if report(&event.object, &mut last)? {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(generation: i64, status: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": generation},
            "spec": {"replicas": 3, "selector": {}, "template": {}},
            "status": status,
        }))
        .expect("deployment")
    }

    fn counts(updated: i32, replicas: i32, available: i32) -> serde_json::Value {
        json!({"observedGeneration": 2, "updatedReplicas": updated, "replicas": replicas,
            "availableReplicas": available,
            "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]})
    }

    #[test]
    fn progress_reads_like_kubectl() {
        let waiting = |text: &str| Progress::Waiting(text.to_string());
        let rollout = |text: &str| {
            waiting(&format!(
                "Waiting for deployment \"web\" rollout to finish: {text}..."
            ))
        };
        let cases = [
            (
                "spec not observed",
                deployment(3, counts(3, 3, 3)),
                waiting("Waiting for deployment spec update to be observed..."),
            ),
            (
                "updating",
                deployment(2, counts(1, 4, 3)),
                rollout("1 out of 3 new replicas have been updated"),
            ),
            (
                "old pods left",
                deployment(2, counts(3, 4, 3)),
                rollout("1 old replicas are pending termination"),
            ),
            (
                "not yet available",
                deployment(2, counts(3, 3, 1)),
                rollout("1 of 3 updated replicas are available"),
            ),
            (
                "done",
                deployment(2, counts(3, 3, 3)),
                Progress::Done("deployment \"web\" successfully rolled out".into()),
            ),
        ];
        for (case, d, want) in cases {
            assert_eq!(progress(&d).expect(case), want, "{case}");
        }
    }

    #[test]
    fn a_passed_deadline_is_an_error() {
        let d = deployment(
            2,
            json!({"observedGeneration": 2, "updatedReplicas": 1, "replicas": 3,
                "conditions": [{"type": "Progressing", "status": "False",
                    "reason": DEADLINE_EXCEEDED}]}),
        );
        let err = progress(&d).expect_err("exceeded");
        assert!(
            err.to_string().contains("exceeded its progress deadline"),
            "{err}"
        );
    }
}
