//! The shape of a core/v1 Event, shared by every component that records one.

use serde_json::{json, Value};

/// The object an event is about.
pub struct InvolvedObject<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub uid: Option<&'a str>,
}

/// Who records an event (`source.component`, `source.host`).
pub struct EventSource<'a> {
    pub component: &'a str,
    pub host: Option<&'a str>,
}

/// A new Event (`type` Normal or Warning) named after its object, in the object's namespace
/// (`default` for cluster-scoped objects), stamped `now`.
pub fn new_event(
    object: &InvolvedObject,
    source: &EventSource,
    event_type: &str,
    reason: &str,
    message: &str,
    now: &str,
) -> Value {
    let namespace = object.namespace.unwrap_or("default");
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": format!("{}.", object.name), "namespace": namespace},
        "involvedObject": {
            "apiVersion": object.api_version,
            "kind": object.kind,
            "namespace": object.namespace,
            "name": object.name,
            "uid": object.uid,
        },
        "reason": reason,
        "message": message,
        "type": event_type,
        "source": {"component": source.component, "host": source.host},
        "reportingComponent": source.component,
        "reportingInstance": source.host.unwrap_or(source.component),
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_live_with_their_object() {
        let object = InvolvedObject {
            api_version: "v1",
            kind: "Pod",
            namespace: Some("team"),
            name: "p",
            uid: Some("u"),
        };
        let event = new_event(
            &object,
            &EventSource {
                component: "kubelet",
                host: Some("n1"),
            },
            "Warning",
            "BackOff",
            "m",
            "t",
        );
        assert_eq!(event["metadata"]["namespace"], "team");
        assert_eq!(event["metadata"]["generateName"], "p.");
        assert_eq!(event["involvedObject"]["uid"], "u");
        assert_eq!(event["source"]["host"], "n1");
        let node = InvolvedObject {
            api_version: "v1",
            kind: "Node",
            namespace: None,
            name: "n1",
            uid: None,
        };
        assert_eq!(
            new_event(
                &node,
                &EventSource {
                    component: "c",
                    host: None
                },
                "Normal",
                "R",
                "m",
                "t"
            )["metadata"]["namespace"],
            "default"
        );
    }
}
