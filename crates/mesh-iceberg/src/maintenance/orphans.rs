//! Orphan-file cleanup (`remove_orphan_files`): files under the table location that no
//! metadata file, snapshot, manifest or statistics entry references.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt};

use super::normalize_location;
use super::reachable::ManifestIndex;
use crate::error::{Error, Result};
use crate::table::Table;

/// Below this window orphan cleanup refuses to run unless forced: a write that takes longer
/// than the window would lose files it has written but not yet committed.
pub const ORPHAN_RETENTION_FLOOR: Duration = Duration::from_secs(24 * 3600);

/// A listed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    /// Full location with scheme, e.g. `file:///…/data/x.parquet` or `s3://bucket/…`.
    pub location: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification (object creation on S3).
    pub last_modified: DateTime<Utc>,
}

/// Lists and deletes files of a storage. Iceberg's `FileIO` can read, write and delete but not
/// list, so orphan cleanup needs this besides it.
#[async_trait]
pub trait FileLister: Send + Sync + std::fmt::Debug {
    /// Every file under `prefix` (a directory location; a missing one lists nothing).
    async fn list(&self, prefix: &str) -> Result<Vec<ListedFile>>;
    /// Delete one file (a missing file is not an error).
    async fn delete(&self, location: &str) -> Result<()>;
}

/// The local file system (`file://` locations and plain paths).
#[derive(Debug, Clone, Default)]
pub struct LocalLister;

fn local_path(location: &str) -> Result<PathBuf> {
    let n = normalize_location(location);
    match n.strip_prefix("file://") {
        Some(p) => Ok(PathBuf::from(p)),
        None => Err(Error::Invalid {
            table: String::new(),
            detail: format!(
                "{location} is not a local path; list it with an object-store lister (ObjectStoreLister) instead"
            ),
        }),
    }
}

fn walk(dir: &Path, out: &mut Vec<ListedFile>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let meta = match std::fs::symlink_metadata(entry.path()) {
            Ok(m) => m,
            // Removed between listing and stat (e.g. a writer's temp file).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            walk(&entry.path(), out)?;
        } else if meta.is_file() {
            out.push(ListedFile {
                location: format!("file://{}", entry.path().display()),
                size: meta.len(),
                last_modified: meta.modified().map(DateTime::<Utc>::from)?,
            });
        }
    }
    Ok(())
}

#[async_trait]
impl FileLister for LocalLister {
    async fn list(&self, prefix: &str) -> Result<Vec<ListedFile>> {
        let dir = local_path(prefix)?;
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&dir, &mut out).map(|_| out)
        })
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))?
        .map_err(Error::Io)
    }

    async fn delete(&self, location: &str) -> Result<()> {
        match tokio::fs::remove_file(local_path(location)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// Any `object_store` store (S3, GCS, Azure, memory) under a URL prefix such as `s3://bucket`.
/// Locations under `base_url` map to object paths relative to the store's root.
#[derive(Debug, Clone)]
pub struct ObjectStoreLister {
    store: Arc<dyn ObjectStore>,
    base_url: String,
}

impl ObjectStoreLister {
    /// `store` rooted at `base_url` (e.g. an `AmazonS3` for bucket `b` and `s3://b`).
    pub fn new(store: Arc<dyn ObjectStore>, base_url: impl AsRef<str>) -> Self {
        Self {
            store,
            base_url: normalize_location(base_url.as_ref()),
        }
    }

    fn object_path(&self, location: &str) -> Result<object_store::path::Path> {
        let n = normalize_location(location);
        let rel = n
            .strip_prefix(&self.base_url)
            .filter(|r| r.is_empty() || r.starts_with('/'))
            .ok_or_else(|| Error::Invalid {
                table: String::new(),
                detail: format!("{location} is not under this lister's root {}", self.base_url),
            })?;
        object_store::path::Path::parse(rel.trim_start_matches('/')).map_err(|e| Error::Invalid {
            table: String::new(),
            detail: format!("{location} is not a valid object path: {e}"),
        })
    }
}

fn store_error(e: object_store::Error) -> Error {
    Error::Io(std::io::Error::other(e))
}

#[async_trait]
impl FileLister for ObjectStoreLister {
    async fn list(&self, prefix: &str) -> Result<Vec<ListedFile>> {
        let path = self.object_path(prefix)?;
        // object_store prefixes are whole path segments: `t` never matches `t_other/…`.
        let metas: Vec<object_store::ObjectMeta> =
            self.store.list(Some(&path)).try_collect().await.map_err(store_error)?;
        Ok(metas
            .into_iter()
            .map(|m| ListedFile {
                location: format!("{}/{}", self.base_url, m.location),
                size: m.size,
                last_modified: m.last_modified,
            })
            .collect())
    }

    async fn delete(&self, location: &str) -> Result<()> {
        let path = self.object_path(location)?;
        match self.store.delete(&path).await {
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            other => other.map_err(store_error),
        }
    }
}

/// Settings of an orphan-file cleanup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanOptions {
    /// Only files older than this are deleted (Iceberg and Glue: 3 days).
    pub older_than: Duration,
    /// Allow a window under [`ORPHAN_RETENTION_FLOOR`].
    pub force: bool,
}

impl OrphanOptions {
    /// Iceberg's and Glue's default window: 3 days.
    pub const DEFAULT_RETENTION: Duration = Duration::from_secs(3 * 24 * 3600);

    /// Delete orphans older than `older_than`.
    pub fn new(older_than: Duration) -> Self {
        Self {
            older_than,
            force: false,
        }
    }
}

impl Default for OrphanOptions {
    fn default() -> Self {
        Self::new(Self::DEFAULT_RETENTION)
    }
}

/// A file the cleanup would delete.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrphanFile {
    /// Location as listed.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Last modification, RFC 3339.
    pub last_modified: String,
}

