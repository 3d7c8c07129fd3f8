//! Reading manifests for `apply` and `delete -f`: files, directories and stdin; making `file:`
//! images absolute and checking them; validating every document before anything is sent.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::Value;
use skiff_api::resources::{self, ResourceKind};
use skiff_api::{defaults, manifest, validation};

/// One object read from a manifest.
#[derive(Debug)]
pub struct ManifestObject {
    /// The file it came from (`<stdin>` for `-`).
    pub source: String,
    pub kind: &'static ResourceKind,
    pub object: Value,
}

impl ManifestObject {
    pub fn name(&self) -> &str {
        self.object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn namespace(&self) -> Option<&str> {
        if !self.kind.namespaced {
            return None;
        }
        self.object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }
}

/// A source of manifest text and the directory its relative `file:` images are relative to.
struct Source {
    name: String,
    text: String,
    base: PathBuf,
}

fn sources(paths: &[String]) -> anyhow::Result<Vec<Source>> {
    let mut out = Vec::new();
    for path in paths {
        if path == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading manifests from standard input")?;
            out.push(Source {
                name: "<stdin>".into(),
                text,
                base: std::env::current_dir()?,
            });
            continue;
        }
        let p = Path::new(path);
        let metadata = std::fs::metadata(p).with_context(|| format!("{path}: cannot read"))?;
        let files = if metadata.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("{path}: cannot list directory"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    matches!(
                        f.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml" | "json")
                    )
                })
                .collect();
            files.sort();
            files
        } else {
            vec![p.to_path_buf()]
        };
        for file in files {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("{}: cannot read", file.display()))?;
            let base = file
                .canonicalize()
                .ok()
                .and_then(|f| f.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from("."));
            out.push(Source {
                name: file.display().to_string(),
                text,
                base,
            });
        }
    }
    Ok(out)
}

/// JSON pointers of the container lists of a kind's pod spec, and their field paths.
fn container_lists(kind: &ResourceKind) -> Option<(&'static str, &'static str)> {
    match kind.kind {
        "Pod" => Some(("/spec/containers", "spec.containers")),
        "Deployment" | "ReplicaSet" | "DaemonSet" | "StatefulSet" | "Job" => Some((
            "/spec/template/spec/containers",
            "spec.template.spec.containers",
        )),
        "CronJob" => Some((
            "/spec/jobTemplate/spec/template/spec/containers",
            "spec.jobTemplate.spec.template.spec.containers",
        )),
        _ => None,
    }
}

/// Makes relative `file:` images absolute against `base` and checks each is a Wasm file.
fn resolve_images(kind: &ResourceKind, object: &mut Value, base: &Path, errors: &mut Vec<String>) {
    let Some((pointer, field)) = container_lists(kind) else {
        return;
    };
    let Some(containers) = object.pointer_mut(pointer).and_then(Value::as_array_mut) else {
        return;
    };
    for (i, container) in containers.iter_mut().enumerate() {
        let Some(image) = container.get("image").and_then(Value::as_str) else {
            continue;
        };
        let Some(path) = image.strip_prefix("file:") else {
            continue;
        };
        let absolute = if Path::new(path).is_absolute() {
            PathBuf::from(path)
        } else {
            base.join(path)
        };
        let absolute = absolute.canonicalize().unwrap_or(absolute);
        let field = format!("{field}[{i}].image");
        match std::fs::File::open(&absolute) {
            Err(err) => errors.push(format!(
                "{field}: image file {} cannot be read: {err}",
                absolute.display()
            )),
            Ok(mut file) => {
                let mut magic = [0u8; 4];
                if file.read_exact(&mut magic).is_err() || &magic != b"\0asm" {
                    errors.push(format!(
                        "{field}: {} is not a WebAssembly file (no \\0asm header)",
                        absolute.display()
                    ));
                }
            }
        }
        container["image"] = Value::String(format!("file:{}", absolute.display()));
    }
}

