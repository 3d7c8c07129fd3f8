//! Roles, ClusterRoles and their bindings (`rbac.authorization.k8s.io/v1`), as Kubernetes'
//! RBAC validation checks them.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use super::meta::{self, NameRule};
use super::{Errors, FieldErrorReason};
use crate::resources::RBAC_GROUP;
use crate::selector::LabelSelector;

pub fn validate_role(role: &Role, errors: &mut Errors) {
    meta::validate_object_meta(&role.metadata, true, NameRule::PathSegment, errors);
    validate_rules(role.rules.iter().flatten(), true, errors);
}

pub fn validate_cluster_role(role: &ClusterRole, errors: &mut Errors) {
    meta::validate_object_meta(&role.metadata, false, NameRule::PathSegment, errors);
    validate_rules(role.rules.iter().flatten(), false, errors);
    let selectors = role
        .aggregation_rule
        .iter()
        .flat_map(|a| a.cluster_role_selectors.iter().flatten());
    for (i, selector) in selectors.enumerate() {
        if let Err(err) = LabelSelector::from_k8s(selector) {
            errors.invalid(
                format!("aggregationRule.clusterRoleSelectors[{i}]"),
                "",
                err,
            );
        }
    }
}

pub fn validate_role_binding(binding: &RoleBinding, errors: &mut Errors) {
    meta::validate_object_meta(&binding.metadata, true, NameRule::PathSegment, errors);
    validate_role_ref(&binding.role_ref, &["Role", "ClusterRole"], errors);
    validate_subjects(binding.subjects.iter().flatten(), true, errors);
}

pub fn validate_cluster_role_binding(binding: &ClusterRoleBinding, errors: &mut Errors) {
    meta::validate_object_meta(&binding.metadata, false, NameRule::PathSegment, errors);
    validate_role_ref(&binding.role_ref, &["ClusterRole"], errors);
    validate_subjects(binding.subjects.iter().flatten(), false, errors);
}

fn validate_rules<'a>(
    rules: impl Iterator<Item = &'a PolicyRule>,
    namespaced: bool,
    errors: &mut Errors,
) {
    for (i, rule) in rules.enumerate() {
        let at = format!("rules[{i}]");
        if rule.verbs.is_empty() {
            errors.push(
                format!("{at}.verbs"),
                FieldErrorReason::Required,
                "verbs must contain at least one value",
            );
        }
        let urls = rule.non_resource_urls.as_deref().unwrap_or_default();
        let groups = rule.api_groups.as_deref().unwrap_or_default();
        let resources = rule.resources.as_deref().unwrap_or_default();
        if !urls.is_empty() {
            if namespaced {
                errors.push(
                    format!("{at}.nonResourceURLs"),
                    FieldErrorReason::Invalid,
                    "namespaced rules cannot apply to non-resource URLs",
                );
            }
            if !groups.is_empty() || !resources.is_empty() {
                errors.push(
                    format!("{at}.nonResourceURLs"),
                    FieldErrorReason::Invalid,
                    "rules cannot apply to both regular resources and non-resource URLs",
                );
            }
            continue;
        }
        if groups.is_empty() {
            errors.push(
                format!("{at}.apiGroups"),
                FieldErrorReason::Required,
                "resource rules must supply at least one api group",
            );
        }
        if resources.is_empty() {
            errors.push(
                format!("{at}.resources"),
                FieldErrorReason::Required,
                "resource rules must supply at least one resource",
            );
        }
    }
}

fn validate_role_ref(role_ref: &RoleRef, kinds: &[&str], errors: &mut Errors) {
    if role_ref.api_group != RBAC_GROUP {
        errors.push(
            "roleRef.apiGroup",
            FieldErrorReason::NotSupported,
            format!("{:?}: supported values: {RBAC_GROUP:?}", role_ref.api_group),
        );
    }
    if !kinds.contains(&role_ref.kind.as_str()) {
        errors.push(
            "roleRef.kind",
            FieldErrorReason::NotSupported,
            format!("{:?}: supported values: {kinds:?}", role_ref.kind),
        );
    }
    if role_ref.name.is_empty() {
        errors.required("roleRef.name");
    } else {
        meta::validate_name(
            &role_ref.name,
            NameRule::PathSegment,
            "roleRef.name",
            errors,
        );
    }
}

