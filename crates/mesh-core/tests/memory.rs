//! `memory_limit`: every query of the engine runs in one DataFusion memory pool of that size,
//! and a job whose sort needs more spills to disk and still gives the same result; without a
//! disk to spill to, the same job fails with DataFusion's resources-exhausted error, which
//! shows the limit is applied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::execution::memory_pool::MemoryLimit;
use mesh_core::config::{Config, Inputs};
use mesh_core::engine::Engine;
use mesh_core::job::JobRun;
use mesh_core::sample::{generate, SampleOptions};
use mesh_domain::Domain;

/// Sales events: the job below sorts all of them (~70 MB of rows, over twice the limit below,
/// which each of the two sorting partitions gets half of).
const EVENTS: u64 = 600_000;
const LIMIT: &str = "32MiB";
const LIMIT_BYTES: usize = 32 * 1024 * 1024;

/// `daily_sales` (same columns and checks) through a window that sorts every event by store
/// and id first: a sort of the whole input, the operator that must spill.
const SORTING_SQL: &str = "SELECT CAST(event_ts AS DATE) AS sale_date, store_id, COUNT(*) AS orders,
  SUM(CAST(quantity AS BIGINT)) AS units, CAST(SUM(quantity * unit_price) AS DECIMAL(18, 2)) AS revenue
FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY store_id ORDER BY event_id) AS rn FROM f01_raw.sales_events) e
WHERE rn > 0
GROUP BY CAST(event_ts AS DATE), store_id
";

fn copy_domain(to: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::copy(repo.join("domain.json"), to.join("domain.json")).unwrap();
    for entry in walk(&repo.join("projects")) {
        let rel = entry.strip_prefix(&repo).unwrap();
        std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(&entry, to.join(rel)).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The engine as `mesh run` opens it, with `F01_MEMORY_LIMIT` set when `limit` is.
async fn engine(root: &Path, domain: &Arc<Domain>, limit: Option<&str>) -> Engine {
    let vars: BTreeMap<String, String> = limit
        .map(|l| ("F01_MEMORY_LIMIT".to_string(), l.to_string()))
        .into_iter()
        .collect();
    let config = Config::resolve(&Inputs {
        domain_root: root,
        abbr: &domain.abbr,
        region: &domain.region,
        vars,
        flags: BTreeMap::new(),
    })
    .unwrap();
    Engine::local(domain.clone(), root.to_path_buf(), &config)
        .await
        .unwrap()
}

async fn daily_sales(engine: &Engine, domain: &Domain, run_id: &str) -> Result<Vec<String>, String> {
    let project = domain.project("sales").unwrap();
    let params = BTreeMap::new();
    JobRun {
        engine,
        project,
        job: project.job("daily_sales").unwrap(),
        params: &params,
        run_id,
    }
    .run()
    .await
    .map_err(|e| e.to_string())?;
    let table = project
        .tables
        .iter()
        .find(|t| t.name.as_str() == "daily_sales")
        .unwrap();
    let scan = engine
        .load_table(project, table)
        .await
        .unwrap()
        .scan(&Default::default())
        .await
        .unwrap();
    let text = pretty_format_batches(&scan.batches).unwrap().to_string();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    Ok(lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_over_the_memory_limit_spills_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    copy_domain(dir.path());
    std::fs::write(dir.path().join("projects/sales/sql/daily_sales.sql"), SORTING_SQL).unwrap();
    let domain = Arc::new(mesh_domain::load_domain(dir.path()).expect("example domain is valid"));
    let unlimited = engine(dir.path(), &domain, None).await;
    generate(
        &domain,
        &unlimited.layout,
        &SampleOptions {
            rows: EVENTS,
            ..Default::default()
        },
    )
    .unwrap();
    let expected = daily_sales(&unlimited, &domain, "default").await.unwrap();
    assert!(expected.len() > 10, "{expected:?}");

    let limited = engine(dir.path(), &domain, Some(LIMIT)).await;
    assert!(matches!(
        limited.runtime.memory_pool.memory_limit(),
        MemoryLimit::Finite(n) if n == LIMIT_BYTES
    ));
    let got = daily_sales(&limited, &domain, "limited")
        .await
        .unwrap_or_else(|e| panic!("with {LIMIT} and a disk to spill to: {e}"));
    assert_eq!(got, expected);

    // The same limit without a disk: the aggregation cannot spill, so the limit must stop it.
    let mut no_disk = engine(dir.path(), &domain, Some(LIMIT)).await;
    no_disk.runtime = mesh_core::session::runtime_env(LIMIT_BYTES as u64, false, None).unwrap();
    let err = daily_sales(&no_disk, &domain, "no-disk").await.unwrap_err();
    assert!(err.contains("Resources exhausted"), "{err}");
}
