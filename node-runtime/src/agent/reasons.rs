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
    /// The runtime could not create the container (including an image it cannot run).
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
            Failure::Create => "CreateContainerError",
            Failure::Start => "RunContainerError",
        }
    }

    /// How long to wait before trying again: pulls back off as restarts do.
    pub fn retry_after(self, backoff: &Backoff) -> Duration {
        match self {
            Failure::Pull { attempts } => backoff.delay(attempts),
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
