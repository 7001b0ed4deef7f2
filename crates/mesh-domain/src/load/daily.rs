//! Daily operation: incremental inputs, time-range jobs, and the daily-overwrite trap.

use super::unchecked::UncheckedJob;
use super::FileCx;
use crate::diagnostic::did_you_mean;
use crate::model::{ColumnType, Grain, Incremental, OnRewrite, Table, TableRef, TimeRange, Transform};

/// `[jobs.incremental]` and `[jobs.time_range]` of job `i`.
pub(super) fn check_daily(
    cx: &mut FileCx<'_>,
    i: usize,
    j: &UncheckedJob,
    inputs: &[TableRef],
    out_table: Option<&Table>,
) -> (Option<Incremental>, Option<TimeRange>) {
    let f = |field: &str| format!("jobs[{i}].{field}");
    let mode = j.mode.as_deref().unwrap_or("append");
    let incremental = j.incremental.as_ref().and_then(|inc| {
        let before = cx.diags.len();
        let mut refs = Vec::new();
        if inc.inputs.is_empty() {
            cx.err_help(
                f("incremental.inputs"),
                "an incremental job names the inputs it reads incrementally",
                format!("e.g. inputs = [\"{}\"]", j.inputs.first().map(String::as_str).unwrap_or("raw.events")),
            );
        }
        for (k, name) in inc.inputs.iter().enumerate() {
            match inputs.iter().find(|r| r.to_string() == *name) {
                Some(r) => refs.push(r.clone()),
                None => cx.err_help(
                    f(&format!("incremental.inputs[{k}]")),
                    format!("`{name}` is not one of the job's inputs"),
                    format!("the job's inputs are: {}", j.inputs.join(", ")),
                ),
            }
        }
        let on_rewrite = match inc.on_rewrite.as_deref() {
            None | Some("error") => OnRewrite::Error,
            Some("full_read") => OnRewrite::FullRead,
            Some(other) => {
                cx.err_help(
                    f("incremental.on_rewrite"),
                    format!("`{other}` is not a choice"),
                    "use \"error\" (fail, naming the snapshot) or \"full_read\"",
                );
                OnRewrite::Error
            }
        };
        if !matches!(mode, "append" | "merge") {
            cx.err_help(
                f("mode"),
                format!("an incremental job cannot use mode `{mode}`: each run sees only the new input, so replacing the output with it loses what earlier runs wrote"),
                "use mode = \"append\" or \"merge\", or a time-range job ([jobs.time_range]) to recompute whole intervals",
            );
        }
        (cx.diags.len() == before).then_some(Incremental {
            inputs: refs,
            on_rewrite,
        })
    });
    let time_range = j.time_range.as_ref().and_then(|tr| {
        let before = cx.diags.len();
        let grain = Grain::parse(&tr.grain);
        if grain.is_none() {
            cx.err_help(
                f("time_range.grain"),
                format!("`{}` is not a grain", tr.grain),
                "use \"hour\", \"day\" or \"month\"",
            );
        }
        let column = cx.name(&f("time_range.column"), &tr.column);
        if let (Some(t), Some(c)) = (out_table, &column) {
            match t.column(c.as_str()) {
                None => cx.err_maybe_help(
                    f("time_range.column"),
                    format!("`{c}` is not a column of `{}`", t.reference()),
                    did_you_mean(c.as_str(), t.columns.iter().map(|c| c.name.as_str())),
                ),
                Some(col) => {
                    let time = matches!(
                        col.data_type,
                        ColumnType::Date | ColumnType::Timestamp | ColumnType::Timestamptz
                    );
                    if !time || (col.data_type == ColumnType::Date && grain == Some(Grain::Hour)) {
                        cx.err_help(
                            f("time_range.column"),
                            format!(
                                "`{c}` is a {} column, which cannot hold {} intervals",
                                col.data_type, tr.grain
                            ),
                            "pick a date or timestamp column (hour grain needs a timestamp)",
                        );
                    }
                }
            }
        }
        if mode != "overwrite" {
            cx.err_help(
                f("mode"),
                format!("a time-range job replaces exactly its interval's rows; mode `{mode}` does not fit"),
                "set mode = \"overwrite\" (with [jobs.time_range] it overwrites only the interval)",
            );
        }
        if j.incremental.is_some() {
            cx.err_help(
                f("time_range"),
                "a job is either incremental or time-range, not both",
                "a time-range job recomputes its interval from the full inputs; drop [jobs.incremental]",
            );
        }
        let start = match (&tr.start, grain) {
            (Some(s), Some(g)) if !is_interval_label(g, s) => {
                cx.err_help(
                    f("time_range.start"),
                    format!("`{s}` is not the start of a {g} interval"),
                    format!("write the first {g} to process, e.g. start = \"{}\"", label_example(g)),
                );
                None
            }
            (s, _) => s.clone(),
        };
        let lag_seconds = match tr.lag.as_deref().map(parse_lag) {
            None => 0,
            Some(Ok(s)) => s,
            Some(Err(why)) => {
                cx.err_help(
                    f("time_range.lag"),
                    format!("`{}` is not a lag: {why}", tr.lag.as_deref().unwrap_or_default()),
                    "write how long after an interval ends its data is complete: a number and a unit, e.g. lag = \"2h\", \"30m\", \"1d\" or \"1d6h\" (at most 366 days)",
                );
                0
            }
        };
        let lookback = match tr.lookback {
            None => 0,
            Some(n) if (0..=MAX_LOOKBACK).contains(&n) => n as u32,
            Some(n) => {
                cx.err_help(
                    f("time_range.lookback"),
                    format!("lookback = {n} is out of range"),
                    format!("lookback is how many of the latest done intervals each run processes again: 0 to {MAX_LOOKBACK}"),
                );
                0
            }
        };
        (cx.diags.len() == before).then_some(TimeRange {
            column: column?,
            grain: grain?,
            start,
            lag_seconds,
            lookback,
        })
    });
    (incremental, time_range)
}

