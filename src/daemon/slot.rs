//! Scheduled slots: the instants a cron schedule (with seconds) names in a
//! time zone.
//!
//! Neither library gets daylight-saving changes right on its own:
//! tokio-cron-scheduler 0.15 computes every tick after the first with the UTC
//! offset of the day the job was created, and croner 3 searches backwards
//! through a spring-forward gap into nonsense and may return a time before its
//! start in a fall-back overlap. So the daemon computes slots here, walking
//! the stretches of constant UTC offset, and uses the scheduler only as an
//! alarm clock (see `mod.rs`, which also corrects its drift). The rules:
//!
//! - a slot is an instant whose local wall-clock time matches the schedule;
//! - a *fixed-time* schedule (one second, one minute, one hour, such as
//!   `0 30 2 * * *`) whose time falls in a spring-forward gap runs once, at the
//!   end of the gap (03:00 in Paris); in a fall-back overlap it runs once, at
//!   the first of the two instants;
//! - other schedules (`0 */20 * * * *`) skip the gap, and run at both passes
//!   of a repeated hour: they are distinct instants.

use chrono::{DateTime, Duration, FixedOffset, LocalResult, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::{
    Cron, JobType,
    parser::{CronParser, Seconds},
};

#[derive(Debug, thiserror::Error)]
#[error("schedule {text:?} is not a valid cron schedule with seconds: {message}")]
pub struct ScheduleError {
    pub text: String,
    pub message: String,
}

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
    fixed: bool,
}

/// Bounds the walk over offset changes (two a year in most zones).
const MAX_STEPS: usize = 1_000;

impl Schedule {
    /// Parses with the settings the configuration validates with, and that
    /// tokio-cron-scheduler uses: seconds required, day-of-month AND weekday.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(text)
            .map_err(|e| ScheduleError { text: text.to_string(), message: e.to_string() })?;
        let fixed = cron.determine_job_type() == JobType::FixedTime;
        Ok(Schedule { text: text.trim().to_string(), cron, fixed })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The first slot strictly after `after`.
    pub fn next_after(&self, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Slots are whole seconds; `lo` is the inclusive lower bound.
        let mut lo = after.with_nanosecond(0)? + Duration::seconds(1);
        for _ in 0..MAX_STEPS {
            let offset = offset_at(tz, lo);
            let local = lo.with_timezone(&offset);
            let candidate = self.cron.find_next_occurrence(&local, true).ok()?.with_timezone(&Utc);
            match first_change(tz, lo, candidate) {
                None if self.fixed && is_second_pass(tz, candidate) => lo = candidate + Duration::seconds(1),
                None => return Some(candidate),
                Some(change) => {
                    if self.fixed && self.matches_in_gap(tz, change) {
                        return Some(change);
                    }
                    lo = change;
                }
            }
        }
        None
    }

    /// The slot a tick at `now` stands for: the latest slot at or before
    /// `now`, unless it is older than `tolerance` (a stray tick). Computed
    /// from the schedule rather than from the tick's own time, so instances
    /// whose ticks straddle a second boundary agree on the slot.
    pub fn due_at(&self, tz: Tz, now: DateTime<Utc>, tolerance: Duration) -> Option<DateTime<Utc>> {
        let mut due = None;
        let mut next = self.next_after(tz, now - tolerance);
        while let Some(slot) = next.filter(|s| *s <= now) {
            due = Some(slot);
            next = self.next_after(tz, slot);
        }
        due
    }

    /// Whether a fixed-time schedule names a local time skipped by the
    /// offset change at `change` (a spring-forward gap).
    fn matches_in_gap(&self, tz: Tz, change: DateTime<Utc>) -> bool {
        let before = offset_at(tz, change - Duration::seconds(1));
        let after = offset_at(tz, change);
        if after.local_minus_utc() <= before.local_minus_utc() {
            return false;
        }
        let gap_start = change.with_timezone(&before).naive_local();
        let gap_end = change.with_timezone(&after).naive_local();
        // Naive local times searched in UTC, which has no gaps of its own.
        self.cron.find_next_occurrence(&Utc.from_utc_datetime(&gap_start), true).is_ok_and(|n| n.naive_utc() < gap_end)
    }
}

fn offset_at(tz: Tz, t: DateTime<Utc>) -> FixedOffset {
    tz.offset_from_utc_datetime(&t.naive_utc()).fix()
}

/// The later of two instants showing the same local time (fall back).
fn is_second_pass(tz: Tz, t: DateTime<Utc>) -> bool {
    let naive: NaiveDateTime = t.with_timezone(&tz).naive_local();
    matches!(tz.from_local_datetime(&naive), LocalResult::Ambiguous(_, late) if late.with_timezone(&Utc) == t)
}

