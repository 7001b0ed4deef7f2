//! `mesh plan`, job versions and `mesh state` on the real binary, with data written before
//! each change: the plan names the change and its class before anything runs, `mesh run`
//! refuses what the plan refuses (exit 2, nothing written), and `--full-refresh` makes a
//! changed job's table equal to a fresh environment's.

use std::path::{Path, PathBuf};

mod common;
use common::{both, mesh, repo_root};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
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
columns = [
  { name = "event_id", type = "string", nullable = false },
  { name = "store_id", type = "int", nullable = false },
  { name = "qty", type = "long", nullable = false },
  { name = "event_date", type = "date", nullable = false },
]

[[tables]]
name = "events_full"
layer = "refined"
partition_by = ["month(event_date)"]
columns = [
  { name = "event_id", type = "string", nullable = false },
  { name = "store_id", type = "int", nullable = false },
  { name = "qty", type = "long", nullable = false },
  { name = "event_date", type = "date", nullable = false },
]

[[tables]]
name = "store_totals"
layer = "curated"
columns = [
  { name = "store_id", type = "int", nullable = false },
  { name = "units", type = "long", nullable = false },
]

[[tables]]
name = "daily_totals"
layer = "curated"
columns = [
  { name = "sale_date", type = "date", nullable = false },
  { name = "store_id", type = "int", nullable = false },
  { name = "units", type = "long", nullable = false },
]

[[tables]]
name = "customers"
layer = "refined"
identifier = ["id"]
columns = [
  { name = "id", type = "string", nullable = false },
  { name = "d", type = "date", nullable = false },
  { name = "qty", type = "long" },
]

[[jobs]]
name = "events_incr"
sql = "sql/events_incr.sql"
inputs = ["raw.events"]
output = "refined.events_incr"
mode = "append"
#ON_CHANGE
[jobs.incremental]
inputs = ["raw.events"]

[[jobs]]
name = "events_full"
sql = "sql/events_full.sql"
inputs = ["raw.events"]
output = "refined.events_full"
mode = "overwrite"

[[jobs]]
name = "store_totals"
sql = "sql/store_totals.sql"
inputs = ["refined.events_incr"]
output = "curated.store_totals"
mode = "overwrite"

[[jobs]]
name = "daily_totals"
sql = "sql/daily_totals.sql"
inputs = ["raw.events"]
output = "curated.daily_totals"
mode = "overwrite"
[jobs.time_range]
column = "sale_date"
grain = "day"

[[jobs]]
name = "customers_latest"
sql = "sql/customers_latest.sql"
inputs = ["raw.events"]
output = "refined.customers"
mode = "merge"
[jobs.merge]
keys = ["id"]
"#;

const INCR_SQL: &str = "SELECT event_id, store_id, qty, event_date FROM f01_raw.events\n";
const DAILY_SQL: &str = "SELECT event_date AS sale_date, store_id, sum(qty) AS units\n\
    FROM f01_raw.events\n\
    WHERE event_date >= '${interval_start}' AND event_date < '${interval_end}'\n\
    GROUP BY event_date, store_id\n";

fn project_dir(root: &Path) -> PathBuf {
    root.join("projects/shop")
}

/// A domain with project `shop` (no data yet); `on_change` goes into the incremental job.
fn shop(on_change: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo_root().join("domain.json"), dir.path().join("domain.json")).unwrap();
    let p = project_dir(dir.path());
    std::fs::create_dir_all(p.join("sql")).unwrap();
    let manifest = PROJECT.replace(
        "#ON_CHANGE",
        &on_change.map(|o| format!("on_change = \"{o}\"")).unwrap_or_default(),
    );
    std::fs::write(p.join("project.toml"), manifest).unwrap();
    std::fs::write(p.join("sql/events_incr.sql"), INCR_SQL).unwrap();
    std::fs::write(p.join("sql/events_full.sql"), INCR_SQL).unwrap();
    std::fs::write(
        p.join("sql/store_totals.sql"),
        "SELECT store_id, sum(qty) AS units FROM f01_refined.events_incr GROUP BY store_id\n",
    )
    .unwrap();
    std::fs::write(p.join("sql/daily_totals.sql"), DAILY_SQL).unwrap();
    std::fs::write(
        p.join("sql/customers_latest.sql"),
        "SELECT store_id || '' AS id, max(event_date) AS d, sum(qty) AS qty FROM f01_raw.events GROUP BY store_id\n",
    )
    .unwrap();
    let out = mesh(dir.path(), &["validate"]);
    assert!(out.status.success(), "{}", both(&out));
    dir
}

