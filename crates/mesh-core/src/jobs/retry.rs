//! Which failures a pipeline retries. A whitelist of transient kinds: IO and object-store
//! errors, throttling and timeouts of a remote catalog, a lost commit race. Everything else —
//! planning and schema errors, failed checks, bad rows, invalid input, corrupt files, and any
//! error kind added later — fails at once: another attempt would fail the same way, only later.

use datafusion::error::DataFusionError;

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
