//! A merge whose source is several times `memory_limit` runs (issue 28 item 3): the source is
//! counted in the engine's memory pool and spilled to a temporary file when the pool refuses
//! it, its distinct keys are reserved in the pool, and the rows are written through a sort that
//! spills. Two merges (inserts, then updates, deletes and inserts against the table the first
//! wrote) give exactly the table the same merges give without a limit, and the one computed
//! here; the process's heap grows by a fraction of the source while they run. Without a disk
//! to spill to, the same merge fails with DataFusion's resources-exhausted error naming the
//! merge source: the source is counted, not held beside the pool.
//!
//! The heap is measured by this test binary's global allocator, so this file holds one test.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use mesh_core::engine::Engine;
use mesh_core::job::{JobReport, JobRun};
use mesh_core::sample::{generate, SampleOptions};
use mesh_domain::Domain;

mod common;
use common::{copy_domain, engine, heap_growth_since, heap_mark, CountingHeap};

#[global_allocator]
static ALLOCATOR: CountingHeap = CountingHeap;

/// Events per merge: ~150 bytes each in Arrow, ~290 MB, eighteen times the limit.
const ROWS: i64 = 2_000_000;
/// Distinct keys per merge (about 13 events each); the second merge's keys are shifted by
/// half, so it updates or deletes half of the first one's and inserts as many new ones.
const KEYS: i64 = 150_000;
const LIMIT: &str = "16MiB";
const LIMIT_BYTES: u64 = 16 * 1024 * 1024;
/// 2026-01-01T00:00:00Z in microseconds.
const START_US: i64 = 1_767_225_600_000_000;

const PROJECT: &str = r#"

[[tables]]
name = "wide_customers"
layer = "curated"
description = "Latest state per key of generated events, several times the memory limit."
partition_by = ["bucket(4, id)"]
sort_order = ["id"]
identifier = ["id"]
columns = [
  { name = "id", type = "long", nullable = false },
  { name = "payload", type = "string" },
  { name = "updated_at", type = "timestamp", nullable = false },
]

[[jobs]]
name = "wide_customers"
description = "The latest event per key; D events delete the key."
sql = "sql/wide_customers.sql"
inputs = ["raw.sales_events"]
output = "curated.wide_customers"
mode = "merge"
checks = [
  { type = "not_null", columns = ["id", "updated_at"] },
  { type = "row_count_min", min = 1 },
]
[jobs.merge]
keys = ["id"]
on_duplicate = "keep_latest"
order_by = "updated_at"
delete_when = "op = 'D'"
"#;

/// Event `n` of merge `round`: its key, whether it is a deletion, its payload (120 characters)
/// and its time (later events of a key are later in time).
fn key(round: i64, n: i64) -> i64 {
    (n * 7919) % KEYS + round * KEYS / 2
}

fn deletes(round: i64, n: i64) -> bool {
    (n + round) % 13 == 0
}

fn payload(round: i64, n: i64) -> String {
    format!("{}{round}{n:08}", "x".repeat(111))
}

fn time(round: i64, n: i64) -> i64 {
    START_US + (round * ROWS + n) * 1000
}

/// The same events in SQL.
fn events_sql(round: i64) -> String {
    format!(
        "SELECT (value * 7919) % {KEYS} + {shift} AS id,
           concat(repeat('x', 111), '{round}', lpad(CAST(value AS VARCHAR), 8, '0')) AS payload,
           to_timestamp_micros({START_US} + ({round} * {ROWS} + value) * 1000) AS updated_at,
           CASE WHEN (value + {round}) % 13 = 0 THEN 'D' ELSE 'U' END AS op
         FROM generate_series(0, {last}) AS t(value)",
        shift = round * KEYS / 2,
        last = ROWS - 1
    )
}

/// A table's rows: id -> (payload, updated_at).
type Rows = BTreeMap<i64, (String, i64)>;

/// The table after `rounds` merges, and each merge's (inserted, updated, deleted).
fn expected(rounds: i64) -> (Rows, Vec<(u64, u64, u64)>) {
    let mut table = Rows::new();
    let mut counts = Vec::new();
    for round in 0..rounds {
        let mut latest: BTreeMap<i64, i64> = BTreeMap::new();
        for n in 0..ROWS {
            latest.insert(key(round, n), n);
        }
        let (mut inserted, mut updated, mut deleted) = (0, 0, 0);
        for (id, n) in latest {
            let existed = table.remove(&id).is_some();
            if deletes(round, n) {
                deleted += u64::from(existed);
            } else {
                table.insert(id, (payload(round, n), time(round, n)));
                if existed {
                    updated += 1;
                } else {
                    inserted += 1;
                }
            }
        }
        counts.push((inserted, updated, deleted));
    }
    (table, counts)
}

/// Runs merge `round` as a Rust transform; returns its report (or error) and the peak heap
/// growth while the result was computed, held, checked, merged and committed.
async fn merge(engine: &Engine, domain: &Domain, round: i64) -> (Result<JobReport, String>, usize) {
    let project = domain.project("sales").unwrap();
    let params = BTreeMap::new();
    let job = JobRun {
        engine,
        project,
        job: project.job("wide_customers").unwrap(),
        params: &params,
        run_id: &format!("round{round}"),
        at: chrono::Utc::now().naive_utc(),
    };
    let cx = job.open().await.unwrap();
    let df = cx.sql(&events_sql(round)).await.unwrap();
    let mark = heap_mark();
    let report = cx.commit(df).await.map_err(|e| e.to_string());
    (report, heap_growth_since(mark))
}

