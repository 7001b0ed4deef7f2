//! `mesh new` covers the whole manifest (issue 27 item 4), on the real binary: every flag is
//! written where the manifest declares it, the domain validates, and `mesh describe --format
//! json` reads the value back; a job's time column must be in its input; a pipeline is the DAG
//! of its jobs' tables, so an unrelated failure skips nothing; a duplicate merge key names
//! the manifest's fix.

use std::path::{Path, PathBuf};

mod common;
use common::{both, mesh};

/// A fresh domain `lg` (abbreviation lg01) with project `logistics` (lg01p).
fn domain() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("lg");
    ok(tmp.path(), &["init", root.to_str().unwrap(), "--abbr", "lg01"]);
    ok(
        &root,
        &[
            "new",
            "project",
            "logistics",
            "--slug",
            "lg01p",
            "--contact",
            "ops@example.com",
            "--description",
            "Parcels and carriers",
        ],
    );
    (tmp, root)
}

fn ok(root: &Path, args: &[&str]) -> String {
    let o = mesh(root, args);
    assert!(o.status.success(), "mesh {args:?}: {}", both(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn refused(root: &Path, args: &[&str]) -> String {
    let before = std::fs::read_to_string(root.join("projects/logistics/project.toml")).unwrap();
    let o = mesh(root, args);
    assert_eq!(o.status.code(), Some(2), "mesh {args:?}: {}", both(&o));
    assert_eq!(
        std::fs::read_to_string(root.join("projects/logistics/project.toml")).unwrap(),
        before,
        "mesh {args:?} changed the manifest"
    );
    both(&o)
}

/// The project as `mesh describe --format json` reads it back.
fn project(root: &Path) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&ok(root, &["describe", "--format", "json"])).unwrap();
    v["projects"][0].clone()
}

fn named<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

fn raw_events(root: &Path) {
    ok(
        root,
        &[
            "new",
            "table",
            "logistics",
            "shipment_events",
            "--layer",
            "raw",
            "--format",
            "csv",
            "--column",
            "event_id:string!",
            "--column",
            "shipment_id:string!",
            "--column",
            "ship_date:date",
            "--column",
            "event_ts:timestamp",
            "--column",
            "weight:decimal(10,2)",
            "--column",
            "status:string",
            "--column",
            "op:string",
        ],
    );
}

#[test]
fn new_project_and_table_flags_are_written_and_read_back() {
    let (_tmp, root) = domain();
    let p = project(&root);
    assert_eq!(p["contact"], "ops@example.com");
    assert_eq!(p["description"], "Parcels and carriers");

    ok(
        &root,
        &[
            "new",
            "table",
            "logistics",
            "carrier_events",
            "--layer",
            "raw",
            "--format",
            "csv",
            "--column",
            "carrier:string!",
            "--column",
            "weight:decimal(10,2)",
            "--comment",
            "weight=kg, gross",
            "--description",
            "What carriers send",
            "--bad-rows",
            "quarantine",
            "--csv-delimiter",
            "tab",
            "--csv-quote",
            "'",
            "--csv-escape",
            "\\",
            "--csv-null-value",
            "NA",
            "--csv-no-header",
        ],
    );
    ok(
        &root,
        &[
            "new",
            "table",
            "logistics",
            "shipments",
            "--layer",
            "curated",
            "--column",
            "shipment_id:string!",
            "--column",
            "delivered_on:date!",
            "--identifier",
            "shipment_id",
            "--identifier",
            "delivered_on",
            "--sort-order",
            "delivered_on desc",
            "--sort-order",
            "shipment_id",
            "--partition-by",
            "month(delivered_on)",
            "--target-file-size-mb",
            "128",
        ],
    );
    ok(&root, &["validate"]);
    let p = project(&root);
    let raw = named(&p["tables"], "carrier_events");
    assert_eq!(raw["description"], "What carriers send");
    assert_eq!(named(&raw["columns"], "weight")["comment"], "kg, gross");
    assert_eq!(raw["storage"]["bad_rows"], "quarantine");
    assert_eq!(
        raw["storage"]["file_format"],
        serde_json::json!({"type": "csv", "header": false, "delimiter": "\t", "quote": "'", "escape": "\\", "null_value": "NA"})
    );
    let curated = named(&p["tables"], "shipments");
    assert_eq!(
        curated["identifier"],
        serde_json::json!(["shipment_id", "delivered_on"])
    );
    assert_eq!(
        curated["sort_order"],
        serde_json::json!([
            {"column": "delivered_on", "descending": true, "nulls_first": false},
            {"column": "shipment_id", "descending": false, "nulls_first": true},
        ])
    );
    assert_eq!(curated["storage"]["target_file_size_mb"], 128);

    // What the flags cannot mean is refused before anything is written.
    let msg = refused(
        &root,
        &[
            "new",
            "table",
            "logistics",
            "x",
            "--layer",
            "raw",
            "--format",
            "json",
            "--column",
            "a:int",
            "--csv-delimiter",
            ";",
        ],
    );
    assert!(msg.contains("--csv-* options describe CSV files"), "{msg}");
    let msg = refused(
        &root,
        &[
            "new",
            "table",
            "logistics",
            "x",
            "--layer",
            "curated",
            "--column",
            "a:int",
            "--comment",
            "b=text",
        ],
    );
    assert!(msg.contains("`b` is not a --column of this table"), "{msg}");
    // The validator's rules apply: an identifier must be NOT NULL.
    let msg = refused(
        &root,
        &[
            "new",
            "table",
            "logistics",
            "x",
            "--layer",
            "curated",
            "--column",
            "a:int",
            "--identifier",
            "a",
        ],
    );
    assert!(msg.contains("identifier column `a` is nullable"), "{msg}");
}

#[test]
fn new_job_flags_are_written_and_read_back() {
    let (_tmp, root) = domain();
    raw_events(&root);
    ok(
        &root,
        &[
            "new",
            "table",
            "logistics",
            "shipments",
            "--layer",
            "curated",
            "--column",
            "shipment_id:string!",
            "--column",
            "delivered_on:date!",
            "--column",
            "weight:decimal(12,2)",
            "--column",
            "status:string",
        ],
    );
    // The output's time column is not in the input: refused, naming the input's date/time
    // columns and the flag that picks one.
    let daily = [
        "new",
        "job",
        "logistics",
        "shipments_daily",
        "--input",
        "raw.shipment_events",
        "--output",
        "curated.shipments",
        "--time-column",
        "delivered_on",
        "--grain",
        "day",
    ];
    let msg = refused(&root, &daily);
    assert!(
        msg.contains("the input raw.shipment_events has no column `delivered_on`")
            && msg.contains("its date/time columns are ship_date (date), event_ts (timestamp)")
            && msg.contains("--input-time-column"),
        "{msg}"
    );
    assert!(!root.join("projects/logistics/sql/shipments_daily.sql").exists());

    let mut args = daily.to_vec();
    args.extend([
        "--input-time-column",
        "event_ts",
        "--start",
        "2026-11-01",
        "--lag",
        "2h",
        "--lookback",
        "1",
        "--description",
        "One day of shipments per run",
        "--check",
        "not_null:shipment_id,delivered_on",
        "--check",
        "unique:shipment_id",
        "--check",
        "range:weight:0:",
        "--check",
        "row_count_min:1",
        "--check",
        "sql:SELECT * FROM output WHERE weight > 1000",
        "--warn-check",
        "accepted_values:status:new,shipped",
        "--param",
        "region=eu",
        "--on-change",
        "forward_only",
        "--worker-type",
        "G.2X",
        "--workers",
        "3",
        "--timeout-minutes",
        "30",
    ]);
    ok(&root, &args);
    ok(&root, &["validate"]);
    let sql = std::fs::read_to_string(root.join("projects/logistics/sql/shipments_daily.sql")).unwrap();
    assert!(sql.contains("  CAST(event_ts AS date) AS delivered_on,\n"), "{sql}");
    assert!(
        sql.contains("WHERE event_ts >= '${interval_start}' AND event_ts < '${interval_end}'"),
        "{sql}"
    );
    let p = project(&root);
    let job = named(&p["jobs"], "shipments_daily");
    assert_eq!(job["description"], "One day of shipments per run");
    assert_eq!(job["mode"]["mode"], "overwrite");
    assert_eq!(
        job["time_range"],
        serde_json::json!({"column": "delivered_on", "grain": "day", "start": "2026-11-01", "lag_seconds": 7200, "lookback": 1})
    );
    let checks: Vec<(String, String)> = job["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let check = |n: &str, s: &str| (n.to_string(), s.to_string());
    assert_eq!(
        checks,
        [
            check("not_null(shipment_id, delivered_on)", "error"),
            check("unique(shipment_id)", "error"),
            check("range(weight)", "error"),
            check("row_count_min(1)", "error"),
            check("sql_check_4", "error"),
            check("accepted_values(status)", "warn"),
        ],
        "{}",
        job["checks"]
    );
    assert_eq!(
        job["checks"][2]["kind"],
        serde_json::json!({"type": "range", "column": "weight", "min": 0.0, "max": null})
    );
    assert_eq!(job["params"], serde_json::json!({"region": "eu"}));
    assert_eq!(job["on_change"], "forward_only");
    assert_eq!(
        job["glue"],
        serde_json::json!({"worker_type": "G.2X", "workers": 3, "timeout_minutes": 30, "max_retries": 0})
    );

    // A merge: keep_latest by --order-by, a delete condition; the SQL also selects the
    // columns the merge reads (order_by, delete_when's) so it validates as written.
    ok(
        &root,
        &[
            "new",
            "table",
            "logistics",
            "shipment_state",
            "--layer",
            "refined",
            "--column",
            "shipment_id:string!",
            "--column",
            "status:string",
            "--identifier",
            "shipment_id",
        ],
    );
    ok(
        &root,
        &[
            "new",
            "job",
            "logistics",
            "latest_state",
            "--input",
            "raw.shipment_events",
            "--output",
            "refined.shipment_state",
            "--mode",
            "merge",
            "--key",
            "shipment_id",
            "--order-by",
            "event_ts",
            "--delete-when",
            "op = 'D'",
            "--incremental",
        ],
    );
    ok(&root, &["validate"]);
    let sql = std::fs::read_to_string(root.join("projects/logistics/sql/latest_state.sql")).unwrap();
    assert!(sql.contains("  event_ts,  -- the merge's order_by"), "{sql}");
    assert!(sql.contains("  op  -- read by delete_when"), "{sql}");
    let p = project(&root);
    let job = named(&p["jobs"], "latest_state");
    assert_eq!(
        job["mode"],
        serde_json::json!({"mode": "merge", "keys": ["shipment_id"], "delete_when": "op = 'D'",
            "on_duplicate": {"rule": "keep_latest", "order_by": "event_ts"}})
    );
    assert_eq!(
        job["incremental"]["inputs"][0],
        serde_json::json!({"layer": "raw", "table": "shipment_events"})
    );

    // keep_latest without its column names the input's timestamp columns; merge flags on
    // another mode and an unknown check kind are refused.
    let merge = |extra: &[&str]| {
        let mut a = vec![
            "new",
            "job",
            "logistics",
            "other",
            "--input",
            "raw.shipment_events",
            "--output",
            "refined.shipment_state",
        ];
        a.extend_from_slice(extra);
        refused(&root, &a)
    };
    let msg = merge(&[
        "--mode",
        "merge",
        "--key",
        "shipment_id",
        "--on-duplicate",
        "keep_latest",
    ]);
    assert!(
        msg.contains("needs --order-by COLUMN") && msg.contains("timestamp columns are event_ts"),
        "{msg}"
    );
    let msg = merge(&["--mode", "append", "--order-by", "event_ts"]);
    assert!(msg.contains("--order-by is for --mode merge, not `append`"), "{msg}");
    let msg = merge(&["--check", "uniqe:shipment_id"]);
    assert!(msg.contains("did you mean `unique`?"), "{msg}");
    let msg = merge(&["--check", "range:weight"]);
    assert!(msg.contains("range:COLUMN:MIN:MAX"), "{msg}");
}

/// `--mode`'s help names every mode and what it does.
#[test]
fn new_job_help_explains_every_mode() {
    let (_tmp, root) = domain();
    let help = ok(&root, &["new", "job", "--help"]);
    for (mode, says) in [
        ("append:", "Add the query's rows"),
        ("overwrite:", "Replace the whole table"),
        ("overwrite_partitions:", "Replace exactly the partitions"),
        ("merge:", "Update the rows whose --key matches"),
        ("keep_latest:", "greatest --order-by value"),
        ("forward_only:", "Keep what was computed"),
    ] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("- {mode}")))
            .unwrap_or_else(|| panic!("no `- {mode}` in\n{help}"));
        assert!(line.contains(says), "{line}");
    }
    for form in ["not_null:COL", "range:COL:MIN:MAX", "accepted_values:COL:V"] {
        assert!(help.contains(form), "no {form} in\n{help}");
    }
}

