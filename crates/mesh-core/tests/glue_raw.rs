//! Raw tables read the same way by meshkit and by the Glue runner on Spark (PySpark local
//! mode, no Iceberg needed: `runtime/glue/raw_tests.py` runs the runner's own read functions):
//!
//! - the bad-row policy: hostile CSV and JSON files (bad values in columns the query does not
//!   read, NULLs in `nullable = false` columns, quoted newlines, ragged rows, invalid UTF-8,
//!   empty files, a bad partition folder) under `bad_rows = "fail"` give the same first error,
//!   and under `"quarantine"` the same rows and the same rejected rows (file, line, column,
//!   reason, raw); a Parquet file with a NULL in a `nullable = false` column fails both,
//!   naming the file, whatever the policy;
//! - raw bookmarks: a file dated in the future does not hide files landing after it, and a
//!   processed file that grew or was rewritten is refused, naming it, never read twice; the
//!   runner keeps the same rows and the same bookmark bytes as meshkit at every run.
//!
//! - partition pruning: the bad-row policy and `files_read` of a one-day run of a 30-day raw
//!   table cover that day's files, on both engines (the runner's real entry point on Spark +
//!   Iceberg, `raw_tests.py --one-day`).
//!
//! Needs `MESH_PYTHON` with pyspark and `MESH_ICEBERG_JARS` (scripts/test.sh sets both).
//! Without them the tests fail; they never skip.

use common::python;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{NaiveDateTime, TimeZone};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use mesh_core::engine::Engine;
use mesh_core::job::{JobReport, JobRun};
use mesh_domain::{Domain, Env};
use serde_json::{json, Value};

mod common;

const COLUMNS: &str = r#"columns = [
  { name = "id", type = "long", nullable = false },
  { name = "qty", type = "int" },
  { name = "note", type = "string" },
  { name = "price", type = "decimal(10,2)" },
  { name = "ts", type = "timestamp" },
  { name = "flag", type = "boolean" },
  { name = "day", type = "date", nullable = false },
]"#;

fn project() -> String {
    let mut s = String::from(
        r#"name = "rawt"
project_slug = "pj07"
owner = "platform-tests"
classification = "internal"
description = "Raw reads on both engines."
"#,
    );
    for format in ["csv", "json", "parquet"] {
        for policy in ["fail", "quarantine"] {
            s.push_str(&format!(
                "\n[[tables]]\nname = \"{format}_{policy}\"\nlayer = \"raw\"\nformat = \"{format}\"\nbad_rows = \"{policy}\"\npartition_by = [\"day\"]\n{COLUMNS}\n"
            ));
            if format == "csv" {
                s.push_str("[tables.csv]\nheader = true\n");
            }
        }
    }
    s.push_str(
        r#"
[[tables]]
name = "events"
layer = "raw"
format = "csv"
partition_by = ["day"]
columns = [
  { name = "id", type = "long", nullable = false },
  { name = "amount", type = "decimal(12,2)" },
  { name = "day", type = "date", nullable = false },
]
[tables.csv]
header = true

[[tables]]
name = "events_copy"
layer = "curated"
columns = [
  { name = "id", type = "long" },
  { name = "amount", type = "decimal(12,2)" },
  { name = "day", type = "date" },
]

[[tables]]
name = "day_totals"
layer = "curated"
columns = [
  { name = "day", type = "date" },
  { name = "amount", type = "decimal(14,2)" },
  { name = "n", type = "long" },
]

[[tables]]
name = "hostile_ids"
layer = "curated"
columns = [{ name = "id", type = "long" }]

[[tables]]
name = "all_days"
layer = "curated"
columns = [
  { name = "id", type = "long" },
  { name = "amount", type = "decimal(12,2)" },
  { name = "day", type = "date" },
]

[[jobs]]
name = "events_copy"
sql = "sql/events_copy.sql"
inputs = ["raw.events"]
output = "curated.events_copy"
mode = "append"
[jobs.incremental]
inputs = ["raw.events"]

[[jobs]]
name = "day_totals"
sql = "sql/day_totals.sql"
inputs = ["raw.events"]
output = "curated.day_totals"
mode = "overwrite"
[jobs.time_range]
column = "day"
grain = "day"

[[jobs]]
name = "all_days"
sql = "sql/all_days.sql"
inputs = ["raw.events"]
output = "curated.all_days"
mode = "overwrite"

[[jobs]]
name = "hostile_ids"
sql = "sql/hostile_ids.sql"
inputs = ["raw.csv_fail", "raw.csv_quarantine", "raw.json_fail", "raw.json_quarantine", "raw.parquet_fail", "raw.parquet_quarantine"]
output = "curated.hostile_ids"
mode = "overwrite"
"#,
    );
    s
}

