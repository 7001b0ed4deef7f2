//! Where data lives. The naming engine gives every table a bucket and a key; this maps them
//! to storage: locally a folder per bucket under the lake root (`.mesh/lake/f01-raw-local/…`),
//! in the cloud the S3 bucket itself. Jobs never see the difference.

use std::path::{Path, PathBuf};

use mesh_domain::{Env, Naming, ObjectPath, Project, Table};

/// Reaching the storage (a folder or a bucket) failed: locating the store, or an operation on it.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Locate(#[from] mesh_iceberg::StoreError),
    #[error(transparent)]
    Object(#[from] object_store::Error),
}

/// The default lake root, relative to the domain root.
pub const DEFAULT_LAKE_DIR: &str = ".mesh/lake";
/// Run records and reports, relative to the domain root.
pub const RUNS_DIR: &str = ".mesh/runs";

#[derive(Debug, Clone)]
pub enum Storage {
    /// Buckets are folders under this root.
    Local { root: PathBuf },
    /// Buckets are S3 buckets.
    S3,
}

#[derive(Debug, Clone)]
pub struct Layout {
    pub naming: Naming,
    pub storage: Storage,
}

impl Layout {
    pub fn local(naming: Naming, lake_root: &Path) -> Layout {
        Layout {
            naming,
            storage: Storage::Local {
                root: lake_root.to_path_buf(),
            },
        }
    }

    pub fn for_env(naming: Naming, lake_root: &Path) -> Layout {
        match naming.env() {
            Env::Local => Layout::local(naming, lake_root),
            _ => Layout {
                naming,
                storage: Storage::S3,
            },
        }
    }

    /// A URL for any object path: `file:///…/.mesh/lake/{bucket}/{key}` or `s3://{bucket}/{key}`.
    pub fn url(&self, p: &ObjectPath) -> String {
        match &self.storage {
            Storage::Local { root } => format!("file://{}", self.local_path(root, p).display()),
            Storage::S3 => p.s3_uri(),
        }
    }

    /// The local folder of an object path (local storage only).
    pub fn path(&self, p: &ObjectPath) -> Option<PathBuf> {
        match &self.storage {
            Storage::Local { root } => Some(self.local_path(root, p)),
            Storage::S3 => None,
        }
    }

    fn local_path(&self, root: &Path, p: &ObjectPath) -> PathBuf {
        root.join(&p.bucket).join(p.key.trim_end_matches('/'))
    }

    pub fn table_location(&self, project: &Project, table: &Table) -> ObjectPath {
        self.naming.table_location(&project.slug, table)
    }
}

/// Whether `id` can name a file in the runs folder and nothing else: no separators, no `..`.
pub fn valid_run_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_domain::{DomainAbbr, Layer, ProjectSlug};

    #[test]
    fn local_buckets_are_folders() {
        let naming = Naming::new(&DomainAbbr::parse("f01").unwrap(), Env::Local);
        let layout = Layout::local(naming.clone(), Path::new("/repo/.mesh/lake"));
        let wh = naming.warehouse(&ProjectSlug::parse("pj01").unwrap(), Layer::Curated);
        assert_eq!(
            layout.url(&wh),
            "file:///repo/.mesh/lake/f01-curated-local/pj01/iceberg"
        );
        let s3 = Layout::for_env(
            Naming::new(&DomainAbbr::parse("f01").unwrap(), Env::Dev),
            Path::new("/x"),
        );
        assert_eq!(s3.url(&wh), "s3://f01-curated-local/pj01/iceberg/");
    }
}
