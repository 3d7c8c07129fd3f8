//! The runtime's `ContainerConfig` from the pod spec and the pulled image, merged as
//! Kubernetes does: `command` overrides the image's entrypoint, `args` its cmd, the
//! container's env the image's, `$(VAR)` in command and args is expanded from the env, and
//! the pod's security context fills what the container's leaves open. Pure: the worker resolves env and pulls the image first.

use skiff_api::k8s_openapi::api::core::v1::{Capabilities, Container, Pod, PodSpec};
use skiff_api::quantity;

use super::volumes::expand;

use crate::runtime::{
    container_log_path, ContainerConfig, ContainerPort, ContainerResources, ImageConfig, ImageRef,
    Mount, Protocol, SeccompProfile, SecurityContext,
};

/// The config to create attempt `attempt` of `spec` in `pod` (`env` and `mounts` already
/// resolved).
pub fn build(
    pod: &Pod,
    spec: &Container,
    image: ImageRef,
    env: Vec<(String, String)>,
    attempt: u32,
    mounts: Vec<Mount>,
) -> ContainerConfig {
    // `$(VAR)` in the pod's command and args is expanded from the container's env (Service
    // variables included), as the kubelet does; the image's own are left as they are.
    let expand = |list: Option<&Vec<String>>| {
        list.map(|l| l.iter().map(|a| expand(a, &env)).collect::<Vec<_>>())
    };
    let (command, args) = (expand(spec.command.as_ref()), expand(spec.args.as_ref()));
    let (command, args) = command_and_args(command.as_deref(), args.as_deref(), &image.config);
    ContainerConfig {
        name: spec.name.clone(),
        command,
        args,
        env: merge_env(&image.config.env, env),
        working_dir: spec
            .working_dir
            .clone()
            .or_else(|| image.config.working_dir.clone()),
        resources: limits(spec),
        mounts,
        ports: ports(spec),
        security: security(pod.spec.as_ref(), spec),
        attempt,
        log_path: container_log_path(&spec.name, attempt),
        image,
    }
}

/// `(command, args)` as Kubernetes composes them; an empty list counts as unset.
pub fn command_and_args(
    command: Option<&[String]>,
    args: Option<&[String]>,
    image: &ImageConfig,
) -> (Vec<String>, Vec<String>) {
    let command = command.filter(|c| !c.is_empty());
    let args = args.filter(|a| !a.is_empty());
    match (command, args) {
        (Some(command), args) => (command.to_vec(), args.unwrap_or_default().to_vec()),
        (None, Some(args)) => (image.entrypoint.clone(), args.to_vec()),
        (None, None) => (image.entrypoint.clone(), image.cmd.clone()),
    }
}

/// The image's env with the container's on top (same name: the container's value wins).
pub fn merge_env(
    image: &[(String, String)],
    container: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = image
        .iter()
        .filter(|(name, _)| !container.iter().any(|(n, _)| n == name))
        .cloned()
        .collect();
    env.extend(container);
    env
}

fn limits(container: &Container) -> ContainerResources {
    let limit = |name: &str| {
        container
            .resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get(name))
            .map(|q| q.0.clone())
    };
    ContainerResources {
        cpu_millis: limit("cpu").and_then(|q| quantity::parse_cpu_millis(&q).ok()),
        memory_bytes: limit("memory").and_then(|q| quantity::parse_bytes(&q).ok()),
    }
}

/// The container's declared ports (validation has already refused numbers out of range and
/// unknown protocols; such a port would be left out here).
fn ports(container: &Container) -> Vec<ContainerPort> {
    container
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            let protocol = match p.protocol.as_deref().unwrap_or("TCP") {
                "TCP" => Protocol::Tcp,
                "UDP" => Protocol::Udp,
                "SCTP" => Protocol::Sctp,
                _ => return None,
            };
            let port = u16::try_from(p.container_port).ok().filter(|p| *p != 0)?;
            Some(ContainerPort { port, protocol })
        })
        .collect()
}

fn security(pod: Option<&PodSpec>, container: &Container) -> SecurityContext {
    let pod = pod.and_then(|s| s.security_context.as_ref());
    let own = container.security_context.as_ref();
    SecurityContext {
        run_as_user: own
            .and_then(|c| c.run_as_user)
            .or_else(|| pod.and_then(|p| p.run_as_user)),
        run_as_group: own
            .and_then(|c| c.run_as_group)
            .or_else(|| pod.and_then(|p| p.run_as_group)),
        read_only_root_filesystem: own
            .and_then(|c| c.read_only_root_filesystem)
            .unwrap_or(false),
        privileged: own.and_then(|c| c.privileged).unwrap_or(false),
        capabilities_add: capabilities(own, |c| c.add.as_ref()),
        capabilities_drop: capabilities(own, |c| c.drop.as_ref()),
        allow_privilege_escalation: own.and_then(|c| c.allow_privilege_escalation),
        seccomp: own
            .and_then(|c| c.seccomp_profile.as_ref())
            .or_else(|| pod.and_then(|p| p.seccomp_profile.as_ref()))
            .map_or(SeccompProfile::RuntimeDefault, seccomp),
        unmasked_proc: own.and_then(|c| c.proc_mount.as_deref()) == Some("Unmasked"),
    }
}

