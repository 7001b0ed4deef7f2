//! meshkit's Iceberg table engine.
//!
//! A small interface of our own over Apache `iceberg` 0.10.1 so the library can change
//! later: a [`Catalog`] is a pointer store with compare-and-swap ([`SqliteCatalog`] uses the
//! Iceberg JDBC layout that pyiceberg's `SqlCatalog` and Java's `JdbcCatalog` read), and a
//! [`Table`] runs copy-on-write operations (append, overwrite, delete, replace, merge) that
//! produce spec-compliant v2 snapshots, retrying commits under optimistic concurrency.
//!
//! ```no_run
//! # async fn demo(batches: Vec<arrow::array::RecordBatch>) -> mesh_iceberg::Result<()> {
//! use std::sync::Arc;
//! use mesh_iceberg::*;
//! let catalog = Arc::new(SqliteCatalog::open("mesh", ".mesh/lake/catalog.db", ".mesh/lake/warehouse").await?);
//! let mut table = Table::load(catalog, "f01_refined.orders".parse().unwrap()).await?;
//! table.merge(&batches, &MergeOptions::on(["order_id"])).await?;
//! let rows = table.scan(&ScanOptions::default()).await?;
//! # Ok(()) }
//! ```

mod catalog;
mod check;
mod commit;
mod conform;
pub mod durable;
mod error;
#[cfg(feature = "glue")]
mod glue;
#[cfg(feature = "glue")]
mod glue_client;
mod increment;
mod keys;
mod layout;
pub mod maintenance;
mod merge;
mod objects;
mod parallel_write;
mod read;
mod scan;
mod stage;
mod state;
mod stats;
mod table;
mod transient;
mod write;

pub use catalog::{Catalog, SqliteCatalog, TableIdent};
pub use check::{CheckReport, FileProblem};
pub use conform::SchemaEvolution;
pub use error::{Error, ErrorChain, Result, ServiceErrorKind};
#[cfg(feature = "glue")]
pub use glue::GlueCatalog;
#[cfg(feature = "glue")]
pub use glue_client::{CallError, GlueClient};
pub use increment::Increment;
pub use layout::{LayoutColumn, TableLayout};
pub use merge::MergeSource;
pub use objects::{Located, ObjectStorage, ObjectStorageFactory, ObjectStores, S3Options, StoreError};
pub use read::{
    ColumnInfo, DataFileInfo, HistoryEntry, PartitionFieldInfo, ScanOptions, ScanOutput, SnapshotInfo, TableInfo,
};
pub use stage::StagedFiles;
pub use state::{exit_point, job_state, summary_property, CommitProperties, StateLost, STATE_PREFIX, STATE_TAG};
pub use table::{
    CommitMode, CommitResult, DuplicateKeys, MergeOptions, MergeResult, OverwriteMode, PartitionField,
    PartitionTransform, RetryPolicy, SortKey, Table, TableDefinition,
};
pub use write::{DEFAULT_TARGET_FILE_SIZE, TARGET_FILE_SIZE_PROPERTY};
