//! Join tokens: a bearer token that `authn` reads as a join token is checked against its
//! stored Secret (`kube-system/bootstrap-token-<id>`) here.

use skiff_api::join_token::{self, JoinToken};
use skiff_api::k8s_openapi::api::core::v1::Secret;
use skiff_api::k8s_openapi::jiff::Timestamp;
use skiff_api::resources;

use crate::error::ApiError;
use crate::registry::{typed, Registry};

/// Checks `token` against its stored Secret.
pub(super) async fn verify(registry: &Registry, token: &JoinToken) -> Result<(), ApiError> {
    let refused = |why: String| ApiError::Unauthorized(why);
    let stored = match registry
        .get(
            resources::of::<Secret>(),
            Some(join_token::NAMESPACE),
            &token.secret_name(),
        )
        .await
    {
        Ok(value) => typed::from_value::<Secret>(value)?,
        Err(ApiError::NotFound { .. }) => {
            return Err(refused(join_token::TokenError::Wrong.to_string()))
        }
        Err(err) => return Err(err),
    };
    token
        .verify(&stored, Timestamp::now())
        .map_err(|e| refused(e.to_string()))
}
