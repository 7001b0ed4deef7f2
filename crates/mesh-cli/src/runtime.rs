//! Commands of the local runtime: sample data, configuration, reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mesh_core::config::{Config, Inputs};
use mesh_core::layout::{Layout, RUNS_DIR};
use mesh_core::record::RunRecord;
use mesh_core::sample::{self, SampleOptions};
use mesh_domain::{Domain, Env, Naming};

use crate::cli::Format;
use crate::exit::Failure;
use crate::table_text;

/// Resolves the configuration from the process environment, `.env`, `mesh.toml` and flags.
pub fn config(root: &Path, domain: &Domain, flags: BTreeMap<&'static str, String>) -> Result<Config, Failure> {
    let inputs = Inputs {
        domain_root: root,
        abbr: &domain.abbr,
        region: &domain.region,
        vars: Inputs::vars_with_dotenv(root),
        flags,
    };
    Config::resolve(&inputs).map_err(|e| Failure::Invalid(format!("error: {e}")))
}

pub fn sample_data(root: &Path, domain: &Domain, rows: u64, seed: u64) -> Result<(), Failure> {
    sample_data_with(root, domain, rows, seed, BTreeMap::new())
}

fn sample_data_with(
    root: &Path,
    domain: &Domain,
    rows: u64,
    seed: u64,
    flags: BTreeMap<&'static str, String>,
) -> Result<(), Failure> {
    let cfg = config(root, domain, flags)?;
    if rows == 0 {
        return Err(Failure::Invalid("error: --rows must be at least 1".into()));
    }
    // ENV selects where the files go: the local lake, or the environment's raw bucket.
    let layout = Layout::for_env(Naming::new(&domain.abbr, cfg.env.value), &cfg.lake_root.value);
    let started = Instant::now();
    let opts = SampleOptions {
        rows,
        seed,
        ..SampleOptions::default()
    };
    let tables = tokio_runtime()?.block_on(async {
        let stores = mesh_core::cloud::stores_for(&cfg, &aws_vars()).await;
        sample::generate_into(domain, &layout, &stores, &opts)
            .await
            .map_err(|e| Failure::Runtime(e.to_string()))
    })?;
    println!(
        "{:<18} {:<16} {:>10} {:>7} {:>6} {:>10}",
        "project", "table", "rows", "dirty", "files", "MB"
    );
    for t in &tables {
        println!(
            "{:<18} {:<16} {:>10} {:>7} {:>6} {:>10.1}",
            t.project,
            t.table,
            t.rows,
            t.dirty_rows,
            t.files,
            t.bytes as f64 / 1e6
        );
    }
    let target = match cfg.env.value {
        Env::Local => cfg.lake_root.value.display().to_string(),
        _ => format!("s3://{}", layout.naming.data_bucket(mesh_domain::Layer::Raw)),
    };
    println!(
        "wrote sample data to {target} in {:.1}s (seed {seed})",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn config_show(root: &Path, domain: &Domain, env: Option<Env>, format: Format) -> Result<(), Failure> {
    let mut flags = BTreeMap::new();
    if let Some(e) = env {
        flags.insert("env", e.to_string());
    }
    let cfg = config(root, domain, flags)?;
    match format {
        Format::Json => crate::print_json(&cfg),
        Format::Text => {
            for (k, v, src) in cfg.lines() {
                println!("{k:<16} {v:<50} ({src})");
            }
        }
    }
    Ok(())
}

pub fn report(root: &Path, run: Option<&str>, out: Option<PathBuf>) -> Result<(), Failure> {
    let dir = root.join(RUNS_DIR);
    let record = RunRecord::load(&dir, run).map_err(|e| Failure::Invalid(format!("error: {e}")))?;
    let out = out.unwrap_or_else(|| dir.join(format!("{}.html", record.run_id)));
    std::fs::write(&out, mesh_core::report::render(&record))
        .map_err(|e| Failure::Runtime(format!("cannot write `{}`: {e}", out.display())))?;
    println!("wrote {}", out.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// mesh run, mesh sql, mesh table

use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use mesh_core::dag::StepEvent;
use mesh_core::engine::Engine;
use mesh_core::pipeline::{self, Progress, RunRequest, StepOutput};

pub(crate) fn tokio_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // DataFusion's planner and optimizer recurse over expression trees; SQL is limited to
        // sql_check::MAX_DEPTH levels, and 16 MiB keeps that far from tokio's 2 MiB default.
        .thread_stack_size(16 << 20)
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))
}

/// A spinner per running step; log lines are printed above the bars.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Progress for Bars {
    fn event(&self, step: &str, event: StepEvent<'_>) {
        let mut bars = self.bars.lock().expect("bars lock");
        let bar = bars.entry(step.to_string()).or_insert_with(|| {
            let b = self.multi.add(ProgressBar::new_spinner());
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix:40} {msg} {elapsed}").expect("static template"),
            );
            b.set_prefix(step.to_string());
            b
        });
        match event {
            StepEvent::Started { attempt } => {
                bar.enable_steady_tick(Duration::from_millis(120));
                bar.set_message(if attempt > 1 {
                    format!("running (attempt {attempt})")
                } else {
                    "running".into()
                });
            }
            StepEvent::Retrying { attempt, error, wait } => bar.set_message(format!(
                "attempt {attempt} failed, retrying in {:.1}s: {error}",
                wait.as_secs_f64()
            )),
            StepEvent::Finished { ok } => bar.finish_with_message(if ok { "done" } else { "FAILED" }),
            StepEvent::Skipped => bar.finish_with_message("skipped"),
        }
    }
}

