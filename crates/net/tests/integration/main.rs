//! skiff-net's integration tests, one module per concern, in one test
//! binary, so that the workspace links it once (see README, "Tests"). `descriptors.rs` is a
//! binary of its own: it lowers the process's descriptor limit.

mod limits;
mod upgrades;