/// Lands one raw CSV file of `n` rows for `date`.
fn land(root: &Path, date: &str, file: u32, n: u32) {
    let dir = root.join(format!(".mesh/lake/f01-raw-local/pj09/events/event_date={date}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from("event_id,store_id,qty,event_date\n");
    for i in 0..n {
        csv.push_str(&format!(
            "{date}-{file}-{i},{},{},{date}\n",
            i % 3 + 1,
            (i * 7 + file) % 10 + 1
        ));
    }
    std::fs::write(dir.join(format!("part-{file:05}.csv")), csv).unwrap();
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

/// Every row of a table as text, sorted.
fn rows(root: &Path, table: &str, order: &str) -> Vec<String> {
    sql(root, &format!("SELECT * FROM {table} ORDER BY {order}"))
        .iter()
        .map(|r| r.to_string())
        .collect()
}

fn run_ok(root: &Path, args: &[&str]) -> std::process::Output {
    let out = mesh(root, args);
    assert!(out.status.success(), "mesh {}: {}", args.join(" "), both(&out));
    out
}

fn plan_json(root: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["plan", "--format", "json"];
    args.extend(extra);
    let out = run_ok(root, &args);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", both(&out)))
}

/// The changes of `plan` about `object` `name`.
fn changes<'a>(plan: &'a serde_json::Value, object: &str, name: &str) -> Vec<&'a serde_json::Value> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["object"] == object && c["name"] == name)
        .collect()
}

/// The changes of `plan` other than tables not written yet.
fn real_changes(plan: &serde_json::Value) -> Vec<&serde_json::Value> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "added")
        .collect()
}

fn edit(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains(from), "{} has no `{from}`", path.display());
    std::fs::write(path, s.replacen(from, to, 1)).unwrap();
}

