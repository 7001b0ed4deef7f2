//! Write, audit, publish: a write's data files are first written under the table's data
//! location without any snapshot referencing them ([`StagedFiles`]), can be read back as a
//! DataFusion table (to check them), and are then committed in one snapshot with
//! [`Table::commit_staged`] — or abandoned, which leaves them to orphan cleanup.
//!
//! [`Table::stage`] streams a DataFusion query into the files: the rows are sorted in the plan
//! by partition value, then by the table's sort order (DataFusion spills that sort under the
//! session's memory pool), so each partition's rows arrive together and are written in order,
//! one partition at a time, by the parallel Parquet writer.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow::array::{new_empty_array, Array, AsArray, RecordBatch};
use arrow::compute::{cast_with_options, partition, CastOptions};
use arrow::datatypes::{DataType, SchemaRef as ArrowSchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::TableProvider;
use datafusion::common::{Column, DFSchema};
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, SortExpr, Volatility,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::{Stream, StreamExt, TryStreamExt};
use iceberg::arrow::{arrow_struct_to_literal, type_to_arrow_type, PartitionValueCalculator};
use iceberg::io::FileIO;
use iceberg::spec::{DataFile, Literal, Operation, PartitionKey, Schema, SchemaRef, Struct, TableMetadata, Transform};
use iceberg::transform::create_transform_function;

use crate::commit::{ConflictCheck, LiveFile};
use crate::conform::{arrow_schema, conform_batch, SchemaEvolution};
use crate::error::{Error, Result};
use crate::parallel_write::ParallelWriter;
use crate::read::files_provider;
use crate::scan::Filter;
use crate::table::{CommitMode, CommitResult, OverwriteMode, Table};
use crate::write::{sort_keys, target_file_size, write_data_files};

/// Data files written for a table and referenced by no snapshot yet. Commit them with
/// [`Table::commit_staged`]; dropped instead, they stay unreferenced and orphan cleanup
/// removes them once they are older than its window.
#[derive(Debug)]
pub struct StagedFiles {
    table: String,
    files: Vec<DataFile>,
    /// The schema the files were written with (the evolved one when the write evolves it).
    schema: SchemaRef,
    new_schema: Option<Schema>,
    base_schema_id: i32,
    spec_id: i32,
    meta: Arc<TableMetadata>,
    file_io: FileIO,
}

impl StagedFiles {
    /// The table the files were written for (`namespace.name`).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Locations of the files.
    pub fn paths(&self) -> Vec<String> {
        self.files.iter().map(|f| f.file_path().to_string()).collect()
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// No file was written (no rows).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Rows in the files.
    pub fn records(&self) -> u64 {
        self.files.iter().map(|f| f.record_count()).sum()
    }

    /// Bytes of the files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.file_size_in_bytes()).sum()
    }

    /// The rows' schema (the table's, evolved if the write evolves it).
    pub fn arrow_schema(&self) -> Result<ArrowSchemaRef> {
        arrow_schema(&self.schema)
    }

    /// A DataFusion table over exactly these files, with the same partition and statistics
    /// pruning as a snapshot's provider.
    pub fn table_provider(&self) -> Result<Arc<dyn TableProvider>> {
        let files = self
            .files
            .iter()
            .map(|f| LiveFile {
                file: f.clone(),
                spec_id: self.spec_id,
                snapshot_id: 0,
                sequence_number: 0,
            })
            .collect();
        files_provider(
            self.table.clone(),
            self.meta.clone(),
            self.file_io.clone(),
            self.schema.clone(),
            files,
        )
    }
}

/// A snapshot that removes nothing only adds data, whatever the mode.
fn operation(removed: &[LiveFile]) -> Operation {
    if removed.is_empty() {
        Operation::Append
    } else {
        Operation::Overwrite
    }
}

fn df_error(e: DataFusionError) -> Error {
    Error::DataFusion(Box::new(e))
}

impl Table {
    /// Runs `df` and writes its rows (by column name, cast to the table's types as an append
    /// would) as new data files of the table: partitioned by its spec, sorted within each file
    /// by its sort order, rolled at its target file size. Nothing is committed. The rows are
    /// never all in memory: the plan streams, and its sort spills under the session's memory
    /// pool. An error of the query itself comes back as [`Error::DataFusion`]; on any error the
    /// files written so far are left to orphan cleanup.
    pub async fn stage(&self, df: DataFrame, evolution: SchemaEvolution) -> Result<StagedFiles> {
        let name = self.name();
        let input = df.schema().as_arrow().clone();
        let (schema, new_schema) = self.write_schema(Some(&input), evolution)?;
        let target = arrow_schema(&schema)?;
        let order = write_order(self.metadata(), &schema, df.schema())?;
        let df = if order.is_empty() {
            df
        } else {
            // One sort over the whole result (the plan below it stays parallel): sorts of
            // several partitions that spilled each reserve memory greedily to merge their
            // spill files, and the first to merge can starve the others out of the pool.
            let (mut state, plan) = df.into_parts();
            state.config_mut().options_mut().optimizer.repartition_sorts = false;
            DataFrame::new(state, plan).sort(order).map_err(df_error)?
        };
        let stream = df.execute_stream().await.map_err(df_error)?;
        let batches = stream.map(move |b| b.map_err(df_error).and_then(|b| conform_batch(&name, &b, &target)));
        let meta = self.metadata();
        let files = write_clustered(meta, &schema, self.catalog().file_io(), batches, target_file_size(meta)).await?;
        if files.is_empty() {
            // No rows: the table keeps its schema.
            let current = meta.current_schema().clone();
            return Ok(self.staged(files, current, None));
        }
        Ok(self.staged(files, schema, new_schema))
    }

    /// [`Table::stage`] for rows already in memory (written as [`Table::append`] writes them).
    pub async fn stage_batches(&self, batches: &[RecordBatch], evolution: SchemaEvolution) -> Result<StagedFiles> {
        let (schema, new_schema) = self.write_schema(batches.first().map(|b| b.schema_ref().as_ref()), evolution)?;
        let data = self.conform_all(&schema, batches)?;
        let files = write_data_files(self.metadata(), schema.clone(), self.catalog().file_io(), &data).await?;
        Ok(self.staged(files, schema, new_schema))
    }

    fn staged(&self, files: Vec<DataFile>, schema: SchemaRef, new_schema: Option<Schema>) -> StagedFiles {
        let meta = self.metadata();
        StagedFiles {
            table: self.name(),
            files,
            schema,
            new_schema,
            base_schema_id: meta.current_schema_id(),
            spec_id: meta.default_partition_spec_id(),
            meta: Arc::new(meta.clone()),
            file_io: self.catalog().file_io().clone(),
        }
    }

    /// Commits staged files in one snapshot, with this handle's commit properties (see
    /// [`Table::set_commit_properties`]), under the same optimistic concurrency as every
    /// operation: concurrent commits are validated against, lost races retried. An overwrite
    /// by predicate also rewrites the rows of replaced files that the predicate does not match.
    pub async fn commit_staged(&mut self, staged: StagedFiles, mode: CommitMode) -> Result<CommitResult> {
        let name = self.name();
        if staged.table != name {
            return Err(Error::Invalid {
                table: name,
                detail: format!(
                    "the files were staged for table {}; commit them to that table",
                    staged.table
                ),
            });
        }
        let StagedFiles {
            files: mut added,
            schema,
            new_schema,
            base_schema_id,
            spec_id,
            ..
        } = staged;
        let (op, action, removed, conflict) = match mode {
            CommitMode::Append => (Operation::Append, "append", Vec::new(), ConflictCheck::None),
            CommitMode::Overwrite(OverwriteMode::All) => {
                let live = self.live_files().await?;
                let all = ConflictCheck::RemovedFilesLiveAndNoMatchingAdds(Arc::new(|_: &LiveFile| true));
                (operation(&live), "overwrite", live, all)
            }
            CommitMode::Overwrite(OverwriteMode::DynamicPartitions) => {
                let parts: HashSet<(i32, Struct)> = added.iter().map(|f| (spec_id, f.partition().clone())).collect();
                let removed: Vec<LiveFile> = self
                    .live_files()
                    .await?
                    .into_iter()
                    .filter(|lf| parts.contains(&(lf.spec_id, lf.file.partition().clone())))
                    .collect();
                let check = ConflictCheck::RemovedFilesLiveAndNoMatchingAdds(Arc::new(move |f: &LiveFile| {
                    parts.contains(&(f.spec_id, f.file.partition().clone()))
                }));
                (Operation::Overwrite, "overwrite", removed, check)
            }
            CommitMode::Overwrite(OverwriteMode::Filter(sql)) => {
                let filter = Filter::compile(&name, &sql, arrow_schema(&schema)?)?;
                let live = self.live_files().await?;
                let (removed, kept, _) = self.split_matching(&schema, &filter, &live).await?;
                let file_io = self.catalog().file_io().clone();
                added.extend(write_data_files(self.metadata(), schema.clone(), &file_io, &kept).await?);
                let check = self.filter_conflict_check(&filter);
                (operation(&removed), "overwrite", removed, check)
            }
        };
        let mut p = self.pending(op, action, added, removed, new_schema, conflict);
        // A schema evolution is validated against the schema the files were written with.
        p.base_schema_id = base_schema_id;
        self.commit(p).await
    }
}

/// Writes a stream of rows already conformed to `schema` as new data files, as
/// [`Table::stage`] writes a query's result: sorted by partition value and the table's sort
/// order in a DataFusion plan of `state` (its sort spills under the session's memory pool),
/// then written clustered. Nothing is committed; on an error the files written so far are
/// left to orphan cleanup.
pub(crate) async fn write_sorted(
    table: &str,
    state: &SessionState,
    meta: &TableMetadata,
    schema: &SchemaRef,
    file_io: &FileIO,
    rows: SendableRecordBatchStream,
) -> Result<Vec<DataFile>> {
    let name = table.to_string();
    let target = arrow_schema(schema)?;
    let input = DFSchema::try_from(rows.schema().as_ref().clone()).map_err(df_error)?;
    let order = write_order(meta, schema, &input)?;
    let size = target_file_size(meta);
    if order.is_empty() {
        let batches = rows.map(|b| b.map_err(crate::merge::from_df));
        return write_clustered(meta, schema, file_io, batches, size).await;
    }
    let batches = sorted(&name, state, rows, order, target).await?;
    write_clustered(meta, schema, file_io, batches, size).await
}

/// `rows` sorted by `order` in one spilling sort, conformed to `target` again.
async fn sorted(
    table: &str,
    state: &SessionState,
    rows: SendableRecordBatchStream,
    order: Vec<SortExpr>,
    target: ArrowSchemaRef,
) -> Result<impl Stream<Item = Result<RecordBatch>> + Send> {
    let name = table.to_string();
    let mut state = state.clone();
    // One sort over all rows, as `Table::stage` sorts (see there).
    state.config_mut().options_mut().optimizer.repartition_sorts = false;
    let ctx = SessionContext::new_with_state(state);
    let table = StreamingTable::try_new(rows.schema(), vec![Arc::new(OneShot::new(rows))]).map_err(df_error)?;
    let df = ctx
        .read_table(Arc::new(table))
        .map_err(df_error)?
        .sort(order)
        .map_err(df_error)?;
    let stream = df.execute_stream().await.map_err(df_error)?;
    // The sort keeps the rows; conforming again restores the field ids a plan may drop.
    Ok(stream.map(move |b| {
        b.map_err(crate::merge::from_df)
            .and_then(|b| conform_batch(&name, &b, &target))
    }))
}

/// The files a merge rewrites, by partition, when their kept rows need no sort: the table is
/// partitioned, has no sort order, and every file is in the current spec (one partition per
/// file). `None` otherwise.
pub(crate) fn kept_by_partition(
    meta: &TableMetadata,
    schema: &SchemaRef,
    files: &[LiveFile],
) -> Option<Vec<(Struct, Vec<LiveFile>)>> {
    let spec = meta.default_partition_spec();
    if spec.is_unpartitioned() || !sort_keys(meta, schema).is_empty() {
        return None;
    }
    if files.iter().any(|f| f.spec_id != spec.spec_id()) {
        return None;
    }
    let mut groups: Vec<(Struct, Vec<LiveFile>)> = Vec::new();
    let mut at: HashMap<Struct, usize> = HashMap::new();
    for f in files {
        let key = f.file.partition().clone();
        match at.get(&key) {
            Some(i) => groups[*i].1.push(f.clone()),
            None => {
                at.insert(key.clone(), groups.len());
                groups.push((key, vec![f.clone()]));
            }
        }
    }
    Some(groups)
}

/// The rows a merge keeps: the rewritten files by partition ([`kept_by_partition`]) and how
/// to read the rows of some of them that the merge does not replace.
pub(crate) struct KeptRows<F> {
    pub groups: Vec<(Struct, Vec<LiveFile>)>,
    pub read: F,
}

/// A merge's rows into a table [`kept_by_partition`] grouped: only the new rows (`winners`) are
/// sorted, into partition order; each partition's kept rows (`read_kept` of its files, which
/// are already one partition each) are written just before its new rows, and partitions with
/// kept rows only at the end. Each partition is then one run for the clustered writer, as
/// after sorting everything, without sorting the rows that did not change (most of a
/// copy-on-write rewrite).
pub(crate) async fn write_merged<F, S>(
    table: &str,
    state: &SessionState,
    meta: &TableMetadata,
    schema: &SchemaRef,
    file_io: &FileIO,
    kept: KeptRows<F>,
    winners: SendableRecordBatchStream,
) -> Result<Vec<DataFile>>
where
    F: Fn(&[&LiveFile]) -> Result<S>,
    S: Stream<Item = Result<RecordBatch>> + Send,
{
    let target = arrow_schema(schema)?;
    let input = DFSchema::try_from(winners.schema().as_ref().clone()).map_err(df_error)?;
    let order = write_order(meta, schema, &input)?;
    let size = target_file_size(meta);
    let winners = sorted(table, state, winners, order, target).await?;
    let calculator = PartitionValueCalculator::try_new(meta.default_partition_spec(), schema)?;
    let partition_type = calculator.partition_type().clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(2);
    let KeptRows {
        groups: kept,
        read: read_kept,
    } = kept;
    let produce = async move {
        let mut winners = std::pin::pin!(winners);
        let mut pending: Vec<Option<(Struct, Vec<LiveFile>)>> = kept.into_iter().map(Some).collect();
        let at: HashMap<Struct, usize> = pending
            .iter()
            .enumerate()
            .filter_map(|(i, g)| g.as_ref().map(|(k, _)| (k.clone(), i)))
            .collect();
        let send_kept = |files: Vec<LiveFile>| {
            let (tx, read_kept) = (&tx, &read_kept);
            async move {
                let refs: Vec<&LiveFile> = files.iter().collect();
                let mut rows = std::pin::pin!(read_kept(&refs)?);
                while let Some(b) = rows.try_next().await? {
                    // A closed channel means the writer failed: its error is the one returned.
                    if b.num_rows() > 0 && tx.send(b).await.is_err() {
                        break;
                    }
                }
                Ok::<(), Error>(())
            }
        };
        let mut current: Option<Struct> = None;
        while let Some(batch) = winners.try_next().await? {
            for (key, rows) in partition_runs(&calculator, &partition_type, &batch)? {
                if current.as_ref() != Some(&key) {
                    if let Some((_, files)) = at.get(&key).and_then(|i| pending[*i].take()) {
                        send_kept(files).await?;
                    }
                    current = Some(key);
                }
                if tx.send(rows).await.is_err() {
                    return Ok(());
                }
            }
        }
        for (_, files) in pending.into_iter().flatten() {
            send_kept(files).await?;
        }
        Ok::<(), Error>(())
    };
    let received = futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|b| b.map(Ok)));
    let write = write_clustered(meta, schema, file_io, received, size);
    let ((), files) = futures::try_join!(produce, write)?;
    Ok(files)
}

