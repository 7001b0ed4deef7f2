//! Which engine errors are worth another attempt (a whitelist: new error kinds are permanent).

use crate::error::{Error, ServiceErrorKind};

impl Error {
    /// True for a lost commit race, local IO, a busy catalog database, an IO failure inside the
    /// Iceberg library, and a remote catalog that throttled or timed out. Invalid requests,
    /// schema mismatches, corrupt or unreadable metadata and every other kind are permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Conflict { .. } | Error::Io(_) => true,
            Error::Catalog(db) => matches!(
                db,
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Database(_)
            ),
            Error::CatalogService { kind, .. } => !matches!(kind, ServiceErrorKind::Rejected),
            Error::Iceberg(e) => {
                e.retryable() || e.kind() == iceberg::ErrorKind::CatalogCommitConflicts || has_io_source(e)
            }
            _ => false,
        }
    }
}

fn has_io_source(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = e.source();
    while let Some(s) = cur {
        if s.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
        cur = s.source();
    }
    false
}
