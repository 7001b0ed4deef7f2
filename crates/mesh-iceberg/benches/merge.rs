//! Merge benchmark: a small upsert into a large table must cost in proportion to the files
//! holding its keys, not to the table.
//!
//! `cargo bench -p mesh-iceberg --bench merge` (release build), or a quick debug run with
//! `cargo build -p mesh-iceberg --benches` and then `target/debug/deps/merge-<hash>`.
//! Size with MESH_BENCH_FILES (default 50), MESH_BENCH_ROWS (rows per file, default 100000)
//! and MESH_BENCH_KEYS (upserted keys, default 100). Prints one JSON object.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use mesh_iceberg::{MergeOptions, ScanOptions, SchemaEvolution, SqliteCatalog, Table, TableDefinition, TableIdent};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn batch(schema: &Arc<Schema>, ids: impl Iterator<Item = i64>, tag: &str) -> RecordBatch {
    let ids: Vec<i64> = ids.collect();
    let n = ids.len();
    RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(StringArray::from(vec![tag; n])),
            Arc::new(Float64Array::from(
                ids.iter().map(|i| *i as f64 * 0.5).collect::<Vec<_>>(),
            )),
        ],
    )
    .expect("batch")
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> mesh_iceberg::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        // `cargo test` asks benches for their tests; there are none.
        return Ok(());
    }
    let files = env("MESH_BENCH_FILES", 50);
    let rows = env("MESH_BENCH_ROWS", 100_000);
    let keys = env("MESH_BENCH_KEYS", 100);
    let dir = tempfile::tempdir()?;
    let catalog = Arc::new(
        SqliteCatalog::open(
            "bench",
            dir.path().join("catalog.db"),
            dir.path().join("wh").to_str().expect("utf-8 path"),
        )
        .await?,
    );
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("tag", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
    ]));
    let mut table = Table::create(
        catalog,
        TableIdent::new("bench", "merge"),
        TableDefinition::new(schema.clone()),
    )
    .await?;

    let started = Instant::now();
    for f in 0..files {
        let base = (f * rows) as i64;
        table
            .append(
                &[batch(&schema, base..base + rows as i64, "orig")],
                SchemaEvolution::default(),
            )
            .await?;
    }
    let load_s = started.elapsed().as_secs_f64();

    // Keys clustered in one file (a typical late-arriving correction) plus new rows.
    let first = (rows / 2) as i64;
    let source = batch(
        &schema,
        (first..first + keys as i64 / 2).chain((files * rows) as i64..(files * rows + keys / 2) as i64),
        "upd",
    );
    let started = Instant::now();
    let merged = table.merge(&[source], &MergeOptions::on(["id"])).await?;
    let merge_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let total = table.scan(&ScanOptions::default()).await?.num_rows();
    let scan_s = started.elapsed().as_secs_f64();

    println!(
        "{}",
        serde_json::json!({
            "files": files,
            "rows_per_file": rows,
            "merge_keys": keys,
            "load_seconds": load_s,
            "merge_seconds": merge_s,
            "full_scan_seconds": scan_s,
            "files_read": merged.files_read,
            "files_rewritten": merged.files_rewritten,
            "inserted": merged.inserted,
            "updated": merged.updated,
            "total_rows": total,
        })
    );
    assert_eq!(merged.files_rewritten, 1, "a clustered upsert must rewrite one file");
    assert_eq!(total, files * rows + keys / 2);
    Ok(())
}
