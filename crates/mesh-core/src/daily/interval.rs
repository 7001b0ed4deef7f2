//! Time intervals of time-range jobs: one hour, day or month, identified by its start
//! (`2026-11-03T05`, `2026-11-03`, `2026-11`), the SQL parameters a run binds for it, the
//! predicate that selects its rows in the output, and the compact set of intervals done that is
//! committed in the output table's snapshot summary.

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use mesh_domain::{ColumnType, Grain};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum IntervalError {
    #[error("`{0}` is not a date or hour: use YYYY-MM-DD, YYYY-MM-DDTHH or YYYY-MM")]
    BadBound(String),
    #[error("--from {from} is after --to {to}")]
    Reversed { from: String, to: String },
    #[error(transparent)]
    NotComplete(Box<NotComplete>),
    #[error("{from} to {to} holds {count} {grain} intervals, more than {max}; split the backfill")]
    TooMany {
        from: String,
        to: String,
        count: usize,
        grain: Grain,
        max: usize,
    },
}

/// An interval named for a run that is not complete at the run's time.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{label} is not complete at the run's time {at}: it ends at {end}{lag}, so its data may still arrive\n  help: a run processes only complete intervals; run it after {complete}, or pass --at to replay a run at a later time")]
pub struct NotComplete {
    pub label: String,
    pub at: String,
    pub end: String,
    pub lag: String,
    pub complete: String,
}

/// One interval: `[start, start + grain)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    pub grain: Grain,
    pub start: NaiveDateTime,
}

/// Largest backfill in intervals (a decade of days): bounds memory and typos like 20266.
const MAX_INTERVALS: usize = 4000;

impl Interval {
    /// The interval of `grain` containing `t`.
    pub fn containing(grain: Grain, t: NaiveDateTime) -> Interval {
        let d = t.date();
        let start = match grain {
            Grain::Hour => d.and_hms_opt(t.hour(), 0, 0),
            Grain::Day => d.and_hms_opt(0, 0, 0),
            Grain::Month => d.with_day(1).and_then(|d| d.and_hms_opt(0, 0, 0)),
        }
        .expect("valid start");
        Interval { grain, start }
    }

    pub fn end(&self) -> NaiveDateTime {
        match self.grain {
            Grain::Hour => self.start + Duration::hours(1),
            Grain::Day => self.start + Duration::days(1),
            Grain::Month => {
                let d = self.start.date();
                let (y, m) = if d.month() == 12 {
                    (d.year() + 1, 1)
                } else {
                    (d.year(), d.month() + 1)
                };
                NaiveDate::from_ymd_opt(y, m, 1)
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .expect("valid month")
            }
        }
    }

    pub fn next(&self) -> Interval {
        Interval {
            grain: self.grain,
            start: self.end(),
        }
    }

    pub fn prev(&self) -> Interval {
        Interval::containing(self.grain, self.start - Duration::seconds(1))
    }

    /// When the interval's data counts as complete: its end plus the job's lag.
    pub fn complete_at(&self, lag_seconds: u64) -> NaiveDateTime {
        self.end() + Duration::seconds(lag_seconds as i64)
    }

    /// Refuses an interval that is not complete at the run's time `at`.
    pub fn check_complete(&self, at: NaiveDateTime, lag_seconds: u64) -> Result<(), IntervalError> {
        if self.complete_at(lag_seconds) <= at {
            return Ok(());
        }
        Err(IntervalError::NotComplete(Box::new(NotComplete {
            label: self.label(),
            at: format_instant(at),
            end: format_instant(self.end()),
            lag: if lag_seconds == 0 {
                String::new()
            } else {
                format!(" and the job's lag is {lag_seconds} s")
            },
            complete: format_instant(self.complete_at(lag_seconds)),
        })))
    }

    /// `2026-11-03T05`, `2026-11-03` or `2026-11`.
    pub fn label(&self) -> String {
        match self.grain {
            Grain::Hour => self.start.format("%Y-%m-%dT%H").to_string(),
            Grain::Day => self.start.format("%Y-%m-%d").to_string(),
            Grain::Month => self.start.format("%Y-%m").to_string(),
        }
    }

