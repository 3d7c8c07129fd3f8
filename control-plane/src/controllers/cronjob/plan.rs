//! What one CronJob sync decides, as pure functions of its spec, status, Jobs and the time:
//! whether a run is due (only the most recent missed time runs, as Kubernetes does), what the
//! concurrency policy makes of the Jobs still running, and which finished Jobs fall out of history.

use std::time::Duration;

use skiff_api::cron::Schedule;
use skiff_api::k8s_openapi::jiff::tz::TimeZone;
use skiff_api::k8s_openapi::jiff::Timestamp;

/// Most missed times counted before Kubernetes gives up counting (it still runs the latest).
pub const MISSED_LIMIT: usize = 100;

/// The parts of a CronJob the decision needs.
pub struct CronView<'a> {
    pub schedule: &'a Schedule,
    pub time_zone: TimeZone,
    pub starting_deadline_seconds: Option<i64>,
    pub concurrency_policy: &'a str,
    pub created: Timestamp,
    pub last_schedule: Option<Timestamp>,
    /// Jobs of this CronJob that have not finished.
    pub active: usize,
}

/// The decision of one sync.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Start the run scheduled at `scheduled` (after deleting the running Jobs if `replace`).
    Run {
        scheduled: Timestamp,
        missed: usize,
        replace: bool,
    },
    /// The latest due run is skipped: past its starting deadline, or forbidden while a Job runs.
    Skip {
        scheduled: Timestamp,
        reason: SkipReason,
    },
    /// Nothing is due.
    Wait,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    MissedStartingDeadline,
    ConcurrencyForbidden,
}

/// Decides whether a run is due at `now`.
pub fn decide(cron: &CronView, now: Timestamp) -> Decision {
    let mut earliest = cron.last_schedule.unwrap_or(cron.created);
    if let Some(deadline) = cron.starting_deadline_seconds {
        let window_start = now
            .checked_sub(Duration::from_secs(deadline.max(0) as u64))
            .unwrap_or(now);
        earliest = earliest.max(window_start);
    }
    let Some((scheduled, missed)) = cron.schedule.missed(
        &earliest.to_zoned(cron.time_zone.clone()),
        now,
        MISSED_LIMIT,
    ) else {
        return Decision::Wait;
    };
    let too_late = cron
        .starting_deadline_seconds
        .is_some_and(|d| now.duration_since(scheduled).as_secs() > d);
    if too_late {
        return Decision::Skip {
            scheduled,
            reason: SkipReason::MissedStartingDeadline,
        };
    }
    match cron.concurrency_policy {
        "Forbid" if cron.active > 0 => Decision::Skip {
            scheduled,
            reason: SkipReason::ConcurrencyForbidden,
        },
        policy => Decision::Run {
            scheduled,
            missed,
            replace: policy == "Replace" && cron.active > 0,
        },
    }
}

/// How long until the next scheduled time after `now`.
pub fn until_next(schedule: &Schedule, time_zone: &TimeZone, now: Timestamp) -> Option<Duration> {
    let next = schedule.next_after(&now.to_zoned(time_zone.clone()))?;
    Duration::try_from(next.timestamp().duration_since(now)).ok()
}

/// The name of the Job for the run scheduled at `scheduled`: `<cronjob>-<unix minutes>`, the
/// same on every control-plane member, so a run is created once even across a failover.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// One finished Job of the CronJob.
#[derive(Debug, Clone)]
pub struct Finished {
    pub name: String,
    pub succeeded: bool,
    pub started: Timestamp,
}

