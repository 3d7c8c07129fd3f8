//! The flags pacing a node's pod events (`skiff agent` and the dev server's node), named after
//! the kubelet's `--event-qps` and `--event-burst`.

use clap::Args;
use skiff_node_runtime::agent::{AgentBuilder, EventLimits};

#[derive(Args, Debug, Clone)]
pub struct NodeEventArgs {
    /// Pod events sent a second at most, after a burst (the kubelet's `--event-qps`); 0 sends
    /// them unpaced. At most 1,000 wait to be sent; more are dropped, as the kubelet drops them.
    #[arg(long, value_name = "QPS", default_value_t = EventLimits::default().qps)]
    pub event_qps: u32,
    /// Pod events sent at once before `--event-qps` paces them (the kubelet's `--event-burst`).
    #[arg(long, value_name = "EVENTS", default_value_t = EventLimits::default().burst,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub event_burst: u32,
}

impl NodeEventArgs {
    /// `builder` pacing its events as these flags say.
    pub fn apply(&self, builder: AgentBuilder) -> AgentBuilder {
        builder.event_limits(EventLimits {
            qps: self.event_qps,
            burst: self.event_burst,
        })
    }
}
