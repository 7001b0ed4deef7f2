//! Scheduled runs of time-range jobs process complete intervals only, catch up after a pause,
//! pick up late data with `lookback`, and refuse an interval still in progress: on meshkit and,
//! with the same run times, on the Glue runner over Spark 3.5 + Iceberg 1.10
//! (runtime/glue/catchup_tests.py replays every step and compares intervals, rows, state and
//! errors with what meshkit did here).
//!
//! Also checks, without Spark, that the runner's due plan is meshkit's on a grid of grains,
//! states, starts, lags, lookbacks and run times.
//!
//! Needs `MESH_PYTHON` and `MESH_ICEBERG_JARS` (scripts/test.sh sets both); never skips.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use mesh_core::artifacts::job_spec;
use mesh_core::config::{Config, Inputs};
use mesh_core::engine::Engine;
use mesh_core::incremental::intervals_key;
use mesh_core::interval::{due, parse_run_time, DoneSet, Due, Interval};
use mesh_core::job::JobRun;
use mesh_core::layout::Layout;
use mesh_domain::{Domain, Env, Grain, Naming};
use serde_json::json;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn python() -> String {
    std::env::var("MESH_PYTHON")
        .unwrap_or_else(|_| panic!("MESH_PYTHON is not set: run scripts/test.sh, which installs pyspark and sets it"))
}

const PROJECT: &str = r#"name = "catchup"
project_slug = "pj09"
owner = "platform-tests"
classification = "internal"
description = "Scheduled time-range jobs on both engines."

[[tables]]
name = "events"
layer = "raw"
format = "csv"
partition_by = ["d"]
columns = [
  { name = "id", type = "long" },
  { name = "amount", type = "decimal(12,2)" },
  { name = "d", type = "date" },
]
[tables.csv]
header = true
delimiter = ","

[[tables]]
name = "daily_counts"
layer = "curated"
columns = [
  { name = "d", type = "date" },
  { name = "n", type = "long" },
  { name = "amount", type = "decimal(14,2)" },
]

[[tables]]
name = "from_start"
layer = "curated"
columns = [
  { name = "d", type = "date" },
  { name = "n", type = "long" },
  { name = "amount", type = "decimal(14,2)" },
]

# No start: the first scheduled run processes the latest complete day; later runs catch up
# after the latest day done, and process yesterday again for late files.
[[jobs]]
name = "daily_counts"
sql = "sql/daily.sql"
inputs = ["raw.events"]
output = "curated.daily_counts"
mode = "overwrite"
[jobs.time_range]
column = "d"
grain = "day"
lookback = 1

# From a start, with a lag: a day is complete two hours after it ends.
[[jobs]]
name = "from_start"
sql = "sql/daily.sql"
inputs = ["raw.events"]
output = "curated.from_start"
mode = "overwrite"
[jobs.time_range]
column = "d"
grain = "day"
start = "2026-12-03"
lag = "2h"
"#;

const SQL: &str = "SELECT d, COUNT(*) AS n, CAST(SUM(amount) AS DECIMAL(14, 2)) AS amount\nFROM f01_raw.events\nWHERE d >= CAST('${interval_start}' AS DATE) AND d < CAST('${interval_end}' AS DATE)\nGROUP BY d\n";

const JOBS: [&str; 2] = ["daily_counts", "from_start"];

/// One scheduled (or replayed) run: files landed before it, its time, and `--param`s.
struct Step {
    name: &'static str,
    land: &'static [(&'static str, &'static str)],
    at: &'static str,
    params: &'static [(&'static str, &'static str)],
}

fn day_file(rows: &str) -> String {
    format!("id,amount\n{rows}")
}

