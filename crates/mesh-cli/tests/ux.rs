//! What a new user trips over, on the real binary: a closed pipe, NULLs in JSON, shell
//! completions, mistyped names that get a "did you mean" or the list of what exists, `SHOW
//! TABLES`, and sample data for a domain that has nothing to fill.

use std::io::Read;
use std::process::Stdio;

mod common;
use common::{both, example_domain, mesh};

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let dir = example_domain();
    // Far more than a pipe buffer (64 KiB), so the writes outlive the reader.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mesh"))
        .arg("--root")
        .arg(dir.path())
        .args([
            "sql",
            "SELECT value, 'some padding to make rows longer' AS pad FROM generate_series(1, 200000)",
        ])
        .env_remove("ENV")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc_sigpipe()), "{:?} {stderr}", out.status);
    }
}

#[cfg(unix)]
fn libc_sigpipe() -> i32 {
    13
}

#[test]
fn sql_json_keeps_nulls() {
    let dir = example_domain();
    let o = mesh(
        dir.path(),
        &[
            "sql",
            "SELECT 1 AS a, CAST(NULL AS INT) AS b, 'x' AS c",
            "--format",
            "json",
        ],
    );
    assert!(o.status.success(), "{}", both(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v, serde_json::json!([{"a": 1, "b": null, "c": "x"}]));
}

#[test]
fn completions_for_each_shell() {
    let dir = example_domain();
    for (shell, marker) in [
        ("bash", "_mesh()"),
        ("zsh", "#compdef mesh"),
        ("fish", "complete -c mesh"),
    ] {
        let o = mesh(dir.path(), &["completions", shell]);
        assert!(o.status.success(), "{}", both(&o));
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(s.contains(marker), "{shell}: no {marker}");
        assert!(
            s.contains("bootstrap") && s.contains("optimize"),
            "{shell} lacks subcommands"
        );
    }
    let o = mesh(dir.path(), &["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
}

#[test]
fn mistyped_names_get_a_suggestion_or_the_list() {
    let dir = example_domain();
    let root = dir.path();
    for (args, wanted) in [
        (vec!["run", "--job", "daily_sale"], "did you mean `daily_sales`?"),
        (vec!["run", "sales", "--pipeline", "mian"], "did you mean `main`?"),
        (vec!["run", "sale"], "did you mean `sales`?"),
        (
            vec!["run", "--job", "zzz"],
            "help: jobs are: customers_latest, clean_orders",
        ),
        (
            vec!["table", "show", "curated.daily_sale"],
            "did you mean `curated.daily_sales`?",
        ),
    ] {
        let o = mesh(root, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", both(&o));
        assert!(both(&o).contains(wanted), "{args:?}: {}", both(&o));
    }
    // A project without pipelines: say how to run its job instead.
    let o = mesh(root, &["new", "project", "store", "--slug", "st01"]);
    assert!(o.status.success(), "{}", both(&o));
    let o = mesh(root, &["run", "store"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    let text = both(&o);
    assert!(text.contains("`store` has no pipelines"), "{text}");
    assert!(text.contains("[[pipelines]]"), "{text}");
}

/// Tables are named the same way everywhere: a typo gets the close name in the form it was
/// written in, a raw table is refused by the commands that need Iceberg with how to read it,
/// and a table no run has written yet says which job writes it.
#[test]
fn mistyped_raw_and_unwritten_tables_say_what_to_do() {
    let dir = example_domain();
    let root = dir.path();
    for (args, wanted) in [
        (
            vec!["table", "show", "raw.sales_event"],
            "did you mean `raw.sales_events`?",
        ),
        (
            vec!["table", "history", "f01_curated.daly_sales"],
            "did you mean `f01_curated.daily_sales`?",
        ),
        (vec!["table", "show", "raw.sales_events"], "is a raw (Hive) table"),
        (vec!["optimize", "--table", "raw.sales_events"], "is a raw (Hive) table"),
        (
            vec!["table", "files", "raw.sales_events"],
            "mesh sql \"SELECT * FROM f01_raw.sales_events LIMIT 10\"",
        ),
        (
            vec!["sql", "SELECT * FROM f01_curated.daily_sale"],
            "did you mean `f01_curated.daily_sales`?",
        ),
        (
            vec!["sql", "SELECT COUNT(*) FROM daily_sales"],
            "did you mean `f01_curated.daily_sales`?",
        ),
        (
            vec!["sql", "SELECT * FROM f01_curated.daily_sales"],
            "`curated.daily_sales` has not been written in env `local` yet",
        ),
        (
            vec!["sql", "SELECT * FROM f01_curated.daily_sales"],
            "`mesh run sales --job daily_sales`",
        ),
        (
            vec!["table", "show", "curated.daily_sales"],
            "`mesh run sales --job daily_sales`",
        ),
    ] {
        let o = mesh(root, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", both(&o));
        assert!(both(&o).contains(wanted), "{args:?}: {}", both(&o));
        assert_eq!(both(&o).matches("error:").count(), 1, "{args:?}: {}", both(&o));
    }
}

/// Without `--project`, `--pipeline NAME` runs the projects that have it; when none has it the
/// suggestion comes from every project's pipelines, not from the first project's.
#[test]
fn a_pipeline_name_is_looked_up_across_projects() {
    let dir = example_domain();
    let root = dir.path();
    let o = mesh(root, &["new", "pipeline", "sales", "daily", "--job", "daily_sales"]);
    assert!(o.status.success(), "{}", both(&o));
    let o = mesh(root, &["run", "--pipeline", "daly"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(both(&o).contains("no project has a pipeline `daly`"), "{}", both(&o));
    assert!(both(&o).contains("did you mean `daily`?"), "{}", both(&o));
    // Named with its project, a project without it is still an error about that project.
    let o = mesh(root, &["run", "customers", "--pipeline", "daily"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(
        both(&o).contains("project `customers` has no pipeline `daily`"),
        "{}",
        both(&o)
    );
    // And it runs where it exists: only the sales job, no customers or legacy step.
    let o = mesh(root, &["run", "--pipeline", "daily", "--sample-data", "--rows", "500"]);
    assert!(o.status.success(), "{}", both(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let path = out
        .lines()
        .find_map(|l| l.strip_prefix("run record: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run record line:\n{out}"));
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root.join(path)).unwrap()).unwrap();
    let ran: Vec<&str> = record["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["project"].as_str().unwrap())
        .collect();
    assert_eq!(ran, ["sales"], "{record}");
}

#[test]
fn table_commands_print_text_for_people_and_json_for_scripts() {
    let dir = example_domain();
    let root = dir.path();
    let o = mesh(root, &["run", "sales", "--sample-data", "--rows", "2000"]);
    assert!(o.status.success(), "{}", both(&o));

    let o = mesh(root, &["table", "show", "curated.daily_sales"]);
    assert!(o.status.success(), "{}", both(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(!text.trim_start().starts_with('{'), "text mode printed JSON:\n{text}");
    for wanted in [
        "table      f01_curated.daily_sales",
        "partition  month(sale_date)",
        "sort order ",
        "schema (id ",
    ] {
        assert!(text.contains(wanted), "no `{wanted}` in\n{text}");
    }
    let o = mesh(root, &["table", "show", "curated.daily_sales", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["table"], "f01_curated.daily_sales");

    // Times as UTC dates, month partitions as YYYY-MM (JSON keeps the raw values).
    let o = mesh(root, &["table", "snapshots", "curated.daily_sales"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(" UTC"), "{text}");
    let o = mesh(root, &["table", "files", "curated.daily_sales"]);
    let text = String::from_utf8_lossy(&o.stdout);
    let month = regex_like_month(&text);
    assert!(month, "no sale_date_month=YYYY-MM in\n{text}");
    let o = mesh(root, &["table", "files", "curated.daily_sales", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v[0]["partition"]["sale_date_month"].is_i64(), "{v}");
}

/// `sale_date_month=` followed by four digits, `-`, two digits.
fn regex_like_month(text: &str) -> bool {
    text.split("sale_date_month=").skip(1).any(|rest| {
        let b = rest.as_bytes();
        b.len() >= 7 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[5..7].iter().all(u8::is_ascii_digit)
    })
}

#[test]
fn new_merge_jobs_take_keys_and_new_pipelines_follow_their_tables() {
    let dir = example_domain();
    let root = dir.path();
    let new_job = |extra: &[&str]| {
        let mut args = vec![
            "new",
            "job",
            "sales",
            "sales_latest",
            "--input",
            "raw.sales_events",
            "--output",
            "curated.daily_sales",
            "--mode",
            "merge",
        ];
        args.extend_from_slice(extra);
        mesh(root, &args)
    };
    let before = std::fs::read_to_string(root.join("projects/sales/project.toml")).unwrap();
    let o = new_job(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(both(&o).contains("--key COLUMN"), "{}", both(&o));
    assert_eq!(
        std::fs::read_to_string(root.join("projects/sales/project.toml")).unwrap(),
        before
    );
    assert!(
        !root.join("projects/sales/sql/sales_latest.sql").exists(),
        "nothing written"
    );

    // Every output column is in the input: the scaffold selects them (cast where the declared
    // type differs) and declares its dedup rule; it validates as written.
    let o = mesh(
        root,
        &[
            "new",
            "table",
            "sales",
            "sale_lines",
            "--layer",
            "refined",
            "--column",
            "event_id:string!",
            "--column",
            "store_id:long!",
            "--column",
            "unit_price:decimal(12,2)",
        ],
    );
    assert!(o.status.success(), "{}", both(&o));
    let o = mesh(
        root,
        &[
            "new",
            "job",
            "sales",
            "sale_lines",
            "--input",
            "raw.sales_events",
            "--output",
            "refined.sale_lines",
            "--mode",
            "merge",
            "--key",
            "event_id",
        ],
    );
    assert!(o.status.success(), "{}", both(&o));
    assert!(!both(&o).contains("left to fill in"), "{}", both(&o));
    let sql = std::fs::read_to_string(root.join("projects/sales/sql/sale_lines.sql")).unwrap();
    assert!(
        sql.contains("SELECT\n  event_id,\n  CAST(store_id AS bigint) AS store_id,\n  CAST(unit_price AS decimal(12,2)) AS unit_price\nFROM f01_raw.sales_events\n"),
        "{sql}"
    );
    let o = mesh(root, &["validate"]);
    assert!(o.status.success(), "{}", both(&o));

    // Output columns the input lacks are typed NULLs with a TODO line, named on stdout; the
    // scaffold still validates (names and types match).
    let o = new_job(&["--key", "sale_date", "--key", "store_id"]);
    assert!(o.status.success(), "{}", both(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("columns left to fill in") && stdout.contains(": sale_date, orders, units, revenue"),
        "{stdout}"
    );
    let toml = std::fs::read_to_string(root.join("projects/sales/project.toml")).unwrap();
    assert!(
        toml.contains("[jobs.merge]\nkeys = [\"sale_date\", \"store_id\"]"),
        "{toml}"
    );
    // The dedup rule is explicit, with keep_latest on the input's timestamp column one line away.
    assert!(
        toml.contains("order_by = \"event_ts\" (a column the SQL selects).\non_duplicate = \"error\"\n"),
        "{toml}"
    );
    let sql = std::fs::read_to_string(root.join("projects/sales/sql/sales_latest.sql")).unwrap();
    for line in [
        "  CAST(NULL AS date) AS sale_date,  -- TODO: compute sale_date",
        "  store_id,",
        "  CAST(NULL AS bigint) AS orders,  -- TODO: compute orders",
        "  CAST(NULL AS bigint) AS units,  -- TODO: compute units",
        "  CAST(NULL AS decimal(18,2)) AS revenue  -- TODO: compute revenue",
    ] {
        assert!(sql.contains(line), "missing {line:?} in:\n{sql}");
    }
    let o = mesh(root, &["validate"]);
    assert!(o.status.success(), "{}", both(&o));

    let o = mesh(
        root,
        &[
            "new",
            "pipeline",
            "sales",
            "refresh",
            "--job",
            "daily_sales",
            "--job",
            "sales_latest",
            "--optimize",
            "curated.daily_sales",
        ],
    );
    assert!(o.status.success(), "{}", both(&o));
    let o = mesh(root, &["describe", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sales = v["projects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "sales")
        .unwrap();
    let refresh = sales["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "refresh")
        .unwrap();
    let deps: Vec<(String, Vec<String>)> = refresh["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["depends_on"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    // Both jobs write curated.daily_sales: the later-listed one runs after the other (two
    // commits to one table are ordered, not raced), and the optimize step after both.
    assert_eq!(deps[0], ("daily_sales".to_string(), vec![]));
    assert_eq!(deps[1], ("sales_latest".to_string(), vec!["daily_sales".to_string()]));
    assert_eq!(deps[2].1, vec!["daily_sales".to_string(), "sales_latest".to_string()]);

    // A pipeline naming a job that does not exist is rolled back with the validator's message.
    let before = std::fs::read_to_string(root.join("projects/sales/project.toml")).unwrap();
    let o = mesh(root, &["new", "pipeline", "sales", "broken", "--job", "no_such_job"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert_eq!(
        std::fs::read_to_string(root.join("projects/sales/project.toml")).unwrap(),
        before
    );
}

/// One rule for `--env`: the flag, else ENV, else local; cloud-only commands ask for a cloud env.
#[test]
fn env_defaults_follow_one_rule() {
    let dir = example_domain();
    let root = dir.path();
    let run = |args: &[&str], env: Option<&str>| {
        let mut cmd = assert_cmd::Command::cargo_bin("mesh").unwrap();
        cmd.arg("--root").arg(root).args(args).env_remove("ENV");
        if let Some(e) = env {
            cmd.env("ENV", e);
        }
        cmd.output().unwrap()
    };
    let names = |env: Option<&str>| {
        let o = run(&["names", "--format", "json"], env);
        assert!(o.status.success(), "{}", both(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(names(None).contains("f01-raw-local"), "{}", names(None));
    assert!(names(Some("int")).contains("f01-raw-int"));
    let o = run(&["names", "--env", "prod", "--format", "json"], Some("int"));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("f01-raw-prod"),
        "the flag wins over ENV"
    );

    let o = run(&["build"], None);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(
        both(&o).contains("pass --env dev, int or prod (or set ENV)"),
        "{}",
        both(&o)
    );
    let o = run(&["build", "--format", "json"], Some("dev"));
    assert!(o.status.success(), "{}", both(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["env"], "dev");
    let o = run(&["deploy", "artifacts", "--dry-run"], Some("int"));
    assert!(o.status.success(), "{}", both(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("f01-artifacts-int"),
        "{}",
        both(&o)
    );
}

/// `mesh sql "SHOW TABLES"` lists what a query can name, and whether the lake has it yet.
#[test]
fn sql_show_tables_lists_the_domain_tables() {
    let dir = example_domain();
    let root = dir.path();
    let o = mesh(root, &["sql", "SHOW TABLES"]);
    assert!(o.status.success(), "{}", both(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no line for {name} in\n{text}"))
            .to_string()
    };
    let raw = line("raw.sales_events");
    for wanted in ["f01_raw.sales_events", "sales", "raw (csv)", "not yet"] {
        assert!(raw.contains(wanted), "no `{wanted}` in `{raw}`");
    }
    let curated = line("curated.daily_sales");
    for wanted in ["f01_curated.daily_sales", "iceberg", "not yet"] {
        assert!(curated.contains(wanted), "no `{wanted}` in `{curated}`");
    }

    // Once the raw data is there, the raw table exists and the curated one still does not.
    let o = mesh(root, &["sample-data", "--rows", "200"]);
    assert!(o.status.success(), "{}", both(&o));
    // Any case, surrounding blanks and a trailing `;`, as people type it in other SQL tools.
    let o = mesh(root, &["sql", "  show   Tables ; ", "--format", "json"]);
    assert!(o.status.success(), "{}", both(&o));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let row = |table: &str| {
        rows.iter()
            .find(|r| r["table"] == table)
            .unwrap_or_else(|| panic!("no {table} in {rows:?}"))
            .clone()
    };
    assert_eq!(
        row("raw.sales_events"),
        serde_json::json!({"table": "raw.sales_events", "name": "f01_raw.sales_events", "project": "sales",
            "format": "raw", "file_format": "csv", "exists": true})
    );
    assert_eq!(row("curated.daily_sales")["exists"], false);
    assert_eq!(row("curated.daily_sales")["format"], "iceberg");
    // Every declared table, and the rejected rows of the one raw table that quarantines.
    let tables = rows.iter().filter(|r| r["format"] != "rejected rows").count();
    assert_eq!(rows.len() - tables, 1, "{rows:?}");
    let declared: usize = ["sales", "customers", "legacy_refactor"]
        .iter()
        .map(|p| {
            std::fs::read_to_string(root.join(format!("projects/{p}/project.toml")))
                .unwrap()
                .matches("[[tables]]")
                .count()
        })
        .sum();
    assert_eq!(tables, declared, "{rows:?}");

    // Other SHOW statements are still refused as not read-only queries.
    let o = mesh(root, &["sql", "SHOW TABLES FROM f01_raw"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
}

/// A fresh domain has no raw table: sample-data says so, what it fills, and how to get one;
/// it is not a failure (exit 0), so `mesh run --sample-data` still runs.
#[test]
fn sample_data_with_nothing_to_fill_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("fresh");
    let o = mesh(tmp.path(), &["init", root.to_str().unwrap(), "--abbr", "s02"]);
    assert!(o.status.success(), "{}", both(&o));
    let o = mesh(&root, &["sample-data", "--rows", "10"]);
    assert_eq!(o.status.code(), Some(0), "{}", both(&o));
    let text = both(&o);
    for wanted in [
        "nothing to generate: domain fresh has no raw tables",
        "sales_events, customer_events and legacy_orders",
        "mesh new table PROJECT NAME --layer raw",
    ] {
        assert!(text.contains(wanted), "no `{wanted}` in\n{text}");
    }
    assert!(!text.contains("wrote sample data"), "{text}");

    // Following the advice gives sample data.
    let o = mesh(&root, &["new", "project", "shop", "--slug", "sh01"]);
    assert!(o.status.success(), "{}", both(&o));
    let o = mesh(
        &root,
        &[
            "new", "table", "shop", "visits", "--layer", "raw", "--format", "csv", "--column", "id:long!",
        ],
    );
    assert!(o.status.success(), "{}", both(&o));
    let o = mesh(&root, &["sample-data", "--rows", "10"]);
    assert!(o.status.success(), "{}", both(&o));
    let text = both(&o);
    assert!(text.contains("visits") && text.contains("wrote sample data"), "{text}");
}
