//! Declared schema evolution, the same on both engines (issue 24 item 2): each case writes a
//! table with the first manifest, changes the manifest, and writes again — with meshkit
//! (`JobRun`, the path `mesh run` takes) and with the Glue runner on Spark 3.5 + Iceberg 1.10
//! (runtime/glue/evolution_tests.py, the runner's real entry point on a table created as
//! Terraform creates it). After each run both tables have the same rows and the same schema:
//! column names, types, nullability and field ids, identifier fields, the default partition
//! spec (field names, transforms, ids) and sort order. A refused change fails on both engines
//! before anything is written, naming the table and the change, and `mesh plan` refuses
//! exactly the changes the run refuses.
//!
//! Needs `MESH_PYTHON` (pyspark) and `MESH_ICEBERG_JARS`; scripts/test.sh sets both. Without
//! them the test fails; it never skips.

use common::{iceberg_jars, python};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use datafusion::arrow::util::display::array_value_to_string;
use mesh_core::artifacts::job_spec;
use mesh_core::engine::Engine;
use mesh_core::job::JobRun;
use mesh_domain::{Domain, Env};
use serde_json::{json, Value};

mod common;

/// One change: the table's declaration and SQL before and after, and what the second write does.
struct Case {
    name: &'static str,
    mode: &'static str,
    before: &'static str,
    before_sql: &'static str,
    after: &'static str,
    after_sql: &'static str,
    /// `None`: applied; `Some(words)`: refused, the error holding each word.
    refused: Option<&'static [&'static str]>,
    /// Refused without `--allow-destructive`, applied with it.
    destructive: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "ev_add",
        mode: "append",
        before: r#"columns = [{ name = "id", type = "long", nullable = false }, { name = "k", type = "string" }]
identifier = ["id"]"#,
        before_sql: "SELECT id, k FROM f01_raw.ev_events",
        after: r#"columns = [{ name = "id", type = "long", nullable = false }, { name = "note", type = "string" }, { name = "k", type = "string" }]
