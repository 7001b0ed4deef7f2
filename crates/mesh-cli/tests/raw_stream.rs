//! Raw inputs streamed by the real `mesh` binary: several files of several batches each, bad
//! rows spread over all of them. `quarantine` sets aside exactly the bad rows (the files under
//! `<table>_rejected/run_id=…/` hold each once, and the run record counts them); `fail` stops at
//! the first bad row in file order, named by file, line and column; `mesh sql` reads the same.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

mod common;
use common::{both, mesh, repo_root};

const PROJECT: &str = r#"
name = "shop"
project_slug = "pj09"
owner = "shop-team"
classification = "internal"

[[tables]]
name = "events"
layer = "raw"
format = "csv"
bad_rows = "quarantine"
partition_by = ["event_date"]
columns = [
  { name = "event_id", type = "string", nullable = false },
  { name = "store_id", type = "int", nullable = false },
  { name = "qty", type = "long", nullable = false },
  { name = "event_date", type = "date", nullable = false },
]
[tables.csv]
header = true

[[tables]]
name = "events_copy"
layer = "refined"
columns = [
  { name = "event_id", type = "string", nullable = false },
  { name = "store_id", type = "int", nullable = false },
  { name = "qty", type = "long", nullable = false },
  { name = "event_date", type = "date", nullable = false },
]

[[jobs]]
name = "events_copy"
sql = "sql/events_copy.sql"
inputs = ["raw.events"]
output = "refined.events_copy"
mode = "overwrite"
"#;

/// Rows per file: several of DataFusion's default batches (8192 rows).
const ROWS: u32 = 20_000;
const DAYS: [&str; 3] = ["2026-11-01", "2026-11-02", "2026-11-03"];

fn python() -> String {
    std::env::var("MESH_PYTHON")
        .unwrap_or_else(|_| panic!("MESH_PYTHON is not set: run scripts/test.sh, which installs pyarrow and sets it"))
}

fn shop() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo_root().join("domain.json"), dir.path().join("domain.json")).unwrap();
    let p = dir.path().join("projects/shop");
    std::fs::create_dir_all(p.join("sql")).unwrap();
    std::fs::write(p.join("project.toml"), PROJECT).unwrap();
    std::fs::write(
        p.join("sql/events_copy.sql"),
        "SELECT event_id, store_id, qty, event_date FROM f01_raw.events\n",
    )
    .unwrap();
    dir
}

/// A bad row as the quarantine table holds it: file (from the table's folder on), line, column
/// (none for a malformed line).
type Bad = (String, u64, Option<String>);

/// `events/event_date=…/part-00000.csv` of a file's path or URL.
fn in_table(file: &str) -> String {
    file[file.find("events/event_date=").unwrap_or_else(|| panic!("{file}"))..].to_string()
}