fn capabilities(
    own: Option<&skiff_api::k8s_openapi::api::core::v1::SecurityContext>,
    list: impl Fn(&Capabilities) -> Option<&Vec<String>>,
) -> Vec<String> {
    own.and_then(|c| c.capabilities.as_ref())
        .and_then(list)
        .cloned()
        .unwrap_or_default()
}

/// A validated profile (validation refused unknown types and a Localhost without a file).
fn seccomp(profile: &skiff_api::k8s_openapi::api::core::v1::SeccompProfile) -> SeccompProfile {
    match profile.type_.as_str() {
        "Unconfined" => SeccompProfile::Unconfined,
        "Localhost" => {
            SeccompProfile::Localhost(profile.localhost_profile.clone().unwrap_or_default())
        }
        _ => SeccompProfile::RuntimeDefault,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// Name, pod command, pod args, and the (command, args) to run.
    type Case<'a> = (
        &'a str,
        Option<&'a [String]>,
        Option<&'a [String]>,
        (&'a [&'a str], &'a [&'a str]),
    );

    #[test]
    fn command_and_args_merge_as_kubernetes_does() {
        let image = ImageConfig {
            entrypoint: strings(&["/entry"]),
            cmd: strings(&["--default"]),
            ..Default::default()
        };
        let command = strings(&["/mine"]);
        let args = strings(&["--mine"]);
        let cases: [Case; 5] = [
            (
                "neither: the image's",
                None,
                None,
                (&["/entry"], &["--default"]),
            ),
            (
                "command replaces both",
                Some(&command),
                None,
                (&["/mine"], &[]),
            ),
            (
                "args replace cmd only",
                None,
                Some(&args),
                (&["/entry"], &["--mine"]),
            ),
            (
                "both: the pod's",
                Some(&command),
                Some(&args),
                (&["/mine"], &["--mine"]),
            ),
            (
                "empty command is unset",
                Some(&[]),
                None,
                (&["/entry"], &["--default"]),
            ),
        ];
        for (name, command, args, (want_command, want_args)) in cases {
            assert_eq!(
                command_and_args(command, args, &image),
                (strings(want_command), strings(want_args)),
                "{name}"
            );
        }
    }

    #[test]
    fn container_env_overrides_the_image_env() {
        let image = vec![
            ("PATH".to_string(), "/bin".to_string()),
            ("MODE".to_string(), "image".to_string()),
        ];
        let container = vec![("MODE".to_string(), "pod".to_string())];
        assert_eq!(
            merge_env(&image, container),
            vec![
                ("PATH".to_string(), "/bin".to_string()),
                ("MODE".to_string(), "pod".to_string())
            ]
        );
    }

    #[test]
    fn builds_from_pod_and_image() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "uid": "u1"},
            "spec": {
                "securityContext": {"runAsUser": 1000, "runAsGroup": 3000,
                    "seccompProfile": {"type": "Localhost", "localhostProfile": "pod.json"}},
                "containers": [{
                    "name": "c", "image": "file:/x.wasm", "args": ["a", "$(WEB_SERVICE_HOST):$(NONE)"],
                    "securityContext": {"runAsUser": 2000, "readOnlyRootFilesystem": true,
                        "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]},
                        "allowPrivilegeEscalation": false, "procMount": "Unmasked"},
                    "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}},
                    "ports": [{"containerPort": 8080}, {"containerPort": 53, "protocol": "UDP"}]
                }]
            }
        }))
        .expect("pod");
        let spec = &pod.spec.as_ref().expect("spec").containers[0];
        let image = ImageRef {
            reference: "file:/x.wasm".into(),
            digest: "sha256:00".into(),
            size: 1,
            config: ImageConfig {
                working_dir: Some("/work".into()),
                ..Default::default()
            },
            content: "/blobs/00".into(),
            layers: Vec::new(),
        };
        let env = vec![("WEB_SERVICE_HOST".to_string(), "10.43.0.9".to_string())];
        let config = build(&pod, spec, image, env, 2, vec![]);
        assert_eq!(config.args, strings(&["a", "10.43.0.9:$(NONE)"]));
        assert_eq!(config.working_dir.as_deref(), Some("/work"));
        assert_eq!(config.log_path, std::path::Path::new("c/2.log"));
        assert_eq!(
            config.ports,
            vec![
                ContainerPort {
                    port: 8080,
                    protocol: Protocol::Tcp
                },
                ContainerPort {
                    port: 53,
                    protocol: Protocol::Udp
                }
            ]
        );
        assert_eq!(
            config.resources,
            ContainerResources {
                cpu_millis: Some(250),
                memory_bytes: Some(64 << 20)
            }
        );
        assert_eq!(
            config.security,
            SecurityContext {
                run_as_user: Some(2000),
                run_as_group: Some(3000),
                read_only_root_filesystem: true,
                privileged: false,
                capabilities_add: strings(&["NET_ADMIN"]),
                capabilities_drop: strings(&["ALL"]),
                allow_privilege_escalation: Some(false),
                seccomp: SeccompProfile::Localhost("pod.json".into()),
                unmasked_proc: true,
            }
        );
    }
}
