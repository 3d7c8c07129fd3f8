//! Whether one set of RBAC rules covers another, as Kubernetes' escalation check compares
//! them: the wanted rules are broken into single verb/group/resource/name (or URL) pieces,
//! and each piece must be allowed by one held rule.

use skiff_api::k8s_openapi::api::rbac::v1::PolicyRule;

use super::rules;

/// Every permission: what only a cluster admin holds, and what a ClusterRole with an
/// `aggregationRule` needs (its rules are filled by the aggregation controller later).
pub fn full_authority() -> Vec<PolicyRule> {
    let all = || Some(vec!["*".to_string()]);
    vec![
        PolicyRule {
            verbs: vec!["*".into()],
            api_groups: all(),
            resources: all(),
            ..PolicyRule::default()
        },
        PolicyRule {
            verbs: vec!["*".into()],
            non_resource_urls: all(),
            ..PolicyRule::default()
        },
    ]
}

/// The pieces of `wanted` that no rule of `held` covers, each one verb on one group, resource
/// and name (or one URL). Empty when `held` covers all of `wanted`.
pub fn uncovered(held: &[PolicyRule], wanted: &[PolicyRule]) -> Vec<PolicyRule> {
    wanted
        .iter()
        .flat_map(atoms)
        .filter(|atom| !held.iter().any(|rule| covers(rule, atom)))
        .collect()
}

/// Breaks a rule into rules of one verb and one group/resource/name or one URL.
fn atoms(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| Some(vec![s.clone()]);
    let mut out = Vec::new();
    for verb in &rule.verbs {
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                let names = rule.resource_names.iter().flatten();
                let mut pieces: Vec<Option<Vec<String>>> = names.map(one).collect();
                if pieces.is_empty() {
                    pieces.push(None);
                }
                for names in pieces {
                    out.push(PolicyRule {
                        verbs: vec![verb.clone()],
                        api_groups: one(group),
                        resources: one(resource),
                        resource_names: names,
                        non_resource_urls: None,
                    });
                }
            }
        }
        for url in rule.non_resource_urls.iter().flatten() {
            out.push(PolicyRule {
                verbs: vec![verb.clone()],
                non_resource_urls: one(url),
                ..PolicyRule::default()
            });
        }
    }
    out
}

/// Whether `held` covers the single-piece rule `atom`.
fn covers(held: &PolicyRule, atom: &PolicyRule) -> bool {
    let first = |v: &Option<Vec<String>>| v.as_ref().and_then(|v| v.first()).cloned();
    if !has(&held.verbs, &atom.verbs[0]) {
        return false;
    }
    if let Some(url) = first(&atom.non_resource_urls) {
        return held
            .non_resource_urls
            .iter()
            .flatten()
            .any(|owned| rules::url_matches(owned, &url));
    }
    let (Some(group), Some(resource)) = (first(&atom.api_groups), first(&atom.resources)) else {
        return false;
    };
    let held_names = held.resource_names.as_deref().unwrap_or_default();
    let names_ok = held_names.is_empty()
        || first(&atom.resource_names).is_some_and(|n| held_names.contains(&n));
    has(held.api_groups.as_deref().unwrap_or_default(), &group)
        && resource_covered(held.resources.as_deref().unwrap_or_default(), &resource)
        && names_ok
}

fn has(values: &[String], wanted: &str) -> bool {
    values.iter().any(|v| v == "*" || v == wanted)
}

/// `*` covers anything, `*/status` covers every `x/status`, else the names must be equal.
fn resource_covered(held: &[String], wanted: &str) -> bool {
    held.iter().any(|h| {
        h == "*"
            || h == wanted
            || h.strip_prefix("*/").is_some_and(|sub| {
                wanted
                    .split_once('/')
                    .is_some_and(|(_, wanted_sub)| wanted_sub == sub)
            })
    })
}

