//! `mesh pull`: pins each product of another domain the projects consume at its producer's
//! current snapshot (from the producer's checkout), writing `products.lock.json`.

use std::path::Path;

use mesh_domain::Domain;

use crate::cli::Format;
use crate::common::{print_json, tokio_runtime};
use crate::exit::Failure;

pub fn run(root: &Path, domain: &Domain, format: Format) -> Result<(), Failure> {
    if mesh_core::products::consumed(domain).is_empty() {
        return Err(Failure::Invalid(
            "no project consumes another domain's product: nothing to pull\n  help: declare one in a project.toml: [[consumes]] product = \"f01.daily_sales@1\", path = \"../<producer>\"".into(),
        ));
    }
    let (pins, path) = tokio_runtime()?
        .block_on(mesh_core::products::pull(root, domain))
        .map_err(|e| match e {
            mesh_core::products::ProductError::Io { .. } | mesh_core::products::ProductError::Engine { .. } => {
                Failure::Runtime(e.to_string())
            }
            other => Failure::Invalid(other.to_string()),
        })?;
    match format {
        Format::Json => print_json(&serde_json::json!({"lock": mesh_core::products::LOCK_FILE, "products": pins})),
        Format::Text => {
            for p in &pins {
                let at = chrono::DateTime::from_timestamp_millis(p.committed_at_ms)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default();
                println!(
                    "pinned {}@{} ({}) at snapshot {} (committed {at}) from {}",
                    p.product,
                    p.version,
                    p.qualified(),
                    p.snapshot_id,
                    p.path.display()
                );
            }
            println!(
                "wrote {}: commit it, so every run reads these snapshots",
                path.strip_prefix(root).unwrap_or(&path).display()
            );
        }
    }
    Ok(())
}
