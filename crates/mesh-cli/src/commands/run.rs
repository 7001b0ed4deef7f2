//! `mesh run`: pipelines, single jobs and backfills on the local lake or a cloud environment.

use std::collections::BTreeMap;
use std::path::Path;

use indicatif::{MultiProgress, ProgressDrawTarget};
use mesh_core::config::Config;
use mesh_core::layout::RUNS_DIR;
use mesh_core::pipeline::{self, RunRequest};
use mesh_core::record::{RunRecord, StepStatus};
use mesh_domain::Domain;

use crate::cli::RunArgs;
use crate::commands::sample_data::sample_data_with;
use crate::common::{config, open_engine, tokio_runtime};
use crate::exit::Failure;
use crate::progress::{init_logging, progress};

fn parse_params(params: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    params
        .iter()
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    Failure::Invalid(format!(
                        "--param `{}` must be KEY=VALUE, e.g. --param run_date=2026-11-27",
                        p.escape_debug()
                    ))
                })?;
            // A newline in a value would end up in SQL and in log lines as if it were a line
            // of its own (a forged log entry); no parameter needs one.
            if let Some(c) = v.chars().find(|c| c.is_control()) {
                return Err(Failure::Invalid(format!(
                    "--param {k}: the value contains the control character {:?}; parameter values are one line of text",
                    c
                )));
            }
            if k == "interval_end" {
                return Err(Failure::Invalid(
                    "--param interval_end is not an input: a time-range run's end is its interval's end\n  help: name the interval with --param run_date=… (or interval_start=…), or a range with --from/--to".into(),
                ));
            }
            Ok((k, v))
        })
        .collect()
}

pub fn run(root: &Path, domain: &Domain, args: RunArgs) -> Result<(), Failure> {
    let mut flags = BTreeMap::new();
    if let Some(e) = args.env {
        flags.insert("env", e.to_string());
    }
    let cfg = config(root, domain, flags.clone())?;
    let params = parse_params(&args.params)?;
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    init_logging(&cfg, Some(multi.clone()));
    if args.sample_data {
        sample_data_with(root, domain, args.rows, args.seed, flags)?;
    }
    let req = RunRequest {
        projects: args.projects.clone(),
        pipeline: args.pipeline.clone(),
        job: args.job.clone(),
        params: BTreeMap::new(),
        max_concurrency: cfg.max_concurrency.value,
        at: args.at.unwrap_or_else(|| chrono::Utc::now().naive_utc()),
        select: args.select.clone(),
        exclude: args.exclude.clone(),
    };
    let rt = tokio_runtime()?;
    // The plan first: refused changes stop the run (exit 2) before anything is written; jobs
    // to refresh are reset (see commands::plan::guard_run).
    rt.block_on(async {
        let engine = open_engine(root, domain, &cfg).await?;
        // Declared moves and retirements first: the plan then compares the tables at their
        // declared places.
        crate::commands::plan::apply_declared(&engine, true).await?;
        crate::commands::plan::guard_run(root, &engine, &req, args.full_refresh, args.allow_destructive, &multi).await
    })?;
    if let Some((from, to)) = args.from.as_ref().zip(args.to.as_ref()) {
        if params.contains_key("run_date") {
            return Err(Failure::Invalid(
                "--param run_date and --from/--to both set the date; a backfill sets run_date to each interval's first day".into(),
            ));
        }
        let req = RunRequest { params, ..req };
        return rt.block_on(backfill(
            root,
            domain,
            &cfg,
            &req,
            (from, to),
            args.force,
            args.allow_destructive,
            &multi,
        ));
    }
    // Where the dates come from, through the log (a JSON line where logs are JSON).
    let at = mesh_core::interval::format_instant(req.at);
    let source = if args.at.is_some() { "--at" } else { "now" };
    let named = ["interval_start", "run_date"]
        .into_iter()
        .find_map(|k| params.get(k).map(|v| (k, v)));
    match named {
        Some((k, d)) => tracing::info!("{k} = {d} (from --param {k}); run's time {at} ({source})"),
        None => tracing::info!(
            "run_date = {} (the run's date, UTC; set it with --param run_date=YYYY-MM-DD); run's time {at} ({source}): time-range jobs process the intervals complete by then and not yet done",
            &at[..10]
        ),
    }
    let req = RunRequest { params, ..req };
    let run_id = mesh_core::record::new_run_id();
    let (record, _outputs) = rt.block_on(async {
        let engine = open_run_engine(root, domain, &cfg, args.allow_destructive).await?;
        mesh_core::backfill::check_named_interval(&engine, &req)?;
        if !mesh_core::incremental::names_interval(&req.params) {
            for line in mesh_core::backfill::due_lines(&engine, &req).await? {
                eprintln!("{line}");
            }
        }
        Ok::<_, Failure>(pipeline::run(engine, &req, &run_id, progress(&multi)).await?)
    })?;
    let _ = multi.clear();
    finish(root, &record)
}

