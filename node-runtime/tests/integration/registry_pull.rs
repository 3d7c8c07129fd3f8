//! The image store against a scripted OCI registry on loopback (axum, port 0): the three Wasm
//! layouts and a `wasi/wasm` index are pulled, concurrent pulls of one image share one fetch
//! (but only with the same credentials), a tampered blob is refused by its digest and an index
//! without `wasi/wasm` resolves to the node's Linux platform; Linux images are unpacked into
//! shared layers, hostile and tampered layers refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use sha2::{Digest, Sha256};
use skiff_node_runtime::runtime::{ImageService, ImageStore, PullAuth, RuntimeError};

const MODULE: &[u8] = b"\0asm\x01\0\0\0";

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// What the registry serves, by request path, and how often each path was asked for.
#[derive(Default)]
struct Content {
    files: HashMap<String, (String, Vec<u8>)>,
    hits: HashMap<String, usize>,
    /// Repositories served only to `Authorization: Bearer <token>`, by repository.
    tokens: HashMap<String, String>,
}

#[derive(Clone, Default)]
struct Fake(Arc<Mutex<Content>>);

impl Fake {
    fn blob(&self, repo: &str, bytes: &[u8]) -> serde_json::Value {
        self.blob_as(repo, bytes, bytes, "application/octet-stream")
    }

    /// Serves `served` under the digest of `claimed`.
    fn blob_as(
        &self,
        repo: &str,
        claimed: &[u8],
        served: &[u8],
        media_type: &str,
    ) -> serde_json::Value {
        let d = digest(claimed);
        self.0.lock().unwrap().files.insert(
            format!("{repo}/blobs/{d}"),
            ("application/octet-stream".into(), served.to_vec()),
        );
        json!({"mediaType": media_type, "digest": d, "size": claimed.len()})
    }

    /// Serves `manifest` under `tag` and under its digest; returns the digest.
    fn manifest(&self, repo: &str, tag: &str, manifest: serde_json::Value) -> String {
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let media_type = manifest["mediaType"].as_str().unwrap().to_string();
        let d = digest(&bytes);
        let mut content = self.0.lock().unwrap();
        for name in [tag, d.as_str()] {
            content.files.insert(
                format!("{repo}/manifests/{name}"),
                (media_type.clone(), bytes.clone()),
            );
        }
        d
    }

    fn hits(&self, path: &str) -> usize {
        self.0.lock().unwrap().hits.get(path).copied().unwrap_or(0)
    }

    async fn serve(self) -> String {
        async fn v2(
            State(fake): State<Fake>,
            Path(path): Path<String>,
            headers: HeaderMap,
        ) -> Response {
            let mut content = fake.0.lock().unwrap();
            *content.hits.entry(path.clone()).or_default() += 1;
            let repo = path.split('/').next().unwrap_or_default();
            if let Some(token) = content.tokens.get(repo) {
                let sent = headers.get(header::AUTHORIZATION);
                if sent.and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {token}")) {
                    return (
                        StatusCode::UNAUTHORIZED,
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
                    )
                        .into_response();
                }
            }
            match content.files.get(&path) {
                Some((media_type, bytes)) => {
                    ([(header::CONTENT_TYPE, media_type.clone())], bytes.clone()).into_response()
                }
                None => (
                    StatusCode::NOT_FOUND,
                    r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
                )
                    .into_response(),
            }
        }
        let app = Router::new()
            .route("/v2/", get(|| async { "{}" }))
            .route("/v2/{*path}", get(v2))
            .with_state(self);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr.to_string()
    }
}

fn oci_manifest(config: serde_json::Value, layers: Vec<serde_json::Value>) -> serde_json::Value {
    json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": config, "layers": layers})
}

fn tar_layer(path: &str, bytes: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, path, bytes).unwrap();
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    gz.finish().unwrap()
}