const SQL: [(&str, &str); 4] = [
    ("events_copy", "SELECT id, amount, day FROM f01_raw.events\n"),
    ("all_days", "SELECT id, amount, day FROM f01_raw.events\n"),
    (
        "day_totals",
        "SELECT day, CAST(SUM(amount) AS DECIMAL(14, 2)) AS amount, COUNT(*) AS n\nFROM f01_raw.events\nWHERE day >= CAST('${interval_start}' AS DATE) AND day < CAST('${interval_end}' AS DATE)\nGROUP BY day\n",
    ),
    (
        "hostile_ids",
        "SELECT id FROM f01_raw.csv_fail UNION ALL SELECT id FROM f01_raw.csv_quarantine\nUNION ALL SELECT id FROM f01_raw.json_fail UNION ALL SELECT id FROM f01_raw.json_quarantine\nUNION ALL SELECT id FROM f01_raw.parquet_fail UNION ALL SELECT id FROM f01_raw.parquet_quarantine\n",
    ),
];

struct Lake {
    dir: tempfile::TempDir,
    domain: Arc<Domain>,
    engine: Engine,
}

impl Lake {
    async fn new() -> Lake {
        let dir = tempfile::tempdir().unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        std::fs::copy(repo.join("domain.json"), dir.path().join("domain.json")).unwrap();
        let p = dir.path().join("projects/rawt");
        std::fs::create_dir_all(p.join("sql")).unwrap();
        std::fs::write(p.join("project.toml"), project()).unwrap();
        for (job, sql) in SQL {
            std::fs::write(p.join(format!("sql/{job}.sql")), sql).unwrap();
        }
        let domain = Arc::new(mesh_domain::load_domain(dir.path()).unwrap_or_else(|e| panic!("test domain: {e:?}")));
        let engine = common::engine(dir.path(), &domain, None).await;
        Lake { dir, domain, engine }
    }

    fn project(&self) -> &mesh_domain::Project {
        self.domain.project("rawt").unwrap()
    }

    fn table(&self, name: &str) -> &mesh_domain::Table {
        self.project().tables.iter().find(|t| t.name.as_str() == name).unwrap()
    }

    /// A raw table's folder on disk.
    fn folder(&self, name: &str) -> PathBuf {
        let url = self.engine.location(self.project(), self.table(name));
        PathBuf::from(url.strip_prefix("file://").unwrap_or(&url))
    }

    async fn run(
        &self,
        job: &str,
        params: &[(&str, &str)],
        at: NaiveDateTime,
        run_id: &str,
    ) -> Result<JobReport, String> {
        let p = self.project();
        let j = p.job(job).unwrap();
        let mut all = j.params.clone();
        all.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        JobRun {
            engine: &self.engine,
            project: p,
            job: j,
            params: &all,
            run_id,
            at,
        }
        .run()
        .await
        .map_err(|e| format!("{e:#}"))
    }

    async fn rows(&self, table: &str) -> Vec<String> {
        let t = self.engine.load_table(self.project(), self.table(table)).await.unwrap();
        rows_of(&t.scan(&Default::default()).await.unwrap().batches)
    }
}

/// Every row of the batches as text (`|`-separated, NULL as `NULL`), sorted.
fn rows_of(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let formatters: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            let cells: Vec<String> = formatters.iter().map(|f| f.value(r).to_string()).collect();
            out.push(cells.join("|"));
        }
    }
    out.sort();
    out
}

fn read_parquet_dir(dir: &Path) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    for f in files {
        let file = std::fs::File::open(&f).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        out.extend(reader.map(|b| b.unwrap()));
    }
    out
}

