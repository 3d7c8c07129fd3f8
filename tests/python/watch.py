"""Watches ConfigMaps with `watch.Watch().stream(list_namespaced_config_map, ...)`. Prints
each event as it comes (`{"type", "name", "resourceVersion", "data"}`), stops at the first
DELETED, then resumes from the resourceVersion of the first ADDED of the object the test
made after the watch started and prints what that second watch replays, up to the same
DELETED. Arguments: the namespace, the name of that object."""

from kubernetes import client, watch

from common import connect, emit

[namespace, watched] = connect()
core = client.CoreV1Api()


def event(raw):
    obj = raw["object"]
    return {
        "type": raw["type"],
        "name": obj.metadata.name,
        "resourceVersion": obj.metadata.resource_version,
        "data": obj.data,
    }


live = watch.Watch()
resume_from = None
for raw in live.stream(core.list_namespaced_config_map, namespace, timeout_seconds=60):
    seen = event(raw)
    emit(seen)
    if seen["name"] == watched and seen["type"] == "ADDED" and resume_from is None:
        resume_from = seen["resourceVersion"]
    if seen["type"] == "DELETED":
        live.stop()

# The replay ends at the watched object's DELETED; the timeout is only a safety net.
replay = watch.Watch()
replayed = []
for raw in replay.stream(
    core.list_namespaced_config_map,
    namespace,
    resource_version=resume_from,
    timeout_seconds=60,
):
    replayed.append(event(raw))
    if replayed[-1]["type"] == "DELETED" and replayed[-1]["name"] == watched:
        replay.stop()
emit({"resumed_from": resume_from, "replayed": replayed, "last_seen": live.resource_version})
