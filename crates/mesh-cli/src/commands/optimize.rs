//! `mesh optimize`: compaction, snapshot expiry and orphan cleanup of the local Iceberg tables
//! with each table's manifest settings; `--dry-run` prints the plan and changes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use mesh_core::layout::RUNS_DIR;
use mesh_core::optimize::{optimize_table, Operation, OptimizeError, OptimizeRequest, TableReport};
use mesh_core::record::{RunBuilder, RunRecord, StepKind, StepRecord, StepStatus};
use mesh_domain::Domain;

use crate::cli::{Format, OnlyArg, OptimizeArgs};
use crate::common::{check_project, print_json};
use crate::exit::Failure;

fn mb(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    }
}

/// The name JSON output uses for an enum value (`binpack`, `manifest_list`), not its Rust name.
fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn ms_to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

fn print_text(r: &TableReport) {
    println!(
        "{} ({}){}",
        r.table,
        r.ident,
        if r.dry_run { " — dry run, nothing changed" } else { "" }
    );
    if let Some(s) = &r.skipped {
        println!("  skipped: {s}");
        return;
    }
    for d in &r.disabled {
        println!("  {:<11} disabled in the manifest", d.as_str());
    }
    if let Some(c) = &r.compaction {
        let p = &c.plan;
        println!(
            "  compaction  {} strategy: {} group(s), {} file(s), {} to rewrite (table: {} files, {}; target {}, small < {}, min {} files)",
            name(&p.strategy),
            p.groups.len(),
            p.files_to_rewrite(),
            mb(p.bytes_to_rewrite()),
            p.files_total,
            mb(p.bytes_total),
            mb(p.target_file_size),
            mb(p.min_file_size),
            p.min_input_files
        );
        for g in &p.groups {
            println!(
                "    group {}: {} files, {}, {} rows -> ~{} file(s)",
                g.partition,
                g.files.len(),
                mb(g.bytes),
                g.records,
                g.expected_output_files
            );
            for f in &g.files {
                println!("      rewrite {} ({})", f.path, mb(f.bytes));
            }
        }
        if let Some(o) = &c.outcome {
            println!(
                "    done: {} group(s) committed, {} aborted by concurrent commits; files {} -> {}, bytes {} -> {} in {:.2}s",
                o.groups_committed,
                o.groups_aborted,
                o.files_before,
                o.files_after,
                mb(o.bytes_before),
                mb(o.bytes_after),
                o.seconds
            );
        }
    }
    if let Some(e) = &r.retention {
        let p = &e.plan;
        println!(
            "  retention   {} of {} snapshot(s) expire (older than {}, keep last {}); {} file(s), {} to delete{}",
            p.expired.len(),
            p.snapshots_total,
            ms_to_rfc3339(p.older_than_ms),
            p.retain_last,
            p.files.len(),
            mb(p.bytes),
            if p.clean_expired_files {
                ""
            } else {
                " (clean_expired_files = false)"
            }
        );
        for s in &p.expired {
            println!(
                "      expire snapshot {} ({}, {})",
                s.snapshot_id,
                s.operation,
                ms_to_rfc3339(s.timestamp_ms)
            );
        }
        for f in &p.files {
            println!("      delete {} {} ({})", name(&f.kind), f.path, mb(f.bytes));
        }
        if let Some(o) = &e.outcome {
            println!(
                "    done: {} snapshot(s) expired, {} file(s) ({}) deleted in {:.2}s",
                o.snapshots_expired,
                o.files_deleted,
                mb(o.bytes_deleted),
                o.seconds
            );
        }
    }
    if let Some(o) = &r.orphans {
        let p = &o.plan;
        println!(
            "  orphans     {} file(s), {} older than {} to delete ({} listed under {}, {} referenced, {} unreferenced but too young)",
            p.orphans.len(),
            mb(p.bytes),
            p.cutoff,
            p.files_listed,
            p.location,
            p.files_referenced,
            p.files_too_young
        );
        for f in &p.orphans {
            println!(
                "      delete {} ({}, modified {})",
                f.path,
                mb(f.bytes),
                f.last_modified
            );
        }
        if let Some(out) = &o.outcome {
            println!(
                "    done: {} file(s) ({}) deleted, {} kept because a commit now references them, in {:.2}s",
                out.files_deleted,
                mb(out.bytes_deleted),
                out.files_now_referenced,
                out.seconds
            );
        }
    }
}

