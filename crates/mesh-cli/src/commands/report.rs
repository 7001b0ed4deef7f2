//! `mesh report`: the HTML report of a run record.

use std::path::{Path, PathBuf};

use mesh_core::layout::RUNS_DIR;
use mesh_core::record::RunRecord;
use mesh_domain::Domain;

use crate::exit::Failure;

/// The domain gives the report its lineage picture; the other records in the runs folder, its
/// per-table history.
pub fn run(root: &Path, domain: &Domain, run: Option<&str>, out: Option<PathBuf>) -> Result<(), Failure> {
    let dir = root.join(RUNS_DIR);
    let record = RunRecord::load(&dir, run)?;
    // The runs up to this one: the report of an older run shows no later runs.
    let (history, unreadable) =
        mesh_core::record::recent_runs(&dir, mesh_core::report::HISTORY_RUNS, Some(&record.run_id));
    let out = out.unwrap_or_else(|| dir.join(format!("{}.html", record.run_id)));
    std::fs::write(&out, mesh_core::report::render(&record, domain, &history, unreadable))
        .map_err(|e| Failure::Runtime(format!("cannot write `{}`: {e}", out.display())))?;
    println!("wrote {}", out.display());
    Ok(())
}
