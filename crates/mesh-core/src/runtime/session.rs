//! The session factory (`get_spark()`'s counterpart): a DataFusion context with Spark's SQL
//! functions and one SQL schema per Glue database (`f01_raw`, `f01_refined`, `f01_curated`),
//! so job SQL reads `f01_curated.daily_sales` locally exactly as on Glue.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::Result;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::TrackConsumersPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use mesh_domain::{Layer, Naming};

pub const CATALOG: &str = "mesh";

/// Spark's (ANSI) arithmetic for the local engine; see the module documentation.
#[path = "spark_arith.rs"]
pub mod spark_arith;
/// Spark's datetime patterns for the local engine; see the module documentation.
#[path = "spark_datetime.rs"]
pub mod spark_datetime;

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

/// The memory and spill space of every query in the process: a pool of `memory_limit` bytes
/// shared by all sessions (jobs running at the same time share the promise instead of each
/// getting it), from which sorts, joins and aggregations reserve and beyond which they spill to
/// files under `spill_dir` (the OS temp folder when `None`). `spill: false` disables the disk:
/// a query over the limit then fails with DataFusion's resources-exhausted error.
pub fn runtime_env(memory_limit: u64, spill: bool, spill_dir: Option<std::path::PathBuf>) -> Result<Arc<RuntimeEnv>> {
    let limit = usize::try_from(memory_limit).unwrap_or(usize::MAX);
    // Lending: an operator may use what the others do not hold, and half a fair share stays
    // within reach of each (see `memory_pool`). The error of an exhausted pool names its five
    // biggest consumers.
    let pool = TrackConsumersPool::new(
        crate::memory_pool::LendingPool::new(limit),
        std::num::NonZeroUsize::new(5).expect("non-zero"),
    );
    let mode = match (spill, spill_dir) {
        (false, _) => DiskManagerMode::Disabled,
        (true, None) => DiskManagerMode::OsTmpDirectory,
        (true, Some(d)) => DiskManagerMode::Directories(vec![d]),
    };
    RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(mode))
        .build_arc()
}

/// A context with the domain's databases as schemas and Spark-compatible functions, with a
/// memory pool of its own of the default size (half the machine's memory).
pub fn new_context(naming: &Naming) -> Result<SessionContext> {
    let limit = crate::config::parse_memory_limit(crate::config::DEFAULT_MEMORY_LIMIT, crate::config::machine_memory())
        .unwrap_or(u64::MAX);
    new_context_in(naming, runtime_env(limit, true, None)?)
}

/// [`new_context`] running in `runtime` (the engine's: one memory pool for the process).
pub fn new_context_in(naming: &Naming, runtime: Arc<RuntimeEnv>) -> Result<SessionContext> {
    let mut config = SessionConfig::new()
        .with_default_catalog_and_schema(CATALOG, "default")
        .with_create_default_catalog_and_schema(true)
        .with_information_schema(true)
        .with_target_partitions(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    // `0.1` is DECIMAL(1,1) as in Spark, not a binary float (0.1 + 0.2 = 0.3 exactly).
    config.options_mut().sql_parser.parse_float_as_decimal = true;
    // datafusion-spark's functions (abs, pmod, …) fail on overflow as Spark's ANSI mode does.
    config.options_mut().execution.enable_ansi_mode = true;
    // A sort keeps this much back for merging its spill files; DataFusion's 10 MB would be
    // most of a small pool, so it is a share of the pool instead.
    let pool = runtime.memory_pool.memory_limit();
    if let datafusion::execution::memory_pool::MemoryLimit::Finite(n) = pool {
        let reserve = (n / 16).min(config.options().execution.sort_spill_reservation_bytes);
        config.options_mut().execution.sort_spill_reservation_bytes = reserve;
    }
    // Spark's arithmetic (decimal result types, HALF_UP, errors instead of wrapped values)
    // is rewritten into the plan before DataFusion's type coercion sees it.
    let state = datafusion::execution::SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_analyzer_rules(analyzer_rules())
        .build();
    let mut ctx = SessionContext::new_with_state(state);
    datafusion_spark::register_all(&mut ctx)?;
    spark_arith::register(&ctx);
    let catalog = ctx.catalog(CATALOG).expect("created with the context");
    for layer in Layer::ALL {
        catalog.register_schema(&naming.database(layer), Arc::new(MemorySchemaProvider::new()))?;
    }
    Ok(ctx)
}

/// DataFusion's analyzer with Spark's arithmetic before type coercion, and Spark's datetime
/// patterns translated before anything else reads them.
fn analyzer_rules() -> Vec<Arc<dyn datafusion::optimizer::AnalyzerRule + Send + Sync>> {
    let mut rules = spark_arith::analyzer_rules();
    rules.insert(0, Arc::new(spark_datetime::SparkDatetimePatterns));
    rules
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