/// The finished Jobs to delete so that at most `successful` succeeded and `failed` failed
/// ones remain, oldest first (by creation, then by name: a scheduled Job's name grows with its
/// time).
pub fn history_victims(jobs: &[Finished], successful: usize, failed: usize) -> Vec<String> {
    let mut victims = Vec::new();
    for (outcome, keep) in [(true, successful), (false, failed)] {
        let mut these: Vec<&Finished> = jobs.iter().filter(|j| j.succeeded == outcome).collect();
        these.sort_by(|a, b| (a.started, &a.name).cmp(&(b.started, &b.name)));
        let extra = these.len().saturating_sub(keep);
        victims.extend(these.into_iter().take(extra).map(|j| j.name.clone()));
    }
    victims
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect(s)
    }

    fn view<'a>(schedule: &'a Schedule, policy: &'a str, active: usize) -> CronView<'a> {
        CronView {
            schedule,
            time_zone: TimeZone::UTC,
            starting_deadline_seconds: None,
            concurrency_policy: policy,
            created: at("2026-01-01T00:00:30Z"),
            last_schedule: None,
            active,
        }
    }

    #[test]
    fn runs_the_latest_due_time_once() {
        let every_minute: Schedule = "* * * * *".parse().expect("schedule");
        let hourly: Schedule = "@hourly".parse().expect("schedule");
        let run = |scheduled: &str, missed, replace| Decision::Run {
            scheduled: at(scheduled),
            missed,
            replace,
        };
        for (name, cron, now, expected) in [
            (
                "not yet due",
                view(&every_minute, "Allow", 0),
                "2026-01-01T00:00:59Z",
                Decision::Wait,
            ),
            (
                "first minute",
                view(&every_minute, "Allow", 0),
                "2026-01-01T00:01:00Z",
                run("2026-01-01T00:01:00Z", 1, false),
            ),
            (
                "allow runs beside a running job",
                view(&every_minute, "Allow", 2),
                "2026-01-01T00:01:10Z",
                run("2026-01-01T00:01:00Z", 1, false),
            ),
            (
                "replace stops the running job",
                view(&every_minute, "Replace", 1),
                "2026-01-01T00:01:10Z",
                run("2026-01-01T00:01:00Z", 1, true),
            ),
            (
                "forbid skips while one runs",
                view(&every_minute, "Forbid", 1),
                "2026-01-01T00:01:10Z",
                Decision::Skip {
                    scheduled: at("2026-01-01T00:01:00Z"),
                    reason: SkipReason::ConcurrencyForbidden,
                },
            ),
            (
                "forbid runs when none runs",
                view(&every_minute, "Forbid", 0),
                "2026-01-01T00:01:10Z",
                run("2026-01-01T00:01:00Z", 1, false),
            ),
            // Down for five minutes (a failover): only the latest time runs.
            (
                "missed times run once",
                view(&every_minute, "Allow", 0),
                "2026-01-01T00:05:30Z",
                run("2026-01-01T00:05:00Z", 5, false),
            ),
            (
                "already ran this minute",
                CronView {
                    last_schedule: Some(at("2026-01-01T00:05:00Z")),
                    ..view(&every_minute, "Allow", 0)
                },
                "2026-01-01T00:05:59Z",
                Decision::Wait,
            ),
            (
                "next minute after the last run",
                CronView {
                    last_schedule: Some(at("2026-01-01T00:05:00Z")),
                    ..view(&every_minute, "Allow", 0)
                },
                "2026-01-01T00:06:01Z",
                run("2026-01-01T00:06:00Z", 1, false),
            ),
            (
                "hourly",
                view(&hourly, "Allow", 0),
                "2026-01-01T02:30:00Z",
                run("2026-01-01T02:00:00Z", 2, false),
            ),
            (
                "within the starting deadline",
                CronView {
                    starting_deadline_seconds: Some(60),
                    ..view(&hourly, "Allow", 0)
                },
                "2026-01-01T01:00:45Z",
                run("2026-01-01T01:00:00Z", 1, false),
            ),
            (
                "past the starting deadline",
                CronView {
                    starting_deadline_seconds: Some(60),
                    ..view(&hourly, "Allow", 0)
                },
                "2026-01-01T01:02:00Z",
                Decision::Wait,
            ),
            (
                "a day down counts at most the limit",
                view(&every_minute, "Allow", 0),
                "2026-01-02T00:00:10Z",
                run("2026-01-02T00:00:00Z", MISSED_LIMIT, false),
            ),
        ] {
            assert_eq!(decide(&cron, at(now)), expected, "{name}");
        }
    }

    #[test]
    fn schedules_follow_the_time_zone() {
        let nine: Schedule = "0 9 * * *".parse().expect("schedule");
        let berlin = TimeZone::get("Europe/Berlin").expect("zone");
        let cron = CronView {
            time_zone: berlin.clone(),
            ..view(&nine, "Allow", 0)
        };
        assert_eq!(decide(&cron, at("2026-01-01T07:59:00Z")), Decision::Wait);
        assert!(matches!(
            decide(&cron, at("2026-01-01T08:00:01Z")),
            Decision::Run { .. }
        ));
        assert_eq!(
            until_next(&nine, &berlin, at("2026-01-01T07:59:00Z")),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn job_names_come_from_the_scheduled_minute() {
        assert_eq!(
            job_name("report", at("2026-01-01T00:01:00Z")),
            "report-29453761"
        );
        // Two leaders computing the same run agree on the name.
        assert_eq!(
            job_name("report", at("2026-01-01T00:01:00Z")),
            job_name("report", at("2026-01-01T00:01:00Z"))
        );
    }

    #[test]
    fn history_keeps_the_newest_of_each_outcome() {
        let job = |name: &str, succeeded, minute: i64| Finished {
            name: name.into(),
            succeeded,
            started: Timestamp::from_second(minute * 60).expect("time"),
        };
        let jobs = [
            job("ok-3", true, 3),
            job("ok-1", true, 1),
            job("ok-2", true, 2),
            job("bad-1", false, 1),
            job("bad-2", false, 2),
        ];
        assert_eq!(history_victims(&jobs, 2, 1), vec!["ok-1", "bad-1"]);
        assert_eq!(history_victims(&jobs, 3, 2), Vec::<String>::new());
        assert_eq!(history_victims(&jobs, 0, 0).len(), 5);
    }
}
