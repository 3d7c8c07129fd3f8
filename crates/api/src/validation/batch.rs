//! Jobs and CronJobs (batch/v1).

use std::collections::HashSet;

use k8s_openapi::api::batch::v1::{CronJob, Job, JobSpec, PodFailurePolicy};

use super::meta::{self, NameRule};
use super::pod::validate_pod_spec;
use super::{Errors, FieldErrorReason};
use crate::cron::Schedule;

/// Longest CronJob name: its Jobs append `-` and up to ten digits of the scheduled minute.
const MAX_CRONJOB_NAME: usize = 52;

pub fn validate_job(job: &Job, errors: &mut Errors) {
    meta::validate_object_meta(&job.metadata, true, NameRule::Subdomain, errors);
    match job.spec.as_ref() {
        Some(spec) => validate_job_spec(spec, "spec", errors),
        None => errors.required("spec"),
    }
}

pub fn validate_cronjob(cronjob: &CronJob, errors: &mut Errors) {
    meta::validate_object_meta(&cronjob.metadata, true, NameRule::Subdomain, errors);
    if let Some(name) = cronjob
        .metadata
        .name
        .as_deref()
        .filter(|n| n.len() > MAX_CRONJOB_NAME)
    {
        errors.invalid(
            "metadata.name",
            name,
            format!("must be no more than {MAX_CRONJOB_NAME} characters"),
        );
    }
    let Some(spec) = cronjob.spec.as_ref() else {
        return errors.required("spec");
    };
    if spec.schedule.trim().is_empty() {
        errors.required("spec.schedule");
    } else if let Err(err) = spec.schedule.parse::<Schedule>() {
        errors.invalid("spec.schedule", &spec.schedule, err);
    }
    if let Some(zone) = spec.time_zone.as_deref() {
        if jiff::tz::db().get(zone).is_err() {
            errors.invalid("spec.timeZone", zone, "unknown time zone");
        }
    }
    if let Some(policy) = spec
        .concurrency_policy
        .as_deref()
        .filter(|p| !matches!(*p, "Allow" | "Forbid" | "Replace"))
    {
        errors.push(
            "spec.concurrencyPolicy",
            FieldErrorReason::NotSupported,
            format!("{policy:?}: supported values: \"Allow\", \"Forbid\", \"Replace\""),
        );
    }
    non_negative(
        spec.starting_deadline_seconds,
        "spec.startingDeadlineSeconds",
        errors,
    );
    non_negative(
        spec.successful_jobs_history_limit.map(i64::from),
        "spec.successfulJobsHistoryLimit",
        errors,
    );
    non_negative(
        spec.failed_jobs_history_limit.map(i64::from),
        "spec.failedJobsHistoryLimit",
        errors,
    );
    match spec.job_template.spec.as_ref() {
        Some(job) => validate_job_spec(job, "spec.jobTemplate.spec", errors),
        None => errors.required("spec.jobTemplate.spec"),
    }
}

/// Most completions and parallelism an Indexed Job may have (Kubernetes'
/// `maxCompletionsForIndexedJob` and `maxParallelismForIndexedJob`).
const MAX_INDEXED: i32 = 100_000;

