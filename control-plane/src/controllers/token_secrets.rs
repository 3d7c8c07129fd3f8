//! The tokens controller (Kubernetes' serviceaccount-token-controller): a Secret of type
//! `kubernetes.io/service-account-token` whose `kubernetes.io/service-account.name`
//! annotation names a ServiceAccount of its namespace gets a legacy token of that account
//! (`data.token`, never expiring), the cluster CA (`data["ca.crt"]`), its namespace
//! (`data.namespace`) and the account's uid (annotation `kubernetes.io/service-account.uid`);
//! as in Kubernetes, a token is only made where there is none (one that is there is never
//! replaced), while the CA and namespace are kept current.
//! A token Secret whose account does not exist, or is another one now (another uid), is
//! deleted, so deleting an account deletes its token Secrets.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use skiff_api::k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use skiff_api::k8s_openapi::ByteString;
use skiff_api::token_secret::{ACCOUNT_NAME_ANNOTATION, ACCOUNT_UID_ANNOTATION, TOKEN_SECRET_TYPE};
use tokio_util::sync::CancellationToken;

use super::WORKERS;
use crate::error::ApiError;
use crate::registry::{DeleteOptions, Registry, Subresource};
use crate::runtime::feed::{feed, feed_all};
use crate::runtime::informer::{key_of, object_key, Informer};
use crate::runtime::queue::WorkQueue;
use crate::runtime::runner::{self, Action, Reconciler};
use crate::serviceaccount::{LegacyClaims, TokenError, TokenIssuer};

/// Fills and removes ServiceAccount token Secrets.
pub struct TokenSecretsController {
    pub registry: Registry,
    /// What signs the tokens.
    pub tokens: TokenIssuer,
    /// The ServiceAccounts the Secrets name (the leader's shared informer).
    pub accounts: Arc<Informer<ServiceAccount>>,
    /// The cluster CA (PEM) put beside each token, if the server has one.
    pub cluster_ca: Option<Arc<str>>,
    /// Its work queue (`QueueMetrics::queue`, or `WorkQueue::new()`).
    pub queue: WorkQueue,
}

struct Reconcile {
    registry: Registry,
    tokens: TokenIssuer,
    cluster_ca: Option<Arc<str>>,
    secrets: Arc<Informer<Secret>>,
    accounts: Arc<Informer<ServiceAccount>>,
}

impl TokenSecretsController {
    /// Starts its informers and workers; they run until `shutdown` is cancelled.
    pub fn spawn(self, shutdown: CancellationToken) {
        let secrets: Arc<Informer<Secret>> =
            Informer::start(self.registry.clone(), shutdown.clone());
        let accounts = self.accounts;
        feed(&secrets, &self.queue, token_secret_key, &secrets, &shutdown);
        // An account deleted takes its token Secrets with it.
        feed_all(
            &accounts,
            &self.queue,
            |change| change.new.is_none(),
            &secrets,
            &shutdown,
        );
        let reconcile = Reconcile {
            registry: self.registry,
            tokens: self.tokens,
            cluster_ca: self.cluster_ca,
            secrets,
            accounts,
        };
        runner::spawn(Arc::new(reconcile), self.queue, WORKERS, shutdown);
    }
}

/// The key of a token Secret; none for other Secrets.
fn token_secret_key(secret: &Secret) -> Option<String> {
    (secret.type_.as_deref() == Some(TOKEN_SECRET_TYPE)).then(|| key_of(secret))
}

impl Reconcile {
    /// The ServiceAccount `namespace/name`: from the informer, or from the store when the
    /// informer has not seen it (yet); `None` if it does not exist.
    async fn account(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<ServiceAccount>>, ApiError> {
        if let Some(cached) = self.accounts.get(&object_key(Some(namespace), name)) {
            return Ok(Some(cached));
        }
        let accounts = skiff_api::resources::of::<ServiceAccount>();
        match self.registry.get(accounts, Some(namespace), name).await {
            Ok(account) => Ok(Some(Arc::new(crate::registry::typed::from_value(account)?))),
            Err(ApiError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// `secret` filled for `account` (uid `uid`), or `None` if it already is.
    fn filled(
        &self,
        secret: &Secret,
        account: &str,
        uid: &str,
    ) -> Result<Option<Secret>, TokenError> {
        let namespace = secret.metadata.namespace.as_deref().unwrap_or_default();
        let name = secret.metadata.name.as_deref().unwrap_or_default();
        let data = secret.data.clone().unwrap_or_default();
        let mut wanted = BTreeMap::from([(
            "namespace".to_string(),
            ByteString(namespace.as_bytes().to_vec()),
        )]);
        if let Some(ca) = &self.cluster_ca {
            wanted.insert("ca.crt".into(), ByteString(ca.as_bytes().to_vec()));
        }
        let needs_token = data.get("token").is_none_or(|t| t.0.is_empty());
        let uid_noted = secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ACCOUNT_UID_ANNOTATION))
            .is_some_and(|noted| noted == uid);
        let data_current = wanted.iter().all(|(k, v)| data.get(k) == Some(v));
        if !needs_token && data_current && uid_noted {
            return Ok(None);
        }
        let mut filled = secret.clone();
        let fields = filled.data.get_or_insert_with(BTreeMap::new);
        fields.extend(wanted);
        if needs_token {
            let claims = LegacyClaims::new(namespace, name, account, uid);
            let token = self.tokens.sign_legacy(&claims)?;
            fields.insert("token".into(), ByteString(token.into_bytes()));
        }
        filled
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(ACCOUNT_UID_ANNOTATION.into(), uid.to_string());
        Ok(Some(filled))
    }
}

#[async_trait]
impl Reconciler for Reconcile {
    fn name(&self) -> &'static str {
        "serviceaccount-token-controller"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let Some(secret) = self.secrets.get(key) else {
            return Ok(Action::await_change());
        };
        if token_secret_key(&secret).is_none() || secret.metadata.deletion_timestamp.is_some() {
            return Ok(Action::await_change());
        }
        let meta = &secret.metadata;
        let namespace = meta.namespace.as_deref().unwrap_or_default();
        let name = meta.name.as_deref().unwrap_or_default();
        let annotations = meta.annotations.clone().unwrap_or_default();
        let Some(account_name) = annotations.get(ACCOUNT_NAME_ANNOTATION) else {
            return Ok(Action::await_change());
        };
        let account = self.account(namespace, account_name).await?;
        let uid = account
            .as_ref()
            .and_then(|a| a.metadata.uid.clone())
            .unwrap_or_default();
        let noted = annotations.get(ACCOUNT_UID_ANNOTATION);
        if account.is_none() || noted.is_some_and(|noted| *noted != uid) {
            tracing::info!(secret = name, namespace, account = %account_name,
                "deleting a token Secret whose ServiceAccount is gone");
            let options = DeleteOptions {
                uid: meta.uid.clone(),
                ..DeleteOptions::default()
            };
            let secrets = skiff_api::resources::of::<Secret>();
            return match self
                .registry
                .delete(secrets, Some(namespace), name, &options)
                .await
            {
                Ok(_) | Err(ApiError::NotFound { .. }) => Ok(Action::await_change()),
                Err(err) => Err(err),
            };
        }
        let filled = self
            .filled(&secret, account_name, &uid)
            .map_err(|e| ApiError::Internal(format!("signing a legacy token: {e}")))?;
        if let Some(filled) = filled {
            self.registry
                .update_typed(&filled, Subresource::Main)
                .await?;
        }
        Ok(Action::await_change())
    }
}
