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
    #[error("{from} to {to} holds {count} {grain} intervals, more than {max}; split the backfill")]
    TooMany {
        from: String,
        to: String,
        count: usize,
        grain: Grain,
        max: usize,
    },
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

/// `YYYY-MM-DD`, `YYYY-MM-DDTHH` or `YYYY-MM` as the instant it starts.
pub fn parse_instant(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0);
    }
    if let Some((d, h)) = s.split_once('T') {
        let d = NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()?;
        let h: u32 = h.parse().ok().filter(|_| h.len() == 2)?;
        return d.and_hms_opt(h, 0, 0);
    }
    NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d")
        .ok()
        .filter(|_| s.len() == 7)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

/// Every interval of `grain` from the one containing `from` to the one containing `to`
/// (both included), in order.
pub fn intervals(grain: Grain, from: &str, to: &str) -> Result<Vec<Interval>, IntervalError> {
    let f = parse_instant(from).ok_or_else(|| IntervalError::BadBound(from.into()))?;
    let t = parse_instant(to).ok_or_else(|| IntervalError::BadBound(to.into()))?;
    if f > t {
        return Err(IntervalError::Reversed {
            from: from.into(),
            to: to.into(),
        });
    }
    let last = Interval::containing(grain, t);
    let mut out = vec![Interval::containing(grain, f)];
    while out.last().expect("one") < &last {
        out.push(out.last().expect("one").next());
        if out.len() > MAX_INTERVALS {
            return Err(IntervalError::TooMany {
                from: from.into(),
                to: to.into(),
                count: out.len(),
                grain,
                max: MAX_INTERVALS,
            });
        }
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
