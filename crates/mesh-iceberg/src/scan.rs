//! Reading data files and SQL predicates (parsing, file pruning, row evaluation).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, BooleanArray, RecordBatch};
use arrow::datatypes::SchemaRef as ArrowSchemaRef;
use datafusion::common::DFSchema;
use datafusion::execution::context::SessionContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::pruning::PruningPredicate;
use futures::{StreamExt, TryStreamExt};
use iceberg::arrow::ArrowReaderBuilder;
use iceberg::io::FileIO;
use iceberg::scan::FileScanTask;
use iceberg::spec::{PartitionSpecRef, SchemaRef, TableMetadata};
use iceberg::Runtime;

use crate::commit::LiveFile;
use crate::conform::{arrow_schema, conform_batch};
use crate::error::{Error, Result};
use crate::stats::FileStatistics;

pub(crate) fn specs(meta: &TableMetadata) -> HashMap<i32, PartitionSpecRef> {
    meta.partition_specs_iter().map(|s| (s.spec_id(), s.clone())).collect()
}

/// Read whole data files with `schema` (columns missing from older files come back null,
/// so a column added without a new snapshot is visible immediately).
pub(crate) async fn read_files(
    table: &str,
    meta: &TableMetadata,
    file_io: &FileIO,
    schema: &SchemaRef,
    files: &[&LiveFile],
) -> Result<Vec<RecordBatch>> {
    if files.is_empty() {
        return Ok(vec![]);
    }
    let target = arrow_schema(schema)?;
    let field_ids: Vec<i32> = schema.as_struct().fields().iter().map(|f| f.id).collect();
    let tasks = scan_tasks(meta, schema, &field_ids, files).into_iter().map(Ok);
    let reader = ArrowReaderBuilder::new(file_io.clone(), Runtime::current()).build();
    let stream = reader.read(Box::pin(futures::stream::iter(tasks)))?.stream();
    let batches: Vec<RecordBatch> = stream.try_collect().await?;
    batches.iter().map(|b| conform_batch(table, b, &target)).collect()
}

/// [`read_files`] as a stream, decoded by a task of its own: the consumer (a writer) works on
/// one batch while the next ones are decoded, and at most `ahead` batches wait in between.
pub(crate) fn read_files_ahead(
    table: &str,
    meta: &TableMetadata,
    file_io: &FileIO,
    schema: &SchemaRef,
    files: &[&LiveFile],
    ahead: usize,
) -> Result<impl futures::Stream<Item = Result<RecordBatch>> + Send + 'static> {
    let field_ids: Vec<i32> = schema.as_struct().fields().iter().map(|f| f.id).collect();
    read_columns_ahead(table, meta, file_io, schema, &field_ids, files, ahead)
}