/// Writes log lines without tearing the progress bars.
#[derive(Clone)]
struct BarWriter(MultiProgress);

impl std::io::Write for BarWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .suspend(|| std::io::Write::write_all(&mut std::io::stderr(), buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

use std::time::Duration;

pub struct RunArgs {
    pub projects: Vec<String>,
    pub job: Option<String>,
    pub pipeline: Option<String>,
    pub params: Vec<String>,
    pub env: Option<Env>,
    pub sample_data: bool,
    pub rows: u64,
    pub seed: u64,
    /// `--from` / `--to`: a backfill.
    pub range: Option<(String, String)>,
    pub force: bool,
}

fn parse_params(params: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    params
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| {
                    Failure::Invalid(format!(
                        "error: --param `{p}` must be KEY=VALUE, e.g. --param run_date=2026-11-27"
                    ))
                })
        })
        .collect()
}

/// The process environment: the AWS SDK reads its variables (endpoints, credentials) from
/// there only, so S3 must too, or Glue and S3 could be configured differently.
fn aws_vars() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

/// The engine of the configured environment (local lake, or Glue + S3 for dev/int/prod).
pub(crate) async fn open_engine(root: &Path, domain: &Domain, cfg: &Config) -> Result<Arc<Engine>, Failure> {
    Engine::open(Arc::new(domain.clone()), root.to_path_buf(), cfg, &aws_vars())
        .await
        .map(Arc::new)
        .map_err(|e| Failure::Runtime(format!("cannot open the {} catalog: {e}", cfg.env.value)))
}

pub fn run(root: &Path, domain: &Domain, args: RunArgs) -> Result<(), Failure> {
    let mut flags = BTreeMap::new();
    if let Some(e) = args.env {
        flags.insert("env", e.to_string());
    }
    let cfg = config(root, domain, flags.clone())?;
    let mut params = parse_params(&args.params)?;
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
    };
    let rt = tokio_runtime()?;
    if let Some((from, to)) = &args.range {
        if params.contains_key("run_date") {
            return Err(Failure::Invalid(
                "error: --param run_date and --from/--to both set the date; a backfill sets run_date to each interval's first day".into(),
            ));
        }
        let req = RunRequest { params, ..req };
        return rt.block_on(backfill(root, domain, &cfg, &req, from, to, args.force, &multi));
    }
    // A daily job run by hand or by a schedule means today: say so, and where it came from.
    // Through the log, so it is a JSON line where logs are JSON (cloud environments).
    match params.get("run_date") {
        Some(d) => tracing::info!("run_date = {d} (from --param run_date)"),
        None => {
            let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
            tracing::info!("run_date = {today} (default: today, UTC; set it with --param run_date=YYYY-MM-DD)");
            params.insert("run_date".into(), today);
        }
    }
    let req = RunRequest { params, ..req };
    let run_id = mesh_core::record::new_run_id();
    let (record, outputs) = rt.block_on(async {
        let engine = open_engine(root, domain, &cfg).await?;
        pipeline::run(engine, &req, &run_id, progress(&multi))
            .await
            .map_err(|e| Failure::Invalid(format!("error: {e}")))
    })?;
    let _ = multi.clear();
    finish(root, &record, &outputs)
}

