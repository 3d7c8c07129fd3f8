//! Debian's `docker-registry` (the Docker distribution registry) on 127.0.0.1 (or another
//! address of the test's) with its storage in a directory of the test's, killed on drop; it
//! can be stopped and started again on the same port and storage to play a registry that goes
//! down and comes back.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

use crate::wait_until;

/// Where Debian installs the registry (scripts/install-deps.sh installs it).
const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A running (or stopped) registry.
pub struct Registry {
    dir: PathBuf,
    addr: SocketAddr,
    htpasswd: Option<String>,
    child: Option<Child>,
}

impl Registry {
    /// Starts a registry storing into `dir/storage`, on a free loopback port. The registry
    /// cannot report a port-0 bind, so a port is taken from a socket bound and closed, and
    /// another one tried if the registry loses it to someone else in between.
    pub fn start(dir: &Path) -> anyhow::Result<Registry> {
        Self::start_with(dir, Ipv4Addr::LOCALHOST.into(), None)
    }

    /// As [`start`](Self::start), listening on `ip` (say, a test network's gateway, which
    /// hosts in network namespaces reach) instead of loopback.
    pub fn start_on(dir: &Path, ip: IpAddr) -> anyhow::Result<Registry> {
        Self::start_with(dir, ip, None)
    }

    /// As [`start`](Self::start), the registry asking for basic credentials: `htpasswd` is an
    /// htpasswd line (`user:<bcrypt hash>`).
    pub fn start_with_htpasswd(dir: &Path, htpasswd: &str) -> anyhow::Result<Registry> {
        Self::start_with(dir, Ipv4Addr::LOCALHOST.into(), Some(htpasswd.to_string()))
    }

    fn start_with(dir: &Path, ip: IpAddr, htpasswd: Option<String>) -> anyhow::Result<Registry> {
        anyhow::ensure!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: run scripts/install-deps.sh (Debian's docker-registry)"
        );
        let mut last = None;
        for _ in 0..5 {
            let addr = TcpListener::bind((ip, 0))?.local_addr()?;
            let mut registry = Registry {
                dir: dir.to_path_buf(),
                addr,
                htpasswd: htpasswd.clone(),
                child: None,
            };
            match registry.resume() {
                Ok(()) => return Ok(registry),
                Err(err) => last = Some(err),
            }
        }
        Err(last.expect("tried").context("starting docker-registry"))
    }

    /// `IP:PORT` (`127.0.0.1:PORT` unless started on another address), the registry part of
    /// image references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Where the registry keeps the blob `sha256:<hex>` (its filesystem driver's layout).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Uploads `bytes` as a blob of `repo` with the distribution API; returns its digest.
    pub fn put_blob(&self, repo: &str, bytes: &[u8]) -> anyhow::Result<String> {
        use sha2::Digest;
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
        let http = reqwest::blocking::Client::new();
        let started = http
            .post(format!("http://{}/v2/{repo}/blobs/uploads/", self.addr))
            .send()?
            .error_for_status()?;
        let location = started
            .headers()
            .get(reqwest::header::LOCATION)
            .context("an upload location")?
            .to_str()?
            .to_string();
        let mut url = reqwest::Url::options()
            .base_url(Some(&reqwest::Url::parse(&format!(
                "http://{}/",
                self.addr
            ))?))
            .parse(&location)?;
        url.query_pairs_mut().append_pair("digest", &digest);
        http.put(url)
            .body(bytes.to_vec())
            .send()?
            .error_for_status()?;
        Ok(digest)
    }

    /// Puts `manifest` (of `media_type`) under `reference` (a tag or a digest) in `repo`.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> anyhow::Result<()> {
        reqwest::blocking::Client::new()
            .put(format!(
                "http://{}/v2/{repo}/manifests/{reference}",
                self.addr
            ))
            .header(reqwest::header::CONTENT_TYPE, media_type)
            .body(manifest.to_vec())
            .send()?
            .error_for_status()?;
        Ok(())
    }

    /// Pushes an image: its `blobs` (config and layers), then its OCI `manifest` under `tag`;
    /// returns the manifest's digest.
    pub fn push_image(
        &self,
        repo: &str,
        tag: &str,
        blobs: &[&[u8]],
        manifest: &[u8],
    ) -> anyhow::Result<String> {
        use sha2::Digest;
        for blob in blobs {
            self.put_blob(repo, blob)?;
        }
        let media_type = "application/vnd.oci.image.manifest.v1+json";
        self.put_manifest(repo, tag, media_type, manifest)?;
        Ok(format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(manifest))
        ))
    }

    /// Kills the registry; its port and storage stay for [`resume`](Self::resume).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the registry (again) on its port and storage, waiting until it answers.
    pub fn resume(&mut self) -> anyhow::Result<()> {
        self.stop();
        let auth = match &self.htpasswd {
            Some(line) => {
                let path = self.dir.join("htpasswd");
                std::fs::write(&path, format!("{line}\n"))?;
                format!(
                    "auth:\n  htpasswd:\n    realm: skiff-test\n    path: {}\n",
                    path.display()
                )
            }
            None => String::new(),
        };
        let config = self.dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
                 delete:\n    enabled: true\n{auth}http:\n  addr: {}\n",
                self.dir.join("storage").display(),
                self.addr
            ),
        )?;
        let log = std::fs::File::create(self.dir.join("registry.log"))?;
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning docker-registry")?;
        self.child = Some(child);
        let addr = self.addr;
        let ready = wait_until("the registry to listen", Duration::from_secs(20), || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                anyhow::bail!("docker-registry exited: {status}");
            }
            Ok(TcpStream::connect(addr).ok().map(|_| ()))
        });
        if let Err(err) = ready {
            let log = std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default();
            self.stop();
            return Err(err.context(log));
        }
        Ok(())
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
