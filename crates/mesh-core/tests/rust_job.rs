//! The Rust job API: a transform written with DataFusion's DataFrame API goes through the same
//! input binding, checks and write path as the job's SQL file.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::functions_aggregate::expr_fn::{count_distinct, sum};
use datafusion::prelude::*;
use mesh_core::config::{Config, Inputs};
use mesh_core::engine::Engine;
use mesh_core::job::{JobError, JobRun};
use mesh_core::layout::Layout;
use mesh_core::sample::{generate, SampleOptions};
use mesh_domain::{Domain, Env, Naming};

mod common;
use common::copy_domain;

async fn engine(root: &Path) -> (Arc<Engine>, Arc<Domain>) {
    let domain = Arc::new(mesh_domain::load_domain(root).expect("example domain is valid"));
    let config = Config::resolve(&Inputs {
        domain_root: root,
        abbr: &domain.abbr,
        region: &domain.region,
        vars: BTreeMap::new(),
        flags: BTreeMap::new(),
    })
    .unwrap();
    let layout = Layout::local(Naming::new(&domain.abbr, Env::Local), &config.lake_root.value);
    let opts = SampleOptions {
        rows: 5_000,
        ..Default::default()
    };
    generate(&domain, &layout, &opts).unwrap();
    let engine = Engine::local(domain.clone(), root.to_path_buf(), &config)
        .await
        .unwrap();
    (Arc::new(engine), domain)
}

fn sorted_text(batches: &[RecordBatch]) -> Vec<String> {
    let text = pretty_format_batches(batches).unwrap().to_string();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

async fn table_rows(engine: &Engine, domain: &Domain, table: &str) -> (Vec<String>, Option<i64>) {
    let project = domain.project("sales").unwrap();
    let t = engine
        .load_table(
            project,
            project.tables.iter().find(|t| t.name.as_str() == table).unwrap(),
        )
        .await
        .unwrap();
    let scan = t.scan(&Default::default()).await.unwrap();
    (sorted_text(&scan.batches), t.current_snapshot_id())
}

/// `daily_sales` once from its SQL file, once from Rust: the same rows, both checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_transform_writes_what_the_sql_job_writes() {
    let dir = tempfile::tempdir().unwrap();
    copy_domain(dir.path());
    let (engine, domain) = engine(dir.path()).await;
    let project = domain.project("sales").unwrap();
    let job = project.job("daily_sales").unwrap();
    let params = BTreeMap::new();
    let run = JobRun {
        engine: &engine,
        project,
        job,
        params: &params,
        run_id: "sql",
        at: chrono::Utc::now().naive_utc(),
    };
    let from_sql = run.run().await.unwrap();
    let (sql_rows, _) = table_rows(&engine, &domain, "daily_sales").await;

    let cx = run.open().await.unwrap();
    assert_eq!(cx.param("run_id"), Some("sql"));
    let events = cx.input("sales_events").await.unwrap();
    let sale_date = cast(col("event_ts"), datafusion::arrow::datatypes::DataType::Date32);
    let df = events
        .aggregate(
            vec![sale_date.alias("sale_date"), col("store_id")],
            vec![
                count_distinct(col("event_id")).alias("orders"),
                sum(cast(col("quantity"), datafusion::arrow::datatypes::DataType::Int64)).alias("units"),
                sum(col("quantity") * col("unit_price")).alias("revenue"),
            ],
        )
        .unwrap()
        .with_column(
            "revenue",
            cast(
                col("revenue"),
                datafusion::arrow::datatypes::DataType::Decimal128(18, 2),
            ),
        )
        .unwrap();
    let from_rust = cx.commit(df).await.unwrap();
    let (rust_rows, _) = table_rows(&engine, &domain, "daily_sales").await;

    assert_eq!(from_rust.rows_written, from_sql.rows_written);
    assert!(from_rust.checks.iter().all(|c| c.passed), "{:?}", from_rust.checks);
    assert_eq!(from_rust.checks.len(), from_sql.checks.len());
    assert_eq!(rust_rows, sql_rows);
    assert_ne!(
        from_rust.snapshot_id, from_sql.snapshot_id,
        "the Rust run committed its own snapshot"
    );
}

/// A Rust transform whose result breaks an `error` check commits nothing, like a SQL job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_transform_failing_a_check_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    copy_domain(dir.path());
    let (engine, domain) = engine(dir.path()).await;
    let project = domain.project("sales").unwrap();
    let job = project.job("daily_sales").unwrap();
    let params = BTreeMap::new();
    let run = JobRun {
        engine: &engine,
        project,
        job,
        params: &params,
        run_id: "r1",
        at: chrono::Utc::now().naive_utc(),
    };
    run.run().await.unwrap();
    let (before, snapshot_before) = table_rows(&engine, &domain, "daily_sales").await;

    let cx = run.open().await.unwrap();
    // Negative revenue breaks the manifest's `range` check (min 0).
    let df = cx
        .sql(
            "SELECT CAST(event_ts AS DATE) AS sale_date, store_id, COUNT(*) AS orders, \
             SUM(CAST(quantity AS BIGINT)) AS units, CAST(-1 AS DECIMAL(18,2)) AS revenue \
             FROM f01_raw.sales_events GROUP BY 1, 2",
        )
        .await
        .unwrap();
    let err = cx.commit(df).await.unwrap_err();
    assert!(
        matches!(&err, JobError::CheckFailed { check, .. } if check.contains("revenue")),
        "{err}"
    );
    let (after, snapshot_after) = table_rows(&engine, &domain, "daily_sales").await;
    assert_eq!(snapshot_after, snapshot_before);
    assert_eq!(after, before);

    let cx = run.open().await.unwrap();
    let err = cx.input("customers").await.unwrap_err().to_string();
    assert!(
        err.contains("not an input of this job") && err.contains("raw.sales_events"),
        "{err}"
    );
}
