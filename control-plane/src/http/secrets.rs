//! `POST /skiff/v1/secrets/rotate-key`: a new encryption key for Secrets, and every Secret
//! rewritten under it while the API serves (`skiff secrets rotate-key`).

use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use skiff_api::resources;

use super::AppState;
use crate::encryption::EncryptionError;
use crate::error::ApiError;
use crate::identity::{UserInfo, MASTERS_GROUP};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotateParams {
    /// Only rewrite, under the key each member's config already writes with (after the
    /// user added a key to every member's config and restarted them).
    #[serde(default)]
    rewrite_only: bool,
}

/// Adds a key (unless `rewriteOnly`) to the cluster's shared config, which every member loads
/// when it applies the change, or to a lone server's own config; then rewrites every Secret
/// not yet under the writing key; answers the key and how many were rewritten. Members given
/// config files must change them together, so they get no key from here.
pub async fn rotate_key(
    State(state): State<AppState>,
    Extension(user): Extension<UserInfo>,
    Query(params): Query<RotateParams>,
) -> Result<Json<Value>, ApiError> {
    if !user.in_group(MASTERS_GROUP) {
        return Err(ApiError::Forbidden {
            resource: "secrets".into(),
            name: String::new(),
            message: format!(
                "User {:?} cannot rotate the encryption key: only {MASTERS_GROUP} may",
                user.name
            ),
        });
    }
    let registry = &state.registry;
    let added = if params.rewrite_only {
        None
    } else {
        let members = registry.store().cluster().members.len();
        if members > 1 && !registry.encryption().is_shared() {
            return Err(ApiError::BadRequest(format!(
                "this cluster has {members} members, and this one keeps its keys in a config \
                 file: add the new key first in the encryption config of every member, restart \
                 them one by one, then run `skiff secrets rotate-key --rewrite-only`"
            )));
        }
        Some(
            registry
                .encryption()
                .rotate()
                .await
                .map_err(|err| match err {
                    EncryptionError::NotManaged { .. } | EncryptionError::Rotate(_) => {
                        ApiError::BadRequest(err.to_string())
                    }
                    other => other.into(),
                })?,
        )
    };
    let secrets = resources::by_name("secrets").expect("secrets are served");
    let done = registry.rewrite_all_at_rest(secrets).await?;
    Ok(Json(json!({
        "addedKey": added,
        "key": done.key,
        "rewritten": done.rewritten,
        "secrets": done.unchanged,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::UserInfo;

    async fn state(dir: &std::path::Path) -> AppState {
        let registry = crate::test_registry::registry(dir).await;
        let shutdown = tokio_util::sync::CancellationToken::new();
        AppState {
            authorizer: crate::authz::Authorizer::start(&registry, &shutdown),
            metrics: std::sync::Arc::new(crate::metrics::Metrics::new(registry.store())),
            registry,
            http: reqwest::Client::new(),
            agent_tls: None,
            tunnels: skiff_net::tunnel::Tunnels::new(),
            shutdown,
            inflight: crate::http::inflight::Inflight::new(crate::InflightLimits::default()),
            audit: None,
            cluster_ca: None,
            static_tokens: Default::default(),
        }
    }

    #[tokio::test]
    async fn only_cluster_admins_rotate_and_a_server_without_its_own_config_adds_no_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state(dir.path()).await;
        let user = UserInfo::authenticated("alice", vec![]);
        let refused = rotate_key(
            State(state.clone()),
            Extension(user),
            Query(RotateParams::default()),
        )
        .await
        .expect_err("not an admin");
        assert!(matches!(refused, ApiError::Forbidden { .. }), "{refused:?}");
        assert!(refused.to_string().contains("alice"), "{refused}");

        let no_key = rotate_key(
            State(state.clone()),
            Extension(UserInfo::insecure()),
            Query(RotateParams::default()),
        )
        .await
        .expect_err("no config of its own");
        assert!(matches!(no_key, ApiError::BadRequest(_)), "{no_key:?}");

        let Json(done) = rotate_key(
            State(state),
            Extension(UserInfo::insecure()),
            Query(RotateParams { rewrite_only: true }),
        )
        .await
        .expect("rewrite only");
        assert_eq!(done["rewritten"], 0);
        assert!(done["key"].is_null());
    }
}
