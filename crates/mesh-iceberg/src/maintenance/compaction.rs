//! Bin-pack (or sort) compaction of small data files: file groups are rewritten in parallel and
//! committed as one `replace` snapshot (or one per group with partial progress), like Iceberg's
//! `rewrite_data_files` with `max-concurrent-file-group-rewrites` and `partial-progress.enabled`.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use futures::{StreamExt, TryStreamExt};
use iceberg::io::FileIO;
use iceberg::spec::{DataFile, Operation, PartitionKey, TableMetadata};
use tokio::task::JoinSet;

use super::{FileKind, PlannedFile};
use crate::commit::{ConflictCheck, LiveFile, PendingCommit};
use crate::error::{Error, Result};
use crate::parallel_write::write_parallel;
use crate::read::literal_json;
use crate::scan::{read_files_ahead, specs};
use crate::table::Table;
use crate::write::{sort_batches, sort_keys, target_file_size, write_data_stream_sized};

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
    /// Groups read and written at the same time (`max-concurrent-file-group-rewrites`); each
    /// holds a few batches in memory (a sorted group: its rows). Default: the machine's cores.
    pub max_concurrency: usize,
    /// Commit each group as soon as it is written (`partial-progress.enabled`) instead of
    /// every group in one snapshot: a failure later keeps what was done, at the price of one
    /// snapshot per group.
    pub partial_progress: bool,
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
            max_concurrency: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            partial_progress: false,
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
    /// Groups rewritten at the same time.
    pub max_concurrency: usize,
    /// Whether each group commits on its own.
    pub partial_progress: bool,
    /// Live data files of the table.
    pub files_total: usize,
    /// Their bytes.
    pub bytes_total: u64,
    /// Groups to rewrite, committed together (each on its own with `partial_progress`).
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
    /// New snapshots, in commit order: one, or one per group with `partial_progress`.
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
    /// Most groups being read and written at the same moment (at most `max_concurrency`).
    pub peak_concurrency: usize,
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
            max_concurrency: opts.max_concurrency.max(1),
            partial_progress: opts.partial_progress,
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

    /// Rewrite every group, at most `max_concurrency` at a time, and commit them together as
    /// one `replace` snapshot (or, with `partial_progress`, each group as soon as it is
    /// written). A group whose inputs are no longer all live aborts (counted in the outcome,
    /// its new files deleted) and the others still commit; other errors stop the compaction
    /// and nothing of it is committed (with `partial_progress`: nothing more).
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
        // Cheap early exit before reading anything: the commit re-checks this anyway.
        let live: HashSet<&str> = before.iter().map(|f| f.file.file_path()).collect();
        let mut todo = Vec::new();
        for group in &self.groups {
            match group.inputs.iter().find(|f| !live.contains(f.file.file_path())) {
                Some(gone) => {
                    out.groups_aborted += 1;
                    out.aborted.push(
                        Error::Conflict {
                            table: name.clone(),
                            reason: format!(
                                "data file {} of a compaction group was removed or rewritten by a concurrent commit; the group is skipped",
                                gone.file.file_path()
                            ),
                        }
                        .to_string(),
                    );
                }
                None => todo.push(group),
            }
        }
        let meta = Arc::new(table.metadata().clone());
        let file_io = table.catalog().file_io().clone();
        let target = usize::try_from(self.target_file_size).unwrap_or(usize::MAX);
        // Groups are independent until the commit: each is read and written by a task of its
        // own, so several groups use several cores. Dropping the set (on an error) aborts the
        // rest; their partial files are unreferenced, and orphan cleanup removes them.
        let mut running: JoinSet<(usize, Result<Written>)> = JoinSet::new();
        let mut next = 0;
        let mut written: Vec<Written> = Vec::new();
        let concurrency = self.max_concurrency.max(1);
        loop {
            while running.len() < concurrency && next < todo.len() {
                let (meta, file_io, name) = (meta.clone(), file_io.clone(), name.clone());
                let group = CompactionGroup::clone(todo[next]);
                running.spawn(async move {
                    let res = rewrite_group(&name, &meta, &file_io, group, target).await;
                    (next, res)
                });
                next += 1;
            }
            out.peak_concurrency = out.peak_concurrency.max(running.len());
            let Some(joined) = running.join_next().await else {
                break;
            };
            let (i, res) = joined.map_err(|e| Error::Invalid {
                table: name.clone(),
                detail: format!("a compaction task failed: {e}"),
            })?;
            let w = match res {
                Ok(w) => w,
                Err(e) if e.is_conflict() => {
                    out.groups_aborted += 1;
                    out.aborted.push(e.to_string());
                    continue;
                }
                Err(e) => {
                    // A concurrent rewrite plus snapshot expiry can delete an input under us:
                    // that group aborts; any other failure stops the compaction.
                    table.refresh().await?;
                    let live = table.live_files().await?;
                    let still: HashSet<&str> = live.iter().map(|f| f.file.file_path()).collect();
                    if todo[i].inputs.iter().all(|f| still.contains(f.file.file_path())) {
                        delete_files(&file_io, written.iter().flat_map(|w| w.paths.iter())).await;
                        return Err(e);
                    }
                    out.groups_aborted += 1;
                    out.aborted.push(
                        Error::Conflict {
                            table: name.clone(),
                            reason: format!("an input file of a compaction group disappeared while it was read ({e})"),
                        }
                        .to_string(),
                    );
                    continue;
                }
            };
            if self.partial_progress {
                self.commit_groups(table, vec![w], &mut out).await?;
            } else {
                written.push(w);
            }
        }
        if !written.is_empty() {
            self.commit_groups(table, written, &mut out).await?;
        }
        let after = table.live_files().await?;
        out.files_after = after.len();
        out.bytes_after = after.iter().map(|f| f.file.file_size_in_bytes()).sum();
        out.seconds = started.elapsed().as_secs_f64();
        Ok(out)
    }

    /// Commits written groups as one `replace` snapshot. Losing the compare-and-swap to a busy
    /// writer is not a reason to give up: groups whose inputs are still live are committed
    /// again (their files stay valid), the others abort and their files are deleted.
    async fn commit_groups(
        &self,
        table: &mut Table,
        mut groups: Vec<Written>,
        out: &mut CompactionOutcome,
    ) -> Result<()> {
        let mut rounds = 0;
        loop {
            rounds += 1;
            let pending = PendingCommit {
                operation: Operation::Replace,
                action: "compaction",
                added: groups.iter().flat_map(|g| g.added.iter().cloned()).collect(),
                removed: groups.iter().flat_map(|g| g.group.inputs.iter().cloned()).collect(),
                new_schema: None,
                // The snapshot the inputs were read from: every later commit is checked against them.
                base_snapshot_id: self.snapshot_id,
                base_schema_id: table.metadata().current_schema_id(),
                conflict: ConflictCheck::RemovedFilesLive,
                extra_summary: vec![
                    (
                        "mesh.compaction-strategy".to_string(),
                        match self.strategy {
                            CompactionStrategy::Binpack => "binpack",
                            CompactionStrategy::Sort => "sort",
                        }
                        .to_string(),
                    ),
                    ("mesh.compaction-groups".to_string(), groups.len().to_string()),
                ],
                expect_summary: vec![],
            };
            match table.commit(pending).await {
                Ok(c) => {
                    out.groups_committed += groups.len();
                    out.snapshot_ids.extend(c.snapshot_id);
                    for g in &groups {
                        out.files_removed += g.group.files.len();
                        out.bytes_removed += g.group.bytes;
                        out.files_added += g.added.len();
                        out.bytes_added += g.added.iter().map(|f| f.file_size_in_bytes()).sum::<u64>();
                    }
                    return Ok(());
                }
                Err(e) if e.is_conflict() => {
                    table.refresh().await?;
                    let live = table.live_files().await?;
                    let live_paths: HashSet<&str> = live.iter().map(|f| f.file.file_path()).collect();
                    let (keep, stale): (Vec<Written>, Vec<Written>) = groups
                        .into_iter()
                        .partition(|g| g.group.inputs.iter().all(|f| live_paths.contains(f.file.file_path())));
                    let give_up = rounds >= MAX_COMMIT_ROUNDS;
                    for g in stale.iter().chain(if give_up { keep.iter() } else { [].iter() }) {
                        // Never committed: the new files are garbage right away.
                        delete_files(&table.catalog().file_io().clone(), g.paths.iter()).await;
                        out.groups_aborted += 1;
                        out.aborted.push(e.to_string());
                    }
                    if give_up || keep.is_empty() {
                        return Ok(());
                    }
                    groups = keep;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A group's new files, written but not committed.
struct Written {
    group: CompactionGroup,
    added: Vec<DataFile>,
    paths: Vec<String>,
}

async fn delete_files(file_io: &FileIO, paths: impl Iterator<Item = &String>) {
    for p in paths {
        let _ = file_io.delete(p).await;
    }
}

/// Reads a group's files and writes them as new files of at most about `target` bytes. Reading
/// and writing overlap (decoding in one task while this one encodes) and memory holds a few
/// batches, not the group (sorted groups are the exception: the writer needs every row first).
async fn rewrite_group(
    name: &str,
    meta: &TableMetadata,
    file_io: &FileIO,
    group: CompactionGroup,
    target: usize,
) -> Result<Written> {
    let schema = meta.current_schema().clone();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    // One reader per core, each over every `threads`-th file: decoding a file happens on the
    // task that reads it, so a single reader decodes on one core while the writer encodes on
    // all of them. Rows arrive interleaved; a group keeps no order unless the table has a
    // sort order, and then its rows are sorted below.
    let readers = threads.min(group.inputs.len()).max(1);
    let mut streams = Vec::with_capacity(readers);
    for r in 0..readers {
        let refs: Vec<&LiveFile> = group.inputs.iter().skip(r).step_by(readers).collect();
        streams.push(read_files_ahead(name, meta, file_io, &schema, &refs, 4)?.boxed());
    }
    let rows = AtomicU64::new(0);
    let batches = futures::stream::select_all(streams).inspect_ok(|b| {
        rows.fetch_add(b.num_rows() as u64, Ordering::Relaxed);
    });
    let spec = meta.default_partition_spec();
    let added = if group.spec_id == spec.spec_id() {
        // Every row is in the group's partition of the current spec: one writer, its row
        // groups encoded in parallel (encoding, not decoding, is most of the work).
        let partition = (!spec.is_unpartitioned()).then(|| {
            PartitionKey::new(
                spec.as_ref().clone(),
                schema.clone(),
                group.inputs[0].file.partition().clone(),
            )
        });
        let keys = sort_keys(meta, &schema);
        if keys.is_empty() {
            write_parallel(meta, &schema, file_io, partition, batches, target, threads).await?
        } else {
            let all: Vec<RecordBatch> = batches.try_collect().await?;
            let sorted = futures::stream::iter(sort_batches(&all, &keys)?.into_iter().map(Ok));
            write_parallel(meta, &schema, file_io, partition, sorted, target, threads).await?
        }
    } else {
        // Files of an older spec: the writer splits their rows by the current one.
        write_data_stream_sized(meta, schema, file_io, batches, target).await?
    };
    let paths: Vec<String> = added.iter().map(|f| f.file_path().to_string()).collect();
    let rows = rows.into_inner();
    if rows != group.records {
        delete_files(file_io, paths.iter()).await;
        return Err(Error::Invalid {
            table: name.to_string(),
            detail: format!(
                "compaction read {rows} rows from files whose manifests record {}; the table metadata is inconsistent, nothing was committed",
                group.records
            ),
        });
    }
    Ok(Written { group, added, paths })
}