/// Saves the run record, prints the summary, and turns failed steps into the exit status.
fn finish(root: &Path, record: &RunRecord, outputs: &[(String, StepOutput)]) -> Result<(), Failure> {
    let path = record
        .save(&root.join(RUNS_DIR))
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    print_summary(record, outputs);
    println!(
        "run record: {}   report: mesh report {}",
        path.strip_prefix(root).unwrap_or(&path).display(),
        record.run_id
    );
    if record.succeeded {
        Ok(())
    } else {
        let failed: Vec<String> = record
            .pipelines
            .iter()
            .flat_map(|p| {
                p.steps.iter().filter(|s| s.status == "failed").map(move |s| {
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
        Err(Failure::Runtime(format!(
            "{} step(s) failed:\n  {}",
            failed.len(),
            failed.join("\n  ")
        )))
    }
}

/// Spinners at a terminal; elsewhere (CI, Step Functions, a pipe) one log line per step start,
/// retry and end, so a long run is never silent.
fn progress(multi: &MultiProgress) -> Arc<dyn Progress> {
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        Arc::new(Bars {
            multi: multi.clone(),
            bars: Mutex::new(BTreeMap::new()),
        })
    } else {
        Arc::new(Lines::default())
    }
}

#[derive(Default)]
struct Lines {
    started: Mutex<BTreeMap<String, Instant>>,
}

impl Progress for Lines {
    fn event(&self, step: &str, event: StepEvent<'_>) {
        let mut started = self.started.lock().expect("lines lock");
        match event {
            StepEvent::Started { attempt } => {
                started.insert(step.to_string(), Instant::now());
                tracing::info!(step, attempt, "step started");
            }
            StepEvent::Retrying { attempt, error, wait } => {
                tracing::warn!(
                    step,
                    attempt,
                    wait_s = wait.as_secs_f64(),
                    "step attempt failed, retrying: {error}"
                )
            }
            StepEvent::Finished { ok } => {
                let seconds = started.get(step).map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
                if ok {
                    tracing::info!(step, seconds, "step succeeded");
                } else {
                    tracing::error!(step, seconds, "step failed");
                }
            }
            StepEvent::Skipped => tracing::warn!(step, "step skipped: a step it depends on did not succeed"),
        }
    }
}

/// `mesh run --from --to`: each interval as its own run (own record), in order; intervals
/// already committed are skipped unless `force`; the first failing interval stops the backfill.
#[allow(clippy::too_many_arguments)]
async fn backfill(
    root: &Path,
    domain: &Domain,
    cfg: &Config,
    req: &RunRequest,
    from: &str,
    to: &str,
    force: bool,
    multi: &MultiProgress,
) -> Result<(), Failure> {
    use mesh_core::backfill::{Backfill, BackfillError};
    let engine = open_engine(root, domain, cfg).await?;
    let plan = Backfill::plan(&engine, req, from, to).await.map_err(|e| match e {
        BackfillError::State { .. } => Failure::Runtime(format!("error: {e}")),
        _ => Failure::Invalid(format!("error: {e}")),
    })?;
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
        let (record, _outputs) = pipeline::run(engine.clone(), &req, &run_id, progress(multi))
            .await
            .map_err(|e| Failure::Invalid(format!("error: {e}")))?;
        let _ = multi.clear();
        record
            .save(&root.join(RUNS_DIR))
            .map_err(|e| Failure::Runtime(e.to_string()))?;
        if !record.succeeded {
            let failed: Vec<String> = record
                .pipelines
                .iter()
                .flat_map(|p| &p.steps)
                .filter(|s| s.status == "failed")
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

fn init_logging(cfg: &Config, bars: Option<MultiProgress>) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&cfg.log_level.value).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = cfg.log_format.value == mesh_core::config::LogFormat::Json;
    // Colours only for a person at a terminal, never in CI logs or files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi);
    let _ = match (bars, json) {
        (Some(m), false) => builder.compact().with_writer(move || BarWriter(m.clone())).try_init(),
        (Some(m), true) => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(move || BarWriter(m.clone()))
            .try_init(),
        (None, _) => {
            mesh_core::logging::init(&cfg.log_level.value, cfg.log_format.value);
            Ok(())
        }
    };
}

fn print_summary(record: &RunRecord, outputs: &[(String, StepOutput)]) {
    let total: usize = record.pipelines.iter().map(|p| p.steps.len()).sum();
    let ok: usize = record
        .pipelines
        .iter()
        .flat_map(|p| &p.steps)
        .filter(|s| s.status == "succeeded")
        .count();
    println!();
    println!(
        "run {} · env {} · {} pipeline(s), {total} step(s): {ok} succeeded, {} not · {:.1}s",
        record.run_id,
        record.env,
        record.pipelines.len(),
        total - ok,
        record.seconds
    );
    println!(
        "{:<16} {:<9} {:<22} {:<10} {:>10} {:>10} {:>6} {:>7} {:>8}  snapshot",
        "project", "pipeline", "step", "status", "rows in", "rows out", "files", "checks", "seconds"
    );
    for p in &record.pipelines {
        for s in &p.steps {
            let key = format!("{}/{}/{}", p.project, p.pipeline, s.name);
            let key_job = format!("{}/{}", p.project, s.name);
            let out = outputs.iter().find(|(k, _)| *k == key || *k == key_job).map(|(_, o)| o);
            let (rin, rout, files, checks, snap) = match out {
                Some(StepOutput::Job(j)) => (
                    j.rows_read.to_string(),
                    j.rows_written.to_string(),
                    format!("+{}/-{}", j.files_added, j.files_removed),
                    format!("{}/{}", j.checks.iter().filter(|c| c.passed).count(), j.checks.len()),
                    j.snapshot_id.map(|s| s.to_string()).unwrap_or_else(|| "–".into()),
                ),
                Some(StepOutput::Optimize(m)) => (
                    "–".into(),
                    "–".into(),
                    format!(
                        "{}→{}",
                        m.get("files_compacted")
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| "0".into()),
                        m.get("files_added")
                            .map(|v| v.to_string())
                            .unwrap_or_else(|| "0".into())
                    ),
                    "–".into(),
                    m.get("snapshot_id")
                        .filter(|v| !v.is_null())
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "–".into()),
                ),
                None => ("–".into(), "–".into(), "–".into(), "–".into(), "–".into()),
            };
            println!(
                "{:<16} {:<9} {:<22} {:<10} {:>10} {:>10} {:>6} {:>7} {:>8.2}  {}",
                p.project, p.pipeline, s.name, s.status, rin, rout, files, checks, s.seconds, snap
            );
            if let Some(e) = &s.error {
                println!("    {}", e.lines().next().unwrap_or_default());
            }
        }
    }
}

/// `mesh sql`: ad-hoc Spark SQL over the local tables (raw tables are read only when named).
pub fn sql(root: &Path, domain: &Domain, query: &str, format: Format) -> Result<(), Failure> {
    // Read-only before anything is opened: COPY … TO, INSERT, CREATE EXTERNAL TABLE, SET and
    // second statements never reach the engine.
    mesh_core::sql_check::check_read_only_query(query).map_err(|e| {
        Failure::Invalid(format!(
            "error: {}\n  help: `mesh sql` runs one read-only query; tables are written by jobs (mesh run)",
            e.message
        ))
    })?;
    let cfg = config(root, domain, BTreeMap::new())?;
    let rt = tokio_runtime()?;
    rt.block_on(async {
        let engine = open_engine(root, domain, &cfg).await?;
        let ctx =
            mesh_core::session::new_context_in(&engine.layout.naming, engine.runtime.clone()).map_err(|e| Failure::Runtime(e.to_string()))?;
        engine.register_object_stores(&ctx).map_err(Failure::Runtime)?;
        let lower = query.to_ascii_lowercase();
        for (project, table) in domain.tables() {
            let db = engine.layout.naming.database(table.layer);
            if !lower.contains(&format!("{db}.{}", table.name)) {
                continue;
            }
            if table.hive().is_some() {
                let read = mesh_core::raw::read_raw(table, &engine.stores, &engine.location(project, table))
                    .await
                    .map_err(|e| Failure::Runtime(e.to_string()))?;
                mesh_core::session::register_batches(&ctx, &db, table.name.as_str(), read.schema, read.batches)
                    .map_err(|e| Failure::Runtime(e.to_string()))?;
            } else {
                let t = engine.load_table(project, table).await.map_err(load_failure)?;
                let provider = t
                    .table_provider(None)
                    .await
                    .map_err(|e| Failure::Runtime(e.to_string()))?;
                mesh_core::session::register_provider(&ctx, &db, table.name.as_str(), provider)
                    .map_err(|e| Failure::Runtime(e.to_string()))?;
            }
        }
        let df = ctx
            .sql_with_options(query, mesh_core::sql_check::read_only())
            .await
            .map_err(|e| Failure::Invalid(format!("error: {e}")))?;
        let batches = df.collect().await.map_err(|e| Failure::Runtime(e.to_string()))?;
        match format {
            Format::Text => println!(
                "{}",
                datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                    .map_err(|e| Failure::Runtime(e.to_string()))?
            ),
            Format::Json => {
                // A NULL is a value of the result: keep the key, as `null`, rather than drop it.
                let mut w = datafusion::arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, datafusion::arrow::json::writer::JsonArray>(Vec::new());
                for b in &batches {
                    w.write(b).map_err(|e| Failure::Runtime(e.to_string()))?;
                }
                w.finish().map_err(|e| Failure::Runtime(e.to_string()))?;
                println!("{}", String::from_utf8_lossy(&w.into_inner()));
            }
        }
        Ok(())
    })
}

/// Resolves `layer.table` or `database.table` to a project's table.
pub(crate) fn find_table<'a>(
    domain: &'a Domain,
    naming: &mesh_domain::Naming,
    name: &str,
) -> Result<(&'a mesh_domain::Project, &'a mesh_domain::Table), Failure> {
    let found = domain.tables().find(|(_, t)| {
        let full = format!("{}.{}", naming.database(t.layer), t.name);
        name == t.reference().to_string() || name == full
    });
    found.ok_or_else(|| {
        let known: Vec<String> = domain
            .tables()
            .filter(|(_, t)| t.iceberg().is_some())
            .map(|(_, t)| t.reference().to_string())
            .collect();
        let hint = mesh_domain::diagnostic::did_you_mean(name, known.iter().map(String::as_str))
            .unwrap_or_else(|| format!("Iceberg tables: {}", known.join(", ")));
        Failure::Invalid(format!("error: no table `{name}`\n  help: {hint}"))
    })
}