    pub fn parse_label(grain: Grain, s: &str) -> Option<Interval> {
        let t = parse_instant(s)?;
        let i = Interval::containing(grain, t);
        (i.label() == s).then_some(i)
    }

    /// Parameters a run of this interval binds: `interval_start` and `interval_end` (end
    /// exclusive; dates for day and month grains, `YYYY-MM-DD HH:MM:SS` for hours) and
    /// `run_date`, the interval's first day.
    pub fn params(&self) -> [(String, String); 3] {
        let fmt = |t: NaiveDateTime| match self.grain {
            Grain::Hour => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            _ => t.format("%Y-%m-%d").to_string(),
        };
        [
            ("interval_start".into(), fmt(self.start)),
            ("interval_end".into(), fmt(self.end())),
            ("run_date".into(), self.start.format("%Y-%m-%d").to_string()),
        ]
    }

    /// The SQL predicate selecting this interval's rows of `column` (of type `ty`).
    pub fn predicate(&self, column: &str, ty: ColumnType) -> String {
        let lit = |t: NaiveDateTime| match ty {
            ColumnType::Date => format!("DATE '{}'", t.format("%Y-%m-%d")),
            _ => format!("TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S")),
        };
        format!("{column} >= {} AND {column} < {}", lit(self.start), lit(self.end()))
    }
}

/// A run's time as people read it in messages: `2026-12-07 06:00:00 UTC`.
pub fn format_instant(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A run's time from the command line or a schedule: RFC 3339 (`2026-12-07T06:00:00Z`,
/// `…+01:00`), `YYYY-MM-DDTHH:MM[:SS]` or `YYYY-MM-DD HH:MM[:SS]` (UTC), or a date
/// (its midnight, UTC). Returned in UTC.
///
/// Every field is zero-padded (`2026-1-5` and `06:0` are refused): chrono alone would accept
/// them, the Glue runner (`parse_run_time`, `_RUN_TIME`) refuses them, and both engines must
/// read the same text as the same time. The grammar, shared with the runner:
/// `YYYY-MM-DD` [`T`|` ` `HH:MM` [`Z`] | `HH:MM:SS`[`.f{1,9}`] [`Z`|`±HH:MM`]].
pub fn parse_run_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    if s.len() < 10 || !s.is_char_boundary(10) {
        return None;
    }
    let date = padded_date(&s[..10])?;
    let rest = &s[10..];
    if rest.is_empty() {
        return date.and_hms_opt(0, 0, 0);
    }
    let rest = rest.strip_prefix(['T', ' '])?;
    let (clock, offset_minutes, with_offset) = if let Some(c) = rest.strip_suffix('Z') {
        (c, 0i64, false)
    } else if rest.len() > 6 && matches!(rest.as_bytes()[rest.len() - 6], b'+' | b'-') {
        let (c, zone) = rest.split_at(rest.len() - 6);
        let (h, m) = zone[1..].split_once(':')?;
        let (h, m) = (two_digits(h)?, two_digits(m)?);
        if h > 23 || m > 59 {
            return None;
        }
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        (c, sign * (i64::from(h) * 60 + i64::from(m)), true)
    } else {
        (rest, 0, false)
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (clock, None),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    // An offset other than Z needs the seconds (RFC 3339); a fraction needs them too.
    if parts.len() == 2 && (frac.is_some() || with_offset) {
        return None;
    }
    let (h, mi) = (two_digits(parts[0])?, two_digits(parts[1])?);
    let sec = match parts.get(2) {
        Some(p) => two_digits(p)?,
        None => 0,
    };
    let nanos = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<9}").parse::<u32>().ok()?
        }
        Some(_) => return None,
    };
    let t = date.and_hms_nano_opt(h, mi, sec, nanos)?;
    Some(t - Duration::minutes(offset_minutes))
}

