//! Shared test support for Skiff: a recording fake runtime for agent tests (`recording`),
//! the runtime conformance suite every `ContainerRuntime` must pass (`conformance`), and a
//! log-flooding guest (`flood`), and one TCP request and reply (`exchange`).

pub mod conformance;
pub mod exchange;
pub mod flood;
pub mod recording;

pub use recording::RecordingRuntime;