/// [`read_files_ahead`] returning only the columns `field_ids` of `schema` (in that order).
pub(crate) fn read_columns_ahead(
    table: &str,
    meta: &TableMetadata,
    file_io: &FileIO,
    schema: &SchemaRef,
    field_ids: &[i32],
    files: &[&LiveFile],
    ahead: usize,
) -> Result<impl futures::Stream<Item = Result<RecordBatch>> + Send + 'static> {
    let all = arrow_schema(schema)?;
    let fields = schema.as_struct().fields();
    let mut indices = Vec::with_capacity(field_ids.len());
    for id in field_ids {
        let Some(i) = fields.iter().position(|f| f.id == *id) else {
            return Err(Error::Invalid {
                table: table.to_string(),
                detail: format!("field id {id} is not in the schema being read"),
            });
        };
        indices.push(i);
    }
    let target = Arc::new(all.project(&indices)?);
    let tasks = scan_tasks(meta, schema, field_ids, files);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(ahead.max(1));
    let (table, file_io) = (table.to_string(), file_io.clone());
    tokio::spawn(async move {
        let reader = ArrowReaderBuilder::new(file_io, Runtime::current()).build();
        let stream = match reader.read(Box::pin(futures::stream::iter(tasks.into_iter().map(Ok)))) {
            Ok(r) => r.stream(),
            Err(e) => {
                let _ = tx.send(Err(e.into())).await;
                return;
            }
        };
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            let item = item
                .map_err(Error::from)
                .and_then(|b| conform_batch(&table, &b, &target));
            let failed = item.is_err();
            // A closed channel means the consumer stopped (it failed): stop reading.
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    Ok(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

/// Read tasks for whole data files, returning the columns `field_ids` of `schema`. Iceberg's
/// reader matches columns by field id, so renamed and added columns resolve per file.
pub(crate) fn scan_tasks(
    meta: &TableMetadata,
    schema: &SchemaRef,
    field_ids: &[i32],
    files: &[&LiveFile],
) -> Vec<FileScanTask> {
    let specs = specs(meta);
    files
        .iter()
        .map(|lf| {
            let f = &lf.file;
            FileScanTask::builder()
                .with_file_size_in_bytes(f.file_size_in_bytes())
                .with_start(0)
                .with_length(f.file_size_in_bytes())
                .with_record_count(Some(f.record_count()))
                .with_data_file_path(f.file_path().to_string())
                .with_data_file_format(f.file_format())
                .with_schema(schema.clone())
                .with_project_field_ids(field_ids.to_vec())
                .with_partition(Some(f.partition().clone()))
                .with_partition_spec(specs.get(&lf.spec_id).cloned())
                .with_case_sensitive(true)
                .build()
        })
        .collect()
}

/// A SQL boolean expression over the table's columns, e.g. `region = 'EU' AND ts >= '2024-01-01'`.
#[derive(Clone)]
pub(crate) struct Filter {
    pub sql: String,
    pub expr: Arc<dyn PhysicalExpr>,
    pub arrow_schema: ArrowSchemaRef,
}

impl Filter {
    pub(crate) fn compile(table: &str, sql: &str, arrow_schema: ArrowSchemaRef) -> Result<Self> {
        let invalid = |e: datafusion::error::DataFusionError| Error::Invalid {
            table: table.to_string(),
            detail: format!(
                "cannot use predicate {sql:?}: {e}. Columns are: {}",
                arrow_schema
                    .fields()
                    .iter()
                    .map(|f| format!("{} {}", f.name(), f.data_type()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let ctx = SessionContext::new();
        let df_schema = DFSchema::try_from(arrow_schema.as_ref().clone()).map_err(invalid)?;
        let expr = ctx.parse_sql_expr(sql, &df_schema).map_err(invalid)?;
        let expr = ctx.create_physical_expr(expr, &df_schema).map_err(invalid)?;
        Ok(Self {
            sql: sql.to_string(),
            expr,
            arrow_schema,
        })
    }

    pub(crate) fn from_physical(expr: Arc<dyn PhysicalExpr>, arrow_schema: ArrowSchemaRef) -> Self {
        Self {
            sql: format!("{expr}"),
            expr,
            arrow_schema,
        }
    }

    /// Per file: false only if the file provably has no matching row.
    pub(crate) fn may_match(
        &self,
        schema: &iceberg::spec::Schema,
        specs: &HashMap<i32, PartitionSpecRef>,
        files: &[&LiveFile],
    ) -> Vec<bool> {
        let Ok(pruning) = PruningPredicate::try_new(self.expr.clone(), self.arrow_schema.clone()) else {
            return vec![true; files.len()];
        };
        let stats = FileStatistics {
            files: files.to_vec(),
            schema,
            arrow_schema: self.arrow_schema.clone(),
            specs,
        };
        pruning.prune(&stats).unwrap_or_else(|_| vec![true; files.len()])
    }

    /// Row mask: true where the predicate is true (null counts as false).
    pub(crate) fn evaluate(&self, table: &str, batch: &RecordBatch) -> Result<Vec<bool>> {
        let value = self.expr.evaluate(batch)?.into_array(batch.num_rows())?;
        let mask = value
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| Error::Invalid {
                table: table.to_string(),
                detail: format!(
                    "predicate {:?} is of type {}, expected a boolean condition",
                    self.sql,
                    value.data_type()
                ),
            })?;
        Ok((0..mask.len()).map(|i| mask.is_valid(i) && mask.value(i)).collect())
    }
}

/// Column names a SQL predicate refers to.
pub(crate) fn referenced_columns(table: &str, sql: &str, arrow_schema: ArrowSchemaRef) -> Result<Vec<String>> {
    let df_schema = DFSchema::try_from(arrow_schema.as_ref().clone())?;
    let expr = SessionContext::new()
        .parse_sql_expr(sql, &df_schema)
        .map_err(|e| Error::Invalid {
            table: table.to_string(),
            detail: format!("cannot parse predicate {sql:?}: {e}"),
        })?;
    Ok(expr.column_refs().into_iter().map(|c| c.name.clone()).collect())
}

/// Keep rows where `keep[i]`.
pub(crate) fn filter_rows(batch: &RecordBatch, keep: &[bool]) -> Result<RecordBatch> {
    let mask = BooleanArray::from(keep.to_vec());
    Ok(arrow::compute::filter_record_batch(batch, &mask)?)
}

pub(crate) fn prune_live<'a>(
    filter: &Filter,
    schema: &iceberg::spec::Schema,
    specs: &HashMap<i32, PartitionSpecRef>,
    live: &'a [LiveFile],
) -> Vec<&'a LiveFile> {
    let files: Vec<&LiveFile> = live.iter().collect();
    let keep = filter.may_match(schema, specs, &files);
    live.iter().zip(keep).filter_map(|(f, k)| k.then_some(f)).collect()
}
