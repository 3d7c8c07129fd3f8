//! `skiff rollout status statefulset/NAME`: a StatefulSet's progress, worded as kubectl's.

use skiff_api::k8s_openapi::api::apps::v1::StatefulSet;

use super::status::{Progress, Rollout};

impl Rollout for StatefulSet {
    fn progress(&self) -> anyhow::Result<Progress> {
        let spec = self.spec.clone().unwrap_or_default();
        let status = self.status.clone().unwrap_or_default();
        let strategy = spec.update_strategy.unwrap_or_default();
        if strategy.type_.as_deref() == Some("OnDelete") {
            anyhow::bail!("rollout status is only available for RollingUpdate strategy type");
        }
        if self.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
            return Ok(Progress::Waiting(
                "Waiting for statefulset spec update to be observed...".into(),
            ));
        }
        let replicas = spec.replicas.unwrap_or(1);
        let ready = status.ready_replicas.unwrap_or(0);
        if ready < replicas {
            return Ok(Progress::Waiting(format!(
                "Waiting for {} pods to be ready...",
                replicas - ready
            )));
        }
        let updated = status.updated_replicas.unwrap_or(0);
        let partition = strategy
            .rolling_update
            .and_then(|r| r.partition)
            .unwrap_or(0);
        if partition > 0 {
            let target = (replicas - partition).max(0);
            if updated < target {
                return Ok(Progress::Waiting(format!(
                    "Waiting for partitioned roll out to finish: {updated} out of {target} new pods have been updated..."
                )));
            }
            return Ok(Progress::Done(format!(
                "partitioned roll out complete: {updated} new pods have been updated..."
            )));
        }
        let update = status.update_revision.unwrap_or_default();
        if status.current_revision.as_deref() != Some(update.as_str()) {
            return Ok(Progress::Waiting(format!(
                "waiting for statefulset rolling update to complete {updated} pods at revision {update}..."
            )));
        }
        Ok(Progress::Done(format!(
            "statefulset rolling update complete {} pods at revision {update}...",
            status.current_replicas.unwrap_or(0)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sts(strategy: serde_json::Value, status: serde_json::Value) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "db", "generation": 2},
            "spec": {"replicas": 3, "serviceName": "db", "selector": {}, "template": {},
                "updateStrategy": strategy},
            "status": status,
        }))
        .expect("sts")
    }

    #[test]
    fn progress_reads_like_kubectl() {
        let rolling = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}});
        let partitioned = json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 1}});
        let counts = |ready: i32, updated: i32, current: &str| {
            json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": ready,
                "updatedReplicas": updated, "currentReplicas": 3 - updated,
                "currentRevision": current, "updateRevision": "db-new"})
        };
        let waiting = |t: &str| Progress::Waiting(t.into());
        let cases = [
            ("not observed", sts(rolling.clone(), json!({"observedGeneration": 1})),
                waiting("Waiting for statefulset spec update to be observed...")),
            ("not ready", sts(rolling.clone(), counts(1, 0, "db-old")),
                waiting("Waiting for 2 pods to be ready...")),
            ("rolling", sts(rolling.clone(), counts(3, 1, "db-old")),
                waiting("waiting for statefulset rolling update to complete 1 pods at revision db-new...")),
            ("partition pending", sts(partitioned.clone(), counts(3, 1, "db-old")),
                waiting("Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...")),
            ("partition done", sts(partitioned, counts(3, 2, "db-old")),
                Progress::Done("partitioned roll out complete: 2 new pods have been updated...".into())),
        ];
        for (case, set, want) in cases {
            assert_eq!(set.progress().expect(case), want, "{case}");
        }
        let mut done = sts(rolling, counts(3, 3, "db-new"));
        done.status.as_mut().expect("status").current_replicas = Some(3);
        assert_eq!(
            done.progress().expect("done"),
            Progress::Done(
                "statefulset rolling update complete 3 pods at revision db-new...".into()
            )
        );
        let on_delete = sts(json!({"type": "OnDelete"}), counts(3, 0, "db-old"));
        assert!(on_delete.progress().is_err());
    }
}
