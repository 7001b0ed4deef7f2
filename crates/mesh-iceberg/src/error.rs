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
    /// A merge whose source holds a key more than once, with no rule to pick one row. Its own
    /// variant so that callers can name their configuration's fix (meshkit: `on_duplicate`).
    #[error("invalid request on table {table}: the merge source has several rows with key ({key}); deduplicate the source or keep the latest row by an ordering column")]
    DuplicateKey {
        /// Table identifier.
        table: String,
        /// The first duplicated key, `column=value, …`.
        key: String,
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
    /// A job's state (snapshot summary property `key`) cannot be found in a table that has
    /// history: an incremental job would re-read every input, a time-range job forget its done
    /// intervals. Never answered with a silent fresh start.
    #[error("table {table} has history but no findable job state `{key}`: {why}\n  help: restore it as the table property of the same name (it is read only when the snapshots cannot answer; the next commit writes it into the table's state again, then remove the property): find the last value in the `job committed` log line or run record of the job's last commit, or in the summary of the job's last snapshot in an older metadata file under the table's metadata/ folder, then e.g. in Spark or Athena `ALTER TABLE … SET TBLPROPERTIES ('{key}' = '<value>')`; set it to '' to start over and process every input again")]
    StateLost {
        /// Table identifier.
        table: String,
        /// The summary property (`mesh.state.<job>.…`).
        key: String,
        /// What happened to the history.
        why: String,
    },
    /// The catalog database failed.
    #[error("catalog database error: {0}")]
    Catalog(#[from] sqlx::Error),
    /// A remote catalog service (e.g. AWS Glue) rejected or failed a request.
    #[error("catalog {catalog} request failed: {detail}")]
    CatalogService {
        /// Catalog name.
        catalog: String,
        /// What the service said, or why it could not be reached.
        kind: ServiceErrorKind,
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

/// How a remote catalog request failed, from the service's error code or the transport: it
/// decides whether another attempt may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceErrorKind {
    /// The service throttled the caller (`ThrottlingException`, `Rate exceeded`).
    Throttled,
    /// Another writer changed the entry at the same time (`ConcurrentModificationException`).
    ConcurrentModification,
    /// The service failed or was unreachable: a timeout, a dispatch failure, a 5xx.
    Unavailable,
    /// The service refused the request (access denied, invalid input, a missing entity).
    Rejected,
}

impl ServiceErrorKind {
    /// The kind of an error code (`ThrottlingException`), else `None`.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "ResourceNumberLimitExceededException" => Self::Throttled,
            "ConcurrentModificationException" => Self::ConcurrentModification,
            "InternalServiceException"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "ServiceUnavailableException"
            | "OperationTimeoutException" => Self::Unavailable,
            _ => return None,
        })
    }
}

/// An error and its sources for people: `outer: inner: root`, each message once (a message
/// that already quotes its source does not repeat it), and no Rust debug text.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.0.to_string();
        let mut cur = self.0.source();
        while let Some(s) = cur {
            let text = s.to_string();
            if !text.is_empty() && !shown.contains(&text) {
                shown = format!("{shown}: {text}");
            }
            cur = s.source();
        }
        f.write_str(&shown)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("service error")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("ThrottlingException: Rate exceeded")]
    struct Inner;

    /// Quotes its source in its own message, as most of ours do.
    #[derive(Debug, thiserror::Error)]
    #[error("GetTable t: {0}")]
    struct Quoting(#[source] Inner);

    #[test]
    fn a_chain_reads_as_text_each_message_once() {
        assert_eq!(
            ErrorChain(&Outer(Inner)).to_string(),
            "service error: ThrottlingException: Rate exceeded"
        );
        assert_eq!(
            ErrorChain(&Quoting(Inner)).to_string(),
            "GetTable t: ThrottlingException: Rate exceeded"
        );
    }

    #[test]
    fn service_codes_have_kinds() {
        let kind = |code| ServiceErrorKind::from_code(code);
        assert_eq!(kind("ThrottlingException"), Some(ServiceErrorKind::Throttled));
        assert_eq!(
            kind("ConcurrentModificationException"),
            Some(ServiceErrorKind::ConcurrentModification)
        );
        assert_eq!(kind("InternalServiceException"), Some(ServiceErrorKind::Unavailable));
        assert_eq!(kind("AccessDeniedException"), None);
        let err = |kind| Error::CatalogService {
            catalog: "glue".into(),
            kind,
            detail: "UpdateTable t: ConcurrentModificationException".into(),
        };
        assert!(err(ServiceErrorKind::ConcurrentModification).is_transient());
        assert!(!err(ServiceErrorKind::Rejected).is_transient());
    }
}
