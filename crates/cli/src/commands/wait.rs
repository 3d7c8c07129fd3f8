//! `skiff wait --for=condition=TYPE KIND/NAME --timeout 60s`: waits until an object's status
//! condition of that type is `True` (`kubectl wait`).

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use futures::StreamExt;
use serde_json::Value;
use skiff_api::resources::ResourceKind;
use skiff_client::{Client, ListParams};

use super::{client, kind};
use crate::cli::ClientOpts;
use crate::output::qualified_name;

#[derive(Args, Debug)]
pub struct WaitArgs {
    /// `KIND/NAME`, e.g. `job/pi`.
    pub target: String,
    /// `condition=TYPE` (case-insensitive), e.g. `condition=complete` or `condition=failed`.
    #[arg(long = "for")]
    pub condition: String,
    /// How long to wait: `30s`, `5m`, `1h` (seconds when no unit).
    #[arg(long, default_value = "30s", value_parser = crate::duration::parse)]
    pub timeout: Duration,
}

pub async fn run(args: WaitArgs, opts: &ClientOpts) -> anyhow::Result<()> {
    let (kind_name, name) = args
        .target
        .split_once('/')
        .context("the target must be KIND/NAME, e.g. job/pi")?;
    let kind = kind(kind_name)?;
    let condition = args
        .condition
        .strip_prefix("condition=")
        .context("--for must be condition=TYPE, e.g. condition=complete")?;
    let client = client(opts)?;
    let waited = tokio::time::timeout(
        args.timeout,
        wait_for(&client, kind, &opts.namespace, name, condition),
    )
    .await;
    match waited {
        Ok(result) => {
            result?;
            println!("{} condition met", qualified_name(kind, name));
            Ok(())
        }
        Err(_) => anyhow::bail!(
            "timed out waiting for the condition on {}/{name}",
            kind.plural
        ),
    }
}

/// Returns once the object has the condition; watches (re-watching after a broken stream).
async fn wait_for(
    client: &Client,
    kind: &ResourceKind,
    namespace: &str,
    name: &str,
    condition: &str,
) -> anyhow::Result<()> {
    let params = ListParams {
        field_selector: Some(format!("metadata.name={name}")),
        ..Default::default()
    };
    loop {
        match client.get(kind, Some(namespace), name).await {
            Ok(obj) if has_condition(&obj, condition) => return Ok(()),
            Ok(_) => {}
            Err(err) if err.is_not_found() => {}
            Err(err) => return Err(err.into()),
        }
        let mut events = client.watch(kind, Some(namespace), &params, "").await?;
        while let Some(event) = events.next().await {
            let Ok(event) = event else { break };
            if event.object["metadata"]["name"] == name && has_condition(&event.object, condition) {
                return Ok(());
            }
        }
        // The stream ended (a server restart or failover): look again after a moment.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `status.conditions[type=TYPE].status == "True"`, the type compared case-insensitively.
fn has_condition(obj: &Value, condition: &str) -> bool {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| {
            c["type"]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case(condition))
                && c["status"] == "True"
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions() {
        let job = json!({"status": {"conditions": [
            {"type": "Suspended", "status": "False"},
            {"type": "Complete", "status": "True"}]}});
        assert!(has_condition(&job, "complete") && has_condition(&job, "Complete"));
        assert!(!has_condition(&job, "failed") && !has_condition(&job, "suspended"));
    }
}
