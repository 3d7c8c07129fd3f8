//! `skiff auth can-i --list [-n NS]`: what the current user (or the one `--as` names) may do
//! in a namespace, from a SelfSubjectRulesReview, printed as `kubectl auth can-i --list`
//! prints it: one row per resource (`deployments.apps`) and resource names with the verbs
//! merged, then one row per non-resource URL.

use serde_json::Value;

use crate::cli::ClientOpts;

pub async fn list(opts: &ClientOpts) -> anyhow::Result<()> {
    let status = super::client(opts)?.rules_review(&opts.namespace).await?;
    print!("{}", table(&status));
    if status["incomplete"].as_bool() == Some(true) {
        let why = status["evaluationError"]
            .as_str()
            .unwrap_or("no reason given");
        eprintln!("warning: the list may be incomplete: {why}");
    }
    Ok(())
}

/// A resource as printed (`deployments.apps`) with the resource names a rule lists.
type Row = (String, Vec<String>);

/// The rows of a review's `status`, as kubectl's columns.
fn table(status: &Value) -> String {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let bracketed = |v: &[String]| format!("[{}]", v.join(" "));
    // (resource, resource names) -> verbs, in first-seen order.
    let mut resources: Vec<(Row, Vec<String>)> = Vec::new();
    for rule in status["resourceRules"].as_array().into_iter().flatten() {
        let verbs = strings(&rule["verbs"]);
        let names = strings(&rule["resourceNames"]);
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                let shown = if group.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}.{group}")
                };
                let key = (shown, names.clone());
                let at = match resources.iter().position(|(k, _)| *k == key) {
                    Some(at) => at,
                    None => {
                        resources.push((key, Vec::new()));
                        resources.len() - 1
                    }
                };
                let merged = &mut resources[at].1;
                for verb in &verbs {
                    if !merged.contains(verb) {
                        merged.push(verb.clone());
                    }
                }
            }
        }
    }
    resources.sort_by(|a, b| a.0.cmp(&b.0));
    let mut rows: Vec<Vec<String>> = resources
        .into_iter()
        .map(|((resource, names), verbs)| {
            vec![resource, "[]".into(), bracketed(&names), bracketed(&verbs)]
        })
        .collect();
    for rule in status["nonResourceRules"].as_array().into_iter().flatten() {
        let verbs = strings(&rule["verbs"]);
        for url in strings(&rule["nonResourceURLs"]) {
            rows.push(vec![
                String::new(),
                format!("[{url}]"),
                "[]".into(),
                bracketed(&verbs),
            ]);
        }
    }
    crate::output::table::render(
        &["Resources", "Non-Resource URLs", "Resource Names", "Verbs"],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rows_merge_verbs_per_resource_and_list_urls() {
        let status = json!({
            "resourceRules": [
                {"verbs": ["get", "list"], "apiGroups": ["", "apps"], "resources": ["pods"]},
                {"verbs": ["watch", "get"], "apiGroups": [""], "resources": ["pods"]},
                {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["tls"]},
            ],
            "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/api/*"]}],
        });
        let printed = table(&status);
        let rows: Vec<Vec<&str>> = printed
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows,
            [
                vec![
                    "Resources",
                    "Non-Resource",
                    "URLs",
                    "Resource",
                    "Names",
                    "Verbs"
                ],
                vec!["pods", "[]", "[]", "[get", "list", "watch]"],
                vec!["pods.apps", "[]", "[]", "[get", "list]"],
                vec!["secrets", "[]", "[tls]", "[get]"],
                vec!["[/healthz]", "[]", "[get]"],
                vec!["[/api/*]", "[]", "[get]"],
            ]
        );
    }
}
