//! The Glue runner on real Iceberg (Spark 3.5 + Iceberg 1.10, what Glue 5.1 runs), against
//! meshkit on DataFusion, over a sequence of runs:
//!
//! - every example job plus a synthetic project that covers what the examples do not (append,
//!   full overwrite, dynamic overwrite for identity/day/month/bucket/truncate specs, merge with
//!   one and with two keys, null keys, `on_duplicate = "error"` failing, `keep_latest`,
//!   `delete_when`, sort order and properties, a column added to the manifest);
//! - three runs: first load, the same run again, new data with updates and deletes (and, in the
//!   third run, a manifest that adds a column);
//! - meshkit runs each job through `JobRun` on its SQLite catalog; the runner runs the same job
//!   through its real entry point (`main`, the job spec JSON, `--param` arguments, checks, logs)
//!   with only the catalog swapped for a local Hadoop catalog and the spec's S3 URIs pointed at
//!   local copies of the same raw files;
//! - after every run: equal table contents and the expected snapshot operations on both sides,
//!   and Spark reads meshkit's table at every snapshot it retains (time travel by id).
//! - daily operation (a `daily` project of its own): incremental raw and Iceberg inputs and a
//!   time-range job, run by both engines with equal rows and state after every run, a failure
//!   before the commit that leaves the bookmark, and the raw bookmark continued across engines
//!   both ways (`daily_meshkit`, `meshkit_continues_runner`, iceberg_tests.py `daily_cases`).
//!
//! One Python process and one Spark session run every step (`runtime/glue/iceberg_tests.py`).
//! Needs `MESH_PYTHON` (pyspark, pyarrow) and `MESH_ICEBERG_JARS` (scripts/iceberg-jars.py);
//! scripts/test.sh sets both. Without them the test fails; it never skips.

use common::python;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use mesh_core::artifacts::job_spec;
use mesh_core::config::{Config, Inputs};
use mesh_core::engine::Engine;
use mesh_core::job::JobRun;
use mesh_core::layout::Layout;
use mesh_core::sample::{generate, SampleOptions};
use mesh_domain::{Domain, Env, Naming};
use serde_json::{json, Value};

mod common;
use common::walk;

const RUNS: usize = 3;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn iceberg_jars() -> String {
    let jars = std::env::var("MESH_ICEBERG_JARS").unwrap_or_else(|_| {
        panic!(
            "MESH_ICEBERG_JARS is not set: run scripts/test.sh, which builds the Spark + Iceberg jars \
             with scripts/iceberg-jars.py and sets it (or export MESH_ICEBERG_JARS=\"$(python3 \
             scripts/iceberg-jars.py ~/.cache/meshkit/iceberg-jars)\")"
        )
    });
    for jar in jars.split(',') {
        assert!(
            Path::new(jar).is_file(),
            "MESH_ICEBERG_JARS names {jar}, which does not exist: re-run scripts/iceberg-jars.py"
        );
    }
    jars
}

fn copy_tree(from: &Path, to: &Path) {
    for f in walk(from) {
        let target = to.join(f.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&f, &target).unwrap();
        // The copy is the same landed file: a new modification time would make it a rewritten
        // file to an incremental job that processed it in an earlier run.
        let modified = std::fs::metadata(&f).unwrap().modified().unwrap();
        std::fs::File::options()
            .write(true)
            .open(&target)
            .unwrap()
            .set_modified(modified)
            .unwrap();
    }
}

/// The synthetic project: one job per case the example jobs do not cover. `evolved` adds the
/// column `score` to `syn_evolve` (a column added to the manifest between runs).
fn synth_project(evolved: bool) -> String {
    let rows_cols = r#"columns = [
  { name = "id", type = "long" },
  { name = "ts", type = "timestamp", nullable = false },
  { name = "d", type = "date", nullable = false },
  { name = "amount", type = "decimal(12,2)" },
  { name = "score", type = "double" },
  { name = "cat", type = "string" },
]"#;
    let mut s = String::from(
        r#"name = "synth"
project_slug = "pj09"
owner = "platform-tests"
classification = "internal"
description = "Synthetic jobs: every write mode and partition transform the examples do not use."

[[tables]]
name = "synth_rows"
layer = "raw"
format = "parquet"
columns = [
  { name = "id", type = "long" },
  { name = "ts", type = "timestamp", nullable = false },
  { name = "d", type = "date", nullable = false },
  { name = "amount", type = "decimal(12,2)" },
  { name = "score", type = "double" },
  { name = "cat", type = "string" },
  { name = "v", type = "int", nullable = false },
]

[[tables]]
name = "synth_changes"
layer = "raw"
format = "parquet"
columns = [
  { name = "id", type = "long" },
  { name = "k2", type = "string" },
  { name = "ts", type = "timestamp", nullable = false },
  { name = "amount", type = "decimal(12,2)" },
  { name = "cat", type = "string" },
  { name = "op", type = "string", nullable = false },
]
"#,
    );
    let tables: [(&str, &str, &str); 10] = [
        (
            "syn_append",
            "",
            "sort_order = [\"ts\", \"id desc\"]\ntarget_file_size_mb = 64",
        ),
        ("syn_overwrite", "partition_by = [\"cat\"]", ""),
        ("syn_ow_identity", "partition_by = [\"cat\"]", ""),
        ("syn_ow_day", "partition_by = [\"day(ts)\"]", ""),
        (
            "syn_ow_month",
            "partition_by = [\"month(d)\"]",
            "sort_order = [\"d desc\"]",
        ),
        ("syn_ow_bucket", "partition_by = [\"bucket(4, id)\"]", ""),
        ("syn_ow_truncate", "partition_by = [\"truncate(1, cat)\"]", ""),
        ("syn_merge_one", "", "sort_order = [\"id\"]"),
        ("syn_merge_dup", "", ""),
        ("syn_widen_bad", "", ""),
    ];
    for (name, part, extra) in tables {
        s.push_str(&format!(
            "\n[[tables]]\nname = \"{name}\"\nlayer = \"curated\"\n{part}\n{extra}\n{rows_cols}\n"
        ));
        if name == "syn_append" {
            // The settings the runner's maintenance mode must apply.
            s.push_str(
                "[tables.optimizers]\ncompaction = { min_input_files = 2 }\nretention = { snapshot_retention_days = 1, retain_last = 2 }\norphans = { retention_days = 1 }\n",
            );
        }
    }
    s.push_str(
        r#"
[[tables]]
name = "syn_merge_multi"
layer = "curated"
partition_by = ["bucket(4, id)"]
target_file_size_mb = 128
columns = [
  { name = "id", type = "long" },
  { name = "k2", type = "string" },
  { name = "ts", type = "timestamp", nullable = false },
  { name = "amount", type = "decimal(12,2)" },
  { name = "cat", type = "string" },
]

# Written by the test through the engine only (maintenance states), never by a job.
[[tables]]
name = "syn_maint"
layer = "curated"
partition_by = ["day(ts)"]
sort_order = ["id"]
columns = [
  { name = "id", type = "long" },
  { name = "ts", type = "timestamp", nullable = false },
  { name = "amount", type = "decimal(12,2)" },
  { name = "cat", type = "string" },
]

[[tables]]
name = "syn_expire"
layer = "curated"
partition_by = ["month(ts)"]
columns = [
  { name = "id", type = "long" },
  { name = "ts", type = "timestamp", nullable = false },
  { name = "amount", type = "decimal(12,2)" },
  { name = "cat", type = "string" },
]

[[tables]]
name = "syn_narrow"
layer = "curated"
columns = [
  { name = "id", type = "int" },
  { name = "ts", type = "timestamp", nullable = false },
  { name = "amount", type = "decimal(14,2)" },
]

[[tables]]
name = "syn_evolve"
layer = "curated"
partition_by = ["month(ts)"]
columns = [
  { name = "id", type = "long" },
  { name = "ts", type = "timestamp", nullable = false },
  { name = "amount", type = "decimal(12,2)" },
"#,
    );
    if evolved {
        s.push_str("  { name = \"score\", type = \"double\" },\n");
    }
    s.push_str("]\n");
    let jobs: [(&str, &str, &str); 12] = [
        ("syn_append", "append", "params = { min_v = \"0\" }"),
        ("syn_overwrite", "overwrite", ""),
        ("syn_ow_identity", "overwrite_partitions", ""),
        ("syn_ow_day", "overwrite_partitions", ""),
        ("syn_ow_month", "overwrite_partitions", ""),
        ("syn_ow_bucket", "overwrite_partitions", ""),
        ("syn_ow_truncate", "overwrite_partitions", ""),
        ("syn_merge_one", "merge", "merge = { keys = [\"id\"], on_duplicate = \"error\" }"),
        ("syn_merge_dup", "merge", "merge = { keys = [\"id\"], on_duplicate = \"error\" }"),
        ("syn_narrow", "overwrite", ""),
        ("syn_widen_bad", "append", ""),
        (
            "syn_merge_multi",
            "merge",
            "merge = { keys = [\"id\", \"k2\"], on_duplicate = \"keep_latest\", order_by = \"ts\", delete_when = \"op = 'D'\" }",
        ),
    ];
    for (name, mode, extra) in jobs {
        let input = if name == "syn_merge_multi" || name == "syn_merge_dup" {
            "synth_changes"
        } else {
            "synth_rows"
        };
        s.push_str(&format!(
            "\n[[jobs]]\nname = \"{name}\"\nsql = \"sql/{name}.sql\"\ninputs = [\"raw.{input}\"]\noutput = \"curated.{name}\"\nmode = \"{mode}\"\n{extra}\nchecks = [{{ type = \"not_null\", columns = [\"ts\"] }}, {{ type = \"row_count_min\", min = 1 }}]\n"
        ));
    }
    s.push_str(
        "\n[[jobs]]\nname = \"syn_evolve\"\nsql = \"sql/syn_evolve.sql\"\ninputs = [\"raw.synth_rows\"]\noutput = \"curated.syn_evolve\"\nmode = \"append\"\n",
    );
    s
}

