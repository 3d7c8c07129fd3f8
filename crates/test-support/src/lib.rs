//! Shared test support for Skiff: a recording fake runtime for agent tests (`recording`),
//! the runtime conformance suite every `ContainerRuntime` must pass (`conformance`), and a
//! log-flooding guest (`flood`).

pub mod conformance;
pub mod flood;
pub mod recording;

pub use recording::RecordingRuntime;
