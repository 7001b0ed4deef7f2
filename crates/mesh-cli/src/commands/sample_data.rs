//! `mesh sample-data`: the example projects' raw tables, generated into the lake of ENV.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use mesh_core::layout::Layout;
use mesh_core::sample::{self, SampleOptions};
use mesh_domain::{Domain, Env, Naming};

use crate::common::{aws_vars, config, tokio_runtime};
use crate::exit::Failure;

pub fn run(root: &Path, domain: &Domain, rows: u64, seed: u64) -> Result<(), Failure> {
    sample_data_with(root, domain, rows, seed, BTreeMap::new())
}

pub(crate) fn sample_data_with(
    root: &Path,
    domain: &Domain,
    rows: u64,
    seed: u64,
    flags: BTreeMap<&'static str, String>,
) -> Result<(), Failure> {
    let cfg = config(root, domain, flags)?;
    if rows == 0 {
        return Err(Failure::Invalid("error: --rows must be at least 1".into()));
    }
    // ENV selects where the files go: the local lake, or the environment's raw bucket.
    let layout = Layout::for_env(Naming::new(&domain.abbr, cfg.env.value), &cfg.lake_root.value);
    let started = Instant::now();
    let opts = SampleOptions {
        rows,
        seed,
        ..SampleOptions::default()
    };
    let tables = tokio_runtime()?.block_on(async {
        let stores = mesh_core::cloud::stores_for(&cfg, &aws_vars()).await;
        sample::generate_into(domain, &layout, &stores, &opts)
            .await
            .map_err(|e| Failure::Runtime(e.to_string()))
    })?;
    println!(
        "{:<18} {:<16} {:>10} {:>7} {:>6} {:>10}",
        "project", "table", "rows", "dirty", "files", "MB"
    );
    for t in &tables {
        println!(
            "{:<18} {:<16} {:>10} {:>7} {:>6} {:>10.1}",
            t.project,
            t.table,
            t.rows,
            t.dirty_rows,
            t.files,
            t.bytes as f64 / 1e6
        );
    }
    let target = match cfg.env.value {
        Env::Local => cfg.lake_root.value.display().to_string(),
        _ => format!("s3://{}", layout.naming.data_bucket(mesh_domain::Layer::Raw)),
    };
    println!(
        "wrote sample data to {target} in {:.1}s (seed {seed})",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
