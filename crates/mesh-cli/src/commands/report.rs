//! `mesh report`: the HTML report of a run record.

use std::path::{Path, PathBuf};

use mesh_core::layout::RUNS_DIR;
use mesh_core::record::RunRecord;

use crate::exit::Failure;

pub fn run(root: &Path, run: Option<&str>, out: Option<PathBuf>) -> Result<(), Failure> {
    let dir = root.join(RUNS_DIR);
    let record = RunRecord::load(&dir, run).map_err(|e| Failure::Invalid(format!("error: {e}")))?;
    let out = out.unwrap_or_else(|| dir.join(format!("{}.html", record.run_id)));
    std::fs::write(&out, mesh_core::report::render(&record))
        .map_err(|e| Failure::Runtime(format!("cannot write `{}`: {e}", out.display())))?;
    println!("wrote {}", out.display());
    Ok(())
}
