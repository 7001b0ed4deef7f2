//! Which failures a pipeline retries. A whitelist of transient kinds: IO and object-store
//! errors, throttling and timeouts of a remote catalog, a lost commit race. Everything else —
//! planning and schema errors, failed checks, bad rows, invalid input, corrupt files, and any
//! error kind added later — fails at once: another attempt would fail the same way, only later.

use datafusion::error::DataFusionError;

use crate::job::JobError;
use crate::raw::RawError;

/// True when another attempt of the job may succeed.
pub fn job_error_is_transient(e: &JobError) -> bool {
    match e {
        JobError::Engine { source, .. } => iceberg_error_is_transient(source),
        JobError::Raw { source, .. } => matches!(**source, RawError::Store { .. }),
        JobError::Io { .. } => true,
        // One interval of a scheduled catch-up run: a retry starts at that interval.
        JobError::InInterval { source, .. } => job_error_is_transient(source),
        _ => false,
    }
}

/// See [`mesh_iceberg::Error::is_transient`].
pub fn iceberg_error_is_transient(e: &mesh_iceberg::Error) -> bool {
    e.is_transient()
}

/// True when executing a query failed on reading or writing storage, not on the query.
pub fn datafusion_error_is_transient(e: &DataFusionError) -> bool {
    match e.find_root() {
        DataFusionError::ObjectStore(inner) => !matches!(**inner, object_store::Error::NotFound { .. }),
        DataFusionError::IoError(_) => true,
        DataFusionError::External(inner) => {
            inner.downcast_ref::<std::io::Error>().is_some() || inner.downcast_ref::<object_store::Error>().is_some()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(e: mesh_iceberg::Error) -> JobError {
        JobError::Engine {
            job: "j".into(),
            source: Box::new(e),
        }
    }

    #[test]
    fn only_whitelisted_kinds_are_transient() {
        assert!(job_error_is_transient(&engine(mesh_iceberg::Error::Conflict {
            table: "t".into(),
            reason: "lost".into()
        })));
        assert!(job_error_is_transient(&engine(mesh_iceberg::Error::Io(
            std::io::Error::other("reset")
        ))));
        assert!(job_error_is_transient(&engine(mesh_iceberg::Error::CatalogService {
            catalog: "glue".into(),
            kind: mesh_iceberg::ServiceErrorKind::Throttled,
            detail: "UpdateTable: ThrottlingException: Rate exceeded".into()
        })));
        assert!(!job_error_is_transient(&engine(mesh_iceberg::Error::CatalogService {
            catalog: "glue".into(),
            kind: mesh_iceberg::ServiceErrorKind::Rejected,
            detail: "GetTable: AccessDeniedException".into()
        })));
        assert!(!job_error_is_transient(&engine(mesh_iceberg::Error::Invalid {
            table: "t".into(),
            detail: "bad predicate".into()
        })));
        assert!(!job_error_is_transient(&engine(mesh_iceberg::Error::Schema {
            table: "t".into(),
            column: "c".into(),
            detail: "int vs string".into()
        })));
        assert!(!job_error_is_transient(&JobError::Query {
            job: "j".into(),
            file: "projects/sales/sql/x.sql".into(),
            source: Box::new(DataFusionError::Plan("No field named qty".into())),
            help: None,
        }));
        assert!(!job_error_is_transient(&JobError::CheckFailed {
            job: "j".into(),
            check: "unique".into(),
            detail: "2 duplicates".into(),
            output: "curated.t".into(),
            checks: Box::new([]),
        }));
        let bad_row = RawError::BadRow {
            table: "raw.t".into(),
            file: "f.csv".into(),
            line: 3,
            column: "qty".into(),
            reason: "not an int".into(),
        };
        assert!(!job_error_is_transient(&JobError::Raw {
            job: "j".into(),
            table: "raw.t".into(),
            source: Box::new(bad_row)
        }));
        let store = RawError::Store {
            location: "s3://b/k".into(),
            source: object_store::Error::Generic {
                store: "S3",
                source: "connection reset".into(),
            }
            .into(),
        };
        assert!(job_error_is_transient(&JobError::Raw {
            job: "j".into(),
            table: "raw.t".into(),
            source: Box::new(store)
        }));
    }

    #[test]
    fn query_errors_are_permanent_storage_errors_transient() {
        assert!(!datafusion_error_is_transient(&DataFusionError::Plan(
            "no field".into()
        )));
        assert!(datafusion_error_is_transient(&DataFusionError::IoError(
            std::io::Error::other("broken pipe")
        )));
        let ctx = DataFusionError::Context(
            "reading".into(),
            Box::new(DataFusionError::IoError(std::io::Error::other("x"))),
        );
        assert!(datafusion_error_is_transient(&ctx));
    }
}