/// What an orphan cleanup would delete. Building it changes nothing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrphanPlan {
    /// `namespace.table`.
    pub table: String,
    /// Listed location (with a trailing slash: a table `t` never lists `t_other/`).
    pub location: String,
    /// Files older than this are deleted, RFC 3339.
    pub cutoff: String,
    /// Files under the location.
    pub files_listed: usize,
    /// Their bytes.
    pub bytes_listed: u64,
    /// Listed files the table references.
    pub files_referenced: usize,
    /// Unreferenced files kept because they are younger than the window (in-flight writes).
    pub files_too_young: usize,
    /// Files to delete.
    pub orphans: Vec<OrphanFile>,
    /// Their bytes.
    pub bytes: u64,
}

/// What executing an orphan cleanup did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct OrphanOutcome {
    /// Files deleted.
    pub files_deleted: usize,
    /// Bytes deleted.
    pub bytes_deleted: u64,
    /// Planned orphans that a commit made since the plan references: kept.
    pub files_now_referenced: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Every location the table's metadata reaches, normalised: metadata files (current and
/// logged), the version hint, statistics, and for every snapshot its manifest list, manifests
/// and all their entries (whatever their status: deleting less is the safe side).
async fn referenced(table: &Table) -> Result<HashSet<String>> {
    let meta = table.metadata();
    let file_io = table.catalog().file_io();
    let mut out = HashSet::new();
    out.insert(normalize_location(table.metadata_location()));
    for m in meta.metadata_log() {
        out.insert(normalize_location(&m.metadata_file));
    }
    let location = meta.location().trim_end_matches('/');
    out.insert(normalize_location(&format!("{location}/metadata/version-hint.text")));
    for s in meta.statistics_iter() {
        out.insert(normalize_location(&s.statistics_path));
    }
    for s in meta.partition_statistics_iter() {
        out.insert(normalize_location(&s.statistics_path));
    }
    let ids: Vec<i64> = meta.snapshots().map(|s| s.snapshot_id()).collect();
    let index = ManifestIndex::build(meta, file_io, &ids).await?;
    for (list, _) in index.snapshots.values() {
        out.insert(normalize_location(list));
    }
    for (path, m) in &index.manifests {
        out.insert(normalize_location(path));
        for e in &m.entries {
            out.insert(normalize_location(&e.path));
        }
    }
    Ok(out)
}

