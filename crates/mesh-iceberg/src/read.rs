//! Reads (scans, time travel, DataFusion provider) and table information for `mesh table`.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef as ArrowSchemaRef;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DFSchema;
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{utils::conjunction, Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::ExecutionPlan;
use futures::{StreamExt, TryStreamExt};
use iceberg::arrow::ArrowReaderBuilder;
use iceberg::scan::FileScanTask;
use iceberg::spec::{Literal, SchemaRef, TableMetadata};
use serde::Serialize;

use crate::commit::{live_files, LiveFile};
use crate::conform::{arrow_schema, conform_batch};
use crate::error::{Error, Result};
use crate::scan::{filter_rows, prune_live, read_files, scan_tasks, specs, Filter};
use crate::table::Table;

/// Which rows to read.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Read this snapshot instead of the current one.
    pub snapshot_id: Option<i64>,
    /// Read the snapshot that was current at this time (ms since epoch).
    pub as_of_timestamp_ms: Option<i64>,
    /// SQL predicate, e.g. `day >= '2024-01-01' AND country = 'FR'`.
    pub filter: Option<String>,
    /// Columns to return (all when `None`).
    pub columns: Option<Vec<String>>,
}

/// Rows of a scan plus what pruning did.
#[derive(Debug, Clone)]
pub struct ScanOutput {
    /// Schema of `batches`.
    pub schema: ArrowSchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
    /// Snapshot read (`None`: empty table).
    pub snapshot_id: Option<i64>,
    /// Live data files of the snapshot.
    pub files_total: usize,
    /// Data files actually read after partition and statistics pruning.
    pub files_scanned: usize,
}

impl ScanOutput {
    /// Total rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }
}

/// Column of a schema.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ColumnInfo {
    /// Iceberg field id.
    pub id: i32,
    /// Name.
    pub name: String,
    /// Iceberg type, e.g. `long`, `timestamptz`.
    pub r#type: String,
    /// NOT NULL.
    pub required: bool,
}

/// Partition field.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PartitionFieldInfo {
    /// Partition field name.
    pub name: String,
    /// Source column.
    pub source: String,
    /// Transform, e.g. `day`, `bucket[16]`.
    pub transform: String,
}

/// `mesh table show`.
#[derive(Debug, Clone, Serialize)]
pub struct TableInfo {
    /// `namespace.table`.
    pub table: String,
    /// Table location.
    pub location: String,
    /// Current metadata file.
    pub metadata_location: String,
    /// Iceberg format version.
    pub format_version: u8,
    /// Current snapshot.
    pub current_snapshot_id: Option<i64>,
    /// Current schema id.
    pub schema_id: i32,
    /// Current schema.
    pub schema: Vec<ColumnInfo>,
    /// Default partition spec.
    pub partition_spec: Vec<PartitionFieldInfo>,
    /// Default sort order, e.g. `sale_date asc nulls first` (empty: unsorted).
    pub sort_order: Vec<String>,
    /// Table properties.
    pub properties: BTreeMap<String, String>,
    /// Totals from the current snapshot summary.
    pub total_records: Option<u64>,
    /// Live data files.
    pub total_data_files: Option<u64>,
    /// Bytes of live data files.
    pub total_files_size: Option<u64>,
}

/// `mesh table snapshots`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Id.
    pub snapshot_id: i64,
    /// Parent id.
    pub parent_id: Option<i64>,
    /// Sequence number.
    pub sequence_number: i64,
    /// Commit time, ms since epoch.
    pub timestamp_ms: i64,
    /// `append`, `overwrite`, `delete`, `replace`.
    pub operation: String,
    /// Full summary.
    pub summary: BTreeMap<String, String>,
    /// Schema id.
    pub schema_id: Option<i32>,
    /// Manifest list.
    pub manifest_list: String,
}

/// `mesh table history`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct HistoryEntry {
    /// When the snapshot became current.
    pub timestamp_ms: i64,
    /// Snapshot id.
    pub snapshot_id: i64,
    /// Whether it is an ancestor of (or is) the current snapshot.
    pub is_current_ancestor: bool,
}

