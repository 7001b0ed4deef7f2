//! Data contracts (ODCS): every generated contract passes the standard's own JSON schema
//! (validated by `jsonschema` in Python, scripts/test.sh installs both), the example's contract
//! is snapshot-tested, and drift is detected like `infra/`'s.

mod common;

use std::path::Path;
use std::process::Command;

use mesh_domain::Domain;

/// A project that exercises every column type, partition transform and check kind, a warn
/// check, a renamed column, text YAML would misread, and a product with no consumers.
const PROJECT: &str = r#"
name = "ledger"
project_slug = "pj07"
owner = "ledger: team"
classification = "confidential"

[[tables]]
name = "entries"
layer = "raw"
format = "json"
columns = [{ name = "id", type = "long", nullable = false }]

[[tables]]
name = "postings"
layer = "refined"
description = "Postings: one per line,\nwith \"quotes\" # and a hash"
partition_by = ["day(booked_at)", "bucket(16, account)", "truncate(4, code)", "flag"]
identifier = ["id", "account"]
columns = [
  { name = "id", type = "long", nullable = false, comment = "yes" },
  { name = "account", type = "string", nullable = false },
  { name = "code", type = "string" },
  { name = "flag", type = "boolean" },
  { name = "n", type = "int" },
  { name = "ratio", type = "float" },
  { name = "score", type = "double" },
  { name = "amount", type = "decimal(38,9)" },
  { name = "booked_on", type = "date", renamed_from = "booking_date" },
  { name = "booked_at", type = "timestamp", nullable = false },
  { name = "seen_at", type = "timestamptz" },
  { name = "payload", type = "binary" },
]

[[jobs]]
name = "postings"
sql = "sql/postings.sql"
inputs = ["raw.entries"]
output = "refined.postings"
mode = "append"
checks = [
  { type = "not_null", columns = ["code", "flag"] },
  { type = "unique", columns = ["id"] },
  { type = "unique", columns = ["id", "account"], severity = "warn" },
  { type = "accepted_values", column = "code", values = ["A1", "true", "1.5", "no"] },
  { type = "range", column = "ratio", min = 0.5, max = 1e6 },
  { type = "range", column = "n", max = 10 },
  { type = "row_count_min", min = 3 },
  { type = "sql", name = "no_negative", sql = "SELECT * FROM output WHERE amount < 0" },
]

[[products]]
name = "postings"
table = "refined.postings"
version = 3
description = "Every posting: \"as booked\" - key: value, [brackets] {braces}."
freshness = "90m"
"#;

fn ledger_domain(dir: &Path) -> Domain {
    std::fs::write(
        dir.join("domain.json"),
        r#"{ "domain_name": "ledger01", "domain_abbr": "l01", "aws_region": "eu-west-1" }"#,
    )
    .unwrap();
    let p = dir.join("projects/ledger");
    std::fs::create_dir_all(p.join("sql")).unwrap();
    std::fs::write(p.join("project.toml"), PROJECT).unwrap();
    std::fs::write(p.join("sql/postings.sql"), "SELECT * FROM l01_raw.entries\n").unwrap();
    match mesh_domain::load_domain(dir) {
        Ok(d) => d,
        Err(e) => panic!("the ledger domain must load:\n{e}"),
    }
}

fn validate(files: &[std::path::PathBuf]) -> std::process::Output {
    let python = common::tool("MESH_PYTHON");
    Command::new(python)
        .arg(common::tools_dir().join("odcs_validate.py"))
        .args(files)
        .output()
        .expect("run odcs_validate.py")
}