/// A batch split into its runs of one partition (the partition's value and the rows).
fn partition_runs(
    calculator: &PartitionValueCalculator,
    partition_type: &iceberg::spec::StructType,
    batch: &RecordBatch,
) -> Result<Vec<(Struct, RecordBatch)>> {
    let values = calculator.calculate(batch)?;
    let runs = partition(values.as_struct().columns())?;
    let mut parts = Vec::new();
    for run in runs.ranges() {
        let literal = arrow_struct_to_literal(&values.slice(run.start, 1), partition_type)?;
        let Some(Some(Literal::Struct(key))) = literal.into_iter().next() else {
            return Err(Error::Iceberg(iceberg::Error::new(
                iceberg::ErrorKind::Unexpected,
                "a partition value is not a struct",
            )));
        };
        parts.push((key, batch.slice(run.start, run.end - run.start)));
    }
    Ok(parts)
}

/// A stream read once, as a partition of a [`StreamingTable`].
struct OneShot {
    schema: ArrowSchemaRef,
    stream: std::sync::Mutex<Option<SendableRecordBatchStream>>,
}

impl OneShot {
    fn new(stream: SendableRecordBatchStream) -> Self {
        Self {
            schema: stream.schema(),
            stream: std::sync::Mutex::new(Some(stream)),
        }
    }
}

