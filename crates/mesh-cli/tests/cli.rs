//! The real `mesh` binary against the example domain and the invalid-input corpus.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{mesh, mesh_cmd, repo_root};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn example_domain_validates() {
    let out = mesh(&repo_root(), &["validate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("3 projects"), "{}", text(&out.stdout));
}

#[test]
fn names_match_the_reference_architecture() {
    let out = mesh(
        &repo_root(),
        &["names", "--env", "dev", "--project", "sales", "--format", "json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["buckets"]["raw"], "f01-raw-dev");
    assert_eq!(json["databases"]["raw"], "f01_raw");
    let p = &json["projects"][0];
    assert_eq!(p["slug"], "pj01");
    assert_eq!(p["jobs"][0]["glue_job"], "f01-pj01-daily-sales-dev");
    assert_eq!(p["pipelines"][0]["state_machine"], "f01-pj01-pipeline-dev");
    assert_eq!(p["roles"]["glue"], "f01-glue-pj01-dev");
    assert_eq!(p["roles"]["optimizer"], "f01-optimizer-pj01-dev");
    assert_eq!(p["iceberg_warehouses"]["curated"], "s3://f01-curated-dev/pj01/iceberg/");
    insta::assert_snapshot!("names_dev_sales_json", text(&out.stdout));
}

#[test]
fn describe_snapshot() {
    let out = mesh(&repo_root(), &["describe"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    insta::assert_snapshot!("describe", text(&out.stdout));
}

#[test]
fn unknown_project_and_env_are_usage_errors() {
    let out = mesh(&repo_root(), &["names", "--project", "sale"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("did you mean `sales`?"),
        "{}",
        text(&out.stderr)
    );
    let out = mesh(&repo_root(), &["names", "--env", "staging"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("local, dev, int, prod"),
        "{}",
        text(&out.stderr)
    );
}

/// Every folder under tests/fixtures/invalid is a broken domain: exit 2, a message that names
/// the file and the field or line, no panic, and a reviewed snapshot of the whole message.
#[test]
fn invalid_fixtures_are_reported() {
    let dir = repo_root().join("tests/fixtures/invalid");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    assert!(cases.len() >= 25, "the corpus shrank to {} cases", cases.len());
    for case in cases {
        let name = case.file_name().unwrap().to_str().unwrap().to_string();
        let out = mesh(&case, &["validate"]);
        let stderr = text(&out.stderr)
            .replace(&format!("{}/", case.display()), "<root>/")
            .replace(&case.display().to_string(), "<root>");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name}: expected exit 2, got {:?}\n{stderr}",
            out.status.code()
        );
        assert!(!stderr.contains("panicked"), "{name} panicked:\n{stderr}");
        assert!(
            stderr.contains("domain.json") || stderr.contains("project.toml"),
            "{name}: no file named:\n{stderr}"
        );
        assert!(stderr.contains("help:"), "{name}: no fix suggested:\n{stderr}");
        insta::assert_snapshot!(format!("invalid__{name}"), stderr);
    }
}

#[test]
fn init_and_new_build_a_valid_domain() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("shop");
    let run = |args: &[&str]| mesh(&root, args);
    let ok = |out: Output| assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    ok(mesh_cmd()
        .args(["init"])
        .arg(&root)
        .args(["--abbr", "s01"])
        .output()
        .unwrap());
    ok(run(&["validate"]));
    ok(run(&[
        "new",
        "project",
        "store",
        "--slug",
        "st01",
        "--owner",
        "store-team",
    ]));
    ok(run(&[
        "new",
        "table",
        "store",
        "orders",
        "--layer",
        "raw",
        "--format",
        "csv",
        "--column",
        "order_id:long!",
        "--column",
        "amount:decimal(10,2)",
    ]));
    ok(run(&[
        "new",
        "table",
        "store",
        "order_totals",
        "--layer",
        "curated",
        "--column",
        "order_id:long!",
        "--column",
        "amount:decimal(10,2)",
    ]));
    ok(run(&[
        "new",
        "job",
        "store",
        "totals",
        "--input",
        "raw.orders",
        "--output",
        "curated.order_totals",
        "--mode",
        "overwrite",
    ]));
    ok(run(&["validate"]));
    assert!(root.join("projects/store/sql/totals.sql").is_file());

    // A change that would break the domain is rolled back: the manifest is unchanged and no SQL is left behind.
    let manifest = root.join("projects/store/project.toml");
    let before = std::fs::read_to_string(&manifest).unwrap();
    let out = run(&[
        "new",
        "job",
        "store",
        "broken",
        "--input",
        "raw.orderz",
        "--output",
        "curated.order_totals",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("did you mean `raw.orders`?"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), before);
    assert!(!root.join("projects/store/sql/broken.sql").exists());

    // Duplicate slugs are refused and leave nothing behind.
    let out = run(&["new", "project", "other", "--slug", "st01"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!root.join("projects/other").exists());

    // init refuses to overwrite a domain.
    let out = mesh_cmd()
        .args(["init"])
        .arg(&root)
        .args(["--abbr", "s01"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