fn text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn every_generated_contract_passes_the_odcs_json_schema() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = ledger_domain(dir.path());
    let out = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for domain in [common::example_domain(), ledger] {
        let rendered = mesh_infra::contract::render(&domain);
        assert!(!rendered.files.is_empty(), "{} renders no contract", domain.abbr);
        let target = out.path().join(domain.abbr.as_str());
        for f in mesh_infra::write(&rendered, &target).unwrap() {
            files.push(f);
        }
    }
    assert_eq!(files.len(), 2);
    let o = validate(&files);
    assert!(o.status.success(), "the ODCS schema rejects a contract:\n{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).matches(": ok").count(),
        2,
        "{}",
        text(&o)
    );

    // The validator is not a rubber stamp: the same contract with a value of the wrong type
    // and a property the standard does not define fails, naming both.
    let good = std::fs::read_to_string(&files[1]).unwrap();
    let broken = good.replacen("required: true", "required: \"very\"", 1).replacen(
        "physicalType: table",
        "physicalType: table\n    rows: 12",
        1,
    );
    assert_ne!(broken, good);
    let bad = out.path().join("broken.odcs.yaml");
    std::fs::write(&bad, broken).unwrap();
    let o = validate(&[bad]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("'very' is not of type 'boolean'"), "{}", text(&o));
    assert!(stdout.contains("'rows'"), "{}", text(&o));
}

#[test]
fn the_contract_carries_the_table_declaration() {
    let dir = tempfile::tempdir().unwrap();
    let domain = ledger_domain(dir.path());
    let c = &mesh_infra::contract::contracts(&domain)[0];
    let y = c.to_yaml();
    assert_eq!(c.path(), Path::new("contracts/postings.odcs.yaml"));
    for wanted in [
        "version: 3.0.0",
        "id: l01.postings.v3",
        "physicalName: l01_refined.postings",
        // Types: Iceberg's as physical, ODCS's as logical, with widths.
        "physicalType: \"decimal(38,9)\"",
        "physicalType: timestamptz",
        "format: f32",
        "format: binary",
        // Partitioning and identifier, in order, with the transform.
        "partitionKeyPosition: 4",
        "value: \"bucket[16]\"",
        "primaryKeyPosition: 2",
        "value: booking_date",
        // Every check kind, with its severity.
        "rule: nullCheck",
        "rule: duplicateCount",
        "severity: warning",
        "validValues: [A1, \"true\", \"1.5\", \"no\"]",
        "WHERE ratio < 0.5 OR ratio > 1000000",
        "WHERE n > 10",
        "mustBeGreaterOrEqualTo: 3",
        "WITH output AS (SELECT * FROM l01_refined.postings)",
        // SLA, owner, classification.
        "value: 90\n    unit: m",
        "username: \"ledger: team\"",
        "classification: confidential",
        "value: []",
    ] {
        assert!(y.contains(wanted), "`{wanted}` not in:\n{y}");
    }
}

#[test]
fn example_contract_snapshot() {
    let domain = common::example_domain();
    let rendered = mesh_infra::contract::render(&domain);
    let f = rendered
        .files
        .iter()
        .find(|f| f.path == Path::new("contracts/daily_sales.odcs.yaml"))
        .expect("the example publishes daily_sales");
    insta::assert_snapshot!("daily_sales_odcs", f.contents);
}

#[test]
fn drift_finds_missing_changed_and_stale_contracts_and_leaves_other_files_alone() {
    use mesh_infra::Drift;
    let domain = common::example_domain();
    let rendered = mesh_infra::contract::render(&domain);
    let root = tempfile::tempdir().unwrap();
    let path = Path::new("contracts/daily_sales.odcs.yaml");
    assert_eq!(
        mesh_infra::contract::drift(&rendered, root.path()).unwrap(),
        vec![Drift::Missing(path.into())]
    );
    mesh_infra::write(&rendered, root.path()).unwrap();
    assert!(mesh_infra::contract::drift(&rendered, root.path()).unwrap().is_empty());
    let file = root.path().join(path);
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("value: 26", "value: 48");
    std::fs::write(&file, edited).unwrap();
    let old = root.path().join("contracts/old.odcs.yaml");
    std::fs::write(
        &old,
        "# Generated by `mesh render` from projects/x/project.toml: do not edit.\n",
    )
    .unwrap();
    std::fs::write(root.path().join("contracts/notes.md"), "hand-written\n").unwrap();
    assert_eq!(
        mesh_infra::contract::drift(&rendered, root.path()).unwrap(),
        vec![
            Drift::Differs(path.into()),
            Drift::Stale("contracts/old.odcs.yaml".into())
        ]
    );
}
