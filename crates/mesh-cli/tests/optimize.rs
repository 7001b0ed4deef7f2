//! `mesh optimize` end to end with the real binary on a copy of the example domain: the dry run
//! lists a plan and changes nothing, unsafe overrides exit 2, a real run compacts and cleans.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde_json::Value;

mod common;
use common::{both, example_domain, mesh};

/// Path, size and modification time of every file under `.mesh` (lake, catalog, run records).
fn state(root: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.join(".mesh")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else {
                out.insert(p, (m.len(), m.modified().unwrap()));
            }
        }
    }
    out
}

fn table_files(root: &Path) -> usize {
    let out = mesh(root, &["table", "files", "curated.daily_sales", "--format", "json"]);
    assert!(out.status.success(), "{}", both(&out));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn dry_run_lists_the_plan_and_changes_nothing_then_a_run_executes_it() {
    let dir = example_domain();
    let root = dir.path();
    // The job appends and compaction starts at two small files, so a second run of the job
    // leaves two files in every month to compact.
    let manifest = root.join("projects/sales/project.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replacen("min_input_files = 5", "min_input_files = 2", 1)
        .replacen("mode = \"overwrite_partitions\"", "mode = \"append\"", 1);
    assert!(text.contains("mode = \"append\""));
    std::fs::write(&manifest, text).unwrap();
    let out = mesh(root, &["run", "sales", "--sample-data", "--rows", "5000"]);
    assert!(out.status.success(), "{}", both(&out));
    let show = mesh(root, &["table", "show", "curated.daily_sales", "--format", "json"]);
    let info: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(
        info["sort_order"],
        serde_json::json!(["sale_date asc nulls first", "store_id asc nulls first"]),
        "the manifest's sort order is the table's default sort order"
    );

    let out = mesh(root, &["run", "sales", "--job", "daily_sales"]);
    assert!(out.status.success(), "{}", both(&out));
    // Debris of a killed writer, four days old.
    let table_dir = root.join(".mesh/lake/f01-curated-local/pj01/iceberg/daily_sales");
    assert!(table_dir.join("metadata").is_dir(), "{}", table_dir.display());
    let stray = table_dir.join("data/stray-00000.parquet");
    std::fs::write(&stray, b"debris").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&stray)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(4 * 24 * 3600))
        .unwrap();
    let files_before = table_files(root);

    let before = state(root);
    let out = mesh(root, &["optimize", "--dry-run"]);
    let text = both(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("curated.daily_sales (f01_curated.daily_sales) — dry run"),
        "{text}"
    );
    assert!(
        text.contains("compaction  sort strategy: 1 group(s), 2 file(s)"),
        "{text}"
    );
    assert!(text.contains("retention   0 of"), "{text}");
    assert!(text.contains("orphans     1 file(s)"), "{text}");
    assert!(
        text.contains("delete file://") && text.contains("stray-00000.parquet"),
        "{text}"
    );
    assert!(
        text.contains("refined.orders_clean") || text.contains("curated.customers"),
        "{text}"
    );
    assert_eq!(state(root), before, "a dry run changes nothing");

    let out = mesh(root, &["optimize", "sales", "--dry-run", "--format", "json"]);
    assert!(out.status.success(), "{}", both(&out));
    let js: Value = serde_json::from_slice(&out.stdout).unwrap();
    let daily = js
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["table"] == "curated.daily_sales")
        .unwrap();
    assert_eq!(daily["dry_run"], true);
    let groups = daily["compaction"]["plan"]["groups"].as_array().unwrap();
    assert!(!groups.is_empty());
    assert!(
        groups.iter().all(|g| g["files"].as_array().unwrap().len() == 2),
        "{groups:?}"
    );
    assert_eq!(files_before, 2 * groups.len(), "two files in every month");
    assert!(daily["compaction"]["outcome"].is_null());
    assert_eq!(daily["orphans"]["plan"]["orphans"].as_array().unwrap().len(), 1);
    assert_eq!(state(root), before, "a dry run changes nothing");

    // Unsafe overrides are refused before anything is read.
    let out = mesh(root, &["optimize", "sales", "--orphan-retention-hours", "2"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        both(&out).contains("1-day floor") && both(&out).contains("--force"),
        "{}",
        both(&out)
    );
    let out = mesh(root, &["optimize", "sales", "--retain-last", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(both(&out).contains("retain_last = 0"), "{}", both(&out));
    assert_eq!(state(root), before);

    // The real run: every month's two files become one, the debris goes, the rows stay.
    let count = |root: &Path| {
        let out = mesh(
            root,
            &[
                "sql",
                "SELECT count(*) AS n FROM f01_curated.daily_sales",
                "--format",
                "json",
            ],
        );
        assert!(out.status.success(), "{}", both(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()[0]["n"]
            .as_i64()
            .unwrap()
    };
    let rows = count(root);
    let out = mesh(root, &["optimize", "sales", "--table", "curated.daily_sales"]);
    assert!(out.status.success(), "{}", both(&out));
    assert!(!stray.exists(), "the old debris is deleted");
    assert_eq!(table_files(root), files_before / 2);
    assert_eq!(count(root), rows);
    let mut runs: Vec<PathBuf> = std::fs::read_dir(root.join(".mesh/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    runs.sort();
    let record: Value = serde_json::from_str(&std::fs::read_to_string(runs.last().unwrap()).unwrap()).unwrap();
    let step = &record["pipelines"][0]["steps"][0];
    assert_eq!(step["kind"], "optimize");
    assert_eq!(step["status"], "succeeded");
    let m = &step["metrics"];
    assert_eq!(m["files_before"].as_u64().unwrap(), files_before as u64);
    assert_eq!(m["files_after"].as_u64().unwrap(), files_before as u64 / 2);
    assert_eq!(m["orphan_files"], 1);
    assert!(m["bytes_before"].as_u64().unwrap() > 0 && m["seconds"].as_f64().is_some());
}
