//! The tables `mesh sql` reads besides the domain's tables under their database names
//! (`f01_refined.orders_clean`, see [`crate::inputs::tables_in_query`]):
//!
//! - the `layer.table` form manifests and every other command use (`refined.orders_clean`);
//! - `<table>_rejected`: the rows a raw table with `bad_rows = "quarantine"` set aside
//!   (`file`, `line`, `column_name`, `reason`, `raw`, and the `run_id` that read them), read
//!   from the Parquet files beside the raw table (`<table>_rejected/run_id=…/`);
//! - `<table>_check_failures`: the failing rows kept of a table's failed checks (`job`,
//!   `check`, `key`, `row` as JSON, `run_id`), read from `.mesh/check_failures/<layer>.<table>/`
//!   (see [`crate::checks::keep_failures`]).
//!
//! The last two are named in either form: `f01_raw.legacy_orders_rejected` or
//! `raw.legacy_orders_rejected`.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use datafusion::sql::TableReference;
use mesh_domain::{BadRows, Domain, Layer, Naming, Project, Table, UnknownTable};

use object_store::ObjectStoreExt;

use crate::engine::Engine;
use crate::inputs::{register_table, RawSelection, RegisterError};
use crate::session::{register_provider, CATALOG};

/// What a name the domain lookup does not know stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraKind {
    /// A domain table named `layer.table`.
    Layer,
    /// `<table>_rejected`.
    Rejected,
    /// `<table>_check_failures`.
    CheckFailures,
}

/// One such name in a query: registered at `schema.name`.
#[derive(Debug)]
pub struct ExtraTable<'d> {
    pub schema: String,
    pub name: String,
    pub kind: ExtraKind,
    pub project: &'d Project,
    pub table: &'d Table,
}

/// The names of a query that are not domain tables under their database names.
#[derive(Debug, Default)]
pub struct ExtraTables<'d> {
    pub tables: Vec<ExtraTable<'d>>,
    /// `layer.name` references that are not a table, each with its `did you mean`.
    pub unknown: Vec<UnknownTable>,
}

impl ExtraTables<'_> {
    /// Whether `schema.table` is one of these (so not an unknown domain table).
    pub fn covers(&self, qualified: &str) -> bool {
        self.tables
            .iter()
            .any(|t| format!("{}.{}", t.schema, t.name) == qualified)
    }
}

/// The references of `query` this module resolves.
pub fn extra_tables<'d>(
    domain: &'d Domain,
    naming: &Naming,
    ctx: &SessionContext,
    query: &str,
) -> Result<ExtraTables<'d>> {
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state.sql_to_statement(query, &dialect)?;
    let references = state.resolve_table_references(&statement)?;
    let default_schema = state.config().options().catalog.default_schema.clone();
    let mut out = ExtraTables::default();
    for r in references
        .into_iter()
        .map(|r: TableReference| r.resolve(CATALOG, &default_schema))
    {
        if &*r.catalog != CATALOG {
            continue;
        }
        let (schema, name) = (r.schema.to_string(), r.table.to_string());
        if out.covers(&format!("{schema}.{name}")) {
            continue;
        }
        let layer = Layer::ALL
            .into_iter()
            .find(|l| l.as_str() == schema || naming.database(*l) == schema);
        let Some(layer) = layer else { continue };
        let in_layer = |n: &str| domain.tables().find(|(_, t)| t.layer == layer && t.name.as_str() == n);
        let suffixed = |suffix: &str| name.strip_suffix(suffix).and_then(in_layer);
        let found = if let Some((p, t)) = suffixed("_rejected")
            .filter(|(_, t)| t.hive().is_some_and(|h| h.bad_rows == BadRows::Quarantine) && in_layer(&name).is_none())
        {
            Some((ExtraKind::Rejected, p, t))
        } else if let Some((p, t)) = suffixed("_check_failures").filter(|_| in_layer(&name).is_none()) {
            Some((ExtraKind::CheckFailures, p, t))
        } else if layer.as_str() == schema {
            in_layer(&name).map(|(p, t)| (ExtraKind::Layer, p, t))
        } else {
            None
        };
        match found {
            Some((kind, project, table)) => out.tables.push(ExtraTable {
                schema,
                name,
                kind,
                project,
                table,
            }),
            // `refined.orders_clen`: a layer's name, then no table of it.
            None if layer.as_str() == schema => {
                if let Err(e) = domain.find_table(naming, &format!("{schema}.{name}")) {
                    out.unknown.push(e);
                }
            }
            None => {}
        }
    }
    Ok(out)
}

