//! Snapshot expiry (`expire_snapshots`): drop old snapshots from the metadata and, optionally,
//! delete the files only they reached.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::time::{Duration, Instant};

use iceberg::spec::{TableMetadata, TableMetadataBuilder};
use iceberg::MetadataLocation;

use super::reachable::{file_size, ManifestIndex};
use super::{normalize_location, total_bytes, FileKind, PlannedFile};
use crate::error::{Error, Result};
use crate::table::Table;

/// Settings of a snapshot expiry (Glue's retention optimizer, Iceberg's `expire_snapshots`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpireOptions {
    /// Snapshots committed before this time (ms since epoch) may expire.
    pub older_than_ms: i64,
    /// The newest `retain_last` ancestors of every branch head are always kept (at least 1).
    pub retain_last: usize,
    /// Also delete the data, delete, manifest and manifest-list files only expired snapshots reach.
    pub clean_expired_files: bool,
}

impl ExpireOptions {
    /// Iceberg's and Glue's default age: 5 days.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(5 * 24 * 3600);

    /// Expire snapshots older than `max_age` (from now), keeping the last `retain_last`.
    pub fn new(max_age: Duration, retain_last: usize, clean_expired_files: bool) -> Self {
        let now = chrono::Utc::now().timestamp_millis();
        Self {
            older_than_ms: now - i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX / 2),
            retain_last,
            clean_expired_files,
        }
    }
}

impl Default for ExpireOptions {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX_AGE, 1, true)
    }
}

/// A snapshot the plan expires.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExpiredSnapshot {
    /// Id.
    pub snapshot_id: i64,
    /// Commit time, ms since epoch.
    pub timestamp_ms: i64,
    /// `append`, `overwrite`, ...
    pub operation: String,
}

/// What an expiry would remove. Building it changes nothing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExpiryPlan {
    /// `namespace.table`.
    pub table: String,
    /// Cut-off, ms since epoch.
    pub older_than_ms: i64,
    /// Ancestors kept per branch.
    pub retain_last: usize,
    /// Whether files are deleted.
    pub clean_expired_files: bool,
    /// Snapshots in the table.
    pub snapshots_total: usize,
    /// Snapshots kept (ids).
    pub kept: Vec<i64>,
    /// Snapshots removed from the metadata.
    pub expired: Vec<ExpiredSnapshot>,
    /// Files deleted after the commit (empty unless `clean_expired_files`).
    pub files: Vec<PlannedFile>,
    /// Their bytes.
    pub bytes: u64,
}

/// What executing an expiry did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ExpiryOutcome {
    /// Snapshots removed from the metadata.
    pub snapshots_expired: usize,
    /// Files deleted, by kind.
    pub files_deleted: usize,
    /// Bytes deleted.
    pub bytes_deleted: u64,
    /// Data and delete files deleted.
    pub data_files_deleted: usize,
    /// Manifests and manifest lists deleted.
    pub metadata_files_deleted: usize,
    /// Commit attempts.
    pub attempts: u32,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// `refs` of the metadata as (snapshot id, is branch). iceberg 0.10.1 keeps the map
/// crate-private; the serialised metadata is the public view of it.
fn refs(table: &str, meta: &TableMetadata) -> Result<Vec<(i64, bool)>> {
    let json = serde_json::to_value(meta).map_err(|e| Error::Invalid {
        table: table.to_string(),
        detail: format!("cannot read the table's refs: {e}"),
    })?;
    let mut out = Vec::new();
    if let Some(map) = json.get("refs").and_then(|r| r.as_object()) {
        for r in map.values() {
            if let Some(id) = r.get("snapshot-id").and_then(|v| v.as_i64()) {
                out.push((id, r.get("type").and_then(|t| t.as_str()) != Some("tag")));
            }
        }
    }
    if let Some(current) = meta.current_snapshot_id() {
        if !out.iter().any(|(id, _)| *id == current) {
            out.push((current, true));
        }
    }
    Ok(out)
}

