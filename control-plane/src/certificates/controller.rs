//! The loop that runs the approver and the signer over every CertificateSigningRequest.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use skiff_api::k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestStatus,
};
use skiff_api::k8s_openapi::ByteString;
use skiff_api::resources;
use tokio_util::sync::CancellationToken;

use super::signer::{self, Signing, SigningError};
use super::{approver, serving_approver, AUTO_APPROVED};
use crate::authz::Authorizer;
use crate::error::ApiError;
use crate::registry::{ListOptions, Registry, Subresource};
use crate::runtime::feed::feed;
use crate::runtime::informer::{key_of, Informer};
use crate::runtime::queue::WorkQueue;
use crate::runtime::runner::{self, Action, Reconciler};

/// Approves and signs CertificateSigningRequests.
pub struct CsrController {
    pub registry: Registry,
    pub csrs: Arc<Informer<CertificateSigningRequest>>,
    pub authorizer: Authorizer,
    /// The CA to sign with; without it (a server without TLS) requests are only approved.
    pub signing: Option<Signing>,
}

/// Starts the controller over its own informer, working off `queue`; it stops with `shutdown`.
pub fn spawn(
    registry: &Registry,
    authorizer: Authorizer,
    signing: Option<Signing>,
    queue: WorkQueue,
    shutdown: &CancellationToken,
) {
    let csrs = Informer::<CertificateSigningRequest>::start(registry.clone(), shutdown.clone());
    feed(&csrs, &queue, |c| Some(key_of(c)), &csrs, shutdown);
    let controller = CsrController {
        registry: registry.clone(),
        csrs,
        authorizer,
        signing,
    };
    let shutdown = shutdown.clone();
    // The approver asks RBAC: it starts once the authorizer holds the cluster's roles.
    tokio::spawn(async move {
        controller.authorizer.synced().await;
        runner::spawn(Arc::new(controller), queue, 2, shutdown);
    });
}

fn has(csr: &CertificateSigningRequest, kind: &str) -> bool {
    csr.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .any(|c| c.type_ == kind && c.status == "True")
}

fn condition(kind: &str, reason: &str, message: String) -> CertificateSigningRequestCondition {
    let now = skiff_api::time::now();
    CertificateSigningRequestCondition {
        type_: kind.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

impl CsrController {
    /// Approves `csr` if the approver recognizes it and its requestor may ask for it.
    async fn approve(&self, csr: &CertificateSigningRequest) -> Result<(), ApiError> {
        let (allowed, message) = match serving_approver::recognize(csr) {
            Some(serving) => {
                let nodes = resources::by_name("nodes").expect("nodes are served");
                let fits = match self.registry.get(nodes, None, &serving.node).await {
                    Ok(node) => {
                        let taken = self.names_held_by_others(&serving.node).await?;
                        serving_approver::fits(&serving, &node, &taken)
                    }
                    Err(ApiError::NotFound { .. }) => false,
                    Err(err) => return Err(err),
                };
                (
                    fits,
                    "Auto approving the node's serving certificate for its own addresses.",
                )
            }
            None => (
                approver::recognize(csr)
                    .iter()
                    .any(|(user, attrs)| self.authorizer.allows(user, attrs)),
                "Auto approving kubelet client certificate after SubjectAccessReview.",
            ),
        };
        if !allowed {
            return Ok(());
        }
        let mut approved = csr.clone();
        let status = approved.status.get_or_insert_with(Default::default);
        status
            .conditions
            .get_or_insert_with(Vec::new)
            .push(condition("Approved", AUTO_APPROVED, message.into()));
        self.registry
            .update_typed(&approved, Subresource::Approval)
            .await
            .map(drop)
    }

    /// Signs an approved request, or marks it Failed if the signer refuses it.
    /// The names API servers (their leases) and nodes other than `node` hold, which `node`'s
    /// serving certificate may not name.
    async fn names_held_by_others(&self, node: &str) -> Result<BTreeSet<String>, ApiError> {
        let nodes = resources::by_name("nodes").expect("nodes are served");
        let leases = resources::by_name("leases").expect("leases are served");
        let (others, _) = self
            .registry
            .list(nodes, None, &ListOptions::default())
            .await?;
        let (servers, _) = self
            .registry
            .list(
                leases,
                Some(crate::apiserver_lease::LEASE_NAMESPACE),
                &ListOptions::default(),
            )
            .await?;
        Ok(others
            .iter()
            .filter(|n| n.pointer("/metadata/name").and_then(Value::as_str) != Some(node))
            .chain(&servers)
            .flat_map(serving_approver::held_names)
            .collect())
    }

    async fn sign(
        &self,
        signing: &Signing,
        csr: &CertificateSigningRequest,
    ) -> Result<(), ApiError> {
        let mut next = csr.clone();
        let status = next
            .status
            .get_or_insert_with(CertificateSigningRequestStatus::default);
        match signer::sign(signing, csr) {
            Ok(pem) => status.certificate = Some(ByteString(pem.into_bytes())),
            Err(SigningError::Pki(err)) if !matches!(err, crate::pki::PkiError::Request { .. }) => {
                return Err(ApiError::Internal(format!("signing a certificate: {err}")));
            }
            Err(refused) => {
                status
                    .conditions
                    .get_or_insert_with(Vec::new)
                    .push(condition(
                        "Failed",
                        "SignerValidationFailure",
                        refused.to_string(),
                    ));
            }
        }
        self.registry
            .update_typed(&next, Subresource::Status)
            .await
            .map(drop)
    }
}

#[async_trait]
impl Reconciler for CsrController {
    fn name(&self) -> &'static str {
        "csr-controller"
    }

    async fn reconcile(&self, key: &str) -> Result<Action, ApiError> {
        let Some(csr) = self.csrs.get(key) else {
            return Ok(Action::await_change());
        };
        let (approved, denied) = (has(&csr, "Approved"), has(&csr, "Denied"));
        if !approved && !denied {
            self.approve(&csr).await?;
            return Ok(Action::await_change());
        }
        let issued = csr
            .status
            .as_ref()
            .and_then(|s| s.certificate.as_ref())
            .is_some_and(|c| !c.0.is_empty());
        let signable = approved && !has(&csr, "Failed") && !issued;
        match &self.signing {
            Some(signing) if signable && signer::serves(&csr.spec.signer_name) => {
                self.sign(signing, &csr).await?;
            }
            _ => {}
        }
        Ok(Action::await_change())
    }
}
