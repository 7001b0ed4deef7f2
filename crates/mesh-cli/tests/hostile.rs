//! Hostile and careless inputs against the real `mesh` binary (issue 15): every case ends with
//! a clear message and the right exit code, never a panic or an abort, and changes no file
//! outside `.mesh/runs` (tables included: the lake and the catalog are compared too).

mod common;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use common::{both, example_domain, mesh};

/// Every file under `root` (links not followed) with its size and a hash of its content;
/// run records and reports (`.mesh/runs`) are the only files a refused command may write.
fn fingerprint(root: &Path) -> BTreeMap<PathBuf, (u64, u64)> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, (u64, u64)>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            // The catalog database's bytes change when it is opened (schema and namespace
            // statements); its tables are compared through the lake, where every commit
            // writes a new metadata file.
            if rel.starts_with(".mesh/runs") || rel.to_string_lossy().starts_with(".mesh/catalog.db") {
                continue;
            }
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                walk(&p, root, out);
            } else {
                let bytes = if meta.is_file() {
                    std::fs::read(&p).unwrap()
                } else {
                    Vec::new()
                };
                let mut h = std::collections::hash_map::DefaultHasher::new();
                bytes.hash(&mut h);
                out.insert(rel, (meta.len(), h.finish()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Runs `mesh args` and checks: exit code, every `wanted` text in the output, no panic or
/// backtrace, and no file changed outside `.mesh/runs`.
#[track_caller]
fn refused(root: &Path, args: &[&str], code: i32, wanted: &[&str]) -> String {
    let before = fingerprint(root);
    let out = mesh(root, args);
    let text = both(&out);
    assert_eq!(out.status.code(), Some(code), "mesh {args:?}:\n{text}");
    for w in wanted {
        assert!(text.contains(w), "mesh {args:?}: `{w}` not in:\n{text}");
    }
    assert!(
        !text.contains("panicked") && !text.contains("stack backtrace"),
        "mesh {args:?} panicked:\n{text}"
    );
    let after = fingerprint(root);
    if before != after {
        let changed: Vec<_> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(v))
            .map(|(k, _)| k)
            .chain(before.keys().filter(|k| !after.contains_key(*k)))
            .collect();
        panic!("mesh {args:?} changed files: {changed:?}\n{text}");
    }
    text
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "`{from}` not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

const SQL: &str = "projects/sales/sql/daily_sales.sql";
const TOML: &str = "projects/sales/project.toml";

/// The example domain with the sales tables written once.
fn with_tables() -> tempfile::TempDir {
    let dir = example_domain();
    let out = mesh(
        dir.path(),
        &["run", "sales", "--sample-data", "--rows", "2000", "--seed", "3"],
    );
    assert!(out.status.success(), "{}", both(&out));
    dir
}

fn current_metadata(root: &Path) -> PathBuf {
    let out = mesh(root, &["table", "show", "curated.daily_sales", "--format", "json"]);
    assert!(out.status.success(), "{}", both(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let loc = v["metadata_location"].as_str().expect("metadata_location").to_string();
    PathBuf::from(loc.trim_start_matches("file://"))
}

fn count(root: &Path) -> u64 {
    let out = mesh(
        root,
        &[
            "sql",
            "SELECT COUNT(*) AS n FROM f01_curated.daily_sales",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", both(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0]["n"].as_u64().unwrap()
}

fn deep_or(n: usize) -> String {
    let terms: Vec<String> = (0..n).map(|i| format!("store_id = {i}")).collect();
    terms.join(" OR ")
}

// ------------------------------------------------------------------------- 1. mesh sql

#[test]
fn mesh_sql_runs_only_read_only_queries() {
    let dir = with_tables();
    let root = dir.path();
    let meta = current_metadata(root);
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("x.json");
    let rows = count(root);
    let m = meta.display().to_string();
    let t = target.display().to_string();
    let cases: Vec<(String, &str)> = vec![
        (format!("COPY (SELECT 1 AS x) TO '{m}' STORED AS JSON"), "`COPY"),
        (
            format!("COPY (SELECT * FROM f01_curated.daily_sales) TO '{t}' STORED AS JSON"),
            "`COPY",
        ),
        (format!("copy (select 1) to '{t}'"), "`COPY"),
        (
            "INSERT INTO f01_curated.daily_sales SELECT * FROM f01_curated.daily_sales".into(),
            "`INSERT INTO`",
        ),
        ("DELETE FROM f01_curated.daily_sales".into(), "is not a query"),
        ("UPDATE f01_curated.daily_sales SET units = 0".into(), "is not a query"),
        (
            format!(
                "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '{}'",
                outside.path().display()
            ),
            "`CREATE EXTERNAL",
        ),
        (
            "CREATE EXTERNAL TABLE p STORED AS CSV LOCATION '/etc/passwd'".into(),
            "`CREATE EXTERNAL",
        ),
        ("CREATE TABLE y AS SELECT 1".into(), "`CREATE TABLE`"),
        ("CREATE VIEW v AS SELECT 1".into(), "`CREATE VIEW`"),
        ("DROP TABLE f01_curated.daily_sales".into(), "`DROP TABLE`"),
        ("SET datafusion.execution.batch_size = 1".into(), "`SET"),
        (
            "SELECT 1; DROP TABLE f01_curated.daily_sales".into(),
            "more than one statement",
        ),
        (format!("SELECT 1; COPY (SELECT 1) TO '{t}'"), "more than one statement"),
        ("SELECT * INTO z FROM f01_curated.daily_sales".into(), "SELECT … INTO"),
        (
            "EXPLAIN ANALYZE INSERT INTO f01_curated.daily_sales SELECT * FROM f01_curated.daily_sales".into(),
            "is not a query",
        ),
        ("/* only a comment */".into(), "no statement"),
        (
            format!("SELECT * FROM f01_curated.daily_sales WHERE {}", deep_or(800)),
            "too deep",
        ),
        (format!("SELECT {}", vec!["1"; 1000].join("+")), "too deep"),
        (format!("SELECT {}", vec!["1"; 30_000].join("+")), "chains more than"),
        (format!("SELECT {}1{}", "(".repeat(3000), ")".repeat(3000)), "error"),
    ];
    for (sql, want) in &cases {
        let text = refused(root, &["sql", sql], 2, &[want]);
        assert!(text.contains("read-only") || text.contains("error"), "{text}");
    }
    assert!(!target.exists(), "COPY wrote outside the lake");
    assert_eq!(count(root), rows, "the table is unchanged");
    // Queries still run, also deep ones within the limit (evaluated, not aborted).
    let out = mesh(
        root,
        &[
            "sql",
            &format!(
                "SELECT COUNT(*) AS n FROM f01_curated.daily_sales WHERE {}",
                deep_or(200)
            ),
        ],
    );
    assert!(out.status.success(), "{}", both(&out));
    let out = mesh(root, &["sql", &format!("SELECT {} AS s", vec!["1"; 240].join("+"))]);
    assert!(out.status.success() && both(&out).contains("240"), "{}", both(&out));
}

// ------------------------------------------------------------------------- 2. job SQL

#[test]
fn job_sql_is_exactly_one_query_at_validation_and_at_run_time() {
    let dir = example_domain();
    let root = dir.path();
    let out = mesh(root, &["sample-data", "--rows", "500"]);
    assert!(out.status.success(), "{}", both(&out));
    let original = std::fs::read(root.join(SQL)).unwrap();
    let written = root.join("projects/sales/out.csv");
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (
            b"COPY (SELECT 1 AS x) TO 'projects/sales/out.csv'".to_vec(),
            "daily_sales.sql:1",
            "is not a query",
        ),
        (
            b"-- drop it\nDROP TABLE f01_curated.daily_sales".to_vec(),
            "daily_sales.sql:2",
            "`DROP TABLE` is not a query",
        ),
        (
            b"SELECT 1 AS sale_date;\nSELECT 2".to_vec(),
            "daily_sales.sql:2",
            "more than one statement",
        ),
        (
            b"SELECT 1;\nDROP TABLE f01_curated.daily_sales".to_vec(),
            "daily_sales.sql:2",
            "more than one statement",
        ),
        (b"".to_vec(), "daily_sales.sql", "is empty"),
        (b"\n  \n".to_vec(), "daily_sales.sql", "is empty"),
        (
            b"-- nothing here\n/* at all */".to_vec(),
            "daily_sales.sql",
            "no statement",
        ),
        (
            b"SELECT 1 AS x\n-- \xff\xfe".to_vec(),
            "daily_sales.sql:2",
            "is not UTF-8",
        ),
        (
            b"INSERT INTO f01_curated.daily_sales SELECT * FROM f01_raw.sales_events".to_vec(),
            "daily_sales.sql:1",
            "`INSERT INTO`",
        ),
        (
            b"SELECT * INTO t2 FROM f01_raw.sales_events".to_vec(),
            "daily_sales.sql:1",
            "SELECT … INTO",
        ),
        (
            b"SET spark.sql.ansi.enabled = false".to_vec(),
            "daily_sales.sql:1",
            "is not a query",
        ),
        (
            format!("SELECT * FROM f01_raw.sales_events WHERE {}", deep_or(800)).into_bytes(),
            "daily_sales.sql",
            "too deep",
        ),
        (
            format!("SELECT {} AS x", vec!["1"; 1000].join("+")).into_bytes(),
            "daily_sales.sql",
            "too deep",
        ),
    ];
    for (sql, file, want) in &cases {
        std::fs::write(root.join(SQL), sql).unwrap();
        let text = refused(root, &["validate"], 2, &[file, want]);
        assert!(text.contains("help:"), "{text}");
        // `mesh run` checks again before planning: the job fails, nothing is written.
        let text = refused(root, &["run", "sales", "--job", "daily_sales"], 1, &[want]);
        assert!(text.contains("run record"), "a run record is written: {text}");
        assert!(!written.exists(), "COPY ran");
    }
    std::fs::write(root.join(SQL), original).unwrap();
    let out = mesh(root, &["validate"]);
    assert!(out.status.success(), "{}", both(&out));
}

// ------------------------------------------------------------------------- 3. parameters

#[test]
fn parameters_are_values_not_sql() {
    let dir = with_tables();
    let root = dir.path();
    edit(
        &root.join(SQL),
        "FROM f01_raw.sales_events",
        "FROM f01_raw.sales_events\nWHERE currency = '${cur}' AND quantity >= ${min_qty} AND CAST(event_ts AS DATE) >= ${since}",
    );
    edit(
        &root.join(TOML),
        "mode = \"overwrite_partitions\"",
        "mode = \"overwrite_partitions\"\nparams = { cur = \"EUR\", min_qty = \"0\", since = \"2000-01-01\" }\nparam_types = { min_qty = \"int\", since = \"date\" }",
    );
    let out = mesh(root, &["validate"]);
    assert!(out.status.success(), "{}", both(&out));
    let out = mesh(root, &["run", "sales", "--job", "daily_sales"]);
    assert!(out.status.success(), "defaults bind: {}", both(&out));
    let rows = count(root);
    assert!(rows > 0);

    // A quote in a string value stays inside the string: no row matches, the row_count_min
    // check stops the commit.
    for payload in [
        "cur=NOPE' OR '1'='1",
        "cur=NOPE'; DROP TABLE f01_curated.daily_sales; --",
        "cur=EUR' --",
    ] {
        refused(
            root,
            &["run", "sales", "--job", "daily_sales", "--param", payload],
            1,
            &["row_count_min"],
        );
    }
    // Typed parameters parse as their type or the job fails before any SQL runs.
    for (payload, want) in [
        ("min_qty=0 OR 1=1", "is not a valid int"),
        ("min_qty=1; DROP TABLE x", "is not a valid int"),
        ("since=2000-01-01' OR '1'='1", "is not a valid date"),
        ("since=2026-02-30", "is not a valid date"),
        ("cur=${spark.hadoop.fs.s3a.secret.key}", "may not contain `${`"),
    ] {
        refused(
            root,
            &["run", "sales", "--job", "daily_sales", "--param", payload],
            1,
            &[want],
        );
    }
    assert_eq!(count(root), rows, "no payload changed the table");
    // A default that does not parse as its type is a validation error naming the field.
    edit(&root.join(TOML), "min_qty = \"0\"", "min_qty = \"zero\"");
    refused(root, &["validate"], 2, &["jobs[0].params.min_qty", "is not a int"]);
}

// ------------------------------------------------------------------------- 4. numbers

#[test]
fn numeric_settings_and_durations_are_range_checked() {
    let dir = with_tables();
    let root = dir.path();
    for h in ["1e20", "inf", "NaN", "-1", "876001"] {
        refused(
            root,
            &[
                "optimize",
                "--only",
                "orphans",
                &format!("--orphan-retention-hours={h}"),
                "--dry-run",
            ],
            2,
            &["--orphan-retention-hours", "100 years"],
        );
    }
    let toml = root.join(TOML);
    let original = std::fs::read_to_string(&toml).unwrap();
    for (from, to, field) in [
        (
            "[tables.optimizers.orphans]\nretention_days = 3",
            "[tables.optimizers.orphans]\nretention_days = 4294967295",
            "orphans.retention_days",
        ),
        (
            "snapshot_retention_days = 5",
            "snapshot_retention_days = 4294967295",
            "retention.snapshot_retention_days",
        ),
        (
            "snapshot_retention_days = 5",
            "snapshot_retention_days = 36501",
            "retention.snapshot_retention_days",
        ),
    ] {
        edit(&toml, from, to);
        refused(root, &["validate"], 2, &[field, "36500"]);
        refused(root, &["optimize", "--dry-run"], 2, &[field]);
        std::fs::write(&toml, &original).unwrap();
    }
    let out = mesh(
        root,
        &[
            "optimize",
            "--only",
            "orphans",
            "--orphan-retention-hours",
            "876000",
            "--dry-run",
        ],
    );
    assert!(out.status.success(), "100 years is fine: {}", both(&out));
}

// ------------------------------------------------------------------------- 5. files

#[test]
fn files_stay_in_their_place() {
    let dir = with_tables();
    let root = dir.path();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.sql");
    std::fs::write(&secret, "SELECT 'top secret' AS sale_date").unwrap();

    // A job's SQL that links out of the project.
    std::fs::remove_file(root.join(SQL)).unwrap();
    std::os::unix::fs::symlink(&secret, root.join(SQL)).unwrap();
    for args in [
        &["validate"][..],
        &["build", "--env", "dev"],
        &["run", "sales", "--job", "daily_sales"],
    ] {
        let text = refused(root, args, 2, &["link to a file outside the project folder"]);
        assert!(!text.contains("top secret"), "{text}");
    }
    std::fs::remove_file(root.join(SQL)).unwrap();
    std::fs::copy(common::repo_root().join(SQL), root.join(SQL)).unwrap();

    // A raw table folder holding a link to a file outside the lake.
    let raw = root.join(".mesh/lake/f01-raw-local/pj01/sales_events/event_date=2026-01-01");
    std::fs::create_dir_all(&raw).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", raw.join("part-evil.csv")).unwrap();
    let text = refused(
        root,
        &["run", "sales", "--job", "daily_sales"],
        1,
        &["is a link to a file outside the table folder"],
    );
    assert!(!text.contains("root:"), "the linked file's content leaked: {text}");
    std::fs::remove_file(raw.join("part-evil.csv")).unwrap();

    // Run ids name files in .mesh/runs and nothing else.
    for id in ["../../x", "../x.json", "/etc/passwd", "a/b", ".hidden"] {
        refused(root, &["report", id], 2, &["is not a run id"]);
    }
    let runs = root.join(".mesh/runs");
    let latest = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .max()
        .unwrap();
    let mut record: serde_json::Value = serde_json::from_slice(&std::fs::read(&latest).unwrap()).unwrap();
    record["run_id"] = "../../../../x".into();
    std::fs::write(runs.join("99999999T999999999Z-evil.json"), record.to_string()).unwrap();
    refused(root, &["report"], 2, &["is not a run id"]);
    refused(root, &["report", "99999999T999999999Z-evil"], 2, &["is not a run id"]);
    assert!(!root.join("../x.html").exists() && !root.join("x.html").exists());
    std::fs::remove_file(runs.join("99999999T999999999Z-evil.json")).unwrap();
    let out = mesh(root, &["report"]);
    assert!(out.status.success(), "{}", both(&out));
}

// ------------------------------------------------------------------------- 7, 8. tables

#[test]
fn damaged_table_files_are_named_and_not_mistaken_for_missing_tables() {
    let dir = with_tables();
    let root = dir.path();
    let out = mesh(root, &["table", "check", "curated.daily_sales"]);
    assert!(out.status.success(), "{}", both(&out));
    let files: serde_json::Value =
        serde_json::from_slice(&mesh(root, &["table", "files", "curated.daily_sales", "--format", "json"]).stdout)
            .unwrap();
    let data = PathBuf::from(files[0]["path"].as_str().unwrap().trim_start_matches("file://"));
    let good = std::fs::read(&data).unwrap();

    // A garbage data file: named by `table check`, by `mesh sql` and by the job reading it.
    std::fs::write(&data, vec![b'x'; good.len()]).unwrap();
    let name = data.file_name().unwrap().to_str().unwrap();
    refused(
        root,
        &["table", "check", "curated.daily_sales"],
        1,
        &["damaged data file", name, "1 damaged file"],
    );
    refused(
        root,
        &["sql", "SELECT SUM(units) FROM f01_curated.daily_sales"],
        1,
        &[name, "f01_curated.daily_sales"],
    );
    std::fs::write(&data, &good).unwrap();

    // A truncated metadata file: exit 1 naming it, never "run the job that writes it first".
    let meta = current_metadata(root);
    let good_meta = std::fs::read(&meta).unwrap();
    std::fs::write(&meta, &good_meta[..good_meta.len() / 2]).unwrap();
    let mname = meta.file_name().unwrap().to_str().unwrap();
    for args in [
        &["table", "show", "curated.daily_sales"][..],
        &["table", "check", "curated.daily_sales"],
        &["sql", "SELECT COUNT(*) FROM f01_curated.daily_sales"],
    ] {
        let text = refused(root, args, 1, &[mname, "missing or damaged", "f01_curated.daily_sales"]);
        assert!(!text.contains("run the job that writes it first"), "{text}");
    }
    std::fs::write(&meta, &good_meta).unwrap();
    let out = mesh(root, &["table", "check", "curated.daily_sales", "--all-snapshots"]);
    assert!(out.status.success(), "{}", both(&out));
}

#[test]
fn a_lost_catalog_is_not_a_silent_reset() {
    let dir = with_tables();
    let root = dir.path();
    let rows = count(root);
    let snapshots = |root: &Path| -> usize {
        let out = mesh(root, &["table", "snapshots", "curated.daily_sales", "--format", "json"]);
        assert!(out.status.success(), "{}", both(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    let history = snapshots(root);
    std::fs::remove_file(root.join(".mesh/catalog.db")).unwrap();

    let out = mesh(root, &["run", "sales", "--job", "daily_sales"]);
    let text = both(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("already holds Iceberg metadata"), "{text}");
    assert!(text.contains("mesh table register curated.daily_sales"), "{text}");

    let out = mesh(root, &["table", "register", "curated.daily_sales"]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(count(root), rows, "the adopted table has its rows");
    assert_eq!(snapshots(root), history, "and its history");
    refused(
        root,
        &["table", "register", "curated.daily_sales"],
        2,
        &["nothing to register"],
    );
    let out = mesh(root, &["run", "sales", "--job", "daily_sales"]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(snapshots(root), history + 1);
}

// ------------------------------------------------------------------------- 9. validation gaps

#[test]
fn validation_gaps_are_closed() {
    let dir = example_domain();
    let root = dir.path();
    let toml = root.join(TOML);
    let original = std::fs::read_to_string(&toml).unwrap();
    for (from, to, want) in [
        (
            "column = \"revenue\", min = 0",
            "column = \"revenue\", min = nan",
            "checks[2].min",
        ),
        (
            "column = \"revenue\", min = 0",
            "column = \"revenue\", min = 0, max = inf",
            "checks[2].max",
        ),
        ("delimiter = \",\"", "delimiter = \"Ĭ\"", "not an ASCII character"),
        ("delimiter = \",\"", "delimiter = \"€\"", "not an ASCII character"),
        ("delimiter = \",\"", "delimiter = \"\\u0000\"", "NUL"),
    ] {
        edit(&toml, from, to);
        refused(root, &["validate"], 2, &[want]);
        std::fs::write(&toml, &original).unwrap();
    }

    for (config, want) in [
        ("lake_root = 5\n", "`lake_root` must be a string"),
        ("lake_root = true\n", "`lake_root` must be a string"),
        ("catalog_path = [1]\n", "`catalog_path` must be a string"),
        ("max_concurrency = \"many\"\n", "max_concurrency"),
    ] {
        std::fs::write(root.join("mesh.toml"), config).unwrap();
        refused(root, &["config", "show"], 2, &["mesh.toml", want]);
    }
    std::fs::remove_file(root.join("mesh.toml")).unwrap();

    // A byte-order mark is accepted.
    let domain = std::fs::read(root.join("domain.json")).unwrap();
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(&domain);
    std::fs::write(root.join("domain.json"), &bom).unwrap();
    let out = mesh(root, &["validate"]);
    assert!(out.status.success(), "{}", both(&out));

    // A 5 MB value is not echoed whole.
    let text = String::from_utf8(domain.clone()).unwrap();
    let huge = "x".repeat(5 << 20);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut v = v.as_object().unwrap().clone();
    v.insert("domain_abbr".into(), huge.clone().into());
    v.insert("domain_name".into(), huge.into());
    std::fs::write(root.join("domain.json"), serde_json::to_string(&v).unwrap()).unwrap();
    let before = fingerprint(root);
    let out = mesh(root, &["validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.len() < 20_000, "{} bytes on stderr", out.stderr.len());
    assert_eq!(before, fingerprint(root));
    std::fs::write(root.join("domain.json"), &domain).unwrap();

    // `mesh new` in a folder that is no domain writes nothing.
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("nonexistent/dir");
    let out = mesh(&missing, &["new", "project", "p", "--slug", "pq"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(both(&out).contains("no domain.json"), "{}", both(&out));
    assert!(!parent.path().join("nonexistent").exists(), "something was created");
}

// ------------------------------------------------------------------------- the Glue runner

/// The Glue runner binds parameters as values and runs only one query, under real Spark
/// (runtime/glue/runner_safety_tests.py). Needs MESH_PYTHON (scripts/test.sh sets it).
#[test]
fn glue_runner_binds_values_and_runs_only_queries() {
    let python = std::env::var("MESH_PYTHON")
        .unwrap_or_else(|_| panic!("MESH_PYTHON is not set: run scripts/test.sh, which installs pyspark and sets it"));
    let work = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(python)
        .arg(common::repo_root().join("runtime/glue/runner_safety_tests.py"))
        .arg(work.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("\"ok\": true").count(), 5, "{stdout}");
}

/// Issue 26 item 9: a raw file with a huge line is named, not copied, and a huge field is cut
/// wherever it is echoed. The output and the run record stay small whatever the file holds,
/// and a line past 64 MiB stops the read before the parser buffers more of it.
#[test]
fn huge_lines_and_fields_are_named_and_cut_not_copied() {
    let dir = example_domain();
    let root = dir.path();
    let out = mesh(root, &["sample-data", "--rows", "1000"]);
    assert!(out.status.success(), "{}", both(&out));
    let folder = root.join(".mesh/lake/f01-raw-local/pj03/legacy_orders");
    let latest_record = || {
        let mut records: Vec<_> = std::fs::read_dir(root.join(".mesh/runs"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        records.sort();
        std::fs::read_to_string(records.last().unwrap()).unwrap()
    };

    // 80 MiB without a newline, sparse: nothing is written to the disk, but every byte reads.
    let sparse = folder.join("part-00009.csv");
    std::fs::File::create(&sparse).unwrap().set_len(80 << 20).unwrap();
    let out = mesh(root, &["run", "--job", "clean_orders"]);
    let text = both(&out);
    assert_eq!(out.status.code(), Some(1), "{}", &text[..text.len().min(4000)]);
    assert!(
        text.contains("part-00009.csv: has a line longer than 64 MiB (from byte 0)"),
        "{}",
        &text[..text.len().min(4000)]
    );
    assert!(text.len() < 20_000, "{} bytes of output", text.len());
    let record = latest_record();
    assert!(
        record.contains("longer than 64 MiB") && record.len() < 200_000,
        "{} bytes",
        record.len()
    );
    std::fs::remove_file(&sparse).unwrap();

    // A 1 MB value in a decimal column: quarantined, its reason and the output cut to 200
    // characters, the whole line kept in the rejected row.
    let huge = "9".repeat(1 << 20);
    std::fs::write(
        folder.join("part-00010.csv"),
        format!("order_id;customer_id;order_ts;amount;status;country\n7;1;2026-11-08 06:46:27;{huge};completed;fr\n"),
    )
    .unwrap();
    let out = mesh(root, &["run", "--job", "clean_orders"]);
    let text = both(&out);
    assert!(out.status.success(), "{}", &text[..text.len().min(4000)]);
    assert!(text.len() < 20_000, "{} bytes of output", text.len());
    assert!(latest_record().len() < 200_000);
    let out = mesh(
        root,
        &[
            "sql",
            "SELECT reason, length(raw) AS raw_len FROM f01_raw.legacy_orders_rejected WHERE file LIKE '%part-00010.csv'",
            "--format",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", both(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reason = rows[0]["reason"].as_str().unwrap();
    assert_eq!(reason, format!("`{}…` is not a valid decimal(12,2)", "9".repeat(200)));
    assert!(rows[0]["raw_len"].as_u64().unwrap() > 1 << 20, "{rows}");
}
