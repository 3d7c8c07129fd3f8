//! The flags of a node's heartbeats (`skiff agent` and the dev server's node), named after the
//! kubelet's settings `nodeLeaseDurationSeconds` and `nodeStatusReportFrequency`.

use std::time::Duration;

use clap::Args;
use skiff_node_runtime::agent::{AgentBuilder, Heartbeats};

#[derive(Args, Debug, Clone)]
pub struct NodeHeartbeatArgs {
    /// The node Lease's duration in seconds; the agent renews it every quarter of this (the
    /// kubelet's `nodeLeaseDurationSeconds`). Keep it within the servers' `--node-grace-seconds`.
    #[arg(long, value_name = "SECONDS", default_value_t = 40,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub node_lease_duration_seconds: u64,
    /// How often the Node status is written when nothing in it changed, e.g. `5m` (the
    /// kubelet's `nodeStatusReportFrequency`); a change is written at the next renewal.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::duration::parse)]
    pub node_status_report_frequency: Duration,
}

impl NodeHeartbeatArgs {
    /// `builder` heartbeating as these flags say.
    pub fn apply(&self, builder: AgentBuilder) -> AgentBuilder {
        builder.heartbeat(Heartbeats {
            lease_duration: Duration::from_secs(self.node_lease_duration_seconds),
            status_report: self.node_status_report_frequency,
        })
    }
}
