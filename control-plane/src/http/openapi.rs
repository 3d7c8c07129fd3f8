//! `/openapi/v2` (JSON or protobuf), `/openapi/v3` and `/openapi/v3/{api/v1 | apis/GROUP/VERSION}`: the cached
//! documents with their hash as ETag (`If-None-Match` answers 304), immutable when asked for
//! by the `?hash=` the index names.

use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::openapi::{documents, Document};

const JSON: &str = "application/json";

/// The media type client-go asks for the protobuf OpenAPI v2 document with.
const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2";
/// The content type Kubernetes answers it with.
const V2_PROTOBUF_CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// `/openapi/v2`: gnostic protobuf when the client accepts it, else JSON.
pub async fn v2(headers: HeaderMap) -> Response {
    let protobuf = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains(V2_PROTOBUF));
    if protobuf {
        return serve(
            &documents().v2_protobuf,
            &headers,
            V2_PROTOBUF_CONTENT_TYPE,
            false,
        );
    }
    serve(&documents().v2, &headers, JSON, false)
}

/// `/openapi/v3`: the group-versions and where their documents are.
pub async fn index(headers: HeaderMap) -> Response {
    serve(&documents().index, &headers, JSON, false)
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/GROUP/VERSION`.
pub async fn group_version(Path(path): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    let Some(document) = documents().group_version(&path) else {
        return ApiError::NotFound {
            resource: "openapi".into(),
            name: path,
        }
        .into_response();
    };
    let pinned = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .any(|(k, v)| k == "hash" && v == document.hash.as_str());
    serve(document, &headers, JSON, pinned)
}

fn serve(
    document: &Document,
    headers: &HeaderMap,
    content_type: &'static str,
    immutable: bool,
) -> Response {
    let etag = format!("\"{}\"", document.hash);
    let cache = if immutable {
        "public, immutable, max-age=31536000"
    } else {
        "no-cache, private"
    };
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let common = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, cache.to_string()),
        // `/openapi/v2` is JSON or protobuf by `Accept`: caches must keep them apart.
        (header::VARY, "Accept".to_string()),
    ];
    if matches {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(header::CONTENT_TYPE, content_type)],
        document.body.clone(),
    )
        .into_response()
}
