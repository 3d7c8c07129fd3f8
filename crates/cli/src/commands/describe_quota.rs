//! `skiff describe resourcequota|limitrange`: the tables kubectl shows for them.

use std::collections::BTreeSet;

use serde_json::Value;

fn text(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or("-").to_string()
}

/// A quota's `Resource  Used  Hard` table.
pub fn quota_lines(quota: &Value) -> Vec<String> {
    let mut out = vec![format!("{:<24}{:<12}Hard", "Resource", "Used")];
    out.push(format!("{:<24}{:<12}----", "--------", "----"));
    for (resource, hard) in quota
        .pointer("/spec/hard")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let used = quota
            .pointer("/status/used")
            .and_then(|u| u.get(resource))
            .and_then(Value::as_str)
            .unwrap_or("0");
        out.push(format!("{resource:<24}{used:<12}{}", text(Some(hard))));
    }
    out
}

/// A LimitRange's `Type  Resource  Min  Max  Default Request  Default Limit  Max Ratio` table.
pub fn limit_range_lines(range: &Value) -> Vec<String> {
    const FIELDS: [&str; 5] = [
        "min",
        "max",
        "defaultRequest",
        "default",
        "maxLimitRequestRatio",
    ];
    let row = |cells: [&str; 7]| {
        format!(
            "{:<10}{:<10}{:<8}{:<8}{:<17}{:<15}{}",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6]
        )
    };
    let mut out = vec![row([
        "Type",
        "Resource",
        "Min",
        "Max",
        "Default Request",
        "Default Limit",
        "Max Limit/Request Ratio",
    ])];
    for item in range
        .pointer("/spec/limits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let resources: BTreeSet<&String> = FIELDS
            .iter()
            .filter_map(|f| item.get(*f).and_then(Value::as_object))
            .flat_map(|m| m.keys())
            .collect();
        for resource in resources {
            let cell = |f: &str| text(item.get(f).and_then(|m| m.get(resource.as_str())));
            let cells = FIELDS.map(cell);
            out.push(row([
                item.get("type").and_then(Value::as_str).unwrap_or_default(),
                resource,
                &cells[0],
                &cells[1],
                &cells[2],
                &cells[3],
                &cells[4],
            ]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn quota_table_shows_used_over_hard() {
        let q = json!({"spec": {"hard": {"pods": "2"}}, "status": {"used": {"pods": "1"}}});
        let lines = quota_lines(&q);
        assert_eq!(lines.len(), 3);
        assert!(lines[2].starts_with("pods"), "{lines:?}");
        assert!(
            lines[2].contains(" 1 ") && lines[2].ends_with('2'),
            "{lines:?}"
        );
    }

    #[test]
    fn limit_range_table_has_a_row_per_resource() {
        let r = json!({"spec": {"limits": [{"type": "Container",
                                            "max": {"memory": "512Mi"},
                                            "default": {"cpu": "500m"}}]}});
        let lines = limit_range_lines(&r);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[1].starts_with("Container cpu"), "{lines:?}");
        assert!(lines[2].contains("512Mi"), "{lines:?}");
    }
}
