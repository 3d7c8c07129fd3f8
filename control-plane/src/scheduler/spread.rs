//! Pod topology spread constraints: `DoNotSchedule` constraints filter nodes whose domain would
//! exceed `maxSkew`, `ScheduleAnyway` constraints score emptier domains higher.

use std::collections::HashMap;

use skiff_api::k8s_openapi::api::core::v1::{Pod, TopologySpreadConstraint};
use skiff_api::selector::LabelSelector;

use super::node_affinity;
use super::snapshot::{ClusterSnapshot, NodeInfo, PodInfo};

/// One constraint with the matching pods counted per domain.
struct Constraint {
    topology_key: String,
    max_skew: i64,
    /// Matching pods per domain, over nodes eligible for the pod (zero for empty domains).
    counts: HashMap<String, i64>,
    /// The smallest count (0 when fewer domains exist than `minDomains`).
    min: i64,
    /// 1 if the incoming pod matches the selector itself.
    own: i64,
}

impl Constraint {
    fn new(
        snapshot: &ClusterSnapshot,
        pod: &Pod,
        me: &PodInfo,
        c: &TopologySpreadConstraint,
    ) -> Self {
        let selector = c
            .label_selector
            .as_ref()
            .and_then(|s| LabelSelector::from_k8s(s).ok());
        let matches = |p: &PodInfo| {
            p.namespace == me.namespace && selector.as_ref().is_some_and(|s| s.matches(&p.labels))
        };
        let honor_affinity = c.node_affinity_policy.as_deref() != Some("Ignore");
        let mut counts: HashMap<String, i64> = HashMap::new();
        for node in snapshot.nodes.values() {
            let Some(value) = node.labels.get(&c.topology_key) else {
                continue;
            };
            if honor_affinity && !node_affinity::required_matches(pod, node) {
                continue;
            }
            *counts.entry(value.clone()).or_default() +=
                node.pods.values().filter(|p| matches(p)).count() as i64;
        }
        let too_few_domains = c
            .min_domains
            .is_some_and(|m| (counts.len() as i64) < i64::from(m));
        let min = if too_few_domains {
            0
        } else {
            counts.values().copied().min().unwrap_or(0)
        };
        Constraint {
            topology_key: c.topology_key.clone(),
            max_skew: i64::from(c.max_skew.max(1)),
            counts,
            min,
            own: i64::from(matches(me)),
        }
    }

    fn count(&self, node: &NodeInfo) -> Option<i64> {
        let value = node.labels.get(&self.topology_key)?;
        Some(self.counts.get(value).copied().unwrap_or(0))
    }
}

/// The incoming pod's spread constraints, evaluated once against the snapshot.
pub struct Spread {
    hard: Vec<Constraint>,
    soft: Vec<Constraint>,
}

impl Spread {
    pub fn new(snapshot: &ClusterSnapshot, pod: &Pod) -> Self {
        let me = PodInfo::of(pod);
        let (mut hard, mut soft) = (Vec::new(), Vec::new());
        let constraints = pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_ref());
        for c in constraints.into_iter().flatten() {
            let constraint = Constraint::new(snapshot, pod, &me, c);
            if c.when_unsatisfiable == "ScheduleAnyway" {
                soft.push(constraint);
            } else {
                hard.push(constraint);
            }
        }
        Spread { hard, soft }
    }

    /// The reason this node is ruled out, in Kubernetes' words.
    pub fn filter(&self, node: &NodeInfo) -> Result<(), &'static str> {
        for c in &self.hard {
            let Some(count) = c.count(node) else {
                return Err(
                    "node(s) didn't match pod topology spread constraints (missing required label)",
                );
            };
            if count + c.own - c.min > c.max_skew {
                return Err("node(s) didn't match pod topology spread constraints");
            }
        }
        Ok(())
    }

    /// Matching pods in the node's domains under the soft constraints: lower is better.
    pub fn crowding(&self, node: &NodeInfo) -> i64 {
        self.soft.iter().filter_map(|c| c.count(node)).sum()
    }
}
