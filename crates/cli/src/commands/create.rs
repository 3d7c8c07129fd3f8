//! `skiff create job NAME --from=cronjob/NAME`: starts a CronJob's Job by hand (`kubectl create job`);
//! `skiff create token SA`: prints a ServiceAccount token (`kubectl create token`).

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use skiff_api::batch::{job_from_cronjob, INSTANTIATE};
use skiff_api::k8s_openapi::api::batch::v1::{CronJob, Job};

use super::client;
use crate::cli::ClientOpts;

#[derive(Subcommand, Debug)]
pub enum CreateCommand {
    /// Create a Job from a CronJob's template: `skiff create job NAME --from=cronjob/NAME`.
    Job(CreateJobArgs),
    /// Print a token for a ServiceAccount: `skiff create token default -n team --duration 1h`.
    Token(CreateTokenArgs),
}

#[derive(Args, Debug)]
pub struct CreateTokenArgs {
    /// The ServiceAccount.
    pub service_account: String,
    /// How long the token lives (at least 10m; the server caps it at 48h); default 1h.
    #[arg(long, value_parser = crate::duration::parse)]
    pub duration: Option<std::time::Duration>,
    /// An audience of the token (repeatable); default the API server's.
    #[arg(long = "audience")]
    pub audiences: Vec<String>,
    /// Bind the token to this pod (`pod/NAME` or `NAME`): it stops working when the pod goes.
    #[arg(long, conflicts_with = "bound_object_kind")]
    pub bound_pod: Option<String>,
    /// Bind the token to an object of this kind, as kubectl's flag: it stops working when the
    /// object goes.
    #[arg(long, value_parser = ["Pod", "Secret", "Node"], requires = "bound_object_name")]
    pub bound_object_kind: Option<String>,
    /// The name of the object to bind the token to.
    #[arg(long, requires = "bound_object_kind")]
    pub bound_object_name: Option<String>,
    /// The uid the object must have (the server refuses another with 409).
    #[arg(long, requires = "bound_object_kind")]
    pub bound_object_uid: Option<String>,
}

#[derive(Args, Debug)]
pub struct CreateJobArgs {
    /// Name of the new Job.
    pub name: String,
    /// The CronJob whose template to use: `cronjob/NAME`.
    #[arg(long)]
    pub from: String,
}

pub async fn run(command: CreateCommand, opts: &ClientOpts) -> anyhow::Result<()> {
    match command {
        CreateCommand::Job(args) => create_job(args, opts).await,
        CreateCommand::Token(args) => create_token(args, opts).await,
    }
}

async fn create_token(args: CreateTokenArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let mut spec = json!({"audiences": args.audiences});
    if let Some(duration) = args.duration {
        spec["expirationSeconds"] = json!(duration.as_secs());
    }
    if let Some(pod) = &args.bound_pod {
        let name = pod.strip_prefix("pod/").unwrap_or(pod);
        spec["boundObjectRef"] = json!({"kind": "Pod", "apiVersion": "v1", "name": name});
    }
    if let (Some(kind), Some(name)) = (&args.bound_object_kind, &args.bound_object_name) {
        spec["boundObjectRef"] = json!({"kind": kind, "apiVersion": "v1", "name": name});
        if let Some(uid) = &args.bound_object_uid {
            spec["boundObjectRef"]["uid"] = json!(uid);
        }
    }
    let answer = client(opts)?
        .create_token(&opts.namespace, &args.service_account, spec)
        .await
        .with_context(|| format!("serviceaccount {}", args.service_account))?;
    let token = answer
        .pointer("/status/token")
        .and_then(|t| t.as_str())
        .context("the server answered no token")?;
    println!("{token}");
    Ok(())
}

async fn create_job(args: CreateJobArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let source = args
        .from
        .strip_prefix("cronjob/")
        .or_else(|| args.from.strip_prefix("cronjobs/"))
        .or_else(|| args.from.strip_prefix("cj/"))
        .context("--from must be cronjob/NAME")?;
    let client = client(opts)?;
    let cronjob: CronJob = client
        .api(Some(&opts.namespace))
        .get(source)
        .await
        .with_context(|| format!("cronjob {source}"))?;
    let job = job_from_cronjob(
        &cronjob,
        &args.name,
        [(INSTANTIATE.to_string(), "manual".to_string())],
    );
    let created: Job = client.api(Some(&opts.namespace)).create(&job).await?;
    println!(
        "job.batch/{} created",
        created.metadata.name.unwrap_or_default()
    );
    Ok(())
}