/// `YYYY-MM-DD` with every field zero-padded and a real day (mesh-domain's `parse_date`, the
/// rule of `date` parameters).
fn padded_date(s: &str) -> Option<NaiveDate> {
    let (y, m, d) = mesh_domain::param::parse_date(s)?;
    NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)
}

fn two_digits(s: &str) -> Option<u32> {
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

/// Why a scheduled run processes an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Complete and not done yet (the latest, or one missed while the job did not run).
    Missing,
    /// Done, processed again because it is among the `lookback` latest.
    Lookback,
}

/// What a scheduled run of a time-range job processes at the run's time: the complete
/// intervals not yet done, oldest first, and the latest done ones again for `lookback`.
#[derive(Debug, Clone, PartialEq)]
pub struct DuePlan {
    pub due: Vec<(Interval, Due)>,
    /// More intervals are due than one run processes: the next run continues.
    pub more_due: bool,
    /// The first interval that is not complete at the run's time, and when it will be.
    pub in_progress: Interval,
    pub in_progress_complete_at: NaiveDateTime,
    /// Intervals recorded as done that were not complete at the run's time (recorded before
    /// their data was whole): dropped from the state with the next commit, processed when due.
    pub not_complete_done: Vec<Interval>,
}

impl DuePlan {
    /// `2026-11-30 (missing), 2026-12-01 in progress: complete at 2026-12-02 00:00:00 UTC`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .due
            .iter()
            .map(|(i, why)| {
                format!(
                    "{} ({})",
                    i.label(),
                    match why {
                        Due::Missing => "complete, not done",
                        Due::Lookback => "lookback: done, again for late data",
                    }
                )
            })
            .collect();
        if parts.is_empty() {
            parts.push("nothing due".into());
        }
        if self.more_due {
            parts.push(format!("more than {MAX_INTERVALS} due: the next run continues"));
        }
        parts.push(format!(
            "{} in progress: not yet (complete at {})",
            self.in_progress.label(),
            format_instant(self.in_progress_complete_at)
        ));
        parts.join(", ")
    }
}

/// The plan of a scheduled run at `at` (see [`DuePlan`]). `start` is the first interval to
/// catch up from; without it, the job catches up after the latest interval it has done, and
/// its first run processes only the latest complete interval.
pub fn due(
    grain: Grain,
    start: Option<&str>,
    lag_seconds: u64,
    lookback: u32,
    done: &DoneSet,
    at: NaiveDateTime,
) -> DuePlan {
    let at_less_lag = at - Duration::seconds(lag_seconds as i64);
    let in_progress = Interval::containing(grain, at_less_lag);
    let last_complete = in_progress.prev();
    let not_complete_done: Vec<Interval> = done.done.iter().filter(|i| **i >= in_progress).copied().collect();
    let latest_done = done.done.range(..in_progress).next_back().copied();
    let first = match (start.and_then(|s| Interval::parse_label(grain, s)), latest_done) {
        (Some(s), _) => Some(s),
        (None, Some(d)) => Some(d.next()),
        (None, None) => Some(last_complete),
    };
    let mut due = Vec::new();
    let mut more_due = false;
    if let Some(mut i) = first {
        while i <= last_complete {
            if !done.contains(&i) {
                if due.len() == MAX_INTERVALS {
                    more_due = true;
                    break;
                }
                due.push((i, Due::Missing));
            }
            i = i.next();
        }
    }
    // Lookback: the latest done intervals, only while the run is not catching up a backlog.
    if !more_due {
        let again: Vec<Interval> = done
            .done
            .range(..in_progress)
            .rev()
            .take(lookback as usize)
            .copied()
            .collect();
        due.extend(again.into_iter().map(|i| (i, Due::Lookback)));
        due.sort_by_key(|(i, _)| *i);
    }
    DuePlan {
        due,
        more_due,
        in_progress,
        in_progress_complete_at: in_progress.complete_at(lag_seconds),
        not_complete_done,
    }
}

