//! The authorization layer in front of every route: it reads the request's user (the
//! `UserInfo` extension), applies impersonation (`Impersonate-User`, `Impersonate-Group`,
//! authorized by the `impersonate` verb, as `kubectl --as` sends them), and answers 403 with a
//! Kubernetes Status unless the user may make the request. Handlers see the effective user.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use crate::authz::{self, node, Attributes, Authorizer, ResourceAttributes, Target};
use crate::error::ApiError;
use crate::identity::UserInfo;

/// The user to act as.
pub const IMPERSONATE_USER: HeaderName = HeaderName::from_static("impersonate-user");
/// A group to act as (repeated for several).
pub const IMPERSONATE_GROUP: HeaderName = HeaderName::from_static("impersonate-group");
/// The uid to act as.
pub const IMPERSONATE_UID: HeaderName = HeaderName::from_static("impersonate-uid");

/// Authorizes the request, or answers it with 401/403.
pub async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match admit(&state.authorizer, request).await {
        Ok(request) => next.run(request).await,
        Err(err) => err.into_response(),
    }
}

async fn admit(authorizer: &Authorizer, mut request: Request) -> Result<Request, ApiError> {
    let caller = request
        .extensions()
        .get::<UserInfo>()
        .cloned()
        .unwrap_or_else(UserInfo::anonymous);
    let user = impersonate(&|u, a| authorizer.allows(u, a), &caller, request.headers())?;
    let uri = request.uri().clone();
    let attrs = Attributes::from_request(request.method(), uri.path(), uri.query());
    if !authorizer.allows(&user, &attrs) {
        return Err(authz::forbidden(&user, &attrs));
    }
    if let Some(node) = node::node_name(&user) {
        request = check_node_create(request, node, &attrs).await?;
    }
    for header in [IMPERSONATE_USER, IMPERSONATE_GROUP, IMPERSONATE_UID] {
        request.headers_mut().remove(header);
    }
    request.extensions_mut().insert(user);
    Ok(request)
}

/// The user the request acts as: the caller, or whom it impersonates if allowed to.
fn impersonate(
    allows: &dyn Fn(&UserInfo, &Attributes) -> bool,
    caller: &UserInfo,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let text = |name: &HeaderName| -> Result<Vec<String>, ApiError> {
        headers
            .get_all(name)
            .iter()
            .map(|v| {
                v.to_str()
                    .map(str::to_string)
                    .map_err(|_| ApiError::BadRequest(format!("header {name} is not text")))
            })
            .collect()
    };
    let users = text(&IMPERSONATE_USER)?;
    let groups = text(&IMPERSONATE_GROUP)?;
    let uid = text(&IMPERSONATE_UID)?.into_iter().next();
    let Some(name) = users.into_iter().next() else {
        if groups.is_empty() && uid.is_none() {
            return Ok(caller.clone());
        }
        return Err(ApiError::BadRequest(
            "Impersonate-Group and Impersonate-Uid need Impersonate-User".into(),
        ));
    };
    let mut asked = vec![impersonation(&name)];
    asked.extend(groups.iter().map(|g| resource("groups", "", g)));
    asked.extend(uid.iter().map(|u| {
        let mut r = resource("uids", "", u);
        r.api_group = "authentication.k8s.io".into();
        r
    }));
    for target in asked {
        let attrs = Attributes {
            verb: "impersonate".into(),
            target: Target::Resource(target),
        };
        if !allows(caller, &attrs) {
            return Err(authz::forbidden(caller, &attrs));
        }
    }
    let mut user = if name == UserInfo::anonymous().name {
        UserInfo {
            groups,
            ..UserInfo::anonymous()
        }
    } else {
        UserInfo::authenticated(name, groups)
    };
    user.uid = uid;
    Ok(user)
}

/// What impersonating user `name` is: a ServiceAccount's user name addresses the account.
fn impersonation(name: &str) -> ResourceAttributes {
    match name
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
    {
        Some((namespace, account)) => resource("serviceaccounts", namespace, account),
        None => resource("users", "", name),
    }
}

fn resource(resource: &str, namespace: &str, name: &str) -> ResourceAttributes {
    ResourceAttributes {
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
        ..ResourceAttributes::default()
    }
}

