//! Data products on the real binary (issue 25): `mesh validate --against REF` classifies each
//! product's changes against the model committed at REF, refuses a breaking one without a major
//! version bump (exit 2, naming the product, the change and the consumers it breaks) and lets
//! additive changes and bumped versions pass; `mesh render --check` fails when a contract no
//! longer matches its table.

use std::path::Path;

mod common;
use common::{both, git, mesh};

const DOMAIN: &str = r#"{
  "domain_name": "shop01",
  "domain_abbr": "s01",
  "aws_region": "eu-west-1",
  "aws_accounts": { "dev": "111111111111", "int": "222222222222", "prod": "333333333333" }
}"#;

const PROJECT: &str = r#"name = "shop"
project_slug = "pj09"
owner = "shop-team"
classification = "internal"

[[tables]]
name = "daily"
layer = "curated"
partition_by = ["month(sale_date)"]
identifier = ["sale_date", "store_id"]
columns = [
  { name = "sale_date", type = "date", nullable = false },
  { name = "store_id", type = "int", nullable = false },
  { name = "units", type = "long", nullable = false },
  { name = "revenue", type = "decimal(18,2)", nullable = false },
  { name = "note", type = "string" },
]

[[tables]]
name = "stores"
layer = "refined"
columns = [{ name = "store_id", type = "int", nullable = false }]

[[products]]
name = "daily_sales"
table = "curated.daily"
version = 1
description = "Sales per store and day."
freshness = "26h"
consumers = [{ domain = "m02", accounts = { dev = "444444444444", prod = "666666666666" } }]
"#;

/// A domain whose `main` holds [`PROJECT`], committed.
fn domain() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("domain.json"), DOMAIN).unwrap();
    std::fs::create_dir_all(root.join("projects/shop")).unwrap();
    write(root, PROJECT);
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "domain.json", "projects"]);
    git(root, &["commit", "-q", "-m", "base"]);
    dir
}

fn write(root: &Path, manifest: &str) {
    std::fs::write(root.join("projects/shop/project.toml"), manifest).unwrap();
}

/// [`PROJECT`] with each `(from, to)` replaced once; fails the test when `from` is absent.
fn edit(pairs: &[(&str, &str)]) -> String {
    let mut s = PROJECT.to_string();
    for (from, to) in pairs {
        assert!(s.contains(from), "`{from}` not in the manifest");
        s = s.replacen(from, to, 1);
    }
    s
}

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const REVENUE: &str = r#"{ name = "revenue", type = "decimal(18,2)", nullable = false },"#;
const UNITS: &str = r#"{ name = "units", type = "long", nullable = false },"#;
const NOTE: &str = r#"{ name = "note", type = "string" },"#;

