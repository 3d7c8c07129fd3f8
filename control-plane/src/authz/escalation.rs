//! Privilege-escalation prevention, as Kubernetes' RBAC storage does it: a Role or
//! ClusterRole may be written only by a user who already holds every permission in it (or may
//! `escalate` on it), and a (Cluster)RoleBinding only by a user who holds the permissions of
//! the role it references in the binding's namespace (or may `bind` that role). A ClusterRole
//! with an `aggregationRule` gets its rules later from the aggregation controller, so it needs
//! every permission. A refusal is a 403 naming the permissions missing.

use serde::de::DeserializeOwned;
use serde_json::Value;
use skiff_api::k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef,
};
use skiff_api::resources::ResourceKind;

use super::attributes::{Attributes, ResourceAttributes, Target};
use super::coverage::{self, full_authority};
use super::Authorizer;
use crate::error::ApiError;
use crate::identity::UserInfo;

/// The group the RBAC kinds belong to.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Checks that `user` may write `obj`, a new or changed object of `kind` in `namespace`
/// (empty for cluster-scoped kinds); objects of other kinds than the four RBAC ones pass.
pub fn check(
    authorizer: &Authorizer,
    user: &UserInfo,
    kind: &ResourceKind,
    namespace: &str,
    obj: &Value,
) -> Result<(), ApiError> {
    if kind.group != RBAC_GROUP {
        return Ok(());
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let write = Write {
        authorizer,
        user,
        resource: kind.plural,
        namespace,
        name,
    };
    match kind.kind {
        "Role" => {
            let role: Role = parse(kind, obj)?;
            write.role(&role.rules.unwrap_or_default(), false)
        }
        "ClusterRole" => {
            let role: ClusterRole = parse(kind, obj)?;
            let aggregated = role.aggregation_rule.is_some();
            write.role(&role.rules.unwrap_or_default(), aggregated)
        }
        "RoleBinding" => write.binding(&parse::<RoleBinding>(kind, obj)?.role_ref),
        "ClusterRoleBinding" => write.binding(&parse::<ClusterRoleBinding>(kind, obj)?.role_ref),
        _ => Ok(()),
    }
}

fn parse<T: DeserializeOwned>(kind: &ResourceKind, obj: &Value) -> Result<T, ApiError> {
    serde_json::from_value(obj.clone())
        .map_err(|e| ApiError::BadRequest(format!("the body is not a valid {}: {e}", kind.kind)))
}

/// One write of an RBAC object by `user`.
struct Write<'a> {
    authorizer: &'a Authorizer,
    user: &'a UserInfo,
    /// `roles`, `clusterroles`, `rolebindings` or `clusterrolebindings`.
    resource: &'a str,
    namespace: &'a str,
    name: &'a str,
}

impl Write<'_> {
    /// A Role or ClusterRole with `rules`: allowed with `escalate` on it, or if held.
    fn role(&self, rules: &[PolicyRule], aggregated: bool) -> Result<(), ApiError> {
        if self.may("escalate", self.resource, self.name) {
            return Ok(());
        }
        let wanted = if aggregated {
            full_authority()
        } else {
            rules.to_vec()
        };
        self.confirm_held(&wanted)
    }

    /// A binding to `role_ref`: allowed with `bind` on that role, or if its rules are held.
    fn binding(&self, role_ref: &RoleRef) -> Result<(), ApiError> {
        let role_resource = match role_ref.kind.as_str() {
            "Role" => "roles",
            "ClusterRole" => "clusterroles",
            // Validation names the bad kind.
            _ => return Ok(()),
        };
        if self.may("bind", role_resource, &role_ref.name) {
            return Ok(());
        }
        let Some(rules) = self.authorizer.role_rules(self.namespace, role_ref) else {
            return Err(self.refusal(format!(
                "the {} {:?} it references does not exist and the user may not bind it",
                role_ref.kind, role_ref.name
            )));
        };
        self.confirm_held(&rules)
    }

    /// Whether the user may `verb` the RBAC `resource` named `name` in this namespace.
    fn may(&self, verb: &str, resource: &str, name: &str) -> bool {
        let attrs = Attributes {
            verb: verb.into(),
            target: Target::Resource(ResourceAttributes {
                api_group: RBAC_GROUP.into(),
                resource: resource.into(),
                namespace: self.namespace.into(),
                name: name.into(),
                subresource: String::new(),
            }),
        };
        self.authorizer.allows(self.user, &attrs)
    }

    fn confirm_held(&self, wanted: &[PolicyRule]) -> Result<(), ApiError> {
        let held = self.authorizer.rules_for(self.user, self.namespace);
        let missing = coverage::uncovered(&held, wanted);
        if missing.is_empty() {
            return Ok(());
        }
        let listed: Vec<String> = missing.iter().map(coverage::describe).collect();
        Err(self.refusal(format!(
            "is attempting to grant RBAC permissions not currently held:\n{}",
            listed.join("\n")
        )))
    }

    fn refusal(&self, why: String) -> ApiError {
        let resource = format!("{}.{RBAC_GROUP}", self.resource);
        ApiError::AccessDenied {
            message: format!(
                "{resource} {:?} is forbidden: user {:?} (groups={:?}) {why}",
                self.name, self.user.name, self.user.groups
            ),
            resource,
            name: self.name.to_string(),
        }
    }
}
