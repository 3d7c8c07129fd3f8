//! The authorization layer in front of every route: it reads the request's user (the
//! `UserInfo` extension), applies impersonation (`Impersonate-User`, `Impersonate-Group`,
//! `Impersonate-Uid` and `Impersonate-Extra-KEY`, each value authorized by the `impersonate`
//! verb, as `kubectl --as` and client-go send them), and answers 403 with a Kubernetes Status
//! unless the user may make the request. Handlers see the effective user; the response
//! carries it as [`Impersonated`] for the audit log.

use std::collections::BTreeMap;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use serde_json::Value;

use super::AppState;
use crate::authz::{self, node, Attributes, Authorizer, ResourceAttributes, Target};
use crate::error::ApiError;
use crate::identity::{UserInfo, SERVICE_ACCOUNTS_GROUP};

/// The user to act as.
pub const IMPERSONATE_USER: HeaderName = HeaderName::from_static("impersonate-user");
/// A group to act as (repeated for several).
pub const IMPERSONATE_GROUP: HeaderName = HeaderName::from_static("impersonate-group");
/// The uid to act as.
pub const IMPERSONATE_UID: HeaderName = HeaderName::from_static("impersonate-uid");
/// The prefix of the headers that set an extra field of the user acted as: the rest of the
/// name is the field's key, percent-encoded (repeated for several values).
pub const IMPERSONATE_EXTRA_PREFIX: &str = "impersonate-extra-";

/// The user a request acted as when it impersonated one (a response extension), which the
/// audit log records as `impersonatedUser`.
#[derive(Clone, Debug)]
pub struct Impersonated(pub UserInfo);

/// Authorizes the request, or answers it with 401/403.
pub async fn authorize(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let caller = request
        .extensions()
        .get::<UserInfo>()
        .cloned()
        .unwrap_or_else(UserInfo::anonymous);
    let allows = |u: &UserInfo, a: &Attributes| state.authorizer.allows(u, a);
    let user = match impersonate(&allows, &caller, request.headers()) {
        Ok(user) => user,
        Err(err) => return err.into_response(),
    };
    let impersonating = request.headers().contains_key(IMPERSONATE_USER);
    let impersonated = impersonating.then(|| user.clone());
    let mut response = match admit(&state.authorizer, request, user).await {
        Ok(request) => next.run(request).await,
        Err(err) => err.into_response(),
    };
    if let Some(user) = impersonated {
        response.extensions_mut().insert(Impersonated(user));
    }
    response
}

/// The request to serve as `user`, or why not.
async fn admit(
    authorizer: &Authorizer,
    mut request: Request,
    user: UserInfo,
) -> Result<Request, ApiError> {
    let uri = request.uri().clone();
    let attrs = Attributes::from_request(request.method(), uri.path(), uri.query());
    if !authorizer.allows(&user, &attrs) {
        return Err(authz::forbidden(&user, &attrs));
    }
    if let Some(node) = node::node_name(&user) {
        request = check_node_create(request, node, &attrs).await?;
    }
    let headers = request.headers_mut();
    for header in [IMPERSONATE_USER, IMPERSONATE_GROUP, IMPERSONATE_UID] {
        headers.remove(header);
    }
    for header in extra_headers(headers) {
        headers.remove(header);
    }
    request.extensions_mut().insert(user);
    Ok(request)
}

/// The `Impersonate-Extra-*` header names of `headers`.
fn extra_headers(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .keys()
        .filter(|name| name.as_str().starts_with(IMPERSONATE_EXTRA_PREFIX))
        .cloned()
        .collect()
}

