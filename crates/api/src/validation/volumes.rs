//! A pod spec's `volumes` and its containers' `volumeMounts`, checked as Kubernetes does.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{Container, KeyToPath, PodSpec, Volume, VolumeMount};

use super::meta::{self, NameRule};
use super::{Errors, FieldErrorReason};
use crate::quantity;

/// Checks `spec.volumes` and every container's `volumeMounts` against them.
pub fn validate(spec: &PodSpec, path: &str, errors: &mut Errors) {
    let mut names = HashSet::new();
    for (i, volume) in spec.volumes.iter().flatten().enumerate() {
        let field = format!("{path}.volumes[{i}]");
        if volume.name.is_empty() {
            errors.required(format!("{field}.name"));
        } else {
            meta::validate_name(
                &volume.name,
                NameRule::Label,
                &format!("{field}.name"),
                errors,
            );
        }
        if !names.insert(volume.name.as_str()) {
            errors.push(
                format!("{field}.name"),
                FieldErrorReason::Duplicate,
                format!("{:?}", volume.name),
            );
        }
        validate_source(volume, &field, errors);
    }
    let lists = [
        ("containers", Some(&spec.containers)),
        ("initContainers", spec.init_containers.as_ref()),
    ];
    for (list, containers) in lists {
        for (i, container) in containers.into_iter().flatten().enumerate() {
            validate_mounts(container, &names, &format!("{path}.{list}[{i}]"), errors);
        }
    }
}

/// The source kinds a volume sets.
fn sources(volume: &Volume) -> Vec<&'static str> {
    let set = [
        (volume.empty_dir.is_some(), "emptyDir"),
        (volume.host_path.is_some(), "hostPath"),
        (volume.config_map.is_some(), "configMap"),
        (volume.secret.is_some(), "secret"),
        (volume.downward_api.is_some(), "downwardAPI"),
        (volume.projected.is_some(), "projected"),
        (
            volume.persistent_volume_claim.is_some(),
            "persistentVolumeClaim",
        ),
        (volume.nfs.is_some(), "nfs"),
        (volume.csi.is_some(), "csi"),
        (volume.ephemeral.is_some(), "ephemeral"),
    ];
    set.into_iter()
        .filter(|(s, _)| *s)
        .map(|(_, n)| n)
        .collect()
}

fn validate_source(volume: &Volume, field: &str, errors: &mut Errors) {
    match sources(volume).as_slice() {
        [] => errors.push(
            field,
            FieldErrorReason::Required,
            "must specify a volume type",
        ),
        [_] => {}
        [_, second, ..] => errors.push(
            format!("{field}.{second}"),
            FieldErrorReason::Forbidden,
            "may not specify more than 1 volume type",
        ),
    }
    if let Some(limit) = volume
        .empty_dir
        .as_ref()
        .and_then(|e| e.size_limit.as_ref())
    {
        if let Err(err) = quantity::parse_bytes(&limit.0) {
            errors.invalid(format!("{field}.emptyDir.sizeLimit"), &limit.0, err.reason);
        }
    }
    if let Some(medium) = volume.empty_dir.as_ref().and_then(|e| e.medium.as_deref()) {
        if !matches!(medium, "" | "Memory") {
            errors.push(
                format!("{field}.emptyDir.medium"),
                FieldErrorReason::NotSupported,
                format!("{medium:?}: supported values: \"\", \"Memory\""),
            );
        }
    }
    if let Some(host) = volume.host_path.as_ref() {
        if !host.path.starts_with('/') {
            errors.invalid(
                format!("{field}.hostPath.path"),
                &host.path,
                "must be an absolute path",
            );
        }
        if let Some(kind) = host.type_.as_deref() {
            const TYPES: [&str; 8] = [
                "",
                "DirectoryOrCreate",
                "Directory",
                "FileOrCreate",
                "File",
                "Socket",
                "CharDevice",
                "BlockDevice",
            ];
            if !TYPES.contains(&kind) {
                errors.push(
                    format!("{field}.hostPath.type"),
                    FieldErrorReason::NotSupported,
                    format!("{kind:?}"),
                );
            }
        }
    }
    if let Some(claim) = volume.persistent_volume_claim.as_ref() {
        if claim.claim_name.is_empty() {
            errors.required(format!("{field}.persistentVolumeClaim.claimName"));
        }
    }
    if let Some(cm) = volume.config_map.as_ref() {
        validate_items(cm.items.as_deref(), &format!("{field}.configMap"), errors);
        validate_mode(
            cm.default_mode,
            &format!("{field}.configMap.defaultMode"),
            errors,
        );
    }
    if let Some(secret) = volume.secret.as_ref() {
        validate_items(secret.items.as_deref(), &format!("{field}.secret"), errors);
        validate_mode(
            secret.default_mode,
            &format!("{field}.secret.defaultMode"),
            errors,
        );
    }
    if let Some(downward) = volume.downward_api.as_ref() {
        for (i, item) in downward.items.iter().flatten().enumerate() {
            let item_field = format!("{field}.downwardAPI.items[{i}]");
            validate_relative(&item.path, &format!("{item_field}.path"), errors);
            validate_mode(item.mode, &format!("{item_field}.mode"), errors);
        }
    }
    if let Some(projected) = volume.projected.as_ref() {
        for (i, source) in projected.sources.iter().flatten().enumerate() {
            let source_field = format!("{field}.projected.sources[{i}]");
            if let Some(cm) = source.config_map.as_ref() {
                validate_items(
                    cm.items.as_deref(),
                    &format!("{source_field}.configMap"),
                    errors,
                );
            }
            if let Some(secret) = source.secret.as_ref() {
                validate_items(
                    secret.items.as_deref(),
                    &format!("{source_field}.secret"),
                    errors,
                );
            }
            for (j, item) in source
                .downward_api
                .iter()
                .flat_map(|d| d.items.iter().flatten())
                .enumerate()
            {
                let path = format!("{source_field}.downwardAPI.items[{j}].path");
                validate_relative(&item.path, &path, errors);
            }
        }
    }
}

