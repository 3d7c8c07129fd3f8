//! Table columns per kind, as `kubectl get` shows them against a real cluster: one definition
//! used by the API server's `Table` responses and by `skiff get`.

pub mod age;
mod batch_columns;
pub mod certificate_columns;
pub mod columns;
pub mod ingress_columns;
mod pod_columns;
mod quota_columns;
pub mod service_columns;
mod storage_columns;
mod workload_columns;