impl std::fmt::Debug for OneShot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneShot").field("schema", &self.schema).finish()
    }
}

impl PartitionStream for OneShot {
    fn schema(&self) -> &ArrowSchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self
            .stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        taken.unwrap_or_else(|| {
            let failed = futures::stream::once(async {
                Err(DataFusionError::Internal("a one-shot stream was read twice".into()))
            });
            Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), failed))
        })
    }
}

/// The order a staged write sorts its rows in: by each partition field's value (so that a
/// partition's rows arrive together), then by the table's sort order. Columns the input lacks
/// are null in every row and are left out.
pub(crate) fn write_order(meta: &TableMetadata, schema: &SchemaRef, input: &DFSchema) -> Result<Vec<SortExpr>> {
    let present = |name: &str| input.fields().iter().any(|f| f.name() == name);
    let column = |name: &str| Expr::Column(Column::new_unqualified(name));
    let mut order = Vec::new();
    for (i, f) in meta.default_partition_spec().fields().iter().enumerate() {
        let Some(source) = schema.field_by_id(f.source_id) else {
            continue;
        };
        if f.transform == Transform::Void || !present(&source.name) {
            continue;
        }
        let value = PartitionValue::new(i, f.transform, type_to_arrow_type(&source.field_type)?)?;
        order.push(
            ScalarUDF::new_from_impl(value)
                .call(vec![column(&source.name)])
                .sort(true, true),
        );
    }
    let fields = schema.as_struct().fields();
    for (idx, o) in sort_keys(meta, schema) {
        let name = &fields[idx].name;
        if present(name) {
            order.push(column(name).sort(!o.descending, o.nulls_first));
        }
    }
    Ok(order)
}

