//! Bin-pack (or sort) compaction of small data files, one `replace` snapshot per file group.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::TryStreamExt;
use iceberg::spec::Operation;

use super::{FileKind, PlannedFile};
use crate::commit::{ConflictCheck, LiveFile, PendingCommit};
use crate::error::{Error, Result};
use crate::read::literal_json;
use crate::scan::{read_files_ahead, specs};
use crate::table::Table;
use crate::write::{sort_keys, target_file_size, write_data_stream_sized};

/// Commit loops (each with the table's `commit.retry.*` retries) a group gets while its inputs
/// stay live.
const MAX_COMMIT_ROUNDS: u32 = 4;

/// How a group's rows are laid out in the new files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompactionStrategy {
    /// Concatenate the input files and cut at the target size.
    Binpack,
    /// Like binpack, but the rows of each group are sorted by the table's sort order.
    Sort,
}

/// Settings of a compaction (Glue's and Iceberg's `rewrite_data_files` options).
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionOptions {
    /// Size of the files written (`target-file-size-bytes`).
    pub target_file_size: u64,
    /// Files smaller than this are candidates (`min-file-size-bytes`, 75% of the target).
    pub min_file_size: u64,
    /// A group is rewritten once it has this many candidates (`min-input-files`) — or when its
    /// candidates together exceed the target size.
    pub min_input_files: usize,
    /// Most input bytes in one group. A group is read into memory and committed atomically, so
    /// this bounds both memory and the work a conflict throws away.
    pub max_group_bytes: u64,
}

impl CompactionOptions {
    /// meshkit's default for `min_input_files`: Iceberg's (5), not Glue's (100), because local
    /// tables are small and a pipeline step compacts right after each write.
    pub const DEFAULT_MIN_INPUT_FILES: usize = 5;
    /// Iceberg's `min-file-size-bytes` default: 75% of the target.
    pub const DEFAULT_MIN_FILE_SIZE_RATIO: f64 = 0.75;

    /// Options with a target size, the share of it below which a file is small, and the
    /// minimum number of small files that makes a group.
    pub fn new(target_file_size: u64, min_file_size_ratio: f64, min_input_files: usize) -> Self {
        let target_file_size = target_file_size.max(1);
        Self {
            target_file_size,
            min_file_size: (target_file_size as f64 * min_file_size_ratio) as u64,
            min_input_files,
            max_group_bytes: target_file_size.saturating_mul(2),
        }
    }

    /// Defaults for a table: its `write.target-file-size-bytes` (512 MB), 75% and 5 files.
    pub fn for_table(table: &Table) -> Self {
        Self::new(
            target_file_size(table.metadata()) as u64,
            Self::DEFAULT_MIN_FILE_SIZE_RATIO,
            Self::DEFAULT_MIN_INPUT_FILES,
        )
    }
}

/// Small files of one partition rewritten together in one commit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CompactionGroup {
    /// Partition values by partition field name (`{}` when unpartitioned).
    pub partition: serde_json::Value,
    /// Partition spec of the input files.
    pub spec_id: i32,
    /// Input files.
    pub files: Vec<PlannedFile>,
    /// Input bytes.
    pub bytes: u64,
    /// Input records.
    pub records: u64,
    /// Files the group is expected to become (input bytes / target, at least 1).
    pub expected_output_files: u64,
    #[serde(skip)]
    inputs: Vec<LiveFile>,
}

/// What a compaction would rewrite. Building it changes nothing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CompactionPlan {
    /// `namespace.table`.
    pub table: String,
    /// Snapshot the plan was made on (`None`: empty table).
    pub snapshot_id: Option<i64>,
    /// Binpack, or sort when the table has a sort order.
    pub strategy: CompactionStrategy,
    /// Output file size.
    pub target_file_size: u64,
    /// Candidate threshold.
    pub min_file_size: u64,
    /// Minimum candidates per group.
    pub min_input_files: usize,
    /// Live data files of the table.
    pub files_total: usize,
    /// Their bytes.
    pub bytes_total: u64,
    /// Groups to rewrite, each committed on its own.
    pub groups: Vec<CompactionGroup>,
}

