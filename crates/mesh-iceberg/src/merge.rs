//! Merge (upsert by key) whose source may be larger than memory.
//!
//! The source is a [`MergeSource`]: the rows a query returned, held under the session's
//! DataFusion memory pool (as memory that can spill) and written to a temporary Arrow IPC
//! file (LZ4) of the runtime's disk manager as soon as the pool refuses them or they pass a
//! sixteenth of the pool ([`IN_MEMORY_SHARE`]: once collected, the source gives nothing back
//! until the merge has read it, so it must not sit on what other queries' operators need to
//! spill with). The merge reads it twice, one batch at a time, and holds only what it must:
//!
//! 1. **Keys.** One entry per distinct key: its row-format bytes (cast to the table's types),
//!    the position of the row that wins its duplicates and, with `keep_latest`, the winner's
//!    ordering value. That index is reserved in the same pool as memory that cannot spill
//!    (a few tens of bytes a key; the pool refuses it with DataFusion's resources-exhausted
//!    error when it does not fit). Under `on_duplicate = error` the first key repeated in
//!    source order fails the merge here, as before. The distinct values of each key column
//!    (sorted Arrow arrays) prune the table's files, as before, and are reserved too.
//! 2. **Matching.** Each data file whose statistics allow a source key is read, key columns
//!    only, and looked up in the index: files holding a key are rewritten, and each key
//!    counts the target rows it matched.
//! 3. **Writing.** The kept rows of those files, then the winning source rows that are not
//!    deletions (projected onto the table's columns), stream through the table's write order
//!    (a DataFusion sort spilling under the same pool) into new data files. The source is
//!    released batch by batch as this last read goes. One commit, as before: files removed,
//!    files added and the job state in one snapshot.
//!
//! The results are those of the in-memory merge this replaces: the same winner per key (the
//! greatest ordering value, the later row on ties), the same duplicate-key error, the delete
//! condition evaluated on the winning rows, the same counts.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch};
use arrow::datatypes::SchemaRef as ArrowSchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow::ipc::CompressionType;
use arrow::row::{RowConverter, SortField};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::TableProvider;
use datafusion::common::utils::memory::get_record_batch_memory_size;
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::RefCountedTempFile;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryLimit, MemoryReservation};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SendableRecordBatchStream, SessionStateBuilder, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use futures::{Stream, StreamExt, TryStreamExt};
use hashbrown::hash_table::{Entry, HashTable};
use iceberg::spec::{Operation, PartitionSpecRef, Type};

use crate::commit::{ConflictCheck, LiveFile};
use crate::conform::{arrow_schema, conform_batch};
use crate::error::{Error, Result};
use crate::scan::{read_columns_ahead, read_files_ahead, referenced_columns, specs, Filter};
use crate::stats::KeyRanges;
use crate::table::{DuplicateKeys, MergeOptions, MergeResult, Table};

/// The part of a finite memory pool a merge source may hold; a larger source goes to disk.
pub(crate) const IN_MEMORY_SHARE: usize = 16;

/// A merge's source rows, held under a DataFusion memory pool and spilled to a temporary file
/// when the pool refuses them (see the module documentation). Readable again as a table
/// ([`MergeSource::table_provider`], e.g. to check the rows before they are merged) until
/// [`Table::merge_source`] consumes it; dropping it frees the memory and deletes the file.
pub struct MergeSource {
    held: Arc<Held>,
}

struct Held {
    schema: ArrowSchemaRef,
    /// The runtime and configuration of the session the rows were computed in: its pool and
    /// disk manager hold them, and the merge's write runs in them. (Not the session itself: its
    /// catalog may hold a table over these rows, and the two would keep each other alive.)
    runtime: Arc<RuntimeEnv>,
    config: SessionConfig,
    /// The rows, when they fit the pool (then `file` is `None`).
    batches: Vec<RecordBatch>,
    /// All the rows, in order, when they did not.
    file: Option<RefCountedTempFile>,
    rows: usize,
    /// What `batches` take, in the pool, as memory that can spill.
    reservation: MemoryReservation,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeSource")
            .field("rows", &self.rows)
            .field("batches", &self.batches.len())
            .field("spilled", &self.file.as_ref().map(|f| f.path().to_path_buf()))
            .field("reserved", &self.reservation.size())
            .finish()
    }
}

impl std::fmt::Debug for MergeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.held.fmt(f)
    }
}

impl MergeSource {
    /// Runs `df` and holds its rows in its session's memory pool, spilling them all to a
    /// temporary file of the session's disk manager once the pool refuses a batch. Without a
    /// disk manager the refusal is the error (DataFusion's resources exhausted). An error of
    /// the query itself comes back as [`Error::DataFusion`].
    pub async fn collect(df: DataFrame) -> Result<MergeSource> {
        let (state, plan) = df.into_parts();
        let (runtime, config) = (state.runtime_env().clone(), state.config().clone());
        let mut stream = DataFrame::new(state, plan).execute_stream().await?;
        let mut c = Collector::new(stream.schema(), runtime, config);
        while let Some(batch) = stream.try_next().await? {
            c.push(batch)?;
        }
        c.finish()
    }

    /// Rows already in memory, in a default session (a pool without limit).
    pub fn from_batches(schema: ArrowSchemaRef, batches: Vec<RecordBatch>) -> Result<MergeSource> {
        let state = SessionContext::new().state();
        let mut c = Collector::new(schema, state.runtime_env().clone(), state.config().clone());
        for b in batches {
            c.push(b)?;
        }
        c.finish()
    }

    /// Rows held.
    pub fn num_rows(&self) -> usize {
        self.held.rows
    }

    /// The rows' schema.
    pub fn schema(&self) -> ArrowSchemaRef {
        self.held.schema.clone()
    }

