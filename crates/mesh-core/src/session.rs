//! The session factory (`get_spark()`'s counterpart): a DataFusion context with Spark's SQL
//! functions and one SQL schema per Glue database (`f01_raw`, `f01_refined`, `f01_curated`),
//! so job SQL reads `f01_curated.daily_sales` locally exactly as on Glue.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::prelude::{SessionConfig, SessionContext};
use mesh_domain::{Layer, Naming};

pub const CATALOG: &str = "mesh";

/// Why a query session could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    DataFusion(#[from] Box<datafusion::error::DataFusionError>),
    /// A domain bucket could not be made readable by DataFusion.
    #[error(transparent)]
    Store(#[from] mesh_iceberg::StoreError),
}

impl From<datafusion::error::DataFusionError> for SessionError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        SessionError::DataFusion(Box::new(e))
    }
}

/// A context with the domain's databases as schemas and Spark-compatible functions.
pub fn new_context(naming: &Naming) -> Result<SessionContext> {
    let config = SessionConfig::new()
        .with_default_catalog_and_schema(CATALOG, "default")
        .with_create_default_catalog_and_schema(true)
        .with_information_schema(true)
        .with_target_partitions(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    let mut ctx = SessionContext::new_with_config(config);
    datafusion_spark::register_all(&mut ctx)?;
    let catalog = ctx.catalog(CATALOG).expect("created with the context");
    for layer in Layer::ALL {
        catalog.register_schema(&naming.database(layer), Arc::new(MemorySchemaProvider::new()))?;
    }
    Ok(ctx)
}

/// Registers (or replaces) an in-memory table as `{database}.{table}`.
pub fn register_batches(
    ctx: &SessionContext,
    database: &str,
    table: &str,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<()> {
    let parts = if batches.is_empty() {
        vec![vec![]]
    } else {
        split(batches, ctx.copied_config().target_partitions())
    };
    let mem = MemTable::try_new(schema, parts)?;
    register_provider(ctx, database, table, Arc::new(mem))
}

/// Registers (or replaces) any table provider as `{database}.{table}`.
pub fn register_provider(
    ctx: &SessionContext,
    database: &str,
    table: &str,
    provider: Arc<dyn TableProvider>,
) -> Result<()> {
    let catalog = ctx.catalog(CATALOG).expect("created with the context");
    let schema_provider: Arc<dyn SchemaProvider> = match catalog.schema(database) {
        Some(s) => s,
        None => {
            let s: Arc<dyn SchemaProvider> = Arc::new(MemorySchemaProvider::new());
            catalog.register_schema(database, s.clone())?;
            s
        }
    };
    schema_provider.deregister_table(table)?;
    schema_provider.register_table(table.to_string(), provider)?;
    Ok(())
}

/// Spreads batches over partitions so DataFusion scans them in parallel.
fn split(batches: Vec<RecordBatch>, n: usize) -> Vec<Vec<RecordBatch>> {
    let n = n.max(1);
    let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); n];
    for (i, b) in batches.into_iter().enumerate() {
        parts[i % n].push(b);
    }
    parts.retain(|p| !p.is_empty());
    parts
}