impl OrphanPlan {
    /// Plan a cleanup: list the table location through `lister` and subtract everything the
    /// table references. Refuses a window under one day unless `force`.
    pub async fn build(table: &Table, lister: &dyn FileLister, opts: &OrphanOptions) -> Result<OrphanPlan> {
        let name = table.ident().to_string();
        if opts.older_than < ORPHAN_RETENTION_FLOOR && !opts.force {
            return Err(Error::Unsafe {
                table: name,
                detail: format!(
                    "an orphan window of {:.1} hours is under the 1-day floor: files of writes still in flight would be deleted and the table corrupted. Use 1 day or more (default 3), or force it if no writer can be running",
                    opts.older_than.as_secs_f64() / 3600.0
                ),
            });
        }
        // A window reaching before the earliest representable time keeps every file.
        let cutoff = chrono::Duration::from_std(opts.older_than)
            .ok()
            .and_then(|w| Utc::now().checked_sub_signed(w))
            .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
        // Listing first, references second: a file committed in between is then seen as
        // referenced, never the other way round.
        let location = format!("{}/", table.metadata().location().trim_end_matches('/'));
        let listed = lister.list(&location).await?;
        let refs = referenced(table).await?;
        let mut plan = OrphanPlan {
            table: name,
            location,
            cutoff: cutoff.to_rfc3339(),
            files_listed: listed.len(),
            bytes_listed: listed.iter().map(|f| f.size).sum(),
            files_referenced: 0,
            files_too_young: 0,
            orphans: Vec::new(),
            bytes: 0,
        };
        for f in listed {
            if refs.contains(&normalize_location(&f.location)) {
                plan.files_referenced += 1;
            } else if f.last_modified >= cutoff {
                plan.files_too_young += 1;
            } else {
                plan.bytes += f.size;
                plan.orphans.push(OrphanFile {
                    path: f.location,
                    bytes: f.size,
                    last_modified: f.last_modified.to_rfc3339(),
                });
            }
        }
        plan.orphans.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(plan)
    }

    /// Nothing to delete.
    pub fn is_empty(&self) -> bool {
        self.orphans.is_empty()
    }

    /// Delete the planned orphans that are still unreferenced by the table as it is now.
    pub async fn execute(&self, table: &mut Table, lister: &dyn FileLister) -> Result<OrphanOutcome> {
        let started = Instant::now();
        table.refresh().await?;
        let refs = referenced(table).await?;
        let mut out = OrphanOutcome::default();
        for f in &self.orphans {
            if refs.contains(&normalize_location(&f.path)) {
                out.files_now_referenced += 1;
                continue;
            }
            lister.delete(&f.path).await?;
            out.files_deleted += 1;
            out.bytes_deleted += f.bytes;
        }
        out.seconds = started.elapsed().as_secs_f64();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::PutPayload;

    #[tokio::test]
    async fn object_store_lister_lists_whole_segments_and_maps_locations() {
        let store = Arc::new(InMemory::new());
        for p in [
            "wh/t/data/a.parquet",
            "wh/t/metadata/v1.json",
            "wh/t_other/data/b.parquet",
        ] {
            store
                .put(&object_store::path::Path::from(p), PutPayload::from_static(b"x"))
                .await
                .unwrap();
        }
        let lister = ObjectStoreLister::new(store, "s3://bucket/");
        let mut got: Vec<String> = lister
            .list("s3a://bucket/wh/t/")
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.location)
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec!["s3://bucket/wh/t/data/a.parquet", "s3://bucket/wh/t/metadata/v1.json"]
        );
        lister.delete("s3://bucket/wh/t/data/a.parquet").await.unwrap();
        lister.delete("s3://bucket/wh/t/data/a.parquet").await.unwrap();
        assert_eq!(lister.list("s3://bucket/wh/t").await.unwrap().len(), 1);
        assert!(lister.list("s3://elsewhere/wh").await.is_err());
    }

    #[tokio::test]
    async fn local_lister_walks_and_ignores_missing_dirs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("t/data")).unwrap();
        std::fs::create_dir_all(dir.path().join("t_other")).unwrap();
        std::fs::write(dir.path().join("t/data/a.parquet"), b"abc").unwrap();
        std::fs::write(dir.path().join("t_other/b.parquet"), b"x").unwrap();
        let l = LocalLister;
        let got = l.list(&format!("file://{}/t/", dir.path().display())).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].size, 3);
        assert!(got[0].location.ends_with("/t/data/a.parquet"));
        assert!(l
            .list(&format!("{}/missing", dir.path().display()))
            .await
            .unwrap()
            .is_empty());
        l.delete(&got[0].location).await.unwrap();
        l.delete(&got[0].location).await.unwrap();
    }
}
