//! Wasm images from an OCI registry (Debian's `docker-registry` on 127.0.0.1) on a real
//! `skiff server --dev`: `skiff image push` publishes a guest, a pod runs it by tag and by
//! digest and logs; a Linux image waits `RuntimeUnavailable` on a node without the Linux
//! runtime; a tampered blob is refused by its digest; a registry that is down gives
//! `ImagePullBackOff`, and the pod starts by itself when the registry comes back; a registry
//! asking for credentials takes them from `--username/--password` and from `imagePullSecrets`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use skiff_e2e::{wait_until, DevServer, Registry, Skiff};

/// Prints `MESSAGE` and a newline, then sleeps (an hour at a time) forever.
fn guest(message: &str) -> String {
    let escaped: String = message.bytes().map(|b| format!("\\{b:02x}")).collect();
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 256) "{escaped}\0a")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 256))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    ;; one clock subscription at 64: relative, an hour
    (i64.store (i32.const 88) (i64.const 3600000000000))
    (loop $sleep
      (drop (call $poll (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 160)))
      (br $sleep))))"#,
        len = message.len() + 1
    )
}

/// Writes the guest printing `message` to `dir/name.wasm`.
fn write_guest(dir: &Path, name: &str, message: &str) -> anyhow::Result<String> {
    let path = dir.join(format!("{name}.wasm"));
    std::fs::write(&path, wat::parse_str(guest(message))?)?;
    Ok(path.to_string_lossy().into_owned())
}

/// `skiff image push FILE REFERENCE`; returns the digest it prints.
fn push(cli: &Skiff, file: &str, reference: &str) -> anyhow::Result<String> {
    let digest = cli
        .ok(&["image", "push", file, reference])?
        .trim()
        .to_string();
    anyhow::ensure!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "push printed {digest:?}"
    );
    Ok(digest)
}

/// Applies a pod running `image`.
fn run_pod(cli: &Skiff, dir: &Path, name: &str, image: &str) -> anyhow::Result<()> {
    let manifest = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  \
             - name: app\n    image: {image}\n"
        ),
    )?;
    cli.ok(&["apply", "-f", &manifest.to_string_lossy()])?;
    Ok(())
}

/// Waits until the pod runs and has logged `line`.
fn wait_running_with_log(cli: &Skiff, name: &str, line: &str) -> anyhow::Result<()> {
    wait_until(
        &format!("{name} to run and log"),
        Duration::from_secs(120),
        || {
            let pod = cli.json(&["get", "pod", name])?;
            if pod["status"]["phase"] != "Running" {
                return Ok(None);
            }
            let logs = cli.ok(&["logs", name])?;
            Ok((logs == format!("{line}\n")).then_some(()))
        },
    )
}

/// The pod's first container's waiting state, once its reason is `reason`.
fn wait_waiting(cli: &Skiff, name: &str, reason: &str) -> anyhow::Result<Value> {
    wait_until(
        &format!("{name} to wait with {reason}"),
        Duration::from_secs(120),
        || {
            let pod = cli.json(&["get", "pod", name])?;
            let waiting = &pod["status"]["containerStatuses"][0]["state"]["waiting"];
            Ok((waiting["reason"] == reason).then(|| waiting.clone()))
        },
    )
}

