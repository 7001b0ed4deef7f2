//! Table maintenance as a pipeline step: bin-pack compaction of small files with the
//! manifest's settings. (Snapshot expiry and orphan cleanup come with `mesh optimize`.)

use std::collections::BTreeMap;

use mesh_domain::{Project, Table};

use crate::engine::Engine;

/// Compacts each partition holding at least `min_input_files` files smaller than
/// `min_file_size_ratio` × target. Returns metrics for the run record.
pub async fn optimize_step(
    engine: &Engine,
    project: &Project,
    table: &Table,
) -> Result<BTreeMap<String, serde_json::Value>, String> {
    let mut metrics = BTreeMap::new();
    let Some(compaction) = table.iceberg().and_then(|o| o.optimizers.compaction.clone()) else {
        metrics.insert("compaction".into(), "disabled".into());
        return Ok(metrics);
    };
    let mut t = engine.load_or_create(project, table).await.map_err(|e| e.to_string())?;
    let files = t.files(None).await.map_err(|e| e.to_string())?;
    let threshold =
        (f64::from(compaction.target_file_size_mb) * 1024.0 * 1024.0 * compaction.min_file_size_ratio) as u64;
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &files {
        if f.file_size_in_bytes < threshold {
            groups
                .entry(format!(
                    "{}:{}",
                    f.spec_id,
                    serde_json::to_string(&f.partition).unwrap_or_default()
                ))
                .or_default()
                .push(f.path.clone());
        }
    }
    let candidates: Vec<String> = groups
        .into_values()
        .filter(|g| g.len() >= compaction.min_input_files as usize)
        .flatten()
        .collect();
    metrics.insert("files_before".into(), files.len().into());
    metrics.insert("files_compacted".into(), candidates.len().into());
    if candidates.is_empty() {
        metrics.insert("snapshot_id".into(), serde_json::Value::Null);
        return Ok(metrics);
    }
    let commit = t.rewrite_files(&candidates).await.map_err(|e| e.to_string())?;
    metrics.insert("files_added".into(), commit.added_files.into());
    metrics.insert("files_removed".into(), commit.removed_files.into());
    metrics.insert("snapshot_id".into(), commit.snapshot_id.into());
    Ok(metrics)
}
