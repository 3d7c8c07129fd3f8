//! Tables of objects with the columns `kubectl get -o wide` shows (`skiff_api::printers`, the
//! same the API's Table responses use), a NAMESPACE column first across namespaces as with
//! `kubectl get -A`, and the labels last.

use maud::{html, Markup};
use serde_json::Value;
use skiff_api::printers::columns;

/// How a table names its objects.
pub struct TableOptions {
    /// Shows the NAMESPACE column (a list across namespaces).
    pub namespace_column: bool,
    /// Links each name to the object's page (pods).
    pub link: Option<fn(&Value) -> String>,
}

/// A table of `items` of `kind` (`Pod`, `Deployment`, ...).
pub fn objects(kind: &str, items: &[Value], options: &TableOptions) -> Markup {
    let name_at = usize::from(options.namespace_column);
    html! {
        table.objects data-kind=(kind) {
            thead {
                tr { @for name in header(kind, options) { th { (name) } } }
            }
            tbody {
                @for item in items {
                    tr {
                        @for (i, cell) in cells(kind, item, options).into_iter().enumerate() {
                            @match options.link {
                                Some(link) if i == name_at => td { a href=(link(item)) { (cell) } },
                                _ => td { (cell) },
                            }
                        }
                    }
                }
            }
        }
        @if items.is_empty() {
            p.empty { "No resources found." }
        }
    }
}

/// The column names of a table of `kind`.
pub fn header(kind: &str, options: &TableOptions) -> Vec<&'static str> {
    let mut header = Vec::new();
    if options.namespace_column {
        header.push("NAMESPACE");
    }
    header.extend(columns::for_kind(kind, true).header);
    if shows_labels(kind) {
        header.push("LABELS");
    }
    header
}

/// One object's row, as text (maud escapes it; the live events script sets it as text).
pub fn cells(kind: &str, item: &Value, options: &TableOptions) -> Vec<String> {
    let mut cells = Vec::new();
    if options.namespace_column {
        cells.push(text(item, "/metadata/namespace").to_string());
    }
    cells.extend((columns::for_kind(kind, true).row)(item, true));
    if shows_labels(kind) {
        cells.push(labels(item));
    }
    cells
}

/// Events carry no labels worth a column.
fn shows_labels(kind: &str) -> bool {
    kind != "Event"
}

/// Sorts events oldest first, by when they were last seen.
pub fn sort_events(events: &mut [Value]) {
    events.sort_by_key(|e| {
        text(e, "/lastTimestamp")
            .max(text(e, "/metadata/creationTimestamp"))
            .to_string()
    });
}

/// `key=value,...` of an object's labels, sorted (`<none>` without any).
pub fn labels(item: &Value) -> String {
    let Some(labels) = item.pointer("/metadata/labels").and_then(Value::as_object) else {
        return "<none>".into();
    };
    let mut pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

/// A string field of an object, or empty.
pub fn text<'a>(item: &'a Value, pointer: &str) -> &'a str {
    item.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The dashboard page of a pod.
pub fn pod_link(pod: &Value) -> String {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "/ui/namespaces/{}/pods/{}",
        encode(text(pod, "/metadata/namespace")),
        encode(text(pod, "/metadata/name"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_labels_are_escaped() {
        let pod = json!({
            "metadata": {"name": "web<b>", "namespace": "default",
                         "labels": {"evil": "<script>alert(1)</script>"},
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Running"},
        });
        let options = TableOptions {
            namespace_column: true,
            link: Some(pod_link),
        };
        let html = objects("Pod", &[pod], &options).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("evil=&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("web&lt;b&gt;"), "{html}");
        assert!(
            html.contains("href=\"/ui/namespaces/default/pods/web%3Cb%3E\""),
            "{html}"
        );
        assert!(html.contains("<th>RESTARTS</th>"), "{html}");
        assert!(html.contains("<td>Running</td>"), "{html}");
    }

    #[test]
    fn an_empty_list_says_so() {
        let options = TableOptions {
            namespace_column: false,
            link: None,
        };
        let html = objects("Deployment", &[], &options).into_string();
        assert!(html.contains("No resources found."), "{html}");
        assert!(html.contains("<th>UP-TO-DATE</th>"), "{html}");
    }
}