/// What executing a compaction did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CompactionOutcome {
    /// Groups committed as `replace` snapshots.
    pub groups_committed: usize,
    /// Groups aborted because a concurrent commit removed or rewrote one of their files.
    pub groups_aborted: usize,
    /// Why each aborted group aborted.
    pub aborted: Vec<String>,
    /// New snapshots, in commit order.
    pub snapshot_ids: Vec<i64>,
    /// Data files removed.
    pub files_removed: usize,
    /// Data files written.
    pub files_added: usize,
    /// Bytes of removed files.
    pub bytes_removed: u64,
    /// Bytes of written files.
    pub bytes_added: u64,
    /// Live data files before.
    pub files_before: usize,
    /// Live data files after.
    pub files_after: usize,
    /// Live bytes before.
    pub bytes_before: u64,
    /// Live bytes after.
    pub bytes_after: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl CompactionPlan {
    /// Plan a compaction of `table`'s current snapshot.
    pub async fn build(table: &Table, opts: &CompactionOptions) -> Result<CompactionPlan> {
        let live = table.live_files().await?;
        let meta = table.metadata();
        let specs = specs(meta);
        let strategy = if sort_keys(meta, meta.current_schema()).is_empty() {
            CompactionStrategy::Binpack
        } else {
            CompactionStrategy::Sort
        };
        // Partition key -> candidates. The JSON text of the partition orders groups stably.
        let mut partitions: BTreeMap<(i32, String), (serde_json::Value, Vec<LiveFile>)> = BTreeMap::new();
        for lf in &live {
            if lf.file.file_size_in_bytes() >= opts.min_file_size {
                continue;
            }
            let mut part = serde_json::Map::new();
            if let Some(spec) = specs.get(&lf.spec_id) {
                for (pf, v) in spec.fields().iter().zip(lf.file.partition().iter()) {
                    part.insert(pf.name.clone(), v.map(literal_json).unwrap_or(serde_json::Value::Null));
                }
            }
            let value = serde_json::Value::Object(part);
            partitions
                .entry((lf.spec_id, value.to_string()))
                .or_insert_with(|| (value, Vec::new()))
                .1
                .push(lf.clone());
        }
        let mut groups = Vec::new();
        for ((spec_id, _), (partition, mut files)) in partitions {
            // First-fit decreasing into groups of at most `max_group_bytes` input bytes.
            files.sort_by(|a, b| {
                b.file
                    .file_size_in_bytes()
                    .cmp(&a.file.file_size_in_bytes())
                    .then_with(|| a.file.file_path().cmp(b.file.file_path()))
            });
            let mut bins: Vec<(u64, Vec<LiveFile>)> = Vec::new();
            for f in files {
                let size = f.file.file_size_in_bytes();
                match bins
                    .iter_mut()
                    .find(|(b, _)| b.saturating_add(size) <= opts.max_group_bytes)
                {
                    Some(bin) => {
                        bin.0 += size;
                        bin.1.push(f);
                    }
                    None => bins.push((size, vec![f])),
                }
            }
            for (bytes, inputs) in bins {
                let n = inputs.len();
                // Iceberg's rule: enough input files, or enough content for a full output file.
                let worth = n >= 2 && (n >= opts.min_input_files || bytes > opts.target_file_size);
                if !worth {
                    continue;
                }
                groups.push(CompactionGroup {
                    partition: partition.clone(),
                    spec_id,
                    files: inputs
                        .iter()
                        .map(|f| PlannedFile {
                            path: f.file.file_path().to_string(),
                            bytes: f.file.file_size_in_bytes(),
                            kind: FileKind::Data,
                        })
                        .collect(),
                    bytes,
                    records: inputs.iter().map(|f| f.file.record_count()).sum(),
                    expected_output_files: bytes.div_ceil(opts.target_file_size).max(1),
                    inputs,
                });
            }
        }
        Ok(CompactionPlan {
            table: table.ident().to_string(),
            snapshot_id: meta.current_snapshot_id(),
            strategy,
            target_file_size: opts.target_file_size,
            min_file_size: opts.min_file_size,
            min_input_files: opts.min_input_files,
            files_total: live.len(),
            bytes_total: live.iter().map(|f| f.file.file_size_in_bytes()).sum(),
            groups,
        })
    }

    /// Nothing to rewrite.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Input files over all groups.
    pub fn files_to_rewrite(&self) -> usize {
        self.groups.iter().map(|g| g.files.len()).sum()
    }

    /// Input bytes over all groups.
    pub fn bytes_to_rewrite(&self) -> u64 {
        self.groups.iter().map(|g| g.bytes).sum()
    }

    /// Rewrite every group, each as its own `replace` commit. A group whose inputs are no longer
    /// all live aborts (counted in the outcome); other errors stop the compaction.
    pub async fn execute(&self, table: &mut Table) -> Result<CompactionOutcome> {
        let started = Instant::now();
        let name = table.name();
        if table.ident().to_string() != self.table {
            return Err(Error::Invalid {
                table: name,
                detail: format!("this compaction plan was made for table {}", self.table),
            });
        }
        table.refresh().await?;
        let before = table.live_files().await?;
        let mut out = CompactionOutcome {
            files_before: before.len(),
            bytes_before: before.iter().map(|f| f.file.file_size_in_bytes()).sum(),
            ..Default::default()
        };
        for group in &self.groups {
            match self.rewrite_group(table, group).await {
                Ok((snapshot, added, added_bytes)) => {
                    out.groups_committed += 1;
                    out.snapshot_ids.extend(snapshot);
                    out.files_removed += group.files.len();
                    out.bytes_removed += group.bytes;
                    out.files_added += added;
                    out.bytes_added += added_bytes;
                }
                Err(e) if e.is_conflict() => {
                    out.groups_aborted += 1;
                    out.aborted.push(e.to_string());
                    table.refresh().await?;
                }
                Err(e) => return Err(e),
            }
        }
        let after = table.live_files().await?;
        out.files_after = after.len();
        out.bytes_after = after.iter().map(|f| f.file.file_size_in_bytes()).sum();
        out.seconds = started.elapsed().as_secs_f64();
        Ok(out)
    }

    async fn rewrite_group(&self, table: &mut Table, group: &CompactionGroup) -> Result<(Option<i64>, usize, u64)> {
        let name = table.name();
        let file_io = table.catalog().file_io().clone();
        // Cheap early exit before reading anything: the commit re-checks this anyway.
        let live = table.live_files().await?;
        let live_paths: std::collections::HashSet<&str> = live.iter().map(|f| f.file.file_path()).collect();
        if let Some(gone) = group.inputs.iter().find(|f| !live_paths.contains(f.file.file_path())) {
            return Err(Error::Conflict {
                table: name,
                reason: format!(
                    "data file {} of a compaction group was removed or rewritten by a concurrent commit; the group is skipped",
                    gone.file.file_path()
                ),
            });
        }
        let schema = table.metadata().current_schema().clone();
        let refs: Vec<&LiveFile> = group.inputs.iter().collect();
        // Read and write overlap (decoding on one core while the writer encodes on the other)
        // and memory holds a few batches, not the group (sorted groups are the exception: the
        // writer needs every row first).
        let rows = std::sync::atomic::AtomicU64::new(0);
        let batches = read_files_ahead(&name, table.metadata(), &file_io, &schema, &refs, 4)?.inspect_ok(|b| {
            rows.fetch_add(b.num_rows() as u64, std::sync::atomic::Ordering::Relaxed);
        });
        let target = usize::try_from(self.target_file_size).unwrap_or(usize::MAX);
        let added = match write_data_stream_sized(table.metadata(), schema, &file_io, batches, target).await {
            Ok(added) => added,
            Err(e) => {
                // A concurrent rewrite plus snapshot expiry can delete an input under us.
                table.refresh().await?;
                let live = table.live_files().await?;
                let still: std::collections::HashSet<&str> = live.iter().map(|f| f.file.file_path()).collect();
                if group.inputs.iter().all(|f| still.contains(f.file.file_path())) {
                    return Err(e);
                }
                return Err(Error::Conflict {
                    table: name,
                    reason: format!("an input file of a compaction group disappeared while it was read ({e})"),
                });
            }
        };
        let rows = rows.into_inner();
        if rows != group.records {
            for f in &added {
                let _ = file_io.delete(f.file_path()).await;
            }
            return Err(Error::Invalid {
                table: name,
                detail: format!(
                    "compaction read {rows} rows from files whose manifests record {}; the table metadata is inconsistent, nothing was committed",
                    group.records
                ),
            });
        }
        let added_count = added.len();
        let added_bytes: u64 = added.iter().map(|f| f.file_size_in_bytes()).sum();
        let added_paths: Vec<String> = added.iter().map(|f| f.file_path().to_string()).collect();
        let pending = PendingCommit {
            operation: Operation::Replace,
            action: "compaction",
            added,
            removed: group.inputs.clone(),
            new_schema: None,
            // The snapshot the inputs were read from: every later commit is checked against them.
            base_snapshot_id: self.snapshot_id,
            base_schema_id: table.metadata().current_schema_id(),
            conflict: ConflictCheck::RemovedFilesLive,
            extra_summary: vec![(
                "mesh.compaction-strategy".to_string(),
                match self.strategy {
                    CompactionStrategy::Binpack => "binpack",
                    CompactionStrategy::Sort => "sort",
                }
                .to_string(),
            )],
            expect_summary: vec![],
        };
        // Losing the compare-and-swap to a busy writer is not a reason to give up while every
        // input is still live: the written files stay valid, only the commit is retried.
        let mut rounds = 0;
        loop {
            rounds += 1;
            match table.commit(pending.clone()).await {
                Ok(c) => return Ok((c.snapshot_id, added_count, added_bytes)),
                Err(e) if e.is_conflict() => {
                    table.refresh().await?;
                    let live = table.live_files().await?;
                    let live_paths: std::collections::HashSet<&str> = live.iter().map(|f| f.file.file_path()).collect();
                    let inputs_live = group.inputs.iter().all(|f| live_paths.contains(f.file.file_path()));
                    if inputs_live && rounds < MAX_COMMIT_ROUNDS {
                        continue;
                    }
                    // Never committed: the new files are garbage right away.
                    for p in &added_paths {
                        let _ = file_io.delete(p).await;
                    }
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
    }
}
