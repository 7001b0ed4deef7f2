//! Manifests that used to pass `mesh validate` and fail later (issue 26, items 5, 6 and 8), on
//! the real binary: each is refused with exit 2, the file, the line, the field and a fix, and
//! the example domain validates again once the edit is undone.

mod common;

use std::path::Path;

use common::{both, example_domain, mesh};

const SALES: &str = "projects/sales/project.toml";
const LEGACY: &str = "projects/legacy_refactor/project.toml";

fn edit(root: &Path, file: &str, from: &str, to: &str) {
    let path = root.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "`{from}` not in {file}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

/// `mesh validate --format json` fails with exit 2 and reports a problem in `file` at `field`,
/// with a line and a fix, whose message holds every one of `wanted`; returns it.
#[track_caller]
fn refused(root: &Path, file: &str, field: &str, wanted: &[&str]) -> serde_json::Value {
    let out = mesh(root, &["validate", "--format", "json"]);
    let text = both(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(v["valid"], false, "{v}");
    let problems = v["problems"].as_array().unwrap();
    let found = problems.iter().find(|p| {
        p["file"] == file
            && p["field"] == field
            && wanted
                .iter()
                .all(|w| p["message"].as_str().is_some_and(|m| m.contains(w)))
    });
    let Some(p) = found else {
        panic!("no problem at {file} `{field}` with {wanted:?} in:\n{v:#}")
    };
    assert!(p["line"].as_u64().is_some_and(|l| l > 0), "no line: {p}");
    assert!(p["help"].as_str().is_some_and(|h| !h.is_empty()), "no fix: {p}");
    p.clone()
}

#[track_caller]
fn valid(root: &Path) {
    let out = mesh(root, &["validate"]);
    assert!(out.status.success(), "{}", both(&out));
}

/// Runs `case` on a fresh copy of the example domain for each (from, to) edit of `file`,
/// then checks that the untouched copy validates.
#[track_caller]
fn each(file: &str, cases: &[(&str, &str, &str, &[&str])]) {
    for (from, to, field, wanted) in cases {
        let dir = example_domain();
        edit(dir.path(), file, from, to);
        refused(dir.path(), file, field, wanted);
        edit(dir.path(), file, to, from);
        valid(dir.path());
    }
}

// ------------------------------------------------------------------ 5. CSV characters

#[test]
fn csv_delimiters_that_cannot_split_a_file_are_refused() {
    each(
        SALES,
        &[
            (
                r#"delimiter = ",""#,
                r#"delimiter = "\n""#,
                "tables[0].csv.delimiter",
                &["line break"],
            ),
            (
                r#"delimiter = ",""#,
                r#"delimiter = "\r""#,
                "tables[0].csv.delimiter",
                &["line break"],
            ),
            (
                r#"delimiter = ",""#,
                r#"delimiter = '"'"#,
                "tables[0].csv.delimiter",
                &["delimiter and quote"],
            ),
            (
                r#"delimiter = ",""#,
                "delimiter = \"|\"\nquote = \"|\"",
                "tables[0].csv.delimiter",
                &["delimiter and quote", "`|`"],
            ),
            (
                r#"delimiter = ",""#,
                r#"quote = ",""#,
                "tables[0].csv.quote",
                &["delimiter and quote"],
            ),
            (
                r#"delimiter = ",""#,
                "delimiter = \",\"\nquote = \"\\n\"",
                "tables[0].csv.quote",
                &["line break"],
            ),
        ],
    );
    each(
        LEGACY,
        &[
            (
                r#"delimiter = ";""#,
                "delimiter = \";\"\nescape = \";\"",
                "tables[0].csv.escape",
                &["delimiter and escape", "`;`"],
            ),
            (
                r#"delimiter = ";""#,
                "delimiter = \";\"\nescape = \"\\r\"",
                "tables[0].csv.escape",
                &["line break"],
            ),
        ],
    );
    // A quote that escapes itself (RFC 4180) stays valid.
    let dir = example_domain();
    edit(
        dir.path(),
        SALES,
        r#"delimiter = ",""#,
        "delimiter = \",\"\nescape = '\"'",
    );
    valid(dir.path());
}

// ------------------------------------------------------- 6. a table in the quarantine's place

const REJECTED_TABLE: &str = r#"
[[tables]]
name = "legacy_orders_rejected"
layer = "raw"
format = "csv"
columns = [{ name = "order_id", type = "long" }]
"#;

#[test]
fn a_raw_table_named_like_a_quarantine_is_refused() {
    // Same project: legacy_orders has bad_rows = "quarantine"; the new table is tables[3].
    let dir = example_domain();
    let path = dir.path().join(LEGACY);
    let original = std::fs::read_to_string(&path).unwrap();
    let (head, jobs) = original.split_once("\n[[jobs]]").unwrap();
    std::fs::write(&path, format!("{head}\n{REJECTED_TABLE}\n[[jobs]]{jobs}")).unwrap();
    let p = refused(
        dir.path(),
        LEGACY,
        "tables[3].name",
        &["`legacy_orders_rejected` is the quarantine of raw table `legacy_orders`"],
    );
    assert!(p["help"].as_str().unwrap().contains("legacy_orders_refused"), "{p}");
    // The text output names the file, line and field too.
    let text = both(&mesh(dir.path(), &["validate"]));
    assert!(
        text.contains("projects/legacy_refactor/project.toml:")
            && text.contains("`tables[3].name`")
            && text.contains("help:"),
        "{text}"
    );

    // Another project: the raw database is shared by the domain.
    let dir = example_domain();
    let path = dir.path().join(SALES);
    let original = std::fs::read_to_string(&path).unwrap();
    let (head, jobs) = original.split_once("\n[[jobs]]").unwrap();
    std::fs::write(&path, format!("{head}\n{REJECTED_TABLE}\n[[jobs]]{jobs}")).unwrap();
    refused(
        dir.path(),
        SALES,
        "tables[2].name",
        &["quarantine of raw table `legacy_orders`", "f01_raw"],
    );
    std::fs::write(&path, original).unwrap();
    valid(dir.path());
}

// ------------------------------------------------------------- 8. partition specs

#[test]
fn partition_specs_iceberg_refuses_are_refused() {
    each(
        SALES,
        &[
            (
                r#"partition_by = ["month(sale_date)"]"#,
                r#"partition_by = ["month(sale_date)", "day(sale_date)"]"#,
                "tables[1].partition_by[1]",
                &["redundant"],
            ),
            (
                r#"partition_by = ["month(sale_date)"]"#,
                r#"partition_by = ["year(sale_date)", "store_id", "days(sale_date)"]"#,
                "tables[1].partition_by[2]",
                &["redundant with `year(sale_date)`"],
            ),
            (
                r#"partition_by = ["month(sale_date)"]"#,
                r#"partition_by = ["bucket(16, store_id)", "bucket(4, store_id)"]"#,
                "tables[1].partition_by[1]",
                &["`store_id_bucket`", "used twice"],
            ),
        ],
    );
    each(
        LEGACY,
        &[(
            r#"partition_by = ["day(order_ts)"]"#,
            r#"partition_by = ["day(order_ts)", "hour(order_ts)"]"#,
            "tables[1].partition_by[1]",
            &["redundant"],
        )],
    );
    // `month(c)` beside a column named `c_month`, partitioned by too.
    let dir = example_domain();
    edit(
        dir.path(),
        SALES,
        r#"partition_by = ["month(sale_date)"]"#,
        r#"partition_by = ["month(sale_date)", "sale_date_month"]"#,
    );
    edit(
        dir.path(),
        SALES,
        r#"{ name = "revenue", type = "decimal(18,2)", nullable = false },"#,
        r#"{ name = "revenue", type = "decimal(18,2)", nullable = false },
  { name = "sale_date_month", type = "int" },"#,
    );
    refused(
        dir.path(),
        SALES,
        "tables[1].partition_by[0]",
        &["`sale_date_month`", "exists in the schema"],
    );
    refused(
        dir.path(),
        SALES,
        "tables[1].partition_by[1]",
        &["both named `sale_date_month`"],
    );
}

// ------------------------------------------------------------------ 8. schedules

#[test]
fn schedules_eventbridge_refuses_or_that_never_fire_are_refused() {
    let cron = r#"schedule = "cron(0 6 * * ? *)""#;
    let cases: Vec<(String, &[&str])> = [
        ("cron(0 25 * * ? *)", &["hours: 25 is out of range 0-23"][..]),
        ("cron(60 6 * * ? *)", &["minutes: 60"]),
        ("cron(0 6 * * ? 1969)", &["year: 1969"]),
        ("cron(0 6 * * ? 2200)", &["year: 2200"]),
        ("cron(0 6 ? * 8 *)", &["day-of-week: 8"]),
        ("cron(0 6 32W * ? *)", &["day-of-month: 32"]),
        ("cron(0 6 ? * ? *)", &["both `?`"]),
        ("cron(0 6 31 2 ? *)", &["never fires"]),
        ("cron(0 6 30 2 ? *)", &["never fires"]),
        ("cron(0 6 31 APR,JUN,SEP,NOV ? *)", &["never fires"]),
        ("cron(0 6 ? * 2#6 *)", &["1 to 5"]),
        ("cron(*/60 * * * ? *)", &["from 1 to 59"]),
        ("cron(0 6 ? * MON/2 *)", &["takes no `/`"]),
        ("cron(0 6 1W,15W * ? *)", &["stand alone"]),
        ("cron(0 6 * * ? 2020)", &["never fires again"]),
        ("rate(1 hours)", &["singular"]),
        ("rate(0 minutes)", &["positive"]),
    ]
    .into_iter()
    .map(|(s, w)| (format!("schedule = {s:?}"), w))
    .collect();
    for (to, wanted) in &cases {
        let dir = example_domain();
        edit(dir.path(), SALES, cron, to);
        refused(dir.path(), SALES, "pipelines[0].schedule", wanted);
    }
    // EventBridge's other forms stay valid.
    for s in [
        "cron(0 18 L * ? *)",
        "cron(0 9 LW * ? *)",
        "cron(0 9 ? * 6L *)",
        "cron(0 9 ? * MON#1 *)",
        "cron(0/15 8-17 ? * MON-FRI *)",
        "cron(0 6 29 2 ? *)",
        "rate(15 minutes)",
    ] {
        let dir = example_domain();
        edit(dir.path(), SALES, cron, &format!("schedule = {s:?}"));
        valid(dir.path());
    }
}

// ------------------------------------------------------------------ 8. sql checks

#[test]
fn sql_checks_naming_unknown_columns_are_refused() {
    each(
        LEGACY,
        &[
            (
                "WHERE amount < 0",
                "WHERE amout < 0",
                "jobs[1].checks[0].sql",
                &["`amout`", "curated.orders_by_country"],
            ),
            (
                "SELECT * FROM output WHERE amount < 0",
                "SELECT o.country FROM output o WHERE o.revenue < 0",
                "jobs[1].checks[0].sql",
                &["`revenue`"],
            ),
        ],
    );
    let dir = example_domain();
    edit(dir.path(), LEGACY, "WHERE amount < 0", "WHERE amout < 0");
    let p = refused(dir.path(), LEGACY, "jobs[1].checks[0].sql", &["`amout`"]);
    assert_eq!(p["help"], "did you mean `amount`?", "{p}");
}
