//! Another domain's product read the same on both engines (issue 25): the example consumer
//! domain (examples/marketing02) reads `f01.daily_sales@1` with `mesh run` locally at its pinned
//! snapshot, and its Glue job (the spec `mesh build --env dev` writes, the product input naming
//! f01's dev account) runs on Spark 3.5 + Iceberg 1.10 with the Glue runner over the same
//! snapshot of f01's table (runtime/glue/product_tests.py): the same rows; and a product its
//! catalog does not hold is refused with meshkit's words.
//!
//! Needs `MESH_PYTHON` (pyspark) and `MESH_ICEBERG_JARS`; scripts/test.sh sets both. Without
//! them the test fails; it never skips.

use std::path::Path;
use std::process::Command;

mod common;
use common::{both, mesh, repo_root};

fn ok(o: std::process::Output) -> String {
    assert!(o.status.success(), "{}", both(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn env_or_fail(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/test.sh, which sets it"))
}

#[test]
fn the_runner_reads_a_consumed_product_as_mesh_run_does() {
    let (python, jars) = (env_or_fail("MESH_PYTHON"), env_or_fail("MESH_ICEBERG_JARS"));
    let dir = common::example_domain();
    let root = dir.path();
    common::copy_dir(&repo_root().join("examples"), &root.join("examples"));
    let consumer = root.join("examples/marketing02");
    for stale in [".mesh", "products.lock.json", "infra"] {
        let _ = std::fs::remove_dir_all(consumer.join(stale));
        let _ = std::fs::remove_file(consumer.join(stale));
    }
    ok(mesh(root, &["run", "sales", "--sample-data", "--rows", "3000"]));
    ok(mesh(&consumer, &["pull"]));
    ok(mesh(&consumer, &["run"]));

    // What meshkit computed, and the snapshot of f01's table it read (the pin, still current).
    let expected = ok(mesh(
        &consumer,
        &["sql", "SELECT * FROM m02_curated.store_revenue", "--format", "json"],
    ));
    let info: serde_json::Value = serde_json::from_str(&ok(mesh(
        root,
        &["table", "show", "curated.daily_sales", "--format", "json"],
    )))
    .unwrap();
    let metadata = info["metadata_location"]
        .as_str()
        .unwrap()
        .trim_start_matches("file://")
        .to_string();
    assert!(Path::new(&metadata).is_file(), "{info}");

    ok(mesh(&consumer, &["build", "--env", "dev"]));
    let spec = consumer.join(".mesh/build/dev/m02-artifacts-dev/jobs/sp01/store_revenue.json");
    let spec_json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&spec).unwrap()).unwrap();
    let product = spec_json["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["reference"] == "f01.daily_sales")
        .unwrap_or_else(|| panic!("the spec has no product input: {spec_json}"));
    assert_eq!(product["catalog_id"], "111111111111", "f01's dev account: {product}");
    assert_eq!(product["qualified"], "f01_curated.daily_sales");

    let work = tempfile::tempdir().unwrap();
    let expected_path = work.path().join("expected.json");
    std::fs::write(&expected_path, expected).unwrap();
    let manifest = serde_json::json!({
        "workdir": work.path(),
        "jars": jars,
        "spec": spec,
        "sql": consumer.join("projects/store_performance/sql/store_revenue.sql"),
        "producer_metadata": metadata,
        "expected": expected_path,
    });
    let manifest_path = work.path().join("manifest.json");
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let out = Command::new(python)
        .current_dir(repo_root().join("runtime/glue"))
        .args(["product_tests.py", manifest_path.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", both(&out));
    for case in [
        "ok   same rows as meshkit",
        "ok   missing product refused",
        "ok   stale product refused",
    ] {
        assert!(stdout.contains(case), "{case} missing:\n{stdout}");
    }

    // The same stale refusal from `mesh run` 3 days after the pinned snapshot's commit.
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(consumer.join("products.lock.json")).unwrap()).unwrap();
    let committed = lock["products"][0]["committed_at_ms"].as_i64().unwrap();
    let late = common::at_hours_after(committed, 72);
    let out = mesh(&consumer, &["run", "--at", &late]);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    for w in [
        "`f01.daily_sales@1` is stale: the snapshot read (",
        "3d old at the run's time",
        "older than its producer's promise (within 26h); nothing was committed to curated.store_revenue",
    ] {
        assert!(text.contains(w), "mesh run does not say `{w}`: {text}");
    }
}
