//! What preparing the cluster's certificates can fail with.

use std::path::PathBuf;

/// A certificate or key that could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("making the {what}: {source}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    /// A certificate signing request that does not parse or whose signature does not verify.
    #[error("the certificate signing request: {source}")]
    Request {
        #[source]
        source: rcgen::Error,
    },
    #[error("reading {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a usable {what}: {reason}", path.display())]
    Invalid {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    /// An in-memory certificate or key (one a running server issued itself) that does not load.
    #[error("the in-memory {what} is not usable: {reason}")]
    InMemory { what: &'static str, reason: String },
    #[error("the TLS configuration: {0}")]
    Tls(#[from] tokio_rustls::rustls::Error),
    #[error("the client certificate verifier: {0}")]
    Verifier(#[from] tokio_rustls::rustls::server::VerifierBuilderError),
    /// A member of a multi-member cluster needs the CA the others use.
    #[error(
        "this member of a multi-member cluster has no cluster CA in {}: every member must \
         share one. Make it once with `skiff certificate create-ca --out DIR`, copy DIR to each \
         member and start each with `--cluster-ca DIR`",
        dir.display()
    )]
    NoSharedCa { dir: PathBuf },
}
