//! ServiceAccount tokens as Kubernetes makes them: ES256 JWTs with Kubernetes' claims, signed
//! with the cluster's `service-account.key`, issued through TokenRequest and accepted as bearer
//! tokens while their ServiceAccount (and the Pod, Secret or Node they are bound to) still
//! exist; and the legacy tokens Kubernetes keeps in `kubernetes.io/service-account-token`
//! Secrets (`legacy`).

mod legacy;
mod request;
mod token;

pub use legacy::LegacyClaims;
pub use request::{
    Bindings, BoundKind, BoundObject, SpecError, TokenRequestSpec, DEFAULT_EXPIRATION_SECONDS,
    MAX_EXPIRATION_SECONDS,
};
pub use token::{BoundRef, Claims, KubernetesClaims, TokenError, TokenIssuer, DEFAULT_ISSUER};
