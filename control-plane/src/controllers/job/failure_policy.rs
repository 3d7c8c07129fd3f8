//! `podFailurePolicy`: what a failed pod means for its Job, by the first rule that matches its
//! containers' exit codes or its conditions (Kubernetes' semantics; `FailIndex` is refused at
//! validation, as Skiff has no per-index back-off limit).

use skiff_api::k8s_openapi::api::batch::v1::{PodFailurePolicy, PodFailurePolicyRule};
use skiff_api::k8s_openapi::api::core::v1::Pod;

/// What a rule makes of a failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not counted against `backoffLimit`; the pod is replaced.
    Ignore,
    /// Counted, as without a policy.
    Count,
    /// The Job fails at once, with this message.
    FailJob(String),
}

/// The verdict of the first matching rule for failed `pod`, or `None` when none matches.
pub fn evaluate(policy: &PodFailurePolicy, pod: &Pod) -> Option<Verdict> {
    policy.rules.iter().enumerate().find_map(|(i, rule)| {
        let why = matches(rule, pod)?;
        Some(match rule.action.as_str() {
            "Ignore" => Verdict::Ignore,
            "FailJob" => Verdict::FailJob(format!("{why} matching FailJob rule at index {i}")),
            _ => Verdict::Count,
        })
    })
}

/// How `pod` matches `rule` (for the Job's message), if it does.
fn matches(rule: &PodFailurePolicyRule, pod: &Pod) -> Option<String> {
    let name = format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    );
    if let Some(codes) = rule.on_exit_codes.as_ref() {
        let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
        return statuses.iter().find_map(|status| {
            if codes
                .container_name
                .as_ref()
                .is_some_and(|c| *c != status.name)
            {
                return None;
            }
            let code = status.state.as_ref()?.terminated.as_ref()?.exit_code;
            let listed = codes.values.contains(&code);
            let hit = match codes.operator.as_str() {
                "In" => listed,
                "NotIn" => !listed && code != 0,
                _ => false,
            };
            hit.then(|| {
                format!(
                    "Container {} for pod {name} failed with exit code {code}",
                    status.name
                )
            })
        });
    }
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    rule.on_pod_conditions.iter().flatten().find_map(|wanted| {
        let status = match wanted.status.as_str() {
            "" => "True",
            status => status,
        };
        conditions
            .iter()
            .any(|c| c.type_ == wanted.type_ && c.status == status)
            .then(|| format!("Pod {name} has condition {} matching", wanted.type_))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy() -> PodFailurePolicy {
        serde_json::from_value(json!({"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [1]}},
        ]}))
        .expect("policy")
    }

    fn failed(container: &str, code: i32, condition: Option<&str>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "status": {"phase": "Failed",
                "conditions": condition.map(|c| vec![json!({"type": c, "status": "True"})]),
                "containerStatuses": [{"name": container, "image": "i", "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"terminated": {"exitCode": code}}}]}
        }))
        .expect("pod")
    }

    #[test]
    fn the_first_matching_rule_decides() {
        for (pod, expected) in [
            (
                failed("main", 42, None),
                Some(Verdict::FailJob("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0".into())),
            ),
            // Rule 0 names another container.
            (failed("side", 42, None), Some(Verdict::Count)),
            (failed("main", 1, Some("DisruptionTarget")), Some(Verdict::Ignore)),
            (failed("main", 3, None), Some(Verdict::Count)),
            (failed("main", 1, None), Some(Verdict::Ignore)),
            // NotIn never matches a zero exit code; nothing else matches exit code 2.
            (failed("main", 2, None), None),
        ] {
            assert_eq!(evaluate(&policy(), &pod), expected, "{:?}", pod.status);
        }
    }
}
