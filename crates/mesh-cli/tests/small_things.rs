//! The small things of issue 27 item 6, each on the real binary: sample data of a domain's own
//! tables, local names as folders, what `mesh sql` reads, snapshots for people, `mesh describe`
//! by what jobs do and per table, manifest type names in errors, `git init` by `mesh init`,
//! and a rolled-back `mesh new` that shows the lines its problems cite.

use std::path::{Path, PathBuf};

mod common;
use common::{both, example_domain, mesh};

fn ok(root: &Path, args: &[&str]) -> String {
    let o = mesh(root, args);
    assert!(o.status.success(), "mesh {args:?}: {}", both(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A fresh domain `own` (abbreviation own1) with project `shop` (sh01) and raw table `visits`.
fn own_domain() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("own");
    ok(tmp.path(), &["init", root.to_str().unwrap(), "--abbr", "own1"]);
    ok(&root, &["new", "project", "shop", "--slug", "sh01"]);
    ok(
        &root,
        &[
            "new", "table", "shop", "visits", "--layer", "raw", "--format", "csv", "--column", "id:long!", "--column",
            "day:date",
        ],
    );
    (tmp, root)
}

#[test]
fn sample_data_writes_the_rows_asked_for_in_a_domain_of_its_own() {
    let (_tmp, root) = own_domain();
    ok(&root, &["sample-data", "--rows", "1234"]);
    let out = ok(
        &root,
        &["sql", "SELECT COUNT(*) AS n FROM raw.visits", "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["n"], 1234, "{out}");
}

#[test]
fn local_names_are_the_folders_files_land_in() {
    let (_tmp, root) = own_domain();
    let text = ok(&root, &["names", "--env", "local"]);
    assert!(!text.contains("s3://"), "{text}");
    for wanted in [
        "local: each bucket is a folder of the lake, .mesh/lake/",
        "prefix raw      .mesh/lake/own1-raw-local/sh01/",
        "table own1_raw.visits",
        ".mesh/lake/own1-raw-local/sh01/visits/ (csv)",
    ] {
        assert!(text.contains(wanted), "no `{wanted}` in\n{text}");
    }
    // Scripts get absolute paths, where sample-data writes.
    ok(&root, &["sample-data", "--rows", "10"]);
    let v: serde_json::Value = serde_json::from_str(&ok(&root, &["names", "--format", "json"])).unwrap();
    let location = v["projects"][0]["tables"][0]["location"].as_str().unwrap();
    assert!(Path::new(location).is_absolute(), "{location}");
    assert!(
        std::fs::read_dir(location).unwrap().next().is_some(),
        "nothing landed in {location}"
    );
    // A cloud environment keeps its S3 URLs.
    let text = ok(&root, &["names", "--env", "dev"]);
    assert!(text.contains("s3://own1-raw-dev/sh01/visits/"), "{text}");
}

#[test]
fn sql_says_its_dialect_and_what_it_does_not_read() {
    let dir = example_domain();
    let root = dir.path();
    let help = ok(root, &["sql", "--help"]);
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for wanted in [
        "DataFusion's SQL with Spark's functions",
        "It is not Spark SQL",
        "VERSION AS OF",
        "mesh table snapshots TABLE",
    ] {
        assert!(flat.contains(wanted), "no `{wanted}` in\n{help}");
    }
    ok(root, &["sample-data", "--rows", "200"]);
    // layer.table, as every other command names tables.
    let out = ok(
        root,
        &["sql", "SELECT COUNT(*) AS n FROM raw.sales_events", "--format", "json"],
    );
    assert!(out.contains("\"n\": 200") || out.contains("\"n\":200"), "{out}");
    let o = mesh(root, &["sql", "SELECT * FROM curated.daily_sales VERSION AS OF 1"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(
        both(&o).contains("help: time travel (VERSION AS OF, TIMESTAMP AS OF) is Spark SQL"),
        "{}",
        both(&o)
    );
}

/// Errors name types as the manifest does, not as Arrow (`Utf8`, `Date32`, `Decimal128`).
#[test]
fn errors_use_the_manifests_type_names() {
    let dir = example_domain();
    let root = dir.path();
    let o = mesh(root, &["sql", "SELECT CAST('2026-01-01' AS DATE) + 'x'"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    let text = both(&o);
    assert!(text.contains("date + string"), "{text}");
    assert!(!text.contains("Utf8") && !text.contains("Date32"), "{text}");

    let sql = root.join("projects/sales/sql/daily_sales.sql");
    let body = std::fs::read_to_string(&sql).unwrap();
    std::fs::write(
        &sql,
        body.replace(
            "FROM f01_raw.sales_events",
            "FROM f01_raw.sales_events WHERE unit_price = true",
        ),
    )
    .unwrap();
    let o = mesh(root, &["validate"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    let text = both(&o);
    assert!(text.contains("decimal(10,2) = boolean"), "{text}");
    assert!(!text.contains("Decimal128") && !text.contains("Boolean"), "{text}");
}

#[test]
fn snapshots_read_in_order_with_the_job_state() {
    let dir = example_domain();
    let root = dir.path();
    ok(root, &["run", "customers", "--sample-data", "--rows", "500"]);
    let text = ok(root, &["table", "snapshots", "curated.customers"]);
    let header: Vec<&str> = text
        .lines()
        .next()
        .unwrap()
        .split("  ")
        .filter(|c| !c.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        header,
        [
            "snapshot",
            "committed",
            "operation",
            "added rows",
            "deleted rows",
            "total rows",
            "files",
            "parent",
            "job state"
        ],
        "{text}"
    );
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .contains("customers_latest: raw.customer_events read (files before "),
        "{text}"
    );
    let text = ok(root, &["table", "files", "curated.customers"]);
    assert!(text.starts_with("partition"), "{text}");
}

#[test]
fn describe_says_what_jobs_do_and_shows_one_table() {
    let dir = example_domain();
    let root = dir.path();
    ok(
        root,
        &[
            "new",
            "job",
            "sales",
            "sales_by_day",
            "--input",
            "raw.sales_events",
            "--output",
            "curated.daily_sales",
            "--time-column",
            "sale_date",
            "--input-time-column",
            "event_date",
            "--grain",
            "day",
        ],
    );
    let tree = ok(root, &["describe"]);
    for wanted in [
        "customers_latest  raw.customer_events → curated.customers (merge on customer_id, latest by updated_at, deletes, incremental: only new rows of raw.customer_events, 2 checks)",
        "sales_by_day  raw.sales_events → curated.daily_sales (time-range: replaces one day of sale_date per run, 0 checks)",
        "orders_by_country  refined.orders_clean → curated.orders_by_country (overwrite, 1 check)",
    ] {
        assert!(tree.contains(wanted), "no `{wanted}` in\n{tree}");
    }

    let text = ok(root, &["describe", "curated.daily_sales"]);
    for wanted in [
        "curated.daily_sales (f01_curated.daily_sales) · project sales",
        "partitioned  month(sale_date)",
        "identifier   sale_date, store_id",
        "    orders     long           not null  Distinct sale lines",
        "written by   sales/daily_sales (overwrite_partitions, 4 checks)",
        "written by   sales/sales_by_day (time-range: replaces one day of sale_date per run, 0 checks)",
        "optimized by pipeline sales/main",
    ] {
        assert!(text.contains(wanted), "no `{wanted}` in\n{text}");
    }
    // The database form too; a raw table says how it reads files and where bad rows go.
    let text = ok(root, &["describe", "f01_raw.legacy_orders"]);
    for wanted in [
        "format       raw files (Hive), csv",
        "quarantine: set aside in raw.legacy_orders_rejected",
        "read by      legacy_refactor/clean_orders (in full)",
    ] {
        assert!(text.contains(wanted), "no `{wanted}` in\n{text}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&ok(root, &["describe", "curated.customers", "--format", "json"])).unwrap();
    assert_eq!(v["name"], "f01_curated.customers");
    assert_eq!(v["written_by"][0][0], "customers/customers_latest");
    let o = mesh(root, &["describe", "curated.daily_sale"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(both(&o).contains("did you mean `curated.daily_sales`?"), "{}", both(&o));
}

#[test]
fn init_makes_the_domain_a_git_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("repo");
    let out = ok(tmp.path(), &["init", root.to_str().unwrap(), "--abbr", "rp1"]);
    assert!(out.contains("initialized a git repository in"), "{out}");
    assert!(root.join(".git").is_dir(), "{out}");
    // A domain inside a repository (a monorepo) gets no repository of its own.
    let inner = root.join("inner");
    let out = ok(tmp.path(), &["init", inner.to_str().unwrap(), "--abbr", "rp2"]);
    assert!(out.contains("is inside a git repository already"), "{out}");
    assert!(!inner.join(".git").exists());
}

#[test]
fn a_rolled_back_change_shows_the_lines_its_problems_cite() {
    let (_tmp, root) = own_domain();
    let manifest = root.join("projects/shop/project.toml");
    let before = std::fs::read_to_string(&manifest).unwrap();
    let o = mesh(
        &root,
        &[
            "new",
            "table",
            "shop",
            "totals",
            "--layer",
            "curated",
            "--column",
            "n:int",
            "--identifier",
            "n",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), before);
    let text = both(&o);
    // The problem cites a line of the rejected text, shown with the same numbers.
    let cited: usize = text
        .split("projects/shop/project.toml:")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no line cited in\n{text}"));
    assert!(
        text.contains("the rejected text, numbered as it would have stood in projects/shop/project.toml"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{cited:>5} | identifier = [\"n\"]")),
        "line {cited} is not the identifier in\n{text}"
    );
}