fn validate_items(items: Option<&[KeyToPath]>, field: &str, errors: &mut Errors) {
    for (i, item) in items.into_iter().flatten().enumerate() {
        let item_field = format!("{field}.items[{i}]");
        if item.key.is_empty() {
            errors.required(format!("{item_field}.key"));
        }
        validate_relative(&item.path, &format!("{item_field}.path"), errors);
        validate_mode(item.mode, &format!("{item_field}.mode"), errors);
    }
}

fn validate_mode(mode: Option<i32>, field: &str, errors: &mut Errors) {
    if let Some(mode) = mode.filter(|m| !(0..=0o777).contains(m)) {
        errors.invalid(field, mode, "must be a number between 0 and 0777 (octal)");
    }
}

/// A path inside a volume: not empty, not absolute, no `..` element.
fn validate_relative(path: &str, field: &str, errors: &mut Errors) {
    if path.is_empty() {
        errors.required(field);
    } else if let Err(message) = check_relative(path) {
        errors.invalid(field, path, message);
    }
}

/// Why `path` may not name a place inside a volume, if it may not.
pub fn check_relative(path: &str) -> Result<(), &'static str> {
    if path.starts_with('/') {
        return Err("must be a relative path");
    }
    if path.split('/').any(|part| part == "..") {
        return Err("must not contain '..'");
    }
    Ok(())
}

fn validate_mounts(
    container: &Container,
    volumes: &HashSet<&str>,
    field: &str,
    errors: &mut Errors,
) {
    let mut paths = HashSet::new();
    for (i, mount) in container.volume_mounts.iter().flatten().enumerate() {
        let mount_field = format!("{field}.volumeMounts[{i}]");
        validate_mount(mount, volumes, &mount_field, errors);
        if !paths.insert(mount.mount_path.trim_end_matches('/')) {
            errors.invalid(
                format!("{mount_field}.mountPath"),
                &mount.mount_path,
                "must be unique",
            );
        }
    }
}

