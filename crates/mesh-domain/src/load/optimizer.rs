//! `[tables.optimizers]` of an Iceberg table: compaction, snapshot retention and orphan-file
//! cleanup, each on unless `enabled = false`, with the model's defaults for what is left out.

use super::unchecked::{UncheckedCompaction, UncheckedOptimizers, UncheckedOrphans, UncheckedRetention};
use super::FileCx;
use crate::model::{Compaction, Optimizers, OrphanCleanup, Retention};

/// Longest retention window in days (100 years): longer ones overflow date arithmetic.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// The optimizers of table `i`, whose files target `target` MB; problems are reported, and
/// the value returned is only used when there are none.
pub(super) fn check_optimizers(
    cx: &mut FileCx<'_>,
    i: usize,
    given: Option<&UncheckedOptimizers>,
    target: u32,
) -> Optimizers {
    let f = |field: &str| format!("tables[{i}].optimizers.{field}");
    let d = UncheckedOptimizers::default();
    let given = given.unwrap_or(&d);
    let run_rate_hours = given.run_rate_hours.unwrap_or(Optimizers::DEFAULT_RUN_RATE_HOURS);
    if !(3..=168).contains(&run_rate_hours) {
        cx.err_help(
            f("run_rate_hours"),
            format!("{run_rate_hours} hours is out of range"),
            "Glue runs optimizers every 3 to 168 hours",
        );
    }
    let compaction = match &given.compaction {
        Some(c) if c.enabled == Some(false) => None,
        c => Some(check_compaction(cx, i, c.as_ref(), target)),
    };
    let retention = match &given.retention {
        Some(r) if r.enabled == Some(false) => None,
        r => Some(check_retention(cx, i, r.as_ref())),
    };
    let orphans = match &given.orphans {
        Some(o) if o.enabled == Some(false) => None,
        o => Some(check_orphans(cx, i, o.as_ref())),
    };
    Optimizers {
        compaction,
        retention,
        orphans,
        run_rate_hours,
    }
}

fn check_compaction(cx: &mut FileCx<'_>, i: usize, c: Option<&UncheckedCompaction>, target: u32) -> Compaction {
    let f = |field: &str| format!("tables[{i}].optimizers.compaction.{field}");
    let d = Compaction::default();
    let out = Compaction {
        target_file_size_mb: c.and_then(|c| c.target_file_size_mb).unwrap_or(target),
        min_file_size_ratio: c.and_then(|c| c.min_file_size_ratio).unwrap_or(d.min_file_size_ratio),
        min_input_files: c.and_then(|c| c.min_input_files).unwrap_or(d.min_input_files),
        delete_file_threshold: c
            .and_then(|c| c.delete_file_threshold)
            .unwrap_or(d.delete_file_threshold),
    };
    if !(out.min_file_size_ratio > 0.0 && out.min_file_size_ratio < 1.0) {
        cx.err_help(
            f("min_file_size_ratio"),
            "must be between 0 and 1 (exclusive)",
            format!("Iceberg's default is {}", Compaction::DEFAULT_MIN_FILE_SIZE_RATIO),
        );
    }
    if out.min_input_files < 2 {
        cx.err_help(
            f("min_input_files"),
            "compacting fewer than 2 files rewrites data for nothing",
            format!("use 2 or more (default {})", Compaction::DEFAULT_MIN_INPUT_FILES),
        );
    }
    out
}

fn check_retention(cx: &mut FileCx<'_>, i: usize, r: Option<&UncheckedRetention>) -> Retention {
    let f = |field: &str| format!("tables[{i}].optimizers.retention.{field}");
    let d = Retention::default();
    let out = Retention {
        snapshot_retention_days: r
            .and_then(|r| r.snapshot_retention_days)
            .unwrap_or(d.snapshot_retention_days),
        retain_last: r.and_then(|r| r.retain_last).unwrap_or(d.retain_last),
        clean_expired_files: r.and_then(|r| r.clean_expired_files).unwrap_or(d.clean_expired_files),
    };
    if out.retain_last == 0 {
        cx.err_help(
            f("retain_last"),
            "retain_last = 0 would expire the current snapshot",
            "keep at least 1 snapshot",
        );
    }
    if out.snapshot_retention_days == 0 {
        cx.err_help(
            f("snapshot_retention_days"),
            "0 days would expire snapshots readers may still use",
            format!(
                "use 1 or more days (default {})",
                Retention::DEFAULT_SNAPSHOT_RETENTION_DAYS
            ),
        );
    }
    if out.snapshot_retention_days > MAX_RETENTION_DAYS {
        cx.err_help(
            f("snapshot_retention_days"),
            format!(
                "{} days is beyond any date the engines can compute",
                out.snapshot_retention_days
            ),
            format!("use at most {MAX_RETENTION_DAYS} days (100 years), or enabled = false to keep every snapshot"),
        );
    }
    out
}

fn check_orphans(cx: &mut FileCx<'_>, i: usize, o: Option<&UncheckedOrphans>) -> OrphanCleanup {
    let f = |field: &str| format!("tables[{i}].optimizers.orphans.{field}");
    let days = o
        .and_then(|o| o.retention_days)
        .unwrap_or(OrphanCleanup::DEFAULT_RETENTION_DAYS);
    if days < 1 {
        cx.err_help(
            f("retention_days"),
            "orphan cleanup younger than 1 day can delete files of writes still in flight",
            format!("use 1 or more days (default {})", OrphanCleanup::DEFAULT_RETENTION_DAYS),
        );
    }
    if days > MAX_RETENTION_DAYS {
        cx.err_help(
            f("retention_days"),
            format!("{days} days is beyond any date the engines can compute"),
            format!("use at most {MAX_RETENTION_DAYS} days (100 years), or enabled = false"),
        );
    }
    OrphanCleanup { retention_days: days }
}