    /// Whether the rows went to a temporary file (the pool refused to hold them).
    pub fn spilled(&self) -> bool {
        self.held.file.is_some()
    }

    /// Bytes of the rows held in the memory pool (0 once spilled).
    pub fn reserved(&self) -> usize {
        self.held.reservation.size()
    }

    /// A DataFusion table over the rows, readable any number of times while this source lives.
    pub fn table_provider(&self) -> Result<Arc<dyn TableProvider>> {
        let parts = if self.held.file.is_some() {
            1
        } else {
            self.held.config.target_partitions().min(self.held.batches.len()).max(1)
        };
        let partitions: Vec<Arc<dyn PartitionStream>> = (0..parts)
            .map(|part| {
                Arc::new(SourcePart {
                    held: self.held.clone(),
                    part,
                    parts,
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        Ok(Arc::new(StreamingTable::try_new(self.held.schema.clone(), partitions)?))
    }

    fn stream(&self) -> SendableRecordBatchStream {
        self.held.read(0, 1)
    }

    /// Every row once more, releasing each in-memory batch from the pool as it is read (when
    /// nothing else still reads the rows).
    fn into_stream(self) -> SendableRecordBatchStream {
        match Arc::try_unwrap(self.held) {
            Ok(held) if held.file.is_none() => {
                let Held {
                    schema,
                    batches,
                    reservation,
                    ..
                } = held;
                let queue: VecDeque<RecordBatch> = batches.into();
                let stream = futures::stream::unfold((queue, reservation), |(mut queue, reservation)| async move {
                    let batch = queue.pop_front()?;
                    reservation.shrink(get_record_batch_memory_size(&batch).min(reservation.size()));
                    Some((Ok(batch), (queue, reservation)))
                });
                Box::pin(RecordBatchStreamAdapter::new(schema, stream))
            }
            Ok(held) => Arc::new(held).read(0, 1),
            Err(shared) => shared.read(0, 1),
        }
    }
}

impl Held {
    /// Partition `part` of `parts` (every `parts`-th batch) of the rows held in memory, or all
    /// the rows from the file.
    fn read(self: &Arc<Self>, part: usize, parts: usize) -> SendableRecordBatchStream {
        let schema = self.schema.clone();
        match &self.file {
            None => {
                let batches: Vec<_> = self
                    .batches
                    .iter()
                    .skip(part)
                    .step_by(parts.max(1))
                    .cloned()
                    .map(Ok)
                    .collect();
                Box::pin(RecordBatchStreamAdapter::new(schema, futures::stream::iter(batches)))
            }
            Some(file) => Box::pin(RecordBatchStreamAdapter::new(schema, read_spill(file.clone()))),
        }
    }
}

#[derive(Debug)]
struct SourcePart {
    held: Arc<Held>,
    part: usize,
    parts: usize,
}

impl PartitionStream for SourcePart {
    fn schema(&self) -> &ArrowSchemaRef {
        &self.held.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        self.held.read(self.part, self.parts)
    }
}

/// Builds a [`MergeSource`] batch by batch.
struct Collector {
    /// Most bytes held in memory ([`IN_MEMORY_SHARE`]).
    cap: usize,
    schema: ArrowSchemaRef,
    runtime: Arc<RuntimeEnv>,
    config: SessionConfig,
    batches: Vec<RecordBatch>,
    spill: Option<SpillWriter>,
    rows: usize,
    reservation: MemoryReservation,
}

impl Collector {
    fn new(schema: ArrowSchemaRef, runtime: Arc<RuntimeEnv>, config: SessionConfig) -> Self {
        let reservation = MemoryConsumer::new("merge source")
            .with_can_spill(true)
            .register(&runtime.memory_pool);
        let cap = match runtime.memory_pool.memory_limit() {
            MemoryLimit::Finite(n) => n / IN_MEMORY_SHARE,
            MemoryLimit::Infinite | MemoryLimit::Unknown => usize::MAX,
        };
        Self {
            cap,
            schema,
            runtime,
            config,
            batches: Vec::new(),
            spill: None,
            rows: 0,
            reservation,
        }
    }

    fn push(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.rows += batch.num_rows();
        if let Some(w) = &mut self.spill {
            return w.write(&batch);
        }
        let size = get_record_batch_memory_size(&batch);
        let disk = self.runtime.disk_manager.tmp_files_enabled();
        // Without a disk the pool alone decides (its refusal is the error).
        let held = if disk && self.reservation.size() + size > self.cap {
            false
        } else {
            match self.reservation.try_grow(size) {
                Ok(()) => true,
                Err(refused) if !disk => return Err(refused.into()),
                Err(_) => false,
            }
        };
        if !held {
            let mut w = SpillWriter::create(&self.runtime, &self.schema)?;
            for b in self.batches.drain(..) {
                w.write(&b)?;
            }
            w.write(&batch)?;
            tracing::debug!(rows = self.rows, "merge source spilled to {}", w.file.path().display());
            self.reservation.free();
            self.spill = Some(w);
            return Ok(());
        }
        self.batches.push(batch);
        Ok(())
    }

    fn finish(self) -> Result<MergeSource> {
        let file = match self.spill {
            Some(w) => Some(w.finish()?),
            None => None,
        };
        Ok(MergeSource {
            held: Arc::new(Held {
                schema: self.schema,
                runtime: self.runtime,
                config: self.config,
                batches: self.batches,
                file,
                rows: self.rows,
                reservation: self.reservation,
            }),
        })
    }
}

/// An Arrow IPC stream (LZ4-compressed) in a temporary file of the disk manager, which counts
/// its size against the manager's limit and deletes it when the last reference goes.
struct SpillWriter {
    file: RefCountedTempFile,
    writer: StreamWriter<BufWriter<File>>,
}

impl SpillWriter {
    fn create(runtime: &Arc<RuntimeEnv>, schema: &ArrowSchemaRef) -> Result<Self> {
        let file = runtime.disk_manager.create_tmp_file("merge source")?;
        let out = BufWriter::new(File::create(file.path())?);
        let options = IpcWriteOptions::default().try_with_compression(Some(CompressionType::LZ4_FRAME))?;
        let writer = StreamWriter::try_new_with_options(out, schema, options)?;
        Ok(Self { file, writer })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch)?;
        self.file.update_disk_usage()?;
        Ok(())
    }

    fn finish(mut self) -> Result<RefCountedTempFile> {
        self.writer.finish()?;
        self.writer.into_inner()?;
        self.file.update_disk_usage()?;
        Ok(self.file)
    }
}

/// The batches of a spill file, read by a blocking task at most two batches ahead.
fn read_spill(file: RefCountedTempFile) -> impl Stream<Item = datafusion::error::Result<RecordBatch>> + Send + 'static {
    futures::stream::once(async move {
        let (tx, rx) = tokio::sync::mpsc::channel::<datafusion::error::Result<RecordBatch>>(2);
        tokio::task::spawn_blocking(move || {
            let reader = File::open(file.path())
                .map_err(DataFusionError::from)
                .and_then(|f| StreamReader::try_new(BufReader::new(f), None).map_err(DataFusionError::from));
            let reader = match reader {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            for batch in reader {
                let batch = batch.map_err(DataFusionError::from);
                let failed = batch.is_err();
                // A closed channel: the reader stopped (it failed or had enough).
                if tx.blocking_send(batch).is_err() || failed {
                    return;
                }
            }
            // The file lives until it has been read.
            drop(file);
        });
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
    })
    .flatten()
}

/// Row-format values, one per entry: back to back when every value has the same length (the
/// row format of fixed-width types), else with their offsets.
struct Values {
    bytes: Vec<u8>,
    layout: Layout,
}

enum Layout {
    /// Every value is `width` bytes.
    Fixed(usize),
    /// Value `i` is `bytes[start[i]..start[i] + len[i]]`.
    Variable { start: Vec<usize>, len: Vec<u32> },
}

impl Values {
    /// Values of row-format columns of these types: fixed width when they all are (1 byte of
    /// validity before each value).
    fn for_types<'a>(types: impl IntoIterator<Item = &'a arrow::datatypes::DataType>) -> Self {
        let width: Option<usize> = types.into_iter().map(|t| t.primitive_width().map(|w| w + 1)).sum();
        Self {
            bytes: Vec::new(),
            layout: match width {
                Some(w) => Layout::Fixed(w),
                None => Layout::Variable {
                    start: Vec::new(),
                    len: Vec::new(),
                },
            },
        }
    }

    fn get(&self, i: usize) -> &[u8] {
        match &self.layout {
            Layout::Fixed(w) => &self.bytes[i * w..(i + 1) * w],
            Layout::Variable { start, len } => &self.bytes[start[i]..start[i] + len[i] as usize],
        }
    }

    fn push(&mut self, value: &[u8]) -> Result<()> {
        match &mut self.layout {
            Layout::Fixed(w) => {
                if value.len() != *w {
                    return Err(Error::Iceberg(iceberg::Error::new(
                        iceberg::ErrorKind::Unexpected,
                        format!("a merge key of {} bytes where {w} were expected", value.len()),
                    )));
                }
            }
            Layout::Variable { start, len } => {
                start.push(self.bytes.len());
                len.push(u32::try_from(value.len()).unwrap_or(u32::MAX));
            }
        }
        self.bytes.extend_from_slice(value);
        Ok(())
    }

    /// Replaces value `i` (in place when it has the same length).
    fn set(&mut self, i: usize, value: &[u8]) -> Result<()> {
        match &mut self.layout {
            Layout::Fixed(w) if value.len() == *w => {
                self.bytes[i * *w..(i + 1) * *w].copy_from_slice(value);
                Ok(())
            }
            Layout::Fixed(w) => Err(Error::Iceberg(iceberg::Error::new(
                iceberg::ErrorKind::Unexpected,
                format!("an ordering value of {} bytes where {w} were expected", value.len()),
            ))),
            Layout::Variable { start, len } => {
                if value.len() == len[i] as usize {
                    self.bytes[start[i]..start[i] + value.len()].copy_from_slice(value);
                } else {
                    start[i] = self.bytes.len();
                    len[i] = u32::try_from(value.len()).unwrap_or(u32::MAX);
                    self.bytes.extend_from_slice(value);
                }
                Ok(())
            }
        }
    }

    fn size(&self) -> usize {
        self.bytes.capacity()
            + match &self.layout {
                Layout::Fixed(_) => 0,
                Layout::Variable { start, len } => start.capacity() * 8 + len.capacity() * 4,
            }
    }

    fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        if let Layout::Variable { start, len } = &mut self.layout {
            start.shrink_to_fit();
            len.shrink_to_fit();
        }
    }
}

/// The distinct keys of the source (see the module documentation).
struct KeyIndex {
    hasher: hashbrown::DefaultHashBuilder,
    /// Entry numbers, found by the hash of their key bytes.
    table: HashTable<u32>,
    /// Row-format bytes of entry `i`'s key.
    keys: Values,
    /// Source position of the row that wins entry `i`'s key.
    pos: Vec<u64>,
    /// Target rows with entry `i`'s key.
    matched: Vec<u32>,
    /// `keep_latest`: the winner's ordering value (row format), until the winners are known.
    order: Option<Values>,
}

impl KeyIndex {
    fn new(keys: &ArrowSchemaRef, order: Option<&arrow::datatypes::DataType>) -> Self {
        Self {
            hasher: hashbrown::DefaultHashBuilder::default(),
            table: HashTable::new(),
            keys: Values::for_types(keys.fields().iter().map(|f| f.data_type())),
            pos: Vec::new(),
            matched: Vec::new(),
            order: order.map(|t| Values::for_types([t])),
        }
    }

