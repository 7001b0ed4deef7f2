//! `mesh plan`, the same plan applied before `mesh run`, and `mesh state show|reset`. The
//! diff, classification and state operations live in mesh-core (`plan`, `fingerprint`,
//! `jobstate`); this module opens the engine, prints, and maps refusals to exit 2.

use std::collections::BTreeMap;
use std::path::Path;

use indicatif::MultiProgress;
use mesh_core::engine::Engine;
use mesh_core::pipeline::RunRequest;
use mesh_core::plan::{Object, Plan};
use mesh_domain::{Domain, Env};

use crate::cli::{Format, PlanFormat};
use crate::common::{config, open_engine, print_json, tokio_runtime};
use crate::exit::Failure;

fn env_flags(env: Option<Env>) -> BTreeMap<&'static str, String> {
    let mut flags = BTreeMap::new();
    if let Some(e) = env {
        flags.insert("env", e.to_string());
    }
    flags
}

/// `mesh plan`: exit 0 whatever it finds (it only reports), unless `--check` and a change is
/// refused; exit 2 when the base cannot be read (a bad ref, a model there that does not
/// validate).
pub fn run(
    root: &Path,
    domain: &Domain,
    env: Option<Env>,
    against: Option<String>,
    format: PlanFormat,
    check: bool,
) -> Result<(), Failure> {
    let plan = match against {
        Some(r) => {
            let (base, dir) = mesh_core::plan::model_at_ref(root, &r).map_err(|e| Failure::Invalid(e.to_string()))?;
            Plan {
                base: format!("git {r}"),
                changes: mesh_core::plan::diff_models(&base, dir.path(), domain, root),
                warnings: Vec::new(),
            }
        }
        None => {
            let cfg = config(root, domain, env_flags(env))?;
            let rt = tokio_runtime()?;
            rt.block_on(async {
                let engine = open_engine(root, domain, &cfg).await?;
                mesh_core::plan::plan_env(&engine)
                    .await
                    .map_err(|e| Failure::Runtime(e.to_string()))
            })?
        }
    };
    match format {
        PlanFormat::Text => print!("{}", mesh_core::plan::render_text(&plan)),
        PlanFormat::Json => print_json(&plan),
        PlanFormat::Markdown => print!("{}", mesh_core::plan::render_markdown(&plan)),
    }
    let refused = plan.refused().count();
    if check && refused > 0 {
        return Err(Failure::Invalid(format!(
            "--check: {refused} change(s) of the plan are refused; declare them in the manifest (moved_from, moved_from_slug, retired, dropped_columns) or undo them"
        )));
    }
    Ok(())
}

/// `mesh apply`: the model's declared moves and retirements, applied to the environment (or
/// listed with `--dry-run`). Exit 2 when one is refused (both places hold data, an old table
/// with columns the manifest dropped), 1 when the catalog or storage fails.
pub fn apply(root: &Path, domain: &Domain, env: Option<Env>, dry_run: bool, format: Format) -> Result<(), Failure> {
    let cfg = config(root, domain, env_flags(env))?;
    let rt = tokio_runtime()?;
    let done = rt.block_on(async {
        let engine = open_engine(root, domain, &cfg).await?;
        if dry_run {
            mesh_core::moves::pending(&engine).await.map_err(move_failure)
        } else {
            apply_declared(&engine, matches!(format, Format::Text)).await
        }
    })?;
    match format {
        Format::Json => print_json(&serde_json::json!({"dry_run": dry_run, "work": done})),
        Format::Text if done.is_empty() => println!("nothing to apply: no declared move or retirement is pending"),
        Format::Text if dry_run => {
            for w in &done {
                println!("would {}", w.describe());
            }
        }
        Format::Text => println!("applied {} declared move(s) and retirement(s)", done.len()),
    }
    Ok(())
}

fn move_failure(e: mesh_core::moves::MoveError) -> Failure {
    match e {
        refused @ mesh_core::moves::MoveError::Refused { .. } => Failure::Invalid(refused.to_string()),
        other => Failure::Runtime(other.to_string()),
    }
}

/// Applies the declared moves and retirements, saying each on stderr (`say`) before it starts.
pub async fn apply_declared(engine: &Engine, say: bool) -> Result<Vec<mesh_core::moves::Pending>, Failure> {
    mesh_core::moves::apply(engine, &|w| {
        if say {
            eprintln!("{}", w.describe());
        }
    })
    .await
    .map_err(move_failure)
}

