//! `mesh run` end to end on a copy of the example domain: real sample data, the real binary,
//! and results checked by an independent implementation (plain Python + pyiceberg).

use std::path::{Path, PathBuf};

mod common;
use common::{both, example_domain, mesh};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn python() -> String {
    std::env::var("MESH_PYTHON")
        .unwrap_or_else(|_| panic!("MESH_PYTHON is not set: run scripts/test.sh, which installs pyiceberg and sets it"))
}

fn edit(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains(from), "{} does not contain {from:?}", path.display());
    std::fs::write(path, s.replacen(from, to, 1)).unwrap();
}

fn snapshot_count(root: &Path, table: &str) -> usize {
    let out = mesh(root, &["table", "snapshots", table, "--format", "json"]);
    assert!(out.status.success(), "{}", both(&out));
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

fn latest_record(root: &Path) -> serde_json::Value {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(root.join(".mesh/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    runs.sort();
    serde_json::from_str(&std::fs::read_to_string(runs.last().unwrap()).unwrap()).unwrap()
}

fn step<'a>(record: &'a serde_json::Value, project: &str, name: &str) -> &'a serde_json::Value {
    record["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["project"] == project)
        .flat_map(|p| p["steps"].as_array().unwrap())
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {project}/{name} in {record}"))
}

#[test]
fn example_pipelines_match_an_independent_computation() {
    let dir = example_domain();
    let out = mesh(dir.path(), &["run", "--sample-data", "--rows", "30000", "--seed", "7"]);
    assert!(out.status.success(), "{}", both(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("6 succeeded, 0 not"), "{stdout}");

    let check = std::process::Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/expected_results.py"))
        .arg(dir.path())
        .output()
        .unwrap();
    let report = both(&check);
    assert!(
        check.status.success(),
        "results differ from the independent computation:\n{report}"
    );
    assert_eq!(report.matches(": OK").count(), 4, "{report}");

    // Quarantine: every malformed legacy row is set aside with its reason, the rest is committed.
    let record = latest_record(dir.path());
    let clean = step(&record, "legacy_refactor", "clean_orders");
    let rejected = clean["metrics"]["rows_rejected"].as_u64().unwrap();
    let dirty: u64 = stdout
        .lines()
        .find(|l| l.contains("legacy_orders"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .expect("sample-data prints the dirty row count");
    assert!(dirty > 0);
    assert_eq!(rejected, dirty, "every dirty row, and only those, is quarantined");
    let rejected_dir = dir.path().join(".mesh/lake/f01-raw-local/pj03/legacy_orders_rejected");
    assert!(
        std::fs::read_dir(&rejected_dir).unwrap().count() == 1,
        "one run_id partition"
    );

    // A second run replaces partitions (overwrite_partitions) and merges again: same results.
    let out = mesh(dir.path(), &["run"]);
    assert!(out.status.success(), "{}", both(&out));
    let check = std::process::Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/expected_results.py"))
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(check.status.success(), "re-run changed the results:\n{}", both(&check));
}

#[test]
fn a_failing_error_check_commits_nothing() {
    let dir = example_domain();
    let out = mesh(dir.path(), &["run", "sales", "--sample-data", "--rows", "5000"]);
    assert!(out.status.success(), "{}", both(&out));
    let before = snapshot_count(dir.path(), "curated.daily_sales");

    edit(
        &dir.path().join("projects/sales/project.toml"),
        "{ type = \"row_count_min\", min = 1 },",
        "{ type = \"row_count_min\", min = 1 },\n  { type = \"range\", column = \"revenue\", max = 10, name = \"revenue_under_ten\" },",
    );
    let out = mesh(dir.path(), &["run", "sales", "--job", "daily_sales"]);
    let msg = both(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains("check `revenue_under_ten` failed"), "{msg}");
    assert!(msg.contains("failing rows"), "{msg}");
    assert_eq!(
        snapshot_count(dir.path(), "curated.daily_sales"),
        before,
        "nothing was committed"
    );

    // A warn check only reports.
    edit(
        &dir.path().join("projects/sales/project.toml"),
        "name = \"revenue_under_ten\" }",
        "name = \"revenue_under_ten\", severity = \"warn\" }",
    );
    let out = mesh(dir.path(), &["run", "sales", "--job", "daily_sales"]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(snapshot_count(dir.path(), "curated.daily_sales"), before + 1);
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> std::collections::BTreeSet<PathBuf> {
    let mut out = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.insert(p);
        }
    }
    out
}

/// Write, audit, publish: the result is written into data files before the checks run on
/// them. A failing `error` check commits nothing, and the files it wrote, referenced by no
/// snapshot, are exactly what orphan cleanup then finds.
#[test]
fn a_failing_check_leaves_its_written_files_to_orphan_cleanup() {
    let dir = example_domain();
    let root = dir.path();
    let out = mesh(root, &["run", "sales", "--sample-data", "--rows", "5000"]);
    assert!(out.status.success(), "{}", both(&out));
    let data = root.join(".mesh/lake/f01-curated-local/pj01/iceberg/daily_sales/data");
    let before_files = files_under(&data);
    let before = snapshot_count(root, "curated.daily_sales");

    edit(
        &root.join("projects/sales/project.toml"),
        "{ type = \"row_count_min\", min = 1 },",
        "{ type = \"row_count_min\", min = 1 },\n  { type = \"range\", column = \"revenue\", max = 10, name = \"revenue_under_ten\" },",
    );
    let out = mesh(root, &["run", "sales", "--job", "daily_sales"]);
    let msg = both(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains("check `revenue_under_ten` failed"), "{msg}");
    assert!(msg.contains("nothing was committed to curated.daily_sales"), "{msg}");
    assert_eq!(snapshot_count(root, "curated.daily_sales"), before);

    let written: std::collections::BTreeSet<PathBuf> = files_under(&data).difference(&before_files).cloned().collect();
    assert!(!written.is_empty(), "the result was written before the checks ran");
    assert!(
        written.iter().all(|p| p.extension().is_some_and(|e| e == "parquet")),
        "{written:?}"
    );

    let orphans = |dry_run: bool| {
        let mut args = vec![
            "optimize",
            "sales",
            "--table",
            "curated.daily_sales",
            "--only",
            "orphans",
            "--orphan-retention-hours",
            "0",
            "--force",
            "--format",
            "json",
        ];
        if dry_run {
            args.push("--dry-run");
        }
        let out = mesh(root, &args);
        assert!(out.status.success(), "{}", both(&out));
        let js: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        js.as_array()
            .unwrap()
            .iter()
            .find(|r| r["table"] == "curated.daily_sales")
            .unwrap_or_else(|| panic!("no report for curated.daily_sales: {js}"))["orphans"]
            .clone()
    };
    let plan = orphans(true);
    let found: std::collections::BTreeSet<PathBuf> = plan["plan"]["orphans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| PathBuf::from(o["path"].as_str().unwrap().trim_start_matches("file://")))
        .collect();
    assert_eq!(
        found, written,
        "orphan cleanup finds exactly the files the failed run wrote"
    );
    assert_eq!(orphans(false)["outcome"]["files_deleted"], written.len());
    assert_eq!(files_under(&data), before_files);
    let out = mesh(root, &["table", "show", "curated.daily_sales"]);
    assert!(out.status.success(), "the table still reads: {}", both(&out));
}

#[test]
fn malformed_rows_fail_with_file_line_and_column() {
    let dir = example_domain();
    let manifest = dir.path().join("projects/legacy_refactor/project.toml");
    edit(&manifest, "bad_rows = \"quarantine\"", "bad_rows = \"fail\"");
    let out = mesh(
        dir.path(),
        &["run", "legacy_refactor", "--sample-data", "--rows", "30000"],
    );
    let msg = both(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    // e.g. ".../legacy_orders/part-00000.csv:123: column `amount`: `12,50€` is not a valid decimal(12,2)"
    let re_ok = msg
        .lines()
        .any(|l| l.contains("legacy_orders/part-00000.csv:") && (l.contains("column `") || l.contains("fields where")));
    assert!(re_ok, "the error names the file, the line and the column:\n{msg}");
    assert!(
        msg.contains("bad_rows = \"quarantine\""),
        "the fix is suggested:\n{msg}"
    );
    // The output table may exist (it is created before its result is staged), but no data file
    // was written and no snapshot committed.
    let refined = dir.path().join(".mesh/lake/f01-refined-local");
    if refined.exists() {
        let files = files_under(&refined);
        assert!(
            files.iter().all(|f| f.extension().is_some_and(|e| e == "json")),
            "only table metadata, no data file: {files:?}\n{msg}"
        );
    }
    let out = mesh(
        dir.path(),
        &["table", "snapshots", "refined.orders_clean", "--format", "json"],
    );
    let snapshots: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    assert!(
        snapshots.as_array().is_none_or(|a| a.is_empty()),
        "no snapshot committed: {}",
        both(&out)
    );
}

#[test]
fn a_failed_job_skips_its_dependents_and_other_branches_finish() {
    let dir = example_domain();
    let project = dir.path().join("projects/legacy_refactor");
    std::fs::write(
        project.join("sql/clean_orders.sql"),
        "SELECT no_such_column FROM f01_raw.legacy_orders\n",
    )
    .unwrap();
    edit(
        &project.join("project.toml"),
        "{ job = \"clean_orders\", retries = 1 }",
        "{ job = \"clean_orders\" }",
    );
    let out = mesh(dir.path(), &["run", "--sample-data", "--rows", "5000"]);
    let msg = both(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");

    let record = latest_record(dir.path());
    assert_eq!(record["succeeded"], false);
    assert_eq!(step(&record, "legacy_refactor", "clean_orders")["status"], "failed");
    assert_eq!(
        step(&record, "legacy_refactor", "orders_by_country")["status"],
        "skipped"
    );
    assert_eq!(
        step(&record, "legacy_refactor", "optimize_orders_clean")["status"],
        "skipped"
    );
    assert_eq!(step(&record, "sales", "daily_sales")["status"], "succeeded");
    assert_eq!(step(&record, "customers", "customers_latest")["status"], "succeeded");

    let html_path = dir.path().join("report.html");
    let out = mesh(dir.path(), &["report", "--out", html_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", both(&out));
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("class=\"step failed\""), "the report shows the failure");
    assert_eq!(
        html.matches("class=\"step skipped\"").count(),
        2,
        "and both skipped dependents"
    );
    assert!(html.contains("no_such_column"), "with the error");
}

#[test]
fn a_relative_root_gives_tables_that_open_from_anywhere() {
    let dir = example_domain();
    let out = assert_cmd::Command::cargo_bin("mesh")
        .unwrap()
        .current_dir(dir.path())
        .args(["--root", ".", "run", "sales", "--sample-data", "--rows", "2000"])
        .env_remove("ENV")
        .env_remove("LOG_LEVEL")
        .env_remove("LOG_FORMAT")
        .env_remove("F01_ENV")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", both(&out));
    // Read from another working directory: every file the catalog names must be there.
    let out = mesh(
        dir.path(),
        &["table", "files", "curated.daily_sales", "--format", "json"],
    );
    assert!(out.status.success(), "{}", both(&out));
    let files: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = files.as_array().unwrap();
    assert!(!files.is_empty());
    for f in files {
        let path = f["path"].as_str().unwrap();
        let local = Path::new(path.strip_prefix("file://").unwrap_or(path));
        assert!(local.is_absolute(), "relative location stored in the catalog: {path}");
        assert!(local.exists(), "{path} does not exist");
    }
}