    fn len(&self) -> usize {
        self.pos.len()
    }

    fn key(&self, i: usize) -> &[u8] {
        self.keys.get(i)
    }

    /// Bytes held.
    fn size(&self) -> usize {
        self.keys.size()
            + self.table.allocation_size()
            + self.pos.capacity() * 8
            + self.matched.capacity() * 4
            + self.order.as_ref().map_or(0, Values::size)
    }

    /// Once every row has been offered: drops the ordering values and the spare capacity.
    fn seal(&mut self) {
        self.order = None;
        self.keys.shrink_to_fit();
        self.pos.shrink_to_fit();
        self.matched.shrink_to_fit();
        let Self {
            hasher, table, keys, ..
        } = self;
        table.shrink_to_fit(|&i| std::hash::BuildHasher::hash_one(&*hasher, keys.get(i as usize)));
    }

    fn find(&self, key: &[u8]) -> Option<usize> {
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, key);
        self.table
            .find(hash, |&i| self.keys.get(i as usize) == key)
            .map(|&i| i as usize)
    }

    /// Offers the source row at `pos` with `key` (and its ordering value under `keep_latest`).
    /// Returns false when the key is already there and there is no ordering to decide by.
    fn offer(&mut self, table_name: &str, key: &[u8], pos: u64, order: Option<&[u8]>) -> Result<bool> {
        let Self {
            hasher,
            table,
            keys,
            pos: positions,
            matched,
            order: orders,
        } = self;
        let hash = std::hash::BuildHasher::hash_one(&*hasher, key);
        let entry = table.entry(
            hash,
            |&i| keys.get(i as usize) == key,
            |&i| std::hash::BuildHasher::hash_one(&*hasher, keys.get(i as usize)),
        );
        match entry {
            Entry::Occupied(e) => {
                let i = *e.get() as usize;
                let (Some(orders), Some(value)) = (orders.as_mut(), order) else {
                    return Ok(false);
                };
                // The greatest ordering value wins; a later row wins a tie, as the last event does.
                if value >= orders.get(i) {
                    orders.set(i, value)?;
                    positions[i] = pos;
                }
                Ok(true)
            }
            Entry::Vacant(v) => {
                let i = u32::try_from(positions.len()).map_err(|_| Error::Invalid {
                    table: table_name.to_string(),
                    detail: "a merge source has more than 2^32 distinct keys".into(),
                })?;
                keys.push(key)?;
                v.insert(i);
                positions.push(pos);
                matched.push(0);
                if let (Some(orders), Some(value)) = (orders.as_mut(), order) {
                    orders.push(value)?;
                }
                Ok(true)
            }
        }
    }
}

