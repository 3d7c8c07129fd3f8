//! Wall-clock time for control loops that act at given times (CronJobs), injectable so tests
//! can set the time.

use skiff_api::k8s_openapi::jiff::Timestamp;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
