//! `authentication.k8s.io/v1` TokenReview: whether a bearer token authenticates, and as
//! whom, asked by those that check tokens for the API (the agents' listeners, as the
//! kubelet's webhook authenticator asks). The caller needs `create` on `tokenreviews`
//! (`system:auth-delegator`, `system:node`); the token is checked by the server's own
//! authenticators (static tokens, ServiceAccount tokens, join tokens) for `spec.audiences`
//! (none: the API server's), and the answer, `status.authenticated` with `status.user` and
//! `status.audiences`, or `status.error`, is a 201, never stored.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::access_review::read_review;
use super::service_account_authn::Authenticated;
use super::AppState;
use crate::error::ApiError;
use crate::registry::object;

/// `POST /apis/authentication.k8s.io/v1/tokenreviews`.
pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match review(&state, &headers, &body).await {
        Ok(review) => (StatusCode::CREATED, Json(review)).into_response(),
        Err(err) => err.into_response(),
    }
}

/// The review in `body` with its `status` filled in.
async fn review(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let mut review = read_review(headers, body, "TokenReview")?;
    let spec = review.get("spec").cloned().unwrap_or(Value::Null);
    let token = spec
        .get("token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if token.is_empty() {
        return Err(ApiError::BadRequest("spec.token is required".into()));
    }
    let audiences: Vec<String> = match spec.get("audiences") {
        None | Some(Value::Null) => Vec::new(),
        Some(list) => serde_json::from_value(list.clone())
            .map_err(|e| ApiError::BadRequest(format!("spec.audiences: {e}")))?,
    };
    let answer = super::authn::authenticate_token(state, token, &audiences).await;
    review["apiVersion"] = json!("authentication.k8s.io/v1");
    review["kind"] = json!("TokenReview");
    if review.get("metadata").is_none_or(Value::is_null) {
        review["metadata"] = json!({});
    }
    review["metadata"]["creationTimestamp"] = json!(object::now_rfc3339());
    review["status"] = status(answer);
    Ok(review)
}

