//! Compaction benchmark: thousands of small files compacted into target-size files, against a
//! plain Parquet-to-Parquet copy of the same files in the same process (the practical limit).
//!
//! Run it with `bench/compaction/run.sh` (dev profile unless PROFILE=release), which then copies
//! the same input files with DataFusion (Python) as a second baseline. Size with
//! MESH_BENCH_FILES (default 2000) and MESH_BENCH_ROWS (rows per file, default 5000, at most
//! 8192). MESH_BENCH_DIR (absent or empty; default a temporary folder removed afterwards) holds
//! the table and is kept: the small input files are hard-linked into `MESH_BENCH_DIR/input`
//! before compaction, and the JSON names that folder as `input_dir`. Prints one human line and
//! one JSON object.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use mesh_iceberg::maintenance::{CompactionOptions, CompactionPlan};
use mesh_iceberg::{ScanOptions, SchemaEvolution, SqliteCatalog, Table, TableDefinition, TableIdent};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn batch(schema: &Arc<Schema>, first: i64, n: usize) -> RecordBatch {
    let ids: Vec<i64> = (first..first + n as i64).collect();
    RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(StringArray::from(
                ids.iter()
                    .map(|i| format!("customer-{:06}", i % 100_003))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(Float64Array::from(
                ids.iter().map(|i| (*i % 10_007) as f64 * 0.25).collect::<Vec<_>>(),
            )),
            Arc::new(Int64Array::from(
                ids.iter().map(|i| 1_700_000_000_000 + i * 1000).collect::<Vec<_>>(),
            )),
        ],
    )
    .expect("batch")
}

fn local(path: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(path.trim_start_matches("file://"))
}

/// The baseline: read every file and write one zstd Parquet file, with arrow-rs directly.
fn plain_copy(paths: &[String], out: &std::path::Path) -> (u64, u64) {
    let mut writer: Option<ArrowWriter<std::fs::File>> = None;
    let mut rows = 0u64;
    for p in paths {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(local(p)).expect("open"))
            .expect("parquet")
            .build()
            .expect("reader");
        for b in reader {
            let b = b.expect("batch");
            rows += b.num_rows() as u64;
            let w = writer.get_or_insert_with(|| {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::default()))
                    .build();
                ArrowWriter::try_new(std::fs::File::create(out).expect("create"), b.schema(), Some(props))
                    .expect("writer")
            });
            w.write(&b).expect("write");
        }
    }
    if let Some(w) = writer {
        w.close().expect("close");
    }
    (rows, std::fs::metadata(out).map(|m| m.len()).unwrap_or(0))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> mesh_iceberg::Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let files = env("MESH_BENCH_FILES", 2000);
    let rows = env("MESH_BENCH_ROWS", 5000).clamp(1, 8192);
    // The temporary folder (when MESH_BENCH_DIR is not set) lives until the end of main.
    let (_temp, root) = match std::env::var_os("MESH_BENCH_DIR") {
        Some(d) => {
            let d = std::path::PathBuf::from(d);
            std::fs::create_dir_all(&d)?;
            assert!(
                std::fs::read_dir(&d)?.next().is_none(),
                "MESH_BENCH_DIR {} must be empty",
                d.display()
            );
            (None, d.canonicalize()?)
        }
        None => {
            let t = tempfile::tempdir()?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let catalog = Arc::new(
        SqliteCatalog::open(
            "bench",
            root.join("catalog.db"),
            root.join("wh").to_str().expect("utf-8 path"),
        )
        .await?,
    );
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("customer", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("ts_ms", DataType::Int64, true),
    ]));
    // A one-byte target makes every write call its own file: `files` small files.
    let mut table = Table::create(
        catalog,
        TableIdent::new("bench", "small_files"),
        TableDefinition::new(schema.clone()).property("write.target-file-size-bytes", "1"),
    )
    .await?;
    let load = Instant::now();
    let per_commit = 250;
    let mut next = 0i64;
    for start in (0..files).step_by(per_commit) {
        let n = per_commit.min(files - start);
        let batches: Vec<RecordBatch> = (0..n)
            .map(|_| {
                let b = batch(&schema, next, rows);
                next += rows as i64;
                b
            })
            .collect();
        table.append(&batches, SchemaEvolution::default()).await?;
    }
    let load_s = load.elapsed().as_secs_f64();
    let before = table.files(None).await?;
    let input_bytes: u64 = before.iter().map(|f| f.file_size_in_bytes).sum();
    let paths: Vec<String> = before.iter().map(|f| f.path.clone()).collect();
    // The same inputs for the DataFusion copy of run.sh, which runs after the compaction: hard
    // links (same inodes, so the same cached pages), a copy where linking fails.
    let input_dir = root.join("input");
    std::fs::create_dir(&input_dir)?;
    for (i, p) in paths.iter().enumerate() {
        let link = input_dir.join(format!("{i:06}.parquet"));
        if std::fs::hard_link(local(p), &link).is_err() {
            std::fs::copy(local(p), &link)?;
        }
    }
    // Warm the page cache so neither side pays for the first read.
    for p in &paths {
        let _ = std::fs::read(local(p))?;
    }

    let copy_out = root.join("copy.parquet");
    let t = Instant::now();
    let (copy_rows, copy_bytes) = plain_copy(&paths, &copy_out);
    let copy_s = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let opts = CompactionOptions::new(512 * 1024 * 1024, 0.75, 5);
    let plan = CompactionPlan::build(&table, &opts).await?;
    let plan_s = t.elapsed().as_secs_f64();
    let outcome = plan.execute(&mut table).await?;
    let compact_s = t.elapsed().as_secs_f64();
    let after = table.scan(&ScanOptions::default()).await?.num_rows() as u64;
    assert_eq!(after, copy_rows, "compaction kept every row");
    assert_eq!(after, (files * rows) as u64);

    let mb = input_bytes as f64 / 1e6;
    let compact_mbs = mb / compact_s;
    let copy_mbs = mb / copy_s;
    println!(
        "compaction: {} files, {:.1} MB, {} rows -> {} file(s) in {:.2}s ({:.2}s planning) = {:.1} MB/s; arrow-rs parquet copy {:.2}s = {:.1} MB/s; ratio compaction/arrow-rs copy = {:.2}",
        before.len(),
        mb,
        after,
        outcome.files_after,
        compact_s,
        plan_s,
        compact_mbs,
        copy_s,
        copy_mbs,
        compact_mbs / copy_mbs
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "compaction",
            "profile": if cfg!(debug_assertions) { "dev" } else { "release" },
            "files": before.len(),
            "rows_per_file": rows,
            "rows": after,
            "input_mb": mb,
            "load_s": load_s,
            "plan_s": plan_s,
            "compaction_s": compact_s,
            "compaction_mb_per_s": compact_mbs,
            "files_after": outcome.files_after,
            "output_mb": outcome.bytes_after as f64 / 1e6,
            "copy_s": copy_s,
            "copy_mb_per_s": copy_mbs,
            "copy_output_mb": copy_bytes as f64 / 1e6,
            "ratio": compact_mbs / copy_mbs,
            "input_dir": input_dir.to_str().expect("utf-8 path"),
            "input_bytes": input_bytes,
        })
    );
    Ok(())
}