#[tokio::test]
async fn pulls_every_wasm_layout_once_and_verifies_blobs() {
    let fake = Fake::default();
    // The CNCF artifact.
    let config = fake.blob_as("cncf", b"{}", b"{}", "application/vnd.wasm.config.v0+json");
    let layer = fake.blob_as("cncf", MODULE, MODULE, "application/wasm");
    fake.manifest("cncf", "v1", oci_manifest(config, vec![layer]));
    // The older single layer.
    let config = fake.blob_as(
        "old",
        b"{}",
        b"{}",
        "application/vnd.oci.image.config.v1+json",
    );
    let layer = fake.blob_as(
        "old",
        MODULE,
        MODULE,
        "application/vnd.wasm.content.layer.v1+wasm",
    );
    fake.manifest("old", "v1", oci_manifest(config, vec![layer]));
    // A wasi/wasm image in an index beside a Linux one.
    let wasi_config =
        json!({"os": "wasi", "architecture": "wasm", "config": {"Entrypoint": ["/app.wasm"]}});
    let config = fake.blob_as(
        "multi",
        &serde_json::to_vec(&wasi_config).unwrap(),
        &serde_json::to_vec(&wasi_config).unwrap(),
        "application/vnd.oci.image.config.v1+json",
    );
    let layer_bytes = tar_layer("app.wasm", MODULE);
    let layer = fake.blob_as(
        "multi",
        &layer_bytes,
        &layer_bytes,
        "application/vnd.oci.image.layer.v1.tar+gzip",
    );
    let wasi = fake.manifest("multi", "wasi", oci_manifest(config, vec![layer]));
    let linux_config = json!({"os": "linux", "architecture": "amd64"});
    let config = fake.blob("multi", &serde_json::to_vec(&linux_config).unwrap());
    let linux = fake.manifest("multi", "linux", oci_manifest(config, vec![]));
    let entry = |d: &str, os: &str, arch: &str| {
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": d, "size": 1, "platform": {"os": os, "architecture": arch}})
    };
    fake.manifest(
        "multi",
        "v1",
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&linux, "linux", "amd64"), entry(&wasi, "wasi", "wasm")]}),
    );
    fake.manifest(
        "multi",
        "linux-only",
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&linux, "linux", "amd64")]}),
    );
    // A tampered module: served bytes that are not the ones the manifest names.
    let config = fake.blob_as("bad", b"{}", b"{}", "application/vnd.wasm.config.v0+json");
    let (claimed, tampered) = (b"\0asm\x01\0\0\0\x01", b"\0asm\x01\0\0\0\x02");
    let layer = fake.blob_as("bad", claimed, tampered, "application/wasm");
    fake.manifest("bad", "v1", oci_manifest(config, vec![layer]));

    let host = fake.clone().serve().await;
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path().join("images")).unwrap();

    for repo in ["cncf", "old", "multi"] {
        let reference = format!("{host}/{repo}:v1");
        let image = store
            .pull_image(&reference, None)
            .await
            .unwrap_or_else(|e| panic!("{reference}: {e}"));
        assert_eq!(
            std::fs::read(&image.content).unwrap(),
            MODULE,
            "{reference}"
        );
        assert_eq!(image.size, MODULE.len() as u64);
    }
    let multi = store
        .image_status(&format!("{host}/multi:v1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        multi.digest, wasi,
        "the index resolves to its wasi/wasm manifest"
    );
    assert_eq!(multi.config.entrypoint, ["/app.wasm"]);
    let cncf = store
        .image_status(&format!("{host}/cncf:v1"))
        .await
        .unwrap()
        .unwrap();
    let old = store
        .image_status(&format!("{host}/old:v1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cncf.content, old.content, "one module blob, shared");
    assert_eq!(
        cncf.content, multi.content,
        "the module from the tar layer is the same blob"
    );
    store.remove_image(&cncf.reference).await.unwrap();
    assert!(
        old.content.is_file(),
        "a module still used by another image stays"
    );

    // Two concurrent pulls of one image: one manifest fetch, one blob fetch.
    let store2 = ImageStore::open(dir.path().join("other")).unwrap();
    let reference = format!("{host}/cncf:v1");
    let before = fake.hits("cncf/manifests/v1");
    let module_path = format!("cncf/blobs/{}", digest(MODULE));
    let blob_before = fake.hits(&module_path);
    let (a, b) = tokio::join!(
        store2.pull_image(&reference, None),
        store2.pull_image(&reference, None)
    );
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(fake.hits("cncf/manifests/v1") - before, 1);
    assert_eq!(fake.hits(&module_path) - blob_before, 1);

    // The tampered blob is refused by its digest and not stored.
    let err = store
        .pull_image(&format!("{host}/bad:v1"), None)
        .await
        .expect_err("tampered");
    assert!(matches!(err, RuntimeError::Registry { .. }), "{err}");
    assert!(err.to_string().contains(&digest(claimed)), "{err}");
    assert!(!dir
        .path()
        .join("images/blobs/sha256")
        .join(&digest(claimed)[7..])
        .exists());

    // An index without wasi/wasm resolves to linux/amd64 (tests/linux_pull.rs pulls Linux
    // images); this one has no layers and is refused as such.
    for tag in ["linux", "linux-only"] {
        let err = store
            .pull_image(&format!("{host}/multi:{tag}"), None)
            .await
            .expect_err("linux");
        assert!(
            err.to_string().contains("Linux image without layers"),
            "{tag}: {err}"
        );
    }
    // A missing image carries the registry's answer.
    let err = store
        .pull_image(&format!("{host}/nope:v1"), None)
        .await
        .expect_err("missing");
    assert!(
        err.to_string().contains("manifest unknown") || err.to_string().contains("404"),
        "{err}"
    );
}

#[tokio::test]
async fn concurrent_pulls_share_a_fetch_only_with_the_same_credentials() {
    let fake = Fake::default();
    let config = fake.blob_as(
        "private",
        b"{}",
        b"{}",
        "application/vnd.wasm.config.v0+json",
    );
    let layer = fake.blob_as("private", MODULE, MODULE, "application/wasm");
    fake.manifest("private", "v1", oci_manifest(config, vec![layer]));
    fake.0
        .lock()
        .unwrap()
        .tokens
        .insert("private".into(), "let-me-in".into());
    let host = fake.clone().serve().await;
    let reference = format!("{host}/private:v1");
    let secret = PullAuth {
        server: None,
        username: String::new(),
        password: "let-me-in".into(),
    };
    let dir = tempfile::tempdir().unwrap();

    // The anonymous pull starts first; the pull with the secret must not join it.
    let store = ImageStore::open(dir.path().join("a")).unwrap();
    let (anonymous, authorized) = tokio::join!(
        store.pull_image(&reference, None),
        store.pull_image(&reference, Some(&secret))
    );
    let err = anonymous.expect_err("no credentials");
    assert!(err.to_string().contains("Not authorized"), "{err}");
    let image = authorized.unwrap_or_else(|e| panic!("with the secret: {e}"));
    assert_eq!(std::fs::read(&image.content).unwrap(), MODULE);

    // Nor does an anonymous pull ride on one with the secret.
    let store = ImageStore::open(dir.path().join("b")).unwrap();
    let (authorized, anonymous) = tokio::join!(
        store.pull_image(&reference, Some(&secret)),
        store.pull_image(&reference, None)
    );
    authorized.unwrap_or_else(|e| panic!("with the secret: {e}"));
    anonymous.expect_err("an anonymous pull gets no private image");

    // Two pulls with the same secret still share one fetch.
    let store = ImageStore::open(dir.path().join("c")).unwrap();
    let before = fake.hits("private/manifests/v1");
    let (a, b) = tokio::join!(
        store.pull_image(&reference, Some(&secret)),
        store.pull_image(&reference, Some(&secret))
    );
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(fake.hits("private/manifests/v1") - before, 1);
}

/// A tar layer of raw entries: (name, type, content or link target); names are written raw so
/// that hostile ones (`../x`) can be made.
fn raw_layer(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, kind, data) in entries {
        let mut header = tar::Header::new_ustar();
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        let body: &[u8] = if kind.is_symlink() {
            header.as_old_mut().linkname[..data.len()].copy_from_slice(data);
            b""
        } else {
            data
        };
        header.set_entry_type(*kind);
        header.set_size(body.len() as u64);
        header.set_mode(0o755);
        header.set_cksum();
        builder.append(&header, body).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, bytes).unwrap();
    gz.finish().unwrap()
}

/// Serves a Linux image of `layers` (lowest first) as `repo:tag`.
fn linux_image(fake: &Fake, repo: &str, tag: &str, layers: &[(&[u8], &[u8])]) {
    let config = json!({"os": "linux", "architecture": "amd64",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "User": "1000"}});
    let config = fake.blob(repo, &serde_json::to_vec(&config).unwrap());
    let layers = layers
        .iter()
        .map(|(claimed, served)| {
            fake.blob_as(
                repo,
                claimed,
                served,
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        })
        .collect();
    fake.manifest(repo, tag, oci_manifest(config, layers));
}

#[tokio::test]
async fn pulls_linux_images_into_shared_unpacked_layers() {
    use std::os::unix::fs::FileTypeExt;
    use tar::EntryType::{Directory, Regular, Symlink};

    let fake = Fake::default();
    let base = gzip(&raw_layer(&[
        ("bin/", Directory, b""),
        ("bin/busybox", Regular, b"\x7fELF"),
        ("bin/sh", Symlink, b"/bin/busybox"),
        ("etc/motd", Regular, b"hello"),
        ("var/cache/old", Regular, b"old"),
    ]));
    let upper = gzip(&raw_layer(&[
        ("etc/.wh.motd", Regular, b""),
        ("var/cache/", Directory, b""),
        ("var/cache/.wh..wh..opq", Regular, b""),
        ("var/cache/new", Regular, b"new"),
    ]));
    linux_image(&fake, "app", "v1", &[(&base, &base), (&upper, &upper)]);
    linux_image(&fake, "base", "v1", &[(&base, &base)]);
    let hostile = gzip(&raw_layer(&[("../../escaped", Regular, b"x")]));
    linux_image(
        &fake,
        "hostile",
        "v1",
        &[(&base, &base), (&hostile, &hostile)],
    );
    let other = gzip(&raw_layer(&[("x", Regular, b"x")]));
    linux_image(&fake, "tampered", "v1", &[(&other, &upper)]);

    let host = fake.clone().serve().await;
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    let store = ImageStore::open(images.clone()).unwrap();
    let app = store
        .pull_image(&format!("{host}/app:v1"), None)
        .await
        .unwrap_or_else(|e| panic!("app: {e}"));
    assert_eq!(app.layers.len(), 2);
    assert_eq!(
        app.layers[0],
        images.join("layers/sha256").join(&digest(&base)[7..])
    );
    assert_eq!(app.config.cmd, ["sh"]);
    assert_eq!(app.config.user.as_deref(), Some("1000"));
    assert_eq!(app.size, (base.len() + upper.len()) as u64);
    let (lower, top) = (&app.layers[0], &app.layers[1]);
    assert_eq!(
        std::fs::read(lower.join("bin/busybox")).unwrap(),
        b"\x7fELF"
    );
    assert_eq!(
        std::fs::read_link(lower.join("bin/sh")).unwrap(),
        std::path::Path::new("/bin/busybox")
    );
    let whiteout = std::fs::symlink_metadata(top.join("etc/motd")).unwrap();
    assert!(whiteout.file_type().is_char_device());
    assert!(!top.join("var/cache/old").exists());
    assert_eq!(std::fs::read(top.join("var/cache/new")).unwrap(), b"new");

    // The base layer is shared, unpacked once.
    let base_image = store
        .pull_image(&format!("{host}/base:v1"), None)
        .await
        .unwrap();
    assert_eq!(base_image.layers, app.layers[..1]);
    assert_eq!(fake.hits(&format!("app/blobs/{}", digest(&base))), 1);
    assert_eq!(fake.hits(&format!("base/blobs/{}", digest(&base))), 0);

    // A hostile layer fails the pull by name and leaves nothing behind, not even a temp dir.
    let err = store
        .pull_image(&format!("{host}/hostile:v1"), None)
        .await
        .expect_err("hostile");
    assert!(
        err.to_string().contains(&digest(&hostile)) && err.to_string().contains("climbs out"),
        "{err}"
    );
    let unpacked: Vec<_> = std::fs::read_dir(images.join("layers/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(unpacked.len(), 2, "{unpacked:?}");
    assert!(!dir.path().join("escaped").exists());
    // A tampered layer blob is refused by its digest.
    let err = store
        .pull_image(&format!("{host}/tampered:v1"), None)
        .await
        .expect_err("tampered");
    assert!(
        err.to_string().contains(&digest(&other))
            && err.to_string().to_lowercase().contains("digest"),
        "{err}"
    );
    assert!(!images
        .join("layers/sha256")
        .join(&digest(&other)[7..])
        .exists());

    // Removing an image keeps the layers another image shares.
    store.remove_image(&app.reference).await.unwrap();
    assert!(app.layers[0].is_dir() && !app.layers[1].exists());
    assert!(!images
        .join("blobs/sha256")
        .join(&digest(&upper)[7..])
        .exists());
    store.remove_image(&base_image.reference).await.unwrap();
    assert!(!app.layers[0].exists());
    assert!(!images
        .join("blobs/sha256")
        .join(&digest(&base)[7..])
        .exists());
}
