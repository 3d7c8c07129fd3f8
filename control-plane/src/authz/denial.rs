//! The 403 of a refused request, worded as Kubernetes words it:
//! `pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the
//! namespace "default"`.

use super::attributes::{Attributes, Target};
use crate::error::ApiError;
use crate::identity::UserInfo;

/// The error answering a request `user` may not make.
pub fn forbidden(user: &UserInfo, attrs: &Attributes) -> ApiError {
    let verb = &attrs.verb;
    let who = &user.name;
    match &attrs.target {
        Target::NonResource { path } => ApiError::AccessDenied {
            resource: String::new(),
            name: String::new(),
            message: format!("forbidden: User \"{who}\" cannot {verb} path \"{path}\""),
        },
        Target::Resource(r) => {
            let resource = if r.api_group.is_empty() {
                r.resource.clone()
            } else {
                format!("{}.{}", r.resource, r.api_group)
            };
            let object = if r.name.is_empty() {
                resource.clone()
            } else {
                format!("{resource} \"{}\"", r.name)
            };
            let scope = if r.namespace.is_empty() {
                "at the cluster scope".to_string()
            } else {
                format!("in the namespace \"{}\"", r.namespace)
            };
            ApiError::AccessDenied {
                message: format!(
                    "{object} is forbidden: User \"{who}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
                    r.combined_resource(),
                    r.api_group,
                ),
                resource,
                name: r.name.clone(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;

    #[test]
    fn messages_name_the_user_verb_resource_and_namespace() {
        let bob = UserInfo::authenticated("bob", vec![]);
        let message = |method: Method, path: &str| {
            forbidden(&bob, &Attributes::from_request(&method, path, None)).to_string()
        };
        assert_eq!(
            message(Method::GET, "/api/v1/namespaces/default/pods"),
            "pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        assert_eq!(
            message(Method::GET, "/api/v1/namespaces/a/pods/web/log"),
            "pods \"web\" is forbidden: User \"bob\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"a\""
        );
        assert_eq!(
            message(Method::DELETE, "/apis/apps/v1/namespaces/a/deployments/web"),
            "deployments.apps \"web\" is forbidden: User \"bob\" cannot delete resource \"deployments\" in API group \"apps\" in the namespace \"a\""
        );
        assert_eq!(
            message(Method::GET, "/api/v1/nodes"),
            "nodes is forbidden: User \"bob\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
        );
        assert_eq!(
            message(Method::GET, "/skiff/v1/backup"),
            "forbidden: User \"bob\" cannot get path \"/skiff/v1/backup\""
        );
    }
}