/// Before `mesh run`: the plan of the environment, limited to the jobs the run would run and
/// the tables they write. Refused changes stop the run with exit 2 (table changes go on with
/// `--allow-destructive`); jobs to refresh (`--full-refresh`, or a changed job whose policy is
/// `full_refresh`) get their state reset and their output emptied in one commit, and a
/// time-range job's intervals done before are run again, before the run itself.
pub async fn guard_run(
    root: &Path,
    engine: &std::sync::Arc<Engine>,
    req: &RunRequest,
    full_refresh: bool,
    allow_destructive: bool,
    multi: &MultiProgress,
) -> Result<(), Failure> {
    let domain = engine.domain.clone();
    let planned = mesh_core::pipeline::planned_jobs(engine, req)?;
    let jobs: Vec<(&mesh_domain::Project, &mesh_domain::Job)> = planned
        .iter()
        .filter_map(|(p, j)| {
            let project = &domain.projects[*p];
            project.job(j.as_str()).map(|job| (project, job))
        })
        .collect();
    if full_refresh {
        if let Some((_, j)) = jobs.iter().find(|(_, j)| !j.is_stateful()) {
            return Err(Failure::Invalid(format!(
                "--full-refresh: job `{}` keeps no state (neither incremental nor time-range): every run already recomputes {}",
                j.name, j.output
            )));
        }
    }
    let plan = mesh_core::plan::plan_env(engine)
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    let refused: Vec<_> = plan
        .refusals_for(&jobs)
        .into_iter()
        .filter(|c| match c.object {
            Object::Job => !full_refresh,
            // A refresh empties the table before the write brings it to the manifest, so a
            // NOT NULL column then fits.
            Object::Table => !(allow_destructive || full_refresh && c.class == mesh_core::plan::Class::NeedsRewrite),
            Object::Project => !allow_destructive,
        })
        .collect();
    if !refused.is_empty() {
        let lines: Vec<String> = refused
            .iter()
            .map(|c| {
                let what = format!("{} {}/{} [{}]", c.action.as_str(), c.project, c.name, c.class.as_str());
                format!(
                    "{what}: {}\n    {}",
                    c.details.join("; "),
                    c.refused.as_deref().unwrap_or_default().replace('\n', "\n    ")
                )
            })
            .collect();
        return Err(Failure::Invalid(format!(
            "the run stops before anything is written: {} change(s) it would apply are refused (see `mesh plan`)\n  {}",
            refused.len(),
            lines.join("\n  ")
        )));
    }
    if allow_destructive {
        for c in plan.refusals_for(&jobs).into_iter().filter(|c| c.object != Object::Job) {
            eprintln!(
                "warning: --allow-destructive: going on despite {} {}/{} [{}]: {}",
                c.action.as_str(),
                c.project,
                c.name,
                c.class.as_str(),
                c.details.join("; ")
            );
        }
    }
    let policy_refresh = plan.to_refresh();
    for (project, job) in &jobs {
        let by_flag = full_refresh;
        let by_policy = policy_refresh
            .iter()
            .any(|(p, j)| p == project.name.as_str() && j == job.name.as_str());
        if !(by_flag || by_policy) {
            continue;
        }
        refresh(root, engine, req, project, job, multi).await?;
    }
    Ok(())
}

/// Resets the job and empties its output (one commit), then runs a time-range job's intervals
/// done before, oldest first, each as its own run of the job alone.
async fn refresh(
    root: &Path,
    engine: &std::sync::Arc<Engine>,
    req: &RunRequest,
    project: &mesh_domain::Project,
    job: &mesh_domain::Job,
    multi: &MultiProgress,
) -> Result<(), Failure> {
    let outcome = mesh_core::jobstate::reset(engine, project, job, true)
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    eprintln!(
        "full refresh of {}/{}: {}",
        project.name,
        job.name,
        describe_reset(&outcome, true)
    );
    let Some(done) = &outcome.intervals_before else {
        return Ok(());
    };
    let intervals = mesh_core::jobstate::intervals_of(job, done);
    let n = intervals.len();
    for (k, interval) in intervals.iter().enumerate() {
        let mut one = RunRequest {
            projects: vec![project.name.to_string()],
            pipeline: None,
            job: Some(job.name.to_string()),
            select: Vec::new(),
            exclude: Vec::new(),
            ..req.clone()
        };
        one.params.extend(interval.params());
        let run_id = mesh_core::record::new_run_id();
        let (record, _) =
            mesh_core::pipeline::run(engine.clone(), &one, &run_id, crate::progress::progress(multi)).await?;
        let _ = multi.clear();
        record.save(&root.join(mesh_core::layout::RUNS_DIR))?;
        if !record.succeeded {
            let errors: Vec<String> = record
                .pipelines
                .iter()
                .flat_map(|p| &p.steps)
                .filter_map(|s| s.error.clone())
                .collect();
            return Err(Failure::Runtime(format!(
                "full refresh of {}: interval {} failed (run {}): {}\n  help: the intervals before it are recomputed; run the same command again to start over",
                job.name,
                interval.label(),
                record.run_id,
                errors.join("; ")
            )));
        }
        eprintln!(
            "full refresh of {}: [{}/{n}] {} recomputed (run {})",
            job.name,
            k + 1,
            interval.label(),
            record.run_id
        );
    }
    Ok(())
}

