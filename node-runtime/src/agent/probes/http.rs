//! httpGet probes as the kubelet makes them: no keep-alive, no proxy, no certificate
//! verification for HTTPS, redirects followed on the same host (at most 10) and a redirect
//! elsewhere taken as the answer; a status in 200–399 is a success.

use std::error::Error as _;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, USER_AGENT};
use reqwest::redirect::Policy;
use reqwest::{Client, Url};

use super::tcp::dial_error;
use super::{ActionError, Outcome};

/// The User-Agent of probe requests (apps look for the `kube-probe/` prefix).
const PROBE_AGENT: &str = "kube-probe/1.34";
/// Redirects followed on the same host before the attempt fails.
const MAX_REDIRECTS: usize = 10;

/// One httpGet probe: its URL and headers, and a client of its own.
pub struct HttpGet {
    client: Client,
    url: Url,
    headers: HeaderMap,
}

impl HttpGet {
    pub fn new(
        url: &str,
        headers: Vec<(String, String)>,
        timeout: Duration,
    ) -> Result<Self, ActionError> {
        let url = Url::parse(url).map_err(|_| ActionError::Url(url.to_string()))?;
        let mut map = HeaderMap::new();
        map.insert(USER_AGENT, HeaderValue::from_static(PROBE_AGENT));
        map.insert(ACCEPT, HeaderValue::from_static("*/*"));
        for (name, value) in headers {
            let invalid = || ActionError::Header { name: name.clone() };
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let value = HeaderValue::from_str(&value).map_err(|_| invalid())?;
            map.insert(header, value);
        }
        let redirects = Policy::custom(|attempt| {
            let first = attempt.previous().first().and_then(Url::host_str);
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error(format!("stopped after {MAX_REDIRECTS} redirects"))
            } else if attempt.url().host_str() != first {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let client = Client::builder()
            .timeout(timeout)
            .redirect(redirects)
            .no_proxy()
            .pool_max_idle_per_host(0)
            .danger_accept_invalid_certs(true)
            .build()
            .map_err(ActionError::Client)?;
        Ok(HttpGet {
            client,
            url,
            headers: map,
        })
    }

    /// The URL it gets.
    #[cfg(test)]
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// One GET, within the client's timeout.
    pub async fn attempt(&self) -> Outcome {
        let request = self
            .client
            .get(self.url.clone())
            .headers(self.headers.clone());
        match request.send().await {
            Ok(response) if (200..400).contains(&response.status().as_u16()) => Outcome::Success,
            Ok(response) => Outcome::Failure(format!(
                "HTTP probe failed with statuscode: {}",
                response.status().as_u16()
            )),
            Err(err) => Outcome::Failure(format!("Get \"{}\": {}", self.url, why(&self.url, &err))),
        }
    }
}

/// A failed request as Go's client words it, where it can be told.
fn why(url: &Url, err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "context deadline exceeded (Client.Timeout exceeded while awaiting headers)".into();
    }
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            // An OS error while connecting (not TLS, which also fails the connect).
            if err.is_connect() && io.raw_os_error().is_some() {
                let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
                return dial_error(host, url.port_or_known_default().unwrap_or(0), io);
            }
        }
        source = cause.source();
    }
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}
