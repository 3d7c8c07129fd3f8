//! Request handlers: one dispatch on (method, path shape) to registry calls.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::field_validation::{FieldValidation, Findings};
use super::path::{self, ApiPath};
use super::query::Query;
use super::request_body::{
    delete_options, is_apply, parse_body, parse_json_patch, parse_object, patch_type, PatchType,
};
use super::table::TableRequest;
use super::{
    apply, auth, certificate_requests, delete_answer, discovery, logs, node_proxy, AppState,
};
use crate::authz::escalation;
use crate::error::ApiError;
use crate::identity::{UserInfo, NODES_GROUP};
use crate::registry::{
    has_scale_subresource, object, strategic_merge, Registry, Requester, Subresource,
    WatchEventType,
};

/// Every `/api/...` and `/apis/...` request.
pub async fn resource(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    user: Option<Extension<UserInfo>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let user = user
        .map(|Extension(u)| u)
        .unwrap_or_else(UserInfo::anonymous);
    let result = match body {
        Ok(body) => dispatch(&state, &method, &uri, &headers, &user, body).await,
        Err(rejection) => Err(body_error(&rejection)),
    };
    match result {
        Ok(response) => response,
        Err(err) => {
            if err.code().is_server_error() {
                tracing::warn!(%method, %uri, %err, "request failed");
            }
            err.into_response()
        }
    }
}

/// A body that could not be read: over the size limit (413), or broken off (400).
fn body_error(rejection: &BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge {
            limit: skiff_api::MAX_REQUEST_BODY_BYTES,
        }
    } else {
        ApiError::BadRequest(rejection.body_text())
    }
}