fn synth_sql(job: &str, evolved: bool) -> String {
    match job {
        "syn_append" => "SELECT id, ts, d, amount, score, cat FROM f01_raw.synth_rows WHERE v >= ${min_v}\n".into(),
        // bigint into int (values fit) and decimal(12,2) into decimal(14,2): both engines write.
        "syn_narrow" => "SELECT id * 1000 AS id, ts, amount FROM f01_raw.synth_rows\n".into(),
        // decimal(12,2) * 2 is wider than the column: both engines refuse rather than cast.
        "syn_widen_bad" => "SELECT id, ts, d, amount * 2 AS amount, score, cat FROM f01_raw.synth_rows\n".into(),
        "syn_merge_multi" => "SELECT id, k2, ts, amount, upper(cat) AS cat, op FROM f01_raw.synth_changes\n".into(),
        "syn_merge_dup" => "SELECT id, ts, CAST(ts AS DATE) AS d, amount, CAST(NULL AS DOUBLE) AS score, cat FROM f01_raw.synth_changes\n".into(),
        // The manifest adds `score` between runs and the SQL with it (a result names exactly the
        // declared columns on both engines).
        "syn_evolve" if !evolved => "SELECT id, ts, CAST(amount * 2 AS DECIMAL(12, 2)) AS amount FROM f01_raw.synth_rows\n".into(),
        "syn_evolve" => "SELECT id, ts, CAST(amount * 2 AS DECIMAL(12, 2)) AS amount, score FROM f01_raw.synth_rows\n".into(),
        _ => "SELECT id, ts, d, amount, score, cat FROM f01_raw.synth_rows\n".into(),
    }
}

fn write_domain(root: &Path, evolved: bool) {
    let dir = root.join("projects/synth");
    std::fs::create_dir_all(dir.join("sql")).unwrap();
    std::fs::write(dir.join("project.toml"), synth_project(evolved)).unwrap();
    for j in [
        "syn_append",
        "syn_overwrite",
        "syn_ow_identity",
        "syn_ow_day",
        "syn_ow_month",
        "syn_ow_bucket",
        "syn_ow_truncate",
        "syn_merge_one",
        "syn_merge_dup",
        "syn_merge_multi",
        "syn_narrow",
        "syn_widen_bad",
        "syn_evolve",
    ] {
        std::fs::write(dir.join(format!("sql/{j}.sql")), synth_sql(j, evolved)).unwrap();
    }
}

fn ts(day: u32, micros: i64) -> i64 {
    let base: NaiveDateTime = NaiveDate::from_ymd_opt(2026, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .checked_add_days(chrono::Days::new(day as u64))
        .unwrap();
    base.and_utc().timestamp_micros() + micros
}

fn micros_field(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Microsecond, None), nullable)
}

