//! A `wasi:http` incoming-handler component (the `proxy` world): answers every request with
//! the name of the pod that served it (`POD_NAME`, from the downward API) and the request's
//! method and path, so a client going through a Service sees the replicas share the work.
//! `?delay_ms=N` makes it wait N milliseconds before answering.

use wasi::clocks::monotonic_clock::subscribe_duration;
use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasi::http::proxy::export!(Echo);

struct Echo;

impl wasi::exports::http::incoming_handler::Guest for Echo {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let pod = std::env::var("POD_NAME").unwrap_or_else(|_| "unknown".into());
        let path = request.path_with_query().unwrap_or_else(|| "/".into());
        let text = format!("pod {pod}: {} {path}\n", method_name(&request.method()));
        println!("http-echo: {}", text.trim_end());
        if let Some(millis) = delay_millis(&path) {
            // A slow request, to watch a stopping pod finish the requests it has in flight.
            subscribe_duration(millis * 1_000_000).block();
        }

        let headers = Fields::from_list(&[
            (
                "content-type".to_string(),
                b"text/plain; charset=utf-8".to_vec(),
            ),
            (
                "content-length".to_string(),
                text.len().to_string().into_bytes(),
            ),
        ])
        .expect("valid headers");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("the body of a new response");
        ResponseOutparam::set(response_out, Ok(response));
        let out = body.write().expect("the body's stream");
        // The text is far below the 4096 bytes one blocking write may carry.
        if let Err(err) = out.blocking_write_and_flush(text.as_bytes()) {
            eprintln!("http-echo: writing the response: {err:?}");
        }
        drop(out);
        if let Err(err) = OutgoingBody::finish(body, None) {
            eprintln!("http-echo: finishing the response: {err:?}");
        }
    }
}

/// The `delay_ms` query parameter of `path`, if any.
fn delay_millis(path: &str) -> Option<u64> {
    let (_, query) = path.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("delay_ms="))
        .and_then(|millis| millis.parse().ok())
}

fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(other) => other.clone(),
    }
}
