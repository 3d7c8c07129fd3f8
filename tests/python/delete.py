"""Deletes: `V1DeleteOptions(propagation_policy=...)` in the body (Background for a
ConfigMap, Orphan and Foreground for Deployments), a dry run, and
`delete_collection_namespaced_config_map` with a label selector. Arguments: the namespace,
then the names of a ConfigMap, a Deployment to orphan and one to delete in the foreground."""

from kubernetes import client

from common import api_error, connect, emit, names

[namespace, configmap, orphaned, foreground] = connect()
core, apps = client.CoreV1Api(), client.AppsV1Api()

core.delete_namespaced_config_map(configmap, namespace, dry_run="All")
still_there = core.read_namespaced_config_map(configmap, namespace).metadata.name
deleted = core.delete_namespaced_config_map(
    configmap, namespace, body=client.V1DeleteOptions(propagation_policy="Background")
)
gone = api_error(lambda: core.read_namespaced_config_map(configmap, namespace))

apps.delete_namespaced_deployment(
    orphaned, namespace, body=client.V1DeleteOptions(propagation_policy="Orphan")
)
pending = apps.delete_namespaced_deployment(
    foreground, namespace, body=client.V1DeleteOptions(propagation_policy="Foreground")
)

collection = core.delete_collection_namespaced_config_map(namespace, label_selector="batch=old")
emit({
    "still_there": still_there,
    "gone": gone["status"],
    "deleted": [deleted["status"], deleted["details"]["name"], deleted["details"]["kind"]],
    "foreground_finalizers": pending["metadata"].get("finalizers"),
    "foreground_deleting": "deletionTimestamp" in pending["metadata"],
    "collection_kind": collection.kind,
    "left": names(core.list_namespaced_config_map(namespace).items),
})