/// The engine of the run's jobs: `--allow-destructive` reaches the writes (see
/// mesh_core::evolve).
async fn open_run_engine(
    root: &Path,
    domain: &Domain,
    cfg: &Config,
    allow_destructive: bool,
) -> Result<std::sync::Arc<mesh_core::engine::Engine>, Failure> {
    let mut engine = open_engine(root, domain, cfg).await?;
    if let Some(e) = std::sync::Arc::get_mut(&mut engine) {
        e.allow_destructive = allow_destructive;
    }
    Ok(engine)
}

/// Saves the run record, prints the summary, and turns failed steps into the exit status.
fn finish(root: &Path, record: &RunRecord) -> Result<(), Failure> {
    // The summary first: a record that cannot be saved (a read-only domain) must not hide what
    // the steps did or why they failed.
    print_summary(record);
    let path = match record.save(&root.join(RUNS_DIR)) {
        Ok(p) => p,
        Err(e) if record.succeeded => return Err(e.into()),
        Err(e) => {
            eprintln!("error: {e}");
            return Err(Failure::Runtime(failed_steps(record)));
        }
    };
    println!(
        "run record: {}   report: mesh report {}",
        path.strip_prefix(root).unwrap_or(&path).display(),
        record.run_id
    );
    if record.succeeded {
        Ok(())
    } else {
        Err(Failure::Runtime(failed_steps(record)))
    }
}

fn failed_steps(record: &RunRecord) -> String {
    let failed: Vec<String> = record
        .pipelines
        .iter()
        .flat_map(|p| {
            p.steps.iter().filter(|s| s.status == StepStatus::Failed).map(move |s| {
                format!(
                    "{}/{}/{}: {}",
                    p.project,
                    p.pipeline,
                    s.name,
                    s.error.clone().unwrap_or_default()
                )
            })
        })
        .collect();
    format!("{} step(s) failed:\n  {}", failed.len(), failed.join("\n  "))
}

/// `mesh run --from --to`: each interval as its own run (own record), in order; intervals
/// already committed are skipped unless `force`; the first failing interval stops the backfill.
#[allow(clippy::too_many_arguments)]
async fn backfill(
    root: &Path,
    domain: &Domain,
    cfg: &Config,
    req: &RunRequest,
    (from, to): (&str, &str),
    force: bool,
    allow_destructive: bool,
    multi: &MultiProgress,
) -> Result<(), Failure> {
    use mesh_core::backfill::Backfill;
    let engine = open_run_engine(root, domain, cfg, allow_destructive).await?;
    let plan = Backfill::plan(&engine, req, from, to).await?;
    plan.check_complete(req.at)?;
    let n = plan.intervals.len();
    let jobs: Vec<&str> = plan.jobs.iter().map(|(j, _)| j.as_str()).collect();
    eprintln!(
        "backfill {} to {}: {n} {} interval(s){}",
        plan.intervals[0].label(),
        plan.intervals[n - 1].label(),
        plan.grain,
        if jobs.is_empty() {
            " (no time-range job among the steps: nothing is skipped)".to_string()
        } else {
            format!(", time-range jobs {}", jobs.join(", "))
        }
    );
    let (mut ran, mut skipped) = (0, 0);
    for (k, interval) in plan.intervals.iter().enumerate() {
        let label = interval.label();
        if !force && plan.is_done(interval) {
            eprintln!("[{}/{n}] {label}: already done, skipped (--force re-runs it)", k + 1);
            skipped += 1;
            continue;
        }
        eprintln!("[{}/{n}] {label}: running", k + 1);
        let mut req = req.clone();
        req.params.extend(interval.params());
        let run_id = mesh_core::record::new_run_id();
        let (record, _outputs) = pipeline::run(engine.clone(), &req, &run_id, progress(multi)).await?;
        let _ = multi.clear();
        record.save(&root.join(RUNS_DIR))?;
        if !record.succeeded {
            let failed: Vec<String> = record
                .pipelines
                .iter()
                .flat_map(|p| &p.steps)
                .filter(|s| s.status == StepStatus::Failed)
                .map(|s| format!("{}: {}", s.name, s.error.clone().unwrap_or_default()))
                .collect();
            return Err(Failure::Runtime(format!(
                "backfill stopped at {label}: interval {label} failed (run {})\n  {}\n  help: intervals before {label} are committed; fix the cause and run the same command again to resume at {label}",
                record.run_id,
                failed.join("\n  ")
            )));
        }
        eprintln!(
            "[{}/{n}] {label}: done in {:.1}s (run {})",
            k + 1,
            record.seconds,
            record.run_id
        );
        ran += 1;
    }
    println!("backfill {from} to {to}: {ran} interval(s) run, {skipped} already done, {n} in all");
    Ok(())
}

