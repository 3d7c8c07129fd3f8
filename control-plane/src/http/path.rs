//! Parsing Kubernetes REST paths into the resource they address.

use skiff_api::resources::{self, ResourceKind};

use crate::error::ApiError;

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiPath {
    pub kind: &'static ResourceKind,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Parses `/api/v1/...` and `/apis/{group}/{version}/...` paths.
pub fn parse(path: &str) -> Result<ApiPath, ApiError> {
    let unknown = || ApiError::UnknownResource(path.to_string());
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(unknown()),
    };
    let lookup = |plural: &str| resources::by_path(group, version, plural).ok_or_else(unknown);
    let own = |s: &&str| Some(s.to_string());
    let is_namespace_sub = |sub: &str| group.is_empty() && matches!(sub, "status" | "finalize");
    let parsed = match rest {
        [plural] => (lookup(plural)?, None, None, None),
        ["namespaces", ns, sub] if is_namespace_sub(sub) => {
            (lookup("namespaces")?, None, own(ns), own(sub))
        }
        ["namespaces", ns, plural] => (lookup(plural)?, own(ns), None, None),
        ["namespaces", ns, plural, name] => (lookup(plural)?, own(ns), own(name), None),
        ["namespaces", ns, plural, name, sub] => (lookup(plural)?, own(ns), own(name), own(sub)),
        [plural, name] => (lookup(plural)?, None, own(name), None),
        [plural, name, sub] => (lookup(plural)?, None, own(name), own(sub)),
        _ => return Err(unknown()),
    };
    let (kind, namespace, name, subresource) = parsed;
    if kind.namespaced && namespace.is_none() && name.is_some() {
        return Err(ApiError::BadRequest(format!(
            "{} are namespaced: address them under /namespaces/{{namespace}}/",
            kind.plural
        )));
    }
    if !kind.namespaced && namespace.is_some() {
        return Err(unknown());
    }
    Ok(ApiPath {
        kind,
        namespace,
        name,
        subresource,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(path: &str) -> (String, Option<String>, Option<String>, Option<String>) {
        let p = parse(path).expect(path);
        (
            p.kind.plural.to_string(),
            p.namespace,
            p.name,
            p.subresource,
        )
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn parses_core_and_group_paths() {
        assert_eq!(parts("/api/v1/pods"), ("pods".into(), None, None, None));
        assert_eq!(
            parts("/api/v1/namespaces/default/pods"),
            ("pods".into(), s("default"), None, None)
        );
        assert_eq!(
            parts("/api/v1/namespaces/default/pods/web-1/log"),
            ("pods".into(), s("default"), s("web-1"), s("log"))
        );
        assert_eq!(
            parts("/apis/apps/v1/namespaces/ns1/deployments/web"),
            ("deployments".into(), s("ns1"), s("web"), None)
        );
        assert_eq!(
            parts("/api/v1/nodes/n1/status"),
            ("nodes".into(), None, s("n1"), s("status"))
        );
        assert_eq!(
            parts("/api/v1/namespaces/team"),
            ("namespaces".into(), None, s("team"), None)
        );
        assert_eq!(
            parts("/api/v1/namespaces/team/status"),
            ("namespaces".into(), None, s("team"), s("status"))
        );
    }

    #[test]
    fn rejects_unknown_resources_and_bad_scopes() {
        assert!(matches!(
            parse("/api/v1/widgets"),
            Err(ApiError::UnknownResource(_))
        ));
        assert!(matches!(
            parse("/apis/apps/v1/pods"),
            Err(ApiError::UnknownResource(_))
        ));
        assert!(matches!(
            parse("/api/v1/namespaces/a/nodes"),
            Err(ApiError::UnknownResource(_))
        ));
        assert!(matches!(
            parse("/api/v1/pods/x"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(parse("/metrics").is_err());
    }
}