#[test]
fn every_breaking_change_is_refused_naming_the_product_the_change_and_its_consumers() {
    let dir = domain();
    let root = dir.path();
    let cases: Vec<(&str, String, &str)> = vec![
        ("removed", edit(&[(UNITS, "")]), "column `units` removed"),
        (
            "renamed",
            edit(&[(
                UNITS,
                r#"{ name = "quantity", type = "long", nullable = false, renamed_from = "units" },"#,
            )]),
            "column `units` renamed to `quantity`",
        ),
        (
            "narrowed",
            edit(&[(UNITS, r#"{ name = "units", type = "int", nullable = false },"#)]),
            "column `units` type changed from long to int (narrowed)",
        ),
        (
            "retyped",
            edit(&[(REVENUE, r#"{ name = "revenue", type = "string", nullable = false },"#)]),
            "column `revenue` type changed from decimal(18,2) to string",
        ),
        (
            "made non-null",
            edit(&[(NOTE, r#"{ name = "note", type = "string", nullable = false },"#)]),
            "column `note` made non-null",
        ),
        (
            "made nullable",
            edit(&[(UNITS, r#"{ name = "units", type = "long" },"#)]),
            "column `units` made nullable",
        ),
        (
            "new non-null column",
            edit(&[(
                NOTE,
                r#"{ name = "note", type = "string" }, { name = "region", type = "string", nullable = false },"#,
            )]),
            "new non-null column `region`",
        ),
        (
            "partitioning",
            edit(&[(
                r#"partition_by = ["month(sale_date)"]"#,
                r#"partition_by = ["day(sale_date)"]"#,
            )]),
            "partitioning changed from [month(sale_date)] to [day(sale_date)]",
        ),
        (
            "identifier",
            edit(&[(
                r#"identifier = ["sale_date", "store_id"]"#,
                r#"identifier = ["sale_date"]"#,
            )]),
            "identifier changed from [sale_date, store_id] to [sale_date]",
        ),
        (
            "freshness",
            edit(&[("\"26h\"", "\"2d\"")]),
            "freshness loosened from 26h to 2d",
        ),
        (
            "another table",
            edit(&[("table = \"curated.daily\"", "table = \"refined.stores\"")]),
            "publishes s01_refined.stores instead of s01_curated.daily",
        ),
    ];
    for (name, manifest, wanted) in cases {
        write(root, &manifest);
        // The model itself is valid: only the comparison refuses it.
        let o = mesh(root, &["validate"]);
        assert!(o.status.success(), "{name}: {}", both(&o));
        let o = mesh(root, &["validate", "--against", "main"]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", both(&o));
        let e = err(&o);
        for w in [
            "projects/shop/project.toml:",
            "`products[0]`",
            "product `daily_sales` (version 1): breaking change",
            "against main",
            wanted,
            "consumer m02 (dev 444444444444, prod 666666666666)",
            "version = 2",
        ] {
            assert!(e.contains(w), "{name}: `{w}` not in:\n{}", both(&o));
        }
    }
}

#[test]
fn additive_changes_pass_and_are_listed() {
    let dir = domain();
    let root = dir.path();
    let manifest = edit(&[
        (
            NOTE,
            r#"{ name = "note", type = "string" }, { name = "region", type = "string" },"#,
        ),
        (
            UNITS,
            r#"{ name = "units", type = "long", nullable = false, comment = "new words" },"#,
        ),
        ("\"26h\"", "\"25h\""),
    ]) + r#"
[[products]]
name = "stores"
table = "refined.stores"
version = 1
description = "Stores."
freshness = "1d"
"#;
    write(root, &manifest);
    let o = mesh(root, &["validate", "--against", "main"]);
    assert!(o.status.success(), "{}", both(&o));
    let s = out(&o);
    for w in [
        "product daily_sales (version 1) against main:",
        "additive: new nullable column `region` (string)",
        "additive: freshness tightened from 26h to 25h",
        "product stores (version 1) against main:",
        "additive: new product (version 1)",
    ] {
        assert!(s.contains(w), "`{w}` not in:\n{}", both(&o));
    }
    // A comment is not a change of the contract's promise.
    assert!(!s.contains("units"), "{}", both(&o));
    // Nothing changed: said so.
    write(root, PROJECT);
    let o = mesh(root, &["validate", "--against", "main"]);
    assert!(
        o.status.success() && out(&o).contains("no data product changed against main"),
        "{}",
        both(&o)
    );
}

#[test]
fn a_major_version_bump_lets_breaking_changes_through_and_a_lowered_one_is_refused() {
    let dir = domain();
    let root = dir.path();
    write(root, &edit(&[(UNITS, ""), ("version = 1", "version = 2")]));
    let o = mesh(root, &["validate", "--against", "main"]);
    assert!(o.status.success(), "{}", both(&o));
    assert!(
        out(&o).contains("product daily_sales (version 1 → 2) against main:\n  breaking, allowed by the version bump: column `units` removed"),
        "{}",
        both(&o)
    );
    // JSON says the same, for scripts.
    let o = mesh(root, &["validate", "--against", "main", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], true, "{}", both(&o));
    assert_eq!(v["products"][0]["product"], "daily_sales");
    assert_eq!(v["products"][0]["base_version"], 1);
    assert_eq!(v["products"][0]["version"], 2);
    assert_eq!(v["products"][0]["changes"][0]["breaking"], true);

    // Committed at 2, going back to 1 is refused.
    git(root, &["commit", "-q", "-am", "v2"]);
    write(root, &edit(&[(UNITS, "")]));
    let o = mesh(root, &["validate", "--against", "main"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(err(&o).contains("version lowered from 2 to 1"), "{}", both(&o));
}

#[test]
fn a_removed_product_is_breaking_while_it_has_consumers() {
    let dir = domain();
    let root = dir.path();
    let without = PROJECT.split("[[products]]").next().unwrap().to_string();
    write(root, &without);
    let o = mesh(root, &["validate", "--against", "main", "--format", "json"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    let e = err(&o);
    assert!(
        e.contains("projects/shop/project.toml: product `daily_sales` (version 1): breaking change against main: product removed"),
        "{}",
        both(&o)
    );
    assert!(
        e.contains("consumer m02") && e.contains("remove its consumers first"),
        "{}",
        both(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false, "{}", both(&o));

    // Consumers removed first (committed), then the product: nobody to break.
    write(
        root,
        &edit(&[(
            r#"consumers = [{ domain = "m02", accounts = { dev = "444444444444", prod = "666666666666" } }]"#,
            "",
        )]),
    );
    git(root, &["commit", "-q", "-am", "no consumers"]);
    write(root, &without);
    let o = mesh(root, &["validate", "--against", "main"]);
    assert!(o.status.success(), "{}", both(&o));
    assert!(
        out(&o).contains("additive: product removed (it had no consumers)"),
        "{}",
        both(&o)
    );
}

#[test]
fn a_ref_that_does_not_exist_is_an_input_error() {
    let dir = domain();
    let o = mesh(dir.path(), &["validate", "--against", "no-such-branch"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(err(&o).contains("no-such-branch"), "{}", both(&o));
}

#[test]
fn render_writes_contracts_and_check_fails_when_the_table_changes() {
    let dir = domain();
    let root = dir.path();
    let o = mesh(root, &["render"]);
    assert!(o.status.success(), "{}", both(&o));
    assert!(out(&o).contains("wrote 1 data contracts"), "{}", both(&o));
    let contract = std::fs::read_to_string(root.join("contracts/daily_sales.odcs.yaml")).unwrap();
    assert!(contract.contains("apiVersion: v3.0.2") && contract.contains("physicalName: s01_curated.daily"));
    let o = mesh(root, &["render", "--check"]);
    assert!(o.status.success(), "{}", both(&o));
    assert!(out(&o).contains("ok: 1 data contracts"), "{}", both(&o));

    write(root, &edit(&[(NOTE, "")]));
    let o = mesh(root, &["render", "--check"]);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    assert!(
        err(&o).contains("differs  contracts/daily_sales.odcs.yaml"),
        "{}",
        both(&o)
    );

    // A product removed leaves a stale contract, which --check names and render deletes.
    write(root, PROJECT.split("[[products]]").next().unwrap());
    let o = mesh(root, &["render", "--check"]);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    assert!(
        err(&o).contains("stale    contracts/daily_sales.odcs.yaml"),
        "{}",
        both(&o)
    );
    let o = mesh(root, &["render"]);
    assert!(o.status.success(), "{}", both(&o));
    assert!(!root.join("contracts/daily_sales.odcs.yaml").exists());
}

/// The generated pull-request workflow runs the check against the base branch, with the whole
/// history checked out, before the plan.
#[test]
fn pull_requests_run_the_breaking_change_check_against_their_base_branch() {
    let ci = std::fs::read_to_string(common::repo_root().join(".github/workflows/ci.yml")).unwrap();
    let job = ci
        .split("\n  plan-model:\n")
        .nth(1)
        .expect("ci.yml has the model plan job");
    let check = job
        .find("mesh validate --against \"origin/$GITHUB_BASE_REF\"")
        .expect("the model plan job runs mesh validate --against the base branch");
    let plan = job.find("/mesh plan --against").expect("and the plan");
    assert!(check < plan, "the product check runs before the plan");
    assert!(job.find("fetch-depth: 0").is_some_and(|d| d < check));
}

/// `mesh products` lists each product with its contract and consumers, and after a run the
/// table's latest commit, fresh within the promise or stale beyond it.
#[test]
fn products_lists_versions_contracts_consumers_and_freshness() {
    let dir = common::example_domain();
    let root = dir.path();
    // Before anything is written: listed, not judged.
    let o = mesh(root, &["products", "--format", "json"]);
    assert!(o.status.success(), "{}", both(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["env"], "local");
    let p = &v["products"][0];
    assert_eq!(p["product"], "daily_sales", "{v}");
    assert_eq!(p["version"], 1);
    assert_eq!(p["physical_name"], "f01_curated.daily_sales");
    assert_eq!(p["contract"], "contracts/daily_sales.odcs.yaml");
    assert_eq!(
        p["contract_present"], false,
        "the copy has no contracts/ until mesh render"
    );
    assert_eq!(p["consumers"][0]["domain"], "m02");
    assert_eq!(p["consumers"][0]["accounts"]["prod"], "666666666666");
    assert!(p["last_commit_ms"].is_null() && p["fresh"].is_null(), "{v}");
    assert!(out(&mesh(root, &["products"])).contains("not written in local yet (promise: within 26h)"));

    let o = mesh(root, &["run", "sales", "--sample-data", "--rows", "2000"]);
    assert!(o.status.success(), "{}", both(&o));
    let o = mesh(root, &["products", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = &v["products"][0];
    assert!(p["last_commit_ms"].as_i64().is_some_and(|ms| ms > 0), "{v}");
    assert_eq!(p["fresh"], true, "{v}");
    let text = out(&mesh(root, &["products"]));
    assert!(
        text.contains("local: last commit ") && text.contains("fresh (promise: within 26h)"),
        "{text}"
    );

    // The same commit against a promise it cannot keep any more.
    let manifest = root.join("projects/sales/project.toml");
    let m = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, m.replacen("freshness = \"26h\"", "freshness = \"1s\"", 1)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let o = mesh(root, &["products", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["products"][0]["fresh"], false, "{v}");
    assert!(v["products"][0]["age_seconds"].as_i64().unwrap() >= 2, "{v}");
    assert!(out(&mesh(root, &["products"])).contains("STALE (promise: within 1s)"));
}