/// The first instant in `(from, to]` whose UTC offset differs from `from`'s,
/// to the second. Offsets are compared a day apart, so two changes within one
/// day (no real zone has them) would be missed.
fn first_change(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let start = offset_at(tz, from);
    let mut lo = from;
    while lo < to {
        let hi = (lo + Duration::days(1)).min(to);
        if offset_at(tz, hi) != start {
            // Invariant: offset(lo) == start, offset(hi) != start.
            let mut hi = hi;
            while hi - lo > Duration::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                let mid = mid.with_nanosecond(0).unwrap_or(mid);
                if offset_at(tz, mid) == start {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            return Some(hi);
        }
        lo = hi;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARIS: Tz = chrono_tz::Europe::Paris;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn slots(schedule: &str, tz: Tz, from: &str, n: usize) -> Vec<String> {
        let s = Schedule::parse(schedule).unwrap();
        let mut t = at(from);
        let mut out = Vec::new();
        for _ in 0..n {
            t = s.next_after(tz, t).unwrap();
            out.push(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        }
        out
    }

    #[test]
    fn next_slots_across_daylight_saving_changes() {
        let cases: &[(&str, &str, &[&str])] = &[
            // Spring forward in Paris (02:00 CET → 03:00 CEST): 02:30 does not
            // exist on 29 March; it runs at the end of the gap, once.
            (
                "0 30 2 * * *",
                "2026-03-27T12:00:00Z",
                &["2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"],
            ),
            // Fall back (03:00 CEST → 02:00 CET): 02:30 happens twice on 25
            // October; it runs at the first one only.
            (
                "0 30 2 * * *",
                "2026-10-23T12:00:00Z",
                &["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
            ),
            // A time outside the change is at the same local time every day.
            (
                "0 30 6 * * Mon-Fri",
                "2026-03-26T12:00:00Z",
                &["2026-03-27T05:30:00Z", "2026-03-30T04:30:00Z", "2026-03-31T04:30:00Z"],
            ),
            // Interval schedules skip the gap and run at both passes of the
            // repeated hour, in time order.
            (
                "0 */30 * * * *",
                "2026-03-29T00:15:00Z",
                &["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"],
            ),
            (
                "0 */30 * * * *",
                "2026-10-25T00:15:00Z",
                &["2026-10-25T00:30:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:00:00Z"],
            ),
            ("*/2 * * * * *", "2026-11-23T08:00:00.400Z", &["2026-11-23T08:00:02Z", "2026-11-23T08:00:04Z"]),
        ];
        for (schedule, from, expect) in cases {
            assert_eq!(slots(schedule, PARIS, from, expect.len()), *expect, "{schedule} from {from}");
        }
    }

    #[test]
    fn a_tick_stands_for_the_latest_due_slot() {
        let tol = Duration::seconds(30);
        let cases: &[(&str, &str, Option<&str>)] = &[
            // Two instances firing either side of a second boundary agree.
            ("*/2 * * * * *", "2026-11-23T08:00:00.999Z", Some("2026-11-23T08:00:00Z")),
            ("*/2 * * * * *", "2026-11-23T08:00:01.002Z", Some("2026-11-23T08:00:00Z")),
            ("*/2 * * * * *", "2026-11-23T08:00:02Z", Some("2026-11-23T08:00:02Z")),
            // Paris DST days, 02:30 daily.
            ("0 30 2 * * *", "2026-03-29T01:00:00.300Z", Some("2026-03-29T01:00:00Z")),
            // The scheduler's stale offset would fire at 02:30 CET = 03:30 CEST: not a slot.
            ("0 30 2 * * *", "2026-03-29T01:30:00.300Z", None),
            ("0 30 2 * * *", "2026-10-25T00:30:00.300Z", Some("2026-10-25T00:30:00Z")),
            // The second 02:30 of 25 October is not a slot of a fixed-time schedule.
            ("0 30 2 * * *", "2026-10-25T01:30:00.300Z", None),
            ("0 30 2 * * *", "2026-10-26T01:30:29Z", Some("2026-10-26T01:30:00Z")),
            ("0 30 2 * * *", "2026-10-26T01:30:31Z", None),
        ];
        for (schedule, now, expect) in cases {
            let s = Schedule::parse(schedule).unwrap();
            let due = s.due_at(PARIS, at(now), tol);
            assert_eq!(due, expect.map(at), "{schedule} at {now}");
        }
    }

    #[test]
    fn other_zones_and_utc() {
        // New York springs forward at 02:00 EST on 8 March 2026.
        let ny = chrono_tz::America::New_York;
        assert_eq!(
            slots("0 30 2 * * *", ny, "2026-03-07T12:00:00Z", 3),
            ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"]
        );
        assert_eq!(
            slots("0 0 12 1 * *", chrono_tz::UTC, "2026-01-15T00:00:00Z", 2),
            ["2026-02-01T12:00:00Z", "2026-03-01T12:00:00Z"]
        );
    }

    #[test]
    fn bad_schedules_are_refused() {
        for bad in ["30 6 * * *", "0 61 6 * * *", "nope"] {
            let e = Schedule::parse(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }
}