/// The table's rows.
async fn content(engine: &Engine, domain: &Domain) -> Rows {
    let project = domain.project("sales").unwrap();
    let table = project
        .tables
        .iter()
        .find(|t| t.name.as_str() == "wide_customers")
        .unwrap();
    let t = engine.load_table(project, table).await.unwrap();
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_table("t", t.table_provider(None).await.unwrap()).unwrap();
    let batches: Vec<RecordBatch> = ctx
        .sql("SELECT id, payload, updated_at FROM t")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut rows = BTreeMap::new();
    for b in &batches {
        let ids = b.column(0).as_primitive::<Int64Type>();
        let payloads = b.column(1).as_string::<i32>();
        let times = b.column(2).as_primitive::<TimestampMicrosecondType>();
        for i in 0..b.num_rows() {
            let row = (payloads.value(i).to_string(), times.value(i));
            assert!(rows.insert(ids.value(i), row).is_none(), "key {} twice", ids.value(i));
        }
    }
    rows
}

fn counts(r: &JobReport) -> (u64, u64, u64) {
    (r.inserted.unwrap(), r.updated.unwrap(), r.deleted.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_source_larger_than_the_memory_limit_is_counted_and_spilled() {
    let dir = tempfile::tempdir().unwrap();
    copy_domain(dir.path());
    let manifest = dir.path().join("projects/sales/project.toml");
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str(PROJECT);
    std::fs::write(&manifest, text).unwrap();
    std::fs::write(dir.path().join("projects/sales/sql/wide_customers.sql"), events_sql(0)).unwrap();
    let domain = Arc::new(mesh_domain::load_domain(dir.path()).expect("the test domain is valid"));
    let (want_first, want_counts) = expected(1);
    let (want, all_counts) = expected(2);
    assert!(
        all_counts[1].0 > 0 && all_counts[1].1 > 0 && all_counts[1].2 > 0,
        "{all_counts:?}"
    );

    // Without a limit, in its own lake.
    let free_root = dir.path().join("free");
    std::fs::create_dir_all(&free_root).unwrap();
    copy_domain(&free_root);
    std::fs::write(
        free_root.join("projects/sales/project.toml"),
        std::fs::read(&manifest).unwrap(),
    )
    .unwrap();
    std::fs::write(free_root.join("projects/sales/sql/wide_customers.sql"), events_sql(0)).unwrap();
    let free_domain = Arc::new(mesh_domain::load_domain(&free_root).unwrap());
    let free = engine(&free_root, &free_domain, None).await;
    generate(
        &free_domain,
        &free.layout,
        &SampleOptions {
            rows: 1_000,
            ..Default::default()
        },
    )
    .unwrap();
    let (r, free_peak) = merge(&free, &free_domain, 0).await;
    assert_eq!(counts(&r.unwrap()), want_counts[0]);
    let (r, _) = merge(&free, &free_domain, 1).await;
    assert_eq!(counts(&r.unwrap()), all_counts[1]);
    assert_eq!(content(&free, &free_domain).await, want);

    // The limit, with the OS temp folder to spill to (as `mesh run` opens the engine).
    let limited = engine(dir.path(), &domain, Some(LIMIT)).await;
    generate(
        &domain,
        &limited.layout,
        &SampleOptions {
            rows: 1_000,
            ..Default::default()
        },
    )
    .unwrap();
    let (first, first_peak) = merge(&limited, &domain, 0).await;
    let first = first.unwrap_or_else(|e| panic!("with {LIMIT} and a disk to spill to: {e}"));
    assert_eq!(counts(&first), want_counts[0]);
    assert!(first.checks.iter().all(|c| c.passed), "{:?}", first.checks);
    assert_eq!(content(&limited, &domain).await, want_first);
    let (second, second_peak) = merge(&limited, &domain, 1).await;
    let second = second.unwrap_or_else(|e| panic!("with {LIMIT} and a disk to spill to: {e}"));
    assert_eq!(counts(&second), all_counts[1]);
    assert_eq!(second.operation.as_deref(), Some("overwrite"));
    assert!(second.files_removed > 0, "{second:?}");
    assert_eq!(content(&limited, &domain).await, want);

    // ~150 bytes an event in Arrow: each source is ~290 MB. What is held: the pool's 16 MiB
    // (the source's share, the sort's), the keys (~40 bytes each, in the pool), a few batches
    // being read, the row groups being encoded.
    let source_bytes = ROWS as usize * 150;
    eprintln!(
        "source ~{} MB; peak heap growth: without a limit {} MB; with {LIMIT}: first merge {} MB, second {} MB",
        source_bytes >> 20,
        free_peak >> 20,
        first_peak >> 20,
        second_peak >> 20
    );
    for peak in [first_peak, second_peak] {
        assert!(
            peak < source_bytes / 3,
            "the heap grew by {} MB while a ~{} MB source was merged: was it collected?",
            peak >> 20,
            source_bytes >> 20
        );
    }

    // The same limit without a disk: the source must fit the pool, which refuses it.
    let mut no_disk = engine(dir.path(), &domain, Some(LIMIT)).await;
    no_disk.runtime = mesh_core::session::runtime_env(LIMIT_BYTES, false, None).unwrap();
    let (err, _) = merge(&no_disk, &domain, 2).await;
    let err = err.unwrap_err();
    assert!(
        err.contains("Resources exhausted") && err.contains("merge source"),
        "{err}"
    );
    assert_eq!(content(&limited, &domain).await, want, "nothing was committed");
}
