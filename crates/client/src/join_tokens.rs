//! Join tokens for agents, stored as bootstrap-token Secrets in `kube-system`.

use skiff_api::join_token::{self, JoinToken};
use skiff_api::k8s_openapi::api::core::v1::Secret;
use skiff_api::k8s_openapi::jiff::Timestamp;

use crate::{Client, ClientError};

impl Client {
    /// Stores `token` as its Secret, valid until `expiration` (for ever when `None`).
    pub async fn create_join_token(
        &self,
        token: &JoinToken,
        expiration: Option<Timestamp>,
        description: &str,
    ) -> Result<Secret, ClientError> {
        self.api::<Secret>(Some(join_token::NAMESPACE))
            .create(&token.to_secret(expiration, description))
            .await
    }
}
