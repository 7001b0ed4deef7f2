//! The Glue runner (runtime/glue/glue_runner.py) checked from Rust:
//! - the SQL it generates for every write mode, checks and table layout (insta snapshots, no Spark);
//! - its non-Iceberg parts under real PySpark 3.5, and every example job's SQL on Spark against
//!   meshkit's own result (the differential test). One Python process, one Spark session.
//!
//! Needs `MESH_PYTHON` (scripts/test.sh sets it; the venv has pyspark and pyarrow).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use mesh_core::artifacts::job_spec;
use mesh_core::job::bind_params;
use mesh_core::layout::Layout;
use mesh_core::raw::{read_raw, write_parquet_partition};
use mesh_core::sample::{generate, SampleOptions};
use mesh_core::session::{new_context, register_batches};
use mesh_domain::{Domain, Env, Naming, TableRef};
use mesh_iceberg::ObjectStores;
use serde_json::{json, Value};

/// A local folder as the runtime's storage layer names it.
fn local(p: &Path) -> String {
    p.display().to_string()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn python() -> String {
    std::env::var("MESH_PYTHON")
        .unwrap_or_else(|_| panic!("MESH_PYTHON is not set: run scripts/test.sh, which installs pyspark and sets it"))
}

fn runner_dir() -> PathBuf {
    repo_root().join("runtime/glue")
}

fn example() -> Domain {
    mesh_domain::load_domain(&repo_root()).expect("the example domain validates")
}

/// Example job specs plus variants for the modes and rules the examples do not use.
fn spec_cases(domain: &Domain) -> Vec<(String, Value, Vec<String>)> {
    let mut out = Vec::new();
    for p in &domain.projects {
        for j in &p.jobs {
            let spec = serde_json::to_value(job_spec(domain, Env::Dev, p, j)).unwrap();
            let mut cols: Vec<String> = spec["output"]["columns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_string())
                .collect();
            if j.name.as_str() == "customers_latest" {
                cols.push("op".into());
            }
            out.push((j.name.to_string(), spec, cols));
        }
    }
    let find = |out: &[(String, Value, Vec<String>)], name: &str| out.iter().find(|c| c.0 == name).cloned().unwrap();
    let (_, mut append, cols) = find(&out, "daily_sales");
    append["write"] = json!({"mode": "append"});
    out.push(("daily_sales_append".into(), append, cols));
    let (_, mut merge, mut cols) = find(&out, "customers_latest");
    merge["write"] = json!({"mode": "merge", "keys": ["customer_id"], "null_safe": true, "on_duplicate": {"rule": "error"}, "delete_when": null});
    cols.retain(|c| c != "op");
    out.push(("customers_merge_error_rule".into(), merge, cols));
    out
}

fn run_python(args: &[&str]) -> std::process::Output {
    Command::new(python())
        .current_dir(runner_dir())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start MESH_PYTHON={}: {e}", python()))
}

fn render(generated: &Value) -> String {
    let mut text = String::new();
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    text.push_str("-- shape\n");
    text.push_str(generated["shape"].as_str().unwrap());
    for (title, key) in [
        ("checks", "checks"),
        ("write", "write"),
        ("layout, first run", "layout_first_run"),
        ("layout, table already shaped", "layout_when_current"),
    ] {
        text.push_str(&format!("\n-- {title}\n"));
        let items = list(&generated[key]);
        if items.is_empty() {
            text.push_str("(none)\n");
        }
        for s in items {
            text.push_str(&s);
            text.push_str(";\n");
        }
    }
    text
}

#[test]
fn write_sql_snapshots() {
    let domain = example();
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<Value> = spec_cases(&domain)
        .into_iter()
        .map(|(name, spec, cols)| json!({"name": name, "spec": spec, "result_columns": cols}))
        .collect();
    let manifest = dir.path().join("manifest.json");
    std::fs::write(&manifest, serde_json::to_vec(&json!({ "cases": cases })).unwrap()).unwrap();
    let out = run_python(&["runner_tests.py", "sql", manifest.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let generated: BTreeMap<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(generated.len(), cases.len());
    for (name, g) in &generated {
        insta::assert_snapshot!(format!("runner_sql__{name}"), render(g));
    }
}

fn one_batch(schema: &SchemaRef, batches: &[RecordBatch]) -> RecordBatch {
    concat_batches(schema, batches).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_under_spark_and_differential() {
    let domain = example();
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    let naming = Naming::for_domain(&domain, Env::Local);
    let layout = Layout::local(naming.clone(), &lake);
    let stores = ObjectStores::default();
    generate(
        &domain,
        &layout,
        &SampleOptions {
            rows: 20_000,
            ..Default::default()
        },
    )
    .unwrap();
    let parquet = dir.path().join("parquet");
    // Each job's result, shaped to its output table: the input of later jobs.
    let mut tables: BTreeMap<TableRef, RecordBatch> = BTreeMap::new();
    let mut cases = Vec::new();
    for p in &domain.projects {
        for j in &p.jobs {
            let ctx = new_context(&naming).unwrap();
            let mut inputs = serde_json::Map::new();
            let mut raw_locations = serde_json::Map::new();
            for r in &j.inputs {
                let table = p.table(r).unwrap();
                let batch = match tables.get(r) {
                    Some(b) => b.clone(),
                    None => {
                        let folder = layout.path(&layout.table_location(p, table)).unwrap();
                        let read = read_raw(table, &stores, &folder.display().to_string()).await.unwrap();
                        raw_locations.insert(naming.qualified_table(table), json!(folder));
                        one_batch(&read.schema, &read.batches)
                    }
                };
                let qualified = naming.qualified_table(table);
                let file = write_parquet_partition(
                    &stores,
                    &local(&parquet.join(j.name.as_str())),
                    "input",
                    &qualified,
                    &batch,
                )
                .await
                .unwrap();
                inputs.insert(qualified, json!(file));
                register_batches(
                    &ctx,
                    &naming.database(table.layer),
                    table.name.as_str(),
                    batch.schema(),
                    vec![batch],
                )
                .unwrap();
            }
            let sql = std::fs::read_to_string(repo_root().join(&j.sql)).unwrap();
            // The runner binds run_id and env itself (env = the spec's, dev); bind the same here.
            let mut params = j.params.clone();
            params.insert("run_id".into(), "test-run".into());
            params.insert("env".into(), "dev".into());
            let df = ctx.sql(&bind_params(&sql, &params).unwrap()).await.unwrap();
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            let result = one_batch(&schema, &df.collect().await.unwrap());
            let expected = write_parquet_partition(
                &stores,
                &local(&parquet.join(j.name.as_str())),
                "result",
                "meshkit",
                &result,
            )
            .await
            .unwrap();
            let out_table = p.table(&j.output).unwrap();
            let idx: Vec<usize> = out_table
                .columns
                .iter()
                .map(|c| schema.index_of(c.name.as_str()).unwrap())
                .collect();
            tables.insert(j.output.clone(), result.project(&idx).unwrap());
            cases.push(json!({
                "job": j.name.to_string(),
                "spec": job_spec(&domain, Env::Dev, p, j),
                "sql": sql,
                "params": {},
                "inputs": inputs,
                "raw_locations": raw_locations,
                "expected": expected,
            }));
        }
    }
    let extra: Vec<Value> = spec_cases(&domain)
        .into_iter()
        .map(|(name, spec, _)| json!({"job": name, "spec": spec}))
        .collect();
    let manifest = dir.path().join("manifest.json");
    std::fs::write(
        &manifest,
        serde_json::to_vec(&json!({"cases": cases, "extra_specs": extra, "workdir": dir.path()})).unwrap(),
    )
    .unwrap();
    let out = run_python(&["runner_tests.py", "spark", manifest.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{stdout}\n--- stderr (tail)\n{}",
        tail(&stderr, 60)
    );
    let jobs: usize = domain.projects.iter().map(|p| p.jobs.len()).sum();
    let differential = stdout.lines().filter(|l| l.starts_with("ok   differential ")).count();
    assert_eq!(differential, jobs, "every example job is compared: {stdout}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
