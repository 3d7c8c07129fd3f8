//! `skiff create job NAME --from=cronjob/NAME`: starts a CronJob's Job by hand (`kubectl create job`).

use anyhow::Context;
use clap::{Args, Subcommand};
use skiff_api::batch::{job_from_cronjob, INSTANTIATE};
use skiff_api::k8s_openapi::api::batch::v1::{CronJob, Job};

use super::client;
use crate::cli::ClientOpts;

#[derive(Subcommand, Debug)]
pub enum CreateCommand {
    /// Create a Job from a CronJob's template: `skiff create job NAME --from=cronjob/NAME`.
    Job(CreateJobArgs),
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
    let CreateCommand::Job(args) = command;
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
