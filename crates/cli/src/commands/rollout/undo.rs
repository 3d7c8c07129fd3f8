//! `skiff rollout undo`: copy an earlier revision's pod template (and change-cause) back into
//! the Deployment, as kubectl does on the client; the controller then finds that revision's
//! ReplicaSet and rolls it forward as a new revision.

use skiff_api::k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use skiff_api::k8s_openapi::api::core::v1::PodTemplateSpec;
use skiff_client::Api;
use skiff_control_plane::controllers::deployment::{CHANGE_CAUSE_ANNOTATION, TEMPLATE_HASH_LABEL};

use super::{is_paused, revisions};

/// Tries of the read-modify-write before giving up on conflicting writers.
const ATTEMPTS: usize = 5;

pub async fn run(
    api: &Api<Deployment>,
    replicasets: &Api<ReplicaSet>,
    name: &str,
    to_revision: i64,
) -> anyhow::Result<()> {
    for _ in 0..ATTEMPTS {
        let deployment = api.get(name).await?;
        if is_paused(&deployment) {
            anyhow::bail!(
                "you cannot roll back a paused deployment; resume it first with \
                 skiff rollout resume deployment/{name} and try again"
            );
        }
        let history = revisions(replicasets, &deployment).await?;
        let (revision, rs) = pick(&history, to_revision)?;
        let Some(next) = rolled_back(&deployment, rs) else {
            println!(
                "deployment.apps/{name} skipped rollback (current template already matches revision {revision})"
            );
            return Ok(());
        };
        match api.replace(name, &next).await {
            Ok(_) => {
                println!("deployment.apps/{name} rolled back");
                return Ok(());
            }
            Err(err) if err.is_conflict() => continue,
            Err(err) => return Err(err.into()),
        }
    }
    anyhow::bail!("deployment.apps/{name} kept changing: try the rollback again")
}

/// The ReplicaSet of `to_revision`, or (0) of the revision before the newest.
fn pick(history: &[(i64, ReplicaSet)], to_revision: i64) -> anyhow::Result<(i64, &ReplicaSet)> {
    let found = if to_revision == 0 {
        let mut revisions = history.iter().rev().filter(|(r, _)| *r > 0);
        revisions.next();
        revisions.next().ok_or_else(|| {
            anyhow::anyhow!("no rollout history found: there is no previous revision")
        })?
    } else {
        history
            .iter()
            .find(|(r, _)| *r == to_revision)
            .ok_or_else(|| {
                anyhow::anyhow!("unable to find the specified revision {to_revision} in history")
            })?
    };
    Ok((found.0, &found.1))
}

/// The Deployment with `rs`'s template and change-cause, or `None` if it already has them.
fn rolled_back(deployment: &Deployment, rs: &ReplicaSet) -> Option<Deployment> {
    let mut template: PodTemplateSpec = rs.spec.as_ref()?.template.clone()?;
    if let Some(meta) = template.metadata.as_mut() {
        if let Some(labels) = meta.labels.as_mut() {
            labels.remove(TEMPLATE_HASH_LABEL);
        }
    }
    let mut next = deployment.clone();
    let spec = next.spec.as_mut()?;
    if spec.template == template {
        return None;
    }
    spec.template = template;
    let annotations = next
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    match rs
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CHANGE_CAUSE_ANNOTATION))
    {
        Some(cause) => annotations.insert(CHANGE_CAUSE_ANNOTATION.into(), cause.clone()),
        None => annotations.remove(CHANGE_CAUSE_ANNOTATION),
    };
    next.status = None;
    Some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rs(image: &str, cause: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"annotations": {CHANGE_CAUSE_ANNOTATION: cause}},
            "spec": {"selector": {}, "template": {
                "metadata": {"labels": {"app": "web", TEMPLATE_HASH_LABEL: "abc"}},
                "spec": {"containers": [{"name": "c", "image": image}]}}}
        }))
        .expect("rs")
    }

    fn deployment(image: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "annotations": {CHANGE_CAUSE_ANNOTATION: "now"}},
            "spec": {"selector": {}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]}}}
        }))
        .expect("deployment")
    }

    #[test]
    fn picks_the_previous_or_the_named_revision() {
        let history = [(1, rs("v1", "a")), (2, rs("v2", "b")), (3, rs("v3", "c"))];
        assert_eq!(pick(&history, 0).expect("previous").0, 2);
        assert_eq!(pick(&history, 1).expect("named").0, 1);
        assert!(pick(&history, 7).is_err());
        assert!(pick(&history[..1], 0).is_err(), "only one revision");
    }

    #[test]
    fn copies_the_template_without_its_hash_and_the_change_cause() {
        let back = rolled_back(&deployment("v3"), &rs("v1", "first")).expect("changed");
        let template = back.spec.expect("spec").template;
        assert_eq!(template, deployment("v1").spec.expect("spec").template);
        assert_eq!(
            back.metadata.annotations.expect("annotations")[CHANGE_CAUSE_ANNOTATION],
            "first"
        );
        assert!(rolled_back(&deployment("v1"), &rs("v1", "first")).is_none());
    }
}
