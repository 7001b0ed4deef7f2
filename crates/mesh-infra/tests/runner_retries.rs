//! The Glue runner's side of "retries as locally" (runtime/glue/retry_tests.py): its error
//! classification, its waits, and `main` retrying a transient error (a real refused
//! connection through Py4J) but failing a SQL typo at the first attempt. The state machine's
//! side is in tests/sfn_failures.rs.
//!
//! Needs `MESH_PYTHON` with pyspark (scripts/test.sh installs it).

mod common;

#[test]
fn runner_retries_transient_errors_only() {
    let work = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::tool("MESH_PYTHON"))
        .arg(common::repo_root().join("runtime/glue/retry_tests.py"))
        .arg(work.path())
        .output()
        .expect("run retry_tests.py");
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
        "{}\n--- stderr (tail)\n{}",
        failed.join("\n"),
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Every case ran: the pure ones and the ones under Spark.
    assert_eq!(results.len(), 16, "{stdout}");
}