/// Reads, resolves and validates every document; fails listing every problem if any is bad,
/// so that nothing is applied from a partly bad set.
pub fn load(paths: &[String], namespace: &str, check: bool) -> anyhow::Result<Vec<ManifestObject>> {
    let mut objects = Vec::new();
    let mut problems = Vec::new();
    for source in sources(paths)? {
        let documents = match manifest::parse_documents(&source.name, &source.text) {
            Ok(documents) => documents,
            Err(err) => {
                problems.push(err.to_string());
                continue;
            }
        };
        for mut object in documents {
            let api_version = object["apiVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let kind_name = object["kind"].as_str().unwrap_or_default().to_string();
            let Some(kind) = resources::by_kind(&api_version, &kind_name) else {
                problems.push(format!(
                    "{}: unknown kind {kind_name:?} in apiVersion {api_version:?}",
                    source.name
                ));
                continue;
            };
            if kind.namespaced
                && object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .is_none()
            {
                if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("namespace".into(), Value::String(namespace.to_string()));
                }
            }
            let label = format!(
                "{}: {}/{}",
                source.name,
                kind.kind,
                object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("<unnamed>")
            );
            if check {
                let mut errors = Vec::new();
                resolve_images(kind, &mut object, &source.base, &mut errors);
                let mut defaulted = object.clone();
                defaults::apply_defaults(kind, &mut defaulted);
                if let Err(field_errors) = validation::validate(kind, &defaulted) {
                    errors.extend(field_errors.iter().map(ToString::to_string));
                }
                problems.extend(errors.into_iter().map(|e| format!("{label}: {e}")));
            }
            objects.push(ManifestObject {
                source: source.name.clone(),
                kind,
                object,
            });
        }
    }
    if !problems.is_empty() {
        bail!(
            "nothing was applied; fix these first:\n  {}",
            problems.join("\n  ")
        );
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    }

    #[test]
    fn rewrites_relative_images_and_checks_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("bin")).expect("mkdir");
        std::fs::write(dir.path().join("bin/g.wasm"), b"\0asm\x01\0\0\0").expect("guest");
        let manifest = write(
            dir.path(),
            "pod.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: 'file:bin/g.wasm'}]\n",
        );
        let objects = load(&[manifest], "team", true).expect("load");
        let image = objects[0].object["spec"]["containers"][0]["image"]
            .as_str()
            .expect("image");
        assert!(
            image.starts_with("file:/") && image.ends_with("bin/g.wasm"),
            "{image}"
        );
        assert_eq!(objects[0].namespace(), Some("team"));
    }

    #[test]
    fn job_and_cronjob_images_are_rewritten_too() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("g.wasm"), b"\0asm\x01\0\0\0").expect("guest");
        let template = "template: {spec: {restartPolicy: Never, containers: [{name: c, image: 'file:g.wasm'}]}}";
        let path = write(
            dir.path(),
            "batch.yaml",
            &format!(
                "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: j}}\nspec: {{{template}}}\n---\n\
                 apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: c}}\nspec: {{schedule: '@daily', jobTemplate: {{spec: {{{template}}}}}}}\n"
            ),
        );
        let objects = load(&[path], "default", true).expect("valid");
        for (object, pointer) in objects.iter().zip([
            "/spec/template/spec/containers/0/image",
            "/spec/jobTemplate/spec/template/spec/containers/0/image",
        ]) {
            let image = object
                .object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default();
            assert!(
                image.starts_with("file:/") && image.ends_with("/g.wasm"),
                "{image}"
            );
        }
    }

    #[test]
    fn one_bad_document_rejects_all_and_names_file_and_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("text.wasm"), "not wasm").expect("write");
        let manifest = write(
            dir.path(),
            "two.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: 'file:text.wasm'}]\n",
        );
        let err = load(&[manifest], "default", true)
            .expect_err("bad image")
            .to_string();
        assert!(
            err.contains("two.yaml: Pod/p: spec.containers[0].image"),
            "{err}"
        );
        assert!(err.contains("not a WebAssembly file"), "{err}");
        let missing = write(dir.path(), "missing.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: -2, selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: 'file:/nope.wasm'}]}}}\n");
        let err = load(&[missing], "default", true)
            .expect_err("bad")
            .to_string();
        assert!(
            err.contains("spec.replicas") && err.contains("/nope.wasm"),
            "{err}"
        );
    }

    #[test]
    fn directories_are_read_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            "b.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
        );
        write(
            dir.path(),
            "a.yml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
        );
        write(dir.path(), "notes.txt", "ignored");
        let objects = load(&[dir.path().display().to_string()], "default", true).expect("load");
        assert_eq!(
            objects.iter().map(ManifestObject::name).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }
}
