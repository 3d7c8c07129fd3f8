//! Shared test support for Skiff: a recording fake runtime for agent tests (`recording`),
//! the runtime conformance suite every `ContainerRuntime` must pass (`conformance`), a
//! log-flooding guest (`flood`), one TCP request and reply (`exchange`), and small Linux
//! images as OCI layouts, `docker save` tarballs or blobs to push (`oci_image`), and the
//! busybox test image's layer, as a tar or a directory for the Linux runtime (`busybox`).

pub mod busybox;
pub mod conformance;
pub mod exchange;
pub mod flood;
pub mod oci_image;
pub mod recording;

pub use recording::RecordingRuntime;