/// The Parquet files under `url` (a folder; a missing one is an empty table), each in a
/// `run_id=…/` folder, as one table of `schema` plus the `run_id` column. They are small
/// (samples, and the rows a read set aside), so they are read whole.
async fn run_partitioned(engine: &Engine, url: &str, schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::error::DataFusionError;
    let external = |e: Box<dyn std::error::Error + Send + Sync>| DataFusionError::External(e);
    let mut fields: Vec<_> = schema.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new("run_id", DataType::Utf8, false)));
    let with_run = Arc::new(Schema::new(fields));
    let prefix = format!("{}/", url.trim_end_matches('/'));
    let mut files = engine.lister().list(&prefix).await.map_err(|e| external(Box::new(e)))?;
    files.retain(|f| f.location.ends_with(".parquet") && !f.location.rsplit('/').next().unwrap_or("").starts_with('.'));
    files.sort_by(|a, b| a.location.cmp(&b.location));
    let mut batches = Vec::new();
    for f in files {
        let Some(run_id) = f
            .location
            .split('/')
            .find_map(|part| part.strip_prefix("run_id="))
            .map(str::to_string)
        else {
            continue;
        };
        let target = engine.stores.locate(&f.location).map_err(|e| external(Box::new(e)))?;
        let bytes = target
            .store
            .get(&target.path)
            .await
            .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?
            .bytes()
            .await
            .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| external(Box::new(e)))?;
        for batch in reader {
            let batch = batch?;
            let mut columns: Vec<ArrayRef> = Vec::new();
            for field in schema.fields() {
                let i = batch.schema().index_of(field.name())?;
                columns.push(datafusion::arrow::compute::cast(batch.column(i), field.data_type())?);
            }
            columns.push(Arc::new(StringArray::from(vec![run_id.as_str(); batch.num_rows()])));
            batches.push(datafusion::arrow::record_batch::RecordBatch::try_new(
                with_run.clone(),
                columns,
            )?);
        }
    }
    Ok(Arc::new(MemTable::try_new(with_run, vec![batches])?))
}

/// Registers what [`extra_tables`] found.
pub async fn register_extra(
    engine: &Engine,
    ctx: &SessionContext,
    extra: &ExtraTables<'_>,
) -> Result<(), RegisterError> {
    let naming = &engine.layout.naming;
    for t in &extra.tables {
        let session = |source| RegisterError::Session {
            table: format!("{}.{}", t.schema, t.name),
            source: Box::new(source),
        };
        let provider: Arc<dyn TableProvider> = match t.kind {
            ExtraKind::Layer => {
                register_table(engine, ctx, t.project, t.table, RawSelection::All).await?;
                let database = naming.database(t.table.layer);
                ctx.table_provider(TableReference::full(CATALOG, database, t.table.name.as_str()))
                    .await
                    .map_err(session)?
            }
            ExtraKind::Rejected => {
                let url = engine.layout.url(&naming.rejected_location(&t.project.slug, t.table));
                run_partitioned(engine, &url, crate::raw::rejected_schema())
                    .await
                    .map_err(session)?
            }
            ExtraKind::CheckFailures => {
                let dir = crate::checks::check_failures_dir(&engine.root, t.table);
                let dir = std::path::absolute(&dir).unwrap_or(dir);
                let url = format!("file://{}", dir.display());
                run_partitioned(engine, &url, crate::checks::check_failures_schema())
                    .await
                    .map_err(session)?
            }
        };
        register_provider(ctx, &t.schema, &t.name, provider).map_err(session)?;
    }
    Ok(())
}