type Outcome = Result<TableReport, (String, String, String, Instant)>;

/// One step per table in the pipeline `optimize` of its project.
fn record(mut run: RunBuilder, reports: &[Outcome]) -> RunRecord {
    for r in reports {
        match r {
            Ok(r) => run.step(
                &r.project,
                "optimize",
                StepRecord::optimized(StepRecord::optimize_name(&r.table), r),
            ),
            Err((project, table, error, t0)) => {
                let mut step = StepRecord::not_succeeded(
                    StepRecord::optimize_name(table),
                    StepKind::Optimize,
                    table.clone(),
                    StepStatus::Failed,
                    error.clone(),
                );
                step.seconds = t0.elapsed().as_secs_f64();
                run.step(project, "optimize", step);
            }
        }
    }
    run.finish()
}

pub fn run(root: &Path, domain: &Domain, args: OptimizeArgs) -> Result<(), Failure> {
    let cfg = crate::common::config(root, domain, BTreeMap::new())?;
    if let Some(p) = &args.project {
        check_project(domain, p)?;
    }
    let orphan_retention = args
        .orphan_retention_hours
        .map(mesh_core::optimize::orphan_window_hours)
        .transpose()
        .map_err(Failure::Invalid)?;
    let req = OptimizeRequest {
        only: args.only.map(|o| match o {
            OnlyArg::Compaction => Operation::Compaction,
            OnlyArg::Retention => Operation::Retention,
            OnlyArg::Orphans => Operation::Orphans,
        }),
        dry_run: args.dry_run,
        orphan_retention,
        force: args.force,
        retain_last: args.retain_last,
    };
    let rt = crate::common::tokio_runtime()?;
    rt.block_on(async {
        let engine = crate::common::open_engine(root, domain, &cfg).await?;
        let naming = &engine.layout.naming;
        let selected: Vec<(&mesh_domain::Project, &mesh_domain::Table)> = match &args.table {
            Some(name) => {
                let (p, t) = crate::commands::table::find_iceberg_table(domain, naming, name, "`mesh optimize`")?;
                if args.project.as_deref().is_some_and(|x| x != p.name.as_str()) {
                    return Err(Failure::Invalid(format!(
                        "table `{name}` belongs to project `{}`, not `{}`",
                        p.name,
                        args.project.as_deref().unwrap_or_default()
                    )));
                }
                vec![(p, t)]
            }
            None => domain
                .tables()
                .filter(|(p, t)| t.iceberg().is_some() && args.project.as_deref().is_none_or(|x| x == p.name.as_str()))
                .collect(),
        };
        let run = RunBuilder::start(
            &mesh_core::record::new_run_id(),
            &domain.name,
            &cfg.env.value.to_string(),
            BTreeMap::new(),
        );
        let mut reports: Vec<Outcome> = Vec::new();
        let mut failures = Vec::new();
        for (p, t) in selected {
            let step_started = Instant::now();
            match optimize_table(&engine, p, t, &req).await {
                Ok(r) => {
                    if matches!(args.format, Format::Text) {
                        print_text(&r);
                    }
                    reports.push(Ok(r));
                }
                Err(e @ OptimizeError::Unsafe(_)) => return Err(e.into()),
                Err(e) => {
                    let msg = format!("{}: {e}", t.reference());
                    if matches!(args.format, Format::Text) {
                        println!("{} — FAILED: {e}", t.reference());
                    }
                    failures.push(msg.clone());
                    reports.push(Err((p.name.to_string(), t.reference().to_string(), msg, step_started)));
                }
            }
        }
        if matches!(args.format, Format::Json) {
            let js: Vec<serde_json::Value> = reports
                .iter()
                .map(|r| match r {
                    Ok(r) => serde_json::to_value(r).expect("reports serialise"),
                    Err((project, table, error, _)) => {
                        serde_json::json!({"project": project, "table": table, "error": error})
                    }
                })
                .collect();
            print_json(&js);
        }
        // A real run is recorded like a pipeline run; a dry run changes nothing, not even .mesh/runs.
        if !args.dry_run {
            let record = record(run, &reports);
            let path = record.save(&root.join(RUNS_DIR))?;
            if matches!(args.format, Format::Text) {
                println!("run record: {}", path.strip_prefix(root).unwrap_or(&path).display());
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Failure::Runtime(format!(
                "{} table(s) failed:\n  {}",
                failures.len(),
                failures.join("\n  ")
            )))
        }
    })
}