/// A node may create only its own Node and Lease (Kubernetes' NodeRestriction admission): the
/// body of such a create must name the node.
async fn check_node_create(
    request: Request,
    node: &str,
    attrs: &Attributes,
) -> Result<Request, ApiError> {
    let Some(r) = attrs.resource() else {
        return Ok(request);
    };
    let own_kind = matches!(
        (r.api_group.as_str(), r.resource.as_str()),
        ("", "nodes") | ("coordination.k8s.io", "leases")
    );
    if *request.method() != Method::POST || !own_kind || !r.subresource.is_empty() {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, skiff_api::MAX_REQUEST_BODY_BYTES)
        .await
        .map_err(|e| ApiError::BadRequest(format!("reading the request body: {e}")))?;
    let object = if super::request_body::is_protobuf(&parts.headers) {
        super::request_body::from_protobuf(&bytes).ok()
    } else {
        serde_json::from_slice::<Value>(&bytes).ok()
    };
    let named = object.and_then(|v| v.pointer("/metadata/name")?.as_str().map(str::to_string));
    if named.as_deref() != Some(node) {
        let mut named_attrs = attrs.clone();
        if let Target::Resource(r) = &mut named_attrs.target {
            r.name = named.unwrap_or_default();
        }
        let user = UserInfo::authenticated(format!("system:node:{node}"), vec![]);
        return Err(authz::forbidden(&user, &named_attrs));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::identity::{AUTHENTICATED_GROUP, MASTERS_GROUP};

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name.clone(), HeaderValue::from_str(value).expect("value"));
        }
        headers
    }

    /// Masters may do anything; `alice` may impersonate only the ServiceAccount `ci/builder`.
    fn allows(user: &UserInfo, attrs: &Attributes) -> bool {
        if user.in_group(MASTERS_GROUP) {
            return true;
        }
        let r = attrs.resource().cloned().unwrap_or_default();
        user.name == "alice"
            && attrs.verb == "impersonate"
            && (r.resource.as_str(), r.namespace.as_str(), r.name.as_str())
                == ("serviceaccounts", "ci", "builder")
    }

    #[tokio::test]
    async fn a_node_creates_only_its_own_lease_also_in_protobuf() {
        let path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
        let attrs = Attributes::from_request(&Method::POST, path, None);
        let create = |name: &str| {
            let lease = serde_json::json!({"apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease", "metadata": {"name": name, "namespace": "kube-node-lease"}});
            Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(
                    axum::http::header::CONTENT_TYPE,
                    crate::protobuf::MEDIA_TYPE,
                )
                .body(Body::from(
                    crate::protobuf::encode(&lease).expect("encodes"),
                ))
                .expect("a request")
        };
        assert!(check_node_create(create("n1"), "n1", &attrs).await.is_ok());
        let refused = check_node_create(create("n2"), "n1", &attrs)
            .await
            .expect_err("another node's Lease");
        assert!(refused.to_string().contains("n2"), "{refused}");
    }

    #[test]
    fn impersonation_needs_the_impersonate_verb_on_each_user_and_group() {
        let admin = UserInfo::insecure();
        let alice = UserInfo::authenticated("alice", vec![]);
        let none = impersonate(&allows, &alice, &HeaderMap::new()).expect("no headers");
        assert_eq!(none, alice);

        let as_bob = headers(&[(IMPERSONATE_USER, "bob"), (IMPERSONATE_GROUP, "dev")]);
        let bob = impersonate(&allows, &admin, &as_bob).expect("an admin impersonates");
        assert_eq!(bob.name, "bob");
        assert_eq!(bob.groups, ["dev", AUTHENTICATED_GROUP]);
        assert!(
            !bob.in_group(MASTERS_GROUP),
            "the caller's groups are not kept"
        );

        let refused = impersonate(&allows, &alice, &as_bob).expect_err("alice may not");
        assert_eq!(
            refused.to_string(),
            "users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        );
        let builder = headers(&[(IMPERSONATE_USER, "system:serviceaccount:ci:builder")]);
        let robot = impersonate(&allows, &alice, &builder).expect("alice may be the builder");
        assert_eq!(robot.name, "system:serviceaccount:ci:builder");
        let with_group = headers(&[
            (IMPERSONATE_USER, "system:serviceaccount:ci:builder"),
            (IMPERSONATE_GROUP, MASTERS_GROUP),
        ]);
        assert!(matches!(
            impersonate(&allows, &alice, &with_group),
            Err(ApiError::AccessDenied { .. })
        ));
        let group_alone = headers(&[(IMPERSONATE_GROUP, "dev")]);
        assert!(matches!(
            impersonate(&allows, &admin, &group_alone),
            Err(ApiError::BadRequest(_))
        ));
    }
}