/// Lands one CSV file per day; returns the good rows and the bad ones. Bad rows sit in every
/// batch of every file: a `qty` that is not a number, and lines with a field missing.
fn land(root: &Path) -> (u64, Vec<Bad>) {
    let mut good = 0;
    let mut bad = Vec::new();
    for (f, date) in DAYS.iter().enumerate() {
        let dir: PathBuf = root.join(format!(".mesh/lake/f01-raw-local/pj09/events/event_date={date}"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("part-00000.csv");
        let name = in_table(&file.display().to_string());
        let mut csv = String::from("event_id,store_id,qty,event_date\n");
        for i in 0..ROWS {
            // The header is line 1.
            let line = u64::from(i) + 2;
            let k = (i + 311 * f as u32) % 977;
            if k == 5 {
                csv.push_str(&format!("{date}-{i},{},x{i},{date}\n", i % 3));
                bad.push((name.clone(), line, Some("qty".to_string())));
            } else if k == 600 {
                csv.push_str(&format!("{date}-{i},{}\n", i % 3));
                bad.push((name.clone(), line, None));
            } else {
                csv.push_str(&format!("{date}-{i},{},{},{date}\n", i % 3, i % 10));
                good += 1;
            }
        }
        std::fs::write(&file, csv).unwrap();
    }
    (good, bad)
}

fn latest_metrics(root: &Path) -> serde_json::Value {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(root.join(".mesh/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    runs.sort();
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.last().unwrap()).unwrap()).unwrap();
    record["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["steps"].as_array().unwrap())
        .find(|s| s["name"] == "events_copy")
        .unwrap_or_else(|| panic!("no step events_copy in {record}"))["metrics"]
        .clone()
}

fn count(root: &Path, query: &str) -> u64 {
    let out = mesh(root, &["sql", query, "--format", "json"]);
    assert!(out.status.success(), "{query}: {}", both(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    rows[0]["n"].as_u64().unwrap_or_else(|| panic!("{rows}"))
}

/// Every row of the quarantine folder's Parquet files (read by pyarrow): (file, line, column).
fn quarantined(folder: &Path) -> Vec<Bad> {
    let script = "import json, sys, pyarrow.dataset as ds\n\
                  t = ds.dataset(sys.argv[1], format='parquet').to_table()\n\
                  print(json.dumps([[r['file'], r['line'], r['column_name'], r['reason']] for r in t.to_pylist()]))";
    let out = std::process::Command::new(python())
        .args(["-c", script])
        .arg(folder)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", both(&out));
    let rows: Vec<(String, u64, Option<String>, String)> = serde_json::from_slice(&out.stdout).unwrap();
    for (_, _, column, reason) in &rows {
        match column {
            Some(_) => assert!(reason.contains("is not a valid long"), "{reason}"),
            None => assert!(reason.contains("2 fields where 4 are expected"), "{reason}"),
        }
    }
    rows.into_iter().map(|(f, l, c, _)| (in_table(&f), l, c)).collect()
}

#[test]
fn bad_rows_over_several_files_and_batches_are_quarantined_or_stop_the_run() {
    let dir = shop();
    let root = dir.path();
    let (good, mut bad) = land(root);
    assert!(bad.len() > 3 * 3, "bad rows in several batches of each file");

    // quarantine: the job commits the good rows, sets aside each bad one once, counts both.
    let out = mesh(root, &["run", "--job", "events_copy"]);
    assert!(out.status.success(), "{}", both(&out));
    let m = latest_metrics(root);
    assert_eq!(m["rows_read"], good, "{m}");
    assert_eq!(m["rows_rejected"], bad.len() as u64, "{m}");
    assert_eq!(m["files_read"], 3, "{m}");
    assert_eq!(count(root, "SELECT COUNT(*) AS n FROM f01_refined.events_copy"), good);
    let rejected = root.join(".mesh/lake/f01-raw-local/pj09/events_rejected");
    let runs: Vec<PathBuf> = std::fs::read_dir(&rejected)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "one run_id folder: {runs:?}");
    let mut got = quarantined(&runs[0]);
    got.sort();
    bad.sort();
    assert_eq!(got.len(), bad.len(), "each bad row once");
    assert_eq!(got, bad);
    assert_eq!(got.iter().collect::<BTreeSet<_>>().len(), got.len(), "no row twice");
    // `mesh sql` streams the raw table with the same policy.
    assert_eq!(count(root, "SELECT COUNT(*) AS n FROM f01_raw.events"), good);

    // fail: the run stops at the first bad row of the first file, named as before.
    let manifest = root.join("projects/shop/project.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("bad_rows = \"quarantine\"", "bad_rows = \"fail\""),
    )
    .unwrap();
    let (file, line, column) = bad.iter().min_by_key(|(f, l, _)| (f.clone(), *l)).unwrap().clone();
    assert_eq!(column.as_deref(), Some("qty"), "the first bad row has a bad value");
    let wanted = format!("{file}:{line}: column `qty`: `x");
    let before = count(root, "SELECT COUNT(*) AS n FROM f01_refined.events_copy");
    let out = mesh(root, &["run", "--job", "events_copy"]);
    let msg = both(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains(&wanted), "`{wanted}` not in:\n{msg}");
    assert!(msg.contains("job `events_copy`: reading raw.events: /"), "{msg}");
    assert!(msg.contains("set bad_rows = \"quarantine\""), "{msg}");
    assert_eq!(
        count(root, "SELECT COUNT(*) AS n FROM f01_refined.events_copy"),
        before,
        "nothing committed"
    );
    let out = mesh(root, &["sql", "SELECT COUNT(*) AS n FROM f01_raw.events"]);
    let msg = both(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains(&wanted), "`{wanted}` not in:\n{msg}");
    assert!(msg.contains("error: reading raw.events: /"), "{msg}");
}
