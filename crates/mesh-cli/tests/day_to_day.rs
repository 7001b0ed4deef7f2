//! Issue 27, the day-to-day surface, on the real binary: failed checks you can act on (their
//! rows printed, kept and readable with `mesh sql`, every result in the record and the report,
//! the report checked in headless Chromium), rejected rows as a table, `mesh runs`, a report's
//! history up to its run, and the run summary.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{both, example_domain, mesh};

fn sql_json(root: &Path, query: &str) -> Vec<serde_json::Value> {
    let out = mesh(root, &["sql", query, "--format", "json"]);
    assert!(out.status.success(), "{query}: {}", both(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", both(&out)))
}

fn runs(root: &Path) -> Vec<serde_json::Value> {
    let out = mesh(root, &["runs", "--format", "json"]);
    assert!(out.status.success(), "{}", both(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn record(root: &Path, run: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(root.join(format!(".mesh/runs/{run}.json"))).unwrap()).unwrap()
}

/// The example domain with clean_orders' range check on `amount` tightened to at most 100, so
/// it fails on most orders.
fn with_failing_range() -> tempfile::TempDir {
    let dir = example_domain();
    let toml = dir.path().join("projects/legacy_refactor/project.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let tight = text.replace(
        r#"{ type = "range", column = "amount", min = 0, max = 1000000 }"#,
        r#"{ type = "range", column = "amount", min = 0, max = 100 }"#,
    );
    assert_ne!(text, tight, "the example's range check moved");
    std::fs::write(&toml, tight).unwrap();
    dir
}

fn chromium_dom(page: &Path) -> String {
    let chromium = PathBuf::from(std::env::var_os("MESH_CHROMIUM").expect("MESH_CHROMIUM is set (scripts/test.sh)"));
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium starts");
    assert!(out.status.success(), "chromium failed: {}", both(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "the page logged: {}", console.join("\n"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_failed_check_shows_keeps_and_records_its_failing_rows() {
    let dir = with_failing_range();
    let root = dir.path();
    let out = mesh(root, &["run", "legacy_refactor", "--sample-data", "--rows", "2000"]);
    assert!(!out.status.success(), "the check fails the run: {}", both(&out));
    let text = both(&out);
    let run = runs(root)[0]["run_id"].as_str().unwrap().to_string();

    // The record keeps every check's result of the failed step, with its query and sample.
    let rec = record(root, &run);
    let step = rec["pipelines"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "clean_orders")
        .unwrap()
        .clone();
    assert_eq!(step["status"], "failed");
    let checks = step["metrics"]["checks"]
        .as_array()
        .expect("checks in a failed step's metrics");
    assert_eq!(checks.len(), 3, "{checks:?}");
    assert_eq!(checks.iter().filter(|c| c["passed"] == true).count(), 2);
    let range = checks.iter().find(|c| c["name"] == "range(amount)").unwrap();
    let failing = range["failing_rows"].as_u64().unwrap();
    assert!(failing > 100, "most orders are over 100: {failing}");
    assert!(
        range["sql"]
            .as_str()
            .unwrap()
            .contains(r#"CAST("amount" AS DOUBLE) > 100"#),
        "{range}"
    );
    assert!(checks.iter().all(|c| !c["sql"].as_str().unwrap_or("").is_empty()));
    // The sample: the table's identifier (order_id) and the checked column, 5 rows.
    assert_eq!(range["sample_columns"], serde_json::json!(["order_id", "amount"]));
    let sample = range["sample"].as_array().unwrap();
    assert_eq!(sample.len(), 5);
    for row in sample {
        let amount: f64 = row[1].as_str().unwrap().parse().unwrap();
        assert!(amount > 100.0, "a sampled row breaks the check: {row}");
    }

    // Printed: the first five rows with their keys, and how to read the kept ones.
    assert!(text.contains(&format!("failing rows (first 5 of {failing}")), "{text}");
    assert!(text.contains("order_id | amount"), "{text}");
    let first_id = sample[0][0].as_str().unwrap();
    let first_amount = sample[0][1].as_str().unwrap();
    assert!(
        text.lines()
            .any(|l| l.split('|').map(str::trim).collect::<Vec<_>>() == [first_id, first_amount]),
        "{text}"
    );
    assert!(text.contains("f01_refined.orders_clean_check_failures"), "{text}");

    // Kept: a bounded sample, readable in either name form, each row failing the check.
    for table in [
        "refined.orders_clean_check_failures",
        "f01_refined.orders_clean_check_failures",
    ] {
        let rows = sql_json(
            root,
            &format!("SELECT run_id, job, \"check\", key, row FROM {table} WHERE run_id = '{run}'"),
        );
        assert_eq!(rows.len() as u64, failing.min(100), "{table}");
        for r in &rows {
            assert_eq!(
                (r["job"].as_str(), r["check"].as_str()),
                (Some("clean_orders"), Some("range(amount)"))
            );
            let row: serde_json::Value = serde_json::from_str(r["row"].as_str().unwrap()).unwrap();
            let amount: f64 = row["amount"].to_string().trim_matches('"').parse().unwrap();
            assert!(amount > 100.0, "{r}");
            assert_eq!(r["key"].as_str().unwrap(), format!("order_id={}", row["order_id"]));
        }
    }

    // The report: every check with its result, query and failing rows, in a browser.
    let page = root.join("report.html");
    let out = mesh(root, &["report", &run, "--out", page.to_str().unwrap()]);
    assert!(out.status.success(), "{}", both(&out));
    let dom = chromium_dom(&page);
    assert!(
        dom.contains("2 of 3 passed"),
        "the checks card counts the failed step's checks"
    );
    assert!(!dom.contains("0 of 0 passed"));
    assert_eq!(dom.matches("<tr class=\"check ").count(), 3, "one row per check");
    let bad = dom
        .split("<tr class=\"check bad\">")
        .nth(1)
        .expect("the failed check's row");
    let bad = &bad[..bad
        .find("</tr>\n")
        .or(bad.find("</tbody></table></td></tr>"))
        .unwrap_or(bad.len())];
    assert!(
        bad.contains("range(amount)") && bad.contains("CAST(\"amount\" AS DOUBLE) &gt; 100"),
        "{bad}"
    );
    assert!(bad.contains("<table class=\"sample\">"), "{bad}");
    assert!(
        bad.contains(&format!("<td>{first_id}</td><td>{first_amount}</td>")),
        "{bad}"
    );
}

#[test]
fn rejected_rows_are_a_table_and_the_summary_counts_them() {
    let dir = example_domain();
    let root = dir.path();
    let out = mesh(root, &["run", "legacy_refactor", "--sample-data", "--rows", "2000"]);
    assert!(out.status.success(), "{}", both(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let run = runs(root)[0]["run_id"].as_str().unwrap().to_string();
    let rec = record(root, &run);
    let rejected: u64 = rec["pipelines"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["metrics"]["rows_rejected"].as_u64())
        .sum();
    assert!(rejected > 0, "the sample legacy orders have malformed rows");
    assert!(stdout.contains(&format!("· {rejected} row(s) rejected ·")), "{stdout}");

    for table in ["raw.legacy_orders_rejected", "f01_raw.legacy_orders_rejected"] {
        let rows = sql_json(
            root,
            &format!("SELECT file, line, column_name, reason, run_id FROM {table} ORDER BY line"),
        );
        assert_eq!(rows.len() as u64, rejected, "{table}: {rows:?}");
        for r in &rows {
            assert_eq!(r["run_id"], run.as_str());
            assert!(
                r["file"].as_str().unwrap().ends_with(".csv") && r["line"].as_u64().unwrap() > 1,
                "{r}"
            );
            assert!(!r["reason"].as_str().unwrap().is_empty());
        }
    }
    // A second run reads the same files: their bad rows are rejected and counted again, but
    // quarantined once (by the first run), not once per run.
    let out = mesh(root, &["run", "legacy_refactor"]);
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("· {rejected} row(s) rejected ·")),
        "{}",
        both(&out)
    );
    let by_run = sql_json(
        root,
        "SELECT run_id, COUNT(*) AS n FROM raw.legacy_orders_rejected GROUP BY run_id",
    );
    assert_eq!(by_run.len(), 1, "{by_run:?}");
    assert_eq!(by_run[0]["run_id"], run.as_str());
    assert_eq!(by_run[0]["n"].as_u64(), Some(rejected));
    // SHOW TABLES lists it, in the lake once rows were set aside.
    let tables = sql_json(root, "SHOW TABLES");
    let listed = tables
        .iter()
        .find(|t| t["table"] == "raw.legacy_orders_rejected")
        .unwrap_or_else(|| panic!("{tables:?}"));
    assert_eq!(listed["name"], "f01_raw.legacy_orders_rejected");
    assert_eq!(listed["exists"], true);
    // `layer.table` for the domain's own tables too, the same rows as the database form.
    let a = sql_json(root, "SELECT COUNT(*) AS n FROM refined.orders_clean");
    let b = sql_json(root, "SELECT COUNT(*) AS n FROM f01_refined.orders_clean");
    assert_eq!(a, b);
    assert!(a[0]["n"].as_u64().unwrap() > 0);
    // A raw table that does not quarantine has no such table; a typo gets its hint.
    let out = mesh(root, &["sql", "SELECT * FROM raw.sales_events_rejected"]);
    assert!(!out.status.success(), "{}", both(&out));
    let out = mesh(root, &["sql", "SELECT * FROM refined.orders_clen"]);
    assert!(
        both(&out).contains("did you mean `refined.orders_clean`?"),
        "{}",
        both(&out)
    );
}

#[test]
fn runs_are_listed_and_a_report_shows_history_up_to_its_run() {
    let dir = with_failing_range();
    let root = dir.path();
    let out = mesh(root, &["runs"]);
    assert!(out.status.success() && both(&out).contains("no runs"), "{}", both(&out));
    let first = mesh(root, &["run", "sales", "--sample-data", "--rows", "2000"]);
    assert!(first.status.success(), "{}", both(&first));
    let second = mesh(root, &["run", "legacy_refactor"]);
    assert!(!second.status.success(), "{}", both(&second));
    let third = mesh(root, &["run", "sales"]);
    assert!(third.status.success(), "{}", both(&third));

    let list = runs(root);
    assert_eq!(list.len(), 3, "{list:?}");
    let ids: Vec<&str> = list.iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
    let statuses: Vec<&str> = list.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["succeeded", "failed", "succeeded"]);
    assert_eq!(list[1]["steps_failed"], 1);
    assert_eq!(
        list[1]["failed"],
        serde_json::json!(["legacy_refactor/main/clean_orders"])
    );
    assert_eq!(list[1]["steps_skipped"], 2);
    assert!(list
        .iter()
        .all(|r| r["env"] == "local" && r["started_at"].as_str().unwrap().starts_with("20")));
    let text = mesh(root, &["runs", "--limit", "2"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains(ids[0]) && text.contains(ids[1]) && !text.contains(ids[2]),
        "{text}"
    );
    assert!(text.contains("legacy_refactor/main/clean_orders"), "{text}");

    // The report of the first run knows nothing of the runs after it; the latest's has all.
    let page = root.join("first.html");
    let out = mesh(root, &["report", ids[2], "--out", page.to_str().unwrap()]);
    assert!(out.status.success(), "{}", both(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains(ids[0]) && !html.contains(ids[1]),
        "later runs in an older run's report"
    );
    let page = root.join("last.html");
    let out = mesh(root, &["report", ids[0], "--out", page.to_str().unwrap()]);
    assert!(out.status.success(), "{}", both(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains(ids[2]), "the latest run's history has the first run");
}

#[test]
fn the_summary_aligns_long_step_names() {
    let dir = example_domain();
    let root = dir.path();
    let toml = dir.path().join("projects/legacy_refactor/project.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let long = "orders_by_country_with_a_really_long_step_name";
    std::fs::write(
        &toml,
        text.replace(
            "job = \"orders_by_country\"",
            &format!("job = \"orders_by_country\", name = \"{long}\""),
        ),
    )
    .unwrap();
    let out = mesh(root, &["run", "legacy_refactor", "--sample-data", "--rows", "2000"]);
    assert!(out.status.success(), "{}", both(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !(l.starts_with("project ") && l.contains(" status ")))
        .take_while(|l| !l.starts_with("run record"))
        .filter(|l| !l.starts_with("    "))
        .collect();
    assert!(table.len() >= 4 && table.iter().any(|l| l.contains(long)), "{stdout}");
    // Every row's status starts where the header's does.
    let col = table[0].find("status").unwrap();
    for l in &table[1..] {
        let status = &l.chars().skip(col).collect::<String>();
        assert!(status.starts_with("succeeded"), "misaligned: {l}\n{stdout}");
    }
}

/// The steps of the latest run: (pipeline, step, depends_on).
fn latest_steps(root: &Path) -> Vec<(String, String, Vec<String>)> {
    let run = runs(root)[0]["run_id"].as_str().unwrap().to_string();
    let rec = record(root, &run);
    let mut steps = Vec::new();
    for p in rec["pipelines"].as_array().unwrap() {
        for s in p["steps"].as_array().unwrap() {
            assert_eq!(s["status"], "succeeded", "{s}");
            steps.push((
                p["pipeline"].as_str().unwrap().to_string(),
                s["name"].as_str().unwrap().to_string(),
                s["depends_on"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_str().unwrap().to_string())
                    .collect(),
            ));
        }
    }
    steps
}

fn names(steps: &[(String, String, Vec<String>)]) -> Vec<&str> {
    let mut n: Vec<&str> = steps.iter().map(|s| s.1.as_str()).collect();
    n.sort_unstable();
    n
}

#[test]
fn select_and_exclude_follow_the_lineage() {
    let dir = example_domain();
    let root = dir.path();
    let out = mesh(root, &["sample-data", "--rows", "2000"]);
    assert!(out.status.success(), "{}", both(&out));
    let run = |args: &[&str]| {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        let out = mesh(root, &all);
        assert!(out.status.success(), "{args:?}: {}", both(&out));
        latest_steps(root)
    };
    // The job and everything downstream, ordered by the lineage, outside any pipeline.
    let steps = run(&["--select", "clean_orders+"]);
    assert_eq!(names(&steps), ["clean_orders", "orders_by_country"]);
    assert!(steps.iter().all(|s| s.0 == "job"), "{steps:?}");
    let by_country = steps.iter().find(|s| s.1 == "orders_by_country").unwrap();
    assert_eq!(by_country.2, ["clean_orders"]);
    // Upstream, one job, by table (a raw table: its readers and downstream), by project.
    assert_eq!(
        names(&run(&["--select", "+orders_by_country"])),
        ["clean_orders", "orders_by_country"]
    );
    assert_eq!(names(&run(&["--select", "orders_by_country"])), ["orders_by_country"]);
    assert_eq!(
        names(&run(&["--select", "raw.legacy_orders+"])),
        ["clean_orders", "orders_by_country"]
    );
    assert_eq!(names(&run(&["--select", "f01_refined.orders_clean"])), ["clean_orders"]);
    assert_eq!(names(&run(&["--select", "curated.daily_sales+"])), ["daily_sales"]);
    assert_eq!(
        names(&run(&["--select", "daily_sales customers_latest"])),
        ["customers_latest", "daily_sales"]
    );
    assert_eq!(
        names(&run(&[
            "--select",
            "project:legacy_refactor",
            "--exclude",
            "orders_by_country"
        ])),
        ["clean_orders"]
    );
    assert_eq!(
        names(&run(&["--exclude", "legacy_refactor"])),
        ["customers_latest", "daily_sales"]
    );
    // Projects named on the command line bound the selection.
    assert_eq!(
        names(&run(&["sales", "--select", "raw.sales_events+"])),
        ["daily_sales"]
    );
    // A selector that matches nothing names what exists.
    let out = mesh(root, &["run", "--select", "clean_order+"]);
    assert!(!out.status.success());
    assert!(both(&out).contains("did you mean `clean_orders`?"), "{}", both(&out));
    let out = mesh(root, &["run", "--select", "clean_orders", "--exclude", "clean_orders"]);
    assert!(!out.status.success());
    assert!(both(&out).contains("leave no job to run"), "{}", both(&out));
}

#[test]
fn a_project_without_pipelines_runs_its_jobs() {
    let dir = example_domain();
    let root = dir.path();
    let toml = root.join("projects/legacy_refactor/project.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let at = text.find("[[pipelines]]").unwrap();
    std::fs::write(&toml, &text[..at]).unwrap();
    let out = mesh(root, &["run", "legacy_refactor", "--sample-data", "--rows", "2000"]);
    assert!(out.status.success(), "{}", both(&out));
    let steps = latest_steps(root);
    assert_eq!(names(&steps), ["clean_orders", "orders_by_country"]);
    let by_country = steps.iter().find(|s| s.1 == "orders_by_country").unwrap();
    assert_eq!(by_country.2, ["clean_orders"], "in lineage order");
}

/// meshkit's own default `min_input_files` differs from Glue's on purpose (README): no warning.
#[test]
fn render_does_not_warn_about_meshkits_default_min_input_files() {
    let dir = example_domain();
    let root = dir.path();
    let out_dir = root.join("infra-out");
    let out = mesh(root, &["render", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", both(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("min_input_files"), "{stderr}");
}