identifier = ["id"]"#,
        after_sql: "SELECT id, concat('n', k) AS note, k FROM f01_raw.ev_events",
        refused: None,
        destructive: false,
    },
    Case {
        name: "ev_add_required",
        mode: "append",
        before: r#"columns = [{ name = "id", type = "long" }, { name = "k", type = "string" }]"#,
        before_sql: "SELECT id, k FROM f01_raw.ev_events",
        after: r#"columns = [{ name = "id", type = "long" }, { name = "k", type = "string" }, { name = "note", type = "string", nullable = false }]"#,
        after_sql: "SELECT id, k, concat('n', id) AS note FROM f01_raw.ev_events",
        refused: Some(&["NOT NULL column note", "nullable = true", "--full-refresh"]),
        destructive: false,
    },
    Case {
        name: "ev_promote",
        mode: "append",
        before: r#"columns = [{ name = "id", type = "long" }, { name = "qty", type = "int" }, { name = "f", type = "float" }, { name = "amount", type = "decimal(10,2)" }]"#,
        before_sql: "SELECT id, qty, f, amount FROM f01_raw.ev_events",
        after: r#"columns = [{ name = "id", type = "long" }, { name = "qty", type = "long" }, { name = "f", type = "double" }, { name = "amount", type = "decimal(12,2)" }]"#,
        after_sql: "SELECT id, CAST(qty AS BIGINT) * 1000000000 AS qty, CAST(f AS DOUBLE) AS f, CAST(amount * 1000 AS DECIMAL(12,2)) AS amount FROM f01_raw.ev_events",
        refused: None,
        destructive: false,
    },
    Case {
        name: "ev_narrow",
        mode: "append",
        before: r#"columns = [{ name = "id", type = "long" }, { name = "qty", type = "long" }, { name = "amount", type = "decimal(12,2)" }]"#,
        before_sql: "SELECT id, CAST(qty AS BIGINT) AS qty, CAST(amount AS DECIMAL(12,2)) AS amount FROM f01_raw.ev_events",
        after: r#"columns = [{ name = "id", type = "long" }, { name = "qty", type = "int" }, { name = "amount", type = "decimal(10,2)" }]"#,
        after_sql: "SELECT id, qty, amount FROM f01_raw.ev_events",
        refused: Some(&["column qty", "column amount", "not a type promotion"]),
        destructive: false,
    },
    Case {
        name: "ev_spec",
        mode: "append",
        before: r#"columns = [{ name = "id", type = "long" }, { name = "k", type = "string" }, { name = "d", type = "date" }]
partition_by = ["month(d)"]
sort_order = ["id"]"#,
        before_sql: "SELECT id, k, d FROM f01_raw.ev_events",
        after: r#"columns = [{ name = "id", type = "long" }, { name = "k", type = "string" }, { name = "d", type = "date" }]
partition_by = ["day(d)", "bucket(4, id)"]
sort_order = ["id desc"]"#,
        after_sql: "SELECT id, k, d FROM f01_raw.ev_events",
        refused: None,
        destructive: false,
    },
    Case {
        name: "ev_drop",
        mode: "append",
        before: r#"columns = [{ name = "id", type = "long" }, { name = "k", type = "string" }, { name = "amount", type = "decimal(10,2)" }]"#,
        before_sql: "SELECT id, k, amount FROM f01_raw.ev_events",
        after: r#"columns = [{ name = "id", type = "long" }, { name = "amount", type = "decimal(10,2)" }]"#,
        after_sql: "SELECT id, amount FROM f01_raw.ev_events",
        refused: Some(&["column k dropped", "--allow-destructive"]),
        destructive: true,
    },
    Case {
        name: "ev_rename",
        mode: "append",
        before: r#"columns = [{ name = "id", type = "long" }, { name = "k", type = "string" }]"#,
        before_sql: "SELECT id, k FROM f01_raw.ev_events",
        after: r#"columns = [{ name = "id", type = "long" }, { name = "key", type = "string", renamed_from = "k" }]"#,
        after_sql: "SELECT id, k AS key FROM f01_raw.ev_events",
        refused: None,
        destructive: false,
    },
    Case {
        name: "ev_optional",
        mode: "append",
        before: r#"columns = [{ name = "id", type = "long" }, { name = "k", type = "string", nullable = false }]"#,
        before_sql: "SELECT id, k FROM f01_raw.ev_events",
        after: r#"columns = [{ name = "id", type = "long" }, { name = "k", type = "string" }]"#,
        after_sql: "SELECT id, CASE WHEN id % 2 = 0 THEN NULL ELSE k END AS k FROM f01_raw.ev_events",
        refused: None,
        destructive: false,
    },
    Case {
        name: "ev_require",
        mode: "append",
        before: r#"columns = [{ name = "id", type = "long" }, { name = "k", type = "string" }]"#,
        before_sql: "SELECT id, k FROM f01_raw.ev_events",
        after: r#"columns = [{ name = "id", type = "long" }, { name = "k", type = "string", nullable = false }]"#,
        after_sql: "SELECT id, k FROM f01_raw.ev_events",
        refused: Some(&["column k: nullable → NOT NULL", "nullable = true"]),
        destructive: false,
    },
    Case {
        name: "ev_identifier",
        mode: "merge",
        before: r#"columns = [{ name = "id", type = "long", nullable = false }, { name = "k", type = "string" }]"#,
        before_sql: "SELECT id, k FROM f01_raw.ev_events",
        after: r#"columns = [{ name = "id", type = "long", nullable = false }, { name = "k", type = "string" }]
identifier = ["id"]"#,
        after_sql: "SELECT id, concat(k, '2') AS k FROM f01_raw.ev_events WHERE id % 2 = 0",
        refused: None,
        destructive: false,
    },
];

const HEADER: &str = r#"name = "evo"
project_slug = "pj12"
owner = "platform-tests"
classification = "internal"
description = "Declared schema evolution on both engines."

[[tables]]
name = "ev_events"
layer = "raw"
format = "csv"
columns = [
  { name = "id", type = "long" },
  { name = "k", type = "string" },
  { name = "qty", type = "int" },
  { name = "f", type = "float" },
  { name = "amount", type = "decimal(10,2)" },
  { name = "d", type = "date" },
]
[tables.csv]
header = true
"#;

/// The raw rows of each run: the second run's rows are new ids in other days.
fn raw_csv(run: u32) -> String {
    let mut s = "id,k,qty,f,amount,d\n".to_string();
    let ids = if run == 1 { 1..=4 } else { 5..=8 };
    for id in ids {
        s += &format!(
            "{id},k{id},{},{}.5,{id}.25,2026-0{}-1{}\n",
            id * 10,
            id,
            1 + id % 3,
            id % 8
        );
    }
    s
}

fn project(version: u32) -> String {
    let mut s = HEADER.to_string();
    for c in CASES {
        let decl = if version == 1 { c.before } else { c.after };
        s += &format!("\n[[tables]]\nname = \"{}\"\nlayer = \"curated\"\n{decl}\n", c.name);
    }
    for c in CASES {
        s += &format!(
            "\n[[jobs]]\nname = \"{0}\"\nsql = \"sql/{0}.sql\"\ninputs = [\"raw.ev_events\"]\noutput = \"curated.{0}\"\nmode = \"{1}\"\n",
            c.name, c.mode
        );
        if c.mode == "merge" {
            s += "[jobs.merge]\nkeys = [\"id\"]\n";
        }
    }
    s
}