pub fn table(root: &Path, domain: &Domain, what: &str, name: &str, format: Format) -> Result<(), Failure> {
    let cfg = config(root, domain, BTreeMap::new())?;
    let rt = tokio_runtime()?;
    rt.block_on(async {
        let engine = open_engine(root, domain, &cfg).await?;
        let (project, table) = find_table(domain, &engine.layout.naming, name)?;
        if table.iceberg().is_none() {
            return Err(Failure::Invalid(format!(
                "error: `{name}` is a raw (Hive) table; `mesh table` shows Iceberg tables"
            )));
        }
        let t = engine.load_table(project, table).await.map_err(load_failure)?;
        let info = t.info();
        match (what, format) {
            ("show", Format::Json) => crate::print_json(&info),
            ("show", Format::Text) => print!("{}", table_text::show(&info)),
            ("history", Format::Json) => crate::print_json(&t.history()),
            ("history", Format::Text) => print_value_table(&table_text::history(&t.history())),
            ("snapshots", Format::Json) => crate::print_json(&t.snapshots()),
            ("snapshots", Format::Text) => print_value_table(&table_text::snapshots(&t.snapshots())),
            (_, format) => {
                let files = t.files(None).await.map_err(|e| Failure::Runtime(e.to_string()))?;
                match format {
                    Format::Json => crate::print_json(&files),
                    Format::Text => print_value_table(&table_text::files(&files, &info.partition_spec)),
                }
            }
        }
        Ok(())
    })
}