fn validate_job_spec(spec: &JobSpec, path: &str, errors: &mut Errors) {
    non_negative(
        spec.parallelism.map(i64::from),
        &format!("{path}.parallelism"),
        errors,
    );
    non_negative(
        spec.completions.map(i64::from),
        &format!("{path}.completions"),
        errors,
    );
    non_negative(
        spec.backoff_limit.map(i64::from),
        &format!("{path}.backoffLimit"),
        errors,
    );
    non_negative(
        spec.ttl_seconds_after_finished.map(i64::from),
        &format!("{path}.ttlSecondsAfterFinished"),
        errors,
    );
    if let Some(deadline) = spec.active_deadline_seconds.filter(|d| *d <= 0) {
        errors.invalid(
            format!("{path}.activeDeadlineSeconds"),
            deadline,
            "must be greater than 0",
        );
    }
    match spec.completion_mode.as_deref() {
        None | Some("NonIndexed") => {}
        Some("Indexed") => {
            if spec.completions.is_none() {
                errors.push(
                    format!("{path}.completions"),
                    FieldErrorReason::Required,
                    "when completion mode is Indexed",
                );
            }
            for (field, value) in [
                ("completions", spec.completions),
                ("parallelism", spec.parallelism),
            ] {
                if let Some(value) = value.filter(|v| *v > MAX_INDEXED) {
                    errors.invalid(
                        format!("{path}.{field}"),
                        value,
                        format!("must be less than or equal to {MAX_INDEXED} when completion mode is Indexed"),
                    );
                }
            }
        }
        Some(other) => errors.push(
            format!("{path}.completionMode"),
            FieldErrorReason::NotSupported,
            format!("{other:?}: supported values: \"NonIndexed\", \"Indexed\""),
        ),
    }
    if let Some(policy) = spec.pod_failure_policy.as_ref() {
        validate_pod_failure_policy(policy, &format!("{path}.podFailurePolicy"), errors);
        let restart = spec
            .template
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref());
        if let Some(restart) = restart.filter(|r| *r != "Never") {
            errors.invalid(
                format!("{path}.template.spec.restartPolicy"),
                restart,
                "only \"Never\" is supported when podFailurePolicy is specified",
            );
        }
    }
    let template = &spec.template;
    if let Some(labels) = template.metadata.as_ref().and_then(|m| m.labels.as_ref()) {
        meta::validate_labels(labels, &format!("{path}.template.metadata.labels"), errors);
    }
    let Some(pod) = template.spec.as_ref() else {
        return errors.required(format!("{path}.template.spec"));
    };
    validate_pod_spec(pod, &format!("{path}.template.spec"), errors);
    match pod.restart_policy.as_deref() {
        Some("Never" | "OnFailure") => {}
        other => errors.push(
            format!("{path}.template.spec.restartPolicy"),
            FieldErrorReason::NotSupported,
            format!(
                "{:?}: supported values: \"OnFailure\", \"Never\"",
                other.unwrap_or_default()
            ),
        ),
    }
}

fn validate_pod_failure_policy(policy: &PodFailurePolicy, path: &str, errors: &mut Errors) {
    for (i, rule) in policy.rules.iter().enumerate() {
        let at = format!("{path}.rules[{i}]");
        match rule.action.as_str() {
            "FailJob" | "Ignore" | "Count" => {}
            "FailIndex" => errors.push(
                format!("{at}.action"),
                FieldErrorReason::Forbidden,
                "The action FailIndex is only allowed when backoffLimitPerIndex is specified",
            ),
            other => errors.push(
                format!("{at}.action"),
                FieldErrorReason::NotSupported,
                format!("{other:?}: supported values: \"Count\", \"FailJob\", \"FailIndex\", \"Ignore\""),
            ),
        }
        match (rule.on_exit_codes.as_ref(), rule.on_pod_conditions.as_ref()) {
            (Some(_), Some(_)) => errors.invalid(
                &at,
                "",
                "specifying both OnExitCodes and OnPodConditions is not supported",
            ),
            (None, None) => errors.invalid(
                &at,
                "",
                "specifying one of OnExitCodes and OnPodConditions is required",
            ),
            (Some(codes), None) => {
                let field = format!("{at}.onExitCodes");
                if !matches!(codes.operator.as_str(), "In" | "NotIn") {
                    errors.push(
                        format!("{field}.operator"),
                        FieldErrorReason::NotSupported,
                        format!("{:?}: supported values: \"In\", \"NotIn\"", codes.operator),
                    );
                }
                if codes.values.is_empty() {
                    errors.push(
                        format!("{field}.values"),
                        FieldErrorReason::Invalid,
                        "at least one value is required",
                    );
                }
                let mut seen = HashSet::new();
                for (j, code) in codes.values.iter().enumerate() {
                    if *code == 0 && codes.operator == "In" {
                        errors.invalid(
                            format!("{field}.values[{j}]"),
                            code,
                            "must not be 0 for the In operator",
                        );
                    }
                    if !seen.insert(code) {
                        errors.push(
                            format!("{field}.values[{j}]"),
                            FieldErrorReason::Duplicate,
                            code.to_string(),
                        );
                    }
                }
            }
            (None, Some(patterns)) => {
                for (j, pattern) in patterns.iter().enumerate() {
                    let field = format!("{at}.onPodConditions[{j}]");
                    if pattern.type_.is_empty() {
                        errors.required(format!("{field}.type"));
                    }
                    if !matches!(pattern.status.as_str(), "" | "True" | "False" | "Unknown") {
                        errors.push(
                            format!("{field}.status"),
                            FieldErrorReason::NotSupported,
                            format!(
                                "{:?}: supported values: \"False\", \"True\", \"Unknown\"",
                                pattern.status
                            ),
                        );
                    }
                }
            }
        }
    }
}