/// `mesh table files`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DataFileInfo {
    /// File location.
    pub path: String,
    /// Partition values by partition field name (JSON).
    pub partition: BTreeMap<String, serde_json::Value>,
    /// Partition spec id.
    pub spec_id: i32,
    /// Rows.
    pub record_count: u64,
    /// Bytes.
    pub file_size_in_bytes: u64,
    /// Snapshot that added it.
    pub added_snapshot_id: i64,
    /// Data sequence number.
    pub sequence_number: i64,
}

pub(crate) fn literal_json(l: &Literal) -> serde_json::Value {
    match l {
        Literal::Primitive(p) => {
            use iceberg::spec::PrimitiveLiteral as P;
            match p {
                P::Boolean(b) => serde_json::json!(b),
                P::Int(v) => serde_json::json!(v),
                P::Long(v) => serde_json::json!(v),
                P::Float(v) => serde_json::json!(v.0),
                P::Double(v) => serde_json::json!(v.0),
                P::String(s) => serde_json::json!(s),
                other => serde_json::json!(format!("{other:?}")),
            }
        }
        other => serde_json::json!(format!("{other:?}")),
    }
}

fn schema_info(schema: &iceberg::spec::Schema) -> Vec<ColumnInfo> {
    schema
        .as_struct()
        .fields()
        .iter()
        .map(|f| ColumnInfo {
            id: f.id,
            name: f.name.clone(),
            r#type: f.field_type.to_string(),
            required: f.required,
        })
        .collect()
}

impl Table {
    fn resolve_snapshot(&self, opts: &ScanOptions) -> Result<(Option<i64>, SchemaRef)> {
        let meta = self.metadata();
        let table = self.ident().to_string();
        let pick = if let Some(id) = opts.snapshot_id {
            Some(id)
        } else if let Some(ts) = opts.as_of_timestamp_ms {
            let id = meta
                .history()
                .iter()
                .filter(|h| h.timestamp_ms <= ts)
                .max_by_key(|h| h.timestamp_ms)
                .map(|h| h.snapshot_id)
                .ok_or_else(|| Error::Invalid {
                    table: table.clone(),
                    detail: format!(
                        "the table has no snapshot at or before timestamp {ts} ms; see its history for valid times"
                    ),
                })?;
            Some(id)
        } else {
            None
        };
        match pick {
            None => Ok((meta.current_snapshot_id(), meta.current_schema().clone())),
            Some(id) => {
                let snap = meta.snapshot_by_id(id).ok_or_else(|| Error::Invalid {
                    table: table.clone(),
                    detail: format!("snapshot {id} does not exist; list snapshots to pick a valid one"),
                })?;
                // A historical snapshot is read with the schema it was written with.
                let schema = snap.schema(meta)?;
                Ok((Some(id), schema))
            }
        }
    }

    /// Read rows. The current snapshot is read with the table's current schema, so columns
    /// added since the last data commit appear (as nulls) right away.
    pub async fn scan(&self, opts: &ScanOptions) -> Result<ScanOutput> {
        let table = self.ident().to_string();
        let (snapshot_id, schema) = self.resolve_snapshot(opts)?;
        let meta = self.metadata();
        let file_io = self.catalog().file_io();
        let full = arrow_schema(&schema)?;
        let live = live_files(&table, meta, file_io, snapshot_id).await?;
        let filter = opts
            .filter
            .as_deref()
            .map(|sql| Filter::compile(&table, sql, full.clone()))
            .transpose()?;
        let (batches, files_scanned) = read_filtered(&table, meta, file_io, &schema, &live, filter.as_ref()).await?;
        let (schema_out, batches) = match &opts.columns {
            None => (full, batches),
            Some(cols) => {
                let idx: Vec<usize> = cols
                    .iter()
                    .map(|c| {
                        full.index_of(c).map_err(|_| Error::Invalid {
                            table: table.clone(),
                            detail: format!("column {c} is not in the table schema"),
                        })
                    })
                    .collect::<Result<_>>()?;
                let projected = Arc::new(full.project(&idx)?);
                let b = batches
                    .iter()
                    .map(|b| b.project(&idx))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                (projected, b)
            }
        };
        Ok(ScanOutput {
            schema: schema_out,
            batches,
            snapshot_id,
            files_total: live.len(),
            files_scanned,
        })
    }

