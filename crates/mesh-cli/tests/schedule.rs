//! Scheduled runs of time-range jobs with the real `mesh` binary and the run's time set with
//! `--at`: complete intervals only (a 06:00 run processes yesterday, never today), catch-up
//! after skipped days, `lookback` for late files, and intervals in progress refused before
//! anything runs. Totals are checked against sums of the rows the test landed.

use std::collections::BTreeMap;
use std::path::Path;

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
partition_by = ["event_date"]
columns = [
  { name = "event_id", type = "string", nullable = false },
  { name = "qty", type = "long", nullable = false },
  { name = "event_date", type = "date", nullable = false },
]
[tables.csv]
header = true

[[tables]]
name = "daily_totals"
layer = "curated"
partition_by = ["month(sale_date)"]
columns = [
  { name = "sale_date", type = "date", nullable = false },
  { name = "orders", type = "long" },
  { name = "units", type = "long" },
]

[[tables]]
name = "run_log"
layer = "curated"
columns = [
  { name = "run_date", type = "date" },
  { name = "n", type = "long" },
]

[[jobs]]
name = "daily_totals"
sql = "sql/daily_totals.sql"
inputs = ["raw.events"]
output = "curated.daily_totals"
mode = "overwrite"
[jobs.time_range]
column = "sale_date"
grain = "day"
lookback = 1

# Not time-range: its ${run_date} is the run's date.
[[jobs]]
name = "run_log"
sql = "sql/run_log.sql"
inputs = ["raw.events"]
output = "curated.run_log"
mode = "append"

[[pipelines]]
name = "main"
schedule = "cron(0 6 * * ? *)"
steps = [{ job = "daily_totals" }, { job = "run_log" }]
"#;

fn shop() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo_root().join("domain.json"), dir.path().join("domain.json")).unwrap();
    let p = dir.path().join("projects/shop");
    std::fs::create_dir_all(p.join("sql")).unwrap();
    std::fs::write(p.join("project.toml"), PROJECT).unwrap();
    std::fs::write(
        p.join("sql/daily_totals.sql"),
        "SELECT event_date AS sale_date, count(*) AS orders, sum(qty) AS units\n\
         FROM f01_raw.events\n\
         WHERE event_date >= '${interval_start}' AND event_date < '${interval_end}'\n\
         GROUP BY event_date\n",
    )
    .unwrap();
    std::fs::write(
        p.join("sql/run_log.sql"),
        "SELECT CAST('${run_date}' AS DATE) AS run_date, count(*) AS n FROM f01_raw.events\n",
    )
    .unwrap();
    let out = mesh(dir.path(), &["validate"]);
    assert!(out.status.success(), "{}", both(&out));
    dir
}

