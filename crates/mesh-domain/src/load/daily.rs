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
        (cx.diags.len() == before).then_some(TimeRange {
            column: column?,
            grain: grain?,
        })
    });
    (incremental, time_range)
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