/// A rule as Kubernetes prints it in an escalation refusal:
/// `{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`.
pub fn describe(rule: &PolicyRule) -> String {
    let list = |v: &[String]| {
        let quoted: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
        format!("[{}]", quoted.join(" "))
    };
    let mut parts = Vec::new();
    if let Some(groups) = &rule.api_groups {
        parts.push(format!("APIGroups:{}", list(groups)));
    }
    if let Some(resources) = &rule.resources {
        parts.push(format!("Resources:{}", list(resources)));
    }
    if let Some(names) = rule.resource_names.as_deref().filter(|n| !n.is_empty()) {
        parts.push(format!("ResourceNames:{}", list(names)));
    }
    if let Some(urls) = &rule.non_resource_urls {
        parts.push(format!("NonResourceURLs:{}", list(urls)));
    }
    parts.push(format!("Verbs:{}", list(&rule.verbs)));
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
        let own = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
        PolicyRule {
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            api_groups: own(groups),
            resources: own(resources),
            resource_names: (!names.is_empty()).then(|| own(names)).flatten(),
            non_resource_urls: None,
        }
    }

    #[test]
    fn held_rules_cover_the_pieces_of_wanted_ones() {
        let edit = [
            rule(
                &["get", "list", "create"],
                &["", "apps"],
                &["pods", "deployments"],
                &[],
            ),
            rule(&["*"], &[RBAC_GROUP], &["roles", "rolebindings"], &[]),
            rule(&["patch"], &["*"], &["*/status"], &[]),
            rule(&["get"], &[""], &["secrets"], &["tls"]),
        ];
        let covered = [
            rule(&["get"], &[""], &["pods"], &[]),
            rule(&["get", "create"], &["apps"], &["deployments"], &["web"]),
            rule(&["delete", "update"], &[RBAC_GROUP], &["roles"], &[]),
            rule(&["patch"], &["apps"], &["deployments/status"], &[]),
            rule(&["get"], &[""], &["secrets"], &["tls"]),
        ];
        for wanted in &covered {
            assert_eq!(
                uncovered(&edit, std::slice::from_ref(wanted)),
                [],
                "{wanted:?}"
            );
        }
        let not_covered = [
            (
                rule(&["get"], &[""], &["secrets"], &[]),
                "all secrets, not one",
            ),
            (
                rule(&["get"], &[""], &["secrets"], &["db"]),
                "another secret",
            ),
            (
                rule(&["*"], &[""], &["pods"], &[]),
                "`*` is not every verb listed",
            ),
            (rule(&["get"], &["*"], &["pods"], &[]), "every group"),
            (rule(&["delete"], &[""], &["pods"], &[]), "a verb not held"),
            (rule(&["get"], &[""], &["pods/log"], &[]), "a subresource"),
            (
                rule(&["patch"], &["apps"], &["deployments"], &[]),
                "`*/status` only",
            ),
        ];
        for (wanted, why) in &not_covered {
            assert!(
                !uncovered(&edit, std::slice::from_ref(wanted)).is_empty(),
                "{why}"
            );
        }
        // Only the missing pieces are named.
        let mixed = rule(&["get", "delete"], &[""], &["pods", "secrets"], &[]);
        let missing: Vec<String> = uncovered(&edit, &[mixed]).iter().map(describe).collect();
        assert_eq!(
            missing,
            [
                r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}"#,
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#,
                r#"{APIGroups:[""], Resources:["secrets"], Verbs:["delete"]}"#,
            ]
        );
    }

    #[test]
    fn urls_and_full_authority() {
        let urls = PolicyRule {
            verbs: vec!["get".into()],
            non_resource_urls: Some(vec!["/healthz".into(), "/skiff/v1/*".into()]),
            ..PolicyRule::default()
        };
        let wanted = |url: &str| PolicyRule {
            verbs: vec!["get".into()],
            non_resource_urls: Some(vec![url.into()]),
            ..PolicyRule::default()
        };
        assert_eq!(
            uncovered(std::slice::from_ref(&urls), &[wanted("/skiff/v1/backup")]),
            []
        );
        assert_eq!(
            uncovered(std::slice::from_ref(&urls), &[wanted("/healthz")]),
            []
        );
        assert_eq!(
            uncovered(std::slice::from_ref(&urls), &[wanted("/version")]).len(),
            1
        );
        assert_eq!(uncovered(&full_authority(), &full_authority()), []);
        assert_eq!(uncovered(&[urls], &full_authority()).len(), 2);
        let admin_rules = [rule(&["*"], &["*"], &["*"], &[])];
        assert_eq!(
            uncovered(&admin_rules, &[rule(&["get"], &["x"], &["y/z"], &["n"])]),
            []
        );
    }
}