/// Lands `n` rows for `date` in file `name`; returns (date, n, units).
fn land(root: &Path, date: &str, name: &str, n: i64, landed: &mut Vec<(String, i64)>) {
    let dir = root.join(format!(".mesh/lake/f01-raw-local/pj09/events/event_date={date}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from("event_id,qty,event_date\n");
    for i in 0..n {
        let qty = (i * 3) % 7 + 1;
        csv.push_str(&format!("{date}-{name}-{i},{qty},{date}\n"));
        landed.push((date.to_string(), qty));
    }
    std::fs::write(dir.join(format!("{name}.csv")), csv).unwrap();
}

fn expected(landed: &[(String, i64)], days: &[&str]) -> BTreeMap<String, (i64, i64)> {
    let mut m = BTreeMap::new();
    for (d, q) in landed.iter().filter(|(d, _)| days.contains(&d.as_str())) {
        let e: &mut (i64, i64) = m.entry(d.clone()).or_default();
        e.0 += 1;
        e.1 += q;
    }
    m
}

fn totals(root: &Path) -> BTreeMap<String, (i64, i64)> {
    let out = mesh(
        root,
        &[
            "sql",
            "SELECT CAST(sale_date AS VARCHAR) AS d, orders, units FROM f01_curated.daily_totals",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", both(&out));
    let num = |v: &serde_json::Value| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap();
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["d"].as_str().unwrap().to_string(),
                (num(&r["orders"]), num(&r["units"])),
            )
        })
        .collect()
}

fn latest_step(root: &Path, job: &str) -> serde_json::Value {
    let mut runs: Vec<_> = std::fs::read_dir(root.join(".mesh/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    runs.sort();
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.last().unwrap()).unwrap()).unwrap();
    record["pipelines"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == job)
        .unwrap_or_else(|| panic!("no step {job}: {record}"))
        .clone()
}

#[test]
fn scheduled_runs_process_complete_days_catch_up_and_look_back() {
    let dir = shop();
    let root = dir.path();
    let mut landed = Vec::new();
    for (k, d) in ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]
        .iter()
        .enumerate()
    {
        land(root, d, "a", 3 + k as i64, &mut landed);
    }
    // Part of today has landed by 06:00.
    land(root, "2026-11-06", "a", 2, &mut landed);

    // The schedule's 06:00 run: yesterday, never today; the plan is printed first.
    let out = mesh(root, &["run", "shop", "--at", "2026-11-06T06:00:00Z"]);
    let msg = both(&out);
    assert!(out.status.success(), "{msg}");
    assert!(
        msg.contains("shop/daily_totals: 2026-11-05 (complete, not done), 2026-11-06 in progress: not yet (complete at 2026-11-07 00:00:00 UTC)"),
        "{msg}"
    );
    assert_eq!(totals(root), expected(&landed, &["2026-11-05"]));
    let step = latest_step(root, "daily_totals");
    assert_eq!(
        step["metrics"]["intervals"],
        serde_json::json!(["2026-11-05"]),
        "{step}"
    );
    // The other job's ${run_date} is the run's date.
    let out = mesh(
        root,
        &[
            "sql",
            "SELECT CAST(run_date AS VARCHAR) AS d FROM f01_curated.run_log",
            "--format",
            "json",
        ],
    );
    assert!(both(&out).contains("2026-11-06"), "{}", both(&out));

    // A second run the same day: only the lookback day again, nothing new.
    let out = mesh(root, &["run", "shop", "--at", "2026-11-06T23:59:59Z"]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        latest_step(root, "daily_totals")["metrics"]["intervals"],
        serde_json::json!(["2026-11-05"])
    );

    // Three skipped days (11-06 to 11-08), their files landed meanwhile.
    land(root, "2026-11-06", "b", 4, &mut landed);
    land(root, "2026-11-07", "a", 5, &mut landed);
    land(root, "2026-11-08", "a", 6, &mut landed);
    land(root, "2026-11-09", "a", 1, &mut landed);
    let out = mesh(root, &["run", "shop", "--at", "2026-11-09T06:00:00Z"]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        latest_step(root, "daily_totals")["metrics"]["intervals"],
        serde_json::json!(["2026-11-05", "2026-11-06", "2026-11-07", "2026-11-08"]),
        "the lookback day, then the three missing days, oldest first"
    );
    let days = ["2026-11-05", "2026-11-06", "2026-11-07", "2026-11-08"];
    assert_eq!(totals(root), expected(&landed, &days));

    // A late file for yesterday: lookback = 1 picks it up at the next run.
    land(root, "2026-11-08", "late", 2, &mut landed);
    let out = mesh(root, &["run", "shop", "--at", "2026-11-09T07:00:00Z"]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(totals(root), expected(&landed, &days));
    assert!(!totals(root).contains_key("2026-11-09"), "today is never processed");

    // Today named explicitly: refused before anything runs (exit 2), nothing changes.
    let before = totals(root);
    for args in [
        vec![
            "run",
            "shop",
            "--at",
            "2026-11-09T07:00:00Z",
            "--param",
            "run_date=2026-11-09",
        ],
        vec![
            "run",
            "--job",
            "daily_totals",
            "--at",
            "2026-11-09T07:00:00Z",
            "--param",
            "run_date=2026-12-31",
        ],
        vec![
            "run",
            "--job",
            "daily_totals",
            "--at",
            "2026-11-09T07:00:00Z",
            "--from",
            "2026-11-07",
            "--to",
            "2026-11-09",
        ],
    ] {
        let out = mesh(root, &args);
        let msg = both(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {msg}");
        assert!(
            msg.contains("is not complete at the run's time 2026-11-09 07:00:00 UTC"),
            "{args:?}: {msg}"
        );
        assert!(msg.contains("help: a run processes only complete intervals"), "{msg}");
    }
    assert_eq!(totals(root), before);

    // A past day named explicitly runs exactly that day, although it is done.
    land(root, "2026-11-06", "c", 1, &mut landed);
    let out = mesh(
        root,
        &[
            "run",
            "--job",
            "daily_totals",
            "--at",
            "2026-11-09T07:00:00Z",
            "--param",
            "run_date=2026-11-06",
        ],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(totals(root), expected(&landed, &days));

    // A bad --at is a usage error naming the forms.
    let out = mesh(root, &["run", "shop", "--at", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(both(&out).contains("is not a time"), "{}", both(&out));
}

#[test]
fn validate_explains_start_lag_and_lookback_mistakes() {
    let dir = shop();
    let root = dir.path();
    let manifest = root.join("projects/shop/project.toml");
    for (bad, field, words) in [
        (
            "lookback = 1\nstart = \"2026-11-31\"",
            "time_range.start",
            "is not the start of a day interval",
        ),
        (
            "lookback = 1\nstart = \"2026-11\"",
            "time_range.start",
            "e.g. start = \"2026-11-01\"",
        ),
        ("lookback = 1\nlag = \"2 hours\"", "time_range.lag", "is not a lag"),
        ("lookback = 1\nlag = \"400d\"", "time_range.lag", "longer than 366 days"),
        ("lookback = -1", "time_range.lookback", "out of range"),
        ("lookback = 1\nlagg = \"2h\"", "lagg", "unknown field"),
    ] {
        let text = PROJECT.replace("lookback = 1", bad);
        std::fs::write(&manifest, text).unwrap();
        let out = mesh(root, &["validate"]);
        let msg = both(&out);
        assert_eq!(out.status.code(), Some(2), "{bad}: {msg}");
        assert!(msg.contains(field) && msg.contains(words), "{bad}: {msg}");
        assert!(msg.contains("projects/shop/project.toml"), "{msg}");
    }
    std::fs::write(
        &manifest,
        PROJECT.replace("lookback = 1", "lookback = 2\nstart = \"2026-10-01\"\nlag = \"1d6h\""),
    )
    .unwrap();
    let out = mesh(root, &["validate"]);
    assert!(out.status.success(), "{}", both(&out));
}

#[test]
fn backfill_bounds_and_parameters_say_what_they_mean() {
    let dir = shop();
    let root = dir.path();
    let mut landed = Vec::new();
    for d in ["2026-10-31", "2026-11-01", "2026-11-15", "2026-11-30", "2026-12-01"] {
        land(root, d, "a", 2, &mut landed);
    }
    // `--to 2026-11` on a daily job: every day of November, not only the 1st.
    let out = mesh(
        root,
        &[
            "run",
            "--job",
            "daily_totals",
            "--from",
            "2026-11",
            "--to",
            "2026-11",
            "--at",
            "2026-12-07T00:00:00Z",
        ],
    );
    let msg = both(&out);
    assert!(out.status.success(), "{msg}");
    assert!(msg.contains("30 interval(s) run"), "{msg}");
    assert_eq!(
        totals(root),
        expected(&landed, &["2026-11-01", "2026-11-15", "2026-11-30"])
    );

    // A huge range says how many intervals it really holds.
    let out = mesh(
        root,
        &[
            "run",
            "--job",
            "daily_totals",
            "--from",
            "0001-01-01",
            "--to",
            "9999-12-31",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(both(&out).contains("holds 3652059 day intervals"), "{}", both(&out));

    // interval_end is derived, never silently ignored; control characters are refused.
    for (param, words) in [
        ("interval_end=2026-11-05", "--param interval_end is not an input"),
        ("note=a\nINFO forged line", "control character"),
        ("note=a\rb", "control character"),
    ] {
        let out = mesh(root, &["run", "--job", "daily_totals", "--param", param]);
        assert_eq!(out.status.code(), Some(2), "{param:?}: {}", both(&out));
        assert!(both(&out).contains(words), "{param:?}: {}", both(&out));
        assert!(!both(&out).contains("\nINFO forged line"), "{}", both(&out));
    }

    // The log names the parameter that set the interval.
    let out = mesh(
        root,
        &["run", "--job", "daily_totals", "--param", "interval_start=2026-11-15"],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        both(&out).contains("interval_start = 2026-11-15 (from --param interval_start)"),
        "{}",
        both(&out)
    );
    assert!(!both(&out).contains("default"), "{}", both(&out));
}

#[test]
fn a_sql_file_with_a_byte_order_mark_runs_and_an_unsaved_record_hides_no_error() {
    let dir = shop();
    let root = dir.path();
    let mut landed = Vec::new();
    land(root, "2026-11-01", "a", 3, &mut landed);
    let sql = root.join("projects/shop/sql/daily_totals.sql");
    let text = std::fs::read_to_string(&sql).unwrap();
    std::fs::write(&sql, format!("\u{feff}{text}")).unwrap();
    let out = mesh(root, &["validate"]);
    assert!(out.status.success(), "{}", both(&out));
    let out = mesh(
        root,
        &["run", "--job", "daily_totals", "--param", "run_date=2026-11-01"],
    );
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(totals(root), expected(&landed, &["2026-11-01"]));

    // The run record cannot be written (its folder is a file): the failing step's own error
    // is still printed, then the record's.
    let log = root.join("projects/shop/sql/run_log.sql");
    std::fs::write(
        &log,
        "SELECT CAST('${run_date}' AS DATE) AS run_date, count(*) AS n FROM f01_raw.eventz\n",
    )
    .unwrap();
    std::fs::remove_dir_all(root.join(".mesh/runs")).unwrap();
    std::fs::write(root.join(".mesh/runs"), "not a folder").unwrap();
    let out = mesh(root, &["run", "--job", "run_log"]);
    let msg = both(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(msg.contains("eventz"), "the step's error: {msg}");
    assert!(msg.contains("run record"), "the record's error: {msg}");
}