/// A review's `status` for what the token authenticated (or why it did not).
fn status(answer: Result<Authenticated, ApiError>) -> Value {
    match answer {
        Ok(found) => {
            json!({"authenticated": true, "user": found.user.to_json(),
                "audiences": found.audiences})
        }
        Err(ApiError::Unauthorized(reason)) => json!({"authenticated": false, "error": reason}),
        Err(err) => json!({"authenticated": false, "error": err.to_string()}),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use skiff_api::resources;

    use super::*;
    use crate::pki::ServiceAccountKey;
    use crate::serviceaccount::{Bindings, BoundRef, TokenIssuer, TokenRequestSpec};
    use crate::token_file::StaticTokens;

    async fn state(dir: &std::path::Path) -> AppState {
        let issuer = TokenIssuer::new(&ServiceAccountKey::create().expect("key"));
        let registry = crate::test_registry::registry(dir)
            .await
            .with_tokens(Some(issuer));
        let shutdown = tokio_util::sync::CancellationToken::new();
        let static_tokens =
            StaticTokens::parse("s3cret,alice,alice-uid,\"devs,ops\"\n").expect("token file");
        AppState {
            authorizer: crate::authz::Authorizer::start(&registry, &shutdown),
            metrics: Arc::new(crate::metrics::Metrics::new(registry.store())),
            registry,
            http: reqwest::Client::new(),
            agent_tls: None,
            tunnels: skiff_net::tunnel::Tunnels::new(),
            shutdown,
            inflight: crate::http::inflight::Inflight::new(crate::InflightLimits::default()),
            audit: None,
            cluster_ca: None,
            static_tokens: Arc::new(static_tokens),
        }
    }

    /// A new ServiceAccount `bot` in `default`.
    async fn account(state: &AppState) -> BoundRef {
        let accounts = resources::by_name("serviceaccounts").expect("served");
        let account = state
            .registry
            .create(
                accounts,
                Some("default"),
                json!({"apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "bot", "namespace": "default"}}),
            )
            .await
            .expect("the account");
        BoundRef {
            name: "bot".into(),
            uid: object::uid(&account).expect("a uid").to_string(),
        }
    }

    /// A token for `account` in `default`, for `audiences`.
    fn token_for(state: &AppState, account: &BoundRef, audiences: &[&str]) -> String {
        token_issued(state, account, audiences, false, 0)
    }

    /// As [`token_for`], issued `ago` seconds ago, `extended` or not.
    fn token_issued(
        state: &AppState,
        account: &BoundRef,
        audiences: &[&str],
        extended: bool,
        ago: i64,
    ) -> String {
        let spec = TokenRequestSpec {
            audiences: audiences.iter().map(|a| a.to_string()).collect(),
            expiration_seconds: 3607,
            bound: None,
            extended,
        };
        let issuer = state.registry.tokens().expect("an issuer");
        let claims = spec.claims(
            issuer.issuer(),
            "default",
            account.clone(),
            Bindings::default(),
            jiff::Timestamp::now().as_second() - ago,
        );
        issuer.sign(&claims).expect("sign")
    }

    async fn ask(state: &AppState, spec: Value) -> Value {
        let body = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": spec});
        review(state, &HeaderMap::new(), body.to_string().as_bytes())
            .await
            .expect("a review")
    }

    #[tokio::test]
    async fn a_static_token_authenticates_for_the_api_servers_audience_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state(dir.path()).await;
        let answer = ask(&state, json!({"token": "s3cret"})).await;
        assert_eq!(answer["kind"], "TokenReview");
        let status = &answer["status"];
        assert_eq!(status["authenticated"], true, "{answer}");
        assert_eq!(status["user"]["username"], "alice");
        assert_eq!(status["user"]["uid"], "alice-uid");
        assert_eq!(
            status["user"]["groups"],
            json!(["devs", "ops", "system:authenticated"])
        );
        assert_eq!(
            status["audiences"],
            json!(["https://kubernetes.default.svc"])
        );

        let elsewhere = ask(&state, json!({"token": "s3cret", "audiences": ["vault"]})).await;
        assert_eq!(elsewhere["status"]["authenticated"], false, "{elsewhere}");
        assert!(elsewhere["status"]["user"].is_null());
    }

    #[tokio::test]
    async fn a_service_account_token_authenticates_for_its_own_audiences() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state(dir.path()).await;
        let bot = account(&state).await;
        let for_api = token_for(&state, &bot, &["https://kubernetes.default.svc"]);
        let answer = ask(&state, json!({"token": for_api})).await;
        let status = &answer["status"];
        assert_eq!(status["authenticated"], true, "{answer}");
        assert_eq!(
            status["user"]["username"],
            "system:serviceaccount:default:bot"
        );
        assert!(status["user"]["uid"].is_string(), "{answer}");
        assert_eq!(
            status["user"]["groups"],
            json!([
                "system:serviceaccounts",
                "system:serviceaccounts:default",
                "system:authenticated"
            ])
        );
        assert!(
            status["user"]["extra"]["authentication.kubernetes.io/credential-id"][0]
                .as_str()
                .is_some_and(|id| id.starts_with("JTI=")),
            "{answer}"
        );
        assert_eq!(
            status["audiences"],
            json!(["https://kubernetes.default.svc"])
        );

        // A token for vault: good when vault is asked for, not for the API server.
        let for_vault = token_for(&state, &bot, &["vault", "other"]);
        let answer = ask(&state, json!({"token": for_vault, "audiences": ["vault"]})).await;
        assert_eq!(answer["status"]["authenticated"], true, "{answer}");
        assert_eq!(answer["status"]["audiences"], json!(["vault"]));
        let answer = ask(&state, json!({"token": for_vault})).await;
        assert_eq!(answer["status"]["authenticated"], false, "{answer}");
        assert!(
            answer["status"]["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "{answer}"
        );
        let answer = ask(&state, json!({"token": for_api, "audiences": ["vault"]})).await;
        assert_eq!(answer["status"]["authenticated"], false, "{answer}");
    }

    #[tokio::test]
    async fn a_bad_token_is_not_authenticated_and_a_missing_one_is_a_bad_request() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state(dir.path()).await;
        for token in ["garbage", "a.b.c", "abcdef.0123456789abcdef"] {
            let answer = ask(&state, json!({"token": token})).await;
            assert_eq!(answer["status"]["authenticated"], false, "{answer}");
            assert!(answer["status"]["error"].is_string(), "{answer}");
        }
        let missing = review(&state, &HeaderMap::new(), br#"{"spec": {}}"#)
            .await
            .expect_err("no token");
        assert!(missing.to_string().contains("spec.token"), "{missing}");
    }

    #[tokio::test]
    async fn an_extended_token_used_past_its_warnafter_is_counted_stale() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = state(dir.path()).await;
        let bot = account(&state).await;
        let api = ["https://kubernetes.default.svc"];
        for (extended, ago) in [(true, 60), (false, 60)] {
            let fresh = token_issued(&state, &bot, &api, extended, ago);
            let answer = ask(&state, json!({"token": fresh})).await;
            assert_eq!(answer["status"]["authenticated"], true, "{answer}");
        }
        assert_eq!(state.metrics.api.stale_tokens.get(), 0);
        let stale = token_issued(&state, &bot, &api, true, 3700);
        let answer = ask(&state, json!({"token": stale})).await;
        assert_eq!(
            answer["status"]["authenticated"], true,
            "still valid: {answer}"
        );
        assert_eq!(state.metrics.api.stale_tokens.get(), 1);
        assert!(state
            .metrics
            .encode()
            .contains("serviceaccount_stale_tokens_total 1"));
        // What the audit log notes for a request made with it: 3,700 s after issue is 93 s
        // past the warning (give or take the second the test took).
        let authenticated = super::super::authn::authenticate_token(&state, &stale, &[])
            .await
            .expect("authenticated");
        let note = authenticated.stale.expect("stale").0;
        let prefix =
            "subject: system:serviceaccount:default:bot, seconds after warning threshold: ";
        let late: i64 = note
            .strip_prefix(prefix)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{note}"));
        assert!((93..=95).contains(&late), "{note}");
    }
}
