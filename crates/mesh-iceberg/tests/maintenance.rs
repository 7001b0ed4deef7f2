//! Table maintenance under concurrent writers: compaction racing merges in another process,
//! snapshot expiry over random histories, orphan cleanup next to in-flight and killed writers,
//! refused unsafe settings, sort order. pyiceberg is the independent reader.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arrow::array::{Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use mesh_iceberg::maintenance::*;
use mesh_iceberg::*;
use serde_json::{json, Value};

struct Env {
    dir: tempfile::TempDir,
    catalog: Arc<SqliteCatalog>,
}

fn wh(dir: &Path) -> String {
    format!("file://{}/warehouse", dir.display())
}

impl Env {
    async fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(
            SqliteCatalog::open("mesh", dir.path().join("catalog.db"), wh(dir.path()))
                .await
                .unwrap(),
        );
        Env { dir, catalog }
    }

    fn cat(&self) -> Arc<dyn Catalog> {
        self.catalog.clone()
    }

    fn table_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join("warehouse/ns").join(name)
    }

    fn probe(&self, args: &[&str]) -> Value {
        let python = std::env::var("MESH_PYTHON").unwrap_or_else(|_| {
            panic!("MESH_PYTHON is not set: the maintenance tests read tables with pyiceberg. Run scripts/test.sh")
        });
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/maintenance_probe.py");
        let db = self.dir.path().join("catalog.db");
        let w = wh(self.dir.path());
        let mut full = vec![args[0], db.to_str().unwrap(), w.as_str(), "mesh"];
        full.extend_from_slice(&args[1..]);
        let out = Command::new(&python).arg(&script).args(&full).output().unwrap();
        assert!(
            out.status.success(),
            "pyiceberg probe failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Rows of each snapshot as pyiceberg reads them, as `id -> val` maps.
    fn py_snapshots(&self, table: &str, ids: &[i64]) -> BTreeMap<i64, BTreeMap<i64, String>> {
        let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        let v = self.probe(&["snapshots", &format!("ns.{table}"), &list.join(",")]);
        ids.iter()
            .map(|id| {
                let rows = v[id.to_string()].as_array().unwrap();
                (
                    *id,
                    rows.iter()
                        .map(|r| (r["id"].as_i64().unwrap(), r["val"].as_str().unwrap().to_string()))
                        .collect(),
                )
            })
            .collect()
    }
}

/// (id, part, val) partitioned by `part`, sorted by id.
fn kv_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("part", DataType::Int32, false),
        Field::new("val", DataType::Utf8, true),
    ]))
}

const PARTS: i64 = 3;

