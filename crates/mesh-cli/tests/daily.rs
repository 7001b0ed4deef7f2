//! Daily operation with the real `mesh` binary: incremental inputs (each run reads only new
//! files, bookmark committed with the data), time-range jobs into a month-partitioned table,
//! backfills that resume after a kill, and failures that are not retried. Results are checked
//! against sums computed here from the rows the test itself landed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Instant;

mod common;
use common::{both, example_domain, mesh, repo_root};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `mesh` with extra environment variables (the kill hook).
fn mesh_env(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = assert_cmd::Command::cargo_bin("mesh").unwrap();
    cmd.arg("--root")
        .arg(root)
        .args(args)
        .env_remove("ENV")
        .env_remove("LOG_LEVEL")
        .env_remove("LOG_FORMAT")
        .env_remove("F01_ENV")
        .env_remove("MESH_TEST_EXIT_AT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

const PROJECT: &str = r#"
name = "shop"
project_slug = "pj09"
owner = "shop-team"
classification = "internal"

[[tables]]
name = "events"
layer = "raw"
format = "csv"
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
name = "events_incr"
layer = "refined"
partition_by = ["month(event_date)"]
columns = [
  { name = "event_id", type = "string", nullable = false },
  { name = "store_id", type = "int", nullable = false },
  { name = "qty", type = "long", nullable = false },
  { name = "event_date", type = "date", nullable = false },
]

[[tables]]
name = "events_full"
layer = "refined"
columns = [
  { name = "event_id", type = "string", nullable = false },
  { name = "store_id", type = "int", nullable = false },
  { name = "qty", type = "long", nullable = false },
  { name = "event_date", type = "date", nullable = false },
]

[[tables]]
name = "daily_totals"
layer = "curated"
partition_by = ["month(sale_date)"]
columns = [
  { name = "sale_date", type = "date", nullable = false },
  { name = "store_id", type = "int", nullable = false },
  { name = "orders", type = "long", nullable = false },
  { name = "units", type = "long", nullable = false },
]

[[tables]]
name = "events_copy"
layer = "curated"
columns = [
  { name = "event_id", type = "string", nullable = false },
  { name = "store_id", type = "int", nullable = false },
  { name = "qty", type = "long", nullable = false },
  { name = "event_date", type = "date", nullable = false },
]

[[jobs]]
name = "events_copy"
sql = "sql/events_copy.sql"
inputs = ["refined.events_incr"]
output = "curated.events_copy"
mode = "append"
[jobs.incremental]
inputs = ["refined.events_incr"]

[[jobs]]
name = "events_reset"
sql = "sql/events_full.sql"
inputs = ["raw.events"]
output = "refined.events_incr"
mode = "overwrite"

[[jobs]]
name = "events_incr"
sql = "sql/events_incr.sql"
inputs = ["raw.events"]
output = "refined.events_incr"
mode = "append"
[jobs.incremental]
inputs = ["raw.events"]

[[jobs]]
name = "events_full"
sql = "sql/events_full.sql"
inputs = ["raw.events"]
output = "refined.events_full"
mode = "overwrite"

[[jobs]]
name = "daily_totals"
sql = "sql/daily_totals.sql"
inputs = ["raw.events"]
output = "curated.daily_totals"
mode = "overwrite"
checks = [{ type = "unique", columns = ["sale_date", "store_id"] }]
[jobs.time_range]
column = "sale_date"
grain = "day"

[[pipelines]]
name = "main"
steps = [{ job = "events_incr", retries = 2 }, { job = "daily_totals", retries = 2 }]
"#;

/// A domain with one project `shop` (no sample data: the test lands every file itself).
fn shop() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo_root().join("domain.json"), dir.path().join("domain.json")).unwrap();
    let p = dir.path().join("projects/shop");
    std::fs::create_dir_all(p.join("sql")).unwrap();
    std::fs::write(p.join("project.toml"), PROJECT).unwrap();
    let select = "SELECT event_id, store_id, qty, event_date FROM f01_raw.events\n";
    std::fs::write(p.join("sql/events_incr.sql"), select).unwrap();
    std::fs::write(p.join("sql/events_full.sql"), select).unwrap();
    std::fs::write(
        p.join("sql/events_copy.sql"),
        "SELECT event_id, store_id, qty, event_date FROM f01_refined.events_incr\n",
    )
    .unwrap();
    std::fs::write(
        p.join("sql/daily_totals.sql"),
        "SELECT event_date AS sale_date, store_id, count(*) AS orders, sum(qty) AS units\n\
         FROM f01_raw.events\n\
         WHERE event_date >= '${interval_start}' AND event_date < '${interval_end}'\n\
         GROUP BY event_date, store_id\n",
    )
    .unwrap();
    let out = mesh(dir.path(), &["validate"]);
    assert!(out.status.success(), "{}", both(&out));
    dir
}

