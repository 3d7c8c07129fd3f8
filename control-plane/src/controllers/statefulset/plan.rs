//! The StatefulSet plan, after Kubernetes' `updateStatefulSet`: which ordinals get a pod (and of
//! which revision) and which pods go, in order. With `OrderedReady` one step at a time: a pod
//! is created only when every lower ordinal is Running and Ready, and the highest ordinal is
//! removed first; with `Parallel` all at once. A rolling update replaces pods from the highest
//! ordinal down to the partition, one at a time, each after the one above is Running and Ready.
//! With `minReadySeconds`, "Ready" means ready for that long (available), as in Kubernetes 1.25+.

use std::collections::BTreeMap;
use std::sync::Arc;

use skiff_api::k8s_openapi::api::core::v1::Pod;
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::pod::revision_of;
use crate::controllers::pods::{availability, is_ready, is_terminal, Availability};

/// How pods are brought up and down (`spec.podManagementPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Management {
    OrderedReady,
    Parallel,
}

/// How template changes reach pods (`spec.updateStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Replace pods with ordinals from `partition` up.
    RollingUpdate { partition: usize },
    /// Only pods made anew take the new template.
    OnDelete,
}

/// The desired shape of the set.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub replicas: usize,
    pub management: Management,
    pub update: Update,
    /// How long a pod must be ready before the next step (`spec.minReadySeconds`).
    pub min_ready_seconds: i32,
}

/// The ControllerRevisions in play: the one most pods are at, and the template's.
#[derive(Debug, Clone)]
pub struct Revisions {
    pub current: String,
    pub update: String,
}

/// What to do now.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Ordinals to create, in order, with the revision each is made from.
    pub create: Vec<(usize, String)>,
    /// Pods to delete: failed ones, removed by a scale-down, or replaced by an update.
    pub delete: Vec<Arc<Pod>>,
}

/// Running, Ready and not being deleted.
pub fn is_healthy(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        && is_ready(pod)
}