/// `YYYY-MM-DD`, `YYYY-MM-DDTHH` or `YYYY-MM` as the instant it starts.
/// Every field zero-padded, as the Glue runner's `_parse_instant` requires (`2026-1-5`,
/// `2026-01-05T6` and `2026-1` are refused by both).
pub fn parse_instant(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    if let Some(d) = padded_date(s) {
        return d.and_hms_opt(0, 0, 0);
    }
    if let Some((d, h)) = s.split_once('T') {
        let d = padded_date(d)?;
        return d.and_hms_opt(two_digits(h)?, 0, 0);
    }
    if s.len() != 7 {
        return None;
    }
    padded_date(&format!("{s}-01"))?.and_hms_opt(0, 0, 0)
}

/// The last instant of the period `s` writes: `2026-11` ends with November's last second,
/// `2026-11-03` with that day's, `2026-11-03T05` with that hour's. So `--to 2026-11` on a
/// daily job means every day of November, not its first.
fn period_end(s: &str) -> Option<NaiveDateTime> {
    let start = parse_instant(s)?;
    let s = s.trim();
    let grain = if s.contains('T') {
        Grain::Hour
    } else if s.len() == 7 {
        Grain::Month
    } else {
        Grain::Day
    };
    Some(Interval::containing(grain, start).end() - Duration::seconds(1))
}

/// How many `grain` intervals lie from `a` to `b` (both included), without listing them.
fn count_between(grain: Grain, a: &Interval, b: &Interval) -> i64 {
    match grain {
        Grain::Hour => (b.start - a.start).num_hours() + 1,
        Grain::Day => (b.start - a.start).num_days() + 1,
        Grain::Month => {
            let months = |t: NaiveDateTime| i64::from(t.year()) * 12 + i64::from(t.month());
            months(b.start) - months(a.start) + 1
        }
    }
}

/// Every interval of `grain` from the one containing `from` to the last one in the period
/// `to` writes (both included), in order.
pub fn intervals(grain: Grain, from: &str, to: &str) -> Result<Vec<Interval>, IntervalError> {
    let f = parse_instant(from).ok_or_else(|| IntervalError::BadBound(from.into()))?;
    let t = period_end(to).ok_or_else(|| IntervalError::BadBound(to.into()))?;
    if f > t {
        return Err(IntervalError::Reversed {
            from: from.into(),
            to: to.into(),
        });
    }
    let first = Interval::containing(grain, f);
    let last = Interval::containing(grain, t);
    let count = count_between(grain, &first, &last);
    if count > MAX_INTERVALS as i64 {
        return Err(IntervalError::TooMany {
            from: from.into(),
            to: to.into(),
            count: count as usize,
            grain,
            max: MAX_INTERVALS,
        });
    }
    let mut out = vec![first];
    while out.last().expect("one") < &last {
        out.push(out.last().expect("one").next());
    }
    Ok(out)
}

/// The intervals a job has committed, as stored in a snapshot summary property: runs of
/// consecutive intervals, `2026-10-01/2026-11-09,2026-11-12` (a year of daily runs stays one
/// short range).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoneSet {
    grain: Option<Grain>,
    done: BTreeSet<Interval>,
}

impl DoneSet {
    /// Parses the stored form; intervals of another grain (the manifest changed) are dropped.
    pub fn parse(grain: Grain, s: &str) -> DoneSet {
        let mut done = BTreeSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (a, b) = part.split_once('/').unwrap_or((part, part));
            let (Some(a), Some(b)) = (Interval::parse_label(grain, a), Interval::parse_label(grain, b)) else {
                continue;
            };
            let mut i = a;
            while i <= b && done.len() <= 1_000_000 {
                done.insert(i);
                i = i.next();
            }
        }
        DoneSet {
            grain: Some(grain),
            done,
        }
    }

    pub fn contains(&self, i: &Interval) -> bool {
        self.done.contains(i)
    }

    pub fn remove(&mut self, i: &Interval) {
        self.done.remove(i);
    }

    pub fn insert(&mut self, i: Interval) {
        self.grain = Some(i.grain);
        self.done.insert(i);
    }

    pub fn len(&self) -> usize {
        self.done.len()
    }

    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// The stored form.
    pub fn encode(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let mut run: Option<(Interval, Interval)> = None;
        for &i in &self.done {
            run = match run {
                Some((a, b)) if b.next() == i => Some((a, i)),
                Some((a, b)) => {
                    parts.push(range(a, b));
                    Some((i, i))
                }
                None => Some((i, i)),
            };
        }
        if let Some((a, b)) = run {
            parts.push(range(a, b));
        }
        parts.join(",")
    }
}