struct Lake {
    root: PathBuf,
    domain: Arc<Domain>,
    engine: Engine,
}

impl Lake {
    async fn new(root: &Path, version: u32, run: u32) -> Lake {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let p = root.join("projects/evo");
        std::fs::create_dir_all(p.join("sql")).unwrap();
        std::fs::copy(repo.join("domain.json"), root.join("domain.json")).unwrap();
        std::fs::write(p.join("project.toml"), project(version)).unwrap();
        for c in CASES {
            let sql = if version == 1 { c.before_sql } else { c.after_sql };
            std::fs::write(p.join(format!("sql/{}.sql", c.name)), format!("{sql}\n")).unwrap();
        }
        let domain = Arc::new(mesh_domain::load_domain(root).unwrap_or_else(|e| panic!("test domain v{version}: {e}")));
        let engine = common::engine(root, &domain, None).await;
        let lake = Lake {
            root: root.to_path_buf(),
            domain,
            engine,
        };
        let raw = lake.raw_folder();
        let _ = std::fs::remove_dir_all(&raw);
        std::fs::create_dir_all(&raw).unwrap();
        std::fs::write(raw.join(format!("run{run}.csv")), raw_csv(run)).unwrap();
        lake
    }

    fn project(&self) -> &mesh_domain::Project {
        self.domain.project("evo").unwrap()
    }

    fn table(&self, name: &str) -> &mesh_domain::Table {
        self.project().tables.iter().find(|t| t.name.as_str() == name).unwrap()
    }

    fn raw_folder(&self) -> PathBuf {
        let url = self.engine.location(self.project(), self.table("ev_events"));
        PathBuf::from(url.strip_prefix("file://").unwrap_or(&url))
    }

    async fn run(&self, job: &str, run_id: &str) -> Result<(), String> {
        let p = self.project();
        let j = p.job(job).unwrap();
        JobRun {
            engine: &self.engine,
            project: p,
            job: j,
            params: &j.params,
            run_id,
            at: chrono::Utc::now().naive_utc(),
        }
        .run()
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:#}"))
    }

    async fn output(&self, name: &str) -> mesh_iceberg::Table {
        self.engine.load_table(self.project(), self.table(name)).await.unwrap()
    }

    /// Rows (each value as text, NULL as `NULL`, sorted) and the table's shape, as
    /// evolution_tests.py writes the runner's.
    async fn state(&self, name: &str) -> Value {
        let t = self.output(name).await;
        let scan = t.scan(&Default::default()).await.unwrap();
        let mut rows: Vec<Vec<String>> = Vec::new();
        for b in &scan.batches {
            for r in 0..b.num_rows() {
                rows.push(
                    (0..b.num_columns())
                        .map(|c| {
                            let col = b.column(c);
                            if col.is_null(r) {
                                "NULL".to_string()
                            } else {
                                array_value_to_string(col, r).unwrap()
                            }
                        })
                        .collect(),
                );
            }
        }
        rows.sort();
        let meta = t.metadata();
        let schema = meta.current_schema();
        let columns: Vec<Value> = schema
            .as_struct()
            .fields()
            .iter()
            .map(|f| {
                json!({"id": f.id, "name": f.name, "type": f.field_type.to_string().replace(' ', ""), "required": f.required})
            })
            .collect();
        let mut identifier: Vec<String> = schema
            .identifier_field_ids()
            .filter_map(|id| schema.field_by_id(id).map(|f| f.name.clone()))
            .collect();
        identifier.sort();
        let spec: Vec<Value> = meta
            .default_partition_spec()
            .fields()
            .iter()
            .map(|f| {
                json!({"name": f.name, "transform": f.transform.to_string(), "field_id": f.field_id,
                       "source": schema.field_by_id(f.source_id).map(|s| s.name.clone())})
            })
            .collect();
        let sort: Vec<String> = t
            .sort_order()
            .iter()
            .map(|k| {
                format!(
                    "{} {} {}",
                    k.column,
                    if k.descending { "desc" } else { "asc" },
                    if k.nulls_first { "first" } else { "last" }
                )
            })
            .collect();
        let column_names: Vec<String> = scan
            .batches
            .first()
            .map(|b| b.schema().fields().iter().map(|f| f.name().clone()).collect())
            .unwrap_or_default();
        json!({
            "rows": rows, "row_columns": column_names, "columns": columns, "identifier": identifier,
            "partition_spec": spec, "sort_order": sort,
            "snapshots": meta.snapshots().count(),
        })
    }
}