fn write(path: &Path, bytes: &[u8], modified_ms: Option<i64>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    if let Some(ms) = modified_ms {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(at)
            .unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile files.

const CSV_DAY1: &str = "id,qty,note,price,ts,flag
1,5,plain,1.50,2026-01-01 10:00:00,true
2,6,\"two
lines\",2.25,2026-01-01 11:00:00,false
3,7,unread bad,3.00,2026-01-01 12:00:00,maybe
,8,null id,4.00,2026-01-01 13:00:00,true
5,9,short row
6,10,long row,6.00,2026-01-01 14:00:00,true,extra
7,x,bad qty,7.00,2026-01-01 15:00:00,true
8,11,\"quoted, comma\",8.005,2026-01-01T16:00:00,yes
9,12,bad ts,9.00,2026-13-01 00:00:00,no
";

const JSON_DAY1: &str = r#"{"id": 1, "qty": 5, "note": "plain", "price": "1.50", "ts": "2026-01-01 10:00:00", "flag": true}
{"id": 3, "qty": 7, "note": "unread bad", "price": 3.0, "ts": "2026-01-01 12:00:00", "flag": "maybe"}
{"id": null, "qty": 8, "note": "null id", "price": "4.00"}
{"id": 7, "qty": "x", "note": "bad qty"}
[1, 2]
{"id": 8, "note": "trunc"

{"id": 9, "qty": 12, "note": "esc\"aped\nnewline", "price": "9.995", "ts": "2026-01-01T16:00:00", "flag": "no"}
"#;

/// Times with a zone in a `timestamp` column (Spark would drop the offset), a leap second (Spark
/// refuses it) and a 300-character bad value (cut to 200 in the reason): rejected alike.
const ZONED_CSV: &[u8] = b"id,qty,note,price,ts,flag
20,1,zulu,1.00,2026-01-02 12:00:00Z,true
21,1,offset,1.00,2026-01-02T12:00:00+05:00,true
22,1,leap,1.00,2026-01-02 23:59:60,true
23,123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890,long,1.00,2026-01-02 12:00:00,true
";
const ZONED_JSON: &[u8] = br#"{"id": 20, "ts": "2026-01-02 12:00:00Z"}
{"id": 21, "ts": "2026-01-02T12:00:00+05:00"}
{"id": 22, "ts": "2026-01-02 23:59:60"}
{"id": 23, "qty": "123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890"}
"#;

/// The hostile files of a table, by path under its folder.
fn hostile_files(json: bool) -> Vec<(&'static str, Vec<u8>)> {
    if json {
        vec![
            ("day=2026-01-01/part-0.json", JSON_DAY1.as_bytes().to_vec()),
            (
                "day=2026-01-01/part-1.json",
                b"{\"id\": 10, \"note\": \"caf\xe9\"}\n{\"id\": 11, \"note\": \"fine\"}\n".to_vec(),
            ),
            ("day=2026-01-02/part-0.json", Vec::new()),
            (
                "day=2026-01-02/part-1.json",
                b"{\"id\": 12, \"qty\": 3, \"flag\": false}\n".to_vec(),
            ),
            ("day=notadate/part-0.json", b"{\"id\": 13}\n".to_vec()),
            ("day=2026-01-02/part-2.json", ZONED_JSON.to_vec()),
        ]
    } else {
        vec![
            ("day=2026-01-01/part-0.csv", CSV_DAY1.as_bytes().to_vec()),
            (
                "day=2026-01-01/part-1.csv",
                b"id,qty,note,price,ts,flag\n10,1,caf\xe9,1.00,2026-01-01 10:00:00,true\n11,2,fine,2.00,2026-01-01 10:00:00,true\n"
                    .to_vec(),
            ),
            ("day=2026-01-02/part-0.csv", Vec::new()),
            (
                "day=2026-01-02/part-1.csv",
                b"id,qty,note,price,ts,flag\n12,3,ok,3.00,2026-01-02 00:00:00,false\n".to_vec(),
            ),
            ("day=notadate/part-0.csv", b"id,qty,note,price,ts,flag\n13,,,,,\n".to_vec()),
            ("day=2026-01-02/part-2.csv", ZONED_CSV.to_vec()),
        ]
    }
}

/// Two Parquet files with the declared types; the first holds a NULL `id` (nullable = false),
/// which no bad-row policy can set aside alone: the read fails naming the file.
fn parquet_files() -> Vec<(&'static str, Vec<u8>)> {
    use datafusion::arrow::array::TimestampMicrosecondArray;
    use datafusion::arrow::array::{ArrayRef, BooleanArray, Decimal128Array, Int32Array, Int64Array, StringArray};
    let file = |ids: Vec<Option<i64>>| {
        let n = ids.len();
        let batch = RecordBatch::try_from_iter(vec![
            ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
            ("qty", Arc::new(Int32Array::from_iter_values(0..n as i32)) as ArrayRef),
            (
                "note",
                Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("n{i}")))) as ArrayRef,
            ),
            (
                "price",
                Arc::new(
                    Decimal128Array::from_iter_values((0..n).map(|i| i as i128 * 101))
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ) as ArrayRef,
            ),
            (
                "ts",
                Arc::new(TimestampMicrosecondArray::from_iter_values(
                    (0..n).map(|i| 1_767_225_600_000_000 + i as i64),
                )) as ArrayRef,
            ),
            (
                "flag",
                Arc::new(BooleanArray::from_iter((0..n).map(|i| Some(i % 2 == 0)))) as ArrayRef,
            ),
        ])
        .unwrap();
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        buf
    };
    vec![
        ("day=2026-01-01/part-0.parquet", file(vec![Some(1), None, Some(3)])),
        ("day=2026-01-02/part-0.parquet", file(vec![Some(4), Some(5)])),
    ]
}

