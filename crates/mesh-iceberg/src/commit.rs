//! Snapshot production (manifests, manifest list, summary, metadata file) and the
//! conflict validation used when a compare-and-swap loses against another writer.
//!
//! iceberg 0.10.1 only offers fast-append; overwrite/delete/replace are built here from its
//! public building blocks so that entry statuses (ADDED/EXISTING/DELETED) and summary totals
//! are what Java and pyiceberg expect.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use iceberg::io::FileIO;
use iceberg::spec::{
    DataFile, ManifestContentType, ManifestFile, ManifestList, ManifestListWriter, ManifestWriterBuilder, Operation,
    Schema, Snapshot, Struct, Summary, TableMetadata, TableMetadataBuilder, MAIN_BRANCH,
};
use iceberg::MetadataLocation;

use crate::error::{Error, Result};

/// A live data file of a snapshot and its tracking information.
#[derive(Debug, Clone)]
pub(crate) struct LiveFile {
    pub file: DataFile,
    /// From the manifest: iceberg 0.10.1 keeps `DataFile::partition_spec_id` private.
    pub spec_id: i32,
    pub snapshot_id: i64,
    pub sequence_number: i64,
}

/// Decides whether a data file added by a concurrent commit collides with this operation.
pub(crate) type AddedFileCheck = Arc<dyn Fn(&LiveFile) -> bool + Send + Sync>;

/// What must still hold when this operation is rebased on a newer table state.
#[derive(Clone)]
pub(crate) enum ConflictCheck {
    /// Appends: concurrent commits never invalidate them.
    None,
    /// Files this operation read and removes must still be live.
    RemovedFilesLive,
    /// ... and no concurrently added file may hold rows this operation decides on.
    RemovedFilesLiveAndNoMatchingAdds(AddedFileCheck),
}

/// A change ready to be committed: data files are already written.
#[derive(Clone)]
pub(crate) struct PendingCommit {
    pub operation: Operation,
    /// Name used in messages (`append`, `merge`, ...).
    pub action: &'static str,
    pub added: Vec<DataFile>,
    pub removed: Vec<LiveFile>,
    pub new_schema: Option<Schema>,
    pub base_snapshot_id: Option<i64>,
    pub base_schema_id: i32,
    pub conflict: ConflictCheck,
    pub extra_summary: Vec<(String, String)>,
    /// State properties that must still hold these values (`None`: absent) at commit time.
    pub expect_summary: Vec<(String, Option<String>)>,
}

pub(crate) async fn manifest_list(
    meta: &TableMetadata,
    file_io: &FileIO,
    snapshot: &Snapshot,
) -> Result<Vec<ManifestFile>> {
    let path = snapshot.manifest_list();
    let bytes = match file_io.new_input(path)?.read().await {
        Ok(b) => b,
        Err(e) => return Err(read_failure(file_io, path, e).await),
    };
    let list = ManifestList::parse_with_version(&bytes, meta.format_version()).map_err(|e| Error::corrupt(path, e))?;
    Ok(list.consume_entries().into_iter().collect())
}

/// A manifest's entries; a missing or damaged manifest is [`Error::Corrupt`].
pub(crate) async fn load_manifest(mf: &ManifestFile, file_io: &FileIO) -> Result<iceberg::spec::Manifest> {
    match mf.load_manifest(file_io).await {
        Ok(m) => Ok(m),
        Err(e) => Err(read_failure(file_io, &mf.manifest_path, e).await),
    }
}

/// Classifies a failed read of a table file: content that does not parse, or a file that is
/// not there, is [`Error::Corrupt`]; anything else (a network or permission error) stays an
/// IO error that may pass on a retry.
pub(crate) async fn read_failure(file_io: &FileIO, path: &str, e: iceberg::Error) -> Error {
    let missing = matches!(file_io.exists(path).await, Ok(false));
    if missing || e.kind() == iceberg::ErrorKind::DataInvalid {
        Error::corrupt(
            path,
            if missing {
                "the file does not exist".to_string()
            } else {
                e.to_string()
            },
        )
    } else {
        Error::Iceberg(e)
    }
}

