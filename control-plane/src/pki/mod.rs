//! The cluster's public-key infrastructure, laid out as k3s does in `DATA_DIR/tls/`: a
//! cluster CA (`ca.crt`, `ca.key`), the API's serving certificate (`serving.crt`,
//! `serving.key`), an admin client certificate (`admin.crt`, `admin.key`, CN=admin,
//! O=system:masters) and the ServiceAccount token signing key (`service-account.key`). Certificates come from rcgen, TLS from rustls (ring); nothing here is
//! hand-written crypto.

mod authority;
mod client_identity;
mod error;
mod files;
mod kubelet_client;
mod renewing_cert;
mod server_tls;
mod service_account_key;
mod serving;

pub use authority::{CertRequest, ClusterCa, IssuedCert, Usage};
pub use client_identity::{user_of_certificate, CertificateUser};
pub use error::PkiError;
pub use files::{
    ADMIN_CERT, ADMIN_KEY, CA_CERT, CA_KEY, SERVICE_ACCOUNT_KEY, SERVING_CERT, SERVING_KEY, TLS_DIR,
};
pub use kubelet_client::agent_client_config;
pub use renewing_cert::RenewingCert;
pub use server_tls::{ca_hash, crypto_provider, ServerTls, TlsOptions};
pub use service_account_key::ServiceAccountKey;
pub use serving::{first_der, serving_names};

#[cfg(test)]
mod tests;