/// A rejected row as both engines are compared on: the file under the table's folder, line,
/// column, reason (a line-level reason up to its first `:`: the JSON parsers word their details
/// differently) and raw text.
fn rejected_key(folder: &Path, file: &str, line: i64, column: Option<&str>, reason: &str, raw: &str) -> String {
    let rel = Path::new(file)
        .strip_prefix(folder)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| file.to_string());
    let reason = match column {
        Some(_) => reason,
        None => reason.split(':').next().unwrap(),
    };
    format!("{rel}|{line}|{}|{reason}|{raw}", column.unwrap_or("NULL"))
}

fn rejected_keys(folder: &Path, batches: &[RecordBatch]) -> Vec<String> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Int64Type;
    let mut out = Vec::new();
    for b in batches {
        let s = |i: usize| b.column(i).as_string::<i32>().clone();
        let (file, column, reason, raw) = (s(0), s(2), s(3), s(4));
        let line = b.column(1).as_primitive::<Int64Type>();
        for r in 0..b.num_rows() {
            out.push(rejected_key(
                folder,
                file.value(r),
                if line.is_null(r) { -1 } else { line.value(r) },
                (!column.is_null(r)).then(|| column.value(r)),
                reason.value(r),
                raw.value(r),
            ));
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// Bookmark runs: the files of `raw.events` at each run, and the run's time.

/// 2026-11-01T00:00:00Z: the runs' times and the files' modification times are set from it.
const T0: i64 = 1_793_491_200_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

fn events_csv(ids: std::ops::Range<i64>) -> String {
    let mut s = String::from("id,amount\n");
    for i in ids {
        s.push_str(&format!("{i},{i}.25\n"));
    }
    s
}

/// Run `k`'s files (path, text, modification time) and time: (1) a normal file and one dated two
/// days in the future; (2) a file landed after run 1, dated before the future file (without
/// the cap at the run's time, run 1's bookmark would count it as processed); (3) the first
/// file grew, hours after it was processed (out of the bookmark's hour band: still recognised);
/// (4) it is back as it was, and another file was rewritten in place with the same size.
fn bookmark_runs() -> Vec<(Vec<RawFile>, i64)> {
    let a = ("day=2026-10-31/a.csv", events_csv(1..4), T0 - 10 * MINUTE);
    let future = ("day=2026-11-02/future.csv", events_csv(10..12), T0 + 48 * HOUR);
    let b = ("day=2026-11-01/b.csv", events_csv(20..23), T0 + HOUR);
    let grown = ("day=2026-10-31/a.csv", events_csv(1..6), T0 + 3 * HOUR);
    let rewritten = ("day=2026-11-01/b.csv", events_csv(30..33), T0 + 4 * HOUR);
    vec![
        (vec![a.clone(), future.clone()], T0),
        (vec![a.clone(), future.clone(), b.clone()], T0 + 2 * HOUR),
        (vec![grown, future.clone(), b.clone()], T0 + 3 * HOUR + MINUTE),
        (vec![a, future, rewritten], T0 + 4 * HOUR + MINUTE),
    ]
}

/// A raw file: its path under the table's folder, its text and its modification time.
type RawFile = (&'static str, String, i64);

fn stage(folder: &Path, files: &[RawFile]) {
    let _ = std::fs::remove_dir_all(folder);
    for (rel, text, modified) in files {
        write(&folder.join(rel), text.as_bytes(), Some(*modified));
    }
}

fn at_ms(ms: i64) -> NaiveDateTime {
    chrono::Utc.timestamp_millis_opt(ms).unwrap().naive_utc()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_reads_raw_tables_as_meshkit_does() {
    let lake = Lake::new().await;
    let work = lake.dir.path().join("work");
    let p = lake.project();

    // Bad rows: meshkit's whole read of each table is the reference.
    let mut cases = Vec::new();
    let mut expected = BTreeMap::new();
    for format in ["csv", "json", "parquet"] {
        for policy in ["fail", "quarantine"] {
            let name = format!("{format}_{policy}");
            let folder = lake.folder(&name);
            let files = match format {
                "parquet" => parquet_files(),
                other => hostile_files(other == "json"),
            };
            for (rel, bytes) in files {
                write(&folder.join(rel), &bytes, None);
            }
            let read =
                mesh_core::raw::read_raw(lake.table(&name), &Default::default(), &folder.display().to_string()).await;
            let want = match read {
                Ok(r) => {
                    assert_eq!(policy, "quarantine", "{name}: the hostile files passed `fail`");
                    assert_ne!(format, "parquet", "{name}: a NULL id passed");
                    let rejected = rejected_keys(&folder, &[mesh_core::raw::rejected_batch(&r.rejected)]);
                    // Kept: ids 1, 2, 8, 11, 12 of the CSV files; 1, 9, 11, 12 of the JSON files.
                    let kept = if format == "csv" { 5 } else { 4 };
                    assert_eq!(r.rows, kept, "{name}: {:?}", rows_of(&r.batches));
                    json!({"rows": rows_of(&r.batches), "rejected": rejected})
                }
                Err(e) => {
                    assert!(policy == "fail" || format == "parquet", "{name}: {e}");
                    json!({"error": e.to_string().lines().next().unwrap().replace(&format!("{}/", folder.display()), "")})
                }
            };
            expected.insert(name.clone(), want);
            cases.push(json!({
                "name": name, "input": format!("raw.{name}"),
                "location": format!("file://{}", folder.display()),
                "rejected_location": format!("file://{}", work.join(format!("rejected/{name}")).display()),
                "out": work.join(format!("rows/{name}")),
            }));
        }
    }
    let hostile = p.job("hostile_ids").unwrap();
    let hostile_spec =
        serde_json::to_value(mesh_core::artifacts::job_spec(&lake.domain, Env::Dev, p, hostile)).unwrap();

    // A missing raw folder is no rows on both engines.
    let missing = lake.dir.path().join("no-such-folder");
    let none = mesh_core::raw::read_raw(
        lake.table("csv_fail"),
        &Default::default(),
        &missing.display().to_string(),
    )
    .await
    .unwrap();
    assert_eq!(none.rows, 0);
    cases.push(json!({
        "name": "missing_folder", "input": "raw.csv_fail",
        "location": format!("file://{}", missing.display()),
        "rejected_location": format!("file://{}", work.join("rejected/missing").display()),
        "out": work.join("rows/missing_folder"),
    }));
    expected.insert("missing_folder".into(), json!({"rows": [], "rejected": []}));

    // Bookmarks: meshkit runs the incremental append job over the four states.
    let events = lake.folder("events");
    let mut steps = Vec::new();
    let key = mesh_core::incremental::bookmark_key("events_copy", "raw.events");
    for (k, (files, run_ms)) in bookmark_runs().into_iter().enumerate() {
        stage(&events, &files);
        let state_folder = work.join(format!("events/s{k}"));
        stage(&state_folder, &files);
        let outcome = lake
            .run("events_copy", &[], at_ms(run_ms), &format!("events-{k}"))
            .await;
        let t = lake.engine.load_table(p, lake.table("events_copy")).await.unwrap();
        steps.push(json!({
            "location": format!("file://{}", state_folder.display()),
            "run_ms": run_ms,
            "error": outcome.as_ref().err(),
            "files_read": outcome.as_ref().map(|r| r.files_read).unwrap_or(0),
            "rows": lake.rows("events_copy").await,
            "bookmark": t.summary_property(&key),
        }));
    }
    // Run 1 read both files; run 2 the file landed after it (not hidden by the future file).
    assert_eq!(steps[0]["files_read"], 2, "{}", steps[0]);
    assert_eq!(steps[1]["files_read"], 1, "{}", steps[1]);
    let after2 = steps[1]["rows"].as_array().unwrap().len();
    assert_eq!(after2, 8, "{}", steps[1]);
    // Run 3: the grown file is refused, naming it; nothing is appended twice.
    let e3 = steps[2]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("run 3 passed: {}", steps[2]));
    assert!(e3.contains("day=2026-10-31/a.csv") && e3.contains("grew from"), "{e3}");
    assert_eq!(steps[2]["rows"], steps[1]["rows"]);
    assert_eq!(steps[2]["bookmark"], steps[1]["bookmark"]);
    // Run 4: the file rewritten in place with the same size is refused too.
    let e4 = steps[3]["error"]
        .as_str()
        .unwrap_or_else(|| panic!("run 4 passed: {}", steps[3]));
    assert!(
        e4.contains("day=2026-11-01/b.csv") && e4.contains("was rewritten"),
        "{e4}"
    );
    assert_eq!(steps[3]["rows"], steps[1]["rows"]);
    let events_spec = serde_json::to_value(mesh_core::artifacts::job_spec(
        &lake.domain,
        Env::Dev,
        p,
        p.job("events_copy").unwrap(),
    ))
    .unwrap();

    let manifest = json!({
        "hostile_spec": hostile_spec, "cases": cases,
        "events_spec": events_spec, "bookmark_key": key, "steps": steps,
        "out": work.join("runner.json"),
    });
    let manifest_path = work.join("raw_tests.json");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runtime/glue/raw_tests.py");
    let out = std::process::Command::new(python())
        .arg(&script)
        .arg(&manifest_path)
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "raw_tests.py failed:\n{log}");
    let runner: Value = serde_json::from_slice(&std::fs::read(work.join("runner.json")).unwrap()).unwrap();

    let mut mismatches = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let got = &runner["cases"][name];
        let want = &expected[name];
        if let Some(error) = want.get("error").and_then(Value::as_str) {
            let runner_error = got["error"].as_str().unwrap_or("(no error)");
            let folder = case["location"].as_str().unwrap().strip_prefix("file://").unwrap();
            let runner_error = runner_error.replace(&format!("{folder}/"), "");
            if !runner_error.contains(error) {
                mismatches.push(format!(
                    "{name}: runner error `{runner_error}` is not meshkit's `{error}`"
                ));
            }
            continue;
        }
        if let Some(e) = got["error"].as_str() {
            mismatches.push(format!("{name}: the runner failed: {e}"));
            continue;
        }
        let rows = rows_of(&read_parquet_dir(Path::new(case["out"].as_str().unwrap())));
        if json!(rows) != want["rows"] {
            mismatches.push(format!("{name}: rows\n  runner  {rows:?}\n  meshkit {}", want["rows"]));
        }
        let folder = PathBuf::from(case["location"].as_str().unwrap().strip_prefix("file://").unwrap());
        let rejected_dir = PathBuf::from(
            case["rejected_location"]
                .as_str()
                .unwrap()
                .strip_prefix("file://")
                .unwrap(),
        )
        .join("run_id=r1");
        let rejected = rejected_keys(&folder, &read_parquet_dir(&rejected_dir));
        if got["requarantined"] != json!(0) {
            mismatches.push(format!(
                "{name}: a second run of the runner quarantined {} row(s) of files already quarantined",
                got["requarantined"]
            ));
        }
        if json!(rejected) != want["rejected"] {
            mismatches.push(format!(
                "{name}: rejected rows\n  runner  {rejected:#?}\n  meshkit {:#}",
                want["rejected"]
            ));
        }
    }
    for (k, step) in steps.iter().enumerate() {
        let got = &runner["steps"][k];
        match step["error"].as_str() {
            Some(e) => {
                let named = got["error"].as_str().unwrap_or("(no error)");
                let file = if k == 2 {
                    "day=2026-10-31/a.csv"
                } else {
                    "day=2026-11-01/b.csv"
                };
                let how = if k == 2 { "grew from" } else { "was rewritten" };
                if !(named.contains(file) && named.contains(how)) {
                    mismatches.push(format!("run {k}: runner `{named}`, meshkit `{e}`"));
                }
            }
            None => {
                if got["rows"] != step["rows"] || got["bookmark"] != step["bookmark"] {
                    mismatches.push(format!(
                        "run {k}: runner rows {} bookmark {}; meshkit rows {} bookmark {}",
                        got["rows"], got["bookmark"], step["rows"], step["bookmark"]
                    ));
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{}\n\n{log}", mismatches.join("\n"));
    eprintln!(
        "{}",
        log.lines()
            .filter(|l| l.starts_with("ok"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The folder of `raw.events` at a step of the one-day test: thirty days of November.
#[derive(Debug, Clone, Copy)]
enum Days {
    /// The 20th's file holds a bad `amount`.
    BadTwentieth,
    /// The same, and a folder whose `day` is not a date: meshkit keeps its file whatever the
    /// filter (only its rows can say which day they belong to).
    NotADate,
    /// Every day's file is good.
    Good,
}

/// One step of the one-day test: the job, its `run_date` (none: the job has no partition
/// filter), the folder's state, and what both engines must do: read that many files, or fail
/// with an error holding the text.
struct DayStep {
    job: &'static str,
    run_date: Option<&'static str>,
    folder: Days,
    want: Result<usize, &'static str>,
}

fn stage_days(folder: &Path, days: Days) {
    let _ = std::fs::remove_dir_all(folder);
    for day in 1..=30 {
        let text = if day == 20 && !matches!(days, Days::Good) {
            "id,amount\n1,not a number\n".to_string()
        } else {
            events_csv(day * 10..day * 10 + 3)
        };
        write(
            &folder.join(format!("day=2026-11-{day:02}/part-0.csv")),
            text.as_bytes(),
            None,
        );
    }
    if matches!(days, Days::NotADate) {
        write(&folder.join("day=notadate/part-0.csv"), b"id,amount\n1,2.00\n", None);
    }
}

/// A one-day run of a 30-day raw table reads that day's files only, on both engines:
/// `files_read` is one, and a bad row in another day's file does not fail it (the policy covers
/// what the query scans), while one in the day's own file does; a query without a partition
/// filter reads and checks every file. The runner runs each step after meshkit, through its
/// real entry point on Spark + Iceberg, over a copy of the folder as it was at that step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_day_run_reads_one_days_files() {
    let lake = Lake::new().await;
    let work = lake.dir.path().join("work");
    let p = lake.project();
    let folder = lake.folder("events");
    // 2026-12-01T00:00:00Z: every day of November is complete.
    let at_text = "2026-12-01T00:00:00Z";
    let at = at_ms(T0 + 30 * 24 * HOUR);
    let step = |job, run_date, folder, want| DayStep {
        job,
        run_date,
        folder,
        want,
    };
    let bad_amount = "day=2026-11-20/part-0.csv:2: column `amount`";
    let plan = [
        step("day_totals", Some("2026-11-05"), Days::BadTwentieth, Ok(1)),
        step("day_totals", Some("2026-11-20"), Days::BadTwentieth, Err(bad_amount)),
        step("all_days", None, Days::BadTwentieth, Err(bad_amount)),
        step(
            "day_totals",
            Some("2026-11-05"),
            Days::NotADate,
            Err("day=notadate/part-0.csv:2: column `day`"),
        ),
        step("all_days", None, Days::Good, Ok(30)),
    ];
    let mut steps = Vec::new();
    let mut specs = serde_json::Map::new();
    for (
        k,
        DayStep {
            job,
            run_date,
            folder: days,
            want,
        },
    ) in plan.iter().enumerate()
    {
        stage_days(&folder, *days);
        let copy = work.join(format!("days/step{k}"));
        stage_days(&copy, *days);
        let params: Vec<(&str, &str)> = run_date.iter().map(|d| ("run_date", *d)).collect();
        let outcome = lake.run(job, &params, at, &format!("day-{k}")).await;
        match (want, &outcome) {
            (Ok(files), Ok(r)) => assert_eq!(r.files_read, *files, "step {k}: {r:?}"),
            (Err(fragment), Err(e)) => assert!(e.contains(fragment), "step {k}: {e}"),
            _ => panic!("step {k}: meshkit {outcome:?}, expected {want:?}"),
        }
        if k == 0 {
            let r = outcome.as_ref().unwrap();
            assert_eq!(r.rows_read, 3, "{r:?}");
        }
        // A job whose first run failed has no table yet: no rows (the runner's is created empty).
        let rows = match lake.engine.load_table(p, lake.table(job)).await {
            Ok(_) => lake.rows(job).await,
            Err(_) => Vec::new(),
        };
        steps.push(json!({
            "job": job, "location": format!("file://{}", copy.display()),
            "args": run_date.iter().flat_map(|d| ["--run_date", *d]).collect::<Vec<_>>(),
            "error": outcome.as_ref().err(),
            "files_read": outcome.as_ref().ok().map(|r| r.files_read),
            "rows": rows,
        }));
        if !specs.contains_key(*job) {
            let mut spec = serde_json::to_value(mesh_core::artifacts::job_spec(
                &lake.domain,
                Env::Dev,
                p,
                p.job(job).unwrap(),
            ))
            .unwrap();
            let sql = work.join(format!("sql/{job}.sql"));
            std::fs::create_dir_all(sql.parent().unwrap()).unwrap();
            std::fs::write(&sql, SQL.iter().find(|(j, _)| j == job).unwrap().1).unwrap();
            spec["sql"]["uri"] = json!(format!("file://{}", sql.display()));
            specs.insert(job.to_string(), spec);
        }
    }
    assert_eq!(steps[0]["rows"], json!(["2026-11-05|153.75|3"]));
    assert_eq!(steps[4]["rows"].as_array().unwrap().len(), 90);

    let jars = std::env::var("MESH_ICEBERG_JARS").unwrap_or_else(|_| {
        panic!("MESH_ICEBERG_JARS is not set: run scripts/test.sh, which builds the Spark + Iceberg jars")
    });
    let manifest = json!({
        "workdir": work.join("spark"), "jars": jars, "at": at_text,
        "specs": specs, "steps": steps, "out": work.join("one_day.json"),
    });
    let manifest_path = work.join("one_day_tests.json");
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runtime/glue/raw_tests.py");
    let out = std::process::Command::new(python())
        .arg(&script)
        .arg("--one-day")
        .arg(&manifest_path)
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "raw_tests.py --one-day failed:\n{log}");
    let runner: Value = serde_json::from_slice(&std::fs::read(work.join("one_day.json")).unwrap()).unwrap();
    let mut mismatches = Vec::new();
    for (k, (DayStep { job, run_date, .. }, want)) in plan.iter().zip(&steps).enumerate() {
        let got = &runner["steps"][k];
        let what = format!("step {k} ({job} {})", run_date.unwrap_or("unfiltered"));
        match (plan[k].want, got["error"].as_str()) {
            (Err(fragment), Some(e)) if e.contains(fragment) => {}
            (Err(_), e) => mismatches.push(format!("{what}: runner {e:?}, meshkit {}", want["error"])),
            (Ok(_), Some(e)) => mismatches.push(format!("{what}: the runner failed where meshkit succeeded: {e}")),
            (Ok(_), None) if got["files_read"] != want["files_read"] => mismatches.push(format!(
                "{what}: runner files_read {}, meshkit {}",
                got["files_read"], want["files_read"]
            )),
            (Ok(_), None) => {}
        }
        if got["rows"] != want["rows"] {
            mismatches.push(format!("{what}: runner rows {}, meshkit {}", got["rows"], want["rows"]));
        }
    }
    assert!(mismatches.is_empty(), "{}\n\n{log}", mismatches.join("\n"));
    eprintln!(
        "{}",
        log.lines()
            .filter(|l| l.starts_with("ok"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