/// The acceptance case: an incremental job with data from two runs changes its SQL. The plan
/// reports it stale (what was read, the downstream tables, the fix), `mesh run` refuses it with
/// exit 2 and writes nothing, and `--full-refresh` recomputes it to exactly the table a fresh
/// environment computes from the same files.
#[test]
fn a_changed_incremental_job_is_stale_and_a_full_refresh_equals_a_fresh_environment() {
    let d = shop(None);
    let root = d.path();
    land(root, "2026-11-02", 1, 6);
    run_ok(root, &["run", "--job", "events_incr"]);
    land(root, "2026-11-03", 2, 5);
    run_ok(root, &["run", "--job", "events_incr"]);
    run_ok(root, &["run", "--job", "store_totals"]);
    let before = rows(root, "f01_refined.events_incr", "event_id");
    assert_eq!(before.len(), 11);
    assert!(real_changes(&plan_json(root, &[])).is_empty(), "nothing changed yet");

    // Reformatting and comments are no new version.
    std::fs::write(
        project_dir(root).join("sql/events_incr.sql"),
        "-- every event\nselect event_id,\n       store_id, qty, event_date\n  from f01_raw.events;\n",
    )
    .unwrap();
    assert!(real_changes(&plan_json(root, &[])).is_empty());

    // A real change: quantities doubled.
    std::fs::write(
        project_dir(root).join("sql/events_incr.sql"),
        "SELECT event_id, store_id, qty * 2 AS qty, event_date FROM f01_raw.events\n",
    )
    .unwrap();
    let plan = plan_json(root, &[]);
    let job = changes(&plan, "job", "events_incr");
    assert_eq!(job.len(), 1, "{plan:#}");
    let job = job[0];
    assert_eq!(job["action"], "changed");
    assert_eq!(job["class"], "needs_rewrite");
    assert_eq!(job["details"][0], "its SQL changed");
    assert!(job["details"][1].as_str().unwrap().contains("raw.events"), "{job:#}");
    assert_eq!(
        job["downstream"],
        serde_json::json!(["refined.events_incr", "curated.store_totals"])
    );
    assert!(job["recompute"]
        .as_str()
        .unwrap()
        .starts_with("mesh run --job events_incr --full-refresh"));
    assert!(job["refused"].as_str().unwrap().contains("on_change is \"fail\""));
    let text_plan = text(&run_ok(root, &["plan"]).stdout);
    assert!(
        text_plan.contains("job shop/events_incr changed [needs a rewrite]"),
        "{text_plan}"
    );
    assert!(text_plan.contains("REFUSED"), "{text_plan}");

    // The run stops before anything is written, naming the job and the fix.
    land(root, "2026-11-04", 3, 4);
    let out = mesh(root, &["run", "--job", "events_incr"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = text(&out.stderr);
    assert!(err.contains("events_incr") && err.contains("--full-refresh"), "{err}");
    assert_eq!(
        rows(root, "f01_refined.events_incr", "event_id"),
        before,
        "nothing written"
    );
    // The pipeline-less run of another job that does not write the stale table is not stopped.
    run_ok(root, &["run", "--job", "events_full"]);

    // The full refresh: state reset and table emptied in one commit, then every file re-read.
    let out = run_ok(root, &["run", "--job", "events_incr", "--full-refresh"]);
    let err = text(&out.stderr);
    assert!(err.contains("full refresh of shop/events_incr: state reset"), "{err}");
    assert!(err.contains("11 row(s) removed from refined.events_incr"), "{err}");
    let refreshed = rows(root, "f01_refined.events_incr", "event_id");
    assert_eq!(refreshed.len(), 15);

    // A fresh environment with the same files and the new SQL.
    let fresh = shop(None);
    std::fs::copy(
        project_dir(root).join("sql/events_incr.sql"),
        project_dir(fresh.path()).join("sql/events_incr.sql"),
    )
    .unwrap();
    common::copy_dir(
        &root.join(".mesh/lake/f01-raw-local"),
        &fresh.path().join(".mesh/lake/f01-raw-local"),
    );
    run_ok(fresh.path(), &["run", "--job", "events_incr"]);
    assert_eq!(refreshed, rows(fresh.path(), "f01_refined.events_incr", "event_id"));
    let doubled = sql(root, "SELECT sum(qty) AS s FROM f01_refined.events_incr");
    let raw = sql(root, "SELECT sum(qty) AS s FROM f01_raw.events");
    assert_eq!(
        doubled[0]["s"].to_string().trim_matches('"').parse::<i64>().unwrap(),
        2 * raw[0]["s"].to_string().trim_matches('"').parse::<i64>().unwrap()
    );

    // The new version is committed with the state: no change left, and the next run goes on
    // incrementally (a new file only).
    assert!(changes(&plan_json(root, &[]), "job", "events_incr").is_empty());
    let state: serde_json::Value =
        serde_json::from_slice(&run_ok(root, &["state", "show", "events_incr", "--format", "json"]).stdout).unwrap();
    assert_eq!(state["fingerprint_committed"], state["fingerprint_now"]);
    assert_eq!(state["changed"], serde_json::json!([]));
    land(root, "2026-11-05", 4, 2);
    run_ok(root, &["run", "--job", "events_incr"]);
    assert_eq!(rows(root, "f01_refined.events_incr", "event_id").len(), 17);
}

/// `forward_only`: the run goes on, the rows written before stay as they were, new rows use
/// the new SQL, and the new version is recorded. `full_refresh`: the run refreshes by itself.
#[test]
fn on_change_policies_forward_only_and_full_refresh() {
    for policy in ["forward_only", "full_refresh"] {
        let d = shop(Some(policy));
        let root = d.path();
        land(root, "2026-11-02", 1, 3);
        run_ok(root, &["run", "--job", "events_incr"]);
        let sql_path = project_dir(root).join("sql/events_incr.sql");
        std::fs::write(
            &sql_path,
            "SELECT event_id, store_id, qty + 100 AS qty, event_date FROM f01_raw.events\n",
        )
        .unwrap();
        let plan = plan_json(root, &[]);
        let job = changes(&plan, "job", "events_incr");
        assert_eq!(job.len(), 1, "{plan:#}");
        assert!(job[0].get("refused").is_none(), "{policy}: {plan:#}");
        assert!(job[0]["recompute"].as_str().unwrap().contains(policy), "{plan:#}");
        land(root, "2026-11-03", 2, 2);
        let out = run_ok(root, &["run", "--job", "events_incr"]);
        let big = sql(
            root,
            "SELECT count(*) AS n FROM f01_refined.events_incr WHERE qty > 100",
        );
        let all = sql(root, "SELECT count(*) AS n FROM f01_refined.events_incr");
        let n = |v: &serde_json::Value| v["n"].to_string().trim_matches('"').parse::<i64>().unwrap();
        assert_eq!(n(&all[0]), 5, "{policy}");
        match policy {
            "forward_only" => assert_eq!(n(&big[0]), 2, "only the new file's rows use the new SQL"),
            _ => {
                assert_eq!(n(&big[0]), 5, "every row recomputed");
                assert!(text(&out.stderr).contains("full refresh of shop/events_incr"));
            }
        }
        assert!(
            changes(&plan_json(root, &[]), "job", "events_incr").is_empty(),
            "{policy}"
        );
    }
}

/// A time-range job whose SQL changed: the plan names the intervals done and a backfill; the
/// full refresh recomputes exactly those intervals (not only the latest one a fresh start
/// would do), to the table a fresh environment's backfill computes.
#[test]
fn a_changed_time_range_job_is_recomputed_over_its_done_intervals() {
    let d = shop(None);
    let root = d.path();
    for (k, day) in ["2026-11-02", "2026-11-03", "2026-11-04"].iter().enumerate() {
        land(root, day, k as u32 + 1, 4);
    }
    let at = ["--at", "2026-11-06T00:00:00Z"];
    let backfill = [
        "run",
        "--job",
        "daily_totals",
        "--from",
        "2026-11-02",
        "--to",
        "2026-11-04",
        at[0],
        at[1],
    ];
    run_ok(root, &backfill);
    let sql_path = project_dir(root).join("sql/daily_totals.sql");
    edit(&sql_path, "sum(qty) AS units", "sum(qty) * 10 AS units");
    let plan = plan_json(root, &[]);
    let job = changes(&plan, "job", "daily_totals");
    assert_eq!(job.len(), 1, "{plan:#}");
    let details = job[0]["details"].to_string();
    assert!(
        details.contains("3 interval(s) done with the old definition: 2026-11-02/2026-11-04"),
        "{details}"
    );
    assert!(
        job[0]["recompute"]
            .as_str()
            .unwrap()
            .contains("mesh run --job daily_totals --from 2026-11-02 --to 2026-11-04 --force"),
        "{plan:#}"
    );
    let out = mesh(root, &["run", "--job", "daily_totals", at[0], at[1]]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));

    let out = run_ok(root, &["run", "--job", "daily_totals", "--full-refresh", at[0], at[1]]);
    let err = text(&out.stderr);
    assert!(err.contains("[3/3] 2026-11-04 recomputed"), "{err}");
    let refreshed = rows(root, "f01_curated.daily_totals", "sale_date, store_id");

    let fresh = shop(None);
    std::fs::copy(&sql_path, project_dir(fresh.path()).join("sql/daily_totals.sql")).unwrap();
    common::copy_dir(
        &root.join(".mesh/lake/f01-raw-local"),
        &fresh.path().join(".mesh/lake/f01-raw-local"),
    );
    run_ok(fresh.path(), &backfill);
    assert_eq!(
        refreshed,
        rows(fresh.path(), "f01_curated.daily_totals", "sale_date, store_id")
    );
    assert_eq!(refreshed.len(), 9);
    // 2026-11-05 is due at --at as well: the refresh ran the intervals done before, then the
    // run processed what was due.
    let state: serde_json::Value =
        serde_json::from_slice(&run_ok(root, &["state", "show", "daily_totals", "--format", "json"]).stdout).unwrap();
    let intervals = state["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "mesh.state.daily_totals.intervals")
        .unwrap();
    assert_eq!(intervals["value"], "2026-11-02/2026-11-05", "{state:#}");
}

/// `mesh state reset` commits the reset (the rows stay) and says so; the next run re-reads
/// every file. `mesh state` refuses a stateless job and names an unknown one.
#[test]
fn state_show_and_reset() {
    let d = shop(None);
    let root = d.path();
    land(root, "2026-11-02", 1, 3);
    run_ok(root, &["run", "--job", "events_incr"]);
    let show = text(&run_ok(root, &["state", "show", "events_incr"]).stdout);
    assert!(
        show.contains("mesh.state.events_incr.bookmark.raw.events = {"),
        "{show}"
    );
    assert!(show.contains("mesh.state.events_incr.fingerprint = sql:"), "{show}");

    let out = run_ok(root, &["state", "reset", "shop/events_incr"]);
    let said = text(&out.stdout);
    assert!(
        said.contains("state reset (mesh.state.events_incr.bookmark.raw.events, mesh.state.events_incr.fingerprint)"),
        "{said}"
    );
    assert!(said.contains("the rows of refined.events_incr are kept"), "{said}");
    let show = text(&run_ok(root, &["state", "show", "events_incr"]).stdout);
    assert!(
        show.contains("mesh.state.events_incr.bookmark.raw.events = (none)"),
        "{show}"
    );
    // A second reset has nothing to do.
    let again = text(&run_ok(root, &["state", "reset", "events_incr"]).stdout);
    assert!(again.contains("nothing to reset"), "{again}");
    // The rows stayed; the next run reads the file again (an append job: twice the rows).
    assert_eq!(rows(root, "f01_refined.events_incr", "event_id").len(), 3);
    run_ok(root, &["run", "--job", "events_incr"]);
    assert_eq!(rows(root, "f01_refined.events_incr", "event_id").len(), 6);

    let out = mesh(root, &["state", "show", "events_full"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(text(&out.stderr).contains("keeps no state"), "{}", both(&out));
    let out = mesh(root, &["state", "reset", "events_incrr"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        text(&out.stderr).contains("did you mean `events_incr`?"),
        "{}",
        both(&out)
    );
    let out = mesh(root, &["run", "--job", "events_full", "--full-refresh"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
}

/// Table changes against the local catalog, each classified, refused ones stopping the runs
/// that write those tables (and only those), unless --allow-destructive.
#[test]
fn table_changes_against_the_environment_are_classified_and_refused() {
    let d = shop(None);
    let root = d.path();
    land(root, "2026-11-02", 1, 3);
    run_ok(root, &["run", "--job", "events_full"]);
    run_ok(root, &["run", "--job", "events_incr"]);
    run_ok(root, &["run", "--job", "store_totals"]);
    let manifest = project_dir(root).join("project.toml");
    // events_full: store_id int → long (promotion), a nullable column added, month → day.
    let full = "name = \"events_full\"\nlayer = \"refined\"\npartition_by = [\"month(event_date)\"]\ncolumns = [\n  { name = \"event_id\", type = \"string\", nullable = false },\n  { name = \"store_id\", type = \"int\", nullable = false },";
    edit(
        &manifest,
        full,
        "name = \"events_full\"\nlayer = \"refined\"\npartition_by = [\"day(event_date)\"]\ncolumns = [\n  { name = \"note\", type = \"string\" },\n  { name = \"event_id\", type = \"string\", nullable = false },\n  { name = \"store_id\", type = \"long\", nullable = false },",
    );
    // store_totals: units long → int (narrowing).
    edit(
        &manifest,
        "{ name = \"units\", type = \"long\", nullable = false },\n]\n\n[[tables]]\nname = \"daily_totals\"",
        "{ name = \"units\", type = \"int\", nullable = false },\n]\n\n[[tables]]\nname = \"daily_totals\"",
    );
    std::fs::write(
        project_dir(root).join("sql/events_full.sql"),
        "SELECT CAST(NULL AS STRING) AS note, event_id, CAST(store_id AS BIGINT) AS store_id, qty, event_date FROM f01_raw.events\n",
    )
    .unwrap();
    let plan = plan_json(root, &[]);
    let full = changes(&plan, "table", "refined.events_full");
    assert_eq!(full.len(), 1, "{plan:#}");
    assert_eq!(full[0]["class"], "type_promotion", "the worst of its changes");
    assert!(full[0]["refused"].is_null(), "spec evolution is applied: {plan:#}");
    let details = full[0]["details"].to_string();
    for want in [
        "column note (string) added",
        "column store_id: int → long",
        "partition spec [month(event_date)] → [day(event_date)]",
    ] {
        assert!(details.contains(want), "{want}: {details}");
    }
    let totals = changes(&plan, "table", "curated.store_totals");
    assert_eq!(totals[0]["class"], "breaking", "{plan:#}");
    assert!(totals[0]["details"][0]
        .as_str()
        .unwrap()
        .contains("units: long → int is not a type promotion"));
    // The job that writes the refused one is stopped; the others run, and the first write
    // brings events_full to its manifest (a column, a promotion, spec evolution).
    let out = mesh(root, &["run", "--job", "store_totals"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(text(&out.stderr).contains("refused"), "{}", both(&out));
    run_ok(root, &["run", "--job", "events_incr"]);
    run_ok(root, &["run", "--job", "events_full"]);
    let shown = text(&run_ok(root, &["table", "show", "refined.events_full", "--format", "json"]).stdout);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["partition_spec"][0]["transform"], "day", "{shown:#}");
    // The manifest's column order (note first), each column keeping its field id.
    let columns = shown["schema"].as_array().unwrap();
    assert_eq!(columns[0]["name"], "note", "{shown:#}");
    let max_id = columns.iter().map(|c| c["id"].as_i64().unwrap()).max().unwrap();
    assert_eq!(
        columns[0]["id"].as_i64(),
        Some(max_id),
        "a new column gets the next field id: {shown:#}"
    );
    let store = columns.iter().find(|c| c["name"] == "store_id").unwrap();
    assert_eq!(store["type"], "long", "{shown:#}");
    let plan = plan_json(root, &[]);
    assert!(changes(&plan, "table", "refined.events_full").is_empty(), "{plan:#}");
    // A dropped column: destructive, refused by the plan and the run alike; with
    // --allow-destructive dropped from the table's schema.
    edit(&manifest, "  { name = \"note\", type = \"string\" },\n", "");
    std::fs::write(
        project_dir(root).join("sql/events_full.sql"),
        "SELECT event_id, CAST(store_id AS BIGINT) AS store_id, qty, event_date FROM f01_raw.events\n",
    )
    .unwrap();
    let plan = plan_json(root, &[]);
    let dropped = changes(&plan, "table", "refined.events_full");
    assert_eq!(dropped[0]["class"], "destructive", "{plan:#}");
    assert!(
        dropped[0]["refused"]
            .as_str()
            .unwrap()
            .contains("--allow-destructive for this run"),
        "{plan:#}"
    );
    let out = mesh(root, &["run", "--job", "events_full"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    run_ok(root, &["run", "--job", "events_full", "--allow-destructive"]);
    let shown = text(&run_ok(root, &["table", "show", "refined.events_full", "--format", "json"]).stdout);
    assert!(!shown.contains("\"note\""), "{shown}");
    assert!(changes(&plan_json(root, &[]), "table", "refined.events_full").is_empty());
    let out = mesh(root, &["run", "--job", "store_totals", "--allow-destructive"]);
    assert_ne!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        text(&out.stderr)
            .contains("warning: --allow-destructive: going on despite changed shop/curated.store_totals [breaking]"),
        "{}",
        both(&out)
    );

    // A table dropped from the manifest stays in the catalog: reported as orphaned.
    let s = std::fs::read_to_string(&manifest).unwrap();
    let start = s.find("[[tables]]\nname = \"store_totals\"").unwrap();
    let end = s[start..].find("[[tables]]\nname = \"daily_totals\"").unwrap() + start;
    let jstart = s.find("[[jobs]]\nname = \"store_totals\"").unwrap();
    let jend = s[jstart..].find("[[jobs]]\nname = \"daily_totals\"").unwrap() + jstart;
    let s = format!("{}{}{}", &s[..start], &s[end..jstart], &s[jend..]);
    std::fs::write(&manifest, s).unwrap();
    let plan = plan_json(root, &[]);
    let gone = changes(&plan, "table", "f01_curated.store_totals");
    assert_eq!(gone.len(), 1, "{plan:#}");
    assert_eq!(gone[0]["action"], "removed");
    assert_eq!(gone[0]["class"], "destructive");
}

fn git(root: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args([
            "-c",
            "user.email=t@example.com",
            "-c",
            "user.name=t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", both(&out));
}

/// The model against a git ref: every kind of change at once, snapshot-tested as JSON and as
/// the Markdown a pull request shows.
#[test]
fn plan_against_a_git_ref_json_and_markdown() {
    let d = shop(None);
    let root = d.path();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "domain.json", "projects"]);
    git(root, &["commit", "-q", "-m", "base"]);
    let manifest = project_dir(root).join("project.toml");
    // A promotion, a narrowing, a dropped and two added columns (nullable, NOT NULL), a
    // partition change, a moved table, a new table, and changed jobs (stateful and not).
    edit(
        &manifest,
        "{ name = \"store_id\", type = \"int\", nullable = false },\n  { name = \"units\"",
        "{ name = \"store_id\", type = \"long\", nullable = false },\n  { name = \"units\"",
    );
    edit(&manifest, "{ name = \"units\", type = \"long\", nullable = false },\n]\n\n[[tables]]\nname = \"daily_totals\"", "{ name = \"units\", type = \"int\", nullable = false },\n  { name = \"region\", type = \"string\" },\n  { name = \"tier\", type = \"int\", nullable = false },\n]\n\n[[tables]]\nname = \"daily_totals\"");
    edit(
        &manifest,
        "partition_by = [\"month(event_date)\"]",
        "partition_by = [\"day(event_date)\"]",
    );
    edit(
        &manifest,
        "name = \"daily_totals\"\nlayer = \"curated\"",
        "name = \"daily_totals\"\nlayer = \"refined\"",
    );
    edit(
        &manifest,
        "output = \"curated.daily_totals\"",
        "output = \"refined.daily_totals\"",
    );
    edit(&manifest, "  { name = \"sale_date\", type = \"date\", nullable = false },\n  { name = \"store_id\", type = \"int\", nullable = false },\n  { name = \"units\", type = \"long\", nullable = false },", "  { name = \"sale_date\", type = \"date\", nullable = false },\n  { name = \"units\", type = \"long\", nullable = false },");
    std::fs::write(
        project_dir(root).join("sql/daily_totals.sql"),
        DAILY_SQL.replace("store_id, sum", "sum").replace(", store_id\n", "\n"),
    )
    .unwrap();
    std::fs::write(
        project_dir(root).join("sql/events_incr.sql"),
        "SELECT event_id, store_id, qty, event_date FROM f01_raw.events WHERE qty > 0\n",
    )
    .unwrap();
    std::fs::write(
        project_dir(root).join("sql/store_totals.sql"),
        "SELECT CAST(store_id AS BIGINT) AS store_id, CAST(sum(qty) AS INT) AS units, 'eu' AS region, 1 AS tier FROM f01_refined.events_incr GROUP BY store_id\n",
    )
    .unwrap();
    let s = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        format!("{s}\n[[tables]]\nname = \"returns\"\nlayer = \"curated\"\ncolumns = [{{ name = \"id\", type = \"string\" }}]\n"),
    )
    .unwrap();
    let out = mesh(root, &["validate"]);
    assert!(out.status.success(), "{}", both(&out));

    let out = run_ok(root, &["plan", "--against", "main", "--format", "json"]);
    insta::assert_snapshot!("plan_against_main_json", text(&out.stdout));
    let out = run_ok(root, &["plan", "--against", "main", "--format", "markdown"]);
    insta::assert_snapshot!("plan_against_main_markdown", text(&out.stdout));
    // The same ref against itself: nothing.
    git(root, &["add", "domain.json", "projects"]);
    git(root, &["commit", "-q", "-m", "head"]);
    let out = run_ok(root, &["plan", "--against", "main", "--format", "markdown"]);
    assert!(text(&out.stdout).contains("No changes."), "{}", both(&out));
    let out = mesh(root, &["plan", "--against", "no-such-ref"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
}

/// `on_change` is validated: a known policy, on a job that keeps state.
#[test]
fn on_change_is_validated() {
    let d = shop(None);
    let manifest = project_dir(d.path()).join("project.toml");
    let s = PROJECT.replace("#ON_CHANGE", "");
    std::fs::write(&manifest, PROJECT.replace("#ON_CHANGE", "on_change = \"full_refrsh\"")).unwrap();
    let out = mesh(d.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("jobs[0].on_change") && err.contains("did you mean `full_refresh`?"),
        "{err}"
    );
    std::fs::write(
        &manifest,
        s.replace(
            "mode = \"overwrite\"\n\n[[jobs]]\nname = \"store_totals\"",
            "mode = \"overwrite\"\non_change = \"fail\"\n\n[[jobs]]\nname = \"store_totals\"",
        ),
    )
    .unwrap();
    let out = mesh(d.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(text(&out.stderr).contains("keeps no state"), "{}", both(&out));
}

/// Other merge keys (the issue's "wrong data" case) against a git ref: the table's identifier
/// change is breaking (rows merged under the old key would be duplicated under the new one)
/// and the merge job's keys changed; a formatting-only SQL change is no change.
#[test]
fn other_merge_keys_against_a_ref_are_breaking() {
    let d = shop(None);
    let root = d.path();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "domain.json", "projects"]);
    git(root, &["commit", "-q", "-m", "base"]);
    let manifest = project_dir(root).join("project.toml");
    edit(&manifest, "identifier = [\"id\"]", "identifier = [\"id\", \"d\"]");
    edit(&manifest, "keys = [\"id\"]", "keys = [\"id\", \"d\"]");
    std::fs::write(
        project_dir(root).join("sql/events_full.sql"),
        "select event_id, store_id, qty, event_date\n  from f01_raw.events -- reformatted\n",
    )
    .unwrap();
    let out = mesh(root, &["validate"]);
    assert!(out.status.success(), "{}", both(&out));
    let plan = plan_json(root, &["--against", "main"]);
    assert_eq!(plan["changes"].as_array().unwrap().len(), 2, "{plan:#}");
    let table = changes(&plan, "table", "refined.customers");
    assert_eq!(table[0]["class"], "breaking", "{plan:#}");
    assert!(table[0]["details"][0]
        .as_str()
        .unwrap()
        .starts_with("identifier (merge) keys (id) → (id, d): rows merged under the old keys would be duplicated"));
    assert!(table[0]["refused"].is_string());
    let job = changes(&plan, "job", "customers_latest");
    assert_eq!(
        job[0]["details"],
        serde_json::json!(["its write mode, keys or time range changed"])
    );
    assert!(
        job[0]["recompute"].as_str().unwrap().contains("keeps no state"),
        "{plan:#}"
    );
}