/// Inserted, updated and deleted rows, counted as the write reads the source.
#[derive(Default)]
struct Counts {
    inserted: AtomicU64,
    updated: AtomicU64,
    deleted: AtomicU64,
}

/// A mesh error through a DataFusion stream.
fn to_df(e: Error) -> DataFusionError {
    match e {
        Error::DataFusion(e) => *e,
        e => DataFusionError::External(Box::new(e)),
    }
}

/// A DataFusion error, or the mesh error a stream of ours carried through it.
pub(crate) fn from_df(e: DataFusionError) -> Error {
    match e {
        DataFusionError::External(inner) => match inner.downcast::<Error>() {
            Ok(mine) => *mine,
            Err(other) => Error::DataFusion(Box::new(DataFusionError::External(other))),
        },
        DataFusionError::Context(what, inner) => match from_df(*inner) {
            Error::DataFusion(e) => Error::DataFusion(Box::new(DataFusionError::Context(what, e))),
            mine => mine,
        },
        e => Error::DataFusion(Box::new(e)),
    }
}

/// Keys of a source batch: its key columns cast to the table's types.
#[derive(Clone)]
struct KeyShape {
    table: String,
    /// Key columns in the source.
    source_idx: Vec<usize>,
    /// The key columns as the table holds them.
    target: ArrowSchemaRef,
}

impl KeyShape {
    fn columns(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        let keys = conform_batch(&self.table, &batch.project(&self.source_idx)?, &self.target)?;
        Ok(keys.columns().to_vec())
    }

    fn converter(&self) -> Result<RowConverter> {
        Ok(RowConverter::new(
            self.target
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?)
    }
}

impl Table {
    /// [`Table::merge`] from a [`MergeSource`], which may be larger than memory (see the
    /// module documentation of `merge.rs`): the source stays in its pool or spill file, the
    /// distinct keys are held in that pool, and the rows are written through a spilling sort.
    pub async fn merge_source(&mut self, source: MergeSource, opts: &MergeOptions) -> Result<MergeResult> {
        let name = self.name();
        if opts.keys.is_empty() {
            return Err(Error::Invalid {
                table: name,
                detail: "merge needs at least one key column".into(),
            });
        }
        if source.num_rows() == 0 {
            return Ok(MergeResult::nothing());
        }
        // Duplicates and deletions are decided on the source as given (`unprojected`), so that
        // control columns (an `op` flag, an ordering `lsn`) need not be table columns; the
        // rows written are the source without them.
        let unprojected = source.schema();
        let mut unprojected_key_idx = Vec::new();
        for k in &opts.keys {
            unprojected_key_idx.push(unprojected.index_of(k).map_err(|_| Error::Invalid {
                table: name.clone(),
                detail: format!("merge key {k} is missing from the merge source"),
            })?);
        }
        let order = match &opts.duplicates {
            DuplicateKeys::Error => None,
            DuplicateKeys::KeepLatestBy(col) => {
                let i = unprojected.index_of(col).map_err(|_| Error::Invalid {
                    table: name.clone(),
                    detail: format!("ordering column {col} for duplicate merge keys is not in the source"),
                })?;
                let converter = RowConverter::new(vec![SortField::new(unprojected.field(i).data_type().clone())])?;
                Some((i, converter))
            }
        };
        let delete = match &opts.delete_when {
            Some(sql) => Some(Filter::compile(&name, sql, unprojected.clone())?),
            None => None,
        };
        let current = self.metadata().current_schema().clone();
        let mut control: HashSet<String> = HashSet::new();
        if let Some(sql) = &opts.delete_when {
            control.extend(referenced_columns(&name, sql, unprojected.clone())?);
        }
        if let DuplicateKeys::KeepLatestBy(c) = &opts.duplicates {
            control.insert(c.clone());
        }
        control.retain(|c| current.field_by_name(c).is_none());
        let data_idx: Vec<usize> = unprojected
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| !control.contains(f.name()))
            .map(|(i, _)| i)
            .collect();
        let data_schema = unprojected.project(&data_idx)?;
        let (schema, new_schema) = self.write_schema(Some(&data_schema), opts.evolution)?;
        let target = arrow_schema(&schema)?;

