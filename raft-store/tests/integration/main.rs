//! The Raft store's integration tests, one module per concern, in one test
//! binary, so that the workspace links it once (see README, "Tests").

mod cluster;
mod network;
mod peer_tls;
mod store;