/// `synth_rows` of one run: runs 1 and 2 are the same 48 rows over two months (one NULL id,
/// some NULL categories); run 3 has new amounts for ids 30-69 in categories `aa`/`ab` only, so
/// dynamic overwrites replace some partitions and keep the others.
fn synth_rows(run: usize) -> RecordBatch {
    let idx: Vec<i64> = if run < 3 {
        (0..48).collect()
    } else {
        (30..70).filter(|i| i % 4 < 2).chain([47]).collect()
    };
    let cats = ["aa", "ab", "ba", "bb"];
    let id: Vec<Option<i64>> = idx.iter().map(|&i| (i != 47).then_some(i)).collect();
    let t: Vec<i64> = idx
        .iter()
        .map(|&i| ts((i * 31 / 24) as u32 + if run == 3 { 3 } else { 0 }, i * 1_234_567 + 7))
        .collect();
    let d: Vec<i32> = t.iter().map(|us| us.div_euclid(86_400_000_000) as i32).collect();
    let amount: Vec<Option<i128>> = idx
        .iter()
        .map(|&i| (i % 11 != 3).then_some(((i * if run == 3 { 71 } else { 137 }) % 100_000) as i128 - 50))
        .collect();
    let score: Vec<Option<f64>> = idx.iter().map(|&i| (i % 7 != 2).then_some(i as f64 / 3.0)).collect();
    let cat: Vec<Option<&str>> = idx
        .iter()
        .map(|&i| (i % 13 != 5).then_some(cats[(i % 4) as usize]))
        .collect();
    let v: Vec<i32> = idx.iter().map(|&i| (i % 10) as i32).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        micros_field("ts", false),
        Field::new("d", DataType::Date32, false),
        Field::new("amount", DataType::Decimal128(12, 2), true),
        Field::new("score", DataType::Float64, true),
        Field::new("cat", DataType::Utf8, true),
        Field::new("v", DataType::Int32, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(id)),
        Arc::new(TimestampMicrosecondArray::from(t)),
        Arc::new(Date32Array::from(d)),
        Arc::new(Decimal128Array::from(amount).with_precision_and_scale(12, 2).unwrap()),
        Arc::new(Float64Array::from(score)),
        Arc::new(StringArray::from(cat)),
        Arc::new(Int32Array::from(v)),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

/// `synth_changes` of one run: change events keyed by (id, k2) with NULLs in either key, two or
/// three events per key (distinct timestamps: no ties for keep_latest), some deletes. Run 3
/// updates ids 0-9, deletes 10-14, inserts 20-24 and updates the (NULL, x) key.
fn synth_changes(run: usize) -> RecordBatch {
    type Row<'a> = (
        Option<i64>,
        Option<&'a str>,
        i64,
        Option<i128>,
        Option<&'a str>,
        &'a str,
    );
    let mut rows: Vec<Row> = Vec::new();
    let k2 = |i: i64| -> Option<&'static str> {
        match i % 5 {
            0 => None,
            1 | 2 => Some("x"),
            _ => Some("y"),
        }
    };
    if run < 3 {
        for i in 0..20i64 {
            rows.push((Some(i), k2(i), ts(1, i), Some(100 * i as i128), Some("aa"), "I"));
            rows.push((Some(i), k2(i), ts(2, i), Some(100 * i as i128 + 1), Some("bb"), "U"));
            if i % 6 == 4 {
                // Latest event is a delete of a key never inserted: nothing to insert.
                rows.push((Some(i), k2(i), ts(3, i), None, None, "D"));
            }
        }
        rows.push((None, Some("x"), ts(1, 0), Some(5), Some("ab"), "I"));
        rows.push((None, Some("x"), ts(1, 9), Some(6), Some("ba"), "U"));
        rows.push((None, None, ts(1, 3), Some(7), None, "I"));
        rows.push((Some(99), Some("y"), ts(1, 3), Some(8), Some("aa"), "I"));
    } else {
        for i in 0..10i64 {
            rows.push((Some(i), k2(i), ts(10, i), Some(7 * i as i128), Some("ab"), "U"));
        }
        for i in 10..15i64 {
            rows.push((Some(i), k2(i), ts(11, i), Some(1), Some("ab"), "U"));
            rows.push((Some(i), k2(i), ts(12, i), None, None, "D"));
        }
        for i in 20..25i64 {
            rows.push((Some(i), k2(i), ts(13, i), Some(i as i128), Some("bb"), "I"));
        }
        rows.push((None, Some("x"), ts(14, 0), Some(55), Some("aa"), "U"));
        rows.push((None, None, ts(14, 1), None, None, "D"));
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("k2", DataType::Utf8, true),
        micros_field("ts", false),
        Field::new("amount", DataType::Decimal128(12, 2), true),
        Field::new("cat", DataType::Utf8, true),
        Field::new("op", DataType::Utf8, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
        Arc::new(TimestampMicrosecondArray::from(
            rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        )),
        Arc::new(
            Decimal128Array::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())
                .with_precision_and_scale(12, 2)
                .unwrap(),
        ),
        Arc::new(StringArray::from(rows.iter().map(|r| r.4).collect::<Vec<_>>())),
        Arc::new(StringArray::from(rows.iter().map(|r| r.5).collect::<Vec<_>>())),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

fn write_parquet(path: &Path, schema: SchemaRef, batches: &[RecordBatch]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    for b in batches {
        w.write(b).unwrap();
    }
    w.close().unwrap();
}

struct Lake {
    root: PathBuf,
    domain: Arc<Domain>,
    engine: Arc<Engine>,
    layout: Layout,
}

async fn open(root: &Path) -> Lake {
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
    Lake {
        root: root.to_path_buf(),
        domain,
        engine,
        layout,
    }
}

/// Every job in pipeline order (a job after the jobs whose output it reads).
fn jobs_in_order(domain: &Domain) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut all: Vec<_> = domain
        .projects
        .iter()
        .flat_map(|p| p.jobs.iter().map(move |j| (p, j)))
        .collect();
    while !all.is_empty() {
        let before = all.len();
        all.retain(|(p, j)| {
            let ready = j.inputs.iter().all(|r| {
                let producers: Vec<_> = p.jobs.iter().filter(|o| &o.output == r).collect();
                producers
                    .iter()
                    .all(|o| out.contains(&(p.name.to_string(), o.name.to_string())))
            });
            if ready {
                out.push((p.name.to_string(), j.name.to_string()));
            }
            !ready
        });
        assert!(all.len() < before, "job inputs form a cycle");
    }
    out
}