fn validate_mount(mount: &VolumeMount, volumes: &HashSet<&str>, field: &str, errors: &mut Errors) {
    if mount.name.is_empty() {
        errors.required(format!("{field}.name"));
    } else if !volumes.contains(mount.name.as_str()) {
        errors.push(
            format!("{field}.name"),
            FieldErrorReason::NotFound,
            format!("{:?}", mount.name),
        );
    }
    if mount.mount_path.is_empty() {
        errors.required(format!("{field}.mountPath"));
    } else if !mount.mount_path.starts_with('/') {
        errors.invalid(
            format!("{field}.mountPath"),
            &mount.mount_path,
            "must be an absolute path",
        );
    }
    if let Some(sub) = mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
        if let Err(message) = check_relative(sub) {
            errors.invalid(format!("{field}.subPath"), sub, message);
        }
    }
    if let Some(expr) = mount.sub_path_expr.as_deref().filter(|s| !s.is_empty()) {
        if mount.sub_path.as_deref().is_some_and(|s| !s.is_empty()) {
            errors.invalid(
                format!("{field}.subPathExpr"),
                expr,
                "subPathExpr and subPath are mutually exclusive",
            );
        }
        if let Err(message) = check_relative(expr) {
            errors.invalid(format!("{field}.subPathExpr"), expr, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::{json, Value};

    use super::super::pod::validate_pod;
    use super::*;

    fn pod(volumes: Value, mounts: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {
                "volumes": volumes,
                "containers": [{"name": "c", "image": "file:///g.wasm", "volumeMounts": mounts}]
            }
        }))
        .expect("pod")
    }

    fn fields(pod: &Pod) -> Vec<String> {
        let mut errors = Errors::default();
        validate_pod(pod, &mut errors);
        errors.0.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn volume_specs_table() {
        let ok_mount = json!([{"name": "v", "mountPath": "/data"}]);
        let cases: Vec<(&str, Value, Value, Vec<&str>)> = vec![
            (
                "valid",
                json!([{"name": "v", "emptyDir": {}}]),
                ok_mount.clone(),
                vec![],
            ),
            (
                "name used twice",
                json!([{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]),
                ok_mount.clone(),
                vec!["spec.volumes[1].name"],
            ),
            (
                "mount naming no volume",
                json!([{"name": "v", "emptyDir": {}}]),
                json!([{"name": "w", "mountPath": "/data"}]),
                vec!["spec.containers[0].volumeMounts[0].name"],
            ),
            (
                "relative mountPath",
                json!([{"name": "v", "emptyDir": {}}]),
                json!([{"name": "v", "mountPath": "data"}]),
                vec!["spec.containers[0].volumeMounts[0].mountPath"],
            ),
            (
                "two mounts on one path",
                json!([{"name": "v", "emptyDir": {}}]),
                json!([{"name": "v", "mountPath": "/d"}, {"name": "v", "mountPath": "/d/"}]),
                vec!["spec.containers[0].volumeMounts[1].mountPath"],
            ),
            (
                "subPath with ..",
                json!([{"name": "v", "emptyDir": {}}]),
                json!([{"name": "v", "mountPath": "/d", "subPath": "a/../../etc"}]),
                vec!["spec.containers[0].volumeMounts[0].subPath"],
            ),
            (
                "absolute subPath",
                json!([{"name": "v", "emptyDir": {}}]),
                json!([{"name": "v", "mountPath": "/d", "subPath": "/etc"}]),
                vec!["spec.containers[0].volumeMounts[0].subPath"],
            ),
            (
                "two sources",
                json!([{"name": "v", "emptyDir": {}, "hostPath": {"path": "/srv"}}]),
                ok_mount.clone(),
                vec!["spec.volumes[0].hostPath"],
            ),
            (
                "no source",
                json!([{"name": "v"}]),
                ok_mount.clone(),
                vec!["spec.volumes[0]"],
            ),
            (
                "configMap item path with ..",
                json!([{"name": "v", "configMap": {"name": "c", "items": [{"key": "k", "path": "../k"}]}}]),
                ok_mount.clone(),
                vec!["spec.volumes[0].configMap.items[0].path"],
            ),
            (
                "secret item path absolute",
                json!([{"name": "v", "secret": {"secretName": "s", "items": [{"key": "k", "path": "/k"}]}}]),
                ok_mount.clone(),
                vec!["spec.volumes[0].secret.items[0].path"],
            ),
            (
                "sizeLimit not a quantity",
                json!([{"name": "v", "emptyDir": {"medium": "Memory", "sizeLimit": "lots"}}]),
                ok_mount.clone(),
                vec!["spec.volumes[0].emptyDir.sizeLimit"],
            ),
            (
                "relative hostPath",
                json!([{"name": "v", "hostPath": {"path": "srv"}}]),
                ok_mount.clone(),
                vec!["spec.volumes[0].hostPath.path"],
            ),
            (
                "unknown hostPath type",
                json!([{"name": "v", "hostPath": {"path": "/srv", "type": "Dir"}}]),
                ok_mount.clone(),
                vec!["spec.volumes[0].hostPath.type"],
            ),
            (
                "defaultMode too large",
                json!([{"name": "v", "secret": {"secretName": "s", "defaultMode": 4096}}]),
                ok_mount.clone(),
                vec!["spec.volumes[0].secret.defaultMode"],
            ),
            (
                "downwardAPI path with ..",
                json!([{"name": "v", "downwardAPI": {"items": [{"path": "..", "fieldRef": {"fieldPath": "metadata.name"}}]}}]),
                ok_mount.clone(),
                vec!["spec.volumes[0].downwardAPI.items[0].path"],
            ),
            (
                "projected configMap item absolute",
                json!([{"name": "v", "projected": {"sources": [{"configMap": {"name": "c", "items": [{"key": "k", "path": "/k"}]}}]}}]),
                ok_mount.clone(),
                vec!["spec.volumes[0].projected.sources[0].configMap.items[0].path"],
            ),
            (
                "claim without a name",
                json!([{"name": "v", "persistentVolumeClaim": {"claimName": ""}}]),
                ok_mount,
                vec!["spec.volumes[0].persistentVolumeClaim.claimName"],
            ),
        ];
        for (name, volumes, mounts, want) in cases {
            assert_eq!(fields(&pod(volumes, mounts)), want, "{name}");
        }
    }

    #[test]
    fn relative_paths() {
        assert!(check_relative("a/b").is_ok());
        assert!(check_relative("..a/b..").is_ok());
        assert!(check_relative("a/..").is_err());
        assert!(check_relative("/a").is_err());
    }
}