fn range(a: Interval, b: Interval) -> String {
    if a == b {
        a.label()
    } else {
        format!("{}/{}", a.label(), b.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_cross_months_and_years() {
        let v = intervals(Grain::Day, "2026-12-30", "2027-01-02").unwrap();
        let labels: Vec<String> = v.iter().map(Interval::label).collect();
        assert_eq!(labels, ["2026-12-30", "2026-12-31", "2027-01-01", "2027-01-02"]);
        let m = intervals(Grain::Month, "2026-11-15", "2027-02-01").unwrap();
        assert_eq!(
            m.iter().map(Interval::label).collect::<Vec<_>>(),
            ["2026-11", "2026-12", "2027-01", "2027-02"]
        );
        let h = intervals(Grain::Hour, "2026-11-03T22", "2026-11-04T01").unwrap();
        assert_eq!(h.len(), 4);
        assert_eq!(h[3].label(), "2026-11-04T01");
        assert!(matches!(
            intervals(Grain::Day, "2026-11-05", "2026-11-01"),
            Err(IntervalError::Reversed { .. })
        ));
        assert!(matches!(
            intervals(Grain::Day, "2026-13-01", "2026-11-01"),
            Err(IntervalError::BadBound(_))
        ));
        assert!(matches!(
            intervals(Grain::Day, "1900-01-01", "2026-11-01"),
            Err(IntervalError::TooMany { .. })
        ));
        // The error counts the real number of intervals.
        let e = intervals(Grain::Day, "0001-01-01", "9999-12-31")
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds 3652059 day intervals"), "{e}");
        // A coarser `--to` covers its whole period.
        let nov = intervals(Grain::Day, "2026-11", "2026-11").unwrap();
        assert_eq!((nov.len(), nov[29].label().as_str()), (30, "2026-11-30"));
        let day = intervals(Grain::Hour, "2026-11-03", "2026-11-03").unwrap();
        assert_eq!((day.len(), day[23].label().as_str()), (24, "2026-11-03T23"));
        assert_eq!(intervals(Grain::Month, "2026-11-15", "2026-11-20").unwrap().len(), 1);
        assert_eq!(intervals(Grain::Day, "2026-12-31", "2027-01").unwrap().len(), 32);
    }

    #[test]
    fn params_and_predicates() {
        let d = Interval::parse_label(Grain::Day, "2026-11-30").unwrap();
        assert_eq!(d.params()[0].1, "2026-11-30");
        assert_eq!(d.params()[1].1, "2026-12-01");
        assert_eq!(
            d.predicate("sale_date", ColumnType::Date),
            "sale_date >= DATE '2026-11-30' AND sale_date < DATE '2026-12-01'"
        );
        let h = Interval::parse_label(Grain::Hour, "2026-11-30T23").unwrap();
        assert_eq!(h.params()[1].1, "2026-12-01 00:00:00");
        assert_eq!(
            h.predicate("ts", ColumnType::Timestamp),
            "ts >= TIMESTAMP '2026-11-30 23:00:00' AND ts < TIMESTAMP '2026-12-01 00:00:00'"
        );
        let m = Interval::parse_label(Grain::Month, "2026-12").unwrap();
        assert_eq!(m.params()[1].1, "2027-01-01");
        assert!(Interval::parse_label(Grain::Day, "2026-12").is_none());
    }

    fn day(s: &str) -> Interval {
        Interval::parse_label(Grain::Day, s).unwrap()
    }

    fn at(s: &str) -> NaiveDateTime {
        parse_run_time(s).unwrap()
    }

    fn labels(p: &DuePlan) -> Vec<String> {
        p.due.iter().map(|(i, _)| i.label()).collect()
    }

    #[test]
    fn a_scheduled_run_processes_complete_intervals_only() {
        let mut done = DoneSet::default();
        // First run at 06:00 without a start: yesterday, never today.
        let p = due(Grain::Day, None, 0, 0, &done, at("2026-12-07T06:00:00Z"));
        assert_eq!(labels(&p), ["2026-12-06"]);
        assert_eq!(p.in_progress.label(), "2026-12-07");
        assert!(p
            .describe()
            .contains("2026-12-07 in progress: not yet (complete at 2026-12-08 00:00:00 UTC)"));
        done.insert(day("2026-12-06"));
        // The same day again: nothing due.
        assert!(due(Grain::Day, None, 0, 0, &done, at("2026-12-07T23:59:59"))
            .due
            .is_empty());
        // Three days without a run: the three missing days, oldest first.
        let p = due(Grain::Day, None, 0, 0, &done, at("2026-12-10T06:00"));
        assert_eq!(labels(&p), ["2026-12-07", "2026-12-08", "2026-12-09"]);
        assert!(p.due.iter().all(|(_, w)| *w == Due::Missing));
        // Exactly at midnight the day that just ended is complete.
        assert_eq!(
            labels(&due(Grain::Day, None, 0, 0, &done, at("2026-12-08T00:00"))),
            ["2026-12-07"]
        );
        // A lag of 2 hours: at 01:00 the day before is not complete yet.
        let p = due(Grain::Day, None, 7200, 0, &done, at("2026-12-08T01:00"));
        assert!(p.due.is_empty(), "{p:?}");
        assert_eq!(p.in_progress.label(), "2026-12-07");
        assert_eq!(
            labels(&due(Grain::Day, None, 7200, 0, &done, at("2026-12-08T02:00"))),
            ["2026-12-07"]
        );
        // Lookback 1: yesterday again beside today's missing day.
        let p = due(Grain::Day, None, 0, 1, &done, at("2026-12-08T06:00"));
        assert_eq!(labels(&p), ["2026-12-06", "2026-12-07"]);
        assert_eq!(p.due[0].1, Due::Lookback);
        // A start fills the gaps from there on.
        let p = due(Grain::Day, Some("2026-12-03"), 0, 0, &done, at("2026-12-07T06:00"));
        assert_eq!(labels(&p), ["2026-12-03", "2026-12-04", "2026-12-05"]);
        // A start after the run's time: nothing yet.
        assert!(due(Grain::Day, Some("2027-01-01"), 0, 0, &done, at("2026-12-07T06:00"))
            .due
            .is_empty());
    }

    #[test]
    fn hours_months_and_intervals_done_too_early() {
        let mut done = DoneSet::default();
        // Hourly at HH:00: the hour that just ended, never the one that starts.
        let p = due(Grain::Hour, None, 0, 0, &done, at("2026-12-07T06:00:00Z"));
        assert_eq!(labels(&p), ["2026-12-07T05"]);
        let p = due(Grain::Month, None, 0, 0, &done, at("2027-01-01T00:00"));
        assert_eq!(labels(&p), ["2026-12"]);
        // Legacy state: today and 9999-12-31 recorded as done. They are not trusted, and the
        // days before them are still caught up.
        done.insert(day("2026-12-05"));
        done.insert(day("2026-12-07"));
        done.insert(day("9999-12-31"));
        let p = due(Grain::Day, None, 0, 0, &done, at("2026-12-07T06:00"));
        assert_eq!(labels(&p), ["2026-12-06"]);
        assert_eq!(
            p.not_complete_done.iter().map(Interval::label).collect::<Vec<_>>(),
            ["2026-12-07", "9999-12-31"]
        );
        // A long backlog is processed in bounded runs.
        let p = due(
            Grain::Hour,
            Some("1990-01-01T00"),
            0,
            3,
            &DoneSet::default(),
            at("2026-12-07T06:00"),
        );
        assert_eq!(p.due.len(), MAX_INTERVALS);
        assert!(p.more_due && p.describe().contains("the next run continues"));
        assert_eq!(p.due[0].0.label(), "1990-01-01T00");
    }

    #[test]
    fn explicit_intervals_must_be_complete() {
        let d = day("2026-12-07");
        assert!(d.check_complete(at("2026-12-08T00:00"), 0).is_ok());
        let e = d.check_complete(at("2026-12-07T06:00"), 0).unwrap_err().to_string();
        assert!(
            e.contains("2026-12-07 is not complete at the run's time 2026-12-07 06:00:00 UTC"),
            "{e}"
        );
        assert!(d.check_complete(at("2026-12-08T00:30"), 3600).is_err());
        assert!(parse_run_time("2026-12-07T07:00:00+01:00") == Some(at("2026-12-07T06:00")));
        assert!(parse_run_time("2026-12-07").is_some() && parse_run_time("tomorrow").is_none());
    }

    /// The same cases as the runner's (crates/mesh-infra/tests/tools/runner_edges.py,
    /// `RUN_TIMES` and `INSTANTS`): both engines accept and refuse the same texts.
    #[test]
    fn unpadded_dates_and_times_are_refused_as_the_runner_refuses_them() {
        for (text, want) in [
            ("2026-01-05", Some("2026-01-05T00:00")),
            ("2026-01-05T06:00", Some("2026-01-05T06:00")),
            ("2026-01-05 06:00:00", Some("2026-01-05T06:00")),
            ("2026-01-05T06:00Z", Some("2026-01-05T06:00")),
            ("2026-01-05T07:00:00+01:00", Some("2026-01-05T06:00")),
            ("2026-01-05T05:30:00-00:30", Some("2026-01-05T06:00")),
            ("2026-1-5", None),
            ("2026-01-5", None),
            ("2026-1-05T06:00:00Z", None),
            ("2026-01-05T6:00", None),
            ("2026-01-05T06:0", None),
            ("2026-01-05T06", None),
            ("2026-01-05T06:00+01:00", None),
            ("2026-01-05T06:00:00+1:00", None),
            ("20260105", None),
            ("2026-W02-1", None),
            ("2026-02-30", None),
            ("2026-11- 5", None),
        ] {
            assert_eq!(parse_run_time(text), want.map(at), "run time `{text}`");
        }
        for (text, ok) in [
            ("2026-01-05", true),
            ("2026-01-05T06", true),
            ("2026-01", true),
            ("2026-1-5", false),
            ("2026-1-05", false),
            ("2026-01-5", false),
            ("2026-1", false),
            ("2026-01-05T6", false),
            ("2026-11- 5", false),
            ("0000-01-01", false),
        ] {
            assert_eq!(parse_instant(text).is_some(), ok, "instant `{text}`");
        }
    }

    #[test]
    fn done_set_round_trips_as_ranges() {
        let mut s = DoneSet::default();
        for i in intervals(Grain::Day, "2026-10-01", "2026-11-09").unwrap() {
            s.insert(i);
        }
        s.insert(Interval::parse_label(Grain::Day, "2026-11-12").unwrap());
        let enc = s.encode();
        assert_eq!(enc, "2026-10-01/2026-11-09,2026-11-12");
        let back = DoneSet::parse(Grain::Day, &enc);
        assert_eq!(back.len(), 41);
        assert_eq!(back.encode(), enc);
        assert!(back.contains(&Interval::parse_label(Grain::Day, "2026-10-31").unwrap()));
        assert!(!back.contains(&Interval::parse_label(Grain::Day, "2026-11-10").unwrap()));
        assert!(DoneSet::parse(Grain::Day, "garbage,2026-11").is_empty());
    }
}
