//! `skiff get jobs` and `skiff get cronjobs` rows, as kubectl prints them.

use serde_json::Value;

use super::age;

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn seconds_of(v: &Value) -> Option<i64> {
    v.as_str()?
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// `Complete`, `Failed`, `Suspended` or `Running`.
fn job_status(job: &Value) -> &'static str {
    let conditions = job["status"]["conditions"].as_array();
    let has = |kind: &str| {
        conditions
            .into_iter()
            .flatten()
            .any(|c| c["type"] == kind && c["status"] == "True")
    };
    if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if has("Suspended") {
        "Suspended"
    } else {
        "Running"
    }
}

/// `2/3`; a Job without completions shows `N/1` (`N/1 of P` with parallelism P > 1).
fn completions(job: &Value) -> String {
    let succeeded = job["status"]["succeeded"].as_i64().unwrap_or(0);
    match job["spec"]["completions"].as_i64() {
        Some(c) => format!("{succeeded}/{c}"),
        None => match job["spec"]["parallelism"].as_i64().unwrap_or(1) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    }
}

/// From start to completion (or to now while it runs); empty before it starts.
fn duration(job: &Value, now: i64) -> String {
    let Some(start) = seconds_of(&job["status"]["startTime"]) else {
        return String::new();
    };
    let end = seconds_of(&job["status"]["completionTime"]).unwrap_or(now);
    age::human((end - start).max(0) as u64)
}

pub fn job_row(job: &Value, _wide: bool) -> Vec<String> {
    let now = jiff::Timestamp::now().as_second();
    vec![
        text(&job["metadata"]["name"]),
        job_status(job).into(),
        completions(job),
        duration(job, now),
        age::since(job["metadata"]["creationTimestamp"].as_str()),
    ]
}

pub fn cronjob_row(cronjob: &Value, _wide: bool) -> Vec<String> {
    let spec = &cronjob["spec"];
    let status = &cronjob["status"];
    let last = match status["lastScheduleTime"].as_str() {
        Some(t) => age::since(Some(t)),
        None => "<none>".into(),
    };
    vec![
        text(&cronjob["metadata"]["name"]),
        text(&spec["schedule"]),
        spec["timeZone"].as_str().unwrap_or("<none>").into(),
        spec["suspend"].as_bool().unwrap_or(false).to_string(),
        status["active"].as_array().map_or(0, Vec::len).to_string(),
        last,
        age::since(cronjob["metadata"]["creationTimestamp"].as_str()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn job_rows_show_completions_and_duration() {
        let job = json!({
            "metadata": {"name": "pi"},
            "spec": {"completions": 3},
            "status": {"succeeded": 2, "startTime": "2026-01-01T00:00:00Z"}
        });
        assert_eq!(job_status(&job), "Running");
        assert_eq!(completions(&job), "2/3");
        assert_eq!(
            duration(&job, seconds_of(&json!("2026-01-01T00:01:05Z")).expect("t")),
            "65s"
        );
        let done = json!({
            "spec": {"parallelism": 4},
            "status": {"succeeded": 1, "startTime": "2026-01-01T00:00:00Z",
                "completionTime": "2026-01-01T00:05:00Z",
                "conditions": [{"type": "Complete", "status": "True"}]}
        });
        assert_eq!(
            (job_status(&done), completions(&done).as_str()),
            ("Complete", "1/1 of 4")
        );
        assert_eq!(duration(&done, i64::MAX / 2), "5m");
        assert_eq!(duration(&json!({}), 0), "");
        let failed = json!({"status": {"conditions": [{"type": "Failed", "status": "True"}]}});
        assert_eq!(job_status(&failed), "Failed");
    }

    #[test]
    fn cronjob_rows_show_the_schedule() {
        let cronjob = json!({
            "metadata": {"name": "report"},
            "spec": {"schedule": "*/5 * * * *", "suspend": true},
            "status": {"active": [{"name": "report-1"}]}
        });
        let row = cronjob_row(&cronjob, false);
        assert_eq!(
            row[..6],
            ["report", "*/5 * * * *", "<none>", "true", "1", "<none>"]
        );
    }
}