#[derive(Debug, Clone, PartialEq)]
struct Row {
    id: String,
    store: i64,
    qty: i64,
    date: String,
}

/// Writes one raw CSV file of `n` rows for `date`; returns its rows.
fn land(root: &Path, date: &str, file: u32, n: u32) -> Vec<Row> {
    let dir: PathBuf = root.join(format!(".mesh/lake/f01-raw-local/pj09/events/event_date={date}"));
    std::fs::create_dir_all(&dir).unwrap();
    let rows: Vec<Row> = (0..n)
        .map(|i| Row {
            id: format!("{date}-{file}-{i}"),
            store: i64::from(i % 3) + 1,
            qty: i64::from((i * 7 + file) % 10) + 1,
            date: date.to_string(),
        })
        .collect();
    let mut csv = String::from("event_id,store_id,qty,event_date\n");
    for r in &rows {
        csv.push_str(&format!("{},{},{},{}\n", r.id, r.store, r.qty, r.date));
    }
    std::fs::write(dir.join(format!("part-{file:05}.csv")), csv).unwrap();
    rows
}

fn day(start: chrono::NaiveDate, k: i64) -> String {
    (start + chrono::Duration::days(k)).format("%Y-%m-%d").to_string()
}

fn sql(root: &Path, query: &str) -> Vec<serde_json::Value> {
    let out = mesh(root, &["sql", query, "--format", "json"]);
    assert!(out.status.success(), "{query}: {}", both(&out));
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn num(v: &serde_json::Value) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

/// (id, store, qty, date) of every row of a table, sorted.
fn rows_of(root: &Path, table: &str) -> Vec<(String, i64, i64, String)> {
    sql(
        root,
        &format!("SELECT event_id, store_id, qty, CAST(event_date AS VARCHAR) AS d FROM {table} ORDER BY event_id"),
    )
    .iter()
    .map(|r| {
        (
            r["event_id"].as_str().unwrap().to_string(),
            num(&r["store_id"]),
            num(&r["qty"]),
            r["d"].as_str().unwrap().to_string(),
        )
    })
    .collect()
}

fn expected_rows(landed: &[Row]) -> Vec<(String, i64, i64, String)> {
    let mut v: Vec<_> = landed
        .iter()
        .map(|r| (r.id.clone(), r.store, r.qty, r.date.clone()))
        .collect();
    v.sort();
    v
}

/// (date, store) -> (orders, units) of the daily_totals table.
fn totals(root: &Path) -> BTreeMap<(String, i64), (i64, i64)> {
    sql(
        root,
        "SELECT CAST(sale_date AS VARCHAR) AS d, store_id, orders, units FROM f01_curated.daily_totals",
    )
    .iter()
    .map(|r| {
        (
            (r["d"].as_str().unwrap().to_string(), num(&r["store_id"])),
            (num(&r["orders"]), num(&r["units"])),
        )
    })
    .collect()
}

fn expected_totals(landed: &[Row]) -> BTreeMap<(String, i64), (i64, i64)> {
    let mut m: BTreeMap<(String, i64), (i64, i64)> = BTreeMap::new();
    for r in landed {
        let e = m.entry((r.date.clone(), r.store)).or_default();
        e.0 += 1;
        e.1 += r.qty;
    }
    m
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

fn job_metrics(record: &serde_json::Value, job: &str) -> serde_json::Value {
    record["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["steps"].as_array().unwrap())
        .find(|s| s["name"] == job)
        .unwrap_or_else(|| panic!("no step {job} in {record}"))["metrics"]
        .clone()
}

#[test]
fn five_daily_incremental_runs_equal_a_full_recompute_and_read_only_new_files() {
    let dir = shop();
    let root = dir.path();
    let start = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let mut landed = Vec::new();
    for k in 0..5 {
        let date = day(start, k);
        let mut new_files = 2;
        landed.extend(land(root, &date, 0, 40));
        landed.extend(land(root, &date, 1, 25));
        if k == 3 {
            // A late file for an earlier day: new, so read once, whatever its folder.
            landed.extend(land(root, &day(start, 1), 7, 10));
            new_files += 1;
        }
        let out = mesh(
            root,
            &["run", "--job", "events_incr", "--param", &format!("run_date={date}")],
        );
        assert!(out.status.success(), "{}", both(&out));
        let m = job_metrics(&latest_record(root), "events_incr");
        assert_eq!(
            m["files_read"], new_files,
            "day {date}: only the new files are read: {m}"
        );
        let rows_new: u64 = if k == 3 { 75 } else { 65 };
        assert_eq!(m["rows_read"], rows_new, "{m}");

        let out = mesh(root, &["run", "--job", "events_full"]);
        assert!(out.status.success(), "{}", both(&out));
        let incr = rows_of(root, "f01_refined.events_incr");
        assert_eq!(incr, rows_of(root, "f01_refined.events_full"), "day {date}");
        assert_eq!(incr, expected_rows(&landed), "day {date}");
    }
    // Nothing new: nothing read, no new snapshot.
    let snapshots = |root: &Path| {
        let out = mesh(root, &["table", "snapshots", "refined.events_incr", "--format", "json"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    let before = snapshots(root);
    let out = mesh(root, &["run", "--job", "events_incr"]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(job_metrics(&latest_record(root), "events_incr")["files_read"], 0);
    assert_eq!(snapshots(root), before);
}

#[test]
fn a_run_killed_before_its_commit_is_processed_once_by_the_next() {
    let dir = shop();
    let root = dir.path();
    let mut landed = land(root, "2026-11-01", 0, 30);
    let out = mesh(root, &["run", "--job", "events_incr"]);
    assert!(out.status.success(), "{}", both(&out));

    landed.extend(land(root, "2026-11-02", 0, 20));
    landed.extend(land(root, "2026-11-02", 1, 5));
    // Killed after its data files and metadata are written, before the catalog swap.
    let out = mesh_env(
        root,
        &["run", "--job", "events_incr"],
        &[("MESH_TEST_EXIT_AT", "commit")],
    );
    assert_eq!(out.status.code(), Some(86), "{}", both(&out));
    assert!(text(&out.stderr).contains("exiting at `commit`"), "{}", both(&out));
    assert_eq!(
        rows_of(root, "f01_refined.events_incr").len(),
        30,
        "nothing of the killed run is visible"
    );

    let out = mesh(root, &["run", "--job", "events_incr"]);
    assert!(out.status.success(), "{}", both(&out));
    let m = job_metrics(&latest_record(root), "events_incr");
    assert_eq!(m["files_read"], 2, "the same input again: {m}");
    assert_eq!(
        rows_of(root, "f01_refined.events_incr"),
        expected_rows(&landed),
        "no duplicates, no gaps"
    );
    // And once committed, never again.
    let out = mesh(root, &["run", "--job", "events_incr"]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(job_metrics(&latest_record(root), "events_incr")["files_read"], 0);
    assert_eq!(rows_of(root, "f01_refined.events_incr"), expected_rows(&landed));
}

#[test]
fn forty_daily_intervals_into_a_month_partitioned_table_keep_every_day() {
    let dir = shop();
    let root = dir.path();
    let start = chrono::NaiveDate::from_ymd_opt(2026, 10, 10).unwrap();
    let mut landed = Vec::new();
    for k in 0..40 {
        landed.extend(land(root, &day(start, k), 0, 6 + (k as u32 % 4)));
    }
    let (first, last) = (day(start, 0), day(start, 39));
    let out = mesh(root, &["run", "--job", "daily_totals", "--from", &first, "--to", &last]);
    let msg = both(&out);
    assert!(out.status.success(), "{msg}");
    assert!(
        msg.contains("[40/40] 2026-11-18: done"),
        "progress per interval:\n{msg}"
    );
    let table = totals(root);
    assert_eq!(table, expected_totals(&landed), "every day of both months is present");
    assert_eq!(
        table
            .keys()
            .map(|k| &k.0)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        40
    );

    // Daily runs, one at a time (the schedule's way): a day changes only that day.
    landed.extend(land(root, "2026-11-02", 1, 9));
    let out = mesh(
        root,
        &["run", "--job", "daily_totals", "--param", "run_date=2026-11-02"],
    );
    assert!(out.status.success(), "{}", both(&out));
    let after = totals(root);
    assert_eq!(after, expected_totals(&landed));
    let changed: Vec<&String> = after
        .iter()
        .filter(|(k, v)| table.get(*k) != Some(*v))
        .map(|(k, _)| &k.0)
        .collect();
    assert!(
        !changed.is_empty() && changed.iter().all(|d| *d == "2026-11-02"),
        "{changed:?}"
    );

    // A backfill over the same range now has nothing to do.
    let out = mesh(root, &["run", "--job", "daily_totals", "--from", &first, "--to", &last]);
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        text(&out.stdout).contains("0 interval(s) run, 40 already done"),
        "{}",
        both(&out)
    );
}

#[test]
fn a_backfill_killed_half_way_resumes_to_the_same_table() {
    let start = chrono::NaiveDate::from_ymd_opt(2026, 10, 20).unwrap();
    let (first, last) = (day(start, 0), day(start, 29));
    let domains = [shop(), shop()];
    let mut landed = Vec::new();
    for d in &domains {
        landed.clear();
        for k in 0..30 {
            landed.extend(land(d.path(), &day(start, k), 0, 5 + (k as u32 % 3)));
        }
    }
    let args = [
        "run",
        "--pipeline",
        "main",
        "--from",
        first.as_str(),
        "--to",
        last.as_str(),
    ];
    let out = mesh(domains[0].path(), &args);
    assert!(out.status.success(), "{}", both(&out));

    // Killed while committing the 16th interval's daily_totals (events_incr commits once, first).
    let killed = domains[1].path();
    let out = mesh_env(killed, &args, &[("MESH_TEST_EXIT_AT", "commit#17")]);
    assert_eq!(out.status.code(), Some(86), "{}", both(&out));
    assert!(
        text(&out.stderr).contains("[16/30] 2026-11-04: running"),
        "{}",
        both(&out)
    );
    let out = mesh(killed, &args);
    let msg = both(&out);
    assert!(out.status.success(), "{msg}");
    assert_eq!(msg.matches("already done, skipped").count(), 15, "{msg}");
    assert!(msg.contains("15 interval(s) run, 15 already done"), "{msg}");

    assert_eq!(totals(killed), totals(domains[0].path()));
    assert_eq!(totals(killed), expected_totals(&landed));
    assert_eq!(
        rows_of(killed, "f01_refined.events_incr"),
        expected_rows(&landed),
        "the incremental step too"
    );
}

#[test]
fn a_failing_interval_stops_the_backfill_naming_its_date() {
    let dir = shop();
    let root = dir.path();
    for k in 0..3 {
        land(
            root,
            &day(chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(), k),
            0,
            4,
        );
    }
    // A result row outside the interval would be duplicated by the next run: refused.
    std::fs::write(
        root.join("projects/shop/sql/daily_totals.sql"),
        "SELECT event_date AS sale_date, store_id, count(*) AS orders, sum(qty) AS units\n\
         FROM f01_raw.events WHERE event_date <= '${interval_start}' GROUP BY event_date, store_id\n",
    )
    .unwrap();
    let out = mesh(
        root,
        &[
            "run",
            "--job",
            "daily_totals",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-03",
        ],
    );
    let msg = both(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains("backfill stopped at 2026-11-02"), "{msg}");
    assert!(msg.contains("outside the interval 2026-11-02"), "{msg}");
    assert!(msg.contains("[1/3] 2026-11-01: done"), "{msg}");
}

#[test]
fn a_column_typo_fails_in_one_attempt_naming_the_file_and_column() {
    let dir = example_domain();
    let root = dir.path();
    let sql_path = root.join("projects/sales/sql/daily_sales.sql");
    let sql = std::fs::read_to_string(&sql_path).unwrap();
    assert!(sql.contains("quantity"));
    std::fs::write(&sql_path, sql.replacen("quantity", "quantty", 1)).unwrap();
    let out = mesh(root, &["run", "sales", "--sample-data", "--rows", "2000"]);
    let msg = both(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains("projects/sales/sql/daily_sales.sql"), "{msg}");
    assert!(msg.contains("quantty"), "{msg}");
    // Worded as what it is, with the column it probably meant.
    assert!(msg.contains("the query fails"), "{msg}");
    assert!(!msg.contains("cannot read"), "{msg}");
    assert!(msg.contains("help: did you mean `quantity`?"), "{msg}");
    let record = latest_record(root);
    let step = record["pipelines"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "daily_sales")
        .unwrap()
        .clone();
    assert_eq!(
        step["attempts"], 1,
        "retries = 2 in the manifest, but no retry can fix a typo"
    );
    assert!(step["seconds"].as_f64().unwrap() < 1.0, "{step}");
    // Without a terminal, each step start and end is a log line.
    let stderr = text(&out.stderr);
    assert!(stderr.contains("step started"), "{stderr}");
    assert!(stderr.contains("step failed"), "{stderr}");
    assert!(stderr.contains("run_date = "), "{stderr}");
}

#[test]
fn validate_flags_a_daily_filter_into_a_monthly_overwrite() {
    let dir = example_domain();
    let root = dir.path();
    let sql_path = root.join("projects/sales/sql/daily_sales.sql");
    let sql = std::fs::read_to_string(&sql_path).unwrap();
    let trap = format!(
        "SELECT * FROM ({}) WHERE sale_date = '${{run_date}}'\n",
        sql.trim().trim_end_matches(';')
    );
    std::fs::write(&sql_path, trap).unwrap();
    let started = Instant::now();
    let out = mesh(root, &["validate"]);
    let msg = both(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("overwrite_partitions with a filter on `${run_date}`"),
        "{msg}"
    );
    assert!(msg.contains("partitions by month"), "{msg}");
    assert!(
        msg.contains("[jobs.time_range]"),
        "the help points to time-range jobs: {msg}"
    );
    assert!(started.elapsed().as_secs() < 30);
}

#[test]
fn an_incremental_iceberg_input_reads_only_appended_rows_and_refuses_a_rewrite() {
    let dir = shop();
    let root = dir.path();
    let mut landed = Vec::new();
    for (k, date) in ["2026-11-01", "2026-11-02", "2026-11-03"].iter().enumerate() {
        landed.extend(land(root, date, 0, 10 + k as u32));
        for job in ["events_incr", "events_copy"] {
            let out = mesh(root, &["run", "--job", job]);
            assert!(out.status.success(), "{}", both(&out));
        }
        let m = job_metrics(&latest_record(root), "events_copy");
        assert_eq!(
            m["rows_read"],
            10 + k as u64,
            "only the rows appended since the bookmark: {m}"
        );
        assert_eq!(rows_of(root, "f01_curated.events_copy"), expected_rows(&landed));
    }
    // The input is overwritten (not an append): the next incremental read names the snapshot.
    let out = mesh(root, &["run", "--job", "events_reset"]);
    assert!(out.status.success(), "{}", both(&out));
    let out = mesh(root, &["run", "--job", "events_copy"]);
    let msg = both(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains("(overwrite) rewrote rows after snapshot"), "{msg}");
    assert!(msg.contains("on_rewrite = \"full_read\""), "{msg}");
    let record = latest_record(root);
    let step = &record["pipelines"][0]["steps"][0];
    assert_eq!(step["attempts"], 1, "not retried: {step}");
    assert_eq!(
        rows_of(root, "f01_curated.events_copy"),
        expected_rows(&landed),
        "nothing committed"
    );
}

#[test]
fn validate_explains_incremental_and_time_range_mistakes() {
    let dir = shop();
    let manifest = dir.path().join("projects/shop/project.toml");
    let s = std::fs::read_to_string(&manifest).unwrap();
    let s = s
        .replacen(
            "output = \"refined.events_incr\"\nmode = \"append\"",
            "output = \"refined.events_incr\"\nmode = \"overwrite_partitions\"",
            1,
        )
        .replacen(
            "[jobs.incremental]\ninputs = [\"refined.events_incr\"]\n",
            "[jobs.incremental]\ninputs = [\"raw.events\"]\non_rewrite = \"maybe\"\n",
            1,
        )
        .replacen(
            "column = \"sale_date\"\ngrain = \"day\"",
            "column = \"units\"\ngrain = \"week\"",
            1,
        );
    std::fs::write(&manifest, s).unwrap();
    let out = mesh(dir.path(), &["validate"]);
    let msg = both(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    for expected in [
        "an incremental job cannot use mode `overwrite_partitions`",
        "`raw.events` is not one of the job's inputs",
        "`maybe` is not a choice",
        "`week` is not a grain",
        "`units` is a long column",
    ] {
        assert!(msg.contains(expected), "missing {expected:?} in:\n{msg}");
    }
}

#[test]
fn new_job_scaffolds_time_range_and_incremental_jobs_that_validate_and_names_what_to_fill_in() {
    let dir = shop();
    let root = dir.path();
    // The output and input are declared: the scaffold selects the output's columns, in order,
    // from the input's columns of the same name, and filters on the input's time column; it
    // validates as written, with nothing left to fill in.
    let out = mesh(
        root,
        &[
            "new",
            "job",
            "shop",
            "events_again",
            "--input",
            "raw.events",
            "--output",
            "refined.events_full",
            "--time-column",
            "event_date",
            "--grain",
            "day",
        ],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("left to fill in"),
        "{}",
        both(&out)
    );
    let manifest = std::fs::read_to_string(root.join("projects/shop/project.toml")).unwrap();
    assert!(
        manifest.contains("[jobs.time_range]\ncolumn = \"event_date\"\ngrain = \"day\""),
        "{manifest}"
    );
    let sql = std::fs::read_to_string(root.join("projects/shop/sql/events_again.sql")).unwrap();
    assert!(
        sql.contains("SELECT\n  event_id,\n  store_id,\n  qty,\n  event_date\nFROM f01_raw.events\n"),
        "{sql}"
    );
    assert!(
        sql.contains("WHERE event_date >= '${interval_start}' AND event_date < '${interval_end}'"),
        "{sql}"
    );
    assert!(!sql.contains("TODO"), "{sql}");
    let out = mesh(root, &["validate"]);
    assert!(out.status.success(), "{}", both(&out));

    let out = mesh(
        root,
        &[
            "new",
            "job",
            "shop",
            "copy_again",
            "--input",
            "raw.events",
            "--output",
            "refined.events_full",
            "--incremental",
        ],
    );
    assert!(out.status.success(), "{}", both(&out));
    let manifest = std::fs::read_to_string(root.join("projects/shop/project.toml")).unwrap();
    assert!(
        manifest.contains("[jobs.incremental]\ninputs = [\"raw.events\"]"),
        "{manifest}"
    );
    let out = mesh(root, &["validate"]);
    assert!(out.status.success(), "{}", both(&out));

    // The input lacks the output's time column: refused, naming its date column and the flag
    // that filters on it; nothing is written.
    let totals = [
        "new",
        "job",
        "shop",
        "totals_again",
        "--input",
        "raw.events",
        "--output",
        "curated.daily_totals",
        "--time-column",
        "sale_date",
        "--grain",
        "day",
    ];
    let out = mesh(root, &totals);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let msg = both(&out);
    assert!(
        msg.contains("the input raw.events has no column `sale_date`")
            && msg.contains("its date/time columns are event_date (date): pass --input-time-column COLUMN"),
        "{msg}"
    );
    assert!(!root.join("projects/shop/sql/totals_again.sql").exists());

    // With --input-time-column the filter is on it and it is selected as the time column;
    // output columns the input lacks are typed NULLs with a TODO line, named on stdout. Names
    // and types match, so the scaffold validates.
    let mut args = totals.to_vec();
    args.extend(["--input-time-column", "event_date"]);
    let out = mesh(root, &args);
    assert!(out.status.success(), "{}", both(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("columns left to fill in") && stdout.contains(": orders, units"),
        "{stdout}"
    );
    let sql = std::fs::read_to_string(root.join("projects/shop/sql/totals_again.sql")).unwrap();
    for line in [
        "  event_date AS sale_date,",
        "  store_id,",
        "  CAST(NULL AS bigint) AS orders,  -- TODO: compute orders",
        "  CAST(NULL AS bigint) AS units  -- TODO: compute units",
        "-- Keep only the run's interval (end excluded) by its event_date.",
        "WHERE event_date >= '${interval_start}' AND event_date < '${interval_end}'",
    ] {
        assert!(sql.contains(line), "missing {line:?} in:\n{sql}");
    }
    let out = mesh(root, &["validate"]);
    assert!(out.status.success(), "{}", both(&out));

    // An incremental job that would overwrite its output is refused and nothing is written.
    let out = mesh(
        root,
        &[
            "new",
            "job",
            "shop",
            "bad_copy",
            "--input",
            "raw.events",
            "--output",
            "refined.events_full",
            "--incremental",
            "--mode",
            "overwrite",
        ],
    );
    let msg = both(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(msg.contains("an incremental job cannot use mode `overwrite`"), "{msg}");
    assert!(!root.join("projects/shop/sql/bad_copy.sql").exists());
}
