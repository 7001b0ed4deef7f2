//! Typed errors of the table engine.
//!
//! Callers branch on [`Error::Conflict`] (retry the whole operation later) versus everything
//! else (fix the input or the environment), so conflicts never hide inside IO errors.

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of the Iceberg table engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another writer committed a change this operation cannot be safely rebased on.
    #[error("commit conflict on table {table}: {reason}. Nothing was committed; re-run the operation on the new table state")]
    Conflict {
        /// Table identifier, `namespace.name`.
        table: String,
        /// What collided.
        reason: String,
    },
    /// The table does not exist in the catalog.
    #[error("table {table} does not exist in catalog {catalog}; create it first")]
    TableNotFound {
        /// Catalog name.
        catalog: String,
        /// Table identifier.
        table: String,
    },
    /// The table already exists.
    #[error("table {table} already exists in catalog {catalog}; load it instead of creating it")]
    TableAlreadyExists {
        /// Catalog name.
        catalog: String,
        /// Table identifier.
        table: String,
    },
    /// Input data does not fit the table schema.
    #[error("schema mismatch writing table {table}, column {column}: {detail}")]
    Schema {
        /// Table identifier.
        table: String,
        /// Column name.
        column: String,
        /// Types involved and how to fix it.
        detail: String,
    },
    /// Invalid request (bad predicate, duplicate merge keys, unknown column, ...).
    #[error("invalid request on table {table}: {detail}")]
    Invalid {
        /// Table identifier.
        table: String,
        /// What is wrong and how to fix it.
        detail: String,
    },
    /// A maintenance setting that could corrupt the table or break readers was refused.
    #[error("refusing unsafe maintenance on table {table}: {detail}")]
    Unsafe {
        /// Table identifier.
        table: String,
        /// Which setting, why it is unsafe and what to use instead.
        detail: String,
    },
    /// The catalog database failed.
    #[error("catalog database error: {0}")]
    Catalog(#[from] sqlx::Error),
    /// A remote catalog service (e.g. AWS Glue) rejected or failed a request.
    #[error("catalog {catalog} request failed: {detail}")]
    CatalogService {
        /// Catalog name.
        catalog: String,
        /// Operation, table and service error.
        detail: String,
    },
    /// The Iceberg library failed (metadata, manifests, file IO).
    #[error("iceberg error: {0}")]
    Iceberg(#[from] iceberg::Error),
    /// Arrow compute failed.
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// DataFusion failed (predicate parsing or evaluation).
    #[error("datafusion error: {0}")]
    DataFusion(Box<datafusion::error::DataFusionError>),
    /// Local IO failed.
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        Error::DataFusion(Box::new(e))
    }
}

impl Error {
    /// True when the operation lost a race with another writer and may be re-run.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
}