async fn dispatch(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    user: &UserInfo,
    body: Bytes,
) -> Result<Response, ApiError> {
    if *method == Method::GET {
        if let Some(document) = discovery::document(uri.path()) {
            return Ok(Json(document).into_response());
        }
    }
    if let Some((node, path)) = node_proxy::split(uri.path()) {
        return node_proxy::forward(state, method, node, path, uri.query(), body.into()).await;
    }
    let target = path::parse(uri.path())?;
    if *user == UserInfo::insecure() {
        auth::require_insecure_token(method, &target, headers)?;
    }
    let query = Query::parse(uri.query());
    let dry_run = query.dry_run()?;
    // Writes are recorded in `managedFields` under their manager.
    let writes = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    let scoped_registry;
    let registry = if dry_run || writes {
        let base = if dry_run {
            state.registry.dry_run()
        } else {
            state.registry.clone()
        };
        scoped_registry = if writes {
            base.with_field_manager(apply::field_manager(&query, headers)?)
        } else {
            base
        };
        &scoped_registry
    } else {
        &state.registry
    };
    let ApiPath {
        kind,
        namespace,
        name,
        subresource,
    } = &target;
    let ns = namespace.as_deref();
    let is_csr = kind.kind == "CertificateSigningRequest";
    let sub = match subresource.as_deref() {
        None => Subresource::Main,
        Some("status") => Subresource::Status,
        Some("approval") if is_csr && matches!(*method, Method::PUT | Method::PATCH) => {
            let name = name.as_deref().unwrap_or_default();
            let stored = registry.get(kind, None, name).await?;
            let signer = stored["spec"]["signerName"].as_str().unwrap_or_default();
            certificate_requests::authorize_approval(&state.authorizer, user, signer)?;
            Subresource::Approval
        }
        Some("approval") if is_csr && *method == Method::GET => Subresource::Approval,
        Some("log") if *method == Method::GET && kind.kind == "Pod" => {
            let name = name.as_deref().unwrap_or_default();
            return logs::proxy(state, ns.unwrap_or_default(), name, &query).await;
        }
        Some("eviction") if *method == Method::POST && kind.kind == "Pod" => {
            let eviction = parse_body(&body, headers)?;
            let name = name.as_deref().unwrap_or_default();
            let done = registry
                .evict(ns.unwrap_or_default(), name, &eviction)
                .await?;
            return Ok((StatusCode::CREATED, Json(done)).into_response());
        }
        Some("token") if *method == Method::POST && kind.kind == "ServiceAccount" => {
            let request = parse_body(&body, headers)?;
            let name = name.as_deref().unwrap_or_default();
            // A node may only have tokens made for pods bound to it.
            let requester = if user.in_group(NODES_GROUP) {
                Requester::Node(crate::authz::node::node_name(user))
            } else {
                Requester::User
            };
            let answer = registry
                .create_token(ns.unwrap_or_default(), name, request, requester)
                .await?;
            return Ok((StatusCode::CREATED, Json(answer)).into_response());
        }
        Some("binding") if *method == Method::POST && kind.kind == "Pod" => {
            let binding = parse_body(&body, headers)?;
            let node = binding
                .pointer("/target/name")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::BadRequest("binding target.name is required".into()))?;
            let name = name.as_deref().unwrap_or_default();
            let pod = registry.bind(ns.unwrap_or_default(), name, node).await?;
            return Ok((StatusCode::CREATED, Json(pod)).into_response());
        }
        Some("scale") if has_scale_subresource(kind) => {
            let name = name.as_deref().unwrap_or_default();
            return scale(registry, &target, name, method, headers, &body).await;
        }
        Some(other) => {
            return Err(ApiError::UnknownResource(format!(
                "{}/{other}",
                kind.plural
            )))
        }
    };
    // Reads are linearizable unless the client accepts any recent state (resourceVersion=0).
    let watching = query.flag("watch");
    let table = TableRequest::from_request(headers, query.get("includeObject"))?;
    if method == Method::GET && !watching && query.get("resourceVersion") != Some("0") {
        registry.read_barrier().await?;
    }
    match (method.clone(), name.as_deref()) {
        (Method::GET, None) if watching => {
            let options = query.list_options()?;
            let mut events = registry
                .watch(kind, ns, options, query.watch_from()?)
                .await?;
            let (kind_name, api_version) = (kind.kind, kind.api_version());
            events = Box::pin(events.map(move |mut event| {
                if event.event_type == WatchEventType::Bookmark {
                    event.object["kind"] = json!(kind_name);
                    event.object["apiVersion"] = json!(api_version);
                }
                event
            }));
            if let Some(table) = table {
                let kind = *kind;
                events = Box::pin(events.map(move |mut event| {
                    if event.event_type == WatchEventType::Bookmark {
                        return event;
                    }
                    let version = event.object["metadata"]["resourceVersion"].clone();
                    event.object = table.render(
                        kind,
                        std::slice::from_ref(&event.object),
                        json!({ "resourceVersion": version }),
                    );
                    event
                }));
            }
            let timeout = query.int("timeoutSeconds")?.map(|s| s.max(0) as u64);
            Ok(watch_response(events, timeout, state.shutdown.clone()))
        }
        (Method::GET, None) => {
            let limit = query.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
            let page = registry
                .list_page(
                    kind,
                    ns,
                    &query.list_options()?,
                    limit,
                    query.get("continue"),
                    query.read_at()?,
                )
                .await?;
            let mut metadata = json!({ "resourceVersion": page.revision.to_string() });
            if let Some(token) = page.continue_token {
                metadata["continue"] = json!(token);
            }
            if let Some(remaining) = page.remaining {
                metadata["remainingItemCount"] = json!(remaining);
            }
            if let Some(table) = table {
                return Ok(Json(table.render(kind, &page.items, metadata)).into_response());
            }
            Ok(Json(json!({
                "kind": kind.list_kind(),
                "apiVersion": kind.api_version(),
                "metadata": metadata,
                "items": page.items,
            }))
            .into_response())
        }
        (Method::POST, None) => {
            let validation = FieldValidation::from_query(&query)?;
            let (mut obj, mut findings) = parse_object(&body, headers, validation)?;
            findings.remove_unknown(kind, &mut obj, false);
            findings.check(validation, Some(kind))?;
            if is_csr {
                certificate_requests::admit_create(&mut obj, user)?;
            }
            escalation::check(&state.authorizer, user, kind, ns.unwrap_or_default(), &obj)?;
            let mut created = registry.create(kind, ns, obj).await?;
            if dry_run {
                // Nothing was stored, so the object has no version yet.
                object::remove_meta(&mut created, "resourceVersion");
            }
            let response = (StatusCode::CREATED, Json(created)).into_response();
            Ok(findings.warn(validation, response))
        }
        (Method::GET, Some(name)) => {
            let object = registry.get(kind, ns, name).await?;
            match table {
                Some(table) => {
                    let metadata =
                        json!({ "resourceVersion": object["metadata"]["resourceVersion"] });
                    let rendered = table.render(kind, std::slice::from_ref(&object), metadata);
                    Ok(Json(rendered).into_response())
                }
                None => Ok(Json(object).into_response()),
            }
        }
        (Method::PUT, Some(name)) => {
            let validation = FieldValidation::from_query(&query)?;
            let (mut obj, mut findings) = parse_object(&body, headers, validation)?;
            findings.remove_unknown(kind, &mut obj, false);
            findings.check(validation, Some(kind))?;
            escalation::check(&state.authorizer, user, kind, ns.unwrap_or_default(), &obj)?;
            let updated = Json(registry.update(kind, ns, name, obj, sub).await?).into_response();
            Ok(findings.warn(validation, updated))
        }
        (Method::PATCH, Some(name)) => {
            let validation = FieldValidation::from_query(&query)?;
            let guard = |obj: &Value| {
                escalation::check(&state.authorizer, user, kind, ns.unwrap_or_default(), obj)
            };
            if is_apply(headers) {
                if sub != Subresource::Main {
                    return Err(ApiError::UnsupportedMediaType(
                        "server-side apply is served on the object itself, not its \
                         subresources"
                            .into(),
                    ));
                }
                if is_csr {
                    // A new request must name its requester, which only a POST stamps.
                    return Err(ApiError::UnsupportedMediaType(
                        "server-side apply is not served for certificatesigningrequests: \
                         create them with POST"
                            .into(),
                    ));
                }
                return apply::serve(registry, kind, ns, name, &query, &body, &guard).await;
            }
            apply::refuse_force(&query)?;
            let (patched, findings) = match patch_type(headers)? {
                PatchType::Json => {
                    // A JSON Patch's unknown fields are found in the patched object (and kept).
                    let found = std::sync::Mutex::new(Findings::default());
                    let guard = |obj: &Value| {
                        let mut findings = Findings::default();
                        findings.note_unknown(kind, obj);
                        findings.check(validation, None)?;
                        if let Ok(mut found) = found.lock() {
                            *found = findings;
                        }
                        guard(obj)
                    };
                    let patch = parse_json_patch(&body)?;
                    let patched = registry
                        .json_patch(kind, ns, name, &patch, sub, &guard)
                        .await?;
                    (patched, found.into_inner().unwrap_or_default())
                }
                PatchType::Merge => {
                    let (mut patch, mut findings) = parse_object(&body, headers, validation)?;
                    findings.remove_unknown(kind, &mut patch, true);
                    findings.check(validation, None)?;
                    let patched = registry
                        .patch_guarded(kind, ns, name, &patch, sub, &guard)
                        .await?;
                    (patched, findings)
                }
                PatchType::Strategic => {
                    let (mut patch, mut findings) = parse_object(&body, headers, validation)?;
                    findings.remove_unknown(kind, &mut patch, true);
                    findings.check(validation, None)?;
                    let patched = registry
                        .strategic_patch(kind, ns, name, &patch, sub, &guard)
                        .await?;
                    (patched, findings)
                }
            };
            Ok(findings.warn(validation, Json(patched).into_response()))
        }
        (Method::DELETE, None) => {
            let options = delete_options(&query, headers, &body)?;
            let deleted = registry
                .delete_collection(kind, ns, &query.list_options()?, &options)
                .await?;
            Ok(Json(json!({
                "kind": kind.list_kind(),
                "apiVersion": kind.api_version(),
                "metadata": {},
                "items": deleted,
            }))
            .into_response())
        }
        (Method::DELETE, Some(name)) => {
            let options = delete_options(&query, headers, &body)?;
            let deleted = registry.delete(kind, ns, name, &options).await?;
            Ok(Json(delete_answer::answer(kind, deleted)).into_response())
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// `/scale`: reads, replaces or patches a workload's `Scale`.
async fn scale(
    registry: &Registry,
    target: &ApiPath,
    name: &str,
    method: &Method,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let (kind, ns) = (target.kind, target.namespace.as_deref());
    let scale = match *method {
        Method::GET => registry.get_scale(kind, ns, name).await?,
        Method::PUT => {
            let scale = parse_body(body, headers)?;
            registry.update_scale(kind, ns, name, &scale).await?
        }
        Method::PATCH => {
            let current = registry.get_scale(kind, ns, name).await?;
            let mut scale = current.clone();
            match patch_type(headers)? {
                PatchType::Json => json_patch::patch(&mut scale, &parse_json_patch(body)?)
                    .map_err(|e| ApiError::PatchFailed(e.to_string()))?,
                PatchType::Merge => json_patch::merge(&mut scale, &parse_body(body, headers)?),
                PatchType::Strategic => {
                    scale = strategic_merge::apply(&scale, &parse_body(body, headers)?, "Scale")
                        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
                }
            }
            // Only a version the patch itself names is a precondition.
            if scale["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"] {
                object::remove_meta(&mut scale, "resourceVersion");
            }
            registry.update_scale(kind, ns, name, &scale).await?
        }
        _ => return Err(ApiError::MethodNotAllowed),
    };
    Ok(Json(scale).into_response())
}

/// Newline-delimited watch events, ending after `timeout_seconds` if given, or when the server stops.
fn watch_response(
    events: crate::registry::WatchStream,
    timeout_seconds: Option<u64>,
    shutdown: CancellationToken,
) -> Response {
    let lines = events
        .map(|event| {
            let mut line = serde_json::to_vec(&event).unwrap_or_default();
            line.push(b'\n');
            Ok::<_, Infallible>(Bytes::from(line))
        })
        .take_until(shutdown.cancelled_owned());
    let body = match timeout_seconds {
        Some(secs) => {
            let deadline = tokio::time::sleep(Duration::from_secs(secs));
            Body::from_stream(lines.take_until(deadline))
        }
        None => Body::from_stream(lines),
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
