//! Table maintenance with the manifest's settings (the same fields the generated Glue
//! optimizers get): compaction, snapshot expiry and orphan-file cleanup, each planned first and
//! executed unless it is a dry run. Used by `mesh optimize` and by pipeline `optimize` steps.

use std::time::{Duration, Instant};

use mesh_domain::{Project, Table};
use mesh_iceberg::maintenance::{
    CompactionOptions, CompactionOutcome, CompactionPlan, ExpireOptions, ExpiryOutcome, ExpiryPlan, OrphanOptions,
    OrphanOutcome, OrphanPlan,
};
use serde::{Deserialize, Serialize};

use crate::engine::Engine;

/// One maintenance operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Bin-pack (or sort) small files.
    Compaction,
    /// Snapshot expiry.
    Retention,
    /// Orphan-file cleanup.
    Orphans,
}

impl Operation {
    pub const ALL: [Operation; 3] = [Operation::Compaction, Operation::Retention, Operation::Orphans];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Compaction => "compaction",
            Operation::Retention => "retention",
            Operation::Orphans => "orphans",
        }
    }
}

/// What to do, and overrides of the manifest's settings.
#[derive(Debug, Clone, Default)]
pub struct OptimizeRequest {
    /// Only this operation (default: every operation the manifest enables).
    pub only: Option<Operation>,
    /// Plan only; change nothing.
    pub dry_run: bool,
    /// Orphan window instead of the manifest's `orphans.retention_days`.
    pub orphan_retention: Option<Duration>,
    /// Allow an orphan window under one day.
    pub force: bool,
    /// `retain_last` instead of the manifest's.
    pub retain_last: Option<u32>,
}

/// A plan and, unless it was a dry run, what executing it did.
#[derive(Debug, Clone, Serialize)]
pub struct Step<P, O> {
    pub plan: P,
    pub outcome: Option<O>,
}

