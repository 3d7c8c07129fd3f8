//! Who made a request: the authenticated user as Kubernetes' `user.Info` describes it
//! (name, uid, groups, extra). Every request handed to the API router carries one as an
//! `axum::Extension<UserInfo>`: the serving layer puts it there, and authorization, limits
//! and the audit log read it.

use std::collections::BTreeMap;

/// The user a request was authenticated as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    /// The user's name (a certificate's CN, a token's subject).
    pub name: String,
    /// A unique id, when the authenticator knows one (ServiceAccount tokens).
    pub uid: Option<String>,
    /// The groups the user belongs to (a certificate's O fields).
    pub groups: Vec<String>,
    /// What else the authenticator knows (a ServiceAccount token's
    /// `authentication.kubernetes.io/*` fields), as Kubernetes' `user.Info.Extra`.
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The group whose members may do anything (as in Kubernetes, bound to `cluster-admin`).
pub const MASTERS_GROUP: &str = "system:masters";
/// Every authenticated user's group.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The group of a request that carries no credential.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// The group of requests made with a join token (Kubernetes' bootstrap tokens).
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";
/// The group of every ServiceAccount (each is also in `system:serviceaccounts:<namespace>`).
pub const SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";
/// The group of nodes (join-token requests, and node certificates).
pub const NODES_GROUP: &str = "system:nodes";
/// The group that may read `/metrics` and the health checks (bound to `system:monitoring`).
pub const MONITORING_GROUP: &str = "system:monitoring";

impl UserInfo {
    /// An authenticated user with `groups` (plus `system:authenticated`).
    pub fn authenticated(name: impl Into<String>, groups: Vec<String>) -> UserInfo {
        let mut groups = groups;
        if !groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
            groups.push(AUTHENTICATED_GROUP.to_string());
        }
        UserInfo {
            name: name.into(),
            uid: None,
            groups,
            extra: BTreeMap::new(),
        }
    }

    /// A request without a credential.
    pub fn anonymous() -> UserInfo {
        UserInfo {
            name: "system:anonymous".to_string(),
            uid: None,
            groups: vec![UNAUTHENTICATED_GROUP.to_string()],
            extra: BTreeMap::new(),
        }
    }

    /// A request on the plain-HTTP loopback listener (`--insecure-http`), which, as
    /// Kubernetes' old insecure port did, acts as a cluster admin.
    pub fn insecure() -> UserInfo {
        UserInfo::authenticated("system:unsecured", vec![MASTERS_GROUP.to_string()])
    }

    /// The user as Kubernetes' `authentication.k8s.io/v1` UserInfo writes it (reviews, audit
    /// events): `username`, `groups`, and `uid` and `extra` when known.
    pub fn to_json(&self) -> serde_json::Value {
        let mut info = serde_json::json!({"username": self.name, "groups": self.groups});
        if let Some(uid) = &self.uid {
            info["uid"] = serde_json::json!(uid);
        }
        if !self.extra.is_empty() {
            info["extra"] = serde_json::json!(self.extra);
        }
        info
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticated_users_are_in_the_authenticated_group_once() {
        let user = UserInfo::authenticated("alice", vec![AUTHENTICATED_GROUP.into()]);
        assert_eq!(user.groups, vec![AUTHENTICATED_GROUP.to_string()]);
        assert!(UserInfo::insecure().in_group(MASTERS_GROUP));
        assert!(!UserInfo::anonymous().in_group(AUTHENTICATED_GROUP));
    }
}
