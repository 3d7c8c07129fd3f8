//! `authentication.k8s.io/v1` SelfSubjectReview: who the server takes the caller for (what
//! `kubectl auth whoami` and `skiff auth whoami` print). Answered, never stored.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use crate::identity::UserInfo;
use crate::registry::object;

/// `POST /apis/authentication.k8s.io/v1/selfsubjectreviews`.
pub async fn create(Extension(user): Extension<UserInfo>) -> Response {
    (StatusCode::CREATED, Json(review(&user))).into_response()
}

fn review(user: &UserInfo) -> serde_json::Value {
    json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "metadata": {"creationTimestamp": object::now_rfc3339()},
        "status": {"userInfo": user.to_json()},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_review_names_the_user() {
        let mut user = UserInfo::authenticated("system:serviceaccount:a:b", vec!["g".into()]);
        user.uid = Some("u".into());
        let review = review(&user);
        assert_eq!(
            review["status"]["userInfo"]["username"],
            "system:serviceaccount:a:b"
        );
        assert_eq!(review["status"]["userInfo"]["uid"], "u");
        assert!(review["status"]["userInfo"].get("extra").is_none());
        user.extra.insert(
            "authentication.kubernetes.io/pod-name".into(),
            vec!["web".into()],
        );
        assert_eq!(
            super::review(&user)["status"]["userInfo"]["extra"]
                ["authentication.kubernetes.io/pod-name"],
            json!(["web"])
        );
        assert_eq!(
            review["status"]["userInfo"]["groups"],
            json!(["g", "system:authenticated"])
        );
    }
}