#[test]
fn wasm_images_come_from_a_registry_verified_and_recover_when_it_returns() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut registry = Registry::start(tmp.path())?;
    let host = registry.host();
    let server = DevServer::start(&tmp.path().join("data"))?;
    let cli = server.cli();

    // Pushed and run by tag, then by digest.
    let hello = write_guest(tmp.path(), "hello", "hello from the registry")?;
    let digest = push(&cli, &hello, &format!("{host}/demo/hello:v1"))?;
    run_pod(&cli, tmp.path(), "hello", &format!("{host}/demo/hello:v1"))?;
    wait_running_with_log(&cli, "hello", "hello from the registry")?;
    run_pod(
        &cli,
        tmp.path(),
        "pinned",
        &format!("{host}/demo/hello@{digest}"),
    )?;
    wait_running_with_log(&cli, "pinned", "hello from the registry")?;
    let pod = cli.json(&["get", "pod", "hello"])?;
    assert_eq!(
        pod["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );

    // An image index whose wasi/wasm entry holds the module in a tar layer runs; a Linux image
    // is pulled, and a node without the Linux runtime refuses it by name.
    let platform = write_guest(tmp.path(), "platform", "from a wasi/wasm image")?;
    let index = push_platform_images(&registry, "demo/platform", &std::fs::read(&platform)?)?;
    run_pod(
        &cli,
        tmp.path(),
        "platform",
        &format!("{host}/demo/platform:{index}"),
    )?;
    wait_running_with_log(&cli, "platform", "from a wasi/wasm image")?;
    run_pod(
        &cli,
        tmp.path(),
        "linux",
        &format!("{host}/demo/platform:linux"),
    )?;
    let waiting = wait_waiting(&cli, "linux", "RuntimeUnavailable")?;
    let message = waiting["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("is a Linux container image")
            && message.contains("no Linux container runtime"),
        "{message}"
    );
    let events = cli.items(&["get", "events"])?;
    let said = events.iter().any(|e| {
        e["involvedObject"]["name"] == "linux"
            && e["reason"] == "FailedCreatePodSandBox"
            && e["message"] == message
    });
    assert!(said, "an event says why: {events:?}");

    // A blob changed in the registry's storage is refused by its digest.
    let other = write_guest(tmp.path(), "other", "other guest")?;
    push(&cli, &other, &format!("{host}/demo/other:v1"))?;
    let module = std::fs::read(&other)?;
    let module_digest = format!("sha256:{}", sha256_hex(&module));
    let blob = registry.blob_path(&module_digest);
    let mut tampered = std::fs::read(&blob)?;
    anyhow::ensure!(tampered == module, "the registry stores the module as is");
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    std::fs::write(&blob, &tampered)?;
    run_pod(
        &cli,
        tmp.path(),
        "tampered",
        &format!("{host}/demo/other:v1"),
    )?;
    let waiting = wait_waiting(&cli, "tampered", "ErrImagePull")?;
    let message = waiting["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&module_digest[7..]) && message.contains("digest"),
        "{message}"
    );

    // A registry that is down: ErrImagePull, then ImagePullBackOff with the reason; the pod
    // runs by itself once the registry is back.
    let late = write_guest(tmp.path(), "late", "late but here")?;
    push(&cli, &late, &format!("{host}/demo/late:v1"))?;
    registry.stop();
    run_pod(&cli, tmp.path(), "late", &format!("{host}/demo/late:v1"))?;
    let waiting = wait_waiting(&cli, "late", "ImagePullBackOff")?;
    let message = waiting["message"].as_str().unwrap_or_default();
    assert!(message.contains(&host), "{message}");
    registry.resume()?;
    wait_running_with_log(&cli, "late", "late but here")?;

    // A registry that asks for credentials: push with --username/--password; a pod pulls with
    // its imagePullSecrets, and without them is refused.
    let auth_dir = tmp.path().join("auth");
    std::fs::create_dir(&auth_dir)?;
    let private = Registry::start_with_htpasswd(&auth_dir, HTPASSWD)?;
    let private_host = private.host();
    let secret = write_guest(tmp.path(), "secret", "behind a password")?;
    let reference = format!("{private_host}/team/secret:v1");
    let refused = cli.run(&["image", "push", &secret, &reference])?;
    assert!(!refused.success, "an anonymous push is refused");
    cli.ok(&[
        "image",
        "push",
        &secret,
        &reference,
        "--username",
        "bot",
        "--password",
        "s3cret",
    ])?;
    run_pod(&cli, tmp.path(), "anonymous", &reference)?;
    wait_waiting(&cli, "anonymous", "ErrImagePull")?;
    let config =
        format!(r#"{{"auths":{{"{private_host}":{{"username":"bot","password":"s3cret"}}}}}}"#);
    let manifest = tmp.path().join("with-secret.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: regcred\ntype: kubernetes.io/dockerconfigjson\n\
             data:\n  .dockerconfigjson: {}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: with-secret\n\
             spec:\n  imagePullSecrets:\n  - name: regcred\n  containers:\n  - name: app\n    image: {reference}\n",
            base64(config.as_bytes())
        ),
    )?;
    cli.ok(&["apply", "-f", &manifest.to_string_lossy()])?;
    wait_running_with_log(&cli, "with-secret", "behind a password")?;
    Ok(())
}

/// Pushes to `repo` a `wasi/wasm` image with `module` at `/app.wasm` in a tar layer (as
/// `docker buildx --platform wasi/wasm` makes), a Linux image tagged `linux`, and an index of
/// both; returns the index's tag.
fn push_platform_images(
    registry: &Registry,
    repo: &str,
    module: &[u8],
) -> anyhow::Result<&'static str> {
    const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    let mut layer = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(module.len() as u64);
    header.set_mode(0o755);
    header.set_cksum();
    layer.append_data(&mut header, "app.wasm", module)?;
    let layer = layer.into_inner()?;
    let mut entries = Vec::new();
    for (os, arch, run) in [("wasi", "wasm", "/app.wasm"), ("linux", "amd64", "/bin/sh")] {
        let config = serde_json::to_vec(&serde_json::json!({
            "os": os, "architecture": arch, "config": {"Entrypoint": [run]},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&layer))]}
        }))?;
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": registry.put_blob(repo, &config)?, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": registry.put_blob(repo, &layer)?, "size": layer.len()}]
        }))?;
        let digest = format!("sha256:{}", sha256_hex(&manifest));
        registry.put_manifest(repo, &digest, MANIFEST, &manifest)?;
        if os == "linux" {
            registry.put_manifest(repo, "linux", MANIFEST, &manifest)?;
        }
        entries.push(serde_json::json!({"mediaType": MANIFEST, "digest": digest,
            "size": manifest.len(), "platform": {"os": os, "architecture": arch}}));
    }
    entries.reverse(); // linux/amd64 first, as in the wild
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": INDEX, "manifests": entries}))?;
    registry.put_manifest(repo, "multi", INDEX, &index)?;
    Ok("multi")
}

/// `bot:s3cret` for the registry's htpasswd auth (bcrypt, made once with Python's
/// `crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH))`).
const HTPASSWD: &str = "bot:$2y$12$EaU6ObRavnN28UncRsN4b.pz5FYEboowanCFRjbogU/9RygRFHYpW";

/// Standard base64 with padding (Secret data).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
