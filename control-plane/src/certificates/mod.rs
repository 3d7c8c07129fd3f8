//! The CertificateSigningRequest controllers of the controller manager (leader only), as
//! Kubernetes' `csrapproving` and `csrsigning`: the approver approves node client requests
//! whose requestor may ask for them (the `nodeclient` and `selfnodeclient` permissions), and
//! the serving approver approves a node's own serving certificate for its own addresses; the
//! signer signs approved requests for `kubernetes.io/kube-apiserver-client`,
//! `kubernetes.io/kube-apiserver-client-kubelet` and `kubernetes.io/kubelet-serving` with
//! the cluster CA.

mod approver;
mod controller;
mod serving_approver;
mod signer;

pub use approver::{recognize, AUTO_APPROVED};
pub use controller::{spawn, CsrController};
pub use signer::{sign, Signing, SigningError, DEFAULT_SIGNING_DURATION};