/// Live data files of a snapshot (`None`: empty table).
pub(crate) async fn live_files(
    table: &str,
    meta: &TableMetadata,
    file_io: &FileIO,
    snapshot_id: Option<i64>,
) -> Result<Vec<LiveFile>> {
    let Some(id) = snapshot_id else {
        return Ok(vec![]);
    };
    let snapshot = meta.snapshot_by_id(id).ok_or_else(|| Error::Invalid {
        table: table.to_string(),
        detail: format!("snapshot {id} does not exist; list snapshots to pick a valid one"),
    })?;
    let mut out = Vec::new();
    for mf in manifest_list(meta, file_io, snapshot)
        .await
        .map_err(|e| e.in_table(table))?
    {
        if mf.content == ManifestContentType::Deletes {
            if mf.added_files_count.unwrap_or(1) + mf.existing_files_count.unwrap_or(1) > 0 {
                return Err(Error::Invalid {
                    table: table.to_string(),
                    detail: "the table has row-level delete files (merge-on-read), which this engine does not apply; rewrite the table with copy-on-write (e.g. pyiceberg overwrite) first".to_string(),
                });
            }
            continue;
        }
        let manifest = load_manifest(&mf, file_io).await.map_err(|e| e.in_table(table))?;
        for entry in manifest.entries() {
            if !entry.is_alive() {
                continue;
            }
            out.push(LiveFile {
                file: entry.data_file().clone(),
                spec_id: mf.partition_spec_id,
                snapshot_id: entry.snapshot_id.unwrap_or(mf.added_snapshot_id),
                sequence_number: entry.sequence_number.unwrap_or(mf.sequence_number),
            });
        }
    }
    Ok(out)
}

fn conflict(table: &str, reason: String) -> Error {
    Error::Conflict {
        table: table.to_string(),
        reason,
    }
}