/// One partition field's value, computed by the transform iceberg's writer uses, as a sort
/// key of the plan.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PartitionValue {
    name: String,
    transform: Transform,
    /// The source column's type in the table, which the transform is defined on.
    source: DataType,
    output: DataType,
    signature: Signature,
}

impl PartitionValue {
    fn new(index: usize, transform: Transform, source: DataType) -> Result<Self> {
        let output = create_transform_function(&transform)?
            .transform(new_empty_array(&source))?
            .data_type()
            .clone();
        Ok(Self {
            name: format!("iceberg_partition_value_{index}"),
            transform,
            source,
            output,
            signature: Signature::any(1, Volatility::Immutable),
        })
    }
}

impl ScalarUDFImpl for PartitionValue {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(self.output.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> datafusion::error::Result<ColumnarValue> {
        let iceberg = |e: iceberg::Error| DataFusionError::External(Box::new(e));
        let input = args.args[0].clone().into_array(args.number_rows)?;
        // A value that does not fit the column sorts as null here; writing it fails later, in
        // the cast to the table's types, with the column named.
        let safe = CastOptions {
            safe: true,
            ..Default::default()
        };
        let input = cast_with_options(&input, &self.source, &safe)?;
        let f = create_transform_function(&self.transform).map_err(iceberg)?;
        Ok(ColumnarValue::Array(f.transform(input).map_err(iceberg)?))
    }
}

/// Writes rows clustered by partition (see [`write_order`]) with one parallel writer per
/// partition, closing a partition's files as soon as a batch no longer holds its rows, so
/// that few files are open at a time. Rows that are not clustered are still written right,
/// into more files.
pub(crate) async fn write_clustered(
    meta: &TableMetadata,
    schema: &SchemaRef,
    file_io: &FileIO,
    batches: impl Stream<Item = Result<RecordBatch>> + Send,
    target: usize,
) -> Result<Vec<DataFile>> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let spec = meta.default_partition_spec();
    let mut batches = std::pin::pin!(batches);
    if spec.is_unpartitioned() {
        let mut w = ParallelWriter::new(meta, schema, file_io, None, target, threads)?;
        while let Some(b) = batches.try_next().await? {
            w.write(b).await?;
        }
        return w.finish().await;
    }
    let calculator = PartitionValueCalculator::try_new(spec, schema)?;
    let partition_type = calculator.partition_type().clone();
    let mut open: HashMap<Struct, ParallelWriter<'_>> = HashMap::new();
    let mut files = Vec::new();
    while let Some(batch) = batches.try_next().await? {
        if batch.num_rows() == 0 {
            continue;
        }
        let parts = partition_runs(&calculator, &partition_type, &batch)?;
        let present: HashSet<&Struct> = parts.iter().map(|(k, _)| k).collect();
        let complete: Vec<Struct> = open.keys().filter(|k| !present.contains(k)).cloned().collect();
        for key in complete {
            let w = open.remove(&key).expect("listed above");
            files.extend(w.finish().await?);
        }
        for (key, rows) in parts {
            if !open.contains_key(&key) {
                let pk = PartitionKey::new(spec.as_ref().clone(), schema.clone(), key.clone());
                let w = ParallelWriter::new(meta, schema, file_io, Some(pk), target, threads)?;
                open.insert(key.clone(), w);
            }
            open.get_mut(&key).expect("opened above").write(rows).await?;
        }
    }
    for (_, w) in open {
        files.extend(w.finish().await?);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema as ArrowSchema, TimeUnit};
    use datafusion::prelude::{col, lit, SessionContext};