    /// A DataFusion table over one snapshot (current when `None`), with filter pushdown into
    /// partition and statistics pruning. Rebuild it after commits: it is pinned to its snapshot.
    pub async fn table_provider(&self, snapshot_id: Option<i64>) -> Result<Arc<dyn TableProvider>> {
        let table = self.ident().to_string();
        let (snapshot_id, schema) = self.resolve_snapshot(&ScanOptions {
            snapshot_id,
            ..Default::default()
        })?;
        let meta = self.metadata();
        let live = live_files(&table, meta, self.catalog().file_io(), snapshot_id).await?;
        files_provider(
            table,
            Arc::new(meta.clone()),
            self.catalog().file_io().clone(),
            schema,
            live,
        )
    }

    /// `mesh table show`.
    pub fn info(&self) -> TableInfo {
        let meta = self.metadata();
        let schema = meta.current_schema();
        let spec = meta.default_partition_spec();
        let summary = meta
            .current_snapshot()
            .map(|s| s.summary().additional_properties.clone())
            .unwrap_or_default();
        let total = |k: &str| summary.get(k).and_then(|v| v.parse().ok());
        TableInfo {
            table: self.ident().to_string(),
            location: meta.location().to_string(),
            metadata_location: self.metadata_location().to_string(),
            format_version: meta.format_version() as u8,
            current_snapshot_id: meta.current_snapshot_id(),
            schema_id: schema.schema_id(),
            schema: schema_info(schema),
            partition_spec: spec
                .fields()
                .iter()
                .map(|f| PartitionFieldInfo {
                    name: f.name.clone(),
                    source: schema
                        .field_by_id(f.source_id)
                        .map(|s| s.name.clone())
                        .unwrap_or_else(|| format!("#{}", f.source_id)),
                    transform: f.transform.to_string(),
                })
                .collect(),
            sort_order: self
                .sort_order()
                .iter()
                .map(|k| {
                    format!(
                        "{} {} nulls {}",
                        k.column,
                        if k.descending { "desc" } else { "asc" },
                        if k.nulls_first { "first" } else { "last" }
                    )
                })
                .collect(),
            properties: meta.properties().clone().into_iter().collect(),
            total_records: total("total-records"),
            total_data_files: total("total-data-files"),
            total_files_size: total("total-files-size"),
        }
    }

    /// `mesh table snapshots`, oldest first.
    pub fn snapshots(&self) -> Vec<SnapshotInfo> {
        let mut v: Vec<SnapshotInfo> = self
            .metadata()
            .snapshots()
            .map(|s| SnapshotInfo {
                snapshot_id: s.snapshot_id(),
                parent_id: s.parent_snapshot_id(),
                sequence_number: s.sequence_number(),
                timestamp_ms: s.timestamp_ms(),
                operation: s.summary().operation.as_str().to_string(),
                summary: s.summary().additional_properties.clone().into_iter().collect(),
                schema_id: s.schema_id(),
                manifest_list: s.manifest_list().to_string(),
            })
            .collect();
        v.sort_by_key(|s| (s.sequence_number, s.timestamp_ms));
        v
    }

