//! The dashboard's reads, each authorized with RBAC as the signed-in user first, as the API
//! would authorize the same request from them: a user who may not list a kind sees a refusal
//! in place of its table, never the objects.

use axum::http::Method;
use serde_json::Value;
use skiff_api::resources::{self, ResourceKind};

use crate::authz::{self, Attributes, ResourceAttributes, Target};
use crate::error::ApiError;
use crate::http::AppState;
use crate::identity::UserInfo;
use crate::registry::{ListOptions, WatchStream};

/// Reads as one user.
pub struct Reader<'a> {
    pub state: &'a AppState,
    pub user: &'a UserInfo,
}

impl<'a> Reader<'a> {
    /// A reader for `user`.
    pub fn new(state: &'a AppState, user: &'a UserInfo) -> Self {
        Reader { state, user }
    }

    /// Refuses with the API's 403 unless the user may `verb` `resource` (`pods`, `pods/log`).
    pub fn check(
        &self,
        verb: &str,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), ApiError> {
        let (plural, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        let kind = kind(plural)?;
        let attrs = Attributes {
            verb: verb.into(),
            target: Target::Resource(ResourceAttributes {
                api_group: kind.group.into(),
                resource: plural.into(),
                subresource: subresource.into(),
                namespace: namespace.unwrap_or_default().into(),
                name: name.into(),
            }),
        };
        self.allow(&attrs)
    }

    /// Refuses unless the user may `GET` the non-resource `path` (`/skiff/v1/cluster`).
    pub fn check_path(&self, path: &str) -> Result<(), ApiError> {
        self.allow(&Attributes::from_request(&Method::GET, path, None))
    }

    fn allow(&self, attrs: &Attributes) -> Result<(), ApiError> {
        if self.state.authorizer.allows(self.user, attrs) {
            Ok(())
        } else {
            Err(authz::forbidden(self.user, attrs))
        }
    }

    /// The objects of `plural` in `namespace` (all namespaces: `None`), sorted by namespace
    /// and name.
    pub async fn list(
        &self,
        plural: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        self.check("list", plural, namespace, "")?;
        let (mut items, _) = self
            .state
            .registry
            .list(kind(plural)?, namespace, &ListOptions::default())
            .await?;
        items.sort_by(|a, b| {
            let key = |o: &Value| {
                (
                    o.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    o.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                )
            };
            key(a).cmp(&key(b))
        });
        Ok(items)
    }

    /// One object.
    pub async fn get(
        &self,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.check("get", plural, namespace, name)?;
        self.state
            .registry
            .get(kind(plural)?, namespace, name)
            .await
    }

    /// Changes to `plural` in `namespace` from now on (no initial ADDED events).
    pub async fn watch(
        &self,
        plural: &str,
        namespace: Option<&str>,
    ) -> Result<WatchStream, ApiError> {
        self.check("watch", plural, namespace, "")?;
        let registry = &self.state.registry;
        let from = registry.revision();
        registry
            .watch(kind(plural)?, namespace, ListOptions::default(), Some(from))
            .await
    }
}

fn kind(plural: &str) -> Result<&'static ResourceKind, ApiError> {
    resources::by_name(plural).ok_or_else(|| ApiError::UnknownResource(plural.into()))
}
