//! The node runtime's integration tests, one module per concern, in one test
//! binary, so that the workspace links it once (see README, "Tests").

mod agent;
mod conformance;
mod image_import;
mod linux;
mod node_resources;
mod registry_pull;
