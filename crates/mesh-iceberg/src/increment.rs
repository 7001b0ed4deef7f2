//! Incremental reads: the rows appended to a table since a snapshot, for jobs that process
//! only what is new. Compaction (`replace`) snapshots since then change no rows and are passed
//! over; an `overwrite` or `delete` snapshot changed rows the reader already processed, which
//! an append-only read cannot express, so it is reported and the caller decides.

use arrow::array::RecordBatch;
use iceberg::spec::{ManifestContentType, ManifestStatus, Operation};

use crate::commit::{manifest_list, LiveFile};
use crate::error::Result;
use crate::scan::read_files;
use crate::table::Table;

/// What happened to a table since a snapshot.
#[derive(Debug)]
pub enum Increment {
    /// Rows appended since (possibly none), and how many data files held them.
    Appended { batches: Vec<RecordBatch>, files: usize },
    /// A snapshot since then rewrote or deleted rows.
    Rewritten { snapshot_id: i64, operation: String },
    /// The snapshot is not an ancestor of the current one (expired, or the table was
    /// rolled back or replaced).
    NotInHistory,
}

impl Table {
    /// The rows appended by the snapshots after `from` up to the current one.
    pub async fn appended_since(&self, from: i64) -> Result<Increment> {
        let meta = self.metadata();
        let mut chain = Vec::new();
        let mut cursor = meta.current_snapshot_id();
        while cursor != Some(from) {
            let Some(snapshot) = cursor.and_then(|id| meta.snapshot_by_id(id)) else {
                return Ok(Increment::NotInHistory);
            };
            chain.push(snapshot.clone());
            cursor = snapshot.parent_snapshot_id();
        }
        chain.reverse();
        let file_io = self.catalog().file_io();
        let mut added = Vec::new();
        for snapshot in &chain {
            match snapshot.summary().operation {
                Operation::Append => {}
                Operation::Replace => continue,
                ref other => {
                    return Ok(Increment::Rewritten {
                        snapshot_id: snapshot.snapshot_id(),
                        operation: other.as_str().to_string(),
                    })
                }
            }
            for mf in manifest_list(meta, file_io, snapshot).await? {
                if mf.content != ManifestContentType::Data || mf.added_snapshot_id != snapshot.snapshot_id() {
                    continue;
                }
                let manifest = mf.load_manifest(file_io).await?;
                for entry in manifest.entries() {
                    if entry.status() == ManifestStatus::Added {
                        added.push(LiveFile {
                            file: entry.data_file().clone(),
                            spec_id: mf.partition_spec_id,
                            snapshot_id: snapshot.snapshot_id(),
                            sequence_number: entry.sequence_number.unwrap_or(mf.sequence_number),
                        });
                    }
                }
            }
        }
        let refs: Vec<&LiveFile> = added.iter().collect();
        let schema = meta.current_schema().clone();
        let batches = read_files(&self.name(), meta, file_io, &schema, &refs).await?;
        Ok(Increment::Appended {
            batches,
            files: added.len(),
        })
    }
}
