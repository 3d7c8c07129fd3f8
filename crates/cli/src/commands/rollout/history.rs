//! `skiff rollout history`: a Deployment's revisions with their change-causes, or one
//! revision's pod template.

use skiff_api::k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use skiff_client::Api;
use skiff_control_plane::controllers::deployment::CHANGE_CAUSE_ANNOTATION;

use super::revisions;
use crate::output::table;

pub async fn run(
    api: &Api<Deployment>,
    replicasets: &Api<ReplicaSet>,
    name: &str,
    revision: Option<i64>,
) -> anyhow::Result<()> {
    let deployment = api.get(name).await?;
    let history = revisions(replicasets, &deployment).await?;
    match revision {
        None => {
            println!("deployment.apps/{name}");
            print!("{}", render(&history));
        }
        Some(wanted) => {
            let (_, rs) = history
                .iter()
                .find(|(r, _)| *r == wanted)
                .ok_or_else(|| anyhow::anyhow!("unable to find the specified revision {wanted}"))?;
            let template = rs.spec.as_ref().and_then(|s| s.template.clone());
            println!("deployment.apps/{name} with revision #{wanted}");
            println!("Pod Template:");
            print!("{}", serde_yaml_ng::to_string(&template)?);
        }
    }
    Ok(())
}

/// The `REVISION  CHANGE-CAUSE` table, oldest first.
fn render(history: &[(i64, ReplicaSet)]) -> String {
    let rows: Vec<Vec<String>> = history
        .iter()
        .filter(|(revision, _)| *revision > 0)
        .map(|(revision, rs)| {
            let cause = rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CHANGE_CAUSE_ANNOTATION))
                .cloned()
                .unwrap_or_else(|| "<none>".into());
            vec![revision.to_string(), cause]
        })
        .collect();
    table::render(&["REVISION", "CHANGE-CAUSE"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_lists_revisions_and_causes() {
        let rs = |cause: Option<&str>| -> ReplicaSet {
            let annotations = match cause {
                Some(c) => json!({CHANGE_CAUSE_ANNOTATION: c}),
                None => json!({}),
            };
            serde_json::from_value(json!({"metadata": {"annotations": annotations}})).expect("rs")
        };
        let out = render(&[(1, rs(None)), (2, rs(Some("image v2")))]);
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines,
            vec![
                vec!["REVISION", "CHANGE-CAUSE"],
                vec!["1", "<none>"],
                vec!["2", "image", "v2"]
            ]
        );
    }
}