const STEPS: &[Step] = &[
    // 06:00 on 2026-12-06: five days landed and part of today. daily_counts: yesterday only;
    // from_start: 12-03 to 12-05 (12-05 completed at 02:00 with the lag).
    Step {
        name: "first scheduled run",
        land: &[
            ("d=2026-12-01/a.csv", "1,1.00\n"),
            ("d=2026-12-02/a.csv", "2,2.00\n"),
            ("d=2026-12-03/a.csv", "3,3.00\n4,4.00\n"),
            ("d=2026-12-04/a.csv", "5,5.00\n"),
            ("d=2026-12-05/a.csv", "6,6.00\n7,7.50\n"),
            ("d=2026-12-06/a.csv", "8,8.00\n"),
        ],
        at: "2026-12-06T06:00:00Z",
        params: &[],
    },
    // Three days without a run (12-06, 12-07, 12-08), their files landed meanwhile.
    Step {
        name: "after three skipped days",
        land: &[
            ("d=2026-12-06/b.csv", "9,9.00\n"),
            ("d=2026-12-07/a.csv", "10,10.00\n11,11.00\n"),
            ("d=2026-12-08/a.csv", "12,12.00\n"),
            ("d=2026-12-09/a.csv", "13,13.00\n"),
        ],
        at: "2026-12-09T01:00:00Z",
        params: &[],
    },
    // A late file for yesterday: lookback = 1 picks it up; from_start's lag has passed for
    // 12-08 by now.
    Step {
        name: "late file for yesterday",
        land: &[("d=2026-12-08/late.csv", "14,14.00\n15,0.25\n")],
        at: "2026-12-09T12:00:00Z",
        params: &[],
    },
    // Today named explicitly: refused on both engines, nothing committed.
    Step {
        name: "today named explicitly",
        land: &[],
        at: "2026-12-09T12:00:00Z",
        params: &[("run_date", "2026-12-09")],
    },
    // A past day named explicitly runs exactly that day, whatever is done.
    Step {
        name: "a past day named explicitly",
        land: &[("d=2026-12-02/late.csv", "16,16.00\n")],
        at: "2026-12-09T12:00:00Z",
        params: &[("run_date", "2026-12-02")],
    },
];

