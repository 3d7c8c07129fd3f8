//! `skiff rollout`: watch, list, undo, pause, resume and restart a Deployment's rollouts
//! (as `kubectl rollout`). The history is the Deployment's ReplicaSets, one per revision.
//! A StatefulSet's rollout can be followed and restarted.

mod history;
mod statefulset_status;
mod status;
mod undo;

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;
use skiff_api::k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use skiff_client::{Api, ListParams};
use skiff_control_plane::controllers::deployment::REVISION_ANNOTATION;

use super::{client, kind};
use crate::cli::ClientOpts;

/// The template annotation `rollout restart` sets to roll every pod.
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

#[derive(Subcommand, Debug)]
pub enum RolloutCommand {
    /// Follow a rollout until it finishes; non-zero if it passes its progress deadline.
    Status(StatusArgs),
    /// List a Deployment's revisions, or show one.
    History(HistoryArgs),
    /// Roll back to the previous revision, or to `--to-revision`.
    Undo(UndoArgs),
    /// Stop rolling out template changes (scaling still applies).
    Pause(Target),
    /// Continue a paused rollout.
    Resume(Target),
    /// Replace every pod by rolling out the template with a new restart time.
    Restart(Target),
}

/// Which workload: `deployment/NAME`, or `deployment NAME` (`statefulset/NAME` for status
/// and restart).
#[derive(Args, Debug)]
pub struct Target {
    /// `deployment/NAME`, or `deployment NAME` (short names work).
    #[arg(required = true, num_args = 1..=2)]
    pub target: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: Target,
    /// Give up after this long (`90s`, `5m`, `1h`; a bare number is seconds); 0 waits forever.
    #[arg(long, default_value = "0", value_parser = crate::duration::parse)]
    pub timeout: Duration,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub target: Target,
    /// Show the pod template of this revision.
    #[arg(long)]
    pub revision: Option<i64>,
}

#[derive(Args, Debug)]
pub struct UndoArgs {
    #[command(flatten)]
    pub target: Target,
    /// The revision to go back to (default: the one before the current).
    #[arg(long, default_value_t = 0)]
    pub to_revision: i64,
}

pub async fn run(command: RolloutCommand, opts: &ClientOpts) -> anyhow::Result<()> {
    let client = client(opts)?;
    let api: Api<Deployment> = client.api(Some(&opts.namespace));
    let statefulsets: Api<StatefulSet> = client.api(Some(&opts.namespace));
    match &command {
        RolloutCommand::Status(StatusArgs { target, timeout }) => {
            if let Workload::StatefulSet(name) = workload(target)? {
                return status::run(&statefulsets, &name, *timeout).await;
            }
        }
        RolloutCommand::Restart(target) => {
            if let Workload::StatefulSet(name) = workload(target)? {
                return restart_statefulset(&statefulsets, &name).await;
            }
        }
        _ => {}
    }
    match command {
        RolloutCommand::Status(args) => {
            status::run(&api, &deployment_name(&args.target)?, args.timeout).await
        }
        RolloutCommand::History(args) => {
            let name = deployment_name(&args.target)?;
            let replicasets = client.api(Some(&opts.namespace));
            history::run(&api, &replicasets, &name, args.revision).await
        }
        RolloutCommand::Undo(args) => {
            let name = deployment_name(&args.target)?;
            let replicasets = client.api(Some(&opts.namespace));
            undo::run(&api, &replicasets, &name, args.to_revision).await
        }
        RolloutCommand::Pause(target) => set_paused(&api, &deployment_name(&target)?, true).await,
        RolloutCommand::Resume(target) => set_paused(&api, &deployment_name(&target)?, false).await,
        RolloutCommand::Restart(target) => restart(&api, &deployment_name(&target)?).await,
    }
}

/// A workload whose rollout a command names.
#[derive(Debug, PartialEq, Eq)]
enum Workload {
    Deployment(String),
    StatefulSet(String),
}

