//! A container's `imagePullPolicy`, and whether the image on the node will do without asking
//! its registry (`file:` images are always re-read: they are on the node already).

use skiff_api::image::default_pull_policy;
use skiff_api::k8s_openapi::api::core::v1::Container;

use crate::runtime::ImageRef;

/// The policies Kubernetes knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

/// What to do before starting a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Use the image the node has.
    Use(Box<ImageRef>),
    /// Pull it (again).
    Pull,
    /// The image is missing and the policy forbids pulling it.
    NeverPull,
}

/// The container's policy, defaulted as Kubernetes does when the spec has none.
pub fn of(container: &Container) -> PullPolicy {
    let image = container.image.as_deref().unwrap_or_default();
    match container
        .image_pull_policy
        .as_deref()
        .unwrap_or_else(|| default_pull_policy(image))
    {
        "Never" => PullPolicy::Never,
        "IfNotPresent" => PullPolicy::IfNotPresent,
        _ => PullPolicy::Always,
    }
}

/// The plan for `reference` under `policy`, given what the node's image service has.
pub fn plan(reference: &str, policy: PullPolicy, present: Option<ImageRef>) -> Plan {
    let present =
        present.filter(|image| image.content.as_os_str().is_empty() || image.content.is_file());
    match (policy, present) {
        _ if reference.starts_with("file:") => Plan::Pull,
        (PullPolicy::Always, _) => Plan::Pull,
        (_, Some(image)) => Plan::Use(Box::new(image)),
        (PullPolicy::IfNotPresent, None) => Plan::Pull,
        (PullPolicy::Never, None) => Plan::NeverPull,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(image: &str, policy: Option<&str>) -> Container {
        Container {
            image: Some(image.into()),
            image_pull_policy: policy.map(str::to_string),
            ..Container::default()
        }
    }

    #[test]
    fn policies_and_plans() {
        assert_eq!(of(&container("r.io/a", None)), PullPolicy::Always);
        assert_eq!(of(&container("r.io/a:1", None)), PullPolicy::IfNotPresent);
        assert_eq!(of(&container("r.io/a:1", Some("Never"))), PullPolicy::Never);
        let image = ImageRef {
            reference: "r.io/a:1".into(),
            digest: "sha256:00".into(),
            size: 0,
            config: Default::default(),
            content: Default::default(),
            layers: Vec::new(),
        };
        let have = || Some(image.clone());
        let cases = [
            ("r.io/a:1", PullPolicy::Always, have(), Plan::Pull),
            (
                "r.io/a:1",
                PullPolicy::IfNotPresent,
                have(),
                Plan::Use(Box::new(image.clone())),
            ),
            ("r.io/a:1", PullPolicy::IfNotPresent, None, Plan::Pull),
            (
                "r.io/a:1",
                PullPolicy::Never,
                have(),
                Plan::Use(Box::new(image.clone())),
            ),
            ("r.io/a:1", PullPolicy::Never, None, Plan::NeverPull),
            ("file:/g.wasm", PullPolicy::Never, None, Plan::Pull),
        ];
        for (reference, policy, present, want) in cases {
            assert_eq!(
                plan(reference, policy, present),
                want,
                "{reference} {policy:?}"
            );
        }
        // An index entry whose blob is gone is not present.
        let gone = ImageRef {
            content: "/nonexistent/blob".into(),
            ..image
        };
        assert_eq!(
            plan("r.io/a:1", PullPolicy::Never, Some(gone)),
            Plan::NeverPull
        );
    }
}