fn validate_subjects<'a>(
    subjects: impl Iterator<Item = &'a Subject>,
    namespaced_binding: bool,
    errors: &mut Errors,
) {
    for (i, subject) in subjects.enumerate() {
        let at = format!("subjects[{i}]");
        if subject.name.is_empty() {
            errors.required(format!("{at}.name"));
        }
        let api_group = subject.api_group.as_deref().unwrap_or_default();
        match subject.kind.as_str() {
            "ServiceAccount" => {
                if !subject.name.is_empty() {
                    meta::validate_name(
                        &subject.name,
                        NameRule::Subdomain,
                        &format!("{at}.name"),
                        errors,
                    );
                }
                if !api_group.is_empty() {
                    errors.push(
                        format!("{at}.apiGroup"),
                        FieldErrorReason::NotSupported,
                        format!("{api_group:?}: supported values: \"\""),
                    );
                }
                if !namespaced_binding && subject.namespace.as_deref().is_none_or(str::is_empty) {
                    errors.required(format!("{at}.namespace"));
                }
            }
            "User" | "Group" => {
                if api_group != RBAC_GROUP {
                    errors.push(
                        format!("{at}.apiGroup"),
                        FieldErrorReason::NotSupported,
                        format!("{api_group:?}: supported values: {RBAC_GROUP:?}"),
                    );
                }
            }
            "" => errors.required(format!("{at}.kind")),
            other => errors.push(
                format!("{at}.kind"),
                FieldErrorReason::NotSupported,
                format!("{other:?}: supported values: \"ServiceAccount\", \"User\", \"Group\""),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::resources::by_name;
    use crate::validation::validate;

    fn errors(kind: &str, obj: Value) -> Vec<String> {
        match validate(by_name(kind).expect("kind"), &obj) {
            Ok(()) => vec![],
            Err(errs) => errs.iter().map(|e| e.field.clone()).collect(),
        }
    }

    #[test]
    fn roles_need_verbs_and_resources_and_keep_urls_cluster_wide() {
        let good = json!({"metadata": {"name": "pod-reader", "namespace": "a"},
            "rules": [{"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get"]}]});
        assert_eq!(errors("roles", good), Vec::<String>::new());
        let bad = json!({"metadata": {"name": "x", "namespace": "a"}, "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": []},
            {"verbs": ["get"]},
            {"nonResourceURLs": ["/healthz"], "verbs": ["get"]},
        ]});
        assert_eq!(
            errors("roles", bad),
            [
                "rules[0].verbs",
                "rules[1].apiGroups",
                "rules[1].resources",
                "rules[2].nonResourceURLs"
            ]
        );
        let cluster = json!({"metadata": {"name": "system:discovery"},
            "rules": [{"nonResourceURLs": ["/healthz", "/version"], "verbs": ["get"]}]});
        assert_eq!(errors("clusterroles", cluster), Vec::<String>::new());
        let both = json!({"metadata": {"name": "x"},
            "rules": [{"nonResourceURLs": ["/x"], "resources": ["pods"], "verbs": ["get"]}]});
        assert_eq!(errors("clusterroles", both), ["rules[0].nonResourceURLs"]);
        let selector = json!({"metadata": {"name": "x"}, "aggregationRule": {"clusterRoleSelectors":
            [{"matchExpressions": [{"key": "a", "operator": "Nope"}]}]}});
        assert_eq!(
            errors("clusterroles", selector),
            ["aggregationRule.clusterRoleSelectors[0]"]
        );
        let name = json!({"metadata": {"name": "a/b"}});
        assert_eq!(errors("clusterroles", name), ["metadata.name"]);
    }

    #[test]
    fn bindings_check_the_role_ref_and_subjects() {
        let role_ref =
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"});
        let good = json!({"metadata": {"name": "b", "namespace": "a"}, "roleRef": role_ref,
        "subjects": [
            {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"},
            {"kind": "ServiceAccount", "name": "default"},
        ]});
        assert_eq!(errors("rolebindings", good), Vec::<String>::new());
        let bad = json!({"metadata": {"name": "b", "namespace": "a"},
        "roleRef": {"apiGroup": "rbac", "kind": "Pod", "name": ""},
        "subjects": [
            {"kind": "", "name": "bob"},
            {"kind": "User", "name": "bob"},
            {"kind": "Robot", "name": "r2"},
        ]});
        assert_eq!(
            errors("rolebindings", bad),
            [
                "roleRef.apiGroup",
                "roleRef.kind",
                "roleRef.name",
                "subjects[0].kind",
                "subjects[1].apiGroup",
                "subjects[2].kind"
            ]
        );
        let cluster = json!({"metadata": {"name": "b"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "default"}]});
        assert_eq!(
            errors("clusterrolebindings", cluster),
            ["roleRef.kind", "subjects[0].namespace"]
        );
        let missing = json!({"metadata": {"name": "b"}});
        assert_eq!(
            errors("clusterrolebindings", missing),
            ["roleRef.apiGroup", "roleRef.kind", "roleRef.name"]
        );
    }
}
