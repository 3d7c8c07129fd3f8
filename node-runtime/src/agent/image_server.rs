//! The agent's image endpoint, what `crictl images|pull|rmi` does on a Kubernetes node:
//! `GET /images`, `POST /images?image=REF`, `DELETE /images?image=REF`. The API server
//! reaches it through `nodes/{name}/proxy/images` (`skiff image ls|pull|rm --node`).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::runtime::{ImageRef, ImageService, RuntimeSet};

/// What the image endpoint works on.
#[derive(Clone)]
pub struct ImageServerState {
    pub images: Arc<dyn ImageService>,
    /// Asked which images their containers use before one is removed.
    pub runtimes: RuntimeSet,
}

#[derive(Deserialize)]
struct ImageQuery {
    image: String,
}

/// One image as `skiff image ls` shows it.
#[derive(Serialize)]
struct ImageInfo {
    image: String,
    digest: String,
    size: u64,
}

impl From<ImageRef> for ImageInfo {
    fn from(image: ImageRef) -> Self {
        ImageInfo {
            image: image.reference,
            digest: image.digest,
            size: image.size,
        }
    }
}

/// The `/images` routes.
pub fn router(state: ImageServerState) -> Router {
    Router::new()
        .route("/images", get(list).post(pull).delete(remove))
        .with_state(state)
}

fn failure(code: StatusCode, message: impl Into<String>) -> Response {
    (code, message.into()).into_response()
}

async fn list(State(state): State<ImageServerState>) -> Response {
    match state.images.list_images().await {
        Ok(images) => {
            let images: Vec<ImageInfo> = images.into_iter().map(ImageInfo::from).collect();
            Json(serde_json::json!({ "images": images })).into_response()
        }
        Err(err) => failure(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

/// Pulls anonymously (images that need credentials are pulled by the pods that name them).
async fn pull(State(state): State<ImageServerState>, Query(query): Query<ImageQuery>) -> Response {
    match state.images.pull_image(&query.image, None).await {
        Ok(image) => Json(ImageInfo::from(image)).into_response(),
        Err(err) => failure(StatusCode::BAD_GATEWAY, err.to_string()),
    }
}

/// Removes an image no container uses (running or exited, as containerd refuses too).
async fn remove(
    State(state): State<ImageServerState>,
    Query(query): Query<ImageQuery>,
) -> Response {
    let reference = query.image;
    let image = match state.images.image_status(&reference).await {
        Ok(Some(image)) => image,
        Ok(None) => {
            return failure(
                StatusCode::NOT_FOUND,
                format!("image {reference} is not on this node"),
            )
        }
        Err(err) => return failure(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    };
    // By reference: content shared with another reference stays while that one exists.
    match state
        .runtimes
        .image_users()
        .await
        .map(|mut u| u.remove(&reference))
    {
        Ok(Some(container)) => {
            return failure(
                StatusCode::CONFLICT,
                format!("image {reference} is in use by container {container}"),
            )
        }
        Ok(None) => {}
        Err(err) => return failure(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
    match state.images.remove_image(&reference).await {
        Ok(()) => Json(ImageInfo::from(image)).into_response(),
        Err(err) => failure(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}
