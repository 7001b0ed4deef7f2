//! Integration tests of the table engine. One test binary (the stack is slow to link), with
//! modules per concern. pyiceberg 0.12 is the independent judge of what we write.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;
use mesh_iceberg::*;
use serde_json::{json, Value};

struct Env {
    dir: tempfile::TempDir,
    catalog: Arc<SqliteCatalog>,
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

    fn db(&self) -> PathBuf {
        self.dir.path().join("catalog.db")
    }

    fn warehouse(&self) -> String {
        wh(self.dir.path())
    }

    fn cat(&self) -> Arc<dyn Catalog> {
        self.catalog.clone()
    }

    async fn create(&self, name: &str, def: TableDefinition) -> Table {
        Table::create(self.cat(), TableIdent::new("ns", name), def)
            .await
            .unwrap()
    }

    fn py(&self, args: &[&str]) -> Value {
        let python = std::env::var("MESH_PYTHON").unwrap_or_else(|_| {
            panic!(
                "MESH_PYTHON is not set: the pyiceberg interop tests need it. Run scripts/test.sh \
                 (it creates a venv from tests/python/requirements.txt and exports MESH_PYTHON)"
            )
        });
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/iceberg_probe.py");
        let db = self.db();
        let wh = self.warehouse();
        let mut full = vec![args[0], db.to_str().unwrap(), wh.as_str(), "mesh"];
        full.extend_from_slice(&args[1..]);
        let out = Command::new(&python).arg(&script).args(&full).output().unwrap();
        assert!(
            out.status.success(),
            "pyiceberg probe failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// What pyiceberg sees of `ns.{name}`.
    fn py_read(&self, name: &str) -> Value {
        let mut v = self.py(&["read", &format!("ns.{name}")]);
        // Same order as `rows_json`, independent of Python's JSON spacing.
        if let Some(rows) = v["rows"].as_array_mut() {
            rows.sort_by_key(|r| r.to_string());
        }
        v
    }
}

fn wh(dir: &Path) -> String {
    format!("file://{}/warehouse", dir.display())
}

fn schema(fields: Vec<Field>) -> SchemaRef {
    Arc::new(Schema::new(fields))
}

fn id_val_schema() -> SchemaRef {
    schema(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("val", DataType::Utf8, true),
    ])
}

fn id_val(rows: &[(i64, &str)]) -> RecordBatch {
    RecordBatch::try_new(
        id_val_schema(),
        vec![
            Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
        ],
    )
    .unwrap()
}

fn id_val_json(rows: &[(i64, &str)]) -> Value {
    let mut v: Vec<Value> = rows.iter().map(|(i, s)| json!({"id": i, "val": s})).collect();
    v.sort_by_key(|r| r.to_string());
    Value::Array(v)
}

fn scalar_json(v: ScalarValue) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    match v {
        ScalarValue::Int8(Some(x)) => json!(x),
        ScalarValue::Int16(Some(x)) => json!(x),
        ScalarValue::Int32(Some(x)) => json!(x),
        ScalarValue::Int64(Some(x)) => json!(x),
        ScalarValue::Float32(Some(x)) => json!(x),
        ScalarValue::Float64(Some(x)) => json!(x),
        ScalarValue::Boolean(Some(x)) => json!(x),
        ScalarValue::Utf8(Some(x)) | ScalarValue::LargeUtf8(Some(x)) | ScalarValue::Utf8View(Some(x)) => json!(x),
        ScalarValue::Date32(Some(d)) => {
            json!((chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(d as i64)).to_string())
        }
        other => json!(other.to_string()),
    }
}

/// Rows as sorted JSON objects (the probe's format).
fn rows_json(batches: &[RecordBatch]) -> Value {
    let mut out = Vec::new();
    for b in batches {
        for i in 0..b.num_rows() {
            let mut obj = serde_json::Map::new();
            for (f, c) in b.schema().fields().iter().zip(b.columns()) {
                obj.insert(
                    f.name().clone(),
                    scalar_json(ScalarValue::try_from_array(c, i).unwrap()),
                );
            }
            out.push(Value::Object(obj));
        }
    }
    out.sort_by_key(|r| r.to_string());
    Value::Array(out)
}

async fn our_rows(t: &Table) -> Value {
    rows_json(&t.scan(&ScanOptions::default()).await.unwrap().batches)
}

fn last_summary(py: &Value) -> Value {
    let snaps = py["snapshots"].as_array().unwrap();
    snaps
        .iter()
        .max_by_key(|s| s["sequence_number"].as_i64().unwrap())
        .unwrap()["summary"]
        .clone()
}

fn count_files(dir: &Path, ext: &str) -> usize {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                n += count_files(&p, ext);
            } else if p.to_string_lossy().ends_with(ext) {
                n += 1;
            }
        }
    }
    n
}

mod interop {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn append_overwrite_delete_merge_are_read_by_pyiceberg() {
        let env = Env::new().await;
        let mut t = env.create("t", TableDefinition::new(id_val_schema())).await;

        t.append(&[id_val(&[(1, "a"), (2, "b"), (3, "c")])], SchemaEvolution::default())
            .await
            .unwrap();
        let py = env.py_read("t");
        assert_eq!(py["rows"], id_val_json(&[(1, "a"), (2, "b"), (3, "c")]));
        let s = last_summary(&py);
        assert_eq!(s["operation"], "append");
        assert_eq!(s["added-records"], "3");
        assert_eq!(s["total-records"], "3");
        assert_eq!(s["total-data-files"], "1");

