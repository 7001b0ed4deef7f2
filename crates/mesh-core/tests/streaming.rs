//! A job's result streams into the output table: it is never collected in memory. A job whose
//! result is several times a small `memory_limit` (its sort by partition and sort order
//! spills) writes the same table as without a limit, and the heap never holds more than a
//! fraction of the result while it runs.
//!
//! The heap is measured by this test binary's global allocator, so this file holds one test.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::util::pretty::pretty_format_batches;
use mesh_core::engine::Engine;
use mesh_core::job::{JobReport, JobRun};
use mesh_core::sample::{generate, SampleOptions};
use mesh_domain::Domain;

mod common;
use common::{copy_domain, engine, heap_growth_since, heap_mark, CountingHeap};

#[global_allocator]
static ALLOCATOR: CountingHeap = CountingHeap;

/// Rows of the result: ~150 bytes each in Arrow, ~300 MB in all, ten times the limit.
const ROWS: u64 = 2_000_000;
const LIMIT: &str = "32MiB";

/// A table partitioned by day and sorted by id, whose files roll at 8 MB, and a job that
/// overwrites it.
const PROJECT: &str = r#"

[[tables]]
name = "wide_lines"
layer = "curated"
description = "Generated lines, several times the memory limit."
partition_by = ["day(ts)"]
sort_order = ["id"]
target_file_size_mb = 8
columns = [
  { name = "id", type = "long", nullable = false },
  { name = "ts", type = "timestamp", nullable = false },
  { name = "payload", type = "string" },
]

[[jobs]]
name = "wide_lines"
description = "Generated lines."
sql = "sql/wide_lines.sql"
inputs = ["raw.sales_events"]
output = "curated.wide_lines"
mode = "overwrite"
checks = [
  { type = "not_null", columns = ["id", "ts"] },
  { type = "row_count_min", min = 1 },
]
"#;

/// Ids in a scrambled order (a multiplier prime to the row count), over 20 days; the payload
/// is 120 characters.
fn result_sql() -> String {
    format!(
        "SELECT (value * 7919) % {ROWS} AS id,
           to_timestamp_micros(1767225600000000 + (value % 20) * 86400000000 + value * 1000) AS ts,
           concat(repeat('x', 112), lpad(CAST(value AS VARCHAR), 8, '0')) AS payload
         FROM generate_series(0, {}) AS t(value)",
        ROWS - 1
    )
}

/// Runs the job as a Rust transform; returns its report and the peak heap growth while the
/// result was computed, written, checked and committed.
async fn run(engine: &Engine, domain: &Domain, run_id: &str) -> (JobReport, usize) {
    let project = domain.project("sales").unwrap();
    let params = BTreeMap::new();
    let job = JobRun {
        engine,
        project,
        job: project.job("wide_lines").unwrap(),
        params: &params,
        run_id,
        at: chrono::Utc::now().naive_utc(),
    };
    let cx = job.open().await.unwrap();
    let df = cx.sql(&result_sql()).await.unwrap();
    let mark = heap_mark();
    let report = cx.commit(df).await.unwrap();
    (report, heap_growth_since(mark))
}

/// The table's content, summarised per day by DataFusion over the committed snapshot.
async fn summary(engine: &Engine, domain: &Domain) -> Vec<String> {
    let project = domain.project("sales").unwrap();
    let table = project.tables.iter().find(|t| t.name.as_str() == "wide_lines").unwrap();
    let t = engine.load_table(project, table).await.unwrap();
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_table("t", t.table_provider(None).await.unwrap()).unwrap();
    let batches = ctx
        .sql(
            "SELECT CAST(ts AS DATE) AS day, count(*) AS n, sum(id) AS ids, min(payload) AS lo, max(payload) AS hi,
                    sum(length(payload)) AS chars
             FROM t GROUP BY 1 ORDER BY 1",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    pretty_format_batches(&batches)
        .unwrap()
        .to_string()
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_larger_than_the_memory_limit_streams_into_the_table() {
    let dir = tempfile::tempdir().unwrap();
    copy_domain(dir.path());
    let manifest = dir.path().join("projects/sales/project.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str(PROJECT);
    std::fs::write(&manifest, text).unwrap();
    std::fs::write(dir.path().join("projects/sales/sql/wide_lines.sql"), result_sql()).unwrap();
    let domain = Arc::new(mesh_domain::load_domain(dir.path()).expect("the test domain is valid"));
    let unlimited = engine(dir.path(), &domain, None).await;
    generate(
        &domain,
        &unlimited.layout,
        &SampleOptions {
            rows: 1_000,
            ..Default::default()
        },
    )
    .unwrap();

    let (free, free_peak) = run(&unlimited, &domain, "unlimited").await;
    eprintln!("without a limit: peak heap growth {} MB", free_peak >> 20);
    assert_eq!(free.rows_written, ROWS);
    let expected = summary(&unlimited, &domain).await;
    assert_eq!(expected.len(), 20 + 4, "20 days: {expected:?}");

    let limited = engine(dir.path(), &domain, Some(LIMIT)).await;
    let (report, peak) = run(&limited, &domain, "limited").await;
    assert_eq!(report.rows_written, ROWS);
    assert_eq!(report.operation.as_deref(), Some("overwrite"));
    assert!(report.checks.iter().all(|c| c.passed), "{:?}", report.checks);
    assert_eq!(summary(&limited, &domain).await, expected);

    // ~150 bytes a row in Arrow: the result is ~300 MB. Streaming holds the sort's share of
    // the pool, a few batches and the row groups being encoded.
    let result_bytes = ROWS as usize * 150;
    assert!(
        peak < result_bytes / 3,
        "the heap grew by {} MB while the job ran, the result is ~{} MB: was it collected?",
        peak >> 20,
        result_bytes >> 20
    );
    eprintln!(
        "peak heap growth {} MB for a ~{} MB result, {} files",
        peak >> 20,
        result_bytes >> 20,
        report.files_added
    );

    // Every file holds one day, sorted by id.
    let project = domain.project("sales").unwrap();
    let table = project.tables.iter().find(|t| t.name.as_str() == "wide_lines").unwrap();
    let t = limited.load_table(project, table).await.unwrap();
    let files = t.files(None).await.unwrap();
    assert_eq!(files.len(), report.files_added);
    assert!(files.len() >= 20, "{} files", files.len());
    for f in &files {
        let file = std::fs::File::open(f.path.trim_start_matches("file://")).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let mut last = i64::MIN;
        for b in reader {
            let b = b.unwrap();
            let ids = b
                .column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .unwrap();
            for id in ids.values() {
                assert!(*id > last, "{} is not sorted by id", f.path);
                last = *id;
            }
        }
    }
}
