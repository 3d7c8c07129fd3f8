//! Skiff node runtime: the node agent library and the CRI-like container runtimes.

pub mod agent;
pub mod runtime;
