//! The agent's image endpoint, what `crictl images|pull|rmi` does on a Kubernetes node:
//! `GET /images`, `POST /images?image=REF`, `DELETE /images?image=REF`, and `POST
//! /images/import` with an image archive as the body (`ctr images import`). The API server
//! reaches it through `nodes/{name}/proxy/images` (`skiff image ls|pull|rm|import --node`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use futures::StreamExt;

use crate::runtime::{ImageRef, ImageService, RuntimeError, RuntimeSet};

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
        .route("/images/import", post(import))
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

/// Imports the archive streamed in the body; a body that is not an image archive is a 400.
async fn import(State(state): State<ImageServerState>, body: Body) -> Response {
    match state
        .images
        .import_images(Box::new(BodyReader::new(body)))
        .await
    {
        Ok(images) => {
            let images: Vec<ImageInfo> = images.into_iter().map(ImageInfo::from).collect();
            Json(serde_json::json!({ "images": images })).into_response()
        }
        Err(err @ RuntimeError::Import { .. }) => failure(StatusCode::BAD_REQUEST, err.to_string()),
        Err(err @ RuntimeError::Unsupported { .. }) => {
            failure(StatusCode::NOT_IMPLEMENTED, err.to_string())
        }
        Err(err) => failure(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    }
}

/// A request body as a blocking reader, for the image store's unpacker (which reads on a
/// blocking thread): a task forwards the body's chunks through a small channel.
struct BodyReader {
    chunks: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl BodyReader {
    fn new(body: Body) -> Self {
        let (tx, chunks) = tokio::sync::mpsc::channel(8);
        let mut stream = body.into_data_stream();
        tokio::spawn(async move {
            while let Some(chunk) = stream.next().await {
                if tx.send(chunk.map_err(std::io::Error::other)).await.is_err() {
                    break;
                }
            }
        });
        BodyReader {
            chunks,
            current: bytes::Bytes::new(),
        }
    }
}

impl std::io::Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
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