fn write_parquet(path: &Path, schema: SchemaRef, batches: &[RecordBatch]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

fn land(folder: &Path, files: &[(&str, &str)]) {
    for (rel, rows) in files {
        let path = folder.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, day_file(rows)).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

async fn open_engine(root: &Path) -> (Arc<Domain>, Arc<Engine>, Layout) {
    let domain = Arc::new(mesh_domain::load_domain(root).unwrap_or_else(|e| panic!("test domain: {e:?}")));
    let config = Config::resolve(&Inputs {
        domain_root: root,
        abbr: &domain.abbr,
        region: &domain.region,
        vars: BTreeMap::new(),
        flags: BTreeMap::new(),
    })
    .unwrap();
    let layout = Layout::local(Naming::new(&domain.abbr, Env::Local), &config.lake_root.value);
    let engine = Arc::new(
        Engine::local(domain.clone(), root.to_path_buf(), &config)
            .await
            .unwrap(),
    );
    (domain, engine, layout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_time_range_runs_agree_on_meshkit_and_the_runner() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let root = work.join("domain");
    std::fs::create_dir_all(root.join("projects/catchup/sql")).unwrap();
    std::fs::copy(repo_root().join("domain.json"), root.join("domain.json")).unwrap();
    std::fs::write(root.join("projects/catchup/project.toml"), PROJECT).unwrap();
    std::fs::write(root.join("projects/catchup/sql/daily.sql"), SQL).unwrap();
    let (domain, engine, layout) = open_engine(&root).await;
    let p = domain.project("catchup").unwrap();
    let table = |name: &str| p.tables.iter().find(|t| t.name.as_str() == name).unwrap();
    let raw = layout.path(&layout.table_location(p, table("events"))).unwrap();

    let mut specs = serde_json::Map::new();
    for job in JOBS {
        let mut spec = serde_json::to_value(job_spec(&domain, Env::Dev, p, p.job(job).unwrap())).unwrap();
        let sql = work.join("sql/daily.sql");
        std::fs::create_dir_all(sql.parent().unwrap()).unwrap();
        std::fs::write(&sql, SQL).unwrap();
        spec["sql"]["uri"] = json!(format!("file://{}", sql.display()));
        specs.insert(job.into(), spec);
    }

    let mut steps = Vec::new();
    for (k, step) in STEPS.iter().enumerate() {
        land(&raw, step.land);
        // The runner reads its own copy of the raw folder as it was at this step.
        let copy = work.join(format!("raw/step{k}/events"));
        std::fs::create_dir_all(&copy).unwrap();
        copy_dir(&raw, &copy);
        let at = parse_run_time(step.at).unwrap();
        let params: BTreeMap<String, String> = step
            .params
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let mut jobs = serde_json::Map::new();
        for job in JOBS {
            let j = p.job(job).unwrap();
            let outcome = JobRun {
                engine: &engine,
                project: p,
                job: j,
                params: &params,
                run_id: &format!("{job}-step{k}"),
                at,
            }
            .run()
            .await;
            let t = engine.load_table(p, table(job)).await.ok();
            let rows = work.join(format!("expected/{job}/step{k}.parquet"));
            if let Some(t) = &t {
                let scan = t.scan(&Default::default()).await.unwrap();
                write_parquet(&rows, scan.schema.clone(), &scan.batches);
            }
            let (intervals, error) = match &outcome {
                Ok(r) => (
                    if r.intervals.is_empty() {
                        r.interval.iter().cloned().collect()
                    } else {
                        r.intervals.clone()
                    },
                    None,
                ),
                Err(e) => (Vec::new(), Some(e.to_string())),
            };
            eprintln!("meshkit {job} at {}: {intervals:?} {error:?}", step.name);
            jobs.insert(
                job.into(),
                json!({
                    "intervals": intervals,
                    "error": error,
                    "rows": t.as_ref().map(|_| rows),
                    "done": t.as_ref().and_then(|t| t.summary_property(&intervals_key(job))),
                }),
            );
        }
        steps.push(json!({
            "name": step.name, "at": step.at, "location": format!("file://{}/", copy.display()),
            "params": step.params.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>(),
            "jobs": jobs,
        }));
    }

    // What meshkit did is what the issue asks for; the runner must then do the same.
    let got = |k: usize, job: &str| steps[k]["jobs"][job].clone();
    assert_eq!(
        got(0, "daily_counts")["intervals"],
        json!(["2026-12-05"]),
        "yesterday, never today"
    );
    assert_eq!(
        got(0, "from_start")["intervals"],
        json!(["2026-12-03", "2026-12-04", "2026-12-05"])
    );
    assert_eq!(
        got(1, "daily_counts")["intervals"],
        json!(["2026-12-05", "2026-12-06", "2026-12-07", "2026-12-08"]),
        "lookback 1, then the three missing days (12-08 ended at midnight: complete at 01:00)"
    );
    assert_eq!(
        got(1, "from_start")["intervals"],
        json!(["2026-12-06", "2026-12-07"]),
        "12-08 completes at 02:00 with the 2h lag"
    );
    assert_eq!(got(2, "daily_counts")["intervals"], json!(["2026-12-08"]));
    assert_eq!(got(2, "from_start")["intervals"], json!(["2026-12-08"]));
    assert_eq!(got(2, "daily_counts")["done"], json!("2026-12-05/2026-12-08"));
    for job in JOBS {
        let e = got(3, job)["error"].as_str().unwrap_or_default().to_string();
        assert!(
            e.contains("2026-12-09 is not complete at the run's time 2026-12-09 12:00:00 UTC"),
            "{job}: {e}"
        );
        assert_eq!(got(4, job)["intervals"], json!(["2026-12-02"]), "{job}");
    }
    // 12-08 holds the late file (3 rows), today is not in the table.
    let rows = mesh_rows(&engine, p, table("daily_counts")).await;
    assert!(rows.contains(&"2026-12-08|3|26.25".to_string()), "{rows:?}");
    assert!(rows.contains(&"2026-12-02|2|18.00".to_string()), "{rows:?}");
    assert!(!rows.iter().any(|r| r.starts_with("2026-12-09")), "{rows:?}");

    let manifest = json!({
        "workdir": work.join("spark"),
        "jars": std::env::var("MESH_ICEBERG_JARS").unwrap_or_else(|_| panic!("MESH_ICEBERG_JARS is not set: run scripts/test.sh")),
        "specs": specs,
        "intervals_keys": JOBS.iter().map(|j| (j.to_string(), json!(intervals_key(j)))).collect::<serde_json::Map<_, _>>(),
        "steps": steps,
    });
    let path = work.join("catchup.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let script = repo_root().join("runtime/glue/catchup_tests.py");
    let out = std::process::Command::new(python())
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the runner on Spark + Iceberg differs from meshkit:\n{stdout}\n{}",
        tail(&stderr, 4000)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok   ")).count(),
        STEPS.len() * JOBS.len(),
        "{stdout}"
    );
}

async fn mesh_rows(engine: &Engine, p: &mesh_domain::Project, t: &mesh_domain::Table) -> Vec<String> {
    let t = engine.load_table(p, t).await.unwrap();
    let scan = t.scan(&Default::default()).await.unwrap();
    let mut out = Vec::new();
    for b in &scan.batches {
        for r in 0..b.num_rows() {
            let cells: Vec<String> = (0..b.num_columns())
                .map(|c| datafusion::arrow::util::display::array_value_to_string(b.column(c), r).unwrap())
                .collect();
            out.push(cells.join("|"));
        }
    }
    out.sort();
    out
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..s.len()).find(|i| s.is_char_boundary(*i)).unwrap_or(s.len());
    &s[start..]
}

/// The runner's `due_plan` is meshkit's `due` on a grid of cases (no Spark needed).
#[test]
fn the_runner_plans_the_same_intervals_as_meshkit() {
    let mut cases = Vec::new();
    let dones = [
        (Grain::Day, ""),
        (Grain::Day, "2026-11-20/2026-11-30,2026-12-03"),
        (Grain::Day, "2026-12-01/2026-12-07,9999-12-31"),
        (Grain::Hour, "2026-12-06T20/2026-12-07T02"),
        (Grain::Month, "2026-01/2026-10"),
    ];
    let ats = [
        "2026-12-07T00:00:00Z",
        "2026-12-07T06:00:00Z",
        "2026-12-07T05:59:59+01:00",
        "2027-01-01T00:30",
    ];
    for (grain, done) in dones {
        let set = DoneSet::parse(grain, done);
        let starts: &[Option<&str>] = match grain {
            Grain::Day => &[None, Some("2026-11-25"), Some("2027-02-01")],
            Grain::Hour => &[None, Some("2026-12-06T00")],
            Grain::Month => &[None, Some("2025-06")],
        };
        for start in starts {
            for lag in [0u64, 3600, 86_400 + 1800] {
                for lookback in [0u32, 1, 3] {
                    for at in ats {
                        let t = parse_run_time(at).unwrap();
                        let plan = due(grain, *start, lag, lookback, &set, t);
                        cases.push(json!({
                            "time_range": {"grain": grain.as_str(), "start": start, "lag_seconds": lag, "lookback": lookback},
                            "done": done, "at": at,
                            "due": plan.due.iter().map(|(i, w)| json!([i.label(), match w { Due::Missing => "missing", Due::Lookback => "lookback" }])).collect::<Vec<_>>(),
                            "more_due": plan.more_due,
                            "in_progress": plan.in_progress.label(),
                            "not_complete_done": plan.not_complete_done.iter().map(Interval::label).collect::<Vec<_>>(),
                            "describe": plan.describe(),
                        }));
                    }
                }
            }
        }
    }
    // A backlog longer than one run processes.
    let t = parse_run_time("2026-12-07T06:00").unwrap();
    let plan = due(Grain::Hour, Some("2026-01-01T00"), 0, 2, &DoneSet::default(), t);
    assert!(plan.more_due);
    cases.push(json!({
        "time_range": {"grain": "hour", "start": "2026-01-01T00", "lag_seconds": 0, "lookback": 2},
        "done": "", "at": "2026-12-07T06:00",
        "due": plan.due.iter().map(|(i, _)| json!([i.label(), "missing"])).collect::<Vec<_>>(),
        "more_due": true, "in_progress": plan.in_progress.label(), "not_complete_done": [],
        "describe": plan.describe(),
    }));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("due.json");
    std::fs::write(&path, serde_json::to_vec(&json!({"cases": cases})).unwrap()).unwrap();
    let script = repo_root().join("runtime/glue/catchup_tests.py");
    let out = std::process::Command::new(python())
        .arg(script)
        .arg("--plans")
        .arg(&path)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the runner plans differently:\n{}",
        tail(&report, 6000)
    );
    assert!(report.contains(&format!("{} plans agree", cases.len())), "{report}");
}
