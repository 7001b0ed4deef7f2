//! Job state (`mesh.state.*` snapshot summary properties) through meshkit's own maintenance:
//! compaction carries it into its `replace` snapshot and moves the `mesh-state` tag there, expiry
//! with `retain_last = 1` keeps it, and the compare-and-swap on state still holds afterwards.
//! (Spark's maintenance, which does not carry it: crates/mesh-core/tests/glue_state.rs.)

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use mesh_iceberg::maintenance::*;
use mesh_iceberg::*;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("val", DataType::Utf8, true),
    ]))
}

fn rows(ids: std::ops::Range<i64>) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids.clone().collect::<Vec<_>>())),
            Arc::new(StringArray::from(
                ids.map(|i| Some(format!("v{i}"))).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

const KEY: &str = "mesh.state.job_a.bookmark.raw.events";
const OTHER: &str = "mesh.state.job_b.intervals";

fn props(set: &[(&str, &str)], expect: &[(&str, Option<&str>)]) -> CommitProperties {
    CommitProperties {
        set: set.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        expect: expect
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect(),
    }
}

fn tagged(t: &Table) -> Option<i64> {
    t.metadata().snapshot_for_ref(STATE_TAG).map(|s| s.snapshot_id())
}

#[tokio::test]
async fn local_compaction_and_expiry_keep_job_state() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(
        SqliteCatalog::open(
            "mesh",
            dir.path().join("catalog.db"),
            format!("file://{}/warehouse", dir.path().display()),
        )
        .await
        .unwrap(),
    );
    let mut t = Table::create(
        catalog.clone(),
        TableIdent::new("ns", "t"),
        TableDefinition::new(schema()),
    )
    .await
    .unwrap();
    assert_eq!(t.job_state(KEY).unwrap(), None, "an empty table has no state");

    // Three runs of job A, each committing its bookmark with the data (compare-and-swap).
    let mut prev: Option<String> = None;
    for (n, ids) in [(1, 0..10), (2, 10..20), (3, 20..30)] {
        let value = format!("b{n}");
        t.set_commit_properties(props(&[(KEY, &value)], &[(KEY, prev.as_deref())]));
        let c = t.append(&[rows(ids)], Default::default()).await.unwrap();
        assert_eq!(tagged(&t), c.snapshot_id, "the state commit is tagged");
        prev = Some(value);
    }
    // Job B commits its own state: job A's rides along, so the tagged snapshot holds both.
    t.set_commit_properties(props(&[(OTHER, "2026-01-01")], &[(OTHER, None)]));
    let c = t.append(&[rows(30..35)], Default::default()).await.unwrap();
    let current = t
        .metadata()
        .current_snapshot()
        .unwrap()
        .summary()
        .additional_properties
        .clone();
    assert_eq!(current.get(KEY).map(String::as_str), Some("b3"));
    assert_eq!(tagged(&t), c.snapshot_id);

    // Compaction: one `replace` snapshot that carries every job's state and takes the tag.
    let outcome = CompactionPlan::build(&t, &CompactionOptions::new(1024 * 1024, 0.75, 2))
        .await
        .unwrap()
        .execute(&mut t)
        .await
        .unwrap();
    assert_eq!(outcome.snapshot_ids.len(), 1, "{outcome:?}");
    let replace = t.metadata().current_snapshot().unwrap();
    assert_eq!(replace.summary().operation.as_str(), "replace");
    assert_eq!(
        replace.summary().additional_properties.get(KEY).map(String::as_str),
        Some("b3")
    );
    assert_eq!(
        replace.summary().additional_properties.get(OTHER).map(String::as_str),
        Some("2026-01-01")
    );
    assert_eq!(tagged(&t), Some(replace.snapshot_id()));

    // Expiry of everything but the newest snapshot: the state is still there.
    ExpiryPlan::build(
        &t,
        &ExpireOptions {
            older_than_ms: chrono::Utc::now().timestamp_millis() + 1,
            retain_last: 1,
            clean_expired_files: true,
        },
    )
    .await
    .unwrap()
    .execute(&mut t)
    .await
    .unwrap();
    let mut t = Table::load(catalog.clone(), TableIdent::new("ns", "t")).await.unwrap();
    assert_eq!(t.metadata().snapshots().count(), 1);
    assert_eq!(t.job_state(KEY).unwrap().as_deref(), Some("b3"));
    assert_eq!(t.job_state(OTHER).unwrap().as_deref(), Some("2026-01-01"));
    assert_eq!(
        t.scan(&Default::default())
            .await
            .unwrap()
            .batches
            .iter()
            .map(|b| b.num_rows())
            .sum::<usize>(),
        35
    );

    // The compare-and-swap still holds: a run planned on b2 loses, one planned on b3 commits.
    t.set_commit_properties(props(&[(KEY, "b4")], &[(KEY, Some("b2"))]));
    let err = t.append(&[rows(35..36)], Default::default()).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    t.set_commit_properties(props(&[(KEY, "b4")], &[(KEY, Some("b3"))]));
    t.append(&[rows(35..36)], Default::default()).await.unwrap();
    assert_eq!(t.job_state(KEY).unwrap().as_deref(), Some("b4"));
}
