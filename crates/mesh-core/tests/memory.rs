//! `memory_limit`: every query of the engine runs in one DataFusion memory pool of that size,
//! and a job whose sort needs more spills to disk and still gives the same result; without a
//! disk to spill to, the same job fails with DataFusion's resources-exhausted error, which
//! shows the limit is applied. A job over a raw input several times the limit that needs no
//! sort runs within it without spilling, and the process's heap stays far below the input:
//! the raw input is streamed, not held.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::execution::memory_pool::MemoryLimit;
use mesh_core::engine::Engine;
use mesh_core::job::JobRun;
use mesh_core::sample::{generate, SampleOptions};
use mesh_domain::Domain;

mod common;
use common::{copy_domain, engine, heap_growth_since, heap_mark, walk, CountingHeap};

/// Sales events: the job below sorts all of them (~70 MB of rows, over twice the limit below,
/// which each of the two sorting partitions gets half of).
const EVENTS: u64 = 600_000;
const LIMIT: &str = "32MiB";
const LIMIT_BYTES: usize = 32 * 1024 * 1024;
/// Sales events of the streaming job: ~64 MB of CSV, four times its pool.
const STREAM_EVENTS: u64 = 1_200_000;
/// The pool of the streaming job: a few times smaller than its raw input.
const STREAM_LIMIT: &str = "16MiB";
const STREAM_LIMIT_BYTES: usize = 16 * 1024 * 1024;

#[global_allocator]
static ALLOCATOR: CountingHeap = CountingHeap;

/// The tests of this file one at a time, so one's heap is not counted in the other's peak
/// when they share a process (`cargo test`; nextest runs each in its own).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `daily_sales` (same columns and checks) through a window that sorts every event by store
/// and id first: a sort of the whole input, the operator that must spill.
const SORTING_SQL: &str = "SELECT CAST(event_ts AS DATE) AS sale_date, store_id, COUNT(*) AS orders,
  SUM(CAST(quantity AS BIGINT)) AS units, CAST(SUM(quantity * unit_price) AS DECIMAL(18, 2)) AS revenue
FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY store_id ORDER BY event_id) AS rn FROM f01_raw.sales_events) e
WHERE rn > 0
GROUP BY CAST(event_ts AS DATE), store_id
";

/// `daily_sales` (same columns and checks) as one aggregation: no sort, and state the size of
/// its groups (days × stores), whatever the size of the input.
const STREAMING_SQL: &str = "SELECT CAST(event_ts AS DATE) AS sale_date, store_id, COUNT(*) AS orders,
  SUM(CAST(quantity AS BIGINT)) AS units, CAST(SUM(quantity * unit_price) AS DECIMAL(18, 2)) AS revenue
FROM f01_raw.sales_events
GROUP BY CAST(event_ts AS DATE), store_id
";

async fn daily_sales(engine: &Engine, domain: &Domain, run_id: &str) -> Result<Vec<String>, String> {
    let project = domain.project("sales").unwrap();
    let params = BTreeMap::new();
    JobRun {
        engine,
        project,
        job: project.job("daily_sales").unwrap(),
        params: &params,
        run_id,
        at: chrono::Utc::now().naive_utc(),
    }
    .run()
    .await
    .map_err(|e| e.to_string())?;
    let table = project
        .tables
        .iter()
        .find(|t| t.name.as_str() == "daily_sales")
        .unwrap();
    let scan = engine
        .load_table(project, table)
        .await
        .unwrap()
        .scan(&Default::default())
        .await
        .unwrap();
    let text = pretty_format_batches(&scan.batches).unwrap().to_string();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    Ok(lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_over_the_memory_limit_spills_to_the_same_result() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    copy_domain(dir.path());
    std::fs::write(dir.path().join("projects/sales/sql/daily_sales.sql"), SORTING_SQL).unwrap();
    let domain = Arc::new(mesh_domain::load_domain(dir.path()).expect("example domain is valid"));
    let unlimited = engine(dir.path(), &domain, None).await;
    generate(
        &domain,
        &unlimited.layout,
        &SampleOptions {
            rows: EVENTS,
            ..Default::default()
        },
    )
    .unwrap();
    let expected = daily_sales(&unlimited, &domain, "default").await.unwrap();
    assert!(expected.len() > 10, "{expected:?}");

    let limited = engine(dir.path(), &domain, Some(LIMIT)).await;
    assert!(matches!(
        limited.runtime.memory_pool.memory_limit(),
        MemoryLimit::Finite(n) if n == LIMIT_BYTES
    ));
    let got = daily_sales(&limited, &domain, "limited")
        .await
        .unwrap_or_else(|e| panic!("with {LIMIT} and a disk to spill to: {e}"));
    assert_eq!(got, expected);

    // The same limit without a disk: the aggregation cannot spill, so the limit must stop it.
    let mut no_disk = engine(dir.path(), &domain, Some(LIMIT)).await;
    no_disk.runtime = mesh_core::session::runtime_env(LIMIT_BYTES as u64, false, None).unwrap();
    let err = daily_sales(&no_disk, &domain, "no-disk").await.unwrap_err();
    assert!(err.contains("Resources exhausted"), "{err}");
}

/// Bytes of the files under `dir`.
fn size_of(dir: &Path) -> u64 {
    walk(dir).iter().map(|f| f.metadata().unwrap().len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_input_larger_than_the_limit_is_streamed_within_it() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    copy_domain(dir.path());
    std::fs::write(dir.path().join("projects/sales/sql/daily_sales.sql"), STREAMING_SQL).unwrap();
    let domain = Arc::new(mesh_domain::load_domain(dir.path()).expect("example domain is valid"));
    let unlimited = engine(dir.path(), &domain, None).await;
    generate(
        &domain,
        &unlimited.layout,
        &SampleOptions {
            rows: STREAM_EVENTS,
            ..Default::default()
        },
    )
    .unwrap();
    let project = domain.project("sales").unwrap();
    let events = project
        .tables
        .iter()
        .find(|t| t.name.as_str() == "sales_events")
        .unwrap();
    let raw = unlimited.location(project, events);
    let raw_bytes = size_of(Path::new(raw.strip_prefix("file://").unwrap_or(&raw)));
    assert!(
        raw_bytes > 3 * STREAM_LIMIT_BYTES as u64,
        "the raw input ({raw_bytes} bytes) is several times the limit"
    );
    let expected = daily_sales(&unlimited, &domain, "default").await.unwrap();
    assert!(expected.len() > 10, "{expected:?}");

    // No disk: nothing may spill, so the whole job must fit the pool.
    let mut limited = engine(dir.path(), &domain, Some(STREAM_LIMIT)).await;
    limited.runtime = mesh_core::session::runtime_env(STREAM_LIMIT_BYTES as u64, false, None).unwrap();
    let mark = heap_mark();
    let got = daily_sales(&limited, &domain, "limited")
        .await
        .unwrap_or_else(|e| panic!("a streamed aggregation within {STREAM_LIMIT}: {e}"));
    let peak = heap_growth_since(mark);
    eprintln!("raw input {raw_bytes} bytes, heap growth at peak {peak} bytes");
    assert_eq!(got, expected);
    // Parsed whole, the input alone would take more than its size on disk.
    assert!(
        (peak as u64) < raw_bytes / 4,
        "the job's heap grew by {peak} bytes over a raw input of {raw_bytes} bytes"
    );
}