/// Snapshots that must survive: every ref's snapshot; per branch, its newest `retain_last`
/// ancestors and every ancestor not older than the cut-off; unreferenced snapshots not older
/// than the cut-off.
pub(crate) fn kept_snapshots(
    table: &str,
    meta: &TableMetadata,
    older_than_ms: i64,
    retain_last: usize,
) -> Result<BTreeSet<i64>> {
    let mut kept = BTreeSet::new();
    let mut on_a_branch = HashSet::new();
    for (head, is_branch) in refs(table, meta)? {
        kept.insert(head);
        if !is_branch {
            continue;
        }
        let mut cursor = Some(head);
        let mut depth = 0usize;
        while let Some(id) = cursor {
            let Some(s) = meta.snapshot_by_id(id) else { break };
            on_a_branch.insert(id);
            if depth < retain_last || s.timestamp_ms() >= older_than_ms {
                kept.insert(id);
            }
            depth += 1;
            cursor = s.parent_snapshot_id();
        }
    }
    for s in meta.snapshots() {
        if !on_a_branch.contains(&s.snapshot_id()) && s.timestamp_ms() >= older_than_ms {
            kept.insert(s.snapshot_id());
        }
    }
    Ok(kept)
}

impl ExpiryPlan {
    /// Plan an expiry of `table` as it is now. Refuses `retain_last = 0`.
    pub async fn build(table: &Table, opts: &ExpireOptions) -> Result<ExpiryPlan> {
        let name = table.ident().to_string();
        if opts.retain_last == 0 {
            return Err(Error::Unsafe {
                table: name,
                detail:
                    "retain_last = 0 would expire the current snapshot and break every reader; keep at least 1 snapshot"
                        .into(),
            });
        }
        let meta = table.metadata();
        let kept = kept_snapshots(&name, meta, opts.older_than_ms, opts.retain_last)?;
        let mut expired: Vec<ExpiredSnapshot> = meta
            .snapshots()
            .filter(|s| !kept.contains(&s.snapshot_id()))
            .map(|s| ExpiredSnapshot {
                snapshot_id: s.snapshot_id(),
                timestamp_ms: s.timestamp_ms(),
                operation: s.summary().operation.as_str().to_string(),
            })
            .collect();
        expired.sort_by_key(|s| (s.timestamp_ms, s.snapshot_id));
        let kept: Vec<i64> = kept.into_iter().collect();
        let files = if opts.clean_expired_files && !expired.is_empty() {
            let ids: Vec<i64> = expired.iter().map(|s| s.snapshot_id).collect();
            unreachable_files(table, meta, meta, &kept, &ids).await?
        } else {
            vec![]
        };
        Ok(ExpiryPlan {
            table: name,
            older_than_ms: opts.older_than_ms,
            retain_last: opts.retain_last,
            clean_expired_files: opts.clean_expired_files,
            snapshots_total: meta.snapshots().len(),
            kept,
            bytes: total_bytes(&files),
            expired,
            files,
        })
    }

    /// Nothing to expire.
    pub fn is_empty(&self) -> bool {
        self.expired.is_empty()
    }

