//! `mesh validate`: every file of the domain checked, every problem printed at once.

use std::path::Path;

use crate::cli::Format;
use crate::common::{print_json, root};
use crate::exit::Failure;

pub fn run(root_flag: Option<&Path>, format: Format, against: Option<String>) -> Result<(), Failure> {
    let root = root(root_flag)?;
    // The base model first: a ref that cannot be read is the command's error, not the model's.
    let base = match &against {
        Some(r) => Some(mesh_core::plan::model_at_ref(&root, r).map_err(|e| Failure::Invalid(e.to_string()))?),
        None => None,
    };
    match mesh_domain::load_domain(&root).and_then(|d| {
        // Portable SQL needs the model (job → SQL file), so it runs once the model is valid.
        let mut sql = mesh_core::portable::check_domain(&d, &root);
        // The SQL against the manifest: what it reads and what it returns, planned, not run.
        sql.extend(mesh_core::sql_shape::check_domain(&d, &root));
        // Against the base: moves and removals that would orphan data must be declared.
        if let (Some(r), Some((b, dir))) = (&against, &base) {
            sql.extend(mesh_core::plan::undeclared_moves(b, dir.path(), &d, &root, r));
        }
        if sql.is_empty() {
            Ok(d)
        } else {
            Err(sql)
        }
    }) {
        Ok(d) => {
            let tables: usize = d.projects.iter().map(|p| p.tables.len()).sum();
            let jobs: usize = d.projects.iter().map(|p| p.jobs.len()).sum();
            match format {
                Format::Json => print_json(
                    &serde_json::json!({"valid": true, "projects": d.projects.len(), "tables": tables, "jobs": jobs}),
                ),
                Format::Text => println!(
                    "ok: domain {} ({}) is valid: {} projects, {tables} tables, {jobs} jobs",
                    d.name,
                    d.abbr,
                    d.projects.len()
                ),
            }
            Ok(())
        }
        Err(diags) => {
            if matches!(format, Format::Json) {
                print_json(&serde_json::json!({"valid": false, "problems": diags}));
            }
            Err(diags.into())
        }
    }
}
