//! The lifecycle's timers on paused time: crash back-off and wake-ups.

use super::*;

fn exited(code: i32, backoff_until: Option<Instant>) -> ContainerView {
    ContainerView {
        role: Role::App,
        observed: Observed::Exited { exit_code: code },
        backoff_until,
        retry_at: None,
        started: true,
    }
}

/// A container that keeps crashing waits 10, 20, 40 ... 300 s (paused time), and one
/// that ran long enough starts its count again.
#[tokio::test(start_paused = true)]
async fn crash_loop_backoff_doubles_to_the_cap() {
    let backoff = Backoff::default();
    let mut crashes = 0;
    let mut waits = Vec::new();
    for _ in 0..7 {
        let (count, until) = crashed(crashes, Duration::from_secs(1), &backoff, Instant::now());
        crashes = count;
        let container = [exited(1, Some(until))];
        let started = Instant::now();
        loop {
            match step(RestartPolicy::Always, false, &container, Instant::now()) {
                Ok(steps) if steps == [Step::Start] => break,
                Ok(steps) => {
                    assert_eq!(steps, [Step::WaitUntil(until)]);
                    let wake = next_wake(RestartPolicy::Always, &container, Instant::now())
                        .expect("a wake-up while backing off");
                    tokio::time::sleep_until(wake).await;
                }
                Err(err) => panic!("{err}"),
            }
        }
        waits.push(started.elapsed().as_secs());
    }
    assert_eq!(waits, [10, 20, 40, 80, 160, 300, 300]);
    let (count, until) = crashed(crashes, backoff.reset_after, &backoff, Instant::now());
    assert_eq!(
        (count, until - Instant::now()),
        (1, Duration::from_secs(10))
    );
}

#[tokio::test(start_paused = true)]
async fn nothing_to_wake_for_when_done_or_never_restarting() {
    let now = Instant::now();
    let later = now + Duration::from_secs(5);
    assert_eq!(
        next_wake(RestartPolicy::Never, &[exited(1, Some(later))], now),
        None
    );
    assert_eq!(
        next_wake(RestartPolicy::Always, &[exited(1, Some(later))], now),
        Some(later)
    );
    let running = ContainerView {
        role: Role::App,
        observed: Observed::Running,
        backoff_until: None,
        retry_at: None,
        started: true,
    };
    assert_eq!(next_wake(RestartPolicy::Always, &[running], now), None);
    let overdue = ContainerView {
        retry_at: Some(now - Duration::from_secs(1)),
        started: true,
        ..running
    };
    assert_eq!(next_wake(RestartPolicy::Always, &[overdue], now), Some(now));
}

#[test]
fn termination_grace_table() {
    let cases = [
        (Some(5), Some(60), 5),
        (None, Some(60), 60),
        (None, None, 30),
        (Some(0), Some(60), 0),
        (Some(-3), None, 0),
    ];
    for (deletion, spec, seconds) in cases {
        assert_eq!(
            termination_grace(deletion, spec),
            Duration::from_secs(seconds),
            "{deletion:?} {spec:?}"
        );
    }
}