    /// Commit metadata without the expired snapshots, then (with `clean_expired_files`) delete
    /// the files no snapshot of the committed metadata reaches. On a lost race the expiry is
    /// re-planned on the new state with the same cut-off; only snapshots this plan listed expire.
    pub async fn execute(&self, table: &mut Table) -> Result<ExpiryOutcome> {
        let started = Instant::now();
        let name = table.name();
        if self.expired.is_empty() {
            return Ok(ExpiryOutcome::default());
        }
        let planned: HashSet<i64> = self.expired.iter().map(|s| s.snapshot_id).collect();
        let mut outcome = ExpiryOutcome::default();
        let mut wait = Duration::from_millis(100);
        let (removed, before) = loop {
            outcome.attempts += 1;
            let base = table.metadata().clone();
            let kept = kept_snapshots(&name, &base, self.older_than_ms, self.retain_last)?;
            let ids: Vec<i64> = base
                .snapshots()
                .map(|s| s.snapshot_id())
                .filter(|id| planned.contains(id) && !kept.contains(id))
                .collect();
            if ids.is_empty() {
                break (ids, base);
            }
            let mut builder =
                TableMetadataBuilder::new_from_metadata(base.clone(), Some(table.metadata_location().to_string()))
                    .remove_snapshots(&ids);
            for id in &ids {
                builder = builder.remove_statistics(*id).remove_partition_statistics(*id);
            }
            let meta = builder.build()?.metadata;
            let location = MetadataLocation::from_str(table.metadata_location())?.with_next_version();
            crate::durable::write_metadata(&meta, table.catalog().file_io(), &location).await?;
            if table.swap_metadata(meta, location.to_string()).await? {
                break (ids, base);
            }
            if outcome.attempts > 4 {
                return Err(Error::Conflict {
                    table: name,
                    reason: format!(
                        "snapshot expiry lost the commit race {} times; run it again",
                        outcome.attempts
                    ),
                });
            }
            tokio::time::sleep(wait).await;
            wait *= 2;
            table.refresh().await?;
        };
        outcome.snapshots_expired = removed.len();
        if self.clean_expired_files && !removed.is_empty() {
            // Reachability from the metadata now in the catalog: what a concurrent commit that
            // rebased on our metadata added is kept too.
            table.refresh().await?;
            let current = table.metadata().clone();
            let kept: Vec<i64> = current.snapshots().map(|s| s.snapshot_id()).collect();
            let files = unreachable_files(table, &before, &current, &kept, &removed).await?;
            let file_io = table.catalog().file_io().clone();
            for f in files {
                file_io.delete(&f.path).await?;
                outcome.files_deleted += 1;
                outcome.bytes_deleted += f.bytes;
                match f.kind {
                    FileKind::Data | FileKind::Delete => outcome.data_files_deleted += 1,
                    _ => outcome.metadata_files_deleted += 1,
                }
            }
        }
        outcome.seconds = started.elapsed().as_secs_f64();
        Ok(outcome)
    }
}

/// Files of the `removed` snapshots (read from `before`, which still has them) that none of the
/// `kept` snapshots of `current` reaches: their manifest lists, manifests not shared with a kept
/// snapshot, and live entries of those manifests that no kept snapshot has live.
async fn unreachable_files(
    table: &Table,
    before: &TableMetadata,
    current: &TableMetadata,
    kept: &[i64],
    removed: &[i64],
) -> Result<Vec<PlannedFile>> {
    let file_io = table.catalog().file_io();
    let kept_index = ManifestIndex::build(current, file_io, kept).await?;
    let expired_index = ManifestIndex::build(before, file_io, removed).await?;
    let mut keep: HashSet<String> = HashSet::new();
    for (list, _) in kept_index.snapshots.values() {
        keep.insert(normalize_location(list));
    }
    for (path, m) in &kept_index.manifests {
        keep.insert(normalize_location(path));
        for e in m.entries.iter().filter(|e| e.live) {
            keep.insert(normalize_location(&e.path));
        }
    }
    let mut out: HashMap<String, PlannedFile> = HashMap::new();
    for (list, manifests) in expired_index.snapshots.values() {
        let key = normalize_location(list);
        if !keep.contains(&key) {
            out.entry(key).or_insert_with(|| PlannedFile {
                path: list.clone(),
                bytes: 0,
                kind: FileKind::ManifestList,
            });
        }
        for m in manifests {
            let mkey = normalize_location(m);
            if keep.contains(&mkey) {
                continue;
            }
            let Some(info) = expired_index.manifests.get(m) else {
                continue;
            };
            out.entry(mkey).or_insert_with(|| PlannedFile {
                path: m.clone(),
                bytes: info.bytes,
                kind: FileKind::Manifest,
            });
            // Only live entries: a DELETED entry names a file that was live in an older
            // snapshot, which either is kept (so the file is too) or expired before, and then
            // its files went with it (or were left, with clean_expired_files off, to orphan
            // cleanup). Planning it again would list a file that is no longer there.
            for e in info.entries.iter().filter(|e| e.live) {
                let ekey = normalize_location(&e.path);
                if !keep.contains(&ekey) {
                    out.entry(ekey).or_insert_with(|| PlannedFile {
                        path: e.path.clone(),
                        bytes: e.bytes,
                        kind: e.kind,
                    });
                }
            }
        }
    }
    let mut files: Vec<PlannedFile> = out.into_values().collect();
    for f in files.iter_mut().filter(|f| f.kind == FileKind::ManifestList) {
        f.bytes = file_size(file_io, &f.path).await;
    }
    // Data files first, then manifests, then lists: a crash midway leaves only unreferenced
    // files behind, never a manifest pointing at nothing that a kept snapshot still lists.
    files.sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
    Ok(files)
}
