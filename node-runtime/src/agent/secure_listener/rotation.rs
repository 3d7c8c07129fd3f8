//! Renews the listener's serving certificate while the agent runs, as the kubelet does with
//! `RotateKubeletServerCertificate`: at a point between 70% and 90% of the certificate's
//! lifetime (spread over nodes by the certificate's own bytes, `skiff_api::cert_renewal`) the
//! agent asks for a new one (`serving_cert::request`, a new CertificateSigningRequest with the
//! node's current identity), stores it in `pki/` and serves it from the next handshake on;
//! open connections keep the certificate they were made with. Failed attempts are retried
//! with back-off (5 s doubling, at most a tenth of the certificate's lifetime and five
//! minutes). Timers are tokio's; the task ends with the listener.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use skiff_api::backoff::Backoff;
use skiff_api::cert_renewal;
use skiff_net::tls::ServerCert;
use tokio_util::sync::CancellationToken;

use super::serving_cert::ServingCert;

/// Pauses between failed attempts (each also at most `cert_renewal::pause`).
const RETRY: Backoff = Backoff {
    initial: Duration::from_secs(5),
    max: Duration::from_secs(300),
    reset_after: Duration::ZERO,
};

/// Keeps `served` renewed with the certificates `renew` obtains until `stop` is cancelled.
pub async fn keep_renewed<F, Fut, E>(served: Arc<ServerCert>, mut renew: F, stop: CancellationToken)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<ServingCert, E>>,
    E: std::fmt::Display,
{
    let mut failures = 0u32;
    loop {
        let chain = served.chain();
        let leaf = chain.first().map(|der| der.as_ref()).unwrap_or_default();
        let wait = cert_renewal::until_due(leaf, jiff::Timestamp::now().as_second());
        if stop
            .run_until_cancelled(tokio::time::sleep(wait))
            .await
            .is_none()
        {
            return;
        }
        let Some(result) = stop.run_until_cancelled(renew()).await else {
            return;
        };
        // Only for the log: a certificate that does not load is a failed attempt too.
        let replaced = match result {
            Ok(cert) => served
                .replace(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())
                .map_err(|err| err.to_string()),
            Err(err) => Err(err.to_string()),
        };
        let chain = served.chain();
        let leaf = chain.first().map(|der| der.as_ref()).unwrap_or_default();
        // Never sooner than this again, even if the new certificate is already due.
        let mut pause = cert_renewal::pause(leaf);
        match replaced {
            Ok(()) => {
                failures = 0;
                let not_after = cert_renewal::validity(leaf).map(|(_, to)| to);
                tracing::info!(?not_after, "rotated the listener's serving certificate");
            }
            Err(err) => {
                failures = failures.saturating_add(1);
                pause = pause.min(RETRY.delay(failures));
                tracing::warn!(%err, retry = ?pause, "renewing the listener's serving certificate failed");
            }
        }
        if stop
            .run_until_cancelled(tokio::time::sleep(pause))
            .await
            .is_none()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::routing::get;
    use axum::Router;
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::rustls::client::Resumption;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};
    use tokio_rustls::TlsConnector;
    use x509_parser::prelude::{FromDer, X509Certificate};

    use super::*;

    /// How long the test's serving certificates last.
    const LIFETIME: Duration = Duration::from_secs(4);

    struct Ca {
        pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    fn ca() -> Ca {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).expect("CA").pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A serving certificate for 127.0.0.1, valid from now for `LIFETIME`.
    fn issue(ca: &Ca) -> ServingCert {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now;
        params.not_after = now + LIFETIME;
        ServingCert {
            cert_pem: params.signed_by(&key, &ca.issuer).expect("cert").pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The serial number and notAfter of a DER certificate.
    fn serial_and_expiry(der: &[u8]) -> (Vec<u8>, i64) {
        let (_, cert) = X509Certificate::from_der(der).expect("parses");
        (
            cert.raw_serial().to_vec(),
            cert.validity().not_after.timestamp(),
        )
    }

    fn serial_and_expiry_pem(pem: &str) -> (Vec<u8>, i64) {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM");
        serial_and_expiry(&der)
    }

    /// A new connection (no session resumed) to `addr`, verified against `ca_pem`.
    async fn connect(
        ca_pem: &str,
        addr: std::net::SocketAddr,
    ) -> tokio_rustls::client::TlsStream<TcpStream> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA"))
            .expect("root");
        let mut config = ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.resumption = Resumption::disabled();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tcp = TcpStream::connect(addr).await.expect("connects");
        TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
            .await
            .expect("handshake")
    }

    /// The certificate the server presented on `stream`.
    fn presented(stream: &tokio_rustls::client::TlsStream<TcpStream>) -> (Vec<u8>, i64) {
        let chain = stream
            .get_ref()
            .1
            .peer_certificates()
            .expect("a certificate");
        serial_and_expiry(&chain[0])
    }

    /// Sends a GET on `stream` and reads the status line of the answer.
    async fn status_line(stream: &mut tokio_rustls::client::TlsStream<TcpStream>) -> String {
        stream
            .write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .await
            .expect("sends");
        let mut answer = Vec::new();
        let mut buf = [0u8; 512];
        while !answer.windows(2).any(|w| w == b"\r\n") {
            let n = stream.read(&mut buf).await.expect("reads");
            assert!(n > 0, "the connection closed");
            answer.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&answer);
        text.lines().next().unwrap_or_default().to_string()
    }

    #[tokio::test]
    async fn new_connections_get_the_renewed_certificate_without_a_restart() {
        let ca = Arc::new(ca());
        let first = issue(&ca);
        let served = Arc::new(
            ServerCert::from_pem(first.cert_pem.as_bytes(), first.key_pem.as_bytes())
                .expect("loads"),
        );
        let mut replacements = served.replacements();
        let tls = super::super::server_config(ca.pem.as_bytes(), served.clone()).expect("config");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("address");
        let stop = CancellationToken::new();
        let app = Router::new().route("/", get(|| async { "ok" }));
        let serving = tokio::spawn(skiff_net::http::serve_tls(
            listener,
            app,
            tls,
            skiff_net::ConnLimits::default(),
            stop.clone(),
        ));
        let renewals = Arc::new(AtomicU32::new(0));
        let renewing = tokio::spawn(keep_renewed(
            served.clone(),
            {
                let (ca, renewals) = (ca.clone(), renewals.clone());
                move || {
                    renewals.fetch_add(1, Ordering::SeqCst);
                    let cert = issue(&ca);
                    async move { Ok::<_, std::convert::Infallible>(cert) }
                }
            },
            stop.clone(),
        ));

        let mut before = connect(&ca.pem, addr).await;
        let (first_serial, first_expiry) = presented(&before);
        assert_eq!(
            (first_serial.clone(), first_expiry),
            serial_and_expiry_pem(&first.cert_pem)
        );
        assert_eq!(
            renewals.load(Ordering::SeqCst),
            0,
            "not renewed while young"
        );

        // Renewed at 70-90% of the 4 s lifetime: well within the deadline.
        tokio::time::timeout(Duration::from_secs(20), replacements.changed())
            .await
            .expect("renewed before the deadline")
            .expect("still served");
        let after = connect(&ca.pem, addr).await;
        let (serial, expiry) = presented(&after);
        assert_ne!(
            serial, first_serial,
            "a new connection gets the new certificate"
        );
        assert!(expiry > first_expiry, "{expiry} > {first_expiry}");
        assert_eq!((serial, expiry), serial_and_expiry(&served.chain()[0]));
        // The connection made before the renewal still serves, on its own certificate.
        assert_eq!(status_line(&mut before).await, "HTTP/1.1 200 OK");
        assert_eq!(presented(&before).0, first_serial);

        stop.cancel();
        drop((before, after));
        tokio::time::timeout(Duration::from_secs(10), async {
            serving.await.expect("served");
            renewing.await.expect("renewed");
        })
        .await
        .expect("both end when stopped");
    }
}
