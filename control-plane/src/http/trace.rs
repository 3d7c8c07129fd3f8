//! Request tracing: one span per request with its method, path and response status.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::Span;

type MakeSpan = fn(&Request<Body>) -> Span;
type OnResponse = fn(&Response<Body>, Duration, &Span);

/// The layer that opens a `request` span for every request and records its status.
pub fn layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeSpan, (), OnResponse> {
    TraceLayer::new_for_http()
        .make_span_with(request_span as MakeSpan)
        .on_request(())
        .on_response(record_status as OnResponse)
}

fn request_span(request: &Request<Body>) -> Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        status = tracing::field::Empty,
    )
}

fn record_status(response: &Response<Body>, latency: Duration, span: &Span) {
    span.record("status", response.status().as_u16());
    tracing::debug!(?latency, "answered");
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;
    use std::sync::{Arc, Mutex};

    use axum::routing::get;
    use axum::Router;
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::Subscriber;
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::Layer;

    /// Every span field recorded, as `name=value`.
    #[derive(Clone, Default)]
    struct Recorded(Arc<Mutex<Vec<String>>>);

    struct Fields(Vec<String>);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            self.0.push(format!("{}={value:?}", field.name()));
        }
    }

    impl<S: Subscriber> Layer<S> for Recorded {
        fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
            let mut fields = Fields(Vec::new());
            attrs.record(&mut fields);
            self.0.lock().expect("lock").extend(fields.0);
        }

        fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
            let mut fields = Fields(Vec::new());
            values.record(&mut fields);
            self.0.lock().expect("lock").extend(fields.0);
        }
    }

    #[tokio::test]
    async fn requests_get_a_span_with_method_path_and_status() {
        let recorded = Recorded::default();
        let _default =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(recorded.clone()));
        let app = Router::new()
            .route("/hello/{name}", get(|| async { "hi" }))
            .layer(super::layer());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let response = reqwest::get(format!("http://{addr}/hello/world?x=1"))
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        server.abort();
        let fields = recorded.0.lock().expect("lock").clone();
        for expected in ["method=GET", "path=/hello/world", "status=200"] {
            assert!(
                fields.iter().any(|f| f == expected),
                "{expected} in {fields:?}"
            );
        }
    }
}
