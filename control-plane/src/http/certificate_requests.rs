//! What the API server adds to CertificateSigningRequest writes, as Kubernetes' CSR admission
//! does: a new request records who made it (`spec.username`, `uid`, `groups`, which the client
//! cannot choose); a `kubernetes.io/kube-apiserver-client` request may not ask for
//! `system:masters` (CertificateSubjectRestriction); and approving or denying needs the
//! `approve` verb on the request's signer (`signers` in `certificates.k8s.io`, by name or by
//! `domain/*`), besides `update` on `certificatesigningrequests/approval`.

use serde_json::{json, Value};
use skiff_api::certificates::{parse_request, KUBE_APISERVER_CLIENT};

use crate::authz::{forbidden, Attributes, Authorizer, ResourceAttributes, Target};
use crate::error::ApiError;
use crate::identity::{UserInfo, MASTERS_GROUP};

/// Stamps the requestor on a new request and refuses one asking for cluster-admin.
pub fn admit_create(obj: &mut Value, user: &UserInfo) -> Result<(), ApiError> {
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    let spec = &mut obj["spec"];
    spec["username"] = json!(user.name);
    spec["groups"] = json!(user.groups);
    match &user.uid {
        Some(uid) => spec["uid"] = json!(uid),
        None => {
            if let Some(map) = spec.as_object_mut() {
                map.remove("uid");
            }
        }
    }
    if let Some(map) = spec.as_object_mut() {
        map.remove("extra");
    }
    let signer = spec["signerName"].as_str().unwrap_or_default();
    if signer != KUBE_APISERVER_CLIENT {
        return Ok(());
    }
    let request = request_pem(spec);
    let asks_masters =
        parse_request(&request).is_ok_and(|r| r.organizations.iter().any(|o| o == MASTERS_GROUP));
    if asks_masters {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        return Err(ApiError::Forbidden {
            resource: "certificatesigningrequests.certificates.k8s.io".into(),
            name: name.to_string(),
            message: format!(
                "use of {KUBE_APISERVER_CLIENT} signer with {MASTERS_GROUP} group is not allowed"
            ),
        });
    }
    Ok(())
}

/// The PEM of `spec.request` (base64 in JSON), or nothing if it is not base64.
fn request_pem(spec: &Value) -> Vec<u8> {
    use base64::Engine;
    spec["request"]
        .as_str()
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .unwrap_or_default()
}

/// Whether `user` may approve or deny requests for `signer`.
pub fn authorize_approval(
    authorizer: &Authorizer,
    user: &UserInfo,
    signer: &str,
) -> Result<(), ApiError> {
    let attrs = |name: String| Attributes {
        verb: "approve".into(),
        target: Target::Resource(ResourceAttributes {
            api_group: "certificates.k8s.io".into(),
            resource: "signers".into(),
            name,
            ..ResourceAttributes::default()
        }),
    };
    let exact = attrs(signer.to_string());
    let domain = signer.split_once('/').map(|(d, _)| format!("{d}/*"));
    if authorizer.allows(user, &exact) || domain.is_some_and(|d| authorizer.allows(user, &attrs(d)))
    {
        return Ok(());
    }
    Err(forbidden(user, &exact))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requestor_is_the_caller_whatever_the_body_says() {
        let mut obj = json!({"spec": {"username": "admin", "groups": [MASTERS_GROUP],
            "extra": {"a": ["b"]}, "signerName": "example.com/x"}});
        let bob = UserInfo::authenticated("bob", vec!["devs".into()]);
        admit_create(&mut obj, &bob).expect("admitted");
        assert_eq!(obj["spec"]["username"], "bob");
        assert_eq!(
            obj["spec"]["groups"],
            json!(["devs", "system:authenticated"])
        );
        assert!(obj["spec"].get("extra").is_none());
    }
}