/// More intervals than this re-run on every run is a full recompute: use a backfill.
const MAX_LOOKBACK: i64 = 400;
const MAX_LAG_SECONDS: u64 = 366 * 86_400;

/// `2026-11-03T05`, `2026-11-03` or `2026-11`, as the interval labels of each grain.
pub fn is_interval_label(grain: Grain, s: &str) -> bool {
    use crate::param::parse_date;
    match grain {
        Grain::Day => parse_date(s).is_some(),
        Grain::Month => s.len() == 7 && parse_date(&format!("{s}-01")).is_some(),
        Grain::Hour => s.split_once('T').is_some_and(|(d, h)| {
            parse_date(d).is_some() && h.len() == 2 && h.bytes().all(|b| b.is_ascii_digit()) && h < "24"
        }),
    }
}

fn label_example(grain: Grain) -> &'static str {
    match grain {
        Grain::Hour => "2026-11-01T00",
        Grain::Day => "2026-11-01",
        Grain::Month => "2026-11",
    }
}

/// `0`, `90s`, `30m`, `2h`, `1d`, or a sum of those written together (`1d6h`), in seconds.
pub fn parse_lag(s: &str) -> Result<u64, &'static str> {
    let s = s.trim();
    if s == "0" {
        return Ok(0);
    }
    let (mut total, mut digits) = (0u64, String::new());
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err("units are s, m, h and d"),
        };
        let n: u64 = digits.parse().map_err(|_| "each unit needs a number before it")?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or("it is too long")?;
    }
    if !digits.is_empty() {
        return Err("a number needs a unit after it");
    }
    if s.is_empty() {
        return Err("it is empty");
    }
    if total > MAX_LAG_SECONDS {
        return Err("it is longer than 366 days");
    }
    Ok(total)
}

/// The grain a `${param}` name suggests (`run_date` → day, `run_hour` → hour).
fn param_grain(name: &str) -> Option<Grain> {
    if name.contains("hour") {
        Some(Grain::Hour)
    } else if name.contains("date") || name.contains("day") {
        Some(Grain::Day)
    } else if name.contains("month") {
        Some(Grain::Month)
    } else {
        None
    }
}

/// The data-loss trap: an `overwrite_partitions` job filtering its input by a daily (or hourly)
/// run parameter into a table partitioned by month replaces the whole month with one day.
pub(super) fn check_overwrite_trap(cx: &mut FileCx<'_>, i: usize, sql: &str, out: &Table) {
    // The finest time grain of the partition spec; no time partition = the whole table.
    let part_grain = out
        .partition_by
        .iter()
        .filter_map(|p| match p.transform {
            Transform::Hour => Some((0, "hour")),
            Transform::Day => Some((1, "day")),
            Transform::Identity
                if out
                    .column(p.column.as_str())
                    .is_some_and(|c| c.data_type == ColumnType::Date) =>
            {
                Some((1, "day"))
            }
            Transform::Month => Some((2, "month")),
            Transform::Year => Some((3, "year")),
            _ => None,
        })
        .min();
    let mut rest = sql;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        rest = &after[end + 1..];
        let Some(g) = param_grain(name) else { continue };
        let finer = match g {
            Grain::Hour => 0,
            Grain::Day => 1,
            Grain::Month => 2,
        };
        let (coarse, label) = part_grain.unwrap_or((4, "the whole table"));
        if finer < coarse {
            let partitions = if part_grain.is_some() {
                format!("partitions by {label}")
            } else {
                label.to_string()
            };
            cx.err_help(
                format!("jobs[{i}].mode"),
                format!(
                    "overwrite_partitions with a filter on `${{{name}}}` (one {}) into `{}`, which {partitions}: each run replaces every row of its {label} with one {}, losing the rest",
                    g.as_str(),
                    out.reference(),
                    g.as_str()
                ),
                format!(
                    "make it a time-range job: mode = \"overwrite\" and [jobs.time_range] column = \"…\", grain = \"{}\" (overwrites exactly the interval), then backfill with `mesh run --from DATE --to DATE`",
                    g.as_str()
                ),
            );
            return;
        }
    }
}

#[cfg(test)]
mod lag_tests {
    use super::*;

    #[test]
    fn lags_and_labels() {
        assert_eq!(parse_lag("0"), Ok(0));
        assert_eq!(parse_lag("90s"), Ok(90));
        assert_eq!(parse_lag("2h"), Ok(7200));
        assert_eq!(parse_lag("1d6h"), Ok(108_000));
        for bad in ["", "2", "h", "2x", "-1h", "1.5h", "367d", "99999999999999999999d"] {
            assert!(parse_lag(bad).is_err(), "{bad}");
        }
        assert!(is_interval_label(Grain::Day, "2026-02-28"));
        assert!(!is_interval_label(Grain::Day, "2026-02-29"));
        assert!(!is_interval_label(Grain::Day, "2026-11"));
        assert!(is_interval_label(Grain::Month, "2026-11"));
        assert!(!is_interval_label(Grain::Month, "2026-13"));
        assert!(is_interval_label(Grain::Hour, "2026-11-01T23"));
        assert!(!is_interval_label(Grain::Hour, "2026-11-01T24"));
        assert!(!is_interval_label(Grain::Hour, "2026-11-01"));
    }
}