/// Check that `pending` (planned on `pending.base_snapshot_id`) is still correct on `meta`.
pub(crate) async fn validate(
    table: &str,
    meta: &TableMetadata,
    file_io: &FileIO,
    pending: &PendingCommit,
) -> Result<()> {
    let current = meta.current_snapshot_id();
    if pending.new_schema.is_some() && meta.current_schema_id() != pending.base_schema_id {
        return Err(conflict(
            table,
            format!(
                "the schema changed concurrently (schema {} -> {}) while this {} evolved it",
                pending.base_schema_id,
                meta.current_schema_id(),
                pending.action
            ),
        ));
    }
    if current == pending.base_snapshot_id || matches!(pending.conflict, ConflictCheck::None) {
        return Ok(());
    }
    // Snapshots committed by others since this operation planned.
    let mut concurrent = HashSet::new();
    let mut cursor = current;
    while cursor != pending.base_snapshot_id {
        let Some(id) = cursor else {
            return Err(conflict(
                table,
                format!(
                    "snapshot {} this {} was planned on is no longer in the table history (rolled back or replaced)",
                    pending
                        .base_snapshot_id
                        .map_or_else(|| "(none: the table was empty)".to_string(), |s| s.to_string()),
                    pending.action
                ),
            ));
        };
        concurrent.insert(id);
        cursor = meta.snapshot_by_id(id).and_then(|s| s.parent_snapshot_id());
        if cursor.is_some() && meta.snapshot_by_id(cursor.unwrap_or_default()).is_none() {
            // History beyond expired snapshots is unknown: only safe if it is our base.
            if cursor != pending.base_snapshot_id {
                return Err(conflict(
                    table,
                    "the table history since this operation started is incomplete (snapshots expired)".into(),
                ));
            }
        }
    }
    let live = live_files(table, meta, file_io, current).await?;
    let live_paths: HashSet<&str> = live.iter().map(|f| f.file.file_path()).collect();
    for r in &pending.removed {
        if !live_paths.contains(r.file.file_path()) {
            return Err(conflict(
                table,
                format!(
                    "data file {} that this {} read and replaces was removed or rewritten by a concurrent commit",
                    r.file.file_path(),
                    pending.action
                ),
            ));
        }
    }
    if let ConflictCheck::RemovedFilesLiveAndNoMatchingAdds(check) = &pending.conflict {
        for f in &live {
            if concurrent.contains(&f.snapshot_id) && check(f) {
                return Err(conflict(
                    table,
                    format!(
                        "concurrent snapshot {} added data file {} that may hold rows this {} matches",
                        f.snapshot_id,
                        f.file.file_path(),
                        pending.action
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The state values this commit replaces must be the ones it read: a concurrent run of the same
/// job that committed first moved them, and committing on top would process its input twice.
pub(crate) fn validate_state(table: &str, meta: &TableMetadata, pending: &PendingCommit) -> Result<()> {
    for (key, expected) in &pending.expect_summary {
        let now = crate::state::job_state(meta, key);
        if now.as_ref() != Ok(expected) {
            let now = match now {
                Ok(v) => v.unwrap_or_else(|| "(absent)".into()),
                Err(lost) => format!("lost ({lost})"),
            };
            return Err(conflict(
                table,
                format!(
                    "summary property {key} is {now} but this {} was planned on {} (another run committed meanwhile)",
                    pending.action,
                    expected.as_deref().unwrap_or("(absent)")
                ),
            ));
        }
    }
    Ok(())
}

fn new_snapshot_id(meta: &TableMetadata) -> i64 {
    loop {
        let (hi, _) = uuid::Uuid::new_v4().as_u64_pair();
        let id = (hi & (i64::MAX as u64)) as i64;
        if id != 0 && meta.snapshot_by_id(id).is_none() {
            return id;
        }
    }
}

#[derive(Default)]
struct Totals {
    records: i64,
    files: i64,
    size: i64,
}

async fn previous_totals(table: &str, meta: &TableMetadata, file_io: &FileIO) -> Result<Totals> {
    let Some(parent) = meta.current_snapshot() else {
        return Ok(Totals::default());
    };
    let p = &parent.summary().additional_properties;
    let get = |k: &str| p.get(k).and_then(|v| v.parse::<i64>().ok());
    if let (Some(records), Some(files), Some(size)) =
        (get("total-records"), get("total-data-files"), get("total-files-size"))
    {
        return Ok(Totals { records, files, size });
    }
    let live = live_files(table, meta, file_io, Some(parent.snapshot_id())).await?;
    Ok(Totals {
        records: live.iter().map(|f| f.file.record_count() as i64).sum(),
        files: live.len() as i64,
        size: live.iter().map(|f| f.file.file_size_in_bytes() as i64).sum(),
    })
}

/// Write manifests, manifest list and the next metadata file for `pending` on top of `base`.
/// Returns the new metadata and its location; nothing is visible until the catalog swaps.
pub(crate) async fn produce(
    table: &str,
    base: &TableMetadata,
    base_location: &str,
    file_io: &FileIO,
    pending: &PendingCommit,
) -> Result<(TableMetadata, String)> {
    let (meta, log_location) = match &pending.new_schema {
        Some(schema) => {
            let m = TableMetadataBuilder::new_from_metadata(base.clone(), Some(base_location.to_string()))
                .add_current_schema(schema.clone())?
                .build()?
                .metadata;
            (m, None)
        }
        None => (base.clone(), Some(base_location.to_string())),
    };
    let schema = meta.current_schema().clone();
    let snapshot_id = new_snapshot_id(&meta);
    let sequence_number = meta.next_sequence_number();
    let parent = base.current_snapshot().cloned();
    let location = meta.location().trim_end_matches('/').to_string();
    let manifest_path = |n: usize| format!("{location}/metadata/{}-m{n}.avro", uuid::Uuid::new_v4());

    let mut new_manifests: Vec<ManifestFile> = Vec::new();
    if !pending.added.is_empty() {
        let spec = meta.default_partition_spec().as_ref().clone();
        let mut w = ManifestWriterBuilder::new(
            file_io.new_output(manifest_path(new_manifests.len()))?,
            Some(snapshot_id),
            schema.clone(),
            spec,
        )
        .build_v2_data();
        for f in &pending.added {
            w.add_file(f.clone(), sequence_number)?;
        }
        new_manifests.push(w.write_manifest_file().await?);
    }

    let removed: HashSet<&str> = pending.removed.iter().map(|f| f.file.file_path()).collect();
    let mut found: HashSet<String> = HashSet::new();
    let mut carried: Vec<ManifestFile> = Vec::new();
    if let Some(parent) = &parent {
        for mf in manifest_list(base, file_io, parent).await? {
            let live_count = mf.added_files_count.unwrap_or(1) + mf.existing_files_count.unwrap_or(1);
            if live_count == 0 {
                // Only DELETED entries from older snapshots: nothing to carry.
                continue;
            }
            if removed.is_empty() || mf.content == ManifestContentType::Deletes {
                carried.push(mf);
                continue;
            }
            let manifest = load_manifest(&mf, file_io).await?;
            let touches = manifest
                .entries()
                .iter()
                .any(|e| e.is_alive() && removed.contains(e.file_path()));
            if !touches {
                carried.push(mf);
                continue;
            }
            let spec = meta
                .partition_spec_by_id(mf.partition_spec_id)
                .ok_or_else(|| Error::Invalid {
                    table: table.to_string(),
                    detail: format!(
                        "manifest {} uses unknown partition spec {}",
                        mf.manifest_path, mf.partition_spec_id
                    ),
                })?
                .as_ref()
                .clone();
            let mut w = ManifestWriterBuilder::new(
                file_io.new_output(manifest_path(new_manifests.len()))?,
                Some(snapshot_id),
                schema.clone(),
                spec,
            )
            .build_v2_data();
            for e in manifest.entries() {
                if !e.is_alive() {
                    continue;
                }
                let seq = e.sequence_number.unwrap_or(mf.sequence_number);
                let file_seq = e.file_sequence_number.or(Some(seq));
                if removed.contains(e.file_path()) {
                    found.insert(e.file_path().to_string());
                    w.add_delete_file(e.data_file().clone(), seq, file_seq)?;
                } else {
                    w.add_existing_file(
                        e.data_file().clone(),
                        e.snapshot_id.unwrap_or(mf.added_snapshot_id),
                        seq,
                        file_seq,
                    )?;
                }
            }
            new_manifests.push(w.write_manifest_file().await?);
        }
    }
    if let Some(missing) = removed.iter().find(|p| !found.contains(**p)) {
        return Err(conflict(
            table,
            format!(
                "data file {missing} that this {} replaces is no longer live",
                pending.action
            ),
        ));
    }

    // Summary, with the keys Java and pyiceberg write.
    let prev = previous_totals(table, base, file_io).await?;
    let added_records: i64 = pending.added.iter().map(|f| f.record_count() as i64).sum();
    let added_size: i64 = pending.added.iter().map(|f| f.file_size_in_bytes() as i64).sum();
    let deleted_records: i64 = pending.removed.iter().map(|f| f.file.record_count() as i64).sum();
    let removed_size: i64 = pending.removed.iter().map(|f| f.file.file_size_in_bytes() as i64).sum();
    let default_spec = meta.default_partition_spec_id();
    let partitions: HashSet<(i32, &Struct)> = pending
        .added
        .iter()
        .map(|f| (default_spec, f.partition()))
        .chain(pending.removed.iter().map(|f| (f.spec_id, f.file.partition())))
        .collect();
    let mut props: HashMap<String, String> = HashMap::new();
    let mut put = |k: &str, v: i64| {
        props.insert(k.to_string(), v.to_string());
    };
    if !pending.added.is_empty() {
        put("added-data-files", pending.added.len() as i64);
        put("added-records", added_records);
        put("added-files-size", added_size);
    }
    if !pending.removed.is_empty() {
        put("deleted-data-files", pending.removed.len() as i64);
        put("deleted-records", deleted_records);
        put("removed-files-size", removed_size);
    }
    put("changed-partition-count", partitions.len() as i64);
    put("total-records", prev.records + added_records - deleted_records);
    put(
        "total-data-files",
        prev.files + pending.added.len() as i64 - pending.removed.len() as i64,
    );
    put("total-files-size", prev.size + added_size - removed_size);
    put("total-delete-files", 0);
    put("total-position-deletes", 0);
    put("total-equality-deletes", 0);
    // State rides forward from the parent; this commit's own properties win.
    for (k, v) in crate::state::inherited(&meta).iter().chain(&pending.extra_summary) {
        props.insert(k.clone(), v.clone());
    }
    let carries_state = props.keys().any(|k| k.starts_with(crate::state::STATE_PREFIX));

    let list_path = format!("{location}/metadata/snap-{snapshot_id}-1-{}.avro", uuid::Uuid::new_v4());
    let mut list = ManifestListWriter::v2(
        file_io.new_output(&list_path)?.writer().await?,
        snapshot_id,
        parent.as_ref().map(|p| p.snapshot_id()),
        sequence_number,
    );
    list.add_manifests(new_manifests.into_iter().chain(carried))?;
    list.close().await?;

    let now = chrono::Utc::now().timestamp_millis();
    let snapshot = Snapshot::builder()
        .with_snapshot_id(snapshot_id)
        .with_parent_snapshot_id(parent.as_ref().map(|p| p.snapshot_id()))
        .with_sequence_number(sequence_number)
        .with_timestamp_ms(now.max(meta.last_updated_ms() + 1))
        .with_manifest_list(list_path)
        .with_summary(Summary {
            operation: pending.operation.clone(),
            additional_properties: props,
        })
        .with_schema_id(schema.schema_id())
        .build();
    let mut builder =
        TableMetadataBuilder::new_from_metadata(meta, log_location).set_branch_snapshot(snapshot, MAIN_BRANCH)?;
    if carries_state {
        // The snapshot holding the latest state is kept by every engine's snapshot expiry.
        builder = builder.set_ref(
            crate::state::STATE_TAG,
            iceberg::spec::SnapshotReference::new(
                snapshot_id,
                iceberg::spec::SnapshotRetention::Tag { max_ref_age_ms: None },
            ),
        )?;
    }
    let new_meta = builder.build()?.metadata;
    let location = MetadataLocation::from_str(base_location)?.with_next_version();
    crate::durable::write_metadata(&new_meta, file_io, &location).await?;
    Ok((new_meta, location.to_string()))
}

/// Metadata file for a schema-only change (no new snapshot).
pub(crate) async fn produce_schema_change(
    base: &TableMetadata,
    base_location: &str,
    file_io: &FileIO,
    schema: Schema,
) -> Result<(TableMetadata, String)> {
    let new_meta = TableMetadataBuilder::new_from_metadata(base.clone(), Some(base_location.to_string()))
        .add_current_schema(schema)?
        .build()?
        .metadata;
    let location = MetadataLocation::from_str(base_location)?.with_next_version();
    crate::durable::write_metadata(&new_meta, file_io, &location).await?;
    Ok((new_meta, location.to_string()))
}