fn terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Plans one step for `pods` (by ordinal; pods of other names are not the set's) at `now`.
pub fn plan(
    policy: &Policy,
    revisions: &Revisions,
    pods: &BTreeMap<usize, Arc<Pod>>,
    now: &Time,
) -> Plan {
    let ordered = policy.management == Management::OrderedReady;
    let available = |pod: &Pod| {
        is_healthy(pod)
            && availability(pod, policy.min_ready_seconds, now) == Availability::Available
    };
    let mut plan = Plan::default();
    let revision_for = |ordinal: usize| match policy.update {
        Update::RollingUpdate { partition } if ordinal < partition => revisions.current.clone(),
        _ => revisions.update.clone(),
    };
    // Bring up ordinals 0..replicas; in order, each waits for the ones below.
    for ordinal in 0..policy.replicas {
        match pods.get(&ordinal) {
            None => {
                plan.create.push((ordinal, revision_for(ordinal)));
                if ordered {
                    return plan;
                }
            }
            Some(pod) if is_terminal(pod) && !terminating(pod) => {
                // Replaced once it is gone.
                plan.delete.push(pod.clone());
                if ordered {
                    return plan;
                }
            }
            Some(pod) if ordered && !available(pod) => return plan,
            Some(_) => {}
        }
    }
    // Scale down from the highest ordinal.
    let condemned: Vec<&Arc<Pod>> = pods
        .range(policy.replicas..)
        .rev()
        .map(|(_, p)| p)
        .collect();
    for pod in condemned {
        if terminating(pod) {
            if ordered {
                return plan;
            }
            continue;
        }
        plan.delete.push(pod.clone());
        if ordered {
            return plan;
        }
    }
    if !plan.delete.is_empty() || !plan.create.is_empty() {
        return plan;
    }
    let Update::RollingUpdate { partition } = policy.update else {
        return plan;
    };
    // Replace outdated pods from the top down to the partition, one at a time.
    for ordinal in (partition..policy.replicas).rev() {
        let Some(pod) = pods.get(&ordinal) else {
            return plan;
        };
        if revision_of(pod) != Some(revisions.update.as_str()) && !terminating(pod) {
            plan.delete.push(pod.clone());
            return plan;
        }
        if !available(pod) {
            return plan;
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::controllers::statefulset::pod::REVISION_LABEL;

    /// A pod of ordinal `i`: `state` is `ready` (since second 100), `starting`, `failed` or
    /// `terminating`.
    fn pod(i: usize, revision: &str, state: &str) -> (usize, Arc<Pod>) {
        let (phase, ready) = match state {
            "ready" | "terminating" => ("Running", "True"),
            "starting" => ("Pending", "False"),
            "failed" => ("Failed", "False"),
            other => panic!("unknown state {other}"),
        };
        let deleted = (state == "terminating").then_some("2026-01-01T00:00:00Z");
        let pod = serde_json::from_value(json!({
            "metadata": {"name": format!("db-{i}"), "labels": {REVISION_LABEL: revision},
                "deletionTimestamp": deleted},
            "spec": {"containers": []},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready,
                "lastTransitionTime": "1970-01-01T00:01:40Z"}]}
        }))
        .expect("pod");
        (i, Arc::new(pod))
    }

    fn pods(list: &[(usize, &str, &str)]) -> BTreeMap<usize, Arc<Pod>> {
        list.iter().map(|(i, r, s)| pod(*i, r, s)).collect()
    }

    fn revisions() -> Revisions {
        Revisions {
            current: "old".into(),
            update: "new".into(),
        }
    }

    fn names(plan: &Plan) -> Vec<String> {
        plan.delete
            .iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    fn ordered(replicas: usize, partition: usize) -> Policy {
        Policy {
            replicas,
            management: Management::OrderedReady,
            update: Update::RollingUpdate { partition },
            min_ready_seconds: 0,
        }
    }

    fn creates(list: &[(usize, &str)]) -> Vec<(usize, String)> {
        list.iter().map(|(i, r)| (*i, r.to_string())).collect()
    }

    /// A case: name, policy, existing pods (ordinal, revision, state), expected creations
    /// (ordinal, revision) and expected deletions.
    type Case<'a> = (
        &'a str,
        Policy,
        Vec<(usize, &'a str, &'a str)>,
        Vec<(usize, &'a str)>,
        Vec<&'a str>,
    );

    #[test]
    fn table() {
        let parallel = Policy {
            management: Management::Parallel,
            ..ordered(3, 0)
        };
        let on_delete = Policy {
            update: Update::OnDelete,
            ..ordered(3, 0)
        };
        // Ready since second 100, and it is second 105.
        let slow = Policy {
            min_ready_seconds: 10,
            ..ordered(3, 0)
        };
        let quick = Policy {
            min_ready_seconds: 5,
            ..ordered(3, 0)
        };
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            ("ordered: the first pod only", ordered(3, 0), vec![], vec![(0, "new")], vec![]),
            ("ordered: the next once the lower is ready", ordered(3, 0),
                vec![(0, "new", "ready")], vec![(1, "new")], vec![]),
            ("ordered: waits for a starting pod", ordered(3, 0),
                vec![(0, "new", "ready"), (1, "new", "starting")], vec![], vec![]),
            ("ordered: a gap below is filled first", ordered(3, 0),
                vec![(0, "new", "ready"), (2, "new", "ready")], vec![(1, "new")], vec![]),
            ("parallel: all at once", parallel, vec![(1, "new", "starting")],
                vec![(0, "new"), (2, "new")], vec![]),
            ("ordered: scale down removes the highest first", ordered(1, 0),
                vec![(0, "new", "ready"), (1, "new", "ready"), (2, "new", "ready")], vec![], vec!["db-2"]),
            ("ordered: scale down waits for the highest to go", ordered(1, 0),
                vec![(0, "new", "ready"), (1, "new", "ready"), (2, "new", "terminating")], vec![], vec![]),
            ("ordered: scale down waits for the pods that stay", ordered(1, 0),
                vec![(0, "new", "starting"), (1, "new", "ready")], vec![], vec![]),
            ("parallel: scale down removes all at once", Policy { replicas: 1, ..parallel },
                vec![(0, "new", "ready"), (1, "new", "ready"), (2, "new", "ready")], vec![], vec!["db-2", "db-1"]),
            ("a failed pod is deleted to be made again", ordered(3, 0),
                vec![(0, "new", "ready"), (1, "new", "failed"), (2, "new", "ready")], vec![], vec!["db-1"]),
            ("a failed pod's replacement waits until it is gone", ordered(3, 0),
                vec![(0, "new", "ready"), (1, "new", "terminating")], vec![], vec![]),
            ("rolling update: the highest ordinal first", ordered(3, 0),
                vec![(0, "old", "ready"), (1, "old", "ready"), (2, "old", "ready")], vec![], vec!["db-2"]),
            ("rolling update: the next once the updated one is ready", ordered(3, 0),
                vec![(0, "old", "ready"), (1, "old", "ready"), (2, "new", "ready")], vec![], vec!["db-1"]),
            ("rolling update: waits for the updated pod", ordered(3, 0),
                vec![(0, "old", "ready"), (1, "old", "ready"), (2, "new", "starting")], vec![], vec![]),
            ("rolling update: a replaced pod comes back new", ordered(3, 0),
                vec![(0, "old", "ready"), (1, "old", "ready")], vec![(2, "new")], vec![]),
            ("partition: pods below it stay", ordered(3, 2),
                vec![(0, "old", "ready"), (1, "old", "ready"), (2, "new", "ready")], vec![], vec![]),
            ("partition: a pod below it comes back at the current revision", ordered(3, 2),
                vec![(1, "old", "ready"), (2, "new", "ready")], vec![(0, "old")], vec![]),
            ("partition lowered: the next goes", ordered(3, 1),
                vec![(0, "old", "ready"), (1, "old", "ready"), (2, "new", "ready")], vec![], vec!["db-1"]),
            ("partition above replicas: nothing to update", ordered(3, 5),
                vec![(0, "old", "ready"), (1, "old", "ready"), (2, "old", "ready")], vec![], vec![]),
            ("on delete: outdated pods stay", on_delete,
                vec![(0, "old", "ready"), (1, "old", "ready"), (2, "old", "ready")], vec![], vec![]),
            ("on delete: a deleted pod comes back new", on_delete,
                vec![(0, "old", "ready"), (2, "old", "ready")], vec![(1, "new")], vec![]),
            ("minReadySeconds: the next waits until the lower is available", slow,
                vec![(0, "new", "ready")], vec![], vec![]),
            ("minReadySeconds: then it comes", quick,
                vec![(0, "new", "ready")], vec![(1, "new")], vec![]),
            ("minReadySeconds: an update waits for the updated pod to be available", slow,
                vec![(0, "old", "ready"), (1, "old", "ready"), (2, "new", "ready")], vec![], vec![]),
        ];
        let now = Time(jiff::Timestamp::from_second(105).expect("time"));
        for (case, policy, existing, create, delete) in cases {
            let got = plan(&policy, &revisions(), &pods(&existing), &now);
            assert_eq!(got.create, creates(&create), "{case}: creates");
            assert_eq!(names(&got), delete, "{case}: deletes");
        }
    }
}