/// The user the request acts as: the caller, or whom it impersonates if allowed to. As in
/// Kubernetes, a ServiceAccount impersonated without groups is in its groups, and every
/// user but `system:anonymous` is in `system:authenticated`.
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
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for name in extra_headers(headers) {
        let escaped = &name.as_str()[IMPERSONATE_EXTRA_PREFIX.len()..];
        let key = percent_decode_str(escaped)
            .decode_utf8()
            .map_err(|_| ApiError::BadRequest(format!("header {name} is not a UTF-8 key")))?;
        extra
            .entry(key.into_owned())
            .or_default()
            .extend(text(&name)?);
    }
    let Some(name) = users.into_iter().next() else {
        if groups.is_empty() && uid.is_none() && extra.is_empty() {
            return Ok(caller.clone());
        }
        return Err(ApiError::BadRequest(
            "Impersonate-Group, Impersonate-Uid and Impersonate-Extra-* need Impersonate-User"
                .into(),
        ));
    };
    let account = service_account(&name);
    let mut asked = vec![match account {
        Some((namespace, account)) => resource("serviceaccounts", namespace, account),
        None => resource("users", "", &name),
    }];
    asked.extend(groups.iter().map(|g| resource("groups", "", g)));
    asked.extend(uid.iter().map(|u| authentication(resource("uids", "", u))));
    for (key, values) in &extra {
        asked.extend(values.iter().map(|value| ResourceAttributes {
            subresource: key.clone(),
            ..authentication(resource("userextras", "", value))
        }));
    }
    for target in asked {
        let attrs = Attributes {
            verb: "impersonate".into(),
            target: Target::Resource(target),
        };
        if !allows(caller, &attrs) {
            return Err(authz::forbidden(caller, &attrs));
        }
    }
    let groups = match account {
        Some((namespace, _)) if groups.is_empty() => vec![
            SERVICE_ACCOUNTS_GROUP.to_string(),
            format!("{SERVICE_ACCOUNTS_GROUP}:{namespace}"),
        ],
        _ => groups,
    };
    let mut user = if name == UserInfo::anonymous().name {
        UserInfo {
            groups,
            ..UserInfo::anonymous()
        }
    } else {
        UserInfo::authenticated(name, groups)
    };
    user.uid = uid;
    user.extra = extra;
    Ok(user)
}

/// The namespace and name of the ServiceAccount a user name addresses, if it does.
fn service_account(name: &str) -> Option<(&str, &str)> {
    name.strip_prefix("system:serviceaccount:")?.split_once(':')
}

/// `attrs` in the `authentication.k8s.io` group (uids and extra fields).
fn authentication(attrs: ResourceAttributes) -> ResourceAttributes {
    ResourceAttributes {
        api_group: "authentication.k8s.io".into(),
        ..attrs
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
        assert_eq!(
            robot.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ci",
                AUTHENTICATED_GROUP
            ],
            "an account impersonated without groups is in its own"
        );
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

    #[test]
    fn uid_and_extra_fields_are_impersonated_value_by_value() {
        let admin = UserInfo::insecure();
        let asked = headers(&[
            (IMPERSONATE_USER, "bob"),
            (IMPERSONATE_UID, "u-1"),
            (
                HeaderName::from_static("impersonate-extra-acme.com%2fproject"),
                "web",
            ),
            (
                HeaderName::from_static("impersonate-extra-acme.com%2fproject"),
                "api",
            ),
        ]);
        let bob = impersonate(&allows, &admin, &asked).expect("an admin impersonates");
        assert_eq!(bob.uid.as_deref(), Some("u-1"));
        assert_eq!(
            bob.extra,
            BTreeMap::from([(
                "acme.com/project".to_string(),
                vec!["web".to_string(), "api".to_string()]
            )])
        );

        // Alice may be the builder, but not with an extra field she was not granted.
        let with_extra = headers(&[
            (IMPERSONATE_USER, "system:serviceaccount:ci:builder"),
            (HeaderName::from_static("impersonate-extra-scopes"), "all"),
        ]);
        let alice = UserInfo::authenticated("alice", vec![]);
        let refused = impersonate(&allows, &alice, &with_extra).expect_err("not granted");
        assert_eq!(
            refused.to_string(),
            "userextras.authentication.k8s.io \"all\" is forbidden: User \"alice\" cannot impersonate resource \"userextras/scopes\" in API group \"authentication.k8s.io\" at the cluster scope"
        );
        let extra_alone = headers(&[(HeaderName::from_static("impersonate-extra-scopes"), "all")]);
        assert!(matches!(
            impersonate(&allows, &admin, &extra_alone),
            Err(ApiError::BadRequest(_))
        ));
    }
}
