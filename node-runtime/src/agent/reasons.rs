//! The one mapping from what failed on the way to a running container to the Kubernetes
//! waiting reason the pod shows, and to when the worker tries again.

use std::time::Duration;

use skiff_api::backoff::Backoff;

/// Retry delay after a configuration, create or start failure.
const RETRY: Duration = Duration::from_secs(2);

/// What failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Making the pod sandbox (or its volumes), or reading its RuntimeClass.
    Sandbox,
    /// Pulling the image, for the `attempts`-th time in a row.
    Pull { attempts: u32 },
    /// The image is not on the node and its `imagePullPolicy` is `Never`.
    NeverPull,
    /// The pod's configuration: env references, an unknown RuntimeClass or handler.
    Config,
    /// The node has no runtime for the pod's images or its RuntimeClass's handler, for the
    /// `attempts`-th time in a row: it backs off as pulls do.
    RuntimeUnavailable { attempts: u32 },
    /// The runtime could not create the container.
    Create,
    /// The runtime could not start the created container.
    Start,
}

impl Failure {
    /// The container's `state.waiting.reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Failure::Sandbox => "ContainerCreating",
            Failure::Pull { attempts } if attempts > 1 => "ImagePullBackOff",
            Failure::Pull { .. } => "ErrImagePull",
            Failure::NeverPull => "ErrImageNeverPull",
            Failure::Config => "CreateContainerConfigError",
            Failure::RuntimeUnavailable { .. } => "RuntimeUnavailable",
            Failure::Create => "CreateContainerError",
            Failure::Start => "RunContainerError",
        }
    }

    /// How long to wait before trying again: pulls and a missing runtime back off as
    /// restarts do.
    pub fn retry_after(self, backoff: &Backoff) -> Duration {
        match self {
            Failure::Pull { attempts } | Failure::RuntimeUnavailable { attempts } => {
                backoff.delay(attempts)
            }
            _ => RETRY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_retries_table() {
        let backoff = Backoff::default();
        let cases = [
            (Failure::Sandbox, "ContainerCreating", 2),
            (Failure::Pull { attempts: 1 }, "ErrImagePull", 10),
            (Failure::Pull { attempts: 3 }, "ImagePullBackOff", 40),
            (Failure::NeverPull, "ErrImageNeverPull", 2),
            (Failure::Config, "CreateContainerConfigError", 2),
            (
                Failure::RuntimeUnavailable { attempts: 1 },
                "RuntimeUnavailable",
                10,
            ),
            (
                Failure::RuntimeUnavailable { attempts: 7 },
                "RuntimeUnavailable",
                300,
            ),
            (Failure::Create, "CreateContainerError", 2),
            (Failure::Start, "RunContainerError", 2),
        ];
        for (failure, reason, seconds) in cases {
            assert_eq!(failure.reason(), reason, "{failure:?}");
            assert_eq!(
                failure.retry_after(&backoff),
                Duration::from_secs(seconds),
                "{failure:?}"
            );
        }
    }
}