/// Jobs ordered by their tables: the downstream job after the one writing its input, an
/// unrelated job on its own, optimize steps after their table's writers; a failing job skips
/// only what depends on it.
#[test]
fn new_pipeline_is_the_dag_of_its_jobs_tables() {
    let (_tmp, root) = domain();
    raw_events(&root);
    for (name, layer, cols) in [
        (
            "events_clean",
            "refined",
            vec!["event_id:string!", "shipment_id:string!"],
        ),
        ("shipment_counts", "curated", vec!["shipment_id:string!", "events:long"]),
        ("event_copy", "curated", vec!["event_id:string!"]),
    ] {
        let mut a = vec!["new", "table", "logistics", name, "--layer", layer];
        for c in &cols {
            a.extend(["--column", c]);
        }
        ok(&root, &a);
    }
    for (name, input, output, extra) in [
        ("clean", "raw.shipment_events", "refined.events_clean", vec![]),
        ("counts", "refined.events_clean", "curated.shipment_counts", vec![]),
        // Fails its check on every run.
        (
            "copy",
            "raw.shipment_events",
            "curated.event_copy",
            vec!["--check", "row_count_min:1000000000"],
        ),
    ] {
        let mut a = vec![
            "new",
            "job",
            "logistics",
            name,
            "--input",
            input,
            "--output",
            output,
            "--mode",
            "overwrite",
        ];
        a.extend(extra);
        ok(&root, &a);
    }
    std::fs::write(
        root.join("projects/logistics/sql/counts.sql"),
        "SELECT shipment_id, COUNT(*) AS events FROM lg01_refined.events_clean GROUP BY shipment_id\n",
    )
    .unwrap();
    // Listed downstream first: the order written follows the tables.
    ok(
        &root,
        &[
            "new",
            "pipeline",
            "logistics",
            "nightly",
            "--job",
            "counts",
            "--job",
            "copy",
            "--job",
            "clean",
            "--optimize",
            "curated.shipment_counts",
            "--retries",
            "0",
            "--max-concurrency",
            "2",
            "--alert-email",
            "ops@example.com",
            "--description",
            "Every night",
        ],
    );
    let p = project(&root);
    let pl = named(&p["pipelines"], "nightly");
    assert_eq!(pl["description"], "Every night");
    assert_eq!(pl["max_concurrency"], 2);
    assert_eq!(pl["alert_emails"], serde_json::json!(["ops@example.com"]));
    let steps: Vec<(String, serde_json::Value)> = pl["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s["depends_on"].clone()))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("copy".to_string(), serde_json::json!([])),
            ("clean".to_string(), serde_json::json!([])),
            ("counts".to_string(), serde_json::json!(["clean"])),
            ("optimize_shipment_counts".to_string(), serde_json::json!(["counts"])),
        ]
    );

    ok(&root, &["sample-data", "--rows", "200"]);
    let o = mesh(&root, &["run", "logistics", "--pipeline", "nightly"]);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let status = |step: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().nth(2) == Some(step))
            .and_then(|l| l.split_whitespace().nth(3))
            .unwrap_or_else(|| panic!("no step {step} in\n{stdout}"))
            .to_string()
    };
    assert_eq!(status("copy"), "failed", "{stdout}");
    for step in ["clean", "counts", "optimize_shipment_counts"] {
        assert_eq!(status(step), "succeeded", "{step}: {stdout}");
    }

    // --depends-on adds an order the tables do not show; an unknown step is refused.
    ok(
        &root,
        &[
            "new",
            "pipeline",
            "logistics",
            "ordered",
            "--job",
            "clean",
            "--job",
            "copy",
            "--depends-on",
            "copy=clean",
        ],
    );
    let p = project(&root);
    let steps = &named(&p["pipelines"], "ordered")["steps"];
    assert_eq!(named(steps, "copy")["depends_on"], serde_json::json!(["clean"]));
    let msg = refused(
        &root,
        &[
            "new",
            "pipeline",
            "logistics",
            "x",
            "--job",
            "clean",
            "--depends-on",
            "clen=copy",
        ],
    );
    assert!(msg.contains("`clen` is not a step of this pipeline"), "{msg}");
}

