//! Inter-pod affinity and anti-affinity: required terms filter nodes by the pods already in
//! their topology domain, preferred terms score them, and existing pods' required
//! anti-affinity keeps the incoming pod out of their domains (the symmetric rule).

use std::collections::{BTreeMap, HashMap, HashSet};

use skiff_api::k8s_openapi::api::core::v1::{Pod, PodAffinityTerm};
use skiff_api::selector::LabelSelector;

use super::snapshot::{ClusterSnapshot, NodeInfo, PodInfo};

/// One affinity term, resolved against the namespace of the pod that declares it.
struct Term {
    /// `None` (no selector, or an invalid one) matches no pod.
    selector: Option<LabelSelector>,
    /// `None`: every namespace.
    namespaces: Option<Vec<String>>,
    topology_key: String,
}

impl Term {
    fn new(term: &PodAffinityTerm, own_namespace: &str) -> Self {
        let listed = term.namespaces.clone().filter(|n| !n.is_empty());
        // An empty namespaceSelector selects every namespace; namespace labels are not consulted.
        let all = term.namespace_selector.as_ref().is_some_and(|s| {
            s.match_labels.as_ref().is_none_or(|l| l.is_empty())
                && s.match_expressions.as_ref().is_none_or(|e| e.is_empty())
        });
        Term {
            selector: term
                .label_selector
                .as_ref()
                .and_then(|s| LabelSelector::from_k8s(s).ok()),
            namespaces: match (listed, all) {
                (_, true) => None,
                (Some(listed), false) => Some(listed),
                (None, false) => Some(vec![own_namespace.to_string()]),
            },
            topology_key: term.topology_key.clone(),
        }
    }

    fn matches(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|n| n.iter().any(|x| x == namespace))
            && self.selector.as_ref().is_some_and(|s| s.matches(labels))
    }

    fn matches_pod(&self, pod: &PodInfo) -> bool {
        self.matches(&pod.namespace, &pod.labels)
    }

    /// Matching pods per value of the topology key.
    fn count_by_domain(&self, snapshot: &ClusterSnapshot) -> HashMap<String, i64> {
        let mut counts = HashMap::new();
        for node in snapshot.nodes.values() {
            let Some(value) = node.labels.get(&self.topology_key) else {
                continue;
            };
            let n = node.pods.values().filter(|p| self.matches_pod(p)).count() as i64;
            if n > 0 {
                *counts.entry(value.clone()).or_default() += n;
            }
        }
        counts
    }
}

/// The incoming pod's inter-pod rules, evaluated once against the snapshot.
pub struct InterPod {
    /// Required affinity terms with the domains holding a matching pod.
    affinity: Vec<(Term, HashMap<String, i64>)>,
    /// True when no pod matches any affinity term but the pod matches all of them itself:
    /// the first pod of a group that wants to be together may go anywhere.
    affinity_waived: bool,
    anti_affinity: Vec<(Term, HashMap<String, i64>)>,
    /// (topology key, value) pairs forbidden by existing pods' anti-affinity.
    forbidden: HashSet<(String, String)>,
    /// Preferred terms: weight (negative for anti-affinity) and matching pods per domain.
    preferred: Vec<(i64, Term, HashMap<String, i64>)>,
}

impl InterPod {
    pub fn new(snapshot: &ClusterSnapshot, pod: &Pod) -> Self {
        let me = PodInfo::of(pod);
        let affinity_spec = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let terms = |list: Option<&Vec<PodAffinityTerm>>| -> Vec<(Term, HashMap<String, i64>)> {
            list.into_iter()
                .flatten()
                .map(|t| {
                    let term = Term::new(t, &me.namespace);
                    let counts = term.count_by_domain(snapshot);
                    (term, counts)
                })
                .collect()
        };
        let affinity = terms(
            affinity_spec
                .and_then(|a| a.pod_affinity.as_ref())
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                }),
        );
        let anti_affinity = terms(Some(&me.anti_affinity));
        let affinity_waived = !affinity.is_empty()
            && affinity.iter().all(|(_, counts)| counts.is_empty())
            && affinity.iter().all(|(t, _)| t.matches_pod(&me));
        let mut preferred = Vec::new();
        if let Some(a) = affinity_spec {
            let weighted = a
                .pod_affinity
                .iter()
                .flat_map(|p| {
                    p.preferred_during_scheduling_ignored_during_execution
                        .iter()
                        .flatten()
                })
                .map(|w| (i64::from(w.weight), w))
                .chain(
                    a.pod_anti_affinity
                        .iter()
                        .flat_map(|p| {
                            p.preferred_during_scheduling_ignored_during_execution
                                .iter()
                                .flatten()
                        })
                        .map(|w| (-i64::from(w.weight), w)),
                );
            for (weight, w) in weighted {
                let term = Term::new(&w.pod_affinity_term, &me.namespace);
                let counts = term.count_by_domain(snapshot);
                preferred.push((weight, term, counts));
            }
        }
        let mut forbidden = HashSet::new();
        for (node, existing) in snapshot.pods_with_anti_affinity() {
            for t in &existing.anti_affinity {
                let term = Term::new(t, &existing.namespace);
                if let Some(value) = node.labels.get(&term.topology_key) {
                    if term.matches_pod(&me) {
                        forbidden.insert((term.topology_key, value.clone()));
                    }
                }
            }
        }
        InterPod {
            affinity,
            affinity_waived,
            anti_affinity,
            forbidden,
            preferred,
        }
    }

    /// The reason this node is ruled out, in Kubernetes' words.
    pub fn filter(&self, node: &NodeInfo) -> Result<(), &'static str> {
        let domain_has = |term: &Term, counts: &HashMap<String, i64>| {
            node.labels
                .get(&term.topology_key)
                .is_some_and(|v| counts.contains_key(v))
        };
        if !self.affinity_waived && !self.affinity.iter().all(|(t, c)| domain_has(t, c)) {
            return Err("node(s) didn't match pod affinity rules");
        }
        if self.anti_affinity.iter().any(|(t, c)| domain_has(t, c)) {
            return Err("node(s) didn't match pod anti-affinity rules");
        }
        let forbidden = !self.forbidden.is_empty()
            && node
                .labels
                .iter()
                .any(|(k, v)| self.forbidden.contains(&(k.clone(), v.clone())));
        if forbidden {
            return Err("node(s) didn't satisfy existing pods anti-affinity rules");
        }
        Ok(())
    }

    /// Preferred terms: weight times the matching pods in the node's domain.
    pub fn score(&self, node: &NodeInfo) -> i64 {
        self.preferred
            .iter()
            .map(|(weight, term, counts)| {
                let n = node
                    .labels
                    .get(&term.topology_key)
                    .and_then(|v| counts.get(v))
                    .copied()
                    .unwrap_or(0);
                weight * n
            })
            .sum()
    }
}
