//! When an automation fires: five-field cron expressions read in an IANA time zone (the tz
//! database is bundled, so every node agrees whatever its system has), one-time instants and
//! loops. Daylight saving time follows Vixie cron: a local time skipped by the spring-forward
//! change fires once, right after the change; a local time that occurs twice in the fall-back
//! change fires once, at its first occurrence.

use std::str::FromStr;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::{CoreError, CoreResult};

/// The longest cron expression accepted, in bytes.
const CRON_MAX: usize = 200;

/// A parsed recurring schedule.
#[derive(Debug, Clone)]
pub struct Recurring {
    cron: Cron,
    zone: TimeZone,
}

impl Recurring {
    /// Parses five cron fields (minute, hour, day of month, month, day of week) and an IANA
    /// time zone name.
    pub fn parse(expr: &str, zone: &str) -> CoreResult<Self> {
        let expr = expr.trim();
        if expr.is_empty() || expr.len() > CRON_MAX || expr.split_whitespace().count() != 5 {
            return Err(CoreError::invalid(
                "cron",
                "must be five fields: minute hour day-of-month month day-of-week",
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(expr)
            .map_err(|_| {
                CoreError::invalid(
                    "cron",
                    "is not a cron expression (five fields: minute hour day-of-month month \
                     day-of-week)",
                )
            })?;
        let zone = TimeZone::get(zone).map_err(|_| {
            CoreError::invalid(
                "timezone",
                "must be an IANA time zone name such as Europe/Berlin or UTC",
            )
        })?;
        let parsed = Self { cron, zone };
        // A pattern that never matches (30 February) is refused now, not at its first run.
        parsed
            .next_after(0)
            .ok_or_else(|| CoreError::invalid("cron", "never matches a day that exists"))?;
        Ok(parsed)
    }

    /// The first instant strictly after `after_us` (Unix µs) that the schedule names, in µs.
    pub fn next_after(&self, after_us: i64) -> Option<i64> {
        let after = Timestamp::from_microsecond(after_us).ok()?;
        let zoned = after.to_zoned(self.zone.clone());
        let next = self.cron.find_next_occurrence(&zoned, false).ok()?;
        let us = next.timestamp().as_microsecond();
        // Whole minutes only: an instant inside the starting minute is not "after" it.
        (us > after_us).then_some(us)
    }
}

impl FromStr for Recurring {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s, "UTC")
    }
}

/// What to do about a schedule instant found already past (no node ran at the time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// Forget it; fire at the next instant.
    Skip,
    /// Fire once now for everything missed, then at the next instant.
    RunOnce,
}

impl Missed {
    /// Parses `skip` or `run_once`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "skip" => Some(Self::Skip),
            "run_once" => Some(Self::RunOnce),
            _ => None,
        }
    }

    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::RunOnce => "run_once",
        }
    }
}

/// An instant more than this late counts as missed (µs): the scheduler ticks several times a
/// second, so only a stopped cluster falls this far behind.
pub const MISSED_AFTER_US: i64 = 60_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_microsecond()
    }

    fn show(us: i64) -> String {
        Timestamp::from_microsecond(us).unwrap().to_string()
    }

    /// Every firing of `expr` in `zone` from `from` to `to` (UTC instants).
    fn firings(expr: &str, zone: &str, from: &str, to: &str) -> Vec<String> {
        let r = Recurring::parse(expr, zone).unwrap();
        let (mut t, end) = (at(from), at(to));
        let mut out = Vec::new();
        while let Some(n) = r.next_after(t) {
            if n > end {
                break;
            }
            out.push(show(n));
            t = n;
        }
        out
    }

    #[test]
    fn berlin_spring_forward_fires_a_skipped_0230_once_right_after_the_change() {
        // 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that day.
        assert_eq!(
            firings(
                "30 2 * * *",
                "Europe/Berlin",
                "2026-03-27T12:00Z",
                "2026-03-30T12:00Z"
            ),
            [
                "2026-03-28T01:30:00Z", // 02:30 CET
                "2026-03-29T01:00:00Z", // 03:00 CEST, the first instant after the gap
                "2026-03-30T00:30:00Z", // 02:30 CEST
            ]
        );
    }

    #[test]
    fn berlin_fall_back_fires_a_doubled_0230_once() {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens twice that day.
        assert_eq!(
            firings(
                "30 2 * * *",
                "Europe/Berlin",
                "2026-10-23T12:00Z",
                "2026-10-26T12:00Z"
            ),
            [
                "2026-10-24T00:30:00Z",
                "2026-10-25T00:30:00Z", // the first 02:30 (CEST) only
                "2026-10-26T01:30:00Z",
            ]
        );
    }

    #[test]
    fn new_york_spring_forward_and_fall_back_fire_once_each() {
        // 2026-03-08: 02:00 EST becomes 03:00 EDT.
        assert_eq!(
            firings(
                "30 2 * * *",
                "America/New_York",
                "2026-03-07T00:00Z",
                "2026-03-09T23:00Z"
            ),
            [
                "2026-03-07T07:30:00Z",
                "2026-03-08T07:00:00Z", // 03:00 EDT
                "2026-03-09T06:30:00Z",
            ]
        );
        // 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:30 happens twice.
        assert_eq!(
            firings(
                "30 1 * * *",
                "America/New_York",
                "2026-10-31T00:00Z",
                "2026-11-02T23:00Z"
            ),
            [
                "2026-10-31T05:30:00Z",
                "2026-11-01T05:30:00Z", // the first 01:30 (EDT) only
                "2026-11-02T06:30:00Z",
            ]
        );
    }

    #[test]
    fn an_hourly_schedule_keeps_its_pace_through_both_changes() {
        // Interval jobs fire on every real instant that matches: 24 a day, 23 on the short
        // day, 25 on the long one.
        let day = |from: &str, to: &str| firings("0 * * * *", "Europe/Berlin", from, to).len();
        assert_eq!(day("2026-03-28T23:00Z", "2026-03-29T22:00Z"), 23);
        assert_eq!(day("2026-10-24T22:00Z", "2026-10-25T23:00Z"), 25);
        assert_eq!(day("2026-06-01T00:00Z", "2026-06-02T00:00Z"), 24);
    }

    #[test]
    fn bad_expressions_and_zones_are_refused_with_their_field() {
        for (expr, zone, field) in [
            ("* * * * * *", "UTC", "cron"),
            ("* * * *", "UTC", "cron"),
            ("61 * * * *", "UTC", "cron"),
            ("0 0 30 2 *", "UTC", "cron"),
            ("", "UTC", "cron"),
            ("0 * * * *", "Mars/Olympus", "timezone"),
            ("0 * * * *", "", "timezone"),
            ("0 * * * *", "../../etc/passwd", "timezone"),
        ] {
            let e = Recurring::parse(expr, zone).unwrap_err();
            assert_eq!(e.field, Some(field), "{expr:?} {zone:?}");
        }
        assert!(Recurring::parse("*/15 9-17 * * MON-FRI", "Asia/Kolkata").is_ok());
    }
}