    use super::*;
    use crate::maintenance::{normalize_location, LocalLister, OrphanOptions, OrphanPlan};
    use crate::{Catalog, PartitionField, PartitionTransform, SortKey, SqliteCatalog, TableDefinition, TableIdent};

    const DAY_US: i64 = 86_400_000_000;
    const ROWS: i64 = 120_000;

    fn input_schema() -> Arc<ArrowSchema> {
        Arc::new(ArrowSchema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), false),
            Field::new("payload", DataType::Utf8, true),
        ]))
    }

    /// Rows in a scrambled order, over three days, in several batches.
    fn scrambled() -> Vec<RecordBatch> {
        let ids: Vec<i64> = (0..ROWS).map(|i| (i * 7919) % ROWS).collect();
        ids.chunks(4_000)
            .map(|c| {
                let cols: Vec<ArrayRef> = vec![
                    Arc::new(Int64Array::from(c.to_vec())),
                    Arc::new(TimestampMicrosecondArray::from_iter_values(
                        c.iter().map(|i| 1_767_225_600_000_000 + (i % 3) * DAY_US + i),
                    )),
                    Arc::new(StringArray::from_iter(
                        c.iter().map(|i| (i % 11 != 0).then(|| format!("p{i:06}"))),
                    )),
                ];
                RecordBatch::try_new(input_schema(), cols).unwrap()
            })
            .collect()
    }

    /// A table partitioned by day and by a hash bucket (whose values follow no order of the
    /// source), sorted by id descending, rolling files at 40 kB.
    async fn table(dir: &std::path::Path) -> Table {
        let wh = format!("file://{}/warehouse", dir.display());
        let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open("mesh", dir.join("c.db"), &wh).await.unwrap());
        let def = TableDefinition::new(input_schema())
            .partition(PartitionField::new("ts", PartitionTransform::Day))
            .partition(PartitionField::new("id", PartitionTransform::Bucket(4)))
            .sort_by(SortKey::desc("id"))
            .property("write.target-file-size-bytes", "40000");
        Table::create(catalog, TableIdent::new("ns", "staged"), def)
            .await
            .unwrap()
    }

    fn frame(ctx: &SessionContext) -> DataFrame {
        let mem = datafusion::datasource::MemTable::try_new(
            input_schema(),
            scrambled().chunks(3).map(|c| c.to_vec()).collect(),
        )
        .unwrap();
        ctx.read_table(Arc::new(mem)).unwrap()
    }

    fn read(path: &str) -> RecordBatch {
        let file = std::fs::File::open(path.trim_start_matches("file://")).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
    }

    /// A staged write is partitioned (each file holds one partition's rows, and a partition's
    /// files are few: rows arrive clustered), sorted within each file, rolled at the target
    /// size, readable as a table, and invisible until committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_is_staged_partitioned_sorted_and_rolled() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = table(dir.path()).await;
        let ctx = SessionContext::new();
        let staged = t.stage(frame(&ctx), SchemaEvolution::default()).await.unwrap();
        assert_eq!(staged.records(), ROWS as u64);
        assert_eq!(t.current_snapshot_id(), None, "staging commits nothing");

        let mut per_partition: BTreeMap<String, usize> = BTreeMap::new();
        let bucket = create_transform_function(&Transform::Bucket(4)).unwrap();
        for f in &staged.files {
            let rows = read(f.file_path());
            assert_eq!(rows.num_rows() as u64, f.record_count());
            // A file passes its target by at most one row group (64 KiB of rows at least).
            assert!(
                f.file_size_in_bytes() < 40_000 + 64 * 1024,
                "{}",
                f.file_size_in_bytes()
            );
            let ids = rows.column(0).as_primitive::<arrow::datatypes::Int64Type>();
            assert!(
                ids.values().windows(2).all(|w| w[0] > w[1]),
                "sorted by id descending within {}",
                f.file_path()
            );
            let days: HashSet<i64> = rows
                .column(1)
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .values()
                .iter()
                .map(|ts| ts.div_euclid(DAY_US))
                .collect();
            let buckets: HashSet<i32> = bucket
                .transform(rows.column(0).clone())
                .unwrap()
                .as_primitive::<arrow::datatypes::Int32Type>()
                .values()
                .iter()
                .copied()
                .collect();
            assert_eq!((days.len(), buckets.len()), (1, 1), "one partition per file");
            let key = format!("{:?}", f.partition());
            let day = Literal::date(*days.iter().next().unwrap() as i32);
            let b = Literal::int(*buckets.iter().next().unwrap());
            assert_eq!(f.partition(), &Struct::from_iter([Some(day), Some(b)]), "{key}");
            *per_partition.entry(key).or_default() += 1;
        }
        assert_eq!(per_partition.len(), 12, "3 days x 4 buckets");
        assert!(staged.len() > 12, "files roll at the target size: {}", staged.len());
        // Clustered rows: a partition is written once, its files filled in turn (the last
        // one of each may be small), not one file per input batch.
        let most = per_partition.values().max().unwrap();
        let rows_per_partition = ROWS as usize / 12;
        assert!(*most <= rows_per_partition / 400, "{per_partition:?}");

        let provider = staged.table_provider().unwrap();
        ctx.register_table("staged", provider).unwrap();
        let got = ctx
            .sql("SELECT count(*), sum(id), count(payload) FROM staged")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let value = |i: usize| got[0].column(i).as_primitive::<arrow::datatypes::Int64Type>().value(0);
        let with_payload = (0..ROWS).filter(|i| i % 11 != 0).count() as i64;
        assert_eq!(
            (value(0), value(1), value(2)),
            (ROWS, (0..ROWS).sum::<i64>(), with_payload)
        );

        let paths: HashSet<String> = staged.paths().into_iter().collect();
        let r = t.commit_staged(staged, CommitMode::Append).await.unwrap();
        assert_eq!((r.added_records, r.operation.as_deref()), (ROWS as u64, Some("append")));
        let live: HashSet<String> = t.files(None).await.unwrap().into_iter().map(|f| f.path).collect();
        assert_eq!(live, paths);
    }

    /// Staged files that are never committed are exactly what orphan cleanup finds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abandoned_staged_files_are_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = table(dir.path()).await;
        t.append(&scrambled()[..1], SchemaEvolution::default()).await.unwrap();
        let before = t.snapshots().len();
        let ctx = SessionContext::new();
        let staged = t.stage(frame(&ctx), SchemaEvolution::default()).await.unwrap();
        assert!(!staged.is_empty());
        let written: HashSet<String> = staged.paths().iter().map(|p| normalize_location(p)).collect();
        drop(staged);
        t.refresh().await.unwrap();
        assert_eq!(t.snapshots().len(), before);
        let opts = OrphanOptions {
            older_than: std::time::Duration::ZERO,
            force: true,
        };
        let plan = OrphanPlan::build(&t, &LocalLister, &opts).await.unwrap();
        let orphans: HashSet<String> = plan.orphans.iter().map(|o| normalize_location(&o.path)).collect();
        assert_eq!(orphans, written);
        plan.execute(&mut t, &LocalLister).await.unwrap();
        assert_eq!(t.scan(&Default::default()).await.unwrap().num_rows(), 4_000);
    }

    /// Publishing staged files replaces what the overwrite mode says: the partitions present,
    /// or the rows a predicate matches (the other rows of the files it touches are kept).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn staged_files_overwrite_partitions_or_a_predicate() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = table(dir.path()).await;
        t.append(&scrambled(), SchemaEvolution::default()).await.unwrap();
        let ctx = SessionContext::new();
        let day0 = "ts < CAST('2026-01-02' AS TIMESTAMP)";
        let count = |t: &Table, filter: &str| {
            let opts = crate::ScanOptions {
                filter: Some(filter.to_string()),
                ..Default::default()
            };
            let t = t.clone();
            async move { t.scan(&opts).await.unwrap().num_rows() }
        };
        let day0_rows = count(&t, day0).await;
        assert_eq!(day0_rows, ROWS as usize / 3);

        // Day 0 again, with half its rows: only day 0's partitions are replaced.
        let day0_half = frame(&ctx)
            .filter((col("id") % lit(3i64)).eq(lit(0i64)).and(col("id").lt(lit(15_000i64))))
            .unwrap();
        let staged = t.stage(day0_half, SchemaEvolution::default()).await.unwrap();
        let r = t
            .commit_staged(staged, CommitMode::Overwrite(OverwriteMode::DynamicPartitions))
            .await
            .unwrap();
        assert_eq!(r.operation.as_deref(), Some("overwrite"));
        assert_eq!(count(&t, day0).await, 5_000);
        assert_eq!(
            count(&t, "ts >= CAST('2026-01-02' AS TIMESTAMP)").await,
            2 * ROWS as usize / 3
        );

        // A predicate: rows with id < 100 go, the staged rows come in.
        let staged = t
            .stage(
                frame(&ctx).filter(col("id").lt(lit(10i64))).unwrap(),
                SchemaEvolution::default(),
            )
            .await
            .unwrap();
        let before = count(&t, "id >= 100").await;
        t.commit_staged(staged, CommitMode::Overwrite(OverwriteMode::Filter("id < 100".into())))
            .await
            .unwrap();
        assert_eq!(count(&t, "id >= 100").await, before);
        assert_eq!(count(&t, "id < 100").await, 10);
    }
}