fn sample(run: usize) -> SampleOptions {
    SampleOptions {
        rows: 3_000,
        seed: if run < 3 { 7 } else { 8 },
        start: NaiveDate::from_ymd_opt(2026, 10, if run < 3 { 1 } else { 20 }).unwrap(),
        days: 30,
        // Run 3 lands a different sample: new files, as a landing process would.
        part: if run < 3 { 0 } else { 1 },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_on_spark_iceberg_equals_meshkit_over_runs() {
    let jars = iceberg_jars();
    let py = python();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().to_path_buf();
    let root = work.join("domain");
    std::fs::create_dir_all(&root).unwrap();
    let repo = repo_root();
    std::fs::copy(repo.join("domain.json"), root.join("domain.json")).unwrap();
    copy_tree(&repo.join("projects"), &root.join("projects"));
    write_domain(&root, false);

    let mut steps = Vec::new();
    let mut snapshot_rows: BTreeMap<String, BTreeMap<i64, String>> = BTreeMap::new();
    for run in 1..=RUNS {
        // Run 3: new data, and the manifest adds a column to syn_evolve.
        write_domain(&root, run == 3);
        let lake = open(&root).await;
        generate(&lake.domain, &lake.layout, &sample(run)).unwrap();
        let synth = lake.domain.project("synth").unwrap();
        for (name, batch) in [("synth_rows", synth_rows(run)), ("synth_changes", synth_changes(run))] {
            let t = synth.tables.iter().find(|t| t.name.as_str() == name).unwrap();
            let folder = lake.layout.path(&lake.layout.table_location(synth, t)).unwrap();
            let _ = std::fs::remove_dir_all(&folder);
            write_parquet(&folder.join("part-00000.parquet"), batch.schema(), &[batch]);
        }
        // The raw files of this run, kept for the runner's turn.
        let raw_copy = work.join(format!("raw/run{run}"));
        for (project, job) in jobs_in_order(&lake.domain) {
            let p = lake.domain.project(&project).unwrap();
            let j = p.job(&job).unwrap();
            let mut spec = serde_json::to_value(job_spec(&lake.domain, Env::Dev, p, j)).unwrap();
            for (i, r) in j.inputs.iter().enumerate() {
                let t = p.table(r).unwrap();
                if t.layer != mesh_domain::Layer::Raw {
                    continue;
                }
                let folder = lake.layout.path(&lake.layout.table_location(p, t)).unwrap();
                let copy = raw_copy.join(t.name.as_str());
                if !copy.exists() {
                    copy_tree(&folder, &copy);
                }
                spec["inputs"][i]["location"] = json!(format!("file://{}/", copy.display()));
                if spec["inputs"][i]["rejected_location"].is_string() {
                    let rejected = work.join(format!("rejected/run{run}/{}", t.name));
                    spec["inputs"][i]["rejected_location"] = json!(format!("file://{}/", rejected.display()));
                }
            }
            let sql_copy = work.join(format!("sql/run{run}/{job}.sql"));
            std::fs::create_dir_all(sql_copy.parent().unwrap()).unwrap();
            std::fs::copy(lake.root.join(&j.sql), &sql_copy).unwrap();
            spec["sql"]["uri"] = json!(format!("file://{}", sql_copy.display()));
            let spec_file = work.join(format!("specs/run{run}/{job}.json"));
            std::fs::create_dir_all(spec_file.parent().unwrap()).unwrap();
            std::fs::write(&spec_file, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();

            // The run's parameters, passed to both engines.
            let mut params: BTreeMap<String, String> = BTreeMap::new();
            if job == "syn_append" && run == 3 {
                params.insert("min_v".into(), "3".into());
            }
            let run_id = format!("{job}-run{run}");
            let mut all_params = j.params.clone();
            all_params.extend(params.clone());
            let outcome = JobRun {
                engine: &lake.engine,
                project: p,
                job: j,
                params: &all_params,
                run_id: &run_id,
                at: chrono::Utc::now().naive_utc(),
            }
            .run()
            .await;
            let error = outcome.as_ref().err().map(|e| e.to_string());
            eprintln!("meshkit run {run} {job}: {}", error.as_deref().unwrap_or("committed"));
            // The jobs that must fail, on both engines, and why; every other job commits.
            let expect_error = match job.as_str() {
                "syn_merge_dup" => Some("several rows with key"),
                "syn_widen_bad" => Some("cannot be written to"),
                _ => None,
            };
            match (&error, expect_error) {
                (None, None) => {}
                (Some(e), Some(want)) => assert!(e.contains(want), "meshkit's {job} failed for another reason: {e}"),
                (e, want) => panic!("meshkit run {run} {job}: expected failure {want:?}, got {e:?}"),
            }
            let operation = outcome.as_ref().ok().and_then(|r| r.operation.clone());

            // The table after the run: rows now and at every snapshot it retains.
            let out_table = p.table(&j.output).unwrap();
            let rows_file = work.join(format!("expected/run{run}/{job}.parquet"));
            let (metadata, snapshots) = match lake.engine.load_table(p, out_table).await.ok() {
                Some(t) => export(&t, &work, &job, &rows_file, &mut snapshot_rows).await,
                None => {
                    write_parquet(&rows_file, mesh_core::translate::arrow_schema(out_table), &[]);
                    (Value::Null, Vec::new())
                }
            };
            let mut args = vec!["--JOB_RUN_ID".to_string(), run_id.clone()];
            for (k, v) in &params {
                args.push(format!("--{k}"));
                args.push(v.clone());
            }
            steps.push(json!({
                "job": job,
                "run": run,
                "spec": spec_file,
                "args": args,
                "meshkit_error": error,
                "expect_error": expect_error,
                "meshkit_operation": operation,
                "rows": rows_file,
                "metadata": metadata,
                "snapshots": snapshots,
            }));
        }
    }
    let jobs: usize = steps.len() / RUNS;
    let states = maintenance_states(&root, &work, &mut snapshot_rows).await;
    let maintenance = maintenance_spec(&root, &work).await;
    let daily = daily_meshkit(&repo, &work).await;
    let spark_tables = ["cow_merge", "mor_merge", "spec_evolution", "compacted"];
    let manifest = work.join("manifest.json");
    std::fs::write(
        &manifest,
        serde_json::to_vec_pretty(&json!({
            "workdir": work,
            "jars": jars,
            "steps": steps,
            "meshkit_states": states,
            "maintenance": maintenance,
            "spark_tables": spark_tables,
            "daily": daily,
        }))
        .unwrap(),
    )
    .unwrap();
    let out = Command::new(&py)
        .current_dir(repo.join("runtime/glue"))
        .args(["iceberg_tests.py", manifest.to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| panic!("cannot start MESH_PYTHON={py}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    // Spark's own figures (session start, whole run) for the CI time budget.
    for line in stderr.lines().filter(|l| l.starts_with("{\"event\"")) {
        eprintln!("{line}");
    }
    assert!(
        out.status.success(),
        "{stdout}\n--- stderr (tail)\n{}",
        tail(&stderr, 80)
    );
    // Every job × run was compared, each on both engines and through Spark reading meshkit's table.
    let compared = stdout.lines().filter(|l| l.starts_with("ok   run ")).count();
    assert_eq!(compared, jobs * RUNS, "{stdout}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    assert!(stdout.contains("ok   maintenance mode"), "{stdout}");
    let read = stdout
        .lines()
        .filter(|l| l.starts_with("ok   interop spark reads meshkit "))
        .count();
    assert_eq!(
        read,
        steps.iter().filter(|s| !s["metadata"].is_null()).count() + states.len(),
        "{stdout}"
    );

    // The runner's daily cases: incremental raw append, failure before the commit, bookmark
    // continued from meshkit's table, incremental Iceberg inputs, time-range job, a one-day
    // re-run rewriting only that day's files.
    let daily_ok = stdout.lines().filter(|l| l.starts_with("ok   daily ")).count();
    assert_eq!(daily_ok, DAILY_CASES, "{stdout}");

    meshkit_reads_spark_tables(&work, &spark_tables).await;
    meshkit_continues_runner(&repo, &work, &daily).await;
}

/// The `daily …` cases iceberg_tests.py reports.
const DAILY_CASES: usize = 5;

/// Writes the table's current rows to `rows_file` and every snapshot it retains (once per id)
/// beside it; returns the metadata location and the snapshots (id, operation, rows file).
async fn export(
    t: &mesh_iceberg::Table,
    work: &Path,
    name: &str,
    rows_file: &Path,
    known: &mut BTreeMap<String, BTreeMap<i64, String>>,
) -> (Value, Vec<Value>) {
    let scan = t.scan(&Default::default()).await.unwrap();
    write_parquet(rows_file, scan.schema.clone(), &scan.batches);
    let known = known.entry(name.to_string()).or_default();
    let mut snaps: Vec<_> = t.metadata().snapshots().collect();
    snaps.sort_by_key(|s| s.sequence_number());
    let mut out = Vec::new();
    for s in snaps {
        let id = s.snapshot_id();
        // The scan is async, so the entry API cannot hold the slot across it.
        #[allow(clippy::map_entry)]
        if !known.contains_key(&id) {
            let at = t
                .scan(&mesh_iceberg::ScanOptions {
                    snapshot_id: Some(id),
                    ..Default::default()
                })
                .await
                .unwrap();
            let f = work.join(format!("expected/snapshots/{name}/{id}.parquet"));
            write_parquet(&f, at.schema.clone(), &at.batches);
            known.insert(id, f.display().to_string());
        }
        out.push(json!({
            "id": id,
            "operation": format!("{:?}", s.summary().operation).to_lowercase(),
            "rows": known[&id],
        }));
    }
    (json!(t.metadata_location()), out)
}

/// The runner's maintenance spec of `syn_append` (a pipeline `optimize` step on AWS): its table
/// and the manifest's optimizer settings, for the runner's table after the third run.
async fn maintenance_spec(root: &Path, work: &Path) -> Value {
    let lake = open(root).await;
    let synth = lake.domain.project("synth").unwrap();
    let table = synth.tables.iter().find(|t| t.name.as_str() == "syn_append").unwrap();
    let job: Value =
        serde_json::from_slice(&std::fs::read(work.join(format!("specs/run{RUNS}/syn_append.json"))).unwrap()).unwrap();
    let out = &job["output"];
    let spec = json!({
        "spec_version": 1,
        "kind": "maintenance",
        "domain": job["domain"],
        "env": job["env"],
        "project": job["project"],
        "job": "optimize_syn_append",
        "glue_job": "f01-pj09-optimize-syn-append-dev",
        "iceberg": job["iceberg"],
        "table": {
            "reference": out["reference"],
            "database": out["database"],
            "table": out["table"],
            "sort_order": out["sort_order"],
        },
        "optimizers": serde_json::to_value(&table.iceberg().unwrap().optimizers).unwrap(),
    });
    let file = work.join("specs/maintenance/syn_append.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    json!({"spec": file, "rows": work.join(format!("expected/run{RUNS}/syn_append.parquet"))})
}

/// Table states only maintenance and deletes make, on a table of their own (expiry deletes
/// files the earlier states of the job tables still need): a copy-on-write delete, a
/// compaction, a snapshot expiry, an orphan cleanup. Spark must read
/// each state, and every snapshot the state retains, with meshkit's rows.
async fn maintenance_states(
    root: &Path,
    work: &Path,
    known: &mut BTreeMap<String, BTreeMap<i64, String>>,
) -> Vec<Value> {
    use mesh_iceberg::maintenance::{
        CompactionOptions, CompactionPlan, ExpireOptions, ExpiryPlan, OrphanOptions, OrphanPlan,
    };
    let lake = open(root).await;
    let synth = lake.domain.project("synth").unwrap();
    let table = |name: &str| synth.tables.iter().find(|t| t.name.as_str() == name).unwrap();
    let mut states = Vec::new();
    let mut push = |name: String, state: (Value, Vec<Value>), rows: &Path| {
        states.push(json!({"name": name, "metadata": state.0, "snapshots": state.1, "rows": rows}));
    };

    // Four appends, each of every row of one run's synth_rows: small files in several partitions.
    // `syn_maint` gets a delete and a compaction; `syn_expire` the same history, then an expiry
    // and an orphan cleanup (its expiry deletes files the other table's states still show).
    let mut tables = Vec::new();
    for name in ["syn_maint", "syn_expire"] {
        let mut t = lake.engine.load_or_create(synth, table(name)).await.unwrap();
        for run in [1, 3, 1, 3] {
            let rows = synth_rows(run);
            let cols = ["id", "ts", "amount", "cat"].map(|c| rows.schema().index_of(c).unwrap());
            t.append(&[rows.project(&cols).unwrap()], Default::default())
                .await
                .unwrap();
        }
        tables.push(t);
    }
    let expiring = tables.pop().unwrap();
    let mut t = tables.pop().unwrap();
    let before = t.current_snapshot_id();
    t.delete_where("amount < 100").await.unwrap();
    assert_ne!(t.current_snapshot_id(), before, "the delete matched rows");
    let rows = work.join("expected/states/delete.parquet");
    push(
        "delete".into(),
        export(&t, work, "syn_maint", &rows, known).await,
        &rows,
    );

    let plan = CompactionPlan::build(&t, &CompactionOptions::new(512 << 20, 0.75, 2))
        .await
        .unwrap();
    assert!(plan.files_to_rewrite() >= 2, "syn_maint has small files to compact");
    plan.execute(&mut t).await.unwrap();
    let rows = work.join("expected/states/compaction.parquet");
    push(
        "compaction".into(),
        export(&t, work, "syn_maint", &rows, known).await,
        &rows,
    );

    // Every snapshot is older than "now + 1 s"; the last two are kept, the others' files deleted.
    let mut t = expiring;
    t.delete_where("amount < 100").await.unwrap();
    let mut expire = ExpireOptions::new(std::time::Duration::ZERO, 2, true);
    expire.older_than_ms += 1_000;
    let plan = ExpiryPlan::build(&t, &expire).await.unwrap();
    assert!(!plan.is_empty(), "syn_expire has snapshots to expire");
    plan.execute(&mut t).await.unwrap();
    assert_eq!(t.metadata().snapshots().count(), 2);
    let rows = work.join("expected/states/expiry.parquet");
    push(
        "expiry".into(),
        export(&t, work, "syn_expire", &rows, known).await,
        &rows,
    );

    // A killed writer's debris in the data folder; the cleanup deletes it and nothing else.
    let location = t.metadata().location().trim_start_matches("file://").to_string();
    let debris = Path::new(&location).join("data/debris-of-a-killed-writer.parquet");
    std::fs::write(&debris, b"not a parquet file").unwrap();
    let mut orphans = OrphanOptions::new(std::time::Duration::ZERO);
    orphans.force = true;
    let lister = lake.engine.lister();
    let plan = OrphanPlan::build(&t, lister.as_ref(), &orphans).await.unwrap();
    plan.execute(&mut t, lister.as_ref()).await.unwrap();
    assert!(!debris.exists(), "the orphan cleanup removed the debris");
    let rows = work.join("expected/states/orphans.parquet");
    push(
        "orphan cleanup".into(),
        export(&t, work, "syn_expire", &rows, known).await,
        &rows,
    );
    states
}

/// meshkit reads the tables Spark wrote (iceberg_tests.py, `spark_tables`): the same rows as
/// Spark's own read, or an error that names the feature it cannot read and the table.
async fn meshkit_reads_spark_tables(work: &Path, names: &[&str]) {
    let catalog = Arc::new(
        mesh_iceberg::SqliteCatalog::open(
            "spark",
            work.join("spark-tables.db"),
            work.join("warehouse").display().to_string(),
        )
        .await
        .unwrap(),
    );
    for name in names {
        let meta_dir = work.join(format!("warehouse/f01_interop/{name}/metadata"));
        let hint = std::fs::read_to_string(meta_dir.join("version-hint.text")).unwrap();
        let location = meta_dir.join(format!("v{}.metadata.json", hint.trim()));
        let ident = mesh_iceberg::TableIdent::new("f01_interop", *name);
        mesh_iceberg::Catalog::register_table(catalog.as_ref(), &ident, &location.display().to_string())
            .await
            .unwrap();
        let table = mesh_iceberg::Table::load(catalog.clone(), ident).await.unwrap();
        let scan = table.scan(&Default::default()).await;
        if *name == "mor_merge" {
            // meshkit does not apply row-level deletes: it must refuse, naming what and where.
            let e = scan.expect_err("meshkit must not read a merge-on-read table as if it had no deletes");
            let msg = e.to_string();
            assert!(
                msg.contains("f01_interop.mor_merge") && msg.contains("merge-on-read"),
                "{msg}"
            );
            continue;
        }
        let scan = scan.unwrap_or_else(|e| panic!("meshkit cannot read Spark's {name}: {e}"));
        let spark_rows = read_parquet_dir(&work.join(format!("spark_rows/{name}")));
        assert_eq!(
            sorted_rows(&scan.batches),
            sorted_rows(&spark_rows),
            "meshkit's read of Spark's {name} differs from Spark's"
        );
        assert!(!spark_rows.iter().all(|b| b.num_rows() == 0), "{name} has rows");
    }
}

fn read_parquet_dir(dir: &Path) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for f in walk(dir) {
        if f.extension().is_some_and(|e| e == "parquet") {
            let file = std::fs::File::open(&f).unwrap();
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap();
            out.extend(reader.map(|b| b.unwrap()));
        }
    }
    out
}

/// Rows as text, sorted: order-insensitive equality with exact values (decimals, timestamps).
fn sorted_rows(batches: &[RecordBatch]) -> Vec<String> {
    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    let opts = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for b in batches {
        let mut names: Vec<(String, usize)> = b
            .schema()
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name().clone(), i))
            .collect();
        names.sort();
        let fmts: Vec<_> = names
            .iter()
            .map(|(_, i)| ArrayFormatter::try_new(b.column(*i).as_ref(), &opts).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            let cells: Vec<String> = names
                .iter()
                .zip(&fmts)
                .map(|((n, _), f)| format!("{n}={}", f.value(r)))
                .collect();
            rows.push(cells.join(", "));
        }
    }
    rows.sort();
    rows
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Daily operation on both engines: an incremental raw append, incremental Iceberg inputs (error
// and full read on a rewrite), a daily time-range job into a month-partitioned table, and the
// raw bookmark continued across engines both ways. meshkit runs here first; the runner runs the
// same sequence in iceberg_tests.py (`daily`); after it, meshkit continues the runner's table.

const DAILY_PROJECT: &str = r#"name = "daily"
project_slug = "pj08"
owner = "platform-tests"
classification = "internal"
description = "Incremental and time-range jobs, run by both engines."

[[tables]]
name = "inc_events"
layer = "raw"
format = "csv"
partition_by = ["d"]
columns = [
  { name = "id", type = "long" },
  { name = "amount", type = "decimal(12,2)" },
  { name = "cat", type = "string" },
  { name = "d", type = "date" },
]
[tables.csv]
header = true
delimiter = ","

[[tables]]
name = "inc_append"
layer = "curated"
columns = [
  { name = "id", type = "long" },
  { name = "amount", type = "decimal(12,2)" },
  { name = "cat", type = "string" },
  { name = "d", type = "date" },
]

[[tables]]
name = "inc_src"
layer = "curated"
columns = [
  { name = "id", type = "long" },
  { name = "amount", type = "decimal(12,2)" },
  { name = "cat", type = "string" },
  { name = "d", type = "date" },
]

[[tables]]
name = "inc_ice"
layer = "curated"
columns = [
  { name = "id", type = "long" },
  { name = "amount", type = "decimal(12,2)" },
  { name = "cat", type = "string" },
  { name = "d", type = "date" },
]

[[tables]]
name = "inc_ice_full"
layer = "curated"
columns = [
  { name = "id", type = "long" },
  { name = "amount", type = "decimal(12,2)" },
  { name = "cat", type = "string" },
  { name = "d", type = "date" },
]

[[tables]]
name = "tr_daily"
layer = "curated"
partition_by = ["month(d)"]
columns = [
  { name = "d", type = "date" },
  { name = "cat", type = "string" },
  { name = "amount", type = "decimal(14,2)" },
  { name = "n", type = "long" },
]

[[jobs]]
name = "inc_append"
sql = "sql/inc_append.sql"
inputs = ["raw.inc_events"]
output = "curated.inc_append"
mode = "append"
checks = [{ type = "not_null", columns = ["id"] }]
[jobs.incremental]
inputs = ["raw.inc_events"]

[[jobs]]
name = "inc_ice"
sql = "sql/inc_ice.sql"
inputs = ["curated.inc_src"]
output = "curated.inc_ice"
mode = "append"
[jobs.incremental]
inputs = ["curated.inc_src"]

[[jobs]]
name = "inc_ice_full"
sql = "sql/inc_ice_full.sql"
inputs = ["curated.inc_src"]
output = "curated.inc_ice_full"
mode = "append"
[jobs.incremental]
inputs = ["curated.inc_src"]
on_rewrite = "full_read"

[[jobs]]
name = "tr_daily"
sql = "sql/tr_daily.sql"
inputs = ["raw.inc_events"]
output = "curated.tr_daily"
mode = "overwrite"
[jobs.time_range]
column = "d"
grain = "day"
"#;

const DAILY_JOBS: [&str; 4] = ["inc_append", "inc_ice", "inc_ice_full", "tr_daily"];

fn daily_sql(job: &str) -> &'static str {
    match job {
        "inc_append" => "SELECT id, amount, upper(cat) AS cat, d FROM f01_raw.inc_events\n",
        "inc_ice" | "inc_ice_full" => "SELECT id, amount, cat, d FROM f01_curated.inc_src\n",
        _ => "SELECT d, cat, CAST(SUM(amount) AS DECIMAL(14, 2)) AS amount, COUNT(*) AS n\nFROM f01_raw.inc_events\nWHERE d >= CAST('${interval_start}' AS DATE) AND d < CAST('${interval_end}' AS DATE)\nGROUP BY d, cat\n",
    }
}

fn write_daily_domain(repo: &Path, root: &Path) {
    let dir = root.join("projects/daily");
    std::fs::create_dir_all(dir.join("sql")).unwrap();
    std::fs::copy(repo.join("domain.json"), root.join("domain.json")).unwrap();
    std::fs::write(dir.join("project.toml"), DAILY_PROJECT).unwrap();
    for j in DAILY_JOBS {
        std::fs::write(dir.join(format!("sql/{j}.sql")), daily_sql(j)).unwrap();
    }
}

/// 2026-01-01T00:00:00Z: the raw files' modification times are set from it, so every copy of a
/// state has the same bookmark identity (path, size, time) on both engines.
const DAILY_T0_MS: i64 = 1_767_225_600_000;

/// The files of `raw.inc_events` in state 1 (first landing), 2 (two more files, one in a new
/// day, and a marker file that is not data) and 4 (state 2 with one file rewritten in place).
fn daily_raw_files(state: usize) -> Vec<(&'static str, String, i64)> {
    let minute = 60_000;
    let mut files = vec![
        (
            "d=2026-01-30/part-1.csv",
            "id,amount,cat\n1,10.50,a\n2,-3.25,b\n3,,a\n4,7.00,\n".to_string(),
            0,
        ),
        (
            "d=2026-01-31/part-1.csv",
            "id,amount,cat\n5,1.00,a\n6,2.00,b\n7,3.00,b\n".to_string(),
            minute,
        ),
    ];
    if state >= 2 {
        let part2 = if state == 4 {
            "id,amount,cat\n8,80.80,a\n13,13.13,c\n"
        } else {
            "id,amount,cat\n8,8.00,a\n9,9.99,b\n"
        };
        files.push((
            "d=2026-01-31/part-2.csv",
            part2.to_string(),
            if state == 4 { 4 * minute } else { 2 * minute },
        ));
        files.push((
            "d=2026-02-01/part-1.csv",
            "id,amount,cat\n10,0.01,a\n11,100.00,c\n12,5.50,a\n".to_string(),
            3 * minute,
        ));
        files.push(("_SUCCESS", String::new(), 3 * minute));
    }
    files
}

fn stage_raw(folder: &Path, state: usize) {
    let _ = std::fs::remove_dir_all(folder);
    for (rel, text, offset) in daily_raw_files(state) {
        let path = folder.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis((DAILY_T0_MS + offset) as u64);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(at)
            .unwrap();
    }
}

/// Rows appended to `curated.inc_src` by the test (ids `ids`).
fn daily_src_batch(ids: std::ops::Range<i64>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("amount", DataType::Decimal128(12, 2), true),
        Field::new("cat", DataType::Utf8, true),
        Field::new("d", DataType::Date32, true),
    ]));
    let id: Vec<i64> = ids.collect();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(id.clone())),
        Arc::new(
            Decimal128Array::from(
                id.iter()
                    .map(|i| (i % 4 != 3).then_some(*i as i128 * 101))
                    .collect::<Vec<_>>(),
            )
            .with_precision_and_scale(12, 2)
            .unwrap(),
        ),
        Arc::new(StringArray::from(
            id.iter().map(|i| ["x", "y"][(*i % 2) as usize]).collect::<Vec<_>>(),
        )),
        Arc::new(Date32Array::from(
            id.iter().map(|i| 20_480 + *i as i32).collect::<Vec<_>>(),
        )),
    ];
    RecordBatch::try_new(schema, cols).unwrap()
}

async fn meshkit_run(
    lake: &Lake,
    job: &str,
    params: &[(&str, &str)],
    run_id: &str,
) -> Result<mesh_core::job::JobReport, String> {
    let p = lake.domain.project("daily").unwrap();
    let j = p.job(job).unwrap();
    let mut all = j.params.clone();
    all.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    JobRun {
        engine: &lake.engine,
        project: p,
        job: j,
        params: &all,
        run_id,
        at: chrono::Utc::now().naive_utc(),
    }
    .run()
    .await
    .map_err(|e| e.to_string())
}

/// The table's current rows into `file`; its metadata location.
async fn daily_export(lake: &Lake, table: &str, file: &Path) -> (mesh_iceberg::Table, String) {
    let p = lake.domain.project("daily").unwrap();
    let decl = p.tables.iter().find(|t| t.name.as_str() == table).unwrap();
    let t = lake.engine.load_table(p, decl).await.unwrap();
    let scan = t.scan(&Default::default()).await.unwrap();
    write_parquet(file, scan.schema.clone(), &scan.batches);
    let meta = t.metadata_location().to_string();
    (t, meta)
}

async fn daily_meshkit(repo: &Path, work: &Path) -> Value {
    use mesh_core::incremental::{bookmark_key, intervals_key};
    let dir = work.join("daily");
    let root = work.join("daily-domain");
    write_daily_domain(repo, &root);
    let lake = open(&root).await;
    let p = lake.domain.project("daily").unwrap();
    let table = |name: &str| p.tables.iter().find(|t| t.name.as_str() == name).unwrap();
    let raw_folder = lake
        .layout
        .path(&lake.layout.table_location(p, table("inc_events")))
        .unwrap();
    let mut states = serde_json::Map::new();
    for s in [1, 2, 4] {
        let f = dir.join(format!("raw/s{s}/inc_events"));
        stage_raw(&f, s);
        states.insert(s.to_string(), json!(format!("file://{}/", f.display())));
    }
    let mut specs = serde_json::Map::new();
    for job in DAILY_JOBS {
        let j = p.job(job).unwrap();
        let mut spec = serde_json::to_value(job_spec(&lake.domain, Env::Dev, p, j)).unwrap();
        let sql = dir.join(format!("sql/{job}.sql"));
        std::fs::create_dir_all(sql.parent().unwrap()).unwrap();
        std::fs::write(&sql, daily_sql(job)).unwrap();
        spec["sql"]["uri"] = json!(format!("file://{}", sql.display()));
        let file = dir.join(format!("specs/{job}.json"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        specs.insert(job.to_string(), json!(file));
    }

    // Incremental raw append: state 1, state 2 (two new files), state 2 again (nothing new).
    let key = bookmark_key("inc_append", "raw.inc_events");
    let mut inc_runs = Vec::new();
    for (run, state) in [(1, 1), (2, 2), (3, 2)] {
        stage_raw(&raw_folder, state);
        let report = meshkit_run(&lake, "inc_append", &[], &format!("inc_append-run{run}"))
            .await
            .unwrap();
        let rows = dir.join(format!("expected/inc_append/run{run}.parquet"));
        let (t, metadata) = daily_export(&lake, "inc_append", &rows).await;
        eprintln!("meshkit inc_append run {run}: {} files read", report.files_read);
        inc_runs.push(json!({
            "run": run, "state": states[&state.to_string()], "rows": rows,
            "bookmark": t.summary_property(&key), "files_read": report.files_read,
            "committed": report.snapshot_id.is_some(), "metadata": metadata,
        }));
    }
    assert_eq!(
        inc_runs
            .iter()
            .map(|r| r["files_read"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [2, 2, 0]
    );

    // Incremental Iceberg input: appends only, then nothing new, then a delete between appends.
    let mut src = lake.engine.load_or_create(p, table("inc_src")).await.unwrap();
    let mut ice_runs = Vec::new();
    // Each run appends some id ranges (one or several files).
    #[allow(clippy::single_range_in_vec_init)]
    let plan: [(&[std::ops::Range<i64>], Option<&str>); 4] = [
        (&[1..4, 4..6], None),
        (&[6..8], None),
        (&[], None),
        (&[8..9], Some("id = 2")),
    ];
    for (n, (appends, delete)) in plan.iter().enumerate() {
        let run = n + 1;
        if let Some(predicate) = delete {
            src.delete_where(predicate).await.unwrap();
        }
        let mut files = Vec::new();
        for (k, ids) in appends.iter().enumerate() {
            let batch = daily_src_batch(ids.clone());
            let f = dir.join(format!("batches/run{run}-{k}.parquet"));
            write_parquet(&f, batch.schema(), std::slice::from_ref(&batch));
            src.append(&[batch], Default::default()).await.unwrap();
            files.push(json!(f));
        }
        let mut jobs = serde_json::Map::new();
        for job in ["inc_ice", "inc_ice_full"] {
            let outcome = meshkit_run(&lake, job, &[], &format!("{job}-run{run}")).await;
            let rows = dir.join(format!("expected/{job}/run{run}.parquet"));
            daily_export(&lake, job, &rows).await;
            eprintln!("meshkit {job} run {run}: {:?}", outcome.as_ref().map(|r| r.snapshot_id));
            jobs.insert(
                job.to_string(),
                json!({
                    "rows": rows,
                    "error": outcome.as_ref().err(),
                    "committed": outcome.as_ref().is_ok_and(|r| r.snapshot_id.is_some()),
                }),
            );
        }
        ice_runs.push(json!({"run": run, "appends": files, "delete": delete, "jobs": jobs}));
    }
    let last = &ice_runs[3]["jobs"];
    assert!(
        last["inc_ice"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("rewrote rows after snapshot")),
        "{last}"
    );
    assert!(last["inc_ice_full"]["error"].is_null(), "{last}");

    // Daily time-range job into a month-partitioned table: three days across a month end, then
    // one day again after its input changed.
    let mut tr_runs = Vec::new();
    for (run, (day, state)) in [
        ("2026-01-30", 2),
        ("2026-01-31", 2),
        ("2026-02-01", 2),
        ("2026-01-31", 4),
    ]
    .into_iter()
    .enumerate()
    {
        stage_raw(&raw_folder, state);
        let report = meshkit_run(
            &lake,
            "tr_daily",
            &[("run_date", day)],
            &format!("tr_daily-run{}", run + 1),
        )
        .await
        .unwrap();
        let rows = dir.join(format!("expected/tr_daily/run{}.parquet", run + 1));
        let (t, _) = daily_export(&lake, "tr_daily", &rows).await;
        tr_runs.push(json!({
            "run": run + 1, "run_date": day, "state": states[&state.to_string()], "rows": rows,
            "done": t.summary_property(&intervals_key("tr_daily")), "operation": report.operation,
        }));
    }
    assert_eq!(tr_runs[3]["done"], json!("2026-01-30/2026-02-01"));

    json!({
        "specs": specs,
        "inc_append": inc_runs,
        "inc_ice": ice_runs,
        "tr_daily": tr_runs,
        "bookmark_key": key,
        "intervals_key": intervals_key("tr_daily"),
        "handoff": dir.join("runner_handoff.json"),
    })
}

fn read_parquet_file(file: &Path) -> Vec<RecordBatch> {
    let f = std::fs::File::open(file).unwrap();
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// meshkit continues the table the runner committed in its first run (a Glue run, then a
/// local one): it reads exactly the files the runner had not, and ends equal to meshkit's
/// own second and third runs, bookmark bytes included.
async fn meshkit_continues_runner(repo: &Path, work: &Path, daily: &Value) {
    let handoff: Value = serde_json::from_slice(
        &std::fs::read(daily["handoff"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("the runner did not hand its first inc_append commit over: {e}")),
    )
    .unwrap();
    let root = work.join("daily-domain-2");
    write_daily_domain(repo, &root);
    let lake = open(&root).await;
    let p = lake.domain.project("daily").unwrap();
    let table = |name: &str| p.tables.iter().find(|t| t.name.as_str() == name).unwrap();
    let raw_folder = lake
        .layout
        .path(&lake.layout.table_location(p, table("inc_events")))
        .unwrap();
    // The Hadoop catalog names metadata files `v3.metadata.json`; meshkit commits only on top of
    // the `00003-<uuid>.metadata.json` names the Glue and REST catalogs write (it numbers the
    // next file from the name), so the handed-over file is given that name, unchanged inside.
    let hadoop = Path::new(handoff["inc_append_run1_metadata"].as_str().unwrap());
    let version: u32 = hadoop
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix('v')?.strip_suffix(".metadata.json")?.parse().ok())
        .unwrap_or_else(|| panic!("not a Hadoop-catalog metadata file: {}", hadoop.display()));
    let metadata = hadoop.with_file_name(format!(
        "{version:05}-9a3e4d2c-0b8f-4f51-9d5e-2c7a61b0e4f3.metadata.json"
    ));
    std::fs::copy(hadoop, &metadata).unwrap();
    mesh_iceberg::Catalog::register_table(
        lake.engine.catalog.as_ref(),
        &lake.engine.ident(table("inc_append")),
        &metadata.display().to_string(),
    )
    .await
    .unwrap();
    let key = daily["bookmark_key"].as_str().unwrap();
    for run in [2usize, 3] {
        let want = &daily["inc_append"][run - 1];
        stage_raw(&raw_folder, 2);
        let report = meshkit_run(&lake, "inc_append", &[], &format!("inc_append-after-runner-{run}"))
            .await
            .unwrap();
        assert_eq!(
            report.files_read as u64,
            want["files_read"].as_u64().unwrap(),
            "meshkit after the runner's run {}: files read",
            run - 1
        );
        let t = lake.engine.load_table(p, table("inc_append")).await.unwrap();
        let scan = t.scan(&Default::default()).await.unwrap();
        let expected = read_parquet_file(Path::new(want["rows"].as_str().unwrap()));
        assert_eq!(
            sorted_rows(&scan.batches),
            sorted_rows(&expected),
            "meshkit's run {run} continuing the runner's table differs from meshkit's own"
        );
        assert_eq!(
            t.summary_property(key).as_deref(),
            want["bookmark"].as_str(),
            "bookmark after meshkit's run {run} on the runner's table"
        );
        assert_eq!(report.snapshot_id.is_some(), want["committed"].as_bool().unwrap());
    }
    eprintln!("ok   daily meshkit continues the runner's bookmark (runs 2 and 3)");
}