/// Maintenance of one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub project: String,
    /// `layer.table`.
    pub table: String,
    /// `database.table` in the catalog.
    pub ident: String,
    pub dry_run: bool,
    /// Why the table was skipped (not created yet), if it was.
    pub skipped: Option<String>,
    /// Operations the manifest disables.
    pub disabled: Vec<Operation>,
    pub compaction: Option<Step<CompactionPlan, CompactionOutcome>>,
    pub retention: Option<Step<ExpiryPlan, ExpiryOutcome>>,
    pub orphans: Option<Step<OrphanPlan, OrphanOutcome>>,
    /// The table's current snapshot once maintenance is done (`None`: no snapshot yet).
    pub snapshot_id: Option<i64>,
    /// The table's rows and data files once maintenance is done (its snapshot summary).
    pub table_rows: Option<u64>,
    pub table_files: Option<u64>,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum OptimizeError {
    /// A setting that could corrupt the table or break readers (exit 2 in the CLI).
    #[error("{0}")]
    Unsafe(String),
    #[error("`{table}` is a raw (Hive) table; only Iceberg tables are optimized")]
    NotIceberg { table: String },
    #[error("{0}")]
    Engine(#[from] mesh_iceberg::Error),
}

impl OptimizeError {
    /// Worth retrying: a lost commit race with a writer, or storage or the catalog failing
    /// for a moment. An unsafe setting or a raw table stays so.
    pub fn is_transient(&self) -> bool {
        match self {
            OptimizeError::Engine(e) => e.is_transient(),
            OptimizeError::Unsafe(_) | OptimizeError::NotIceberg { .. } => false,
        }
    }
}

fn unsafe_or(e: mesh_iceberg::Error) -> OptimizeError {
    match e {
        mesh_iceberg::Error::Unsafe { .. } => OptimizeError::Unsafe(e.to_string()),
        other => OptimizeError::Engine(other),
    }
}

const DAY: Duration = Duration::from_secs(24 * 3600);

/// An orphan window given in hours on the command line: finite, 0 to 100 years (the
/// manifests' limit), so every date computed from it exists.
pub fn orphan_window_hours(h: f64) -> Result<Duration, String> {
    let max = f64::from(mesh_domain::load::MAX_RETENTION_DAYS) * 24.0;
    if !(h.is_finite() && (0.0..=max).contains(&h)) {
        return Err(format!(
            "--orphan-retention-hours {h} must be a number of hours between 0 and {max} (100 years), e.g. 72"
        ));
    }
    Ok(Duration::from_secs_f64(h * 3600.0))
}

/// Plans (and unless `dry_run`, executes) the maintenance of `table` in the order compaction,
/// expiry, orphans, with the settings of its manifest. Unsafe overrides are refused before
/// anything is read.
pub async fn optimize_table(
    engine: &Engine,
    project: &Project,
    table: &Table,
    req: &OptimizeRequest,
) -> Result<TableReport, OptimizeError> {
    let started = Instant::now();
    let Some(iceberg) = table.iceberg() else {
        return Err(OptimizeError::NotIceberg {
            table: table.reference().to_string(),
        });
    };
    let o = &iceberg.optimizers;
    let ident = engine.ident(table);
    let wanted = |op: Operation| req.only.is_none_or(|x| x == op);
    let mut report = TableReport {
        project: project.name.to_string(),
        table: table.reference().to_string(),
        ident: ident.to_string(),
        dry_run: req.dry_run,
        skipped: None,
        disabled: Vec::new(),
        compaction: None,
        retention: None,
        orphans: None,
        snapshot_id: None,
        table_rows: None,
        table_files: None,
        seconds: 0.0,
    };
    for (op, enabled) in [
        (Operation::Compaction, o.compaction.is_some()),
        (Operation::Retention, o.retention.is_some()),
        (Operation::Orphans, o.orphans.is_some()),
    ] {
        if wanted(op) && !enabled {
            report.disabled.push(op);
        }
    }
    // Refuse unsafe overrides first, whatever the table's state.
    if let Some(0) = req.retain_last {
        return Err(OptimizeError::Unsafe(format!(
            "{}: retain_last = 0 would expire the current snapshot and break every reader; keep at least 1 snapshot",
            report.table
        )));
    }
    let orphan_window = req
        .orphan_retention
        .or_else(|| o.orphans.as_ref().map(|c| DAY * c.retention_days));
    if let Some(w) = orphan_window.filter(|_| wanted(Operation::Orphans)) {
        if w < mesh_iceberg::maintenance::ORPHAN_RETENTION_FLOOR && !req.force {
            return Err(OptimizeError::Unsafe(format!(
                "{}: an orphan window of {:.1} hours is under the 1-day floor: files of writes still in flight would be deleted. Use 1 day or more (default 3), or --force if no writer can be running",
                report.table,
                w.as_secs_f64() / 3600.0
            )));
        }
    }
    if engine.catalog.metadata_location(&ident).await?.is_none() {
        report.skipped = Some("the table does not exist yet; run the job that writes it first".into());
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let mut t = engine.load_table(project, table).await?;

    if let (Some(c), true) = (&o.compaction, wanted(Operation::Compaction)) {
        let mut opts = CompactionOptions::new(
            mesh_domain::megabytes(c.target_file_size_mb),
            c.min_file_size_ratio,
            c.min_input_files as usize,
        );
        opts.max_concurrency = engine.max_concurrency;
        let plan = CompactionPlan::build(&t, &opts).await?;
        let outcome = if req.dry_run || plan.is_empty() {
            None
        } else {
            Some(plan.execute(&mut t).await?)
        };
        report.compaction = Some(Step { plan, outcome });
    }
    if let (Some(r), true) = (&o.retention, wanted(Operation::Retention)) {
        t.refresh().await?;
        let opts = ExpireOptions::new(
            DAY * r.snapshot_retention_days,
            req.retain_last.unwrap_or(r.retain_last) as usize,
            r.clean_expired_files,
        );
        let plan = ExpiryPlan::build(&t, &opts).await.map_err(unsafe_or)?;
        let outcome = if req.dry_run || plan.is_empty() {
            None
        } else {
            Some(plan.execute(&mut t).await?)
        };
        report.retention = Some(Step { plan, outcome });
    }
    if let (Some(window), true) = (orphan_window, wanted(Operation::Orphans) && o.orphans.is_some()) {
        t.refresh().await?;
        let lister = engine.lister();
        let opts = OrphanOptions {
            older_than: window,
            force: req.force,
        };
        let plan = OrphanPlan::build(&t, lister.as_ref(), &opts).await.map_err(unsafe_or)?;
        let outcome = if req.dry_run || plan.is_empty() {
            None
        } else {
            Some(plan.execute(&mut t, lister.as_ref()).await?)
        };
        report.orphans = Some(Step { plan, outcome });
    }
    let totals = t.info();
    report.snapshot_id = totals.current_snapshot_id;
    (report.table_rows, report.table_files) = (totals.total_records, totals.total_data_files);
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

impl TableReport {
    /// The run record's metrics: files and bytes before/after, what each operation did,
    /// duration, and the snapshot readers see afterwards.
    pub fn metrics(&self) -> OptimizeMetrics {
        let compaction = self.compaction.as_ref().map(|c| {
            let mut m = CompactionMetrics {
                files_before: c.plan.files_total as u64,
                bytes_before: c.plan.bytes_total,
                compaction_groups: c.plan.groups.len() as u64,
                files_compacted: c.plan.files_to_rewrite() as u64,
                bytes_compacted: c.plan.bytes_to_rewrite(),
                files_after: c.plan.files_total as u64,
                bytes_after: c.plan.bytes_total,
                files_added: None,
                groups_aborted: None,
                compaction_seconds: None,
            };
            if let Some(o) = &c.outcome {
                m.files_after = o.files_after as u64;
                m.bytes_after = o.bytes_after;
                m.files_compacted = o.files_removed as u64;
                m.files_added = Some(o.files_added as u64);
                m.groups_aborted = Some(o.groups_aborted as u64);
                m.compaction_seconds = Some(o.seconds);
            }
            m
        });
        let not_run = match (&self.compaction, self.disabled.contains(&Operation::Compaction)) {
            (Some(_), _) => None,
            (None, true) => Some(NotRun::Disabled),
            (None, false) => Some(NotRun::NotRun),
        };
        let retention = self.retention.as_ref().map(|r| match &r.outcome {
            Some(o) => RetentionMetrics {
                snapshots_expired: o.snapshots_expired as u64,
                expired_files: o.files_deleted as u64,
                expired_bytes: o.bytes_deleted,
            },
            None => RetentionMetrics {
                snapshots_expired: r.plan.expired.len() as u64,
                expired_files: r.plan.files.len() as u64,
                expired_bytes: r.plan.bytes,
            },
        });
        let orphans = self.orphans.as_ref().map(|p| match &p.outcome {
            Some(o) => OrphanMetrics {
                orphan_files: o.files_deleted as u64,
                orphan_bytes: o.bytes_deleted,
            },
            None => OrphanMetrics {
                orphan_files: p.plan.orphans.len() as u64,
                orphan_bytes: p.plan.bytes,
            },
        });
        OptimizeMetrics {
            dry_run: self.dry_run,
            seconds: self.seconds,
            skipped: self.skipped.clone(),
            snapshot_id: self.snapshot_id,
            table_rows: self.table_rows,
            table_files: self.table_files,
            compaction: not_run,
            compacted: compaction,
            retention,
            orphans,
        }
    }
}

/// An optimize step in a run record. The JSON is flat (`files_before`, `orphan_files`, …);
/// the fields of an operation that did not run are absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OptimizeMetrics {
    pub dry_run: bool,
    pub seconds: f64,
    /// Why the table was skipped (it does not exist yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The table's current snapshot after maintenance: the last compaction commit, or the
    /// snapshot that was already current when nothing needed rewriting.
    pub snapshot_id: Option<i64>,
    /// The table's rows and data files afterwards.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_rows: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_files: Option<u64>,
    /// Why compaction did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compaction: Option<NotRun>,
    #[serde(flatten)]
    pub compacted: Option<CompactionMetrics>,
    #[serde(flatten)]
    pub retention: Option<RetentionMetrics>,
    #[serde(flatten)]
    pub orphans: Option<OrphanMetrics>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotRun {
    #[serde(rename = "disabled")]
    Disabled,
    #[serde(rename = "not run")]
    NotRun,
}

/// Compaction: the plan's figures, replaced by what happened when it was executed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactionMetrics {
    pub files_before: u64,
    pub bytes_before: u64,
    pub compaction_groups: u64,
    pub files_compacted: u64,
    pub bytes_compacted: u64,
    pub files_after: u64,
    pub bytes_after: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_added: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups_aborted: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compaction_seconds: Option<f64>,
}

/// Snapshot expiry: planned, or done when executed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionMetrics {
    pub snapshots_expired: u64,
    pub expired_files: u64,
    pub expired_bytes: u64,
}

/// Orphan-file cleanup: planned, or done when executed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrphanMetrics {
    pub orphan_files: u64,
    pub orphan_bytes: u64,
}

/// A pipeline `optimize` step: every operation the manifest enables, executed.
pub async fn optimize_step(engine: &Engine, project: &Project, table: &Table) -> Result<TableReport, OptimizeError> {
    optimize_table(engine, project, table, &OptimizeRequest::default()).await
}

#[cfg(test)]
mod window_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any f64 is refused with a message or gives a window whose cutoff date exists.
        #[test]
        fn any_hours_value_is_refused_or_usable(h in prop_oneof![
            Just(f64::NAN), Just(f64::INFINITY), Just(1e20), Just(-1.0), Just(876_000.0), Just(876_000.5),
            any::<f64>(), 0.0..1e7f64,
        ]) {
            match orphan_window_hours(h) {
                Ok(w) => {
                    let w = chrono::Duration::from_std(w).unwrap();
                    prop_assert!(chrono::Utc::now().checked_sub_signed(w).is_some());
                }
                Err(msg) => prop_assert!(msg.contains("--orphan-retention-hours"), "{msg}"),
            }
        }
    }
}
