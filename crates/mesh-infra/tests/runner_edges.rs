//! Issue 26 item 11, the Glue runner's side (tools/runner_edges.py, pure functions): the
//! maintenance run passes `delete_file_threshold` (of a spec serialised from the model, as
//! `mesh build` writes it), integers go into floats only when exact, dates must be
//! zero-padded (the same cases as mesh-core's interval test), and a duplicated merge key is
//! reported without its values.
//!
//! Needs `MESH_PYTHON` (scripts/test.sh installs it; no Spark needed).

mod common;

#[test]
fn runner_edges() {
    let d = common::example_domain();
    let (project, table) = d
        .projects
        .iter()
        .find_map(|p| {
            p.tables
                .iter()
                .find(|t| t.iceberg().is_some_and(|o| o.optimizers.compaction.is_some()))
                .map(|t| (p, t))
        })
        .expect("the example has an Iceberg table with compaction");
    let mut optimizers = table.iceberg().unwrap().optimizers.clone();
    // Not the default: a value the runner could only know from the spec.
    let compaction = optimizers.compaction.as_mut().unwrap();
    compaction.delete_file_threshold = 7;
    let spec = serde_json::json!({
        "spec_version": 1,
        "kind": "maintenance",
        "project": project.name.as_str(),
        "job": format!("optimize {}", table.reference()),
        "iceberg": {"catalog": "glue_catalog", "warehouse": "s3://w/"},
        "table": {
            "reference": table.reference().to_string(),
            "database": "f01_curated",
            "table": table.name.as_str(),
            "sort_order": [],
        },
        "optimizers": serde_json::to_value(&optimizers).unwrap(),
    });
    assert_eq!(spec["optimizers"]["compaction"]["delete_file_threshold"], 7);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("maintenance.json");
    std::fs::write(&file, serde_json::to_vec(&spec).unwrap()).unwrap();
    let out = std::process::Command::new(common::tool("MESH_PYTHON"))
        .arg(common::tools_dir().join("runner_edges.py"))
        .arg(common::repo_root().join("runtime/glue"))
        .arg(&file)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run runner_edges.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let results: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let failed: Vec<String> = results
        .iter()
        .filter(|r| r["ok"] != true)
        .map(|r| format!("{}\n{}", r["test"], r["error"].as_str().unwrap_or("")))
        .collect();
    assert!(
        failed.is_empty() && out.status.success(),
        "{}\n--- stderr\n{}",
        failed.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(results.len(), 8, "{stdout}");
}