fn non_negative(value: Option<i64>, field: &str, errors: &mut Errors) {
    if let Some(v) = value.filter(|v| *v < 0) {
        errors.invalid(field, v, "must be greater than or equal to 0");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::resources::by_name;
    use crate::validation::validate;

    fn errors(kind: &str, obj: &Value) -> Vec<String> {
        match validate(by_name(kind).expect("kind"), obj) {
            Ok(()) => vec![],
            Err(errs) => errs.iter().map(ToString::to_string).collect(),
        }
    }

    fn job_spec() -> Value {
        json!({
            "completions": 3, "parallelism": 2, "completionMode": "Indexed", "backoffLimit": 2,
            "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "work", "image": "file:/srv/work.wasm"}]}}
        })
    }

    fn job() -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"}, "spec": job_spec()})
    }

    fn cronjob() -> Value {
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
            "spec": {"schedule": "*/5 * * * *", "timeZone": "Europe/Berlin",
                "jobTemplate": {"spec": job_spec()}}})
    }

    #[test]
    fn kubernetes_jobs_and_cronjobs_are_valid() {
        assert_eq!(errors("job", &job()), Vec::<String>::new());
        assert_eq!(errors("cronjob", &cronjob()), Vec::<String>::new());
    }

    #[test]
    fn bad_jobs_name_the_field() {
        for (field, value, expected) in [
            (
                "completions",
                json!(-1),
                "spec.completions: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                "parallelism",
                json!(-2),
                "spec.parallelism: Invalid value: -2",
            ),
            (
                "backoffLimit",
                json!(-1),
                "spec.backoffLimit: Invalid value: -1",
            ),
            (
                "activeDeadlineSeconds",
                json!(0),
                "spec.activeDeadlineSeconds: Invalid value: 0: must be greater than 0",
            ),
            (
                "ttlSecondsAfterFinished",
                json!(-5),
                "spec.ttlSecondsAfterFinished: Invalid value: -5",
            ),
            (
                "completionMode",
                json!("Sometimes"),
                "spec.completionMode: Unsupported value: \"Sometimes\"",
            ),
            (
                "completions",
                Value::Null,
                "spec.completions: Required value: when completion mode is Indexed",
            ),
            ("podFailurePolicy", json!({"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [1]}}]}),
                "spec.podFailurePolicy.rules[0].action: Forbidden"),
            ("podFailurePolicy", json!({"rules": [{"action": "Retry", "onExitCodes": {"operator": "In", "values": [1]}}]}),
                "spec.podFailurePolicy.rules[0].action: Unsupported value: \"Retry\""),
            ("podFailurePolicy", json!({"rules": [{"action": "Ignore"}]}),
                "spec.podFailurePolicy.rules[0]: Invalid value: \"\": specifying one of OnExitCodes and OnPodConditions is required"),
            ("podFailurePolicy", json!({"rules": [{"action": "Count", "onExitCodes": {"operator": "In", "values": [0, 3]}}]}),
                "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator"),
            ("podFailurePolicy", json!({"rules": [{"action": "Count", "onExitCodes": {"operator": "Is", "values": [3, 3]}}]}),
                "spec.podFailurePolicy.rules[0].onExitCodes.operator: Unsupported value"),
            ("podFailurePolicy", json!({"rules": [{"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [3, 3]}}]}),
                "spec.podFailurePolicy.rules[0].onExitCodes.values[1]: Duplicate value"),
            ("podFailurePolicy", json!({"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "Maybe"}]}]}),
                "spec.podFailurePolicy.rules[0].onPodConditions[0].status: Unsupported value"),
        ] {
            let mut job = job();
            job["spec"][field] = value;
            let errs = errors("job", &job);
            assert!(
                errs.iter().any(|e| e.starts_with(expected)),
                "{field}: {errs:?}"
            );
        }
        for policy in [json!("Always"), Value::Null] {
            let mut job = job();
            job["spec"]["template"]["spec"]["restartPolicy"] = policy;
            let errs = errors("job", &job);
            assert!(
                errs.iter().any(|e| e
                    .starts_with("spec.template.spec.restartPolicy: Unsupported value")
                    && e.contains("supported values: \"OnFailure\", \"Never\"")),
                "{errs:?}"
            );
        }
        let mut job = job();
        job["spec"]["template"]["spec"]["containers"] = json!([]);
        assert!(errors("job", &job).contains(
            &"spec.template.spec.containers: Required value: at least one container is required"
                .to_string()
        ));
    }

    #[test]
    fn indexed_jobs_are_capped_at_100000_completions_and_parallelism() {
        let mut job = job();
        job["spec"]["completions"] = json!(100_000);
        job["spec"]["parallelism"] = json!(100_000);
        assert_eq!(errors("job", &job), Vec::<String>::new());
        job["spec"]["completions"] = json!(100_001);
        job["spec"]["parallelism"] = json!(i32::MAX);
        assert_eq!(
            errors("job", &job),
            [
                "spec.completions: Invalid value: 100001: must be less than or equal to 100000 when completion mode is Indexed",
                "spec.parallelism: Invalid value: 2147483647: must be less than or equal to 100000 when completion mode is Indexed",
            ]
        );
        job["spec"]["completionMode"] = json!("NonIndexed");
        assert_eq!(errors("job", &job), Vec::<String>::new());
    }

    #[test]
    fn pod_failure_policies_need_restart_policy_never() {
        let mut job = job();
        job["spec"]["podFailurePolicy"] = json!({"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": "work", "operator": "In", "values": [42]}},
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]});
        assert_eq!(errors("job", &job), Vec::<String>::new());
        job["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
        assert_eq!(
            errors("job", &job),
            ["spec.template.spec.restartPolicy: Invalid value: \"OnFailure\": only \"Never\" is supported when podFailurePolicy is specified"]
        );
    }

    #[test]
    fn bad_cronjobs_name_the_field() {
        for (pointer, value, expected) in [
            (
                "/spec/schedule",
                json!("61 * * * *"),
                "spec.schedule: Invalid value: \"61 * * * *\": failed to parse minute",
            ),
            (
                "/spec/schedule",
                json!("* * * *"),
                "spec.schedule: Invalid value: \"* * * *\": expected exactly 5 fields",
            ),
            ("/spec/schedule", json!(""), "spec.schedule: Required value"),
            (
                "/spec/timeZone",
                json!("Mars/Olympus"),
                "spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone",
            ),
            (
                "/spec/concurrencyPolicy",
                json!("Sometimes"),
                "spec.concurrencyPolicy: Unsupported value",
            ),
            (
                "/spec/startingDeadlineSeconds",
                json!(-1),
                "spec.startingDeadlineSeconds: Invalid value: -1",
            ),
            (
                "/spec/successfulJobsHistoryLimit",
                json!(-1),
                "spec.successfulJobsHistoryLimit: Invalid value",
            ),
            (
                "/spec/failedJobsHistoryLimit",
                json!(-1),
                "spec.failedJobsHistoryLimit: Invalid value",
            ),
            (
                "/spec/jobTemplate/spec/template/spec/restartPolicy",
                json!("Always"),
                "spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value",
            ),
            (
                "/metadata/name",
                json!("a".repeat(53)),
                "metadata.name: Invalid value",
            ),
        ] {
            let mut cronjob = cronjob();
            let (parent, key) = pointer.rsplit_once('/').expect(pointer);
            cronjob.pointer_mut(parent).expect(parent)[key] = value;
            let errs = errors("cronjob", &cronjob);
            assert!(
                errs.iter().any(|e| e.starts_with(expected)),
                "{pointer}: {errs:?}"
            );
        }
    }
}