        t.append(&[id_val(&[(4, "d")])], SchemaEvolution::default())
            .await
            .unwrap();
        let merged = t
            .merge(&[id_val(&[(2, "B"), (5, "e")])], &MergeOptions::on(["id"]))
            .await
            .unwrap();
        assert_eq!((merged.inserted, merged.updated, merged.deleted), (1, 1, 0));
        // Key 2 lives only in the first file: the file holding 4 must not be rewritten.
        assert_eq!(merged.files_rewritten, 1);
        let expected = [(1, "a"), (2, "B"), (3, "c"), (4, "d"), (5, "e")];
        let py = env.py_read("t");
        assert_eq!(py["rows"], id_val_json(&expected));
        assert_eq!(our_rows(&t).await, id_val_json(&expected));
        let s = last_summary(&py);
        assert_eq!(s["operation"], "overwrite");
        assert_eq!(s["deleted-data-files"], "1");
        assert_eq!(s["deleted-records"], "3");
        assert_eq!(s["added-records"], "4");
        assert_eq!(s["total-records"], "5");
        assert_eq!(s["total-data-files"], "2");
        // Entry statuses of the merge snapshot: 0 existing, 1 added, 2 deleted.
        let statuses: Vec<i64> = py["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["status"].as_i64().unwrap())
            .collect();
        assert!(statuses.contains(&1) && statuses.contains(&2), "{statuses:?}");

        let d = t.delete_where("id = 3").await.unwrap();
        assert_eq!(d.removed_files, 1);
        let expected = [(1, "a"), (2, "B"), (4, "d"), (5, "e")];
        assert_eq!(env.py_read("t")["rows"], id_val_json(&expected));

        t.overwrite(
            &[id_val(&[(9, "z")])],
            OverwriteMode::Filter("id >= 4".into()),
            SchemaEvolution::default(),
        )
        .await
        .unwrap();
        let expected = [(1, "a"), (2, "B"), (9, "z")];
        assert_eq!(env.py_read("t")["rows"], id_val_json(&expected));
        assert_eq!(our_rows(&t).await, id_val_json(&expected));

        t.overwrite(&[id_val(&[(7, "x")])], OverwriteMode::All, SchemaEvolution::default())
            .await
            .unwrap();
        let py = env.py_read("t");
        assert_eq!(py["rows"], id_val_json(&[(7, "x")]));
        assert_eq!(last_summary(&py)["total-records"], "1");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn partitioned_append_and_dynamic_overwrite() {
        let env = Env::new().await;
        let s = schema(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("country", DataType::Utf8, true),
            Field::new("day", DataType::Date32, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("ts2", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("d2", DataType::Date32, true),
        ]);
        let def = TableDefinition::new(s.clone())
            .partition(PartitionField::new("country", PartitionTransform::Identity))
            .partition(PartitionField::new("day", PartitionTransform::Month))
            .partition(PartitionField::new("id", PartitionTransform::Bucket(4)))
            .partition(PartitionField::new("ts", PartitionTransform::Hour))
            .partition(PartitionField::new("ts2", PartitionTransform::Day))
            .partition(PartitionField::new("d2", PartitionTransform::Year));
        let mut t = env.create("p", def).await;
        let batch = |ids: Vec<i64>, c: Vec<&str>, days: Vec<i32>| {
            let n = ids.len();
            RecordBatch::try_new(
                s.clone(),
                vec![
                    Arc::new(Int64Array::from(ids)) as ArrayRef,
                    Arc::new(StringArray::from(c)),
                    Arc::new(Date32Array::from(days.clone())),
                    Arc::new(TimestampMicrosecondArray::from(vec![1_700_000_000_000_000i64; n])),
                    Arc::new(TimestampMicrosecondArray::from(vec![1_700_000_000_000_000i64; n])),
                    Arc::new(Date32Array::from(days)),
                ],
            )
            .unwrap()
        };
        let r = t
            .append(
                &[batch(
                    vec![1, 2, 3, 4],
                    vec!["FR", "FR", "DE", "DE"],
                    vec![19000, 19000, 19000, 19100],
                )],
                SchemaEvolution::default(),
            )
            .await
            .unwrap();
        assert!(r.added_files >= 3, "fan-out by partition: {r:?}");
        let files = t.files(None).await.unwrap();
        assert!(files
            .iter()
            .all(|f| f.partition.contains_key("country") && f.partition.contains_key("day_month")));
        let py = env.py_read("p");
        let ids: Vec<i64> = py["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, vec![1, 2, 3, 4]);

        // Only FR rows of month 19000 are replaced; DE rows stay.
        t.overwrite(
            &[batch(vec![1], vec!["FR"], vec![19000])],
            OverwriteMode::DynamicPartitions,
            SchemaEvolution::default(),
        )
        .await
        .unwrap();
        let py = env.py_read("p");
        let mut ids: Vec<i64> = py["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect();
        ids.sort();
        // Rows 1 and 2 are in FR/month but in different id buckets: only the bucket of id 1
        // is a partition present in the new data.
        let out = t.scan(&ScanOptions::default()).await.unwrap();
        let ours = rows_json(&out.batches);
        assert_eq!(ours.as_array().unwrap().len(), ids.len());
        assert!(ids.contains(&1) && ids.contains(&3) && ids.contains(&4), "{ids:?}");

        // Pruning by identity partition: a filter on country reads only DE files.
        let de = t
            .scan(&ScanOptions {
                filter: Some("country = 'DE'".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(de.num_rows(), 2);
        assert!(
            de.files_scanned < de.files_total,
            "{} of {}",
            de.files_scanned,
            de.files_total
        );

        // Merge into one partition reads only files of that partition.
        let files_before = t.files(None).await.unwrap();
        let r = t
            .merge(
                &[batch(vec![3], vec!["DE"], vec![19000])],
                &MergeOptions::on(["country", "id"]),
            )
            .await
            .unwrap();
        assert_eq!(
            (r.updated, r.inserted, r.files_read, r.files_rewritten),
            (1, 0, 1, 1),
            "{r:?}"
        );
        let files_after = t.files(None).await.unwrap();
        assert_eq!(files_after.len(), files_before.len());
        assert_eq!(
            env.py_read("p")["rows"].as_array().unwrap().len(),
            ours.as_array().unwrap().len()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn files_roll_at_the_target_size() {
        let env = Env::new().await;
        let def = TableDefinition::new(id_val_schema()).property("write.target-file-size-bytes", "1");
        let mut t = env.create("big", def).await;
        let rows: Vec<(i64, String)> = (0..20_000).map(|i| (i, format!("v{i}"))).collect();
        let refs: Vec<(i64, &str)> = rows.iter().map(|(i, v)| (*i, v.as_str())).collect();
        let r = t.append(&[id_val(&refs)], SchemaEvolution::default()).await.unwrap();
        assert_eq!(r.added_files, 3, "{r:?}");
        assert_eq!(r.added_records, 20_000);
        let py = env.py_read("big");
        assert_eq!(py["rows"].as_array().unwrap().len(), 20_000);
        assert_eq!(last_summary(&py)["added-data-files"], "3");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pyiceberg_appends_are_read_back_and_merged() {
        let env = Env::new().await;
        let mut t = env.create("x", TableDefinition::new(id_val_schema())).await;
        t.append(&[id_val(&[(1, "a")])], SchemaEvolution::default())
            .await
            .unwrap();
        env.py(&["append", "ns.x", r#"[{"id": 2, "val": "py"}, {"id": 3, "val": null}]"#]);
        t.refresh().await.unwrap();
        let rows = our_rows(&t).await;
        assert_eq!(
            rows,
            json!([{"id": 1, "val": "a"}, {"id": 2, "val": "py"}, {"id": 3, "val": null}])
        );
        t.merge(&[id_val(&[(3, "c")])], &MergeOptions::on(["id"]))
            .await
            .unwrap();
        assert_eq!(env.py_read("x")["rows"], id_val_json(&[(1, "a"), (2, "py"), (3, "c")]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn add_column_is_visible_before_the_next_snapshot() {
        // TOOLING bug (3): iceberg 0.10.1 scans use the snapshot's schema until the next snapshot.
        let env = Env::new().await;
        let mut t = env.create("e", TableDefinition::new(id_val_schema())).await;
        t.append(&[id_val(&[(1, "a")])], SchemaEvolution::default())
            .await
            .unwrap();
        t.add_columns(&[("score".to_string(), DataType::Float64)])
            .await
            .unwrap();
        let reloaded = Table::load(env.cat(), TableIdent::new("ns", "e")).await.unwrap();
        let out = reloaded.scan(&ScanOptions::default()).await.unwrap();
        assert_eq!(out.schema.field(2).name(), "score");
        assert_eq!(rows_json(&out.batches), json!([{"id": 1, "score": null, "val": "a"}]));
        let py = env.py_read("e");
        assert_eq!(py["schema"], json!(["id", "val", "score"]));

        // Writing with an extra column evolves the schema only when allowed.
        let wide = RecordBatch::try_new(
            schema(vec![
                Field::new("id", DataType::Int64, false),
                Field::new("val", DataType::Utf8, true),
                Field::new("score", DataType::Float64, true),
                Field::new("tag", DataType::Utf8, true),
            ]),
            vec![
                Arc::new(Int64Array::from(vec![2])),
                Arc::new(StringArray::from(vec!["b"])),
                Arc::new(Float64Array::from(vec![0.5])),
                Arc::new(StringArray::from(vec!["new"])),
            ],
        )
        .unwrap();
        let mut t = reloaded;
        let err = t
            .append(std::slice::from_ref(&wide), SchemaEvolution::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Schema { ref column, .. } if column == "tag"),
            "{err}"
        );
        t.append(&[wide], SchemaEvolution::permissive()).await.unwrap();
        let py = env.py_read("e");
        assert_eq!(
            py["rows"],
            json!([
                {"id": 1, "score": null, "tag": null, "val": "a"},
                {"id": 2, "score": 0.5, "tag": "new", "val": "b"}
            ])
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn int64_source_into_int32_partition_field() {
        // TOOLING bug (1): computed Int64 data into an Int32 partition source column.
        let env = Env::new().await;
        let s = schema(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("part", DataType::Int32, true),
        ]);
        let def = TableDefinition::new(s)
            .partition(PartitionField::new("part", PartitionTransform::Identity))
            .partition(PartitionField::new("id", PartitionTransform::Truncate(10)));
        let mut t = env.create("b1", def).await;
        let ids = Int64Array::from(vec![1, 2, 13]);
        let part = arrow::compute::kernels::numeric::mul(&ids, &Int64Array::new_scalar(100)).unwrap();
        let input = RecordBatch::try_new(
            schema(vec![
                Field::new("part", DataType::Int64, false),
                Field::new("id", DataType::Int64, false),
            ]),
            vec![part, Arc::new(ids)],
        )
        .unwrap();
        t.append(&[input], SchemaEvolution::default()).await.unwrap();
        let py = env.py_read("b1");
        assert_eq!(
            py["rows"],
            json!([{"id": 1, "part": 100}, {"id": 13, "part": 1300}, {"id": 2, "part": 200}])
        );
        // Values that do not fit are an error naming the column, never a silent wrap.
        let bad = RecordBatch::try_new(
            schema(vec![Field::new("id", DataType::Int64, false)]),
            vec![Arc::new(Int64Array::from(vec![i64::MAX]))],
        )
        .unwrap();
        let err = t
            .append(&[bad], SchemaEvolution::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("column id") && err.contains("Int64") && err.contains("Int32"),
            "{err}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn crash_before_commit_leaves_previous_snapshot() {
        #[derive(Debug)]
        struct CrashingCatalog(Arc<SqliteCatalog>);
        #[async_trait::async_trait]
        impl Catalog for CrashingCatalog {
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
                Err(Error::Io(std::io::Error::other(
                    "process killed before the catalog update",
                )))
            }
            async fn drop_table(&self, i: &TableIdent) -> Result<bool> {
                self.0.drop_table(i).await
            }
        }
        let env = Env::new().await;
        let mut t = env.create("c", TableDefinition::new(id_val_schema())).await;
        t.append(&[id_val(&[(1, "a")])], SchemaEvolution::default())
            .await
            .unwrap();
        let before = t.current_snapshot_id();
        let parquet_before = count_files(env.dir.path(), ".parquet");

        let crashing: Arc<dyn Catalog> = Arc::new(CrashingCatalog(env.catalog.clone()));
        let mut doomed = Table::load(crashing, TableIdent::new("ns", "c")).await.unwrap();
        assert!(doomed
            .append(&[id_val(&[(2, "lost")])], SchemaEvolution::default())
            .await
            .is_err());
        assert!(doomed
            .merge(&[id_val(&[(1, "lost")])], &MergeOptions::on(["id"]))
            .await
            .is_err());
        assert!(
            count_files(env.dir.path(), ".parquet") > parquet_before,
            "data files were written"
        );

        let reloaded = Table::load(env.cat(), TableIdent::new("ns", "c")).await.unwrap();
        assert_eq!(reloaded.current_snapshot_id(), before);
        assert_eq!(our_rows(&reloaded).await, id_val_json(&[(1, "a")]));
        let py = env.py_read("c");
        assert_eq!(py["rows"], id_val_json(&[(1, "a")]));
        assert_eq!(py["snapshots"].as_array().unwrap().len(), 1);
    }
}

mod semantics {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn merge_prunes_by_key_stats_and_handles_deletes_nulls_duplicates() {
        let env = Env::new().await;
        let s = schema(vec![
            Field::new("k1", DataType::Int64, true),
            Field::new("k2", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
            Field::new("op", DataType::Utf8, true),
        ]);
        let mk = |rows: Vec<(Option<i64>, Option<&str>, i64, &str)>| {
            RecordBatch::try_new(
                s.clone(),
                vec![
                    Arc::new(Int64Array::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())) as ArrayRef,
                    Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
                    Arc::new(Int64Array::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
                    Arc::new(StringArray::from(rows.iter().map(|r| r.3).collect::<Vec<_>>())),
                ],
            )
            .unwrap()
        };
        let mut t = env.create("m", TableDefinition::new(s.clone())).await;
        // Ten files with disjoint key ranges.
        for f in 0..10i64 {
            let rows: Vec<_> = (0..10).map(|i| (Some(f * 100 + i), Some("a"), 0, "U")).collect();
            t.append(&[mk(rows)], SchemaEvolution::default()).await.unwrap();
        }
        t.append(&[mk(vec![(None, Some("a"), 0, "U")])], SchemaEvolution::default())
            .await
            .unwrap();

        let mut opts = MergeOptions::on(["k1", "k2"]);
        opts.delete_when = Some("op = 'D'".into());
        let r = t
            .merge(
                &[mk(vec![
                    (Some(305), Some("a"), 1, "U"),
                    (Some(306), Some("a"), 1, "D"),
                    (Some(307), Some("b"), 1, "U"),
                    (None, Some("a"), 1, "U"),
                ])],
                &opts,
            )
            .await
            .unwrap();
        // Null-safe: the null key matched the existing null-key row.
        assert_eq!((r.inserted, r.updated, r.deleted), (1, 2, 1), "{r:?}");
        assert_eq!(r.files_rewritten, 2, "{r:?}");
        assert!(r.files_read <= 3, "key stats must prune: {r:?}");
        let out = t
            .scan(&ScanOptions {
                filter: Some("v = 1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(out.num_rows(), 3);
        assert_eq!(t.scan(&ScanOptions::default()).await.unwrap().num_rows(), 101 - 1 + 1);

        let dup = mk(vec![(Some(1), Some("a"), 1, "U"), (Some(1), Some("a"), 2, "U")]);
        let err = t
            .merge(std::slice::from_ref(&dup), &MergeOptions::on(["k1", "k2"]))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("k1=1"), "{err}");
        let mut latest = MergeOptions::on(["k1", "k2"]);
        latest.duplicates = DuplicateKeys::KeepLatestBy("v".into());
        t.merge(&[dup], &latest).await.unwrap();
        let one = t
            .scan(&ScanOptions {
                filter: Some("k1 = 1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            rows_json(&one.batches),
            json!([{"k1": 1, "k2": "a", "op": "U", "v": 2}])
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn merge_control_columns_stay_out_of_the_table() {
        let env = Env::new().await;
        let mut t = env.create("cdc", TableDefinition::new(id_val_schema())).await;
        t.append(&[id_val(&[(2, "old"), (3, "c")])], SchemaEvolution::default())
            .await
            .unwrap();
        let cdc = RecordBatch::try_new(
            schema(vec![
                Field::new("id", DataType::Int32, false),
                Field::new("val", DataType::Utf8, true),
                Field::new("op", DataType::Utf8, false),
                Field::new("lsn", DataType::Int64, false),
            ]),
            vec![
                Arc::new(Int32Array::from(vec![1, 1, 2, 1])),
                Arc::new(StringArray::from(vec!["a", "c", "x", "b"])),
                Arc::new(StringArray::from(vec!["U", "U", "D", "U"])),
                Arc::new(Int64Array::from(vec![1, 3, 1, 2])),
            ],
        )
        .unwrap();
        let mut opts = MergeOptions::on(["id"]);
        opts.duplicates = DuplicateKeys::KeepLatestBy("lsn".into());
        opts.delete_when = Some("op = 'D'".into());
        let r = t.merge(std::slice::from_ref(&cdc), &opts).await.unwrap();
        assert_eq!((r.inserted, r.updated, r.deleted), (1, 0, 1), "{r:?}");
        assert_eq!(t.info().schema.len(), 2, "control columns must not be added");
        let py = env.py_read("cdc");
        assert_eq!(py["rows"], id_val_json(&[(1, "c"), (3, "c")]));
        assert_eq!(py["schema"], json!(["id", "val"]));

        // The same events one per batch: duplicates are decided across batches alike.
        let mut split = env.create("cdc_split", TableDefinition::new(id_val_schema())).await;
        split
            .append(&[id_val(&[(2, "old"), (3, "c")])], SchemaEvolution::default())
            .await
            .unwrap();
        let batches: Vec<RecordBatch> = (0..cdc.num_rows()).map(|i| cdc.slice(i, 1)).collect();
        let r = split.merge(&batches, &opts).await.unwrap();
        assert_eq!((r.inserted, r.updated, r.deleted), (1, 0, 1), "{r:?}");
        assert_eq!(env.py_read("cdc_split")["rows"], id_val_json(&[(1, "c"), (3, "c")]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replace_keeps_rows_and_time_travel_reads_old_snapshots() {
        let env = Env::new().await;
        let mut t = env.create("r", TableDefinition::new(id_val_schema())).await;
        let a = t
            .append(&[id_val(&[(1, "a")])], SchemaEvolution::default())
            .await
            .unwrap();
        t.append(&[id_val(&[(2, "b")])], SchemaEvolution::default())
            .await
            .unwrap();
        let paths: Vec<String> = t.files(None).await.unwrap().into_iter().map(|f| f.path).collect();
        assert_eq!(paths.len(), 2);
        let r = t.rewrite_files(&paths).await.unwrap();
        assert_eq!(r.operation.as_deref(), Some("replace"));
        assert_eq!((r.added_files, r.removed_files), (1, 2));
        assert_eq!(our_rows(&t).await, id_val_json(&[(1, "a"), (2, "b")]));
        let first = t.files(None).await.unwrap()[0].path.clone();
        let err = t.replace(&[first], &[]).await.unwrap_err();
        assert!(err.to_string().contains("same rows"), "{err}");

        let old = t
            .scan(&ScanOptions {
                snapshot_id: a.snapshot_id,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rows_json(&old.batches), id_val_json(&[(1, "a")]));
        let ts = t.snapshots()[0].timestamp_ms;
        let old = t
            .scan(&ScanOptions {
                as_of_timestamp_ms: Some(ts),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(old.snapshot_id, a.snapshot_id);
        assert!(t
            .scan(&ScanOptions {
                as_of_timestamp_ms: Some(ts - 3_600_000),
                ..Default::default()
            })
            .await
            .is_err());

        let info = t.info();
        assert_eq!(info.total_records, Some(2));
        assert_eq!(info.schema.len(), 2);
        assert_eq!(t.history().len(), 3);
        let js = serde_json::to_value(t.snapshots()).unwrap();
        assert_eq!(js[2]["operation"], "replace");
        let py = env.py_read("r");
        assert_eq!(last_summary(&py)["operation"], "replace");
        assert_eq!(py["rows"], id_val_json(&[(1, "a"), (2, "b")]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stale_writers_rebase_or_conflict() {
        let env = Env::new().await;
        let mut t = env.create("s", TableDefinition::new(id_val_schema())).await;
        t.append(&[id_val(&[(1, "a"), (2, "b")])], SchemaEvolution::default())
            .await
            .unwrap();
        t.append(&[id_val(&[(100, "x")])], SchemaEvolution::default())
            .await
            .unwrap();
        let ident = TableIdent::new("ns", "s");
        let mut stale1 = Table::load(env.cat(), ident.clone()).await.unwrap();
        let mut stale2 = Table::load(env.cat(), ident.clone()).await.unwrap();
        let mut stale3 = Table::load(env.cat(), ident.clone()).await.unwrap();

        t.merge(&[id_val(&[(1, "A")])], &MergeOptions::on(["id"]))
            .await
            .unwrap();
        // Same key, planned on the old state: must not overwrite the first merge.
        let err = stale1
            .merge(&[id_val(&[(1, "lost")])], &MergeOptions::on(["id"]))
            .await
            .unwrap_err();
        assert!(err.is_conflict(), "{err}");
        // Disjoint key in an untouched file: safely rebased.
        let ok = stale2
            .merge(&[id_val(&[(100, "X")])], &MergeOptions::on(["id"]))
            .await
            .unwrap();
        assert_eq!(ok.commit.attempts, 2);
        // Appends always rebase.
        stale3
            .append(&[id_val(&[(7, "g")])], SchemaEvolution::default())
            .await
            .unwrap();
        t.refresh().await.unwrap();
        assert_eq!(
            our_rows(&t).await,
            id_val_json(&[(1, "A"), (2, "b"), (7, "g"), (100, "X")])
        );

        // Overwrite by filter conflicts with a concurrent append that matches the filter.
        let mut stale4 = Table::load(env.cat(), ident.clone()).await.unwrap();
        t.append(&[id_val(&[(8, "h")])], SchemaEvolution::default())
            .await
            .unwrap();
        let err = stale4
            .overwrite(&[], OverwriteMode::Filter("id < 10".into()), SchemaEvolution::default())
            .await
            .unwrap_err();
        assert!(err.is_conflict(), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn errors_are_typed_and_name_the_fix() {
        let env = Env::new().await;
        let mut t = env.create("v", TableDefinition::new(id_val_schema())).await;
        let bad = RecordBatch::try_new(
            schema(vec![Field::new("id", DataType::Utf8, false)]),
            vec![Arc::new(StringArray::from(vec!["x"]))],
        )
        .unwrap();
        let err = t.append(&[bad], SchemaEvolution::permissive()).await.unwrap_err();
        assert!(matches!(err, Error::Schema { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("ns.v") && msg.contains("column id") && msg.contains("Utf8") && msg.contains("Int64"),
            "{msg}"
        );
        let err = t.delete_where("nope = 1").await.unwrap_err();
        assert!(
            matches!(err, Error::Invalid { .. }) && err.to_string().contains("nope"),
            "{err}"
        );
        let err = Table::load(env.cat(), TableIdent::new("ns", "missing"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TableNotFound { .. }), "{err}");
        let err = Table::create(
            env.cat(),
            TableIdent::new("ns", "v"),
            TableDefinition::new(id_val_schema()),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::TableAlreadyExists { .. }), "{err}");

        // int -> long widening.
        let s = schema(vec![Field::new("n", DataType::Int32, true)]);
        let mut w = env.create("w", TableDefinition::new(s)).await;
        let big = RecordBatch::try_new(
            schema(vec![Field::new("n", DataType::Int64, true)]),
            vec![Arc::new(Int64Array::from(vec![1i64 << 40]))],
        )
        .unwrap();
        assert!(w
            .append(std::slice::from_ref(&big), SchemaEvolution::default())
            .await
            .is_err());
        w.append(
            &[big],
            SchemaEvolution {
                add_columns: false,
                widen_types: true,
            },
        )
        .await
        .unwrap();
        assert_eq!(w.info().schema[0].r#type, "long");
        let small = RecordBatch::try_new(
            schema(vec![Field::new("n", DataType::Int32, true)]),
            vec![Arc::new(Int32Array::from(vec![5]))],
        )
        .unwrap();
        w.append(&[small], SchemaEvolution::default()).await.unwrap();
        assert_eq!(our_rows(&w).await, json!([{"n": 1099511627776i64}, {"n": 5}]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn datafusion_provider_prunes_and_filters() {
        let env = Env::new().await;
        let mut t = env.create("d", TableDefinition::new(id_val_schema())).await;
        t.append(&[id_val(&[(1, "a"), (2, "b")])], SchemaEvolution::default())
            .await
            .unwrap();
        t.append(&[id_val(&[(10, "c")])], SchemaEvolution::default())
            .await
            .unwrap();
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_table("d", t.table_provider(None).await.unwrap()).unwrap();
        let batches = ctx
            .sql("SELECT id, val FROM d WHERE id >= 2 ORDER BY id")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(rows_json(&batches), id_val_json(&[(2, "b"), (10, "c")]));
        let pruned = t
            .scan(&ScanOptions {
                filter: Some("id > 5".into()),
                columns: Some(vec!["val".into()]),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!((pruned.files_scanned, pruned.files_total), (1, 2));
        assert_eq!(rows_json(&pruned.batches), json!([{"val": "c"}]));
    }

    /// The provider streams: only projected columns, only files the filter can match (a
    /// pruned file may even be gone), a column added later reads as null, `count(*)` (an empty
    /// projection) counts every row, and the files are spread over DataFusion's partitions.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn datafusion_provider_projects_and_prunes_without_reading_pruned_files() {
        let env = Env::new().await;
        let mut t = env.create("s", TableDefinition::new(id_val_schema())).await;
        for chunk in [[(1, "a"), (2, "b")], [(10, "c"), (11, "d")], [(20, "e"), (21, "f")]] {
            t.append(&[id_val(&chunk)], SchemaEvolution::default()).await.unwrap();
        }
        t.add_columns(&[("score".to_string(), DataType::Float64)])
            .await
            .unwrap();
        let files = t.files(None).await.unwrap();
        assert_eq!(files.len(), 3);
        let ctx = datafusion::prelude::SessionContext::new_with_config(
            datafusion::prelude::SessionConfig::new().with_target_partitions(2),
        );
        ctx.register_table("s", t.table_provider(None).await.unwrap()).unwrap();
        let sql = |q: &'static str| {
            let ctx = ctx.clone();
            async move { rows_json(&ctx.sql(q).await.unwrap().collect().await.unwrap()) }
        };
        assert_eq!(sql("SELECT count(*) AS n FROM s").await, json!([{"n": 6}]));
        assert_eq!(
            sql("SELECT val, score FROM s WHERE id BETWEEN 2 AND 10 ORDER BY val").await,
            json!([{"val": "b", "score": null}, {"val": "c", "score": null}])
        );
        let plan = ctx
            .sql("SELECT val FROM s")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        assert_eq!(plan.properties().output_partitioning().partition_count(), 2);
        assert_eq!(plan.schema().fields().len(), 1);

        // The file holding ids 1 and 2 disappears: a query that prunes it still works, one
        // that needs it fails (so the first one really did not open it).
        let oldest = t.snapshots()[0].snapshot_id;
        let gone = files.iter().find(|f| f.added_snapshot_id == oldest).unwrap();
        std::fs::remove_file(gone.path.strip_prefix("file://").unwrap_or(&gone.path)).unwrap();
        assert_eq!(
            sql("SELECT id FROM s WHERE id >= 10 ORDER BY id").await,
            json!([{"id": 10}, {"id": 11}, {"id": 20}, {"id": 21}])
        );
        let err = ctx.sql("SELECT id FROM s").await.unwrap().collect().await;
        assert!(err.is_err(), "the removed file was not needed?");
    }
}

mod concurrency {
    use super::*;

    const WORKERS: usize = 4;
    const COMMITS: usize = 25;

    async fn worker(dir: &Path, w: usize) {
        let catalog: Arc<dyn Catalog> = Arc::new(
            SqliteCatalog::open("mesh", dir.join("catalog.db"), wh(dir))
                .await
                .unwrap(),
        );
        let mut t = Table::load(catalog, TableIdent::new("ns", "cc")).await.unwrap();
        let mut log = String::new();
        for i in 0..COMMITS {
            t.refresh().await.unwrap();
            let (op, rows): (&str, Vec<(i64, String)>) = if i % 2 == 0 {
                ("append", vec![(1000 * (w as i64 + 1) + i as i64, format!("w{w}-{i}"))])
            } else {
                let a = (i % 5) as i64;
                let b = ((i + w) % 5) as i64;
                let mut keys = vec![a];
                if b != a {
                    keys.push(b);
                }
                ("merge", keys.into_iter().map(|k| (k, format!("w{w}-{i}"))).collect())
            };
            let refs: Vec<(i64, &str)> = rows.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let res = if op == "append" {
                t.append(&[id_val(&refs)], SchemaEvolution::default()).await
            } else {
                t.merge(&[id_val(&refs)], &MergeOptions::on(["id"]))
                    .await
                    .map(|m| m.commit)
            };
            match res {
                Ok(c) => {
                    log.push_str(&json!({"seq": c.sequence_number, "op": op, "rows": rows}).to_string());
                    log.push('\n');
                }
                Err(e) if e.is_conflict() => {}
                Err(e) => panic!("worker {w}: unexpected error: {e}"),
            }
        }
        std::fs::write(dir.join(format!("worker-{w}.log")), log).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers_in_processes() {
        if let (Ok(w), Ok(dir)) = (std::env::var("MESH_ICEBERG_WORKER"), std::env::var("MESH_ICEBERG_DIR")) {
            worker(Path::new(&dir), w.parse().unwrap()).await;
            return;
        }
        let env = Env::new().await;
        let mut t = env.create("cc", TableDefinition::new(id_val_schema())).await;
        let seed: Vec<(i64, String)> = (0..5).map(|k| (k, "seed".to_string())).collect();
        let refs: Vec<(i64, &str)> = seed.iter().map(|(k, v)| (*k, v.as_str())).collect();
        t.append(&[id_val(&refs)], SchemaEvolution::default()).await.unwrap();

        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..WORKERS)
            .map(|w| {
                Command::new(&exe)
                    .args([
                        "concurrency::concurrent_writers_in_processes",
                        "--exact",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env("MESH_ICEBERG_WORKER", w.to_string())
                    .env("MESH_ICEBERG_DIR", env.dir.path())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success(), "a writer process failed");
        }

        // Model: apply every acknowledged commit once, in commit (sequence) order.
        let mut acked: Vec<Value> = Vec::new();
        for w in 0..WORKERS {
            let log = std::fs::read_to_string(env.dir.path().join(format!("worker-{w}.log"))).unwrap();
            acked.extend(log.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
        }
        acked.sort_by_key(|a| a["seq"].as_i64().unwrap());
        let seqs: std::collections::HashSet<i64> = acked.iter().map(|a| a["seq"].as_i64().unwrap()).collect();
        assert_eq!(
            seqs.len(),
            acked.len(),
            "two acknowledged commits share a sequence number"
        );
        let mut model: std::collections::BTreeMap<i64, String> = seed.into_iter().collect();
        let (mut appends, mut merges) = (0, 0);
        for a in &acked {
            if a["op"] == "append" {
                appends += 1;
            } else {
                merges += 1;
            }
            for r in a["rows"].as_array().unwrap() {
                model.insert(r[0].as_i64().unwrap(), r[1].as_str().unwrap().to_string());
            }
        }
        eprintln!(
            "acknowledged: {appends} appends, {merges} merges of {}",
            WORKERS * COMMITS
        );
        assert!(appends > 0 && merges > 0, "appends {appends}, merges {merges}");
        let expected: Vec<(i64, &str)> = model.iter().map(|(k, v)| (*k, v.as_str())).collect();
        t.refresh().await.unwrap();
        assert_eq!(our_rows(&t).await, id_val_json(&expected));
        assert_eq!(t.snapshots().len(), 1 + acked.len());
        assert_eq!(env.py_read("cc")["rows"], id_val_json(&expected));
    }
}

#[cfg(feature = "glue")]
mod glue {
    use super::*;
    use arrow::array::Array;

    /// moto server (with the VersionId fix) for the lifetime of a test.
    struct Moto {
        child: std::process::Child,
        port: u16,
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn moto() -> Moto {
        let python = std::env::var("MESH_PYTHON").unwrap_or_else(|_| {
            panic!("MESH_PYTHON is not set: run scripts/test.sh (venv from tests/python/requirements.txt, with moto)")
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/tools/moto_server_patched.py");
        let child = Command::new(python)
            .arg(script)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut m = Moto { child, port };
        // Readiness: the server accepts connections (bounded wait, not a timing assumption).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                m.child.try_wait().unwrap().is_none(),
                "moto server exited; is moto installed in MESH_PYTHON?"
            );
            assert!(std::time::Instant::now() < deadline, "moto server did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        m
    }

    /// meshkit's Glue client on the moto server, with moto's test credentials.
    fn glue_client(m: &Moto) -> mesh_iceberg::GlueClient {
        use aws_credential_types::{provider::SharedCredentialsProvider, Credentials};
        mesh_iceberg::GlueClient::new(
            "eu-west-1",
            Some(&format!("http://127.0.0.1:{}", m.port)),
            SharedCredentialsProvider::new(Credentials::new("test", "test", None, None, "static")),
        )
    }

    fn catalog(m: &Moto, dir: &Path) -> Arc<dyn Catalog> {
        Arc::new(GlueCatalog::new(
            "glue",
            glue_client(m),
            &wh(dir),
            iceberg::io::FileIO::new_with_fs(),
        ))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn glue_catalog_commits_with_version_checks() {
        let m = moto();
        let dir = tempfile::tempdir().unwrap();
        let cat = catalog(&m, dir.path());
        let ident = TableIdent::new("f01_refined", "orders");
        let mut t = Table::create(cat.clone(), ident.clone(), TableDefinition::new(id_val_schema()))
            .await
            .unwrap();
        assert!(matches!(
            Table::create(cat.clone(), ident.clone(), TableDefinition::new(id_val_schema())).await,
            Err(Error::TableAlreadyExists { .. })
        ));
        assert_eq!(cat.list_tables("f01_refined").await.unwrap(), vec![ident.clone()]);
        assert!(cat
            .list_namespaces()
            .await
            .unwrap()
            .contains(&"f01_refined".to_string()));

        t.append(&[id_val(&[(1, "a"), (2, "b")])], SchemaEvolution::default())
            .await
            .unwrap();
        t.append(&[id_val(&[(100, "x")])], SchemaEvolution::default())
            .await
            .unwrap();
        let mut stale1 = Table::load(cat.clone(), ident.clone()).await.unwrap();
        let mut stale2 = Table::load(cat.clone(), ident.clone()).await.unwrap();
        t.merge(&[id_val(&[(1, "A")])], &MergeOptions::on(["id"]))
            .await
            .unwrap();
        let err = stale1
            .merge(&[id_val(&[(1, "lost")])], &MergeOptions::on(["id"]))
            .await
            .unwrap_err();
        assert!(err.is_conflict(), "{err}");
        let ok = stale2
            .append(&[id_val(&[(7, "g")])], SchemaEvolution::default())
            .await
            .unwrap();
        assert_eq!(ok.attempts, 2);

        // A swap from a stale location is refused.
        let current = cat.metadata_location(&ident).await.unwrap().unwrap();
        assert!(!cat
            .swap_metadata_location(&ident, "file:///stale.metadata.json", "x")
            .await
            .unwrap());
        assert_eq!(cat.metadata_location(&ident).await.unwrap().unwrap(), current);

        let reloaded = Table::load(cat.clone(), ident.clone()).await.unwrap();
        assert_eq!(
            our_rows(&reloaded).await,
            id_val_json(&[(1, "A"), (2, "b"), (7, "g"), (100, "x")])
        );
        assert!(cat.drop_table(&ident).await.unwrap());
        assert!(matches!(
            Table::load(cat, ident).await,
            Err(Error::TableNotFound { .. })
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn glue_concurrent_appends_are_all_kept() {
        let m = moto();
        let dir = tempfile::tempdir().unwrap();
        let cat = catalog(&m, dir.path());
        let ident = TableIdent::new("f01_curated", "events");
        Table::create(cat.clone(), ident.clone(), TableDefinition::new(id_val_schema()))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for w in 0..4i64 {
            let cat = cat.clone();
            let ident = ident.clone();
            tasks.push(tokio::spawn(async move {
                let mut t = Table::load(cat, ident).await.unwrap();
                let mut acked = Vec::new();
                for i in 0..5i64 {
                    let id = w * 100 + i;
                    match t.append(&[id_val(&[(id, "v")])], SchemaEvolution::default()).await {
                        Ok(_) => acked.push(id),
                        Err(e) if e.is_conflict() => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                acked
            }));
        }
        let mut acked = Vec::new();
        for t in tasks {
            acked.extend(t.await.unwrap());
        }
        acked.sort();
        let t = Table::load(cat, ident).await.unwrap();
        let mut ids: Vec<i64> = t
            .scan(&ScanOptions::default())
            .await
            .unwrap()
            .batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        ids.sort();
        assert!(!acked.is_empty());
        assert_eq!(ids, acked);
    }

    /// Creates a bucket on the moto server with a plain path-style `PUT /{bucket}` (moto does
    /// not check signatures; object_store cannot create buckets).
    fn create_bucket(m: &Moto, bucket: &str) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", m.port)).unwrap();
        write!(
            s,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            m.port
        )
        .unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "CreateBucket {bucket}: {reply}");
    }

    fn s3_stores(m: &Moto) -> ObjectStores {
        let creds = object_store::StaticCredentialProvider::new(object_store::aws::AwsCredential {
            key_id: "test".into(),
            secret_key: "test".into(),
            token: None,
        });
        ObjectStores::new(
            S3Options {
                region: Some("eu-west-1".into()),
                endpoint: Some(format!("http://127.0.0.1:{}", m.port)),
                virtual_hosted_style: false,
            },
            Some(Arc::new(creds)),
        )
    }

    /// Iceberg metadata, manifests and data files through the object_store-backed FileIO on
    /// moto S3, with the Glue catalog of the same server: write, read back, overwrite, and
    /// find every file in the bucket where the metadata says it is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn s3_file_io_round_trips_tables() {
        use futures::TryStreamExt;
        use object_store::ObjectStore;
        let m = moto();
        create_bucket(&m, "f01-refined-dev");
        let stores = s3_stores(&m);
        let cat: Arc<dyn Catalog> = Arc::new(GlueCatalog::new(
            "glue",
            glue_client(&m),
            "s3://f01-refined-dev/pj01/iceberg",
            stores.file_io(),
        ));
        let ident = TableIdent::new("f01_refined", "orders");
        let mut def = TableDefinition::new(id_val_schema());
        def.location = Some("s3://f01-refined-dev/pj01/iceberg/orders".into());
        let mut t = Table::create(cat.clone(), ident.clone(), def).await.unwrap();
        t.append(&[id_val(&[(1, "a"), (2, "b")])], SchemaEvolution::default())
            .await
            .unwrap();
        t.merge(&[id_val(&[(2, "B"), (3, "c")])], &MergeOptions::on(["id"]))
            .await
            .unwrap();

        let reloaded = Table::load(cat.clone(), ident.clone()).await.unwrap();
        assert!(reloaded
            .metadata_location()
            .starts_with("s3://f01-refined-dev/pj01/iceberg/orders/metadata/"));
        assert_eq!(our_rows(&reloaded).await, id_val_json(&[(1, "a"), (2, "B"), (3, "c")]));

        // The files are in the bucket, under the table location, as the metadata lists them.
        let bucket = stores.bucket("f01-refined-dev").unwrap();
        let keys: Vec<String> = bucket
            .list(Some(&"pj01/iceberg/orders".into()))
            .map_ok(|o| o.location.to_string())
            .try_collect()
            .await
            .unwrap();
        assert!(keys.iter().any(|k| k.ends_with(".metadata.json")), "{keys:?}");
        assert!(
            keys.iter()
                .any(|k| k.contains("/metadata/snap-") && k.ends_with(".avro")),
            "{keys:?}"
        );
        let live = reloaded.files(None).await.unwrap();
        assert!(!live.is_empty());
        for f in &live {
            let key = f
                .path
                .strip_prefix("s3://f01-refined-dev/")
                .unwrap_or_else(|| panic!("{}", f.path));
            assert!(keys.iter().any(|k| k == key), "{key} not in {keys:?}");
        }

        // DataFusion over the same table, through the table provider.
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_table("orders", reloaded.table_provider(None).await.unwrap())
            .unwrap();
        let n = ctx
            .sql("SELECT count(*) AS n FROM orders WHERE id >= 2")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(rows_json(&n), json!([{"n": 2}]));

        // A missing object is reported as missing, not as an error (the engine's exists check).
        let io = stores.file_io();
        assert!(!io
            .exists("s3://f01-refined-dev/pj01/iceberg/orders/metadata/nope.json")
            .await
            .unwrap());
    }
}

/// Job state in snapshot summaries and incremental reads (bookmarks of incremental jobs).
mod state_and_increments {
    use super::*;
    use std::collections::BTreeMap;

    fn props(set: &[(&str, &str)], expect: &[(&str, Option<&str>)]) -> CommitProperties {
        CommitProperties {
            set: set.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            expect: expect
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[tokio::test]
    async fn state_commits_with_the_data_rides_forward_and_refuses_a_stale_expectation() {
        let env = Env::new().await;
        let mut t = env.create("state", TableDefinition::new(id_val_schema())).await;
        let key = "mesh.state.job.bookmark.raw.t";
        t.set_commit_properties(props(&[(key, "b1")], &[(key, None)]));
        t.append(&[id_val(&[(1, "a")])], SchemaEvolution::default())
            .await
            .unwrap();
        assert_eq!(t.summary_property(key).as_deref(), Some("b1"));

        // A commit of another writer carries the state forward.
        t.append(&[id_val(&[(2, "b")])], SchemaEvolution::default())
            .await
            .unwrap();
        let meta = t.metadata();
        let current = meta.current_snapshot().unwrap();
        assert_eq!(
            current.summary().additional_properties.get(key).map(String::as_str),
            Some("b1")
        );

        // State alone (nothing new to write) still commits: an empty append snapshot.
        let before = t.current_snapshot_id();
        t.set_commit_properties(props(&[(key, "b2")], &[(key, Some("b1"))]));
        t.append(&[], SchemaEvolution::default()).await.unwrap();
        assert_ne!(t.current_snapshot_id(), before);
        assert_eq!(t.summary_property(key).as_deref(), Some("b2"));
        assert_eq!(our_rows(&t).await, id_val_json(&[(1, "a"), (2, "b")]));

        // A run that planned on b1 lost the race to the one that wrote b2: nothing commits.
        let mut stale = Table::load(env.cat(), TableIdent::new("ns", "state")).await.unwrap();
        stale.set_commit_properties(props(&[(key, "b2-again")], &[(key, Some("b1"))]));
        let err = stale
            .append(&[id_val(&[(3, "c")])], SchemaEvolution::default())
            .await
            .unwrap_err();
        assert!(err.is_conflict(), "{err}");
        assert!(err.to_string().contains(key), "{err}");
        t.refresh().await.unwrap();
        assert_eq!(our_rows(&t).await, id_val_json(&[(1, "a"), (2, "b")]));
        // pyiceberg reads the summaries and the data.
        let py = env.py_read("state");
        assert_eq!(py["rows"], id_val_json(&[(1, "a"), (2, "b")]));
    }

    #[tokio::test]
    async fn appended_since_reads_new_rows_passes_compaction_and_names_a_rewrite() {
        let env = Env::new().await;
        let mut t = env.create("inc", TableDefinition::new(id_val_schema())).await;
        t.append(&[id_val(&[(1, "a")])], SchemaEvolution::default())
            .await
            .unwrap();
        let s1 = t.current_snapshot_id().unwrap();
        t.append(&[id_val(&[(2, "b"), (3, "c")])], SchemaEvolution::default())
            .await
            .unwrap();
        t.append(&[id_val(&[(4, "d")])], SchemaEvolution::default())
            .await
            .unwrap();
        let new_rows = || id_val_json(&[(2, "b"), (3, "c"), (4, "d")]);
        match t.appended_since(s1).await.unwrap() {
            Increment::Appended { batches, files } => {
                assert_eq!(files, 2);
                assert_eq!(rows_json(&batches), new_rows());
            }
            other => panic!("{other:?}"),
        }
        // Compaction rewrites the same rows (`replace`): passed over.
        let paths: Vec<String> = t.files(None).await.unwrap().into_iter().map(|f| f.path).collect();
        let c = t.rewrite_files(&paths).await.unwrap();
        assert_eq!(c.operation.as_deref(), Some("replace"));
        match t.appended_since(s1).await.unwrap() {
            Increment::Appended { batches, .. } => assert_eq!(rows_json(&batches), new_rows()),
            other => panic!("{other:?}"),
        }
        let now = t.current_snapshot_id().unwrap();
        match t.appended_since(now).await.unwrap() {
            Increment::Appended { batches, files } => assert!(batches.is_empty() && files == 0),
            other => panic!("{other:?}"),
        }
        // An overwrite changed rows already processed: reported with its snapshot.
        t.overwrite(&[id_val(&[(9, "z")])], OverwriteMode::All, SchemaEvolution::default())
            .await
            .unwrap();
        match t.appended_since(s1).await.unwrap() {
            Increment::Rewritten { snapshot_id, operation } => {
                assert_eq!(Some(snapshot_id), t.current_snapshot_id());
                assert_eq!(operation, "overwrite");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(t.appended_since(42).await.unwrap(), Increment::NotInHistory));
    }
}