fn print_summary(record: &RunRecord) {
    let steps = || {
        record
            .pipelines
            .iter()
            .flat_map(|p| p.steps.iter().map(move |s| (p, s)))
    };
    let total = steps().count();
    let ok = steps().filter(|(_, s)| s.status == StepStatus::Succeeded).count();
    let rejected: u64 = steps()
        .filter_map(|(_, s)| s.metrics.job())
        .map(|j| j.rows_rejected)
        .sum();
    println!();
    println!(
        "run {} · env {} · {} pipeline(s), {total} step(s): {ok} succeeded, {} not · {rejected} row(s) rejected · {:.1}s",
        record.run_id,
        record.env,
        record.pipelines.len(),
        total - ok,
        record.seconds
    );
    let header = [
        "project", "pipeline", "step", "status", "rows in", "rows out", "files", "checks", "seconds", "snapshot",
    ];
    let mut rows: Vec<([String; 10], Option<String>)> = Vec::new();
    for (p, s) in steps() {
        let done = s.status == StepStatus::Succeeded;
        let (rin, rout, files, checks, snap) = match (s.metrics.job(), s.metrics.optimize()) {
            (Some(j), _) if !done => (
                "–".into(),
                "–".into(),
                "–".into(),
                format!("{}/{}", j.checks.iter().filter(|c| c.passed).count(), j.checks.len()),
                "–".into(),
            ),
            (Some(j), _) => (
                j.rows_read.to_string(),
                j.rows_written.to_string(),
                format!("+{}/-{}", j.files_added, j.files_removed),
                format!("{}/{}", j.checks.iter().filter(|c| c.passed).count(), j.checks.len()),
                j.snapshot_id.map(|s| s.to_string()).unwrap_or_else(|| "–".into()),
            ),
            (_, Some(m)) => (
                "–".into(),
                "–".into(),
                m.compacted
                    .as_ref()
                    .map(|c| format!("{}→{}", c.files_before, c.files_after))
                    .unwrap_or_else(|| "–".into()),
                "–".into(),
                m.snapshot_id.map(|s| s.to_string()).unwrap_or_else(|| "–".into()),
            ),
            _ => ("–".into(), "–".into(), "–".into(), "–".into(), "–".into()),
        };
        rows.push((
            [
                p.project.clone(),
                p.pipeline.clone(),
                s.name.clone(),
                s.status.to_string(),
                rin,
                rout,
                files,
                checks,
                format!("{:.2}", s.seconds),
                snap,
            ],
            s.error
                .as_ref()
                .map(|e| e.lines().next().unwrap_or_default().to_string()),
        ));
    }
    // Columns as wide as their longest cell: long step names keep the table aligned.
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|(c, _)| c[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                let pad = w.saturating_sub(c.chars().count());
                // Counts right-aligned, text left-aligned.
                if (4..9).contains(&i) {
                    format!("{}{c}", " ".repeat(pad))
                } else {
                    format!("{c}{}", " ".repeat(pad))
                }
            })
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(&header);
    for (cells, error) in &rows {
        line(&cells.iter().map(String::as_str).collect::<Vec<_>>());
        if let Some(e) = error {
            println!("    {e}");
        }
    }
}
