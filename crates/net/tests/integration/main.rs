//! skiff-net's integration tests, one module per concern, in one test
//! binary, so that the workspace links it once (see README, "Tests").

mod descriptors;
mod limits;
mod upgrades;
