//! Jobs and CronJobs on a dev server with real, short-lived Wasm guests: an Indexed Job runs
//! each index once and completes, a failing Job stops at its backoffLimit (or at once by its
//! podFailurePolicy), a CronJob's Job is
//! started by hand with `create job --from`, deleting a Job removes its pods, and a bad
//! schedule is refused naming the field.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use skiff_e2e::{wait_until, wat_guest, DevServer, Skiff};

/// Exits 0 at once.
const SUCCEED: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

/// Exits with code 1 at once.
const FAIL: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 1))))"#;

fn apply(cli: &Skiff, dir: &Path, name: &str, yaml: &str) -> anyhow::Result<String> {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, yaml)?;
    cli.ok(&["apply", "-f", path.to_str().expect("utf-8")])
}

fn job_pods(cli: &Skiff, job: &str) -> anyhow::Result<Vec<Value>> {
    let list = cli.json(&["get", "pods", "-l", &format!("job-name={job}")])?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

#[test]
fn jobs_complete_fail_at_their_backoff_limit_and_start_from_cronjobs() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let guests = tmp.path().join("guests");
    let server = DevServer::start_with_guests(&tmp.path().join("data"), &guests, &[])?;
    let cli = server.cli();
    let succeed = wat_guest(&guests, "succeed", SUCCEED)?;
    let fail = wat_guest(&guests, "fail", FAIL)?;

    // An Indexed Job: three completions, two at a time, each index exactly once.
    apply(
        &cli,
        tmp.path(),
        "indexed",
        &format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: indexed}}\nspec:\n  completions: 3\n  \
             parallelism: 2\n  completionMode: Indexed\n  template:\n    spec:\n      restartPolicy: Never\n      \
             containers:\n      - {{name: work, image: \"file:{succeed}\"}}\n"
        ),
    )?;
    // Applying the same manifest again is fine; changing what the Job runs is not.
    let indexed = tmp.path().join("indexed.yaml");
    cli.ok(&["apply", "-f", indexed.to_str().expect("utf-8")])?;
    let changed = std::fs::read_to_string(&indexed)?.replace("completions: 3", "completions: 4");
    std::fs::write(&indexed, changed)?;
    let out = cli.run(&["apply", "-f", indexed.to_str().expect("utf-8")])?;
    assert!(
        !out.success
            && out.stderr.contains("spec.completions")
            && out.stderr.contains("field is immutable"),
        "{}",
        out.stderr
    );
    let waited = cli.ok(&[
        "wait",
        "--for=condition=complete",
        "job/indexed",
        "--timeout",
        "50s",
    ])?;
    assert!(
        waited.contains("job.batch/indexed condition met"),
        "{waited}"
    );
    let job = cli.json(&["get", "job", "indexed"])?;
    assert_eq!(job["status"]["succeeded"], 3, "{job}");
    assert_eq!(job["status"]["completedIndexes"], "0-2", "{job}");
    assert!(job["status"]["completionTime"].is_string(), "{job}");
    let mut indexes: Vec<String> = job_pods(&cli, "indexed")?
        .iter()
        .map(|p| {
            let index =
                p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"].clone();
            let env = &p["spec"]["containers"][0]["env"][0];
            assert_eq!(env["name"], "JOB_COMPLETION_INDEX", "{p}");
            assert_eq!(env["value"], index, "{p}");
            assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "Job", "{p}");
            index.as_str().unwrap_or_default().to_string()
        })
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2"]);
    let table = cli.ok(&["get", "jobs"])?;
    assert!(
        table.contains("COMPLETIONS") && table.contains("DURATION"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("indexed") && l.contains("Complete") && l.contains("3/3")),
        "{table}"
    );

    // A Job whose pods fail: backoffLimit 1 allows one retry (after a 10 s back-off), then it fails.
    apply(
        &cli,
        tmp.path(),
        "failing",
        &format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: failing}}\nspec:\n  backoffLimit: 1\n  \
             template:\n    spec:\n      restartPolicy: Never\n      \
             containers:\n      - {{name: work, image: \"file:{fail}\"}}\n"
        ),
    )?;
    cli.ok(&[
        "wait",
        "--for=condition=failed",
        "job/failing",
        "--timeout",
        "55s",
    ])?;
    let job = cli.json(&["get", "job", "failing"])?;
    assert_eq!(job["status"]["failed"], 2, "{job}");
    let failed = job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Failed")
        .cloned()
        .unwrap_or_default();
    assert_eq!(failed["reason"], "BackoffLimitExceeded", "{job}");
    assert_eq!(job_pods(&cli, "failing")?.len(), 2, "no third try");
    let out = cli.run(&[
        "wait",
        "--for=condition=complete",
        "job/failing",
        "--timeout",
        "1s",
    ])?;
    assert!(
        !out.success && out.stderr.contains("timed out"),
        "{}",
        out.stderr
    );

    // A podFailurePolicy FailJob rule on exit code 1 ends the Job at the first failure.
    apply(
        &cli,
        tmp.path(),
        "policy",
        &format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: policy}}\nspec:\n  backoffLimit: 6\n  \
             podFailurePolicy:\n    rules:\n    - action: FailJob\n      onExitCodes: {{operator: In, values: [1]}}\n  \
             template:\n    spec:\n      restartPolicy: Never\n      \
             containers:\n      - {{name: work, image: \"file:{fail}\"}}\n"
        ),
    )?;
    cli.ok(&[
        "wait",
        "--for=condition=failed",
        "job/policy",
        "--timeout",
        "30s",
    ])?;
    let job = cli.json(&["get", "job", "policy"])?;
    let failed = job["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Failed")
        .cloned()
        .unwrap_or_default();
    assert_eq!(failed["reason"], "PodFailurePolicy", "{job}");
    assert!(
        failed["message"]
            .as_str()
            .unwrap_or_default()
            .contains("failed with exit code 1 matching FailJob rule at index 0"),
        "{job}"
    );
    assert_eq!(job_pods(&cli, "policy")?.len(), 1, "no retry");

    // A CronJob that will not fire during the test; its Job is started by hand.
    apply(
        &cli,
        tmp.path(),
        "cron",
        &format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: nightly}}\nspec:\n  schedule: \"0 3 1 1 *\"\n  \
             jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          \
             containers:\n          - {{name: work, image: \"file:{succeed}\"}}\n"
        ),
    )?;
    let created = cli.ok(&["create", "job", "nightly-manual", "--from=cronjob/nightly"])?;
    assert!(
        created.contains("job.batch/nightly-manual created"),
        "{created}"
    );
    cli.ok(&[
        "wait",
        "--for=condition=complete",
        "job/nightly-manual",
        "--timeout",
        "50s",
    ])?;
    let job = cli.json(&["get", "job", "nightly-manual"])?;
    assert_eq!(
        job["metadata"]["ownerReferences"][0]["kind"], "CronJob",
        "{job}"
    );
    assert_eq!(
        job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
        "manual"
    );
    let table = cli.ok(&["get", "cronjobs"])?;
    assert!(
        table.contains("LAST SCHEDULE")
            && table
                .lines()
                .any(|l| l.starts_with("nightly") && l.contains("0 3 1 1 *")),
        "{table}"
    );

    // Deleting a Job deletes its pods.
    cli.ok(&["delete", "job", "indexed"])?;
    wait_until(
        "the Job's pods to be collected",
        Duration::from_secs(60),
        || Ok(job_pods(&cli, "indexed")?.is_empty().then_some(())),
    )?;

    // A bad schedule is refused, naming the field; nothing is created.
    let path = tmp.path().join("bad.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: bad}}\nspec:\n  schedule: \"61 * * * *\"\n  \
             jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n          \
             containers:\n          - {{name: work, image: \"file:{succeed}\"}}\n"
        ),
    )?;
    let out = cli.run(&["apply", "-f", path.to_str().expect("utf-8")])?;
    assert!(
        !out.success && out.stderr.contains("spec.schedule"),
        "{}",
        out.stderr
    );
    assert!(!cli.run(&["get", "cronjob", "bad"])?.success);
    Ok(())
}