/// The workload named by `deployment/NAME`, `statefulset/NAME` or `KIND NAME`.
fn workload(target: &Target) -> anyhow::Result<Workload> {
    let (kind_name, name) =
        super::kind_and_name(&target.target, "name the target as deployment/NAME")?;
    match kind(&kind_name)?.kind {
        "Deployment" => Ok(Workload::Deployment(name)),
        "StatefulSet" => Ok(Workload::StatefulSet(name)),
        _ => anyhow::bail!("rollouts are for deployments and statefulsets only, not {kind_name}"),
    }
}

/// The Deployment's name from `deployment/NAME` or `deployment NAME`.
fn deployment_name(target: &Target) -> anyhow::Result<String> {
    match workload(target)? {
        Workload::Deployment(name) => Ok(name),
        Workload::StatefulSet(_) => {
            anyhow::bail!("statefulsets support only rollout status and restart")
        }
    }
}

fn is_paused(deployment: &Deployment) -> bool {
    deployment.spec.as_ref().and_then(|s| s.paused) == Some(true)
}

async fn set_paused(api: &Api<Deployment>, name: &str, paused: bool) -> anyhow::Result<()> {
    let word = if paused { "paused" } else { "resumed" };
    if is_paused(&api.get(name).await?) == paused {
        anyhow::bail!("deployment.apps/{name} is already {word}");
    }
    api.patch(name, &json!({"spec": {"paused": paused}}))
        .await?;
    println!("deployment.apps/{name} {word}");
    Ok(())
}

async fn restart(api: &Api<Deployment>, name: &str) -> anyhow::Result<()> {
    if is_paused(&api.get(name).await?) {
        anyhow::bail!(
            "can't restart paused deployment (run skiff rollout resume deployment/{name} first)"
        );
    }
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {
        RESTARTED_AT: skiff_api::time::now_rfc3339()
    }}}}});
    api.patch(name, &patch).await?;
    println!("deployment.apps/{name} restarted");
    Ok(())
}

/// Rolls every pod of a StatefulSet (from the highest ordinal down) by stamping its template.
async fn restart_statefulset(api: &Api<StatefulSet>, name: &str) -> anyhow::Result<()> {
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {
        RESTARTED_AT: skiff_api::time::now_rfc3339()
    }}}}});
    api.patch(name, &patch).await?;
    println!("statefulset.apps/{name} restarted");
    Ok(())
}

/// The Deployment's ReplicaSets (its revisions), oldest revision first.
async fn revisions(
    replicasets: &Api<ReplicaSet>,
    deployment: &Deployment,
) -> anyhow::Result<Vec<(i64, ReplicaSet)>> {
    let uid = deployment.metadata.uid.as_deref().unwrap_or_default();
    let (all, _) = replicasets.list(&ListParams::default()).await?;
    let mut owned: Vec<(i64, ReplicaSet)> = all
        .into_iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true) && o.uid == uid)
        })
        .map(|rs| (revision(&rs), rs))
        .collect();
    owned.sort_by_key(|(revision, _)| *revision);
    Ok(owned)
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION_ANNOTATION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(words: &[&str]) -> Target {
        Target {
            target: words.iter().map(|w| w.to_string()).collect(),
        }
    }

    #[test]
    fn targets_name_a_deployment() {
        for words in [
            &["deployment/web"][..],
            &["deploy", "web"],
            &["deployments.apps/web"],
        ] {
            assert_eq!(
                deployment_name(&target(words)).expect("name"),
                "web",
                "{words:?}"
            );
        }
        for words in [&["web"][..], &["pod/web"], &["deployment/"], &["sts/db"]] {
            assert!(deployment_name(&target(words)).is_err(), "{words:?}");
        }
        for words in [&["statefulset/db"][..], &["sts", "db"]] {
            assert_eq!(
                workload(&target(words)).expect("workload"),
                Workload::StatefulSet("db".into()),
                "{words:?}"
            );
        }
    }
}