/// A table that does not exist yet is a usage problem (exit 2); a damaged one is named and
/// exits 1, never "run the job first".
fn load_failure(e: mesh_core::mesh_iceberg::Error) -> Failure {
    match e {
        mesh_core::mesh_iceberg::Error::TableNotFound { .. } => Failure::Invalid(format!(
            "error: {e}\n  help: run the job that writes it first (mesh run)"
        )),
        other => Failure::Runtime(other.to_string()),
    }
}

/// `mesh table check`: every file the snapshot(s) reference exists and parses.
pub fn table_check(root: &Path, domain: &Domain, name: &str, all: bool, format: Format) -> Result<(), Failure> {
    let cfg = config(root, domain, BTreeMap::new())?;
    tokio_runtime()?.block_on(async {
        let engine = open_engine(root, domain, &cfg).await?;
        let (project, table) = find_table(domain, &engine.layout.naming, name)?;
        if table.iceberg().is_none() {
            return Err(Failure::Invalid(format!(
                "error: `{name}` is a raw (Hive) table; `mesh table check` checks Iceberg tables"
            )));
        }
        let t = engine.load_table(project, table).await.map_err(load_failure)?;
        let report = t.check(all).await.map_err(|e| Failure::Runtime(e.to_string()))?;
        match format {
            Format::Json => crate::print_json(&report),
            Format::Text => {
                println!(
                    "{}: {} snapshot(s), {} manifest list(s), {} manifest(s), {} data file(s) read",
                    report.table, report.snapshots, report.manifest_lists, report.manifests, report.data_files
                );
                for p in &report.problems {
                    println!("  damaged {} {}: {}", p.kind, p.path, p.problem);
                }
            }
        }
        if report.problems.is_empty() {
            Ok(())
        } else {
            Err(Failure::Runtime(format!(
                "table {}: {} damaged file(s); restore them from a backup",
                report.table,
                report.problems.len()
            )))
        }
    })
}

