//! The control plane's integration tests, one module per concern, in one test
//! binary, so that the workspace links it once (see README, "Tests").

mod api;
mod audit;
mod certificates;
mod common;
mod daemonset;
mod endpoints;
mod endpointslice_mirroring;
mod endpointslices;
mod eviction;
mod ingress;
mod kubectl_api;
mod metrics;
mod node_lifecycle;
mod node_tunnel;
mod openapi;
mod quota;
mod replicaset_burst;
mod request_limits;
mod rollout;
mod server_side_apply;
mod service_accounts;
mod services;
mod static_tokens;
mod storage_admission;
mod tls;
