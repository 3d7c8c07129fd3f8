//! Debian's `docker-registry` (Docker distribution) on a free loopback port for one
//! benchmark, with its storage in the benchmark's directory, killed when dropped; and pushing
//! a Linux image to it with the distribution API.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use skiff_test_support::oci_image::{digest, TestImage, OCI_MANIFEST};

/// Where Debian installs the registry.
const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A `docker-registry` child process, killed on drop.
pub struct LocalRegistry {
    child: Child,
    host: String,
}

impl LocalRegistry {
    /// Starts the registry storing under `dir` and waits until it listens.
    pub fn start(dir: &Path) -> anyhow::Result<LocalRegistry> {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {addr}\n",
                dir.join("registry").display()
            ),
        )?;
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("starting {REGISTRY_BIN} (scripts/install-deps.sh installs it)")
            })?;
        let registry = LocalRegistry {
            child,
            host: addr.to_string(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "docker-registry did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(registry)
    }

    /// `127.0.0.1:PORT`, the registry part of image references.
    pub fn host(&self) -> &str {
        &self.host
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pushes `image` to `host` (plain HTTP) as `repo:tag`: each blob with a monolithic upload,
/// then the manifest.
pub async fn push_image(
    host: &str,
    repo: &str,
    tag: &str,
    image: &TestImage,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let base = reqwest::Url::parse(&format!("http://{host}/"))?;
    for blob in image.blobs() {
        let started = http
            .post(base.join(&format!("v2/{repo}/blobs/uploads/"))?)
            .send()
            .await?
            .error_for_status()
            .context("starting a blob upload")?;
        let location = started
            .headers()
            .get(reqwest::header::LOCATION)
            .context("the registry gave no upload location")?
            .to_str()?;
        let mut url = base.join(location)?;
        url.query_pairs_mut().append_pair("digest", &digest(blob));
        http.put(url)
            .body(blob.to_vec())
            .send()
            .await?
            .error_for_status()
            .context("uploading a blob")?;
    }
    http.put(base.join(&format!("v2/{repo}/manifests/{tag}"))?)
        .header(reqwest::header::CONTENT_TYPE, OCI_MANIFEST)
        .body(image.manifest())
        .send()
        .await?
        .error_for_status()
        .context("putting the manifest")?;
    Ok(())
}
