"""Lists: CoreV1 pods and configmaps, AppsV1 deployments (in a namespace and in all of
them), label selectors, and `limit`/`_continue` paging; and the typed reads a client starts
with (`VersionApi`, `ApisApi`). Argument: the namespace."""

from kubernetes import client

from common import connect, emit, names

[namespace] = connect()
core, apps = client.CoreV1Api(), client.AppsV1Api()

pages = []
token = None
while True:
    page = core.list_namespaced_config_map(namespace, limit=2, _continue=token)
    token = page.metadata._continue
    pages.append({
        "names": names(page.items),
        "continue": token,
        "remaining": page.metadata.remaining_item_count,
        "resourceVersion": page.metadata.resource_version,
    })
    if not token:
        break

emit({
    "version": client.VersionApi().get_code().git_version,
    "groups": [group.name for group in client.ApisApi().get_api_versions().groups],
    "core_versions": client.CoreApi().get_api_versions().versions,
    "apps_resources": [r.name for r in client.AppsV1Api().get_api_resources().resources],
    "pods": names(core.list_namespaced_pod(namespace).items),
    "pod_phases": [pod.status.phase for pod in core.list_namespaced_pod(namespace).items],
    "configmaps": names(core.list_namespaced_config_map(namespace).items),
    "tier_a": names(core.list_namespaced_config_map(namespace, label_selector="tier=a").items),
    "tier_not_a": names(
        core.list_namespaced_config_map(namespace, label_selector="tier,tier!=a").items
    ),
    "tier_in": names(
        core.list_namespaced_config_map(namespace, label_selector="tier in (a,b)").items
    ),
    "deployments": names(apps.list_namespaced_deployment(namespace).items),
    "deployments_everywhere": [
        [d.metadata.namespace, d.metadata.name]
        for d in apps.list_deployment_for_all_namespaces().items
    ],
    "pages": pages,
})
