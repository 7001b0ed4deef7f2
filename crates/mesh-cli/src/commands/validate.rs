//! `mesh validate`: every file of the domain checked, every problem printed at once; with
//! `--against REF`, undeclared moves and removals since REF refused, and each data product's
//! contract compared with the same product at REF.

use std::path::Path;

use mesh_infra::contract_diff::{self, ProductDiff};

use crate::cli::Format;
use crate::common::{print_json, root};
use crate::exit::Failure;

pub fn run(root_flag: Option<&Path>, format: Format, against: Option<&str>) -> Result<(), Failure> {
    let root = root(root_flag)?;
    // The base model first: a ref that cannot be read is the command's error, not the model's.
    let base = match against {
        Some(r) => Some(mesh_core::plan::model_at_ref(&root, r).map_err(|e| Failure::Invalid(e.to_string()))?),
        None => None,
    };
    match mesh_domain::load_domain(&root).and_then(|d| {
        // Portable SQL needs the model (job → SQL file), so it runs once the model is valid.
        let mut sql = mesh_core::portable::check_domain(&d, &root);
        // The SQL against the manifest: what it reads and what it returns, planned, not run.
        sql.extend(mesh_core::sql_shape::check_domain(&d, &root));
        // Other domains' products: pulled, and their pins still matching the producers.
        let (pins, notes) = crate::commands::pins::check(&root, &d);
        sql.extend(pins);
        for n in notes {
            eprintln!("{n}");
        }
        // Against the base: moves and removals that would orphan data must be declared.
        if let (Some(r), Some((b, dir))) = (against, &base) {
            sql.extend(mesh_core::plan::undeclared_moves(b, dir.path(), &d, &root, r));
        }
        if sql.is_empty() {
            Ok(d)
        } else {
            Err(sql)
        }
    }) {
        Ok(d) => {
            let diffs = match against {
                Some(r) => Some(product_changes(&root, &d, r, format)?),
                None => None,
            };
            let tables: usize = d.projects.iter().map(|p| p.tables.len()).sum();
            let jobs: usize = d.projects.iter().map(|p| p.jobs.len()).sum();
            match format {
                Format::Json => {
                    let mut out = serde_json::json!({"valid": true, "projects": d.projects.len(), "tables": tables, "jobs": jobs});
                    if let (Some(r), Some(diffs)) = (against, &diffs) {
                        out["against"] = serde_json::json!(r);
                        out["products"] = serde_json::json!(diffs);
                    }
                    print_json(&out)
                }
                Format::Text => {
                    println!(
                        "ok: domain {} ({}) is valid: {} projects, {tables} tables, {jobs} jobs",
                        d.name,
                        d.abbr,
                        d.projects.len()
                    );
                    if let (Some(r), Some(diffs)) = (against, &diffs) {
                        print_changes(r, diffs);
                    }
                }
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

/// The products' changes against `git_ref`; a refused one is an error naming the product, the
/// change and the consumers it breaks.
fn product_changes(
    root: &Path,
    domain: &mesh_domain::Domain,
    git_ref: &str,
    format: Format,
) -> Result<Vec<ProductDiff>, Failure> {
    let (base, _dir) = mesh_core::plan::model_at_ref(root, git_ref).map_err(|e| Failure::Invalid(e.to_string()))?;
    let diffs = contract_diff::compare(
        &mesh_infra::contract::contracts(&base),
        &mesh_infra::contract::contracts(domain),
    );
    let refused = contract_diff::refusals(&diffs, root, git_ref, domain);
    if refused.is_empty() {
        return Ok(diffs);
    }
    if matches!(format, Format::Json) {
        print_json(&serde_json::json!({"valid": false, "against": git_ref, "products": diffs, "problems": refused}));
    }
    Err(refused.into())
}

fn print_changes(git_ref: &str, diffs: &[ProductDiff]) {
    if diffs.is_empty() {
        println!("ok: no data product changed against {git_ref}");
        return;
    }
    for d in diffs {
        let version = match (d.base_version, d.version) {
            (Some(b), Some(v)) if b != v => format!("version {b} → {v}"),
            (_, Some(v)) => format!("version {v}"),
            (Some(b), None) => format!("was version {b}"),
            (None, None) => String::new(),
        };
        println!("product {} ({version}) against {git_ref}:", d.product);
        for c in &d.changes {
            let kind = if !c.breaking {
                "additive"
            } else if d.bumped() {
                "breaking, allowed by the version bump"
            } else {
                "breaking"
            };
            println!("  {kind}: {}", c.what);
        }
    }
}
