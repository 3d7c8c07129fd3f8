//! `skiff bench rollout`: roll an N-replica Deployment to a new version on an in-process dev
//! cluster and report how long it took and how far it went below / above the desired count.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use futures::StreamExt;
use serde_json::json;
use skiff_api::intstr;
use skiff_api::k8s_openapi::api::apps::v1::Deployment;
use skiff_api::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use skiff_client::{Api, ListParams};

use crate::deploy::guest_dir;
use crate::dev_cluster::DevCluster;
use crate::figures::ms;
use crate::{guest_path, tempfile_dir, RunOpts};

#[derive(Args, Debug)]
pub struct BenchRolloutArgs {
    /// Replicas of the Deployment.
    #[arg(long, default_value_t = 100)]
    pub replicas: i32,
    /// `maxSurge`: a number or a percentage.
    #[arg(long, default_value = "25%")]
    pub max_surge: String,
    /// `maxUnavailable`: a number or a percentage.
    #[arg(long, default_value = "25%")]
    pub max_unavailable: String,
    #[command(flatten)]
    pub run: RunOpts,
}

/// Longest wait for one rollout.
const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(600);
const NAME: &str = "bench-rollout";

/// The lowest available and the highest total replica counts a rollout went through.
#[derive(Debug, Default)]
struct Extremes {
    min_available: Option<i32>,
    max_replicas: i32,
}

pub async fn rollout(args: BenchRolloutArgs) -> anyhow::Result<()> {
    let guest = guest_path(&args.run.guest)?;
    let tmp = tempfile_dir(args.run.data_dir.as_deref())?;
    let surge = int_or_percent(&args.max_surge);
    let unavailable = int_or_percent(&args.max_unavailable);
    // Room for the old and the new version side by side.
    let pods = (args.replicas.max(0) as u32) * 2 + 10;
    let cluster = DevCluster::start(tmp.path(), guest_dir(&guest), pods).await?;
    let api: Api<Deployment> = cluster.client.api(Some("default"));
    let deployment = |version: &str| -> anyhow::Result<Deployment> {
        Ok(serde_json::from_value(json!({
            "metadata": {"name": NAME},
            "spec": {
                "replicas": args.replicas,
                "selector": {"matchLabels": {"app": NAME}},
                "strategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                "template": {"metadata": {"labels": {"app": NAME}}, "spec": {"containers": [{
                    "name": "guest", "image": format!("file:{}", guest.display()),
                    "env": [{"name": "MESSAGE", "value": version}]
                }]}}
            }
        }))?)
    };
    println!(
        "skiff bench rollout: {} replicas of {}, maxSurge {}, maxUnavailable {}",
        args.replicas,
        guest.display(),
        args.max_surge,
        args.max_unavailable
    );
    let started = Instant::now();
    let created = api.create(&deployment("v1")?).await?;
    wait_rolled_out(&api, &created).await?;
    println!(
        "first version, create until rolled out:   {}",
        ms(started.elapsed())
    );
    let started = Instant::now();
    // A merge patch replaces the container list whole.
    let v2 = deployment("v2")?;
    let patched = api
        .patch(
            NAME,
            &json!({"spec": {"template": v2.spec.map(|s| s.template)}}),
        )
        .await?;
    let extremes = wait_rolled_out(&api, &patched).await?;
    println!(
        "new version, patch until rolled out:      {}",
        ms(started.elapsed())
    );
    let floor =
        args.replicas - intstr::scaled_value(&unavailable, args.replicas, false).unwrap_or(0);
    let ceiling = args.replicas + intstr::scaled_value(&surge, args.replicas, true).unwrap_or(0);
    println!(
        "during it: at least {} available (maxUnavailable allows {floor}), at most {} pods (maxSurge allows {ceiling})",
        extremes.min_available.unwrap_or(args.replicas),
        extremes.max_replicas
    );
    cluster.shutdown().await;
    Ok(())
}

fn int_or_percent(text: &str) -> IntOrString {
    text.parse()
        .map(IntOrString::Int)
        .unwrap_or_else(|_| IntOrString::String(text.to_string()))
}

/// Follows the Deployment's status from `from` until its rollout is done, noting the extremes.
async fn wait_rolled_out(api: &Api<Deployment>, from: &Deployment) -> anyhow::Result<Extremes> {
    let generation = from.metadata.generation.unwrap_or(0);
    let version = from.metadata.resource_version.clone().unwrap_or_default();
    let mut events = api.watch(&ListParams::default(), &version).await?;
    let deadline = tokio::time::Instant::now() + ROLLOUT_TIMEOUT;
    let mut extremes = Extremes::default();
    loop {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .with_context(|| format!("the rollout did not finish within {ROLLOUT_TIMEOUT:?}"))?;
        let Some(event) = event else {
            bail!("the deployment watch ended early")
        };
        let d = event?.object;
        let spec_replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let Some(status) = d
            .status
            .filter(|s| s.observed_generation >= Some(generation))
        else {
            continue;
        };
        let available = status.available_replicas.unwrap_or(0);
        let replicas = status.replicas.unwrap_or(0);
        extremes.min_available = Some(
            extremes
                .min_available
                .map_or(available, |m| m.min(available)),
        );
        extremes.max_replicas = extremes.max_replicas.max(replicas);
        let done = status.updated_replicas == Some(spec_replicas)
            && replicas == spec_replicas
            && available == spec_replicas;
        if done {
            return Ok(extremes);
        }
    }
}
