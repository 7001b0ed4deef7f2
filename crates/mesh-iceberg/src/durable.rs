//! Durable metadata: a new `*.metadata.json` is on disk, with its directory entry, before
//! any catalog points at it.
//!
//! Iceberg's local writer syncs data files, manifests and manifest lists when it closes them,
//! but `TableMetadata::write_to` writes the metadata file in one call without a sync, and no
//! directory is synced. After a power loss the catalog could then point at an empty or missing
//! file, and every reader of the table would fail. [`write_metadata`] writes, syncs the file,
//! then syncs its folder (which also makes the manifests' and manifest lists' directory entries
//! in the same `metadata/` folder durable). On S3 a completed PUT is durable: nothing to do.
//!
//! The order is observable: [`record`] starts a process-wide log of syncs and catalog pointer
//! moves, so a test can prove that every pointer moves only to a file synced before it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use iceberg::io::FileIO;
use iceberg::spec::TableMetadata;
use iceberg::MetadataLocation;

use crate::error::{Error, Result};

/// One durability-relevant step, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A file's content was flushed to stable storage (`fsync`).
    SyncFile(String),
    /// A directory was synced, making the names of the files in it durable.
    SyncDir(String),
    /// A catalog pointer moved (`table`, new metadata location): commit or registration.
    Point { table: String, location: String },
}

static LOG: Mutex<Option<Vec<Op>>> = Mutex::new(None);

/// Starts recording [`Op`]s of this process (tests); [`take`] returns them.
pub fn record() {
    *LOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
}

/// The operations recorded since [`record`] (empty when not recording).
pub fn take() -> Vec<Op> {
    LOG.lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
        .map(std::mem::take)
        .unwrap_or_default()
}

pub(crate) fn log(op: Op) {
    if let Some(ops) = LOG.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        ops.push(op);
    }
}

/// A local location (`file:///…` or an absolute path) as a path; `None` for object stores.
fn local_path(location: &str) -> Option<PathBuf> {
    if let Some(rest) = location.strip_prefix("file://") {
        return Some(PathBuf::from(rest));
    }
    location.starts_with('/').then(|| PathBuf::from(location))
}

fn sync_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Io(std::io::Error::new(
        e.kind(),
        format!("cannot sync {what} `{}` to disk: {e}", path.display()),
    ))
}

/// Syncs a local file and then its directory; a no-op for object-store locations.
pub(crate) fn sync_local(location: &str) -> Result<()> {
    let Some(path) = local_path(location) else {
        return Ok(());
    };
    std::fs::File::open(&path)
        .and_then(|f| f.sync_all())
        .map_err(|e| sync_error("the file", &path, e))?;
    log(Op::SyncFile(location.to_string()));
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| sync_error("the folder", dir, e))?;
        log(Op::SyncDir(dir.display().to_string()));
    }
    Ok(())
}

/// Writes a metadata file and makes it durable before anyone can point a catalog at it.
pub(crate) async fn write_metadata(meta: &TableMetadata, file_io: &FileIO, location: &MetadataLocation) -> Result<()> {
    meta.write_to(file_io, location).await?;
    sync_local(&location.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::{Catalog, SchemaEvolution, SqliteCatalog, Table, TableDefinition, TableIdent};

    /// Every catalog pointer (registration and each commit) moves only to a metadata file that
    /// was synced, file then folder, before the move.
    #[tokio::test]
    async fn metadata_is_synced_before_the_catalog_points_at_it() {
        let dir = tempfile::tempdir().unwrap();
        let wh = format!("file://{}/warehouse", dir.path().display());
        let catalog: Arc<dyn Catalog> =
            Arc::new(SqliteCatalog::open("mesh", dir.path().join("c.db"), &wh).await.unwrap());
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        record();
        let ident = TableIdent::new("ns", "durable_t");
        let mut t = Table::create(catalog.clone(), ident.clone(), TableDefinition::new(schema.clone()))
            .await
            .unwrap();
        for i in 0..3 {
            let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![i, i + 1]))]).unwrap();
            t.append(&[batch], SchemaEvolution::default()).await.unwrap();
        }
        let ops = take();
        let points: Vec<(usize, &String)> = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| match op {
                Op::Point { table, location } if *table == ident.to_string() => Some((i, location)),
                _ => None,
            })
            .collect();
        assert_eq!(points.len(), 4, "one registration and three commits: {ops:#?}");
        for (at, location) in points {
            let file = ops[..at].iter().position(|o| *o == Op::SyncFile(location.clone()));
            let folder = local_path(location).unwrap().parent().unwrap().display().to_string();
            let dir_synced = ops[..at].iter().rposition(|o| *o == Op::SyncDir(folder.clone()));
            assert!(
                matches!((file, dir_synced), (Some(f), Some(d)) if f < d),
                "{location}: file then folder synced before the pointer moved: {ops:#?}"
            );
        }
        assert_eq!(
            catalog.metadata_location(&ident).await.unwrap().as_deref(),
            Some(t.metadata_location())
        );
    }

    #[test]
    fn object_store_locations_need_no_sync() {
        assert!(sync_local("s3://bucket/t/metadata/00001.metadata.json").is_ok());
        assert!(sync_local("file:///nonexistent/dir/00001.metadata.json").is_err());
    }
}