/// `mesh table register`: adopt the newest metadata file after the catalog lost the table.
pub fn table_register(root: &Path, domain: &Domain, name: &str) -> Result<(), Failure> {
    let cfg = config(root, domain, BTreeMap::new())?;
    tokio_runtime()?.block_on(async {
        let engine = open_engine(root, domain, &cfg).await?;
        let (project, table) = find_table(domain, &engine.layout.naming, name)?;
        if table.iceberg().is_none() {
            return Err(Failure::Invalid(format!(
                "error: `{name}` is a raw (Hive) table; only Iceberg tables are in the catalog"
            )));
        }
        let t = engine.register(project, table).await.map_err(|e| match e {
            mesh_core::mesh_iceberg::Error::Invalid { .. } => Failure::Invalid(format!("error: {e}")),
            other => Failure::Runtime(other.to_string()),
        })?;
        println!(
            "registered {} at {} (snapshot {})",
            table.reference(),
            t.metadata_location(),
            t.metadata()
                .current_snapshot_id()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "none".into())
        );
        Ok(())
    })
}

/// Arrays of objects print as aligned columns; anything else as indented JSON.
fn print_value_table(v: &serde_json::Value) {
    let Some(rows) = v
        .as_array()
        .filter(|a| a.iter().all(|r| r.is_object()) && !a.is_empty())
    else {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        return;
    };
    let keys: Vec<String> = rows[0]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let cell = |r: &serde_json::Value, k: &str| -> String {
        match r.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => "–".into(),
            Some(other) => other.to_string(),
        }
    };
    let widths: Vec<usize> = keys
        .iter()
        .map(|k| {
            rows.iter()
                .map(|r| cell(r, k).len())
                .max()
                .unwrap_or(0)
                .max(k.len())
                .min(60)
        })
        .collect();
    let line: Vec<String> = keys.iter().zip(&widths).map(|(k, w)| format!("{k:<w$}")).collect();
    println!("{}", line.join("  "));
    for r in rows {
        let line: Vec<String> = keys
            .iter()
            .zip(&widths)
            .map(|(k, w)| format!("{:<w$}", cell(r, k)))
            .collect();
        println!("{}", line.join("  "));
    }
}

