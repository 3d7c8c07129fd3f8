"""Errors: a 404, a 409 and a 422 each raise ApiException with the status and a Status body.
Argument: the namespace, which holds a ConfigMap `taken`."""

from kubernetes import client

from common import api_error, connect, emit, meta

[namespace] = connect()
core = client.CoreV1Api()

emit({
    "not_found": api_error(lambda: core.read_namespaced_config_map("missing", namespace)),
    "already_exists": api_error(
        lambda: core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=meta("taken")))
    ),
    "invalid": api_error(
        lambda: core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=meta("Not_Valid")))
    ),
})