        let mut key_idx = Vec::new();
        let mut key_meta = Vec::new();
        for k in &opts.keys {
            let field = schema.field_by_name(k).ok_or_else(|| Error::Invalid {
                table: name.clone(),
                detail: format!(
                    "merge key {k} is not a column of the table; columns are: {}",
                    target
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
            let Type::Primitive(p) = field.field_type.as_ref() else {
                return Err(Error::Invalid {
                    table: name.clone(),
                    detail: format!("merge key {k} must be a primitive column, it is {}", field.field_type),
                });
            };
            key_idx.push(target.index_of(k)?);
            key_meta.push((field.id, p.clone()));
        }
        let shape = KeyShape {
            table: name.clone(),
            source_idx: unprojected_key_idx.clone(),
            target: Arc::new(target.project(&key_idx)?),
        };
        let converter = shape.converter()?;

        // 1. The distinct keys and the row that wins each.
        let state = SessionStateBuilder::new()
            .with_config(source.held.config.clone())
            .with_runtime_env(source.held.runtime.clone())
            .with_default_features()
            .build();
        let reservation =
            MemoryConsumer::new(format!("merge keys of {name}")).register(&state.runtime_env().memory_pool);
        let order_type = order.as_ref().map(|(i, _)| unprojected.field(*i).data_type().clone());
        let mut index = KeyIndex::new(&shape.target, order_type.as_ref());
        let mut stream = source.stream();
        let mut at = 0u64;
        while let Some(batch) = stream.try_next().await? {
            let keys = converter.convert_columns(&shape.columns(&batch)?)?;
            let orders = match &order {
                Some((i, c)) => Some(c.convert_columns(&[batch.column(*i).clone()])?),
                None => None,
            };
            for ri in 0..batch.num_rows() {
                let value = orders.as_ref().map(|o| o.row(ri).data());
                if !index.offer(&name, keys.row(ri).data(), at + ri as u64, value)? {
                    let shown: Vec<String> = unprojected_key_idx
                        .iter()
                        .map(|i| {
                            ScalarValue::try_from_array(batch.column(*i), ri)
                                .map(|v| v.to_string())
                                .unwrap_or_default()
                        })
                        .zip(&opts.keys)
                        .map(|(v, k)| format!("{k}={v}"))
                        .collect();
                    return Err(Error::DuplicateKey {
                        table: name,
                        key: shown.join(", "),
                    });
                }
            }
            at += batch.num_rows() as u64;
            reservation.try_resize(index.size()).map_err(|e| {
                e.context(format!(
                    "the merge holds every distinct key of its source in the memory pool ({} keys so far)",
                    index.len()
                ))
            })?;
        }
        drop(stream);
        index.seal();
        reservation.try_resize(index.size())?;
        tracing::info!(
            source_rows = source.num_rows(),
            spilled = source.spilled(),
            keys = index.len(),
            key_bytes = index.size(),
            "merge source read: its distinct keys are held in the memory pool"
        );

        // The distinct values of each key column, to prune files by their statistics.
        const CHUNK: usize = 64 * 1024;
        let mut columns: Vec<Vec<ArrayRef>> = vec![Vec::new(); key_idx.len()];
        let mut held = 0;
        for start in (0..index.len()).step_by(CHUNK) {
            let end = (start + CHUNK).min(index.len());
            let parser = converter.parser();
            let arrays = converter.convert_rows((start..end).map(|i| parser.parse(index.key(i))))?;
            for (c, a) in columns.iter_mut().zip(arrays) {
                held += a.get_array_memory_size();
                c.push(a);
            }
            reservation.try_resize(index.size() + held)?;
        }
        let ranges = KeyRanges::new(
            key_meta
                .iter()
                .zip(columns)
                .map(|((id, p), arrays)| (*id, p.clone(), arrays))
                .collect(),
        )?;
        reservation.try_resize(index.size() + ranges.size())?;

        // 2. The data files holding a source key, read by their key columns.
        let live = self.live_files().await?;
        let specs_map = specs(self.metadata());
        let candidates: Vec<&LiveFile> = live
            .iter()
            .filter(|lf| ranges.may_contain(&lf.file, specs_map.get(&lf.spec_id)))
            .collect();
        let key_ids: Vec<i32> = key_meta.iter().map(|(id, _)| *id).collect();
        let file_io = self.catalog().file_io().clone();
        let mut removed = Vec::new();
        for lf in &candidates {
            let mut keys = std::pin::pin!(read_columns_ahead(
                &name,
                self.metadata(),
                &file_io,
                &schema,
                &key_ids,
                &[*lf],
                2
            )?);
            let mut file_matched = false;
            while let Some(b) = keys.try_next().await? {
                let rows = converter.convert_columns(b.columns())?;
                for i in 0..b.num_rows() {
                    if let Some(e) = index.find(rows.row(i).data()) {
                        index.matched[e] = index.matched[e].saturating_add(1);
                        file_matched = true;
                    }
                }
            }
            if file_matched {
                removed.push((*lf).clone());
            }
        }

        // 3. The kept rows of those files, then the winning source rows, into new files.
        let index = Arc::new(index);
        let counts = Arc::new(Counts::default());
        // The rows of `files` whose keys the source does not hold.
        let read_kept = |files: &[&LiveFile]| -> Result<_> {
            let files = read_files_ahead(&name, self.metadata(), &file_io, &schema, files, 4)?;
            let (index, converter) = (index.clone(), shape.converter()?);
            let key_idx = key_idx.clone();
            Ok(files.map(move |b| {
                let b = b?;
                let keys: Vec<ArrayRef> = key_idx.iter().map(|i| b.column(*i).clone()).collect();
                let rows = converter.convert_columns(&keys)?;
                let keep: BooleanArray = (0..b.num_rows())
                    .map(|i| Some(index.find(rows.row(i).data()).is_none()))
                    .collect();
                Ok(arrow::compute::filter_record_batch(&b, &keep)?)
            }))
        };
        let winners = {
            let (index, counts, converter) = (index.clone(), counts.clone(), shape.converter()?);
            let (shape, target, table) = (shape.clone(), target.clone(), name.clone());
            let mut at = 0u64;
            source.into_stream().map(move |b| -> Result<RecordBatch> {
                let b = b?;
                let keys = converter.convert_columns(&shape.columns(&b)?)?;
                let mut entries = Vec::new();
                let mut win = Vec::with_capacity(b.num_rows());
                for i in 0..b.num_rows() {
                    let Some(e) = index.find(keys.row(i).data()) else {
                        return Err(Error::Iceberg(iceberg::Error::new(
                            iceberg::ErrorKind::Unexpected,
                            "a merge source row read again has a key the first read did not index",
                        )));
                    };
                    let wins = index.pos[e] == at + i as u64;
                    if wins {
                        entries.push(e);
                    }
                    win.push(wins);
                }
                let win = BooleanArray::from(win);
                at += b.num_rows() as u64;
                let rows = arrow::compute::filter_record_batch(&b, &win)?;
                let deleted = match &delete {
                    Some(f) => f.evaluate(&table, &rows)?,
                    None => vec![false; rows.num_rows()],
                };
                let (mut inserted, mut updated, mut removed) = (0u64, 0u64, 0u64);
                for (e, del) in entries.iter().zip(&deleted) {
                    let matched = u64::from(index.matched[*e]);
                    if *del {
                        removed += matched;
                    } else {
                        updated += matched;
                        inserted += u64::from(matched == 0);
                    }
                }
                counts.inserted.fetch_add(inserted, Ordering::Relaxed);
                counts.updated.fetch_add(updated, Ordering::Relaxed);
                counts.deleted.fetch_add(removed, Ordering::Relaxed);
                let rows = if deleted.iter().any(|d| *d) {
                    let keep: BooleanArray = deleted.iter().map(|d| Some(!d)).collect();
                    arrow::compute::filter_record_batch(&rows, &keep)?
                } else {
                    rows
                };
                conform_batch(&table, &rows.project(&data_idx)?, &target)
            })
        };
        let added = match crate::stage::kept_by_partition(self.metadata(), &schema, &removed) {
            // Only the new rows are sorted; the kept ones stay in their partitions' order.
            Some(kept) => {
                let rows = winners
                    .try_filter(|b| futures::future::ready(b.num_rows() > 0))
                    .map_err(to_df);
                let rows: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(target.clone(), rows));
                let kept = crate::stage::KeptRows {
                    groups: kept,
                    read: read_kept,
                };
                crate::stage::write_merged(&name, &state, self.metadata(), &schema, &file_io, kept, rows).await?
            }
            None => {
                let refs: Vec<&LiveFile> = removed.iter().collect();
                let rows = read_kept(&refs)?
                    .chain(winners)
                    .try_filter(|b| futures::future::ready(b.num_rows() > 0))
                    .map_err(to_df);
                let rows: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(target.clone(), rows));
                crate::stage::write_sorted(&name, &state, self.metadata(), &schema, &file_io, rows).await?
            }
        };
        drop(index);
        reservation.resize(ranges.size());

        let files_rewritten = removed.len();
        let op = if removed.is_empty() {
            Operation::Append
        } else {
            Operation::Overwrite
        };
        let specs_for_check: std::collections::HashMap<i32, PartitionSpecRef> = specs_map;
        let check = ConflictCheck::RemovedFilesLiveAndNoMatchingAdds(Arc::new(move |f: &LiveFile| {
            ranges.may_contain(&f.file, specs_for_check.get(&f.spec_id))
        }));
        let p = self.pending(op, "merge", added, removed, new_schema, check);
        let commit = self.commit(p).await?;
        Ok(MergeResult {
            commit,
            inserted: counts.inserted.load(Ordering::Relaxed),
            updated: counts.updated.load(Ordering::Relaxed),
            deleted: counts.deleted.load(Ordering::Relaxed),
            files_rewritten,
            files_read: candidates.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow::array::{AsArray, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema as ArrowSchema};
    use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
    use datafusion::execution::memory_pool::FairSpillPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;

    use super::*;
    use crate::{
        Catalog, PartitionField, PartitionTransform, SchemaEvolution, SortKey, SqliteCatalog, TableDefinition,
        TableIdent,
    };

    /// Distinct keys of the source, events per key, and the first key (keys below it are only
    /// in the table, keys from `OLD` on only in the source).
    const KEYS: i64 = 20_000;
    const EVENTS: i64 = 15;
    const FIRST: i64 = 10_000;
    const OLD: i64 = 20_000;
    /// The pool of the limited runs: a fraction of the source (~40 MB in Arrow).
    const POOL: usize = 8 * 1024 * 1024;

    fn id_val() -> ArrowSchemaRef {
        Arc::new(ArrowSchema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("val", DataType::Utf8, true),
        ]))
    }

    /// CDC events: key `FIRST + (n * 7919) % KEYS` for event `n`, ordered by `lsn = n`, every
    /// 11th one a deletion, each with a 100-character payload.
    fn events_sql() -> String {
        format!(
            "SELECT {FIRST} + (value * 7919) % {KEYS} AS id,
                    concat(repeat('x', 100), CAST(value AS VARCHAR)) AS val,
                    CASE WHEN value % 11 = 0 THEN 'D' ELSE 'U' END AS op,
                    value AS lsn
             FROM generate_series(0, {}) AS t(value)",
            KEYS * EVENTS - 1
        )
    }

    /// The table once the events are merged: id -> val.
    fn expected() -> (BTreeMap<i64, String>, (u64, u64, u64)) {
        let mut latest: BTreeMap<i64, i64> = BTreeMap::new();
        for n in 0..KEYS * EVENTS {
            latest.insert(FIRST + (n * 7919) % KEYS, n);
        }
        let mut rows: BTreeMap<i64, String> = (0..OLD).map(|id| (id, format!("old{id}"))).collect();
        let (mut inserted, mut updated, mut deleted) = (0, 0, 0);
        for (id, n) in latest {
            let existed = rows.remove(&id).is_some();
            if n % 11 == 0 {
                deleted += u64::from(existed);
            } else {
                rows.insert(id, format!("{}{n}", "x".repeat(100)));
                if existed {
                    updated += 1;
                } else {
                    inserted += 1;
                }
            }
        }
        (rows, (inserted, updated, deleted))
    }

    fn session(limit: Option<usize>, disk: bool) -> SessionContext {
        let mut runtime =
            RuntimeEnvBuilder::new().with_disk_manager_builder(DiskManagerBuilder::default().with_mode(if disk {
                DiskManagerMode::OsTmpDirectory
            } else {
                DiskManagerMode::Disabled
            }));
        if let Some(limit) = limit {
            runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(limit)));
        }
        let mut config = SessionConfig::new();
        config.options_mut().execution.sort_spill_reservation_bytes = 256 * 1024;
        SessionContext::new_with_config_rt(config, runtime.build_arc().unwrap())
    }

