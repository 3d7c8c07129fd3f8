//! A response body that holds a guard (a counter's slot, a gauge's raise) until the body has
//! been sent or dropped: a long watch stays counted for as long as it streams.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};

/// A body with a guard that is dropped only when the body is done.
pub struct GuardedBody<G> {
    body: Body,
    _guard: G,
}

impl<G> GuardedBody<G> {
    /// `body`, holding `guard` until it has been sent or dropped.
    pub fn new(body: Body, guard: G) -> Self {
        GuardedBody {
            body,
            _guard: guard,
        }
    }
}

impl<G: Unpin + Send + 'static> http_body::Body for GuardedBody<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
