//! The DaemonSet plan: which nodes need a pod and which pods go, replacing outdated pods at most
//! `maxUnavailable` at a time.

use std::collections::HashMap;
use std::sync::Arc;

use skiff_api::intstr;
use skiff_api::k8s_openapi::api::apps::v1::DaemonSet;
use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::REVISION_LABEL;
use crate::controllers::pods::is_ready;

/// What to change: nodes that need a pod, and pods to delete.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub create: Vec<String>,
    pub delete: Vec<Arc<Pod>>,
}

/// Compares where pods should run (`eligible`, node name → admitted) with where they are.
/// `max_unavailable` bounds how many outdated pods (not of `revision`) are replaced at once.
pub fn plan(
    eligible: &[(String, bool)],
    mut by_node: HashMap<String, Vec<Arc<Pod>>>,
    revision: &str,
    max_unavailable: Option<usize>,
) -> Plan {
    let mut plan = Plan::default();
    let mut outdated = Vec::new();
    let mut unavailable = 0;
    for (node, admitted) in eligible {
        let mut pods = by_node.remove(node).unwrap_or_default();
        if !admitted {
            plan.delete.extend(pods);
            continue;
        }
        // The oldest pod stays; duplicates go.
        pods.sort_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
        });
        let mut pods = pods.into_iter();
        match pods.next() {
            None => {
                plan.create.push(node.clone());
                unavailable += 1;
            }
            Some(pod) => {
                if !is_ready(&pod) {
                    unavailable += 1;
                }
                let current = pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(REVISION_LABEL))
                    .is_some_and(|h| h == revision);
                if !current {
                    outdated.push(pod);
                }
            }
        }
        plan.delete.extend(pods);
    }
    // Pods on nodes that are gone.
    plan.delete.extend(by_node.into_values().flatten());
    if let Some(max) = max_unavailable {
        // Replace pods that are down anyway first, then as many as the budget allows.
        outdated.sort_by_key(|p| is_ready(p));
        let budget = max.saturating_sub(unavailable);
        let down = outdated.iter().filter(|p| !is_ready(p)).count();
        plan.delete
            .extend(outdated.into_iter().take(down.max(budget)));
    }
    plan
}

/// `maxUnavailable` of a RollingUpdate strategy against `desired` pods (at least 1); `None` for OnDelete.
pub fn max_unavailable(ds: &DaemonSet, desired: usize) -> Option<usize> {
    let strategy = ds.spec.as_ref()?.update_strategy.as_ref();
    if strategy.and_then(|s| s.type_.as_deref()) == Some("OnDelete") {
        return None;
    }
    let value = strategy
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.max_unavailable.clone())
        .unwrap_or(IntOrString::Int(1));
    let desired = i32::try_from(desired).unwrap_or(i32::MAX);
    let n = intstr::scaled_value(&value, desired, true).unwrap_or(0);
    Some(usize::try_from(n).unwrap_or(0).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::controllers::daemonset::pod::target_node;

    fn pod(name: &str, node: &str, revision: &str, ready: bool) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {REVISION_LABEL: revision},
                    "creationTimestamp": format!("2026-01-01T00:00:0{}Z", name.len() % 10)},
                "spec": {"nodeName": node, "containers": []},
                "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
            }))
            .expect("pod"),
        )
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<String> {
        let mut names: Vec<String> = pods
            .iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect();
        names.sort();
        names
    }

    fn nodes(list: &[(&str, bool)]) -> Vec<(String, bool)> {
        list.iter().map(|(n, a)| (n.to_string(), *a)).collect()
    }

    fn by_node(pods: &[Arc<Pod>]) -> HashMap<String, Vec<Arc<Pod>>> {
        let mut map: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for p in pods {
            map.entry(target_node(p).unwrap_or_default())
                .or_default()
                .push(p.clone());
        }
        map
    }

    #[test]
    fn one_pod_per_admitted_node() {
        let pods = [
            pod("a", "n1", "r1", true),
            pod("bb", "n1", "r1", true),
            pod("c", "n3", "r1", true),
            pod("d", "gone", "r1", true),
        ];
        let plan = plan(
            &nodes(&[("n1", true), ("n2", true), ("n3", false)]),
            by_node(&pods),
            "r1",
            Some(1),
        );
        assert_eq!(plan.create, vec!["n2".to_string()]);
        assert_eq!(
            names(&plan.delete),
            vec!["bb", "c", "d"],
            "duplicate, not admitted, node gone"
        );
    }

    #[test]
    fn rolling_update_respects_max_unavailable() {
        let pods = [
            pod("a", "n1", "old", true),
            pod("b", "n2", "old", true),
            pod("c", "n3", "old", true),
        ];
        let eligible = nodes(&[("n1", true), ("n2", true), ("n3", true)]);
        let one = plan(&eligible, by_node(&pods), "new", Some(1));
        assert_eq!(one.delete.len(), 1);
        let two = plan(&eligible, by_node(&pods), "new", Some(2));
        assert_eq!(two.delete.len(), 2);
        assert!(
            plan(&eligible, by_node(&pods), "new", None)
                .delete
                .is_empty(),
            "OnDelete"
        );
        // One node already without a pod uses up the budget.
        let missing = plan(&eligible, by_node(&pods[..2]), "new", Some(1));
        assert_eq!((missing.create.len(), missing.delete.len()), (1, 0));
        // A pod that is down anyway is replaced regardless.
        let down = [pod("a", "n1", "old", false), pod("b", "n2", "old", true)];
        let plan = plan(
            &nodes(&[("n1", true), ("n2", true)]),
            by_node(&down),
            "new",
            Some(1),
        );
        assert_eq!(names(&plan.delete), vec!["a"]);
    }

    #[test]
    fn max_unavailable_rounds_percents_up_and_is_at_least_one() {
        let ds = |strategy: serde_json::Value| -> DaemonSet {
            serde_json::from_value(json!({"spec": {"selector": {}, "template": {},
                "updateStrategy": strategy}}))
            .expect("ds")
        };
        let rolling = |max: serde_json::Value| {
            ds(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": max}}))
        };
        assert_eq!(max_unavailable(&rolling(json!("50%")), 3), Some(2));
        assert_eq!(max_unavailable(&rolling(json!("10%")), 3), Some(1));
        assert_eq!(max_unavailable(&rolling(json!(0)), 3), Some(1));
        assert_eq!(max_unavailable(&rolling(json!(4)), 3), Some(4));
        assert_eq!(
            max_unavailable(&ds(json!({"type": "RollingUpdate"})), 3),
            Some(1)
        );
        assert_eq!(max_unavailable(&ds(json!({"type": "OnDelete"})), 3), None);
    }
}
