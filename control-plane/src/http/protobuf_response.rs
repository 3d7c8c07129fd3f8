//! Protobuf responses for clients that accept only Kubernetes protobuf (`Accept:
//! application/vnd.kubernetes.protobuf` without JSON): the JSON a handler answered, written
//! in the protobuf envelope. Clients that also accept JSON (kubectl, helm) get JSON. Watches
//! and other streams pass through as they are; a kind without a protobuf form is 406.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::query::Query;
use crate::error::ApiError;
use crate::protobuf;

/// Rewrites the JSON answer of a request that accepts only protobuf.
pub async fn negotiate(request: Request, next: Next) -> Response {
    let watch = Query::parse(request.uri().query()).flag("watch");
    if !protobuf_only(request.headers()) || watch {
        return next.run(request).await;
    }
    // As Kubernetes picks the serializer before it serves, a write whose answer has no
    // protobuf form is refused before it is made.
    let read = matches!(*request.method(), Method::GET | Method::HEAD);
    if !read && !answerable(request.uri().path()) {
        return refusal(ApiError::NotAcceptable(format!(
            "{} has no protobuf form: accept application/json",
            request.uri().path()
        )));
    }
    let response = next.run(request).await;
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let encoded = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::Internal(format!("a response is not JSON: {e}")))
            .and_then(|object| {
                protobuf::encode(&object).map_err(|e| {
                    if read {
                        ApiError::NotAcceptable(e.to_string())
                    } else {
                        // Written already: the answer is what failed.
                        ApiError::Internal(format!("writing the answer as protobuf: {e}"))
                    }
                })
            }),
        Err(e) => Err(ApiError::Internal(format!("reading a response: {e}"))),
    };
    match encoded {
        Ok(body) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(protobuf::MEDIA_TYPE),
            );
            Response::from_parts(parts, Body::from(body))
        }
        Err(error) => refusal(error),
    }
}

/// Whether a write to `path` answers with an object that has a protobuf form: a built-in
/// kind, or one of its subresources (Scale, Status, ...).
fn answerable(path: &str) -> bool {
    super::path::parse(path).is_ok_and(|p| p.subresource.is_some() || protobuf::has_form(p.kind))
}

/// The error's Status in protobuf, or in JSON should even that fail.
fn refusal(error: ApiError) -> Response {
    let code = error.code();
    match serde_json::to_value(error.to_status()).map(|status| protobuf::encode(&status)) {
        Ok(Ok(body)) => {
            (code, [(header::CONTENT_TYPE, protobuf::MEDIA_TYPE)], body).into_response()
        }
        _ => error.into_response(),
    }
}

/// Whether `Accept` names protobuf and nothing JSON can answer (`application/json`, `*/*`).
fn protobuf_only(headers: &HeaderMap) -> bool {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|entry| entry.split(';').next().unwrap_or_default().trim())
        .collect::<Vec<_>>();
    accept.contains(&protobuf::MEDIA_TYPE)
        && !accept
            .iter()
            .any(|t| t.starts_with("application/json") || *t == "*/*" || *t == "application/*")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_str(value).expect("a header"),
        );
        headers
    }

    #[test]
    fn only_clients_without_json_get_protobuf() {
        assert!(protobuf_only(&accept(
            "application/vnd.kubernetes.protobuf"
        )));
        assert!(!protobuf_only(&accept(
            "application/vnd.kubernetes.protobuf,application/json"
        )));
        assert!(!protobuf_only(&accept(
            "application/vnd.kubernetes.protobuf, */*"
        )));
        assert!(!protobuf_only(&accept("application/json")));
        assert!(!protobuf_only(&HeaderMap::new()));
    }

    #[test]
    fn writes_without_a_protobuf_answer_are_known_before_they_run() {
        assert!(answerable("/api/v1/namespaces/default/configmaps"));
        assert!(answerable(
            "/apis/apps/v1/namespaces/default/deployments/web/scale"
        ));
        assert!(!answerable(
            "/apis/example.com/v1/namespaces/default/widgets"
        ));
        assert!(!answerable("/skiff/v1/cluster/members"));
    }
}
