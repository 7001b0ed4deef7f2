//! Table maintenance with the manifest's settings (the same fields the generated Glue
//! optimizers get): compaction, snapshot expiry and orphan-file cleanup, each planned first and
//! executed unless it is a dry run. Used by `mesh optimize` and by pipeline `optimize` steps.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mesh_domain::{Project, Table};
use mesh_iceberg::maintenance::{
    CompactionOptions, CompactionOutcome, CompactionPlan, ExpireOptions, ExpiryOutcome, ExpiryPlan, OrphanOptions,
    OrphanOutcome, OrphanPlan,
};
use serde::Serialize;

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

impl From<OptimizeError> for String {
    fn from(e: OptimizeError) -> String {
        e.to_string()
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
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

impl TableReport {
    /// Flat metrics for the run record: files and bytes before/after, what each operation did,
    /// duration.
    pub fn metrics(&self) -> BTreeMap<String, serde_json::Value> {
        let mut m = BTreeMap::new();
        m.insert("dry_run".into(), self.dry_run.into());
        m.insert("seconds".into(), self.seconds.into());
        if let Some(s) = &self.skipped {
            m.insert("skipped".into(), s.clone().into());
        }
        match &self.compaction {
            Some(c) => {
                m.insert("files_before".into(), c.plan.files_total.into());
                m.insert("bytes_before".into(), c.plan.bytes_total.into());
                m.insert("compaction_groups".into(), c.plan.groups.len().into());
                m.insert("files_compacted".into(), c.plan.files_to_rewrite().into());
                m.insert("bytes_compacted".into(), c.plan.bytes_to_rewrite().into());
                let (files_after, bytes_after) = match &c.outcome {
                    Some(o) => (o.files_after, o.bytes_after),
                    None => (c.plan.files_total, c.plan.bytes_total),
                };
                m.insert("files_after".into(), files_after.into());
                m.insert("bytes_after".into(), bytes_after.into());
                if let Some(o) = &c.outcome {
                    m.insert("files_compacted".into(), o.files_removed.into());
                    m.insert("files_added".into(), o.files_added.into());
                    m.insert("groups_aborted".into(), o.groups_aborted.into());
                    m.insert("compaction_seconds".into(), o.seconds.into());
                    m.insert("snapshot_id".into(), o.snapshot_ids.last().copied().into());
                } else {
                    m.insert("snapshot_id".into(), serde_json::Value::Null);
                }
            }
            None => {
                m.insert(
                    "compaction".into(),
                    if self.disabled.contains(&Operation::Compaction) {
                        "disabled"
                    } else {
                        "not run"
                    }
                    .into(),
                );
            }
        }
        if let Some(r) = &self.retention {
            m.insert("snapshots_expired".into(), r.plan.expired.len().into());
            m.insert("expired_files".into(), r.plan.files.len().into());
            m.insert("expired_bytes".into(), r.plan.bytes.into());
            if let Some(o) = &r.outcome {
                m.insert("snapshots_expired".into(), o.snapshots_expired.into());
                m.insert("expired_files".into(), o.files_deleted.into());
                m.insert("expired_bytes".into(), o.bytes_deleted.into());
            }
        }
        if let Some(p) = &self.orphans {
            m.insert("orphan_files".into(), p.plan.orphans.len().into());
            m.insert("orphan_bytes".into(), p.plan.bytes.into());
            if let Some(o) = &p.outcome {
                m.insert("orphan_files".into(), o.files_deleted.into());
                m.insert("orphan_bytes".into(), o.bytes_deleted.into());
            }
        }
        m
    }
}

/// A pipeline `optimize` step: every operation the manifest enables, executed. Returns the
/// metrics for the run record.
pub async fn optimize_step(
    engine: &Engine,
    project: &Project,
    table: &Table,
) -> Result<BTreeMap<String, serde_json::Value>, String> {
    let report = optimize_table(engine, project, table, &OptimizeRequest::default()).await?;
    Ok(report.metrics())
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
