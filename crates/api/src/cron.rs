//! CronJob schedules as Kubernetes accepts them: five fields (minute, hour, day of month, month,
//! day of week) with lists, ranges, steps and month/day names, or a macro such as `@hourly`.
//! As in Kubernetes, when both day fields are restricted a day matching either one runs; when
//! one of them is `*` (or `?`) both must match.
//!
//! Times are computed in a [`jiff`] time zone, so a CronJob's `timeZone` follows daylight saving.

use std::str::FromStr;

use jiff::civil::Date;
use jiff::{Timestamp, Zoned};

/// How far ahead [`Schedule::next_after`] looks before deciding a schedule never fires
/// (`0 0 30 2 *`): five years, as Kubernetes' cron library does.
const SEARCH_DAYS: i32 = 5 * 366;

/// Why a schedule does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("expected exactly 5 fields, found {found}: {schedule:?}")]
    FieldCount { schedule: String, found: usize },
    #[error("unrecognized descriptor: {0}")]
    UnknownMacro(String),
    #[error("failed to parse {field} {value:?}: {reason}")]
    Field {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("TZ= and CRON_TZ= are not allowed in the schedule; use spec.timeZone")]
    TimeZoneInSchedule,
}

/// One field's bounds and names.
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day of week",
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// One parsed field: a bit per allowed value, and whether it was written as `*` or `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    bits: u64,
    star: bool,
}

impl Field {
    fn has(&self, value: u32) -> bool {
        self.bits & (1 << value) != 0
    }
}

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minute: Field,
    hour: Field,
    day_of_month: Field,
    month: Field,
    day_of_week: Field,
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(schedule: &str) -> Result<Self, ScheduleError> {
        let trimmed = schedule.trim();
        if trimmed.starts_with("TZ=") || trimmed.starts_with("CRON_TZ=") {
            return Err(ScheduleError::TimeZoneInSchedule);
        }
        let expanded = match trimmed {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(ScheduleError::UnknownMacro(other.to_string()))
            }
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields[..] else {
            return Err(ScheduleError::FieldCount {
                schedule: schedule.to_string(),
                found: fields.len(),
            });
        };
        Ok(Schedule {
            minute: parse_field(minute, &MINUTE)?,
            hour: parse_field(hour, &HOUR)?,
            day_of_month: parse_field(dom, &DAY_OF_MONTH)?,
            month: parse_field(month, &MONTH)?,
            day_of_week: parse_field(dow, &DAY_OF_WEEK)?,
        })
    }
}

fn parse_field(text: &str, spec: &FieldSpec) -> Result<Field, ScheduleError> {
    let mut field = Field {
        bits: 0,
        star: false,
    };
    for part in text.split(',') {
        let bad = |reason| ScheduleError::Field {
            field: spec.name,
            value: part.to_string(),
            reason,
        };
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().map_err(|_| bad("step is not a number"))?;
                if step == 0 {
                    return Err(bad("step must be positive"));
                }
                (range, Some(step))
            }
            None => (part, None),
        };
        let (start, end) = if range == "*" || range == "?" {
            // `*/n` restricts the field, so it no longer counts as "any day".
            field.star |= step.is_none_or(|s| s == 1);
            (spec.min, spec.max)
        } else {
            match range.split_once('-') {
                Some((a, b)) => (value(a, spec, &bad)?, value(b, spec, &bad)?),
                // `a/n` runs from a to the field's end.
                None => {
                    let a = value(range, spec, &bad)?;
                    (a, if step.is_some() { spec.max } else { a })
                }
            }
        };
        if start > end {
            return Err(bad("beginning of range after end of range"));
        }
        let step = step.unwrap_or(1) as usize;
        for v in (start..=end).step_by(step) {
            field.bits |= 1 << v;
        }
    }
    Ok(field)
}

