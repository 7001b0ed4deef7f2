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
    /// A file the table references is missing or cannot be parsed (truncated metadata,
    /// garbage manifest or data file). Not retried: re-running cannot repair it.
    #[error("table {table}: {path} is missing or damaged: {detail}\n  help: `mesh table check {table}` lists every damaged file of the table; restore them from a backup")]
    Corrupt {
        /// Table identifier (empty until the caller names it, see [`Error::in_table`]).
        table: String,
        /// The damaged file.
        path: String,
        /// What reading it gave.
        detail: String,
    },
    /// The catalog has no entry for the table, but its folder already holds Iceberg metadata:
    /// creating a fresh table there would silently abandon the table's history.
    #[error("table {table} is not in the catalog, but {location} already holds Iceberg metadata (latest: {latest}); a new table would abandon its history and orphan every file\n  help: run `mesh table register {table}` to adopt the latest metadata file")]
    Unregistered {
        /// Table identifier.
        table: String,
        /// The table folder.
        location: String,
        /// The newest metadata file found.
        latest: String,
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
    /// A damaged-file error for `path` (the table is named later by [`Error::in_table`]).
    pub(crate) fn corrupt(path: &str, e: impl std::fmt::Display) -> Error {
        Error::Corrupt {
            table: String::new(),
            path: path.to_string(),
            detail: e.to_string(),
        }
    }

    /// Names the table of a [`Error::Corrupt`] that does not name one yet.
    pub fn in_table(self, name: &str) -> Error {
        match self {
            Error::Corrupt { table, path, detail } if table.is_empty() => Error::Corrupt {
                table: name.to_string(),
                path,
                detail,
            },
            other => other,
        }
    }

    /// True when a file of the table is missing or damaged (retrying cannot help).
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }

    /// True when the operation lost a race with another writer and may be re-run.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
}

/// An error and its causes on one line, `outer: cause: root cause`. AWS SDK errors say only
/// "service error" or "dispatch failure" at the top and keep the reason in their sources;
/// `DisplayErrorContext` would add the whole `Debug` dump (`ProviderError(ProviderError { … })`)
/// after it, which is noise for the person reading the message.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        // Wrappers often repeat their source's text; say it once.
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod chain_tests {
    use super::error_chain;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn the_causes_follow_once_and_no_debug_text() {
        let e = E(
            "dispatch failure",
            Some(Box::new(E(
                "io error",
                Some(Box::new(E(
                    "connection refused",
                    Some(Box::new(E("connection refused", None))),
                ))),
            ))),
        );
        assert_eq!(error_chain(&e), "dispatch failure: io error: connection refused");
    }
}
