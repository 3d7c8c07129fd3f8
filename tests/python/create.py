"""Creates through the typed models: a ConfigMap, a Secret with `string_data`, a Deployment
and a Namespace (`NAMESPACE-extra`). Argument: the namespace."""

from kubernetes import client

from common import connect, emit, meta

[namespace] = connect()
core, apps = client.CoreV1Api(), client.AppsV1Api()

configmap = core.create_namespaced_config_map(
    namespace, client.V1ConfigMap(metadata=meta("settings", {"app": "web"}), data={"mode": "fast"})
)
secret = core.create_namespaced_secret(
    namespace,
    client.V1Secret(metadata=meta("credentials"), string_data={"password": "hunter2"}),
)
container = client.V1Container(
    name="app",
    image="registry.example/app:1",
    env=[client.V1EnvVar(name="MODE", value="fast")],
    ports=[client.V1ContainerPort(container_port=8080, name="http")],
)
deployment = apps.create_namespaced_deployment(
    namespace,
    client.V1Deployment(
        metadata=meta("web", {"app": "web"}),
        spec=client.V1DeploymentSpec(
            replicas=0,
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=meta(None, {"app": "web"}),
                spec=client.V1PodSpec(containers=[container]),
            ),
        ),
    ),
)

extra = core.create_namespace(client.V1Namespace(metadata=meta(namespace + "-extra")))

emit({
    "namespace": {"name": extra.metadata.name, "phase": extra.status.phase},
    "configmap": {"uid": configmap.metadata.uid, "data": configmap.data},
    "secret": {"uid": secret.metadata.uid, "data": secret.data},
    "deployment": {
        "uid": deployment.metadata.uid,
        "generation": deployment.metadata.generation,
        "image": deployment.spec.template.spec.containers[0].image,
        "strategy": deployment.spec.strategy.type,
    },
})