pub struct StartArgs {
    pub project: String,
    pub pipeline: Option<String>,
    pub env: Env,
    pub run_date: Option<chrono::NaiveDate>,
    /// Wait at most this long for the execution to end.
    pub wait: Option<std::time::Duration>,
    pub format: Format,
}

/// `mesh start`: StartExecution on the pipeline's state machine, then (with --wait) its end.
pub fn start(root: &Path, domain: &Domain, a: StartArgs) -> Result<(), Failure> {
    use mesh_core::start::{self, StartError};
    crate::check_project(domain, &a.project)?;
    let project = domain.project(&a.project).expect("checked above");
    let invalid = |e: StartError| Failure::Invalid(format!("error: {e}"));
    let pipeline = start::pick(project, a.pipeline.as_deref()).map_err(invalid)?;
    let arn = start::state_machine_arn(domain, a.env, project, pipeline).map_err(invalid)?;
    let mut flags = BTreeMap::new();
    flags.insert("env", a.env.to_string());
    let cfg = config(root, domain, flags)?;
    let scheduled = start::scheduled_time(a.run_date, chrono::Utc::now());
    tokio_runtime()?.block_on(async {
        let sdk = mesh_core::cloud::sdk_config(&cfg).await;
        let client = aws_sdk_sfn_client(&sdk);
        let started = start::start(&client, &arn, &scheduled)
            .await
            .map_err(|e| Failure::Runtime(e.to_string()))?;
        let finished = match a.wait {
            None => None,
            Some(timeout) => {
                if matches!(a.format, Format::Text) {
                    eprintln!("started {}; waiting for it to end", started.execution_arn);
                }
                Some(
                    start::wait(&client, &started.execution_arn, timeout)
                        .await
                        .map_err(|e| Failure::Runtime(e.to_string()))?,
                )
            }
        };
        match a.format {
            Format::Json => crate::print_json(&serde_json::json!({"started": started, "finished": finished})),
            Format::Text => {
                println!(
                    "started {} of {} ({}): {}",
                    pipeline.name, project.name, a.env, started.execution_arn
                );
                println!("  scheduled_time {}", started.scheduled_time);
                if let Some(f) = &finished {
                    println!("  {} after {:.1} s", f.status, f.seconds);
                }
            }
        }
        match finished {
            Some(f) if !f.succeeded() => Err(Failure::Runtime(format!(
                "execution {} ended {}: {}{}",
                f.execution_arn,
                f.status,
                f.error.as_deref().unwrap_or("no error name"),
                f.cause.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
            ))),
            _ => Ok(()),
        }
    })
}

fn aws_sdk_sfn_client(sdk: &mesh_core::aws_config::SdkConfig) -> mesh_core::aws_sdk_sfn::Client {
    mesh_core::aws_sdk_sfn::Client::new(sdk)
}