/// The merge scaffold declares its dedup rule (`error`), and a source with a key twice fails
/// the run naming the rule to change and where.
#[test]
fn a_duplicate_merge_key_names_on_duplicate_and_order_by() {
    let (_tmp, root) = domain();
    raw_events(&root);
    ok(
        &root,
        &[
            "new",
            "table",
            "logistics",
            "shipment_state",
            "--layer",
            "refined",
            "--column",
            "shipment_id:string!",
            "--column",
            "status:string",
            "--column",
            "event_ts:timestamp",
        ],
    );
    ok(
        &root,
        &[
            "new",
            "job",
            "logistics",
            "latest_state",
            "--input",
            "raw.shipment_events",
            "--output",
            "refined.shipment_state",
            "--mode",
            "merge",
            "--key",
            "shipment_id",
        ],
    );
    let toml = std::fs::read_to_string(root.join("projects/logistics/project.toml")).unwrap();
    assert!(toml.contains("on_duplicate = \"error\"\n"), "{toml}");
    let dir = root.join(".mesh/lake/lg01-raw-local/lg01p/shipment_events");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("part-00000.csv"),
        "event_id,shipment_id,ship_date,event_ts,weight,status,op\n\
         e1,s1,2026-11-01,2026-11-01 10:00:00,1.00,new,\n\
         e2,s1,2026-11-01,2026-11-01 11:00:00,1.00,shipped,\n",
    )
    .unwrap();
    let o = mesh(&root, &["run", "--job", "latest_state"]);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    let text = both(&o);
    for wanted in [
        "several rows with key (shipment_id=s1)",
        "set on_duplicate = \"keep_latest\" and order_by = \"event_ts\"",
        "in [jobs.merge] of job `latest_state` in projects/logistics/project.toml",
    ] {
        assert!(text.contains(wanted), "no `{wanted}` in\n{text}");
    }
}
