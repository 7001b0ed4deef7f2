//! Merge benchmark (issue 3): upsert changed rows into a large table partitioned by day, and
//! measure what copy-on-write costs against what it must cost.
//!
//! Run through `bench/merge/run.sh` (which also runs the pyiceberg baseline on the same table
//! and prints the ratio). The meshkit side alone: `cargo bench -p mesh-iceberg --bench merge`
//! (flags after `--`: `--dir --rows --days --changes --update-days --cap --out`).
//!
//! What it does, all deterministic:
//! 1. builds `bench.base`: `--rows` rows over `--days` days (`id` ascending with time, so a
//!    day's file holds a narrow key range), partitioned by `day(event_ts)`;
//! 2. registers the base snapshot under three more names (`bench.meshkit_full`,
//!    `bench.meshkit_capped`, `bench.pyiceberg`): copy-on-write never modifies a file, so all
//!    start from identical files and evolve independently;
//! 3. writes the upsert source `source.parquet`: `--changes` rows, every 5th one a new key
//!    (20% inserts), the others updates of distinct existing keys of the last
//!    `--update-days` days (80% updates); any prefix keeps that mix, so the capped baseline
//!    uses the first `--cap` rows;
//! 4. finds, by reading each base file's `id` column, the files that hold an updated key
//!    (the minimum a copy-on-write merge must rewrite);
//! 5. merges the full source into `meshkit_full` and the first `--cap` rows into
//!    `meshkit_capped`, timing only `Table::merge`, then checks row counts and updated rows.
//!
//! Prints and writes (`--out`) one JSON object.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use mesh_iceberg::{
    Catalog, DataFileInfo, MergeOptions, PartitionField, PartitionTransform, ScanOptions, SchemaEvolution,
    SqliteCatalog, Table, TableDefinition, TableIdent,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use serde_json::{json, Value};

/// 2026-01-01T00:00:00Z in microseconds.
const START_US: i64 = 1_767_225_600_000_000;
const DAY_US: i64 = 86_400_000_000;
/// Rows per append while building the base table (one commit each).
const LOAD_CHUNK: u64 = 1_000_000;

struct Args {
    dir: PathBuf,
    rows: u64,
    days: u64,
    changes: u64,
    update_days: u64,
    cap: u64,
    out: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        dir: PathBuf::new(),
        rows: 10_000_000,
        days: 100,
        changes: 1_000_000,
        update_days: 30,
        cap: 100_000,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue; // added by `cargo bench`
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = || {
            value
                .replace('_', "")
                .parse::<u64>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--dir" => a.dir = PathBuf::from(&value),
            "--rows" => a.rows = num()?,
            "--days" => a.days = num()?,
            "--changes" => a.changes = num()?,
            "--update-days" => a.update_days = num()?,
            "--cap" => a.cap = num()?,
            "--out" => a.out = Some(PathBuf::from(&value)),
            _ => {
                return Err(format!(
                    "unknown flag {flag}; flags: --dir --rows --days --changes --update-days --cap --out"
                ))
            }
        }
    }
    if a.days == 0 || a.rows < a.days || a.update_days == 0 || a.update_days > a.days {
        return Err("need rows >= days > 0 and 0 < update-days <= days".into());
    }
    let per_day = a.rows / a.days;
    let window = per_day * a.update_days;
    if a.changes - a.changes / 5 > window {
        return Err(format!(
            "{} updates do not fit in the {window} rows of the last {} days; raise --update-days",
            a.changes - a.changes / 5,
            a.update_days
        ));
    }
    a.cap = a.cap.min(a.changes);
    Ok(a)
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("event_ts", DataType::Timestamp(TimeUnit::Microsecond, None), false),
        Field::new("customer_id", DataType::Int64, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("note", DataType::Utf8, true),
    ]))
}

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Row `id` (1-based) of the base table: its day follows from its position, so each day's
/// file holds one contiguous key range.
struct Gen {
    per_day: u64,
    days: u64,
}

impl Gen {
    fn ts(&self, id: u64) -> i64 {
        let i = id - 1;
        let day = (i / self.per_day).min(self.days - 1);
        let within = i - day * self.per_day;
        START_US + day as i64 * DAY_US + (within as i64 * DAY_US) / self.per_day as i64
    }