/// The runner's spec of `job` under `lake`'s manifest, its raw input at `raw`.
fn spec_file(lake: &Lake, job: &str, raw: &Path, to: &Path) -> PathBuf {
    let p = lake.project();
    let mut spec = serde_json::to_value(job_spec(&lake.domain, Env::Dev, p, p.job(job).unwrap())).unwrap();
    // A copy: the next manifest rewrites the project's SQL file.
    let sql = to.with_extension("sql");
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(lake.root.join(format!("projects/evo/sql/{job}.sql")), &sql).unwrap();
    spec["sql"]["uri"] = json!(format!("file://{}", sql.display()));
    spec["inputs"][0]["location"] = json!(format!("file://{}/", raw.display()));
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::write(to, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    to.to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_declared_change_is_applied_or_refused_the_same_on_both_engines() {
    let jars = iceberg_jars();
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().to_path_buf();

    // meshkit: run 1 under the first manifest, then the plan and run 2 under the second.
    let v1 = Lake::new(&work.join("mk"), 1, 1).await;
    let mut cases = Vec::new();
    let mut raws = Vec::new();
    for run in [1, 2] {
        let raw = work.join(format!("raw/run{run}/ev_events"));
        std::fs::create_dir_all(&raw).unwrap();
        std::fs::write(raw.join(format!("run{run}.csv")), raw_csv(run)).unwrap();
        raws.push(raw);
    }
    let mut first = Vec::new();
    for c in CASES {
        v1.run(c.name, &format!("{}-1", c.name))
            .await
            .unwrap_or_else(|e| panic!("{}: run 1: {e}", c.name));
        first.push(v1.state(c.name).await);
        spec_file(&v1, c.name, &raws[0], &work.join(format!("specs/{}-1.json", c.name)));
    }
    drop(v1);
    let v2 = Lake::new(&work.join("mk"), 2, 2).await;
    let plan = mesh_core::plan::plan_env(&v2.engine).await.unwrap();
    let mut allowed = Lake::new(&work.join("mk"), 2, 2).await;
    allowed.engine.allow_destructive = true;
    for (c, before) in CASES.iter().zip(first) {
        let reference = format!("curated.{}", c.name);
        let change = plan
            .changes
            .iter()
            .find(|x| x.name == reference)
            .unwrap_or_else(|| panic!("{}: the plan names no change: {plan:#?}", c.name));
        let outcome = v2.run(c.name, &format!("{}-2", c.name)).await;
        // What the plan says is what the run does.
        assert_eq!(
            change.refused.is_some(),
            outcome.is_err(),
            "{}: plan {change:#?} but the run gave {outcome:?}",
            c.name
        );
        let after = v2.state(c.name).await;
        match (c.refused, &outcome) {
            (None, Ok(())) => {}
            (Some(words), Err(e)) => {
                assert!(e.contains(&format!("f01_curated.{}", c.name)), "{}: {e}", c.name);
                for w in words {
                    assert!(e.contains(w), "{}: the error does not say `{w}`: {e}", c.name);
                }
                assert_eq!(after, before, "{}: a refused change wrote something", c.name);
            }
            (want, got) => panic!("{}: expected refused = {want:?}, got {got:?}", c.name),
        }
        let after = if c.destructive {
            allowed
                .run(c.name, &format!("{}-2-allowed", c.name))
                .await
                .unwrap_or_else(|e| panic!("{}: with --allow-destructive: {e}", c.name));
            allowed.state(c.name).await
        } else {
            after
        };
        spec_file(&v2, c.name, &raws[1], &work.join(format!("specs/{}-2.json", c.name)));
        cases.push(json!({
            "name": c.name, "first": before, "second": after,
            "refused": c.refused.is_some() && !c.destructive,
            "refused_words": c.refused.unwrap_or(&[]),
        }));
        eprintln!(
            "ok   meshkit {}: {} [{}]",
            c.name,
            change.details.join("; "),
            change.class.as_str()
        );
    }

    // The runner, on tables created as Terraform creates them.
    let manifest = work.join("manifest.json");
    std::fs::write(
        &manifest,
        serde_json::to_vec_pretty(&json!({"workdir": work, "jars": jars, "specs": work.join("specs"), "cases": cases}))
            .unwrap(),
    )
    .unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(python())
        .current_dir(repo.join("runtime/glue"))
        .args(["evolution_tests.py", manifest.to_str().unwrap()])
        .output()
        .expect("start MESH_PYTHON");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}");
    let tail: Vec<&str> = stderr
        .lines()
        .rev()
        .take(60)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert!(out.status.success(), "{stdout}\n--- stderr (tail)\n{}", tail.join("\n"));
    let ok = stdout.lines().filter(|l| l.starts_with("ok   ")).count();
    assert_eq!(ok, CASES.len(), "{stdout}");
}
