//! `mesh validate` reads each job's SQL against the manifest (issue 27 item 5), on the real
//! binary: a column added to the manifest but not to the SQL, a misspelt alias, a column the
//! SQL reads that its input does not declare and a result type wider than the declared one are
//! each refused with exit 2, the SQL file, the line where it can tell, and a fix; undoing the
//! edit validates again, and each case fails `mesh run` the same way (what validate promises).

mod common;

use std::path::Path;

use common::{both, example_domain, mesh};

const SALES: &str = "projects/sales/project.toml";
const SQL: &str = "projects/sales/sql/daily_sales.sql";

fn edit(root: &Path, file: &str, from: &str, to: &str) -> impl FnOnce() + use<> {
    let path = root.join(file);
    let before = std::fs::read_to_string(&path).unwrap();
    assert!(before.contains(from), "`{from}` not in {file}");
    std::fs::write(&path, before.replacen(from, to, 1)).unwrap();
    move || std::fs::write(&path, before).unwrap()
}

/// `mesh validate --format json` exits 2 with a problem in `file` (at `line` when given) whose
/// message and help hold `wanted`.
#[track_caller]
fn refused(root: &Path, file: &str, line: Option<u64>, wanted: &[&str]) {
    let out = mesh(root, &["validate", "--format", "json"]);
    let text = both(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {text}"));
    let problems = v["problems"].as_array().unwrap();
    let found = problems.iter().find(|p| {
        let all = format!(
            "{} {}",
            p["message"].as_str().unwrap_or(""),
            p["help"].as_str().unwrap_or("")
        );
        p["file"] == file && wanted.iter().all(|w| all.contains(w))
    });
    let Some(p) = found else {
        panic!("no problem in {file} with {wanted:?}:\n{v:#}")
    };
    if let Some(line) = line {
        assert_eq!(p["line"], line, "{p}");
    }
    // The text form names the file (and line) too.
    let out = mesh(root, &["validate"]);
    let text = both(&out);
    let at = match line {
        Some(l) => format!("{file}:{l}:"),
        None => format!("{file}:"),
    };
    assert!(text.contains(&at), "{text}");
}

#[track_caller]
fn valid(root: &Path) {
    let out = mesh(root, &["validate"]);
    assert!(out.status.success(), "{}", both(&out));
}

#[test]
fn validate_reads_the_sql_against_the_manifest() {
    let dir = example_domain();
    let root = dir.path();
    valid(root);

    // A column declared in the manifest only: the run would fail on it.
    let undo = edit(
        root,
        SALES,
        r#"  { name = "revenue", type = "decimal(18,2)", nullable = false },"#,
        r#"  { name = "revenue", type = "decimal(18,2)", nullable = false },
  { name = "margin", type = "decimal(18,2)" },"#,
    );
    refused(
        root,
        SQL,
        None,
        &["no column `margin`", "curated.daily_sales", "AS margin"],
    );
    undo();

    // A misspelt alias (nullable or not, the declared column would stay empty): its line.
    let undo = edit(root, SQL, "AS revenue", "AS revenu");
    refused(
        root,
        SQL,
        Some(7),
        &[
            "`revenu` is not a column of curated.daily_sales",
            "did you mean `revenue`",
        ],
    );
    undo();

    // A column the input does not declare.
    let undo = edit(root, SQL, "  store_id,\n", "  store_id,\n  shop_code,\n");
    refused(root, SQL, Some(5), &["shop_code", "inputs do not declare"]);
    undo();

    // A result wider than the declared type: the table keeps the manifest's type.
    let undo = edit(
        root,
        SALES,
        r#"{ name = "revenue", type = "decimal(18,2)", nullable = false }"#,
        r#"{ name = "revenue", type = "decimal(10,2)", nullable = false }"#,
    );
    refused(
        root,
        SQL,
        Some(7),
        &["`revenue` is decimal(18,2)", "cannot be written to", "CAST"],
    );
    undo();

    // The SQL and the manifest changed together validate.
    let undo_sql = edit(root, SQL, "AS revenue", "AS revenue,\n  MAX(unit_price) AS top_price");
    let undo_toml = edit(
        root,
        SALES,
        r#"  { name = "revenue", type = "decimal(18,2)", nullable = false },"#,
        r#"  { name = "revenue", type = "decimal(18,2)", nullable = false },
  { name = "top_price", type = "decimal(10,2)" },"#,
    );
    valid(root);
    undo_sql();
    undo_toml();
    valid(root);
}

/// What validate refuses, `mesh run` refuses too, for the same reason: validate is not stricter
/// than the engine.
#[test]
fn a_refused_alias_also_fails_the_run() {
    let dir = example_domain();
    let root = dir.path();
    let _undo = edit(root, SQL, "AS revenue", "AS revenu");
    let out = mesh(
        root,
        &["run", "--job", "daily_sales", "--sample-data", "--rows", "2000"],
    );
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("`revenu` is not a column of curated.daily_sales"),
        "{text}"
    );
}
