//! Shared test support for Skiff: a recording fake runtime for agent tests (`recording`) and
//! the runtime conformance suite every `ContainerRuntime` must pass (`conformance`).

pub mod conformance;
pub mod recording;

pub use recording::RecordingRuntime;
