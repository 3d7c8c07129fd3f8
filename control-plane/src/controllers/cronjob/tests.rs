//! The CronJob controller on a real store with an injected clock: runs at scheduled minutes
//! without waiting for them, creates a run missed across a failover once, runs only the latest
//! of several missed times, and keeps the history limits.

use std::sync::Mutex;

use skiff_api::k8s_openapi::api::batch::v1::{
    CronJobSpec, JobCondition, JobStatus, JobTemplateSpec,
};
use skiff_api::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use skiff_api::k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::runtime::Informers;

/// A clock the test sets.
struct TestClock(Mutex<Timestamp>);

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock")
    }
}

fn at(s: &str) -> Timestamp {
    s.parse().expect(s)
}

fn cronjob(policy: &str) -> CronJob {
    CronJob {
        metadata: ObjectMeta {
            name: Some("tick".into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        spec: Some(CronJobSpec {
            schedule: "* * * * *".into(),
            concurrency_policy: Some(policy.into()),
            successful_jobs_history_limit: Some(1),
            job_template: serde_json::from_value::<JobTemplateSpec>(serde_json::json!({
                "spec": {"template": {"spec": {"restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "file:/tick.wasm"}]}}}
            }))
            .expect("template"),
            ..Default::default()
        }),
        status: None,
    }
}

fn job_names(jobs: &Informer<Job>) -> Vec<String> {
    let mut names: Vec<String> = jobs
        .list(|_| true)
        .iter()
        .filter_map(|j| j.metadata.name.clone())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_each_scheduled_minute_once_across_failovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = crate::test_registry::registry(dir.path()).await;
    let shutdown = CancellationToken::new();
    let informers = Informers::start(&registry, &shutdown);
    let clock = Arc::new(TestClock(Mutex::new(at("2026-01-01T00:00:30Z"))));
    let controller = |clock: Arc<TestClock>| CronJobController {
        registry: registry.clone(),
        cronjobs: informers.cronjobs.clone(),
        jobs: informers.jobs.clone(),
        events: EventRecorder::new(registry.clone(), "cronjob-controller"),
        clock,
    };
    let leader = controller(clock.clone());
    let mut created = cronjob("Allow");
    created.metadata.creation_timestamp = None;
    let created = registry.create_typed(&created).await.expect("cronjob");
    informers.cronjobs.wait_for(revision_of(&created)).await;
    // The CronJob's creation time is the real clock's: drive the test clock from it.
    let born = created
        .metadata
        .creation_timestamp
        .clone()
        .expect("created")
        .0;
    let minute = |n: i64| {
        let first = (born.as_second().div_euclid(60) + n) * 60;
        Timestamp::from_second(first).expect("minute")
    };
    let set = |t: Timestamp| *clock.0.lock().expect("clock") = t;
    let key = "default/tick";

    // Not yet due: nothing, and a requeue before the next minute.
    set(minute(1) - SignedDuration::from_secs(1));
    let action = leader.reconcile(key).await.expect("reconcile");
    assert_eq!(job_names(&informers.jobs), Vec::<String>::new());
    assert!(
        matches!(action, Action::Requeue(d) if d <= Duration::from_millis(1_100)),
        "{action:?}"
    );

    // Due: one Job named by the minute; a second sync in the same minute adds none.
    set(minute(1) + SignedDuration::from_secs(5));
    leader.reconcile(key).await.expect("reconcile");
    leader.reconcile(key).await.expect("reconcile");
    let first = job_name("tick", minute(1));
    assert_eq!(job_names(&informers.jobs), vec![first.clone()]);
    let cj = informers.cronjobs.get(key).expect("cronjob");
    let status = cj.status.as_ref().expect("status");
    assert_eq!(
        status.last_schedule_time.as_ref().map(|t| t.0),
        Some(minute(1))
    );
    assert_eq!(status.active.as_ref().map(Vec::len), Some(1));

    // A leader made minute 2's Job and died before writing the status: the next leader's
    // create gets AlreadyExists, and the run is not doubled.
    let made = job_from_cronjob(&cj, &job_name("tick", minute(2)), []);
    let made = registry.create_typed(&made).await.expect("job");
    informers.jobs.wait_for(revision_of(&made)).await;
    set(minute(2) + SignedDuration::from_secs(1));
    let next_leader = controller(clock.clone());
    next_leader.reconcile(key).await.expect("reconcile");
    assert_eq!(job_names(&informers.jobs).len(), 2);
    let cj = informers.cronjobs.get(key).expect("cronjob");
    let status = cj.status.as_ref().expect("status");
    assert_eq!(
        status.last_schedule_time.as_ref().map(|t| t.0),
        Some(minute(2))
    );
    assert_eq!(status.active.as_ref().map(Vec::len), Some(2));

    // Down for five minutes: only the latest missed minute runs.
    set(minute(7) + SignedDuration::from_secs(3));
    next_leader.reconcile(key).await.expect("reconcile");
    let names = job_names(&informers.jobs);
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains(&job_name("tick", minute(7))), "{names:?}");

    // Finished Jobs beyond successfulJobsHistoryLimit 1 go, oldest first.
    for name in [first.clone(), job_name("tick", minute(2))] {
        let mut job = (*informers.jobs.get(&format!("default/{name}")).expect("job")).clone();
        job.status = Some(JobStatus {
            conditions: Some(vec![JobCondition {
                type_: "Complete".into(),
                status: "True".into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        let written = registry
            .update_typed(&job, Subresource::Status)
            .await
            .expect("status");
        informers.jobs.wait_for(revision_of(&written)).await;
    }
    next_leader.reconcile(key).await.expect("reconcile");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while job_names(&informers.jobs).contains(&first) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let names = job_names(&informers.jobs);
    assert!(!names.contains(&first), "{names:?}");
    assert_eq!(names.len(), 2, "{names:?}");
    let cj = informers.cronjobs.get(key).expect("cronjob");
    assert_eq!(
        cj.status
            .as_ref()
            .and_then(|s| s.active.as_ref())
            .map(Vec::len),
        Some(1)
    );
    shutdown.cancel();
}
