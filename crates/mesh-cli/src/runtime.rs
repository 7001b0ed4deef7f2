//! Commands of the local runtime: sample data, configuration, reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mesh_core::config::{Config, Inputs};
use mesh_core::layout::{Layout, RUNS_DIR};
use mesh_core::record::RunRecord;
use mesh_core::sample::{self, SampleOptions};
use mesh_domain::{Domain, Env, Naming};

use crate::cli::Format;
use crate::exit::Failure;

/// Resolves the configuration from the process environment, `.env`, `mesh.toml` and flags.
pub fn config(root: &Path, domain: &Domain, flags: BTreeMap<&'static str, String>) -> Result<Config, Failure> {
    let inputs = Inputs {
        domain_root: root,
        abbr: &domain.abbr,
        region: &domain.region,
        vars: Inputs::vars_with_dotenv(root),
        flags,
    };
    Config::resolve(&inputs).map_err(|e| Failure::Invalid(format!("error: {e}")))
}

pub fn sample_data(root: &Path, domain: &Domain, rows: u64, seed: u64) -> Result<(), Failure> {
    let cfg = config(root, domain, BTreeMap::new())?;
    if rows == 0 {
        return Err(Failure::Invalid("error: --rows must be at least 1".into()));
    }
    // Sample data always goes to the local lake, whatever ENV says: it is for offline runs.
    let layout = Layout::local(Naming::new(&domain.abbr, Env::Local), &cfg.lake_root.value);
    let started = Instant::now();
    let opts = SampleOptions {
        rows,
        seed,
        ..SampleOptions::default()
    };
    let tables = sample::generate(domain, &layout, &opts).map_err(|e| Failure::Runtime(e.to_string()))?;
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
    println!(
        "wrote sample data to {} in {:.1}s (seed {seed})",
        cfg.lake_root.value.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn config_show(root: &Path, domain: &Domain, env: Option<Env>, format: Format) -> Result<(), Failure> {
    let mut flags = BTreeMap::new();
    if let Some(e) = env {
        flags.insert("env", e.to_string());
    }
    let cfg = config(root, domain, flags)?;
    match format {
        Format::Json => crate::print_json(&cfg),
        Format::Text => {
            for (k, v, src) in cfg.lines() {
                println!("{k:<16} {v:<50} ({src})");
            }
        }
    }
    Ok(())
}

pub fn report(root: &Path, run: Option<&str>, out: Option<PathBuf>) -> Result<(), Failure> {
    let dir = root.join(RUNS_DIR);
    let record = RunRecord::load(&dir, run).map_err(|e| Failure::Invalid(format!("error: {e}")))?;
    let out = out.unwrap_or_else(|| dir.join(format!("{}.html", record.run_id)));
    std::fs::write(&out, mesh_core::report::render(&record))
        .map_err(|e| Failure::Runtime(format!("cannot write `{}`: {e}", out.display())))?;
    println!("wrote {}", out.display());
    Ok(())
}