fn value(
    text: &str,
    spec: &FieldSpec,
    bad: &dyn Fn(&'static str) -> ScheduleError,
) -> Result<u32, ScheduleError> {
    let lower = text.to_ascii_lowercase();
    let v = match spec.names.iter().position(|n| *n == lower) {
        Some(i) => i as u32 + spec.min,
        None => text.parse().map_err(|_| bad("not a number or name"))?,
    };
    if v < spec.min || v > spec.max {
        return Err(bad("value out of range"));
    }
    Ok(v)
}

impl Schedule {
    fn day_matches(&self, date: Date) -> bool {
        let dom = self.day_of_month.has(date.day() as u32);
        let dow = self
            .day_of_week
            .has(date.weekday().to_sunday_zero_offset() as u32);
        if self.day_of_month.star || self.day_of_week.star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first scheduled time strictly after `after`, in `after`'s time zone; `None` if the
    /// schedule never fires within five years. A time skipped by a daylight-saving jump runs
    /// shifted forward by the gap (02:30 in a 02:00→03:00 jump runs at 03:30), as Kubernetes does.
    pub fn next_after(&self, after: &Zoned) -> Option<Zoned> {
        let tz = after.time_zone();
        let mut date = after.date();
        for _ in 0..SEARCH_DAYS {
            if self.month.has(date.month() as u32) && self.day_matches(date) {
                for hour in (0..24).filter(|h| self.hour.has(*h)) {
                    for minute in (0..60).filter(|m| self.minute.has(*m)) {
                        let civil = date.at(hour as i8, minute as i8, 0, 0);
                        let Ok(zoned) = civil.to_zoned(tz.clone()) else {
                            continue;
                        };
                        if zoned.timestamp() > after.timestamp() {
                            return Some(zoned);
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// The scheduled times in `(earliest, now]`: the most recent one and how many there were
    /// (counting stops at `limit`). Kubernetes runs only the most recent of missed times.
    pub fn missed(
        &self,
        earliest: &Zoned,
        now: Timestamp,
        limit: usize,
    ) -> Option<(Timestamp, usize)> {
        let mut at = earliest.clone();
        let mut last = None;
        let mut count = 0;
        while let Some(next) = self.next_after(&at) {
            if next.timestamp() > now {
                break;
            }
            count += 1;
            last = Some(next.timestamp());
            if count >= limit {
                // Too many to walk: take the latest time directly.
                let latest = self.latest_at_or_before(now, &at.time_zone().clone());
                return latest.map(|t| (t, count)).or(last.map(|t| (t, count)));
            }
            at = next;
        }
        last.map(|t| (t, count))
    }

    /// The latest scheduled time at or before `now`, searching back a day at a time.
    fn latest_at_or_before(&self, now: Timestamp, tz: &jiff::tz::TimeZone) -> Option<Timestamp> {
        let now = now.to_zoned(tz.clone());
        let mut date = now.date();
        for _ in 0..SEARCH_DAYS {
            if self.month.has(date.month() as u32) && self.day_matches(date) {
                for hour in (0..24).rev().filter(|h| self.hour.has(*h)) {
                    for minute in (0..60).rev().filter(|m| self.minute.has(*m)) {
                        let Ok(zoned) =
                            date.at(hour as i8, minute as i8, 0, 0).to_zoned(tz.clone())
                        else {
                            continue;
                        };
                        if zoned.timestamp() <= now.timestamp() {
                            return Some(zoned.timestamp());
                        }
                    }
                }
            }
            date = date.yesterday().ok()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(schedule: &str, after: &str, zone: &str) -> String {
        let schedule: Schedule = schedule.parse().expect(schedule);
        let after: Timestamp = after.parse().expect(after);
        schedule
            .next_after(&after.in_tz(zone).expect(zone))
            .map(|z| z.timestamp().to_string())
            .unwrap_or_else(|| "never".into())
    }

    #[test]
    fn next_times_follow_kubernetes_semantics() {
        for (schedule, after, zone, expected) in [
            (
                "* * * * *",
                "2026-01-01T00:00:00Z",
                "UTC",
                "2026-01-01T00:01:00Z",
            ),
            (
                "* * * * *",
                "2026-01-01T00:00:30Z",
                "UTC",
                "2026-01-01T00:01:00Z",
            ),
            (
                "*/15 * * * *",
                "2026-01-01T00:15:00Z",
                "UTC",
                "2026-01-01T00:30:00Z",
            ),
            (
                "5/20 * * * *",
                "2026-01-01T00:26:00Z",
                "UTC",
                "2026-01-01T00:45:00Z",
            ),
            (
                "0 9-17/4 * * *",
                "2026-01-01T09:00:00Z",
                "UTC",
                "2026-01-01T13:00:00Z",
            ),
            (
                "@hourly",
                "2026-01-01T10:59:59Z",
                "UTC",
                "2026-01-01T11:00:00Z",
            ),
            (
                "@daily",
                "2026-01-01T10:00:00Z",
                "UTC",
                "2026-01-02T00:00:00Z",
            ),
            (
                "@weekly",
                "2026-01-01T10:00:00Z",
                "UTC",
                "2026-01-04T00:00:00Z",
            ),
            (
                "@monthly",
                "2026-01-31T10:00:00Z",
                "UTC",
                "2026-02-01T00:00:00Z",
            ),
            (
                "@yearly",
                "2026-03-01T00:00:00Z",
                "UTC",
                "2027-01-01T00:00:00Z",
            ),
            (
                "0 0 * JAN,mar MON",
                "2026-01-31T00:00:00Z",
                "UTC",
                "2026-03-02T00:00:00Z",
            ),
            // Both day fields restricted: either matches (the 13th, or any Friday).
            (
                "0 0 13 * 5",
                "2026-01-01T00:00:00Z",
                "UTC",
                "2026-01-02T00:00:00Z",
            ),
            // Day of week `*`: only the day of month counts.
            (
                "0 0 13 * *",
                "2026-01-01T00:00:00Z",
                "UTC",
                "2026-01-13T00:00:00Z",
            ),
            (
                "0 0 13 * ?",
                "2026-01-01T00:00:00Z",
                "UTC",
                "2026-01-13T00:00:00Z",
            ),
            ("0 0 30 2 *", "2026-01-01T00:00:00Z", "UTC", "never"),
            (
                "0 0 29 2 *",
                "2026-01-01T00:00:00Z",
                "UTC",
                "2028-02-29T00:00:00Z",
            ),
            // In a named zone: 09:00 in Berlin is 08:00 UTC in winter, 07:00 in summer.
            (
                "0 9 * * *",
                "2026-01-01T12:00:00Z",
                "Europe/Berlin",
                "2026-01-02T08:00:00Z",
            ),
            (
                "0 9 * * *",
                "2026-07-01T12:00:00Z",
                "Europe/Berlin",
                "2026-07-02T07:00:00Z",
            ),
            // 02:30 does not exist on the day clocks jump forward: it runs when the gap ends.
            (
                "30 2 * * *",
                "2026-03-28T12:00:00Z",
                "Europe/Berlin",
                "2026-03-29T01:30:00Z",
            ),
        ] {
            assert_eq!(
                next(schedule, after, zone),
                expected,
                "{schedule} after {after} in {zone}"
            );
        }
    }

    #[test]
    fn bad_schedules_say_why() {
        for (schedule, expected) in [
            ("* * * *", "expected exactly 5 fields, found 4"),
            ("* * * * * *", "expected exactly 5 fields, found 6"),
            (
                "60 * * * *",
                "failed to parse minute \"60\": value out of range",
            ),
            (
                "* 24 * * *",
                "failed to parse hour \"24\": value out of range",
            ),
            (
                "* * 0 * *",
                "failed to parse day of month \"0\": value out of range",
            ),
            (
                "* * * 13 *",
                "failed to parse month \"13\": value out of range",
            ),
            (
                "* * * * 7",
                "failed to parse day of week \"7\": value out of range",
            ),
            ("*/0 * * * *", "step must be positive"),
            ("5-1 * * * *", "beginning of range after end of range"),
            ("x * * * *", "not a number or name"),
            ("@fortnightly", "unrecognized descriptor: @fortnightly"),
            ("TZ=UTC * * * * *", "TZ= and CRON_TZ= are not allowed"),
        ] {
            let err = schedule
                .parse::<Schedule>()
                .expect_err(schedule)
                .to_string();
            assert!(err.contains(expected), "{schedule}: {err}");
        }
    }

    #[test]
    fn missed_times_count_and_keep_the_latest() {
        let every_minute: Schedule = "* * * * *".parse().expect("schedule");
        let earliest: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let earliest = earliest.in_tz("UTC").expect("utc");
        let at = |s: &str| s.parse::<Timestamp>().expect(s);
        assert_eq!(
            every_minute.missed(&earliest, at("2026-01-01T00:00:59Z"), 100),
            None
        );
        assert_eq!(
            every_minute.missed(&earliest, at("2026-01-01T00:03:10Z"), 100),
            Some((at("2026-01-01T00:03:00Z"), 3))
        );
        // A control plane down for a day: one run, at the latest missed time.
        assert_eq!(
            every_minute.missed(&earliest, at("2026-01-02T00:00:30Z"), 100),
            Some((at("2026-01-02T00:00:00Z"), 100))
        );
    }
}
