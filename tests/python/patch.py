"""Patches: the client's default for a dict body (strategic merge), JSON merge and JSON
patch through `_content_type`, and a list body (JSON patch by default). Arguments: the
namespace, a Deployment and a ConfigMap the test made."""

from kubernetes import client

from common import connect, emit

[namespace, deployment, configmap] = connect()
core, apps = client.CoreV1Api(), client.AppsV1Api()

# Strategic merge: containers merge by name, env by name; the `app` container keeps its
# image and its env A although the patch names neither.
strategic = apps.patch_namespaced_deployment(
    deployment,
    namespace,
    {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "B", "value": "2"}]},
    ]}}}},
)
merged = core.patch_namespaced_config_map(
    configmap,
    namespace,
    {"data": {"drop": None, "added": "yes"}},
    _content_type="application/merge-patch+json",
)
json_patched = core.patch_namespaced_config_map(
    configmap,
    namespace,
    [{"op": "replace", "path": "/data/keep", "value": "changed"}],
    _content_type="application/json-patch+json",
)
default_list = core.patch_namespaced_config_map(
    configmap,
    namespace,
    [{"op": "add", "path": "/metadata/labels", "value": {"patched": "json"}}],
)
app = strategic.spec.template.spec.containers[0]
emit({
    "containers": [c.name for c in strategic.spec.template.spec.containers],
    "app_image": app.image,
    "app_env": [[e.name, e.value] for e in app.env],
    "merged": merged.data,
    "json_patched": json_patched.data,
    "default_list_labels": default_list.metadata.labels,
})
