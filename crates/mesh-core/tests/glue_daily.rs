//! The Glue runner's incremental bookmarks, intervals and interval writes agree with the Rust
//! runtime's (runtime/glue/daily_tests.py checks the runner against what meshkit computes here),
//! so a job can move between engines without reprocessing or skipping input.
//!
//! Needs `MESH_PYTHON` (scripts/test.sh sets it).

use std::path::Path;

use mesh_core::incremental::{RawBookmark, BAND_MS};
use mesh_core::interval::{DoneSet, Interval};
use mesh_core::raw::FileId;
use mesh_domain::{ColumnType, Grain};
use serde_json::{json, Value};

fn file(path: &str, size: u64, t: i64) -> FileId {
    FileId {
        path: path.into(),
        size,
        modified_ms: t,
    }
}

#[test]
fn runner_bookmarks_and_intervals_agree_with_meshkit() {
    let h = BAND_MS;
    // What each run lists, and the run's time: new files, a late file, a far newer day, a file
    // dated two days in the future (it must not hide the files landing after it), the files
    // landing after it, then a processed file that grew and one rewritten in place, and one
    // processed long before that grew (all refused, naming them: reading them again would
    // repeat their rows).
    let run = 20 * h;
    let listings = [
        (vec![file("d=1/a.csv", 10, 1_000), file("d=1/b.csv", 20, 5_000)], 6_000),
        (
            vec![
                file("d=1/a.csv", 10, 1_000),
                file("d=1/b.csv", 20, 5_000),
                file("d=1/c.csv", 7, 3_000),
            ],
            9_000,
        ),
        (
            vec![file("d=1/b.csv", 20, 5_000), file("d=2/a.csv", 4, 10 * h)],
            10 * h + 5,
        ),
        (
            vec![
                file("d=1/z.csv", 1, 2_000),
                file("d=2/a.csv", 4, 10 * h),
                file("d=2/b.csv", 4, 10 * h + 7),
                file("d=3/future.csv", 9, run + 48 * h),
            ],
            run,
        ),
        (
            vec![
                file("d=2/b.csv", 4, 10 * h + 7),
                file("d=3/future.csv", 9, run + 48 * h),
                file("d=3/a.csv", 5, run + h),
            ],
            run + 2 * h,
        ),
        (
            vec![file("d=3/a.csv", 50, run + 3 * h), file("d=3/new.csv", 1, run + 3 * h)],
            run + 3 * h,
        ),
        (
            vec![file("d=3/a.csv", 5, run + 4 * h), file("d=3/new.csv", 1, run + 3 * h)],
            run + 4 * h,
        ),
        // Processed in the first run, long out of the band: still recognised.
        (vec![file("d=1/b.csv", 21, run + 5 * h)], run + 5 * h),
    ];
    let mut bookmark = RawBookmark::default();
    let mut runs = Vec::new();
    let mut refused = 0;
    for (listed, run_ms) in &listings {
        match bookmark.select(listed) {
            Ok(new) => {
                let new: Vec<FileId> = new.into_iter().cloned().collect();
                bookmark = bookmark.advance(&new, *run_ms);
                runs.push(json!({"listed": listed, "run_ms": run_ms, "new": new, "bookmark": bookmark.encode()}));
            }
            Err(changed) => {
                refused += 1;
                runs.push(json!({
                    "listed": listed, "run_ms": run_ms, "refused": changed.now.path,
                    "reason": changed.reason(), "bookmark": bookmark.encode(),
                }));
            }
        }
    }
    // The future-dated file did not hide the file landing after it; both changes refused.
    assert_eq!(runs[4]["new"], json!([file("d=3/a.csv", 5, run + h)]), "{}", runs[4]);
    assert_eq!(refused, 3);
    assert!(runs[5]["reason"]
        .as_str()
        .unwrap()
        .starts_with("grew from 5 to 50 bytes"));
    assert!(runs[6]["reason"].as_str().unwrap().starts_with("was rewritten"));
    assert!(runs[7]["reason"]
        .as_str()
        .unwrap()
        .starts_with("grew from 20 to 21 bytes"));

    let mut intervals = Vec::new();
    for (grain, at, column, ty) in [
        (Grain::Day, "2026-11-30", "sale_date", ColumnType::Date),
        (Grain::Day, "2026-12-31", "ts", ColumnType::Timestamp),
        (Grain::Month, "2026-12-15", "sale_date", ColumnType::Date),
        (Grain::Hour, "2026-11-30T23", "ts", ColumnType::Timestamptz),
    ] {
        let t = mesh_core::interval::parse_instant(at).unwrap();
        let i = Interval::containing(grain, t);
        let params: serde_json::Map<String, Value> = i.params().into_iter().map(|(k, v)| (k, json!(v))).collect();
        intervals.push(json!({
            "grain": grain.as_str(), "at": at, "label": i.label(), "params": params,
            "column": column, "column_type": ty.to_string(), "predicate": i.predicate(column, ty),
        }));
    }

    let mut done = Vec::new();
    for (grain, encoded, add) in [
        (Grain::Day, "2026-10-01/2026-11-09,2026-11-12", "2026-11-10"),
        (Grain::Day, "2026-12-30/2027-01-02", "2027-01-04"),
        (Grain::Month, "2026-11/2027-02", "2026-10"),
        (Grain::Hour, "2026-11-30T22/2026-12-01T01", "2026-12-01T02"),
    ] {
        let mut set = DoneSet::parse(grain, encoded);
        let count = set.len();
        assert_eq!(set.encode(), encoded);
        set.insert(Interval::parse_label(grain, add).unwrap());
        done.push(
            json!({"grain": grain.as_str(), "encoded": encoded, "count": count, "add": add, "after_add": set.encode()}),
        );
    }

    let spec = json!({
        "iceberg": {"catalog": "glue_catalog"},
        "output": {"database": "f01_curated", "table": "daily_totals", "columns": [
            {"name": "sale_date"}, {"name": "store_id"}, {"name": "units"}]},
        "time_range": {"column": "sale_date", "column_type": "date", "grain": "day", "intervals_key": "mesh.state.daily_totals.intervals"},
    });
    let manifest = json!({
        "bookmark_runs": runs,
        "intervals": intervals,
        "done": done,
        "time_range_spec": spec,
        // The interval is matched by one marker row of the source, so copy-on-write rewrites
        // only the files holding rows of the interval (a NOT MATCHED BY SOURCE delete rewrote
        // every file of the table).
        "interval_write": "MERGE INTO `glue_catalog`.`f01_curated`.`daily_totals` t\n\
            USING (SELECT `sale_date`, `store_id`, `units`, false AS `__mesh_interval` FROM __mesh_source\n  \
            UNION ALL SELECT NULL, NULL, NULL, true) s\n\
            ON s.`__mesh_interval` AND t.`sale_date` >= DATE '2026-11-02' AND t.`sale_date` < DATE '2026-11-03'\n\
            WHEN MATCHED THEN DELETE\n\
            WHEN NOT MATCHED AND NOT s.`__mesh_interval` THEN INSERT (`sale_date`, `store_id`, `units`) \
            VALUES (s.`sale_date`, s.`store_id`, s.`units`)",
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daily.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let python = std::env::var("MESH_PYTHON")
        .unwrap_or_else(|_| panic!("MESH_PYTHON is not set: run scripts/test.sh, which sets it"));
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runtime/glue/daily_tests.py");
    let out = std::process::Command::new(python)
        .arg(runner)
        .arg(&path)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the runner disagrees with meshkit:\n{report}");
    assert!(report.contains(" agree"), "{report}");
}

#[test]
fn job_specs_carry_incremental_and_time_range_settings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let domain = mesh_domain::load_domain(&root).unwrap();
    let p = domain.projects.iter().find(|p| p.name.as_str() == "customers").unwrap();
    let j = p.job("customers_latest").unwrap();
    let spec = serde_json::to_value(mesh_core::artifacts::job_spec(&domain, mesh_domain::Env::Dev, p, j)).unwrap();
    assert_eq!(
        spec["incremental"],
        json!({"bookmarks": {"raw.customer_events": "mesh.state.customers_latest.bookmark.raw.customer_events"}, "on_rewrite": "error"})
    );
    assert!(spec.get("time_range").is_none(), "absent unless declared: {spec}");
    let back: mesh_core::artifacts::JobSpec = serde_json::from_value(spec.clone()).unwrap();
    assert_eq!(serde_json::to_value(back).unwrap(), spec);
}
