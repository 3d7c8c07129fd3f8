"""Replace (and a replace at a stale resourceVersion), `read_namespaced_deployment_status`,
`read_namespaced_deployment_scale`, `patch_namespaced_deployment_scale` and
`replace_namespaced_deployment_scale`. Arguments: the namespace, a Deployment the test made."""

from kubernetes import client
from kubernetes.client.exceptions import ConflictException

from common import api_error, connect, emit

[namespace, name] = connect()
apps = client.AppsV1Api()

current = apps.read_namespaced_deployment(name, namespace)
stale = current.metadata.resource_version
current.spec.template.spec.containers[0].image = "registry.example/app:2"
replaced = apps.replace_namespaced_deployment(name, namespace, current)
current.metadata.resource_version = stale
conflict = api_error(lambda: apps.replace_namespaced_deployment(name, namespace, current))

status = apps.read_namespaced_deployment_status(name, namespace)
scale = apps.read_namespaced_deployment_scale(name, namespace)
patched_scale = apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": 2}})
patched_replicas = patched_scale.spec.replicas
# The Scale carries the Deployment's resourceVersion, which its controller moves on as it
# writes status: read, change, replace, and on a 409 read again (as any client does).
for attempt in range(10):
    fresh = apps.read_namespaced_deployment_scale(name, namespace)
    fresh.spec.replicas = 3
    try:
        replaced_scale = apps.replace_namespaced_deployment_scale(name, namespace, fresh)
        break
    except ConflictException:
        if attempt == 9:
            raise

emit({
    "replaced": {
        "image": replaced.spec.template.spec.containers[0].image,
        "generation": replaced.metadata.generation,
        "resourceVersion": replaced.metadata.resource_version,
    },
    "stale": stale,
    "conflict": conflict,
    "status": {
        "observedGeneration": status.status.observed_generation,
        "conditions": [c.type for c in status.status.conditions or []],
    },
    "scale": {"kind": scale.kind, "replicas": scale.spec.replicas, "selector": scale.status.selector},
    "patched_scale": patched_replicas,
    "replaced_scale": replaced_scale.spec.replicas,
})