fn kv(rows: &[(i64, String)]) -> RecordBatch {
    RecordBatch::try_new(
        kv_schema(),
        vec![
            Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(Int32Array::from(
                rows.iter().map(|r| r.0.rem_euclid(PARTS) as i32).collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                rows.iter().map(|r| Some(r.1.as_str())).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

fn kv_definition(sorted: bool) -> TableDefinition {
    let def = TableDefinition::new(kv_schema()).partition(PartitionField::new("part", PartitionTransform::Identity));
    if sorted {
        def.sort_by(SortKey::asc("id"))
    } else {
        def
    }
}

fn as_map(batches: &[RecordBatch]) -> BTreeMap<i64, String> {
    let mut out = BTreeMap::new();
    for b in batches {
        let ids = b
            .column_by_name("id")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        let vals = b
            .column_by_name("val")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        for i in 0..b.num_rows() {
            assert!(
                out.insert(ids.value(i), vals.value(i).to_string()).is_none(),
                "id {} appears twice",
                ids.value(i)
            );
        }
    }
    out
}

async fn rows_at(t: &Table, snapshot_id: Option<i64>) -> BTreeMap<i64, String> {
    let scan = t
        .scan(&ScanOptions {
            snapshot_id,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("snapshot {snapshot_id:?} is no longer readable: {e}"));
    as_map(&scan.batches)
}

fn small_files() -> CompactionOptions {
    // Every file of these tests is a few KB: all are "small", two make a group.
    let mut o = CompactionOptions::new(1024 * 1024, 0.75, 2);
    o.max_group_bytes = 64 * 1024 * 1024;
    o
}

fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p);
            }
        }
    }
    out
}

fn local(location: &str) -> PathBuf {
    PathBuf::from(normalize_location(location).trim_start_matches("file://"))
}

mod compaction {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn groups_small_files_per_partition_and_sorts() {
        let env = Env::new().await;
        let mut t = Table::create(env.cat(), TableIdent::new("ns", "c"), kv_definition(true))
            .await
            .unwrap();
        assert_eq!(t.sort_order(), vec![SortKey::asc("id")]);
        // Five appends of descending ids: each file is sorted by id although the input is not.
        let mut model = BTreeMap::new();
        for a in 0..5i64 {
            let rows: Vec<(i64, String)> = (0..30).rev().map(|i| (a * 100 + i, format!("a{a}"))).collect();
            model.extend(rows.iter().cloned());
            t.append(&[kv(&rows)], SchemaEvolution::default()).await.unwrap();
        }
        // One more file only in partition 0 (id multiple of 3): 6 files there, 5 elsewhere.
        t.append(&[kv(&[(999, "x".into())])], SchemaEvolution::default())
            .await
            .unwrap();
        model.insert(999, "x".into());
        let before = t.files(None).await.unwrap();
        assert_eq!(before.len(), 16);
        for f in &before {
            assert_sorted(&local(&f.path));
        }

        let mut opts = small_files();
        opts.min_input_files = 6;
        let plan = CompactionPlan::build(&t, &opts).await.unwrap();
        assert_eq!(plan.strategy, CompactionStrategy::Sort);
        assert_eq!(plan.groups.len(), 1, "only partition 0 has 6 small files: {plan:?}");
        assert_eq!(plan.groups[0].files.len(), 6);
        assert_eq!(plan.groups[0].partition, json!({"part": 0}));

        opts.min_input_files = 2;
        let plan = CompactionPlan::build(&t, &opts).await.unwrap();
        assert_eq!(plan.groups.len(), 3);
        assert_eq!(plan.files_to_rewrite(), 16);
        assert_eq!(t.files(None).await.unwrap().len(), 16, "planning changes nothing");
        let out = plan.execute(&mut t).await.unwrap();
        assert_eq!((out.groups_committed, out.groups_aborted), (3, 0), "{out:?}");
        assert_eq!((out.files_before, out.files_after), (16, 3));
        assert_eq!(out.snapshot_ids.len(), 1, "every group in one commit");
        assert_eq!(rows_at(&t, None).await, model);
        let after = t.files(None).await.unwrap();
        assert_eq!(after.len(), 3);
        for f in &after {
            assert_sorted(&local(&f.path));
        }
        let snaps = t.snapshots();
        assert_eq!(snaps.last().unwrap().operation, "replace");
        assert_eq!(
            snaps
                .last()
                .unwrap()
                .summary
                .get("mesh.compaction-strategy")
                .map(String::as_str),
            Some("sort")
        );
        // pyiceberg sees the sort order and the same rows.
        let py = env.probe(&["sort_order", "ns.c"]);
        assert_eq!(
            py["fields"],
            json!([{"column": "id", "direction": "asc", "null_order": "nulls-first", "transform": "identity"}])
        );
        assert_eq!(py["rows"].as_array().unwrap().len(), model.len());
        // Nothing left to do.
        assert!(CompactionPlan::build(&t, &small_files()).await.unwrap().is_empty());
    }

    /// Files per partition, rows per file sorted: the layout compaction left.
    async fn layout(t: &Table) -> BTreeMap<String, Vec<u64>> {
        let mut m: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for f in t.files(None).await.unwrap() {
            m.entry(format!("{:?}", f.partition)).or_default().push(f.record_count);
        }
        m.values_mut().for_each(|v| v.sort());
        m
    }

    /// Three partitions' groups rewritten at the same time leave what rewriting them one at a
    /// time leaves: the same rows and files per partition, in one new snapshot; with partial
    /// progress, the same table in one snapshot per group.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_groups_commit_what_serial_groups_commit() {
        let env = Env::new().await;
        let mut results = Vec::new();
        for (name, concurrency, partial) in [("serial", 1, false), ("parallel", 3, false), ("partial", 2, true)] {
            let mut t = Table::create(env.cat(), TableIdent::new("ns", name), kv_definition(false))
                .await
                .unwrap();
            for a in 0..4i64 {
                let rows: Vec<(i64, String)> = (0..300).map(|i| (a * 1000 + i, format!("{name}{i}"))).collect();
                t.append(&[kv(&rows)], SchemaEvolution::default()).await.unwrap();
            }
            let snapshots_before = t.snapshots().len();
            let mut opts = small_files();
            opts.max_concurrency = concurrency;
            opts.partial_progress = partial;
            let plan = CompactionPlan::build(&t, &opts).await.unwrap();
            assert_eq!(plan.groups.len(), 3, "{name}");
            assert_eq!(plan.max_concurrency, concurrency);
            let out = plan.execute(&mut t).await.unwrap();
            assert_eq!((out.groups_committed, out.groups_aborted), (3, 0), "{name}: {out:?}");
            assert_eq!(out.peak_concurrency, concurrency, "{name}: groups at once");
            let new: Vec<_> = t.snapshots()[snapshots_before..].to_vec();
            assert_eq!(new.len(), if partial { 3 } else { 1 }, "{name}");
            assert!(new.iter().all(|s| s.operation == "replace"));
            assert_eq!(out.snapshot_ids, new.iter().map(|s| s.snapshot_id).collect::<Vec<_>>());
            assert_eq!(
                (out.files_before, out.files_after, out.files_added),
                (12, 3, 3),
                "{name}"
            );
            let rows: BTreeMap<i64, String> = rows_at(&t, None)
                .await
                .into_iter()
                .map(|(k, v)| (k, v.trim_start_matches(name).to_string()))
                .collect();
            assert_eq!(rows.len(), 1200);
            results.push((name, rows, layout(&t).await));
        }
        for (name, rows, layout) in &results[1..] {
            assert_eq!(rows, &results[0].1, "{name} rows");
            assert_eq!(layout, &results[0].2, "{name} files per partition");
        }
    }

    /// A group holding more than the target size is written as several files, each rolled
    /// near the target, with every row.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_larger_than_the_target_writes_several_files() {
        let env = Env::new().await;
        let def = TableDefinition::new(kv_schema());
        let mut t = Table::create(env.cat(), TableIdent::new("ns", "big"), def)
            .await
            .unwrap();
        let mut model = BTreeMap::new();
        for a in 0..6i64 {
            // Distinct, poorly compressible values: about 100 KB per file.
            let rows: Vec<(i64, String)> = (0..2000)
                .map(|i| {
                    let k = a * 10_000 + i;
                    (k, format!("{:x}", (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
                })
                .collect();
            model.extend(rows.iter().cloned());
            t.append(&[kv(&rows)], SchemaEvolution::default()).await.unwrap();
        }
        let input: u64 = t.files(None).await.unwrap().iter().map(|f| f.file_size_in_bytes).sum();
        // Each input file (one read batch) is a sixth of the input, a third of the target: a
        // file can overshoot the target by at most one batch before it rolls.
        let target = input / 2;
        let mut opts = CompactionOptions::new(target, 0.75, 2);
        opts.min_file_size = input;
        opts.max_group_bytes = input * 2;
        let plan = CompactionPlan::build(&t, &opts).await.unwrap();
        assert_eq!(plan.groups.len(), 1, "{plan:?}");
        assert!(plan.groups[0].expected_output_files >= 2, "{plan:?}");
        let out = plan.execute(&mut t).await.unwrap();
        assert_eq!(out.groups_committed, 1);
        assert_eq!(out.snapshot_ids.len(), 1);
        assert!(out.files_added >= 2, "one group, {} file(s): {out:?}", out.files_added);
        let files = t.files(None).await.unwrap();
        assert_eq!(files.len(), out.files_added);
        for f in &files {
            assert!(
                f.file_size_in_bytes <= target + target / 2,
                "{} bytes against a target of {target}",
                f.file_size_in_bytes
            );
        }
        assert_eq!(rows_at(&t, None).await, model);
    }

    fn assert_sorted(path: &Path) {
        let file = std::fs::File::open(path).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let mut ids = Vec::new();
        for b in reader {
            let b = b.unwrap();
            let c = b
                .column_by_name("id")
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            ids.extend(c.values().iter().copied());
        }
        assert!(
            ids.windows(2).all(|w| w[0] <= w[1]),
            "{} is not sorted: {ids:?}",
            path.display()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stale_group_aborts_and_concurrent_appends_do_not_block() {
        let env = Env::new().await;
        let ident = TableIdent::new("ns", "stale");
        let mut t = Table::create(env.cat(), ident.clone(), kv_definition(false))
            .await
            .unwrap();
        for a in 0..3i64 {
            let rows: Vec<(i64, String)> = (0..6).map(|i| (a * 100 + i, "v".to_string())).collect();
            t.append(&[kv(&rows)], SchemaEvolution::default()).await.unwrap();
        }
        let plan = CompactionPlan::build(&t, &small_files()).await.unwrap();
        assert_eq!(plan.groups.len(), 3);
        // Another writer, after the plan: an append (every partition) and an update of id 1
        // (partition 1), which rewrites one input file of partition 1's group.
        let mut other = Table::load(env.cat(), ident.clone()).await.unwrap();
        other
            .append(
                &[kv(&[(900, "new".into()), (901, "new".into()), (902, "new".into())])],
                SchemaEvolution::default(),
            )
            .await
            .unwrap();
        other
            .merge(&[kv(&[(1, "updated".into())])], &MergeOptions::on(["id"]))
            .await
            .unwrap();
        let out = plan.execute(&mut t).await.unwrap();
        assert_eq!((out.groups_committed, out.groups_aborted), (2, 1), "{out:?}");
        assert!(out.aborted[0].contains("removed or rewritten"), "{:?}", out.aborted);
        let rows = rows_at(&t, None).await;
        assert_eq!(
            rows[&1], "updated",
            "the update survives: the stale group did not resurrect the old row"
        );
        assert_eq!(rows.len(), 18 + 3);
        assert_eq!(rows[&900], "new");
        let id = t.current_snapshot_id().unwrap();
        assert_eq!(env.py_snapshots("stale", &[id])[&id], rows);
    }

    const ROUNDS: usize = 50;
    const KEYS: i64 = 60;
    /// Writer operations allowed per compaction round. The writer is paced by the rounds (not
    /// by time): unpaced, a slow machine lets it pile up thousands of snapshots, and every
    /// refresh and the final snapshot-by-snapshot model check grow with them.
    const WRITES_PER_ROUND: i64 = 3;

    /// Updates and deletes race with compaction in partitions 0 and 1; partition 2 only gets
    /// appends, which must never block a compaction group.
    fn racing_key(k: i64) -> i64 {
        if k.rem_euclid(PARTS) == 2 {
            k - 1
        } else {
            k
        }
    }

    /// The other process: merges (updates and inserts), appends and deletes until told to stop,
    /// logging every acknowledged commit with its sequence number.
    async fn writer(dir: &Path) {
        let catalog: Arc<dyn Catalog> = Arc::new(
            SqliteCatalog::open("mesh", dir.join("catalog.db"), wh(dir))
                .await
                .unwrap(),
        );
        let mut t = Table::load(catalog, TableIdent::new("ns", "race")).await.unwrap();
        let mut log = String::new();
        let mut i: i64 = 0;
        let mut next_new = 10_000i64;
        while !dir.join("stop").exists() {
            let round: i64 = std::fs::read_to_string(dir.join("round"))
                .ok()
                .and_then(|r| r.trim().parse().ok())
                .unwrap_or(0);
            if i >= WRITES_PER_ROUND * (round + 1) {
                // Ahead of the compactor: wait for its next round.
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            i += 1;
            t.refresh().await.unwrap();
            let res = match i % 4 {
                // Update two existing keys of different partitions.
                0 | 1 => {
                    let rows = vec![
                        (racing_key((i * 7) % KEYS), format!("m{i}")),
                        (racing_key((i * 13 + 1) % KEYS), format!("m{i}")),
                    ];
                    let rows: Vec<(i64, String)> = rows.into_iter().collect::<BTreeMap<_, _>>().into_iter().collect();
                    t.merge(&[kv(&rows)], &MergeOptions::on(["id"]))
                        .await
                        .map(|m| (m.commit, json!({"op": "upsert", "rows": rows})))
                }
                2 => {
                    next_new += 1;
                    let rows = vec![(next_new, format!("a{i}"))];
                    t.append(&[kv(&rows)], SchemaEvolution::default())
                        .await
                        .map(|c| (c, json!({"op": "upsert", "rows": rows})))
                }
                _ => {
                    let k = racing_key((i * 11) % KEYS);
                    t.delete_where(&format!("id = {k}"))
                        .await
                        .map(|c| (c, json!({"op": "delete", "id": k})))
                }
            };
            match res {
                Ok((c, mut entry)) => {
                    if let Some(seq) = c.sequence_number {
                        entry["seq"] = json!(seq);
                        log.push_str(&entry.to_string());
                        log.push('\n');
                    }
                }
                Err(e) if e.is_conflict() => {}
                Err(e) => panic!("writer: unexpected error: {e}"),
            }
        }
        std::fs::write(dir.join("writer.log"), log).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compaction_racing_merges_in_another_process() {
        if let Ok(dir) = std::env::var("MESH_MAINT_WRITER_DIR") {
            writer(Path::new(&dir)).await;
            return;
        }
        let env = Env::new().await;
        let mut t = Table::create(env.cat(), TableIdent::new("ns", "race"), kv_definition(true))
            .await
            .unwrap();
        let seed: Vec<(i64, String)> = (0..KEYS).map(|k| (k, "seed".to_string())).collect();
        // Several seed files so the first rounds have work.
        for chunk in seed.chunks(10) {
            t.append(&[kv(chunk)], SchemaEvolution::default()).await.unwrap();
        }
        let seed_seq = t.snapshots().last().unwrap().sequence_number;

        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(&exe)
            .args([
                "compaction::compaction_racing_merges_in_another_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("MESH_MAINT_WRITER_DIR", env.dir.path())
            .spawn()
            .unwrap();
        // Race from the writer's first commit on: wait until it has committed once.
        let waited = std::time::Instant::now();
        loop {
            t.refresh().await.unwrap();
            if t.snapshots().last().unwrap().sequence_number > seed_seq {
                break;
            }
            assert!(
                waited.elapsed() < Duration::from_secs(120),
                "the writer never committed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (mut committed, mut aborted) = (0, 0);
        let mut reasons: Vec<String> = Vec::new();
        let mut compaction_snapshots = Vec::new();
        for round in 0..ROUNDS {
            std::fs::write(env.dir.path().join("round"), round.to_string()).unwrap();
            t.refresh().await.unwrap();
            let plan = CompactionPlan::build(&t, &small_files()).await.unwrap();
            match plan.execute(&mut t).await {
                Ok(out) => {
                    committed += out.groups_committed;
                    aborted += out.groups_aborted;
                    compaction_snapshots.extend(out.snapshot_ids);
                    reasons.extend(out.aborted);
                }
                // Lost the commit race on every retry: nothing committed, like an abort.
                Err(e) if e.is_conflict() => aborted += 1,
                Err(e) => panic!("compaction failed: {e}"),
            }
        }
        std::fs::write(env.dir.path().join("stop"), "").unwrap();
        assert!(child.wait().unwrap().success(), "the writer process failed");
        eprintln!(
            "{ROUNDS} rounds: {committed} groups committed, {aborted} aborted, {} compaction snapshots",
            compaction_snapshots.len()
        );
        assert!(
            committed > 0,
            "no compaction group ever committed; first reasons: {:?}",
            &reasons[..reasons.len().min(3)]
        );

        // Model: the seed plus every acknowledged write, in sequence order.
        let log = std::fs::read_to_string(env.dir.path().join("writer.log")).unwrap();
        let mut acked: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        acked.sort_by_key(|a| a["seq"].as_i64().unwrap());
        assert!(
            acked.len() >= 10,
            "the writer committed too little to race: {}",
            acked.len()
        );
        let model_at = |seq: i64| -> BTreeMap<i64, String> {
            let mut m: BTreeMap<i64, String> = seed.iter().cloned().collect();
            for a in acked.iter().filter(|a| a["seq"].as_i64().unwrap() <= seq) {
                if a["op"] == "delete" {
                    m.remove(&a["id"].as_i64().unwrap());
                } else {
                    for r in a["rows"].as_array().unwrap() {
                        m.insert(r[0].as_i64().unwrap(), r[1].as_str().unwrap().to_string());
                    }
                }
            }
            m
        };

        // Every snapshot is a seed append, an acknowledged write or one of our compactions,
        // and each one equals the model at its sequence number: after every round nothing was
        // lost, duplicated or resurrected.
        t.refresh().await.unwrap();
        let acked_seqs: BTreeSet<i64> = acked.iter().map(|a| a["seq"].as_i64().unwrap()).collect();
        assert_eq!(
            acked_seqs.len(),
            acked.len(),
            "two acknowledged commits share a sequence number"
        );
        let ours: BTreeSet<i64> = compaction_snapshots.iter().copied().collect();
        for s in t.snapshots() {
            if s.sequence_number <= seed_seq {
                continue;
            }
            assert!(
                acked_seqs.contains(&s.sequence_number) || ours.contains(&s.snapshot_id),
                "snapshot {} ({}) was never acknowledged",
                s.snapshot_id,
                s.operation
            );
            assert_eq!(
                rows_at(&t, Some(s.snapshot_id)).await,
                model_at(s.sequence_number),
                "snapshot {} ({}, seq {})",
                s.snapshot_id,
                s.operation,
                s.sequence_number
            );
        }
        let last_seq = t.snapshots().last().unwrap().sequence_number;
        assert_eq!(rows_at(&t, None).await, model_at(last_seq));

        // pyiceberg reads every compaction snapshot and the final table the same way.
        let mut check: Vec<i64> = compaction_snapshots.clone();
        check.push(t.current_snapshot_id().unwrap());
        let seq_of: HashMap<i64, i64> = t
            .snapshots()
            .iter()
            .map(|s| (s.snapshot_id, s.sequence_number))
            .collect();
        for (id, rows) in env.py_snapshots("race", &check) {
            assert_eq!(rows, model_at(seq_of[&id]), "pyiceberg, snapshot {id}");
        }
    }
}

mod expiry {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Append(u8),
        Merge(Vec<u8>),
        Delete(u8),
        OverwriteAll(u8),
        Compact,
        Tag,
        /// retain_last, cut-off (index into the snapshots, newest = 0; None = now), clean.
        Expire(usize, Option<usize>, bool),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1u8..6).prop_map(Op::Append),
            3 => proptest::collection::vec(0u8..40, 1..4).prop_map(Op::Merge),
            1 => (0u8..40).prop_map(Op::Delete),
            1 => (1u8..4).prop_map(Op::OverwriteAll),
            2 => Just(Op::Compact),
            1 => Just(Op::Tag),
            3 => (1usize..4, proptest::option::of(0usize..6), any::<bool>()).prop_map(|(r, c, k)| Op::Expire(r, c, k)),
        ]
    }

    async fn run(ops: Vec<Op>) {
        let env = Env::new().await;
        let mut t = Table::create(env.cat(), TableIdent::new("ns", "h"), kv_definition(false))
            .await
            .unwrap();
        let mut model: BTreeMap<i64, String> = BTreeMap::new();
        // Expected rows of every snapshot ever committed, and the tags.
        let mut at: HashMap<i64, BTreeMap<i64, String>> = HashMap::new();
        let mut tags: Vec<i64> = Vec::new();
        let mut next = 1000i64;
        for (step, op) in ops.into_iter().enumerate() {
            let tag = format!("s{step}");
            match op {
                Op::Append(n) => {
                    let rows: Vec<(i64, String)> = (0..n)
                        .map(|_| {
                            next += 1;
                            (next, format!("a{step}"))
                        })
                        .collect();
                    t.append(&[kv(&rows)], SchemaEvolution::default()).await.unwrap();
                    model.extend(rows);
                }
                Op::Merge(keys) => {
                    let rows: Vec<(i64, String)> = keys
                        .iter()
                        .map(|k| (i64::from(*k), format!("m{step}")))
                        .collect::<BTreeMap<_, _>>()
                        .into_iter()
                        .collect();
                    t.merge(&[kv(&rows)], &MergeOptions::on(["id"])).await.unwrap();
                    model.extend(rows);
                }
                Op::Delete(k) => {
                    t.delete_where(&format!("id = {k}")).await.unwrap();
                    model.remove(&i64::from(k));
                }
                Op::OverwriteAll(n) => {
                    let rows: Vec<(i64, String)> = (0..i64::from(n)).map(|k| (k, format!("o{step}"))).collect();
                    t.overwrite(&[kv(&rows)], OverwriteMode::All, SchemaEvolution::default())
                        .await
                        .unwrap();
                    model = rows.into_iter().collect();
                }
                Op::Compact => {
                    let plan = CompactionPlan::build(&t, &small_files()).await.unwrap();
                    let out = plan.execute(&mut t).await.unwrap();
                    assert_eq!(out.groups_aborted, 0);
                    // One snapshot per group, each with the same rows.
                    for id in &out.snapshot_ids {
                        at.insert(*id, model.clone());
                    }
                }
                Op::Tag => {
                    if let Some(id) = t.current_snapshot_id() {
                        t.set_tag(&tag, id).await.unwrap();
                        tags.push(id);
                    }
                }
                Op::Expire(retain_last, cutoff, clean) => {
                    let snaps = t.snapshots();
                    let older_than_ms = match cutoff {
                        None => chrono::Utc::now().timestamp_millis() + 1,
                        Some(i) => snaps.iter().rev().nth(i).map(|s| s.timestamp_ms).unwrap_or(0),
                    };
                    let opts = ExpireOptions {
                        older_than_ms,
                        retain_last,
                        clean_expired_files: clean,
                    };
                    let plan = ExpiryPlan::build(&t, &opts).await.unwrap();
                    let disk_before = files_under(&env.table_dir("h"));
                    let out = plan.execute(&mut t).await.unwrap();
                    let disk_after = files_under(&env.table_dir("h"));
                    assert_eq!(out.snapshots_expired, plan.expired.len());
                    // Exactly the planned files are gone (plus nothing else); the new metadata
                    // file is the only addition.
                    let gone: BTreeSet<PathBuf> = disk_before.difference(&disk_after).cloned().collect();
                    let planned: BTreeSet<PathBuf> = plan.files.iter().map(|f| local(&f.path)).collect();
                    assert_eq!(gone, planned, "deleted files differ from the plan");
                    if !clean {
                        assert!(gone.is_empty());
                    }
                    let new: Vec<_> = disk_after.difference(&disk_before).collect();
                    assert!(
                        new.len() <= 1 && new.iter().all(|p| p.to_string_lossy().ends_with(".metadata.json")),
                        "{new:?}"
                    );
                    // Retained: the current snapshot, every tag, the last `retain_last` ancestors.
                    let remaining: BTreeSet<i64> = t.snapshots().iter().map(|s| s.snapshot_id).collect();
                    for id in &tags {
                        assert!(remaining.contains(id), "tagged snapshot {id} expired");
                    }
                    let mut cursor = t.current_snapshot_id();
                    for _ in 0..retain_last {
                        // An ancestor an earlier expiry removed ends the chain.
                        let Some(id) = cursor.filter(|id| snaps.iter().any(|s| s.snapshot_id == *id)) else {
                            break;
                        };
                        assert!(remaining.contains(&id), "ancestor {id} within retain_last expired");
                        cursor = snaps.iter().find(|s| s.snapshot_id == id).and_then(|s| s.parent_id);
                    }
                    for s in &snaps {
                        if s.timestamp_ms >= older_than_ms {
                            assert!(
                                remaining.contains(&s.snapshot_id),
                                "a snapshot newer than the cut-off expired"
                            );
                        }
                    }
                }
            }
            if let Some(id) = t.current_snapshot_id() {
                at.entry(id).or_insert_with(|| model.clone());
            }
            // Every retained snapshot still reads exactly as when it was committed: no file it
            // reaches was deleted.
            for s in t.snapshots() {
                let expected = at
                    .get(&s.snapshot_id)
                    .cloned()
                    .unwrap_or_else(|| panic!("snapshot {} has no recorded state", s.snapshot_id));
                assert_eq!(
                    rows_at(&t, Some(s.snapshot_id)).await,
                    expected,
                    "snapshot {}",
                    s.snapshot_id
                );
            }
        }
        if let Some(id) = t.current_snapshot_id() {
            let py = env.py_snapshots("h", &[id]);
            assert_eq!(py[&id], model);
        }
    }

    /// Found by the property test on CI: an overwrite's manifest keeps DELETED entries for the
    /// files it replaced; once the snapshot that had them live expired (and took them along),
    /// a later expiry of the overwrite must not plan them again.
    #[test]
    fn expiring_an_overwrite_does_not_replan_files_an_earlier_expiry_deleted() {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(vec![
                Op::Append(1),
                Op::OverwriteAll(1),
                Op::Expire(1, None, true),
                Op::Append(1),
                Op::Append(1),
                Op::Expire(1, None, true),
            ]));
    }

    proptest! {
        // 24 random histories per CI run (~25 s); PROPTEST_CASES=500 explores further locally.
        // A failure prints its minimal history: add it as a named test like the one above.
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn expiry_never_deletes_a_file_reachable_from_a_retained_snapshot(ops in proptest::collection::vec(op(), 4..14)) {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(run(ops));
        }
    }
}

mod orphans {
    use super::*;

    /// A catalog whose commits never land: the writer is "killed" after writing its files.
    #[derive(Debug)]
    struct NeverCommits(Arc<SqliteCatalog>);

    #[async_trait]
    impl Catalog for NeverCommits {
        fn name(&self) -> &str {
            self.0.name()
        }
        fn warehouse(&self) -> &str {
            self.0.warehouse()
        }
        fn file_io(&self) -> &iceberg::io::FileIO {
            self.0.file_io()
        }
        async fn create_namespace(&self, n: &str) -> Result<()> {
            self.0.create_namespace(n).await
        }
        async fn list_namespaces(&self) -> Result<Vec<String>> {
            self.0.list_namespaces().await
        }
        async fn list_tables(&self, n: &str) -> Result<Vec<TableIdent>> {
            self.0.list_tables(n).await
        }
        async fn metadata_location(&self, i: &TableIdent) -> Result<Option<String>> {
            self.0.metadata_location(i).await
        }
        async fn register_table(&self, i: &TableIdent, l: &str) -> Result<()> {
            self.0.register_table(i, l).await
        }
        async fn swap_metadata_location(&self, _: &TableIdent, _: &str, _: &str) -> Result<bool> {
            Ok(false)
        }
        async fn drop_table(&self, i: &TableIdent) -> Result<bool> {
            self.0.drop_table(i).await
        }
    }

    /// Files a writer that never commits leaves behind.
    async fn failed_write(env: &Env, rows: &[(i64, String)]) -> BTreeSet<PathBuf> {
        let before = files_under(&env.table_dir("o"));
        let cat: Arc<dyn Catalog> = Arc::new(NeverCommits(env.catalog.clone()));
        let mut w = Table::load(cat, TableIdent::new("ns", "o")).await.unwrap();
        let err = w.append(&[kv(rows)], SchemaEvolution::default()).await.unwrap_err();
        assert!(err.is_conflict(), "{err}");
        files_under(&env.table_dir("o")).difference(&before).cloned().collect()
    }

    fn age(path: &Path, by: Duration) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(SystemTime::now() - by).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keeps_in_flight_files_removes_old_debris_and_dry_run_deletes_nothing() {
        let env = Env::new().await;
        let mut t = Table::create(
            env.cat(),
            TableIdent::new("ns", "o"),
            // No retries: a failed commit gives up at once.
            kv_definition(false).property("commit.retry.num-retries", "0"),
        )
        .await
        .unwrap();
        let rows: Vec<(i64, String)> = (0..9).map(|k| (k, "v".to_string())).collect();
        t.append(&[kv(&rows)], SchemaEvolution::default()).await.unwrap();
        t.merge(&[kv(&[(1, "w".into())])], &MergeOptions::on(["id"]))
            .await
            .unwrap();
        let debris = failed_write(&env, &[(100, "killed".into())]).await;
        assert!(debris.iter().any(|p| p.extension().is_some_and(|e| e == "parquet")));
        assert!(debris.iter().any(|p| p.to_string_lossy().ends_with(".metadata.json")));
        // Everything so far, referenced or not, is four days old.
        for p in files_under(&env.table_dir("o")) {
            age(&p, Duration::from_secs(4 * 24 * 3600));
        }
        // A write in flight right now: its files are young and unreferenced.
        let in_flight = failed_write(&env, &[(200, "in flight".into())]).await;
        assert!(!in_flight.is_empty());
        // A sibling table whose name extends ours must never be listed.
        let sibling = env.table_dir("o_other").join("data/x.parquet");
        std::fs::create_dir_all(sibling.parent().unwrap()).unwrap();
        std::fs::write(&sibling, b"not ours").unwrap();
        age(&sibling, Duration::from_secs(10 * 24 * 3600));

        let disk = files_under(&env.table_dir("o"));
        let plan = OrphanPlan::build(&t, &LocalLister, &OrphanOptions::default())
            .await
            .unwrap();
        let planned: BTreeSet<PathBuf> = plan.orphans.iter().map(|f| local(&f.path)).collect();
        assert_eq!(planned, debris, "exactly the killed writer's files are orphans");
        assert_eq!(plan.files_too_young, in_flight.len());
        assert_eq!(plan.files_listed, disk.len());
        assert_eq!(plan.bytes, plan.orphans.iter().map(|f| f.bytes).sum::<u64>());
        assert_eq!(
            files_under(&env.table_dir("o")),
            disk,
            "a plan (dry run) deletes nothing"
        );

        let out = plan.execute(&mut t, &LocalLister).await.unwrap();
        assert_eq!(out.files_deleted, debris.len());
        let left = files_under(&env.table_dir("o"));
        assert!(debris.iter().all(|p| !left.contains(p)));
        assert!(
            in_flight.iter().all(|p| left.contains(p)),
            "in-flight files must survive"
        );
        assert!(sibling.exists());
        let mut expected: BTreeMap<i64, String> = rows.into_iter().collect();
        expected.insert(1, "w".into());
        assert_eq!(rows_at(&t, None).await, expected);
        let id = t.current_snapshot_id().unwrap();
        assert_eq!(env.py_snapshots("o", &[id])[&id], expected);
        // Every snapshot is still readable (their metadata and manifests were referenced).
        for s in t.snapshots() {
            rows_at(&t, Some(s.snapshot_id)).await;
        }
    }
}

mod unsafe_settings {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unsafe_settings_are_refused_with_a_clear_message() {
        let env = Env::new().await;
        let mut t = Table::create(env.cat(), TableIdent::new("ns", "u"), kv_definition(false))
            .await
            .unwrap();
        t.append(&[kv(&[(1, "a".into())])], SchemaEvolution::default())
            .await
            .unwrap();
        let err = ExpiryPlan::build(
            &t,
            &ExpireOptions {
                older_than_ms: i64::MAX,
                retain_last: 0,
                clean_expired_files: true,
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Unsafe { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("ns.u") && msg.contains("retain_last") && msg.contains("at least 1"),
            "{msg}"
        );

        let err = OrphanPlan::build(&t, &LocalLister, &OrphanOptions::new(Duration::from_secs(3600)))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unsafe { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("1-day floor") && msg.contains("1.0 hours") && msg.contains("force"),
            "{msg}"
        );

        // Forced, it runs (and the table's own files are all referenced).
        let forced = OrphanOptions {
            older_than: Duration::from_secs(3600),
            force: true,
        };
        let plan = OrphanPlan::build(&t, &LocalLister, &forced).await.unwrap();
        assert!(plan.is_empty(), "{plan:?}");
    }
}