    /// `mesh table history`, oldest first.
    pub fn history(&self) -> Vec<HistoryEntry> {
        let meta = self.metadata();
        let mut ancestors = std::collections::HashSet::new();
        let mut cur = meta.current_snapshot_id();
        while let Some(id) = cur {
            ancestors.insert(id);
            cur = meta.snapshot_by_id(id).and_then(|s| s.parent_snapshot_id());
        }
        meta.history()
            .iter()
            .map(|h| HistoryEntry {
                timestamp_ms: h.timestamp_ms,
                snapshot_id: h.snapshot_id,
                is_current_ancestor: ancestors.contains(&h.snapshot_id),
            })
            .collect()
    }

    /// `mesh table files`: live data files of a snapshot (current when `None`).
    pub async fn files(&self, snapshot_id: Option<i64>) -> Result<Vec<DataFileInfo>> {
        let meta = self.metadata();
        let id = snapshot_id.or(meta.current_snapshot_id());
        let live = live_files(&self.ident().to_string(), meta, self.catalog().file_io(), id).await?;
        let specs = specs(meta);
        let mut out: Vec<DataFileInfo> = live
            .iter()
            .map(|lf| {
                let f = &lf.file;
                let mut partition = BTreeMap::new();
                if let Some(spec) = specs.get(&lf.spec_id) {
                    for (pf, v) in spec.fields().iter().zip(f.partition().iter()) {
                        partition.insert(pf.name.clone(), v.map(literal_json).unwrap_or(serde_json::Value::Null));
                    }
                }
                DataFileInfo {
                    path: f.file_path().to_string(),
                    partition,
                    spec_id: lf.spec_id,
                    record_count: f.record_count(),
                    file_size_in_bytes: f.file_size_in_bytes(),
                    added_snapshot_id: lf.snapshot_id,
                    sequence_number: lf.sequence_number,
                }
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

async fn read_filtered(
    table: &str,
    meta: &TableMetadata,
    file_io: &iceberg::io::FileIO,
    schema: &SchemaRef,
    live: &[LiveFile],
    filter: Option<&Filter>,
) -> Result<(Vec<RecordBatch>, usize)> {
    let files: Vec<&LiveFile> = match filter {
        Some(f) => prune_live(f, schema, &specs(meta), live),
        None => live.iter().collect(),
    };
    let batches = read_files(table, meta, file_io, schema, &files).await?;
    let batches = match filter {
        None => batches,
        Some(f) => batches
            .iter()
            .map(|b| filter_rows(b, &f.evaluate(table, b)?))
            .collect::<Result<Vec<_>>>()?,
    };
    Ok((batches, files.len()))
}

/// A DataFusion table over exactly `files` (a snapshot's live files, or staged ones), read
/// with `schema`.
pub(crate) fn files_provider(
    table: String,
    meta: Arc<TableMetadata>,
    file_io: iceberg::io::FileIO,
    schema: SchemaRef,
    files: Vec<LiveFile>,
) -> Result<Arc<dyn TableProvider>> {
    Ok(Arc::new(SnapshotProvider {
        table,
        meta,
        file_io,
        arrow_schema: arrow_schema(&schema)?,
        schema,
        live: files,
    }))
}

#[derive(Debug)]
struct SnapshotProvider {
    table: String,
    meta: Arc<TableMetadata>,
    file_io: iceberg::io::FileIO,
    schema: SchemaRef,
    arrow_schema: ArrowSchemaRef,
    live: Vec<LiveFile>,
}

#[async_trait]
impl TableProvider for SnapshotProvider {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> ArrowSchemaRef {
        self.arrow_schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        // Pruning is by file: DataFusion must still filter the rows.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        // Filters prune whole files here; DataFusion filters the rows (pushdown is Inexact).
        let files: Vec<&LiveFile> = match conjunction(filters.iter().cloned()) {
            Some(expr) => {
                let df_schema = DFSchema::try_from(self.arrow_schema.as_ref().clone())?;
                let phys = state.create_physical_expr(expr, &df_schema)?;
                let filter = Filter::from_physical(phys, self.arrow_schema.clone());
                prune_live(&filter, &self.schema, &specs(&self.meta), &self.live)
            }
            None => self.live.iter().collect(),
        };
        let all: Vec<usize> = (0..self.arrow_schema.fields().len()).collect();
        let columns = projection.unwrap_or(&all);
        let output = Arc::new(self.arrow_schema.project(columns)?);
        let fields = self.schema.as_struct().fields();
        // Only the projected columns are read from the files. With none (`count(*)`), one
        // column is read for the row counts and dropped.
        let field_ids: Vec<i32> = match columns.first() {
            None => fields.first().map(|f| vec![f.id]).unwrap_or_default(),
            Some(_) => columns.iter().map(|i| fields[*i].id).collect(),
        };
        let tasks = scan_tasks(&self.meta, &self.schema, &field_ids, &files);
        // Files spread over the session's partitions by size, so each partition streams a
        // similar number of bytes and no partition holds more than one batch at a time.
        let slots = state.config().target_partitions().clamp(1, tasks.len().max(1));
        let mut groups: Vec<(u64, Vec<FileScanTask>)> = vec![(0, Vec::new()); slots];
        let mut sorted = tasks;
        sorted.sort_by_key(|t| std::cmp::Reverse(t.file_size_in_bytes));
        for task in sorted {
            let lightest = groups
                .iter_mut()
                .min_by_key(|(bytes, _)| *bytes)
                .expect("at least one slot");
            lightest.0 += task.file_size_in_bytes;
            lightest.1.push(task);
        }
        let partitions: Vec<Arc<dyn PartitionStream>> = groups
            .into_iter()
            .map(|(_, tasks)| {
                Arc::new(FileGroup {
                    table: self.table.clone(),
                    file_io: self.file_io.clone(),
                    tasks,
                    schema: output.clone(),
                    batch_size: state.config().batch_size(),
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        Ok(Arc::new(StreamingTableExec::try_new(
            output,
            partitions,
            None,
            Vec::new(),
            false,
            limit,
        )?))
    }
}

/// A data file that does not decode is damaged ([`Error::Corrupt`], never retried); other
/// failures (network, permissions) keep their kind.
fn data_file_error(table: &str, path: &str, e: iceberg::Error) -> Error {
    let text = e.to_string();
    let missing = text.contains("No such file") || text.contains("not found");
    // The Parquet reader's errors (bad magic, corrupt footer, undecodable pages) come as
    // `Unexpected`; they are about the file's bytes, never the network.
    if e.kind() == iceberg::ErrorKind::DataInvalid || missing || text.contains("Parquet error") {
        Error::corrupt(path, e).in_table(table)
    } else {
        Error::from(e)
    }
}

/// One partition of a snapshot scan: data files read one after another, batch by batch.
#[derive(Debug)]
struct FileGroup {
    table: String,
    file_io: iceberg::io::FileIO,
    tasks: Vec<FileScanTask>,
    schema: ArrowSchemaRef,
    batch_size: usize,
}

impl PartitionStream for FileGroup {
    fn schema(&self) -> &ArrowSchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let to_df = |e: Error| datafusion::error::DataFusionError::External(Box::new(e));
        let (table, target) = (self.table.clone(), self.schema.clone());
        let reader = ArrowReaderBuilder::new(self.file_io.clone(), iceberg::Runtime::current())
            .with_data_file_concurrency_limit(1)
            .with_batch_size(self.batch_size)
            .build();
        // One reader stream per file, so a failure names the file it came from.
        let named = table.clone();
        let batches = futures::stream::iter(self.tasks.clone())
            .map(move |task| {
                let (path, table) = (task.data_file_path.clone(), named.clone());
                let one = futures::stream::once(async move { Ok(task) });
                let file_error = move |e: iceberg::Error| to_df(data_file_error(&table, &path, e));
                let stream = reader.clone().read(Box::pin(one)).map(|r| r.stream());
                futures::stream::once(futures::future::ready(stream))
                    .try_flatten()
                    .map_err(file_error)
            })
            .flatten()
            .and_then(move |b| futures::future::ready(conform_batch(&table, &b, &target).map_err(to_df)));
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}