fn describe_reset(o: &mesh_core::jobstate::ResetOutcome, emptied: bool) -> String {
    let Some(snapshot) = o.snapshot_id else {
        return format!("no state and no rows in {}: nothing to reset", o.output);
    };
    let keys = if o.reset.is_empty() {
        "no state was recorded".to_string()
    } else {
        format!("state reset ({})", o.reset.join(", "))
    };
    let rows = if emptied {
        format!("; {} row(s) removed from {}", o.rows_removed, o.output)
    } else {
        format!("; the rows of {} are kept", o.output)
    };
    let intervals = o
        .intervals_before
        .as_ref()
        .map(|i| format!("; intervals done before: {i}"))
        .unwrap_or_default();
    format!("{keys}{rows}{intervals}, in one commit (snapshot {snapshot})")
}

/// `mesh state show JOB`.
pub fn state_show(root: &Path, domain: &Domain, job: &str, env: Option<Env>, format: Format) -> Result<(), Failure> {
    let cfg = config(root, domain, env_flags(env))?;
    let rt = tokio_runtime()?;
    let view = rt.block_on(async {
        let engine = open_engine(root, domain, &cfg).await?;
        let (p, j) = mesh_core::jobstate::find_job(&engine, job).map_err(|e| Failure::Invalid(e.to_string()))?;
        mesh_core::jobstate::show(&engine, p, j).await.map_err(state_failure)
    })?;
    match format {
        Format::Json => print_json(&view),
        Format::Text => {
            println!(
                "job {}/{} ({}, on_change = {}) writes {}",
                view.project, view.job, view.kind, view.on_change, view.output
            );
            match view.snapshot_id {
                Some(s) => println!("output snapshot: {s}"),
                None => println!("output: not written yet"),
            }
            for e in &view.entries {
                println!("  {} = {}", e.key, e.value.as_deref().unwrap_or("(none)"));
            }
            println!(
                "fingerprint now: {}",
                view.fingerprint_now.as_deref().unwrap_or("(SQL unreadable)")
            );
            if !view.changed.is_empty() {
                println!(
                    "changed since its state was committed: {}\n  help: mesh run --job {} --full-refresh",
                    view.changed.join(", "),
                    view.job
                );
            }
        }
    }
    Ok(())
}

/// `mesh state reset JOB`: the state only; the rows stay.
pub fn state_reset(root: &Path, domain: &Domain, job: &str, env: Option<Env>, format: Format) -> Result<(), Failure> {
    let cfg = config(root, domain, env_flags(env))?;
    let rt = tokio_runtime()?;
    let outcome = rt.block_on(async {
        let engine = open_engine(root, domain, &cfg).await?;
        let (p, j) = mesh_core::jobstate::find_job(&engine, job).map_err(|e| Failure::Invalid(e.to_string()))?;
        mesh_core::jobstate::reset(&engine, p, j, false)
            .await
            .map_err(state_failure)
    })?;
    match format {
        Format::Json => print_json(&outcome),
        Format::Text => {
            println!("{}: {}", outcome.job, describe_reset(&outcome, false));
            if outcome.snapshot_id.is_some() {
                println!(
                    "the next run reads every input in full (incremental) or starts its intervals over (time-range); rows already in {} stay: use `mesh run --job {} --full-refresh` to replace them",
                    outcome.output, outcome.job
                );
            }
        }
    }
    Ok(())
}

fn state_failure(e: mesh_core::jobstate::StateError) -> Failure {
    match e {
        mesh_core::jobstate::StateError::Engine { .. } => Failure::Runtime(e.to_string()),
        _ => Failure::Invalid(e.to_string()),
    }
}