    /// A table of `OLD` rows in four files, partitioned by a hash of the key and sorted by it.
    async fn table(dir: &std::path::Path, name: &str) -> Table {
        let def = TableDefinition::new(id_val())
            .partition(PartitionField::new("id", PartitionTransform::Bucket(4)))
            .sort_by(SortKey::asc("id"));
        table_of(dir, name, def, 4).await
    }

    /// A table `def` of `OLD` rows written in `appends` files (keys by remainder).
    async fn table_of(dir: &std::path::Path, name: &str, def: TableDefinition, appends: i64) -> Table {
        let wh = format!("file://{}/warehouse", dir.display());
        let catalog: Arc<dyn Catalog> = Arc::new(
            SqliteCatalog::open("mesh", dir.join(format!("{name}.db")), &wh)
                .await
                .unwrap(),
        );
        let mut t = Table::create(catalog, TableIdent::new("ns", name), def).await.unwrap();
        for part in 0..appends {
            let ids: Vec<i64> = (0..OLD).filter(|id| id % appends == part).collect();
            let vals: Vec<String> = ids.iter().map(|id| format!("old{id}")).collect();
            let batch = RecordBatch::try_new(
                id_val(),
                vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(vals))],
            )
            .unwrap();
            t.append(&[batch], SchemaEvolution::default()).await.unwrap();
        }
        t
    }

    async fn rows(t: &Table) -> BTreeMap<i64, String> {
        let out = t.scan(&Default::default()).await.unwrap();
        let mut rows = BTreeMap::new();
        for b in &out.batches {
            let ids = b.column(0).as_primitive::<Int64Type>();
            let vals = b.column(1).as_string::<i32>();
            for i in 0..b.num_rows() {
                assert!(
                    rows.insert(ids.value(i), vals.value(i).to_string()).is_none(),
                    "one row per key"
                );
            }
        }
        rows
    }

    fn options() -> MergeOptions {
        let mut opts = MergeOptions::on(["id"]);
        opts.duplicates = DuplicateKeys::KeepLatestBy("lsn".into());
        opts.delete_when = Some("op = 'D'".into());
        opts
    }

    /// A partitioned table without a sort order: only the source's rows are sorted, and each
    /// partition's kept rows are written beside its new ones. Each partition still ends up in
    /// one file (as after sorting everything), rows are exact, including rows an update moves
    /// to another partition (`truncate(3, val)`: every update moves from `old` to `xxx`), and
    /// a spilled source gives the same table.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kept_rows_are_not_sorted_and_each_partition_stays_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let (want, counts) = expected();
        for (name, transform, limit) in [
            ("bucket", PartitionTransform::Bucket(4), None),
            ("moved", PartitionTransform::Truncate(3), None),
            ("moved_spilled", PartitionTransform::Truncate(3), Some(POOL)),
        ] {
            let column = if name == "bucket" { "id" } else { "val" };
            let def = TableDefinition::new(id_val()).partition(PartitionField::new(column, transform));
            // Two appends: two files in each partition.
            let mut t = table_of(dir.path(), name, def, 2).await;
            let meta = t.metadata().clone();
            let schema = meta.current_schema().clone();
            let live = t.live_files().await.unwrap();
            assert!(
                crate::stage::kept_by_partition(&meta, &schema, &live).is_some(),
                "{name}: the merge takes the unsorted path"
            );
            let ctx = session(limit, true);
            let source = MergeSource::collect(ctx.sql(&events_sql()).await.unwrap())
                .await
                .unwrap();
            assert_eq!(source.spilled(), limit.is_some(), "{name}");
            let r = t.merge_source(source, &options()).await.unwrap();
            assert_eq!((r.inserted, r.updated, r.deleted), counts, "{name}: {r:?}");
            assert_eq!(rows(&t).await, want, "{name}");
            let files = t.files(None).await.unwrap();
            let mut per_partition: BTreeMap<String, usize> = BTreeMap::new();
            for f in &files {
                *per_partition.entry(format!("{:?}", f.partition)).or_default() += 1;
            }
            let partitions = if name == "bucket" { 4 } else { 2 };
            assert_eq!(per_partition.len(), partitions, "{name}: {per_partition:?}");
            assert!(per_partition.values().all(|n| *n == 1), "{name}: {per_partition:?}");
        }
    }

    /// A source several times the memory pool spills to disk, is counted in the pool while it
    /// is held, and merges to exactly the table an unlimited pool gives (and the reference
    /// computed here): latest event per key, deletions applied, counts right. Without a disk
    /// to spill to, the same source is refused by the pool.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_source_larger_than_the_pool_spills_and_merges_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let (want, counts) = expected();

        let mut free = table(dir.path(), "free").await;
        let ctx = session(None, true);
        let source = MergeSource::collect(ctx.sql(&events_sql()).await.unwrap())
            .await
            .unwrap();
        assert_eq!(source.num_rows() as i64, KEYS * EVENTS);
        assert!(!source.spilled());
        let r = free.merge_source(source, &options()).await.unwrap();
        assert_eq!((r.inserted, r.updated, r.deleted), counts, "{r:?}");
        assert_eq!(rows(&free).await, want);

        let mut limited = table(dir.path(), "limited").await;
        let ctx = session(Some(POOL), true);
        let pool = ctx.runtime_env().memory_pool.clone();
        let source = MergeSource::collect(ctx.sql(&events_sql()).await.unwrap())
            .await
            .unwrap();
        assert!(source.spilled(), "{source:?}");
        assert_eq!(source.reserved(), 0, "spilled rows are not held");
        // What it is in memory (the rows read back), against the pool.
        let batches: Vec<RecordBatch> = source.stream().try_collect().await.unwrap();
        let bytes: usize = batches.iter().map(get_record_batch_memory_size).sum();
        drop(batches);
        assert!(bytes > 3 * POOL, "the source ({bytes} bytes) is several times the pool");
        // Checks read it as a table while it is held.
        let check = SessionContext::new();
        check
            .register_table("output", source.table_provider().unwrap())
            .unwrap();
        let n = check
            .sql("SELECT count(*) FROM output")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        assert_eq!(n[0].column(0).as_primitive::<Int64Type>().value(0), KEYS * EVENTS);
        drop(check);
        let r = limited.merge_source(source, &options()).await.unwrap();
        assert_eq!((r.inserted, r.updated, r.deleted), counts, "{r:?}");
        assert_eq!(rows(&limited).await, want);
        assert_eq!(pool.reserved(), 0, "everything the merge reserved is returned");
        // Every written file is sorted by id.
        for f in limited.files(None).await.unwrap() {
            let file = std::fs::File::open(f.path.trim_start_matches("file://")).unwrap();
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap();
            let mut last = i64::MIN;
            for b in reader {
                for id in b.unwrap().column(0).as_primitive::<Int64Type>().values() {
                    assert!(*id > last, "{} is not sorted", f.path);
                    last = *id;
                }
            }
        }

        // No disk: the pool must hold the source, and refuses it.
        let ctx = session(Some(POOL), false);
        let err = MergeSource::collect(ctx.sql(&events_sql()).await.unwrap())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Resources exhausted") && err.contains("merge source"),
            "{err}"
        );
    }

    /// Under `on_duplicate = error` the first key repeated in source order is named, also
    /// when the source was spilled.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_duplicate_in_a_spilled_source_names_the_first_repeated_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = table(dir.path(), "dups").await;
        // One partition, so that the source order is the series' order.
        let ctx = session(Some(POOL), true);
        ctx.state_ref()
            .write()
            .config_mut()
            .options_mut()
            .execution
            .target_partitions = 1;
        // Keys 0..60000 once each (~25 MB), then key 7 again and key 3 again.
        let sql = "SELECT CASE value WHEN 60000 THEN 7 WHEN 60001 THEN 3 ELSE value END AS id,
                          concat(repeat('x', 400), CAST(value AS VARCHAR)) AS val
                   FROM generate_series(0, 60001) AS t(value)";
        let df = ctx.sql(sql).await.unwrap();
        let source = MergeSource::collect(df).await.unwrap();
        assert!(source.spilled());
        let err = t.merge_source(source, &MergeOptions::on(["id"])).await.unwrap_err();
        assert!(
            matches!(&err, Error::DuplicateKey { key, .. } if key == "id=7"),
            "{err}"
        );
        assert_eq!(rows(&t).await.len(), OLD as usize, "nothing committed");
    }

    /// A source registered as a table of the session it was computed in (as a job's checks
    /// read it) is freed with the session: the pool gets its memory back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_source_registered_in_its_session_is_freed_with_it() {
        let ctx = session(Some(POOL), true);
        let pool = ctx.runtime_env().memory_pool.clone();
        let source = MergeSource::collect(
            ctx.sql("SELECT value AS id FROM generate_series(1, 1000) AS t(value)")
                .await
                .unwrap(),
        )
        .await
        .unwrap();
        assert!(!source.spilled() && source.reserved() > 0, "{source:?}");
        ctx.register_table("output", source.table_provider().unwrap()).unwrap();
        drop(source);
        assert!(pool.reserved() > 0, "the session still reads it");
        drop(ctx);
        assert_eq!(pool.reserved(), 0);
    }
}
