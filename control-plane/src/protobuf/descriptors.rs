//! The embedded descriptor set of Kubernetes' messages, and which message a kind is.

use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, MessageDescriptor};

/// Kubernetes' `.proto` files (apimachinery, the built-in API groups, apiextensions), compiled
/// by `scripts/kubernetes-descriptors.sh`.
static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(include_bytes!("kubernetes.fds").as_slice())
        .expect("the embedded Kubernetes descriptor set decodes")
});

/// The package of `meta/v1` (Status, DeleteOptions, ...), which every group uses.
const META: &str = "apimachinery.pkg.apis.meta.v1";

/// Every message of the set.
pub(super) fn messages() -> impl Iterator<Item = MessageDescriptor> {
    POOL.all_messages()
}

/// A message by its full name (`apimachinery.pkg.runtime.Unknown`).
pub(super) fn message(full_name: &str) -> MessageDescriptor {
    POOL.get_message_by_name(full_name)
        .unwrap_or_else(|| panic!("{full_name} is in the embedded descriptor set"))
}

/// The message of a built-in kind: `apps/v1` `Deployment` is `api.apps.v1.Deployment`,
/// `rbac.authorization.k8s.io/v1` `Role` is `api.rbac.v1.Role`; `meta/v1` kinds (Status,
/// DeleteOptions) in any built-in group. `None` for other groups (custom resources).
pub(super) fn kind(api_version: &str, kind: &str) -> Option<MessageDescriptor> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let package = match group {
        "" => "api.core".to_string(),
        "apiextensions.k8s.io" => "apiextensions_apiserver.pkg.apis.apiextensions".to_string(),
        "meta.k8s.io" => return POOL.get_message_by_name(&format!("{META}.{kind}")),
        group if !group.contains('.') => format!("api.{group}"),
        group => format!("api.{}", group.strip_suffix(".k8s.io")?.split('.').next()?),
    };
    POOL.get_message_by_name(&format!("{package}.{version}.{kind}"))
        .or_else(|| POOL.get_message_by_name(&format!("{META}.{kind}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_kinds_by_group_and_version() {
        let name = |v, k| kind(v, k).map(|m| m.full_name().to_string());
        assert_eq!(name("v1", "Pod").as_deref(), Some("api.core.v1.Pod"));
        assert_eq!(
            name("apps/v1", "Deployment").as_deref(),
            Some("api.apps.v1.Deployment")
        );
        assert_eq!(
            name("rbac.authorization.k8s.io/v1", "Role").as_deref(),
            Some("api.rbac.v1.Role")
        );
        assert_eq!(
            name("v1", "DeleteOptions").as_deref(),
            Some("apimachinery.pkg.apis.meta.v1.DeleteOptions")
        );
        assert_eq!(name("example.com/v1", "Widget"), None);
        assert_eq!(name("apps.example.com/v1", "Deployment"), None);
        assert_eq!(name("v1", "Widget"), None);
    }
}
