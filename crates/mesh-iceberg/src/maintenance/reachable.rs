//! Which files the snapshots of a table reach: manifest lists, manifests and their entries.

use std::collections::{BTreeMap, HashMap};

use iceberg::io::FileIO;
use iceberg::spec::{ManifestContentType, TableMetadata};

use super::FileKind;
use crate::commit::manifest_list;
use crate::error::Result;

/// An entry of a manifest.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub path: String,
    pub bytes: u64,
    pub kind: FileKind,
    /// ADDED or EXISTING (readable from the snapshots that list this manifest).
    pub live: bool,
}

/// A manifest and its entries.
#[derive(Debug, Clone)]
pub(crate) struct ManifestInfo {
    pub bytes: u64,
    pub entries: Vec<Entry>,
}

/// Manifests of a set of snapshots, each manifest read once however many snapshots share it.
#[derive(Debug, Default)]
pub(crate) struct ManifestIndex {
    /// Snapshot id -> (manifest list location, manifest locations).
    pub snapshots: BTreeMap<i64, (String, Vec<String>)>,
    /// Manifest location -> content.
    pub manifests: HashMap<String, ManifestInfo>,
}

impl ManifestIndex {
    /// Read the manifest lists and manifests of `snapshot_ids` (ids missing from `meta` are skipped).
    pub async fn build(meta: &TableMetadata, file_io: &FileIO, snapshot_ids: &[i64]) -> Result<ManifestIndex> {
        let mut index = ManifestIndex::default();
        for id in snapshot_ids {
            let Some(snapshot) = meta.snapshot_by_id(*id) else {
                continue;
            };
            let mut paths = Vec::new();
            for mf in manifest_list(meta, file_io, snapshot).await? {
                paths.push(mf.manifest_path.clone());
                if index.manifests.contains_key(&mf.manifest_path) {
                    continue;
                }
                let kind = match mf.content {
                    ManifestContentType::Data => FileKind::Data,
                    ManifestContentType::Deletes => FileKind::Delete,
                };
                let manifest = crate::commit::load_manifest(&mf, file_io).await?;
                let entries = manifest
                    .entries()
                    .iter()
                    .map(|e| Entry {
                        path: e.file_path().to_string(),
                        bytes: e.data_file().file_size_in_bytes(),
                        kind,
                        live: e.is_alive(),
                    })
                    .collect();
                index.manifests.insert(
                    mf.manifest_path.clone(),
                    ManifestInfo {
                        bytes: mf.manifest_length.max(0) as u64,
                        entries,
                    },
                );
            }
            index
                .snapshots
                .insert(*id, (snapshot.manifest_list().to_string(), paths));
        }
        Ok(index)
    }
}

/// Size of a file through the table's FileIO (0 when it cannot be read: it is gone already).
pub(crate) async fn file_size(file_io: &FileIO, path: &str) -> u64 {
    match file_io.new_input(path) {
        Ok(input) => input.metadata().await.map(|m| m.size).unwrap_or(0),
        Err(_) => 0,
    }
}