    /// `kind`: 0 base row, 1 update, 2 insert. `ts` is given for inserts.
    fn batch(&self, rows: &[(u64, i64, u8)]) -> RecordBatch {
        const STATUS: [&str; 3] = ["new", "paid", "shipped"];
        let ids: Vec<i64> = rows.iter().map(|r| r.0 as i64).collect();
        let ts: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let customer: Vec<i64> = rows.iter().map(|r| (mix(r.0) % 100_000) as i64).collect();
        let status: Vec<&str> = rows
            .iter()
            .map(|r| match r.2 {
                1 => "updated",
                _ => STATUS[(mix(r.0 ^ 7) % 3) as usize],
            })
            .collect();
        let amount: Vec<f64> = rows
            .iter()
            .map(|r| (mix(r.0 ^ 11) % 100_000) as f64 / 100.0 + if r.2 == 1 { 1.0 } else { 0.0 })
            .collect();
        let note: Vec<String> = rows
            .iter()
            .map(|r| match r.2 {
                1 => format!("order {} corrected", r.0),
                _ => format!("order {} placed", r.0),
            })
            .collect();
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(TimestampMicrosecondArray::from(ts)),
                Arc::new(Int64Array::from(customer)),
                Arc::new(StringArray::from(status)),
                Arc::new(Float64Array::from(amount)),
                Arc::new(StringArray::from(note)),
            ],
        )
        .expect("generated columns match the schema")
    }

    fn base(&self, from: u64, to: u64) -> RecordBatch {
        let rows: Vec<(u64, i64, u8)> = (from..to).map(|id| (id, self.ts(id), 0)).collect();
        self.batch(&rows)
    }

    /// The upsert source: row j is an insert when j % 5 == 4, else an update. Updates walk
    /// the last `update_days` days with a stride coprime to the window, so keys are distinct
    /// and spread over the window in any prefix.
    fn source(&self, rows: u64, changes: u64, update_days: u64) -> (RecordBatch, Vec<u64>) {
        let window = self.per_day * update_days;
        let first = rows - window + 1;
        let mut stride = (window as f64 * 0.618_033_988_7) as u64 | 1;
        while gcd(stride, window) != 1 {
            stride += 2;
        }
        let (mut upd, mut ins) = (0u64, 0u64);
        let mut out = Vec::with_capacity(changes as usize);
        let mut updated = Vec::new();
        for j in 0..changes {
            if j % 5 == 4 {
                ins += 1;
                let id = rows + ins;
                // New events of the last three days.
                let day = self.days - 1 - (ins % 3);
                let ts = START_US + day as i64 * DAY_US + (mix(id) % DAY_US as u64) as i64;
                out.push((id, ts, 2));
            } else {
                let id = first + (upd * stride) % window;
                upd += 1;
                out.push((id, self.ts(id), 1));
                updated.push(id);
            }
        }
        (self.batch(&out), updated)
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn local_path(uri: &str) -> PathBuf {
    PathBuf::from(uri.strip_prefix("file://").unwrap_or(uri))
}

/// Files (and their bytes) of `files` that hold at least one of `keys`, found by reading
/// every file's `id` column: the minimum a copy-on-write merge must rewrite.
fn files_holding(files: &[DataFileInfo], keys: &HashSet<i64>) -> Result<(usize, u64), Box<dyn std::error::Error>> {
    let (mut n, mut bytes) = (0usize, 0u64);
    for f in files {
        let file = std::fs::File::open(local_path(&f.path))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
        // `id` is the first column of the schema.
        let mask = ProjectionMask::roots(builder.parquet_schema(), [0]);
        let mut hit = false;
        for batch in builder.with_projection(mask).build()? {
            let batch = batch?;
            let ids = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .ok_or("id column is not int64")?;
            if ids.iter().flatten().any(|id| keys.contains(&id)) {
                hit = true;
                break;
            }
        }
        if hit {
            n += 1;
            bytes += f.file_size_in_bytes;
        }
    }
    Ok((n, bytes))
}

fn by_path(files: &[DataFileInfo]) -> BTreeMap<&str, u64> {
    files.iter().map(|f| (f.path.as_str(), f.file_size_in_bytes)).collect()
}

/// One meshkit merge on its own copy of the base table, timed, with its file diff.
async fn meshkit_merge(
    catalog: Arc<dyn Catalog>,
    name: &str,
    source: &RecordBatch,
    updates: u64,
    base_rows: u64,
    base_files: &[DataFileInfo],
    touched: (usize, u64),
) -> Result<Value, Box<dyn std::error::Error>> {
    let mut table = Table::load(catalog, TableIdent::new("bench", name)).await?;
    let started = Instant::now();
    let merged = table
        .merge(std::slice::from_ref(source), &MergeOptions::on(["id"]))
        .await?;
    let seconds = started.elapsed().as_secs_f64();

    let after = table.files(None).await?;
    let (before_map, after_map) = (by_path(base_files), by_path(&after));
    let removed: u64 = before_map
        .iter()
        .filter(|(p, _)| !after_map.contains_key(*p))
        .map(|(_, b)| b)
        .sum();
    let added: u64 = after_map
        .iter()
        .filter(|(p, _)| !before_map.contains_key(*p))
        .map(|(_, b)| b)
        .sum();
    let total_rows: u64 = after.iter().map(|f| f.record_count).sum();
    let inserts = source.num_rows() as u64 - updates;
    let updated_rows = table
        .scan(&ScanOptions {
            filter: Some("status = 'updated'".into()),
            columns: Some(vec!["id".into()]),
            ..Default::default()
        })
        .await?
        .num_rows() as u64;
    if merged.updated != updates || merged.inserted != inserts {
        return Err(format!(
            "{name}: merge reported {} updated / {} inserted, expected {updates} / {inserts}",
            merged.updated, merged.inserted
        )
        .into());
    }
    if total_rows != base_rows + inserts || updated_rows != updates {
        return Err(format!(
            "{name}: table holds {total_rows} rows ({updated_rows} updated) after the merge, expected {} ({updates})",
            base_rows + inserts
        )
        .into());
    }
    let base_bytes: u64 = base_files.iter().map(|f| f.file_size_in_bytes).sum();
    Ok(json!({
        "engine": "meshkit",
        "table": format!("bench.{name}"),
        "source_rows": source.num_rows(),
        "updated": merged.updated,
        "inserted": merged.inserted,
        "seconds": seconds,
        "rows_per_second": source.num_rows() as f64 / seconds,
        "files_read": merged.files_read,
        "files_rewritten": merged.files_rewritten,
        "bytes_rewritten": removed,
        "bytes_written": added,
        "touched_files": touched.0,
        "touched_bytes": touched.1,
        "rewritten_over_touched": removed as f64 / touched.1.max(1) as f64,
        "rewritten_over_table": removed as f64 / base_bytes.max(1) as f64,
        "rows_after": total_rows,
        "checked": true,
    }))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        // `cargo test` asks benches for their tests; there are none.
        return Ok(());
    }
    let mut args = parse_args().map_err(|e| format!("merge bench: {e}"))?;
    // Without --dir (plain `cargo bench`) the tables live in a temp folder removed at exit.
    let _temp = if args.dir.as_os_str().is_empty() {
        let t = tempfile::tempdir()?;
        args.dir = t.path().to_path_buf();
        Some(t)
    } else {
        None
    };
    std::fs::create_dir_all(&args.dir)?;
    let db = args.dir.join("catalog.db");
    if db.exists() {
        return Err(format!("{} exists: give an empty --dir", db.display()).into());
    }
    let warehouse = args.dir.join("warehouse");
    let catalog: Arc<dyn Catalog> =
        Arc::new(SqliteCatalog::open("bench", &db, warehouse.to_str().ok_or("--dir must be UTF-8")?).await?);
    let gen = Gen {
        per_day: args.rows / args.days,
        days: args.days,
    };
    let rows = gen.per_day * args.days;

    // 1. The base table.
    let started = Instant::now();
    let def = TableDefinition::new(schema()).partition(PartitionField::new("event_ts", PartitionTransform::Day));
    let mut base = Table::create(catalog.clone(), TableIdent::new("bench", "base"), def).await?;
    let mut from = 1;
    while from <= rows {
        let to = (from + LOAD_CHUNK).min(rows + 1);
        base.append(&[gen.base(from, to)], SchemaEvolution::default()).await?;
        from = to;
    }
    let load_seconds = started.elapsed().as_secs_f64();
    let base_files = base.files(None).await?;
    let base_bytes: u64 = base_files.iter().map(|f| f.file_size_in_bytes).sum();

    // 2. Three independent copies of the same snapshot.
    for name in ["meshkit_full", "meshkit_capped", "pyiceberg"] {
        catalog
            .register_table(&TableIdent::new("bench", name), base.metadata_location())
            .await?;
    }

    // 3. The source, also as Parquet for the baseline.
    let (source, updated_ids) = gen.source(rows, args.changes, args.update_days);
    let source_path = args.dir.join("source.parquet");
    let mut w = ArrowWriter::try_new(std::fs::File::create(&source_path)?, source.schema(), None)?;
    w.write(&source)?;
    w.close()?;
    let capped = source.slice(0, args.cap as usize);
    let cap_updates = args.cap - args.cap / 5;

    // 4. Files that must be rewritten.
    let full_keys: HashSet<i64> = updated_ids.iter().map(|i| *i as i64).collect();
    let cap_keys: HashSet<i64> = updated_ids[..cap_updates as usize].iter().map(|i| *i as i64).collect();
    let touched_full = files_holding(&base_files, &full_keys)?;
    let touched_cap = files_holding(&base_files, &cap_keys)?;

    // 5. The merges.
    let full = meshkit_merge(
        catalog.clone(),
        "meshkit_full",
        &source,
        updated_ids.len() as u64,
        rows,
        &base_files,
        touched_full,
    )
    .await?;
    let cap = meshkit_merge(
        catalog.clone(),
        "meshkit_capped",
        &capped,
        cap_updates,
        rows,
        &base_files,
        touched_cap,
    )
    .await?;

    let out = json!({
        "dir": args.dir,
        "catalog": db,
        "warehouse": warehouse,
        "source": source_path,
        "table": {
            "rows": rows,
            "days": args.days,
            "update_days": args.update_days,
            "files": base_files.len(),
            "bytes": base_bytes,
            "load_seconds": load_seconds,
        },
        "changes": args.changes,
        "cap": args.cap,
        "touched_cap": { "files": touched_cap.0, "bytes": touched_cap.1 },
        "meshkit_full": full,
        "meshkit_capped": cap,
    });
    let text = serde_json::to_string_pretty(&out)?;
    if let Some(path) = &args.out {
        std::fs::write(path, &text)?;
    }
    println!("{text}");
    Ok(())
}
