//! Catalogs: where a table's current metadata file is recorded.
//!
//! A catalog here is only a pointer store with compare-and-swap; metadata files, manifests
//! and data files are written by the engine. That keeps the commit protocol identical for
//! every catalog (SQLite today, Glue later).

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use iceberg::io::FileIO;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::error::{Error, Result};

/// `namespace.name` of a table. Namespaces are single-level (Glue databases).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct TableIdent {
    /// Namespace (database), e.g. `f01_refined`.
    pub namespace: String,
    /// Table name.
    pub name: String,
}

impl TableIdent {
    /// Build an identifier.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for TableIdent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.namespace, self.name)
    }
}

impl FromStr for TableIdent {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.rsplit_once('.') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() => Ok(Self::new(ns, name)),
            _ => Err(format!(
                "invalid table identifier {s:?}: expected namespace.table, e.g. f01_refined.orders"
            )),
        }
    }
}

/// The pointer store behind tables. Implementations must make [`Catalog::swap_metadata_location`]
/// atomic: it is the only thing that makes concurrent commits safe.
#[async_trait]
pub trait Catalog: Send + Sync + fmt::Debug {
    /// Catalog name (the `catalog_name` column, pyiceberg's catalog name).
    fn name(&self) -> &str;
    /// Warehouse root, e.g. `file:///…/iceberg`.
    fn warehouse(&self) -> &str;
    /// File IO for metadata and data files of this catalog's tables.
    fn file_io(&self) -> &FileIO;
    /// Create a namespace; succeeds if it already exists.
    async fn create_namespace(&self, namespace: &str) -> Result<()>;
    /// All namespaces, sorted.
    async fn list_namespaces(&self) -> Result<Vec<String>>;
    /// Tables of one namespace, sorted.
    async fn list_tables(&self, namespace: &str) -> Result<Vec<TableIdent>>;
    /// Current metadata location of a table, `None` if the table does not exist.
    async fn metadata_location(&self, ident: &TableIdent) -> Result<Option<String>>;
    /// Record a new table. Fails with [`Error::TableAlreadyExists`] if the name is taken.
    async fn register_table(&self, ident: &TableIdent, metadata_location: &str) -> Result<()>;
    /// Atomically replace `expected` by `new`. Returns `false` (and changes nothing) if the
    /// current location is not `expected` any more.
    async fn swap_metadata_location(&self, ident: &TableIdent, expected: &str, new: &str) -> Result<bool>;
    /// Remove the table from the catalog (files are left for maintenance).
    async fn drop_table(&self, ident: &TableIdent) -> Result<bool>;
}

/// Embedded catalog in the Iceberg JDBC catalog layout, readable by pyiceberg's `SqlCatalog`
/// and Iceberg Java's `JdbcCatalog`.
#[derive(Debug, Clone)]
pub struct SqliteCatalog {
    name: String,
    warehouse: String,
    pool: SqlitePool,
    file_io: FileIO,
}

const CREATE_TABLES: &str = "CREATE TABLE IF NOT EXISTS iceberg_tables (\
    catalog_name VARCHAR(255) NOT NULL, \
    table_namespace VARCHAR(255) NOT NULL, \
    table_name VARCHAR(255) NOT NULL, \
    metadata_location VARCHAR(1000), \
    previous_metadata_location VARCHAR(1000), \
    iceberg_type VARCHAR(5), \
    PRIMARY KEY (catalog_name, table_namespace, table_name))";

const CREATE_NAMESPACE_PROPERTIES: &str = "CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (\
    catalog_name VARCHAR(255) NOT NULL, \
    namespace VARCHAR(255) NOT NULL, \
    property_key VARCHAR(255) NOT NULL, \
    property_value VARCHAR(1000), \
    PRIMARY KEY (catalog_name, namespace, property_key))";

impl SqliteCatalog {
    /// Open (creating if needed) the catalog database at `db_path`; tables default to
    /// `{warehouse}/{namespace}/{table}`. `warehouse` may be a path or a `file://` URI.
    pub async fn open(
        name: impl Into<String>,
        db_path: impl AsRef<std::path::Path>,
        warehouse: impl AsRef<str>,
    ) -> Result<Self> {
        let db_path = db_path.as_ref();
        if let Some(parent) = db_path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
        let options = SqliteConnectOptions::new()
            .filename(db_path)
            .create_if_missing(true)
            // Rollback journal (not WAL) so other tools see a single self-contained file;
            // writers of other processes wait on the lock instead of failing.
            .journal_mode(SqliteJournalMode::Delete)
            // FULL: a commit returns only after the journal and the database are synced, so an
            // acknowledged pointer swap survives a power loss. With a rollback journal NORMAL
            // is not enough (it may lose or corrupt the last transaction); NORMAL is safe only
            // with WAL, which would split the catalog into three files other tools must copy.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(60));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        sqlx::query(CREATE_TABLES).execute(&pool).await?;
        sqlx::query(CREATE_NAMESPACE_PROPERTIES).execute(&pool).await?;
        let warehouse = normalize_warehouse(warehouse.as_ref());
        Ok(Self {
            name: name.into(),
            warehouse,
            pool,
            file_io: FileIO::new_with_fs(),
        })
    }
}

/// `file://` URI without a trailing slash; plain paths become absolute `file://` URIs.
pub(crate) fn normalize_warehouse(w: &str) -> String {
    let w = w.trim_end_matches('/');
    if w.contains("://") {
        w.to_string()
    } else {
        let p = std::path::Path::new(w);
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|d| d.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        };
        format!("file://{}", abs.display())
    }
}

#[async_trait]
impl Catalog for SqliteCatalog {
    fn name(&self) -> &str {
        &self.name
    }

    fn warehouse(&self) -> &str {
        &self.warehouse
    }

    fn file_io(&self) -> &FileIO {
        &self.file_io
    }

    async fn create_namespace(&self, namespace: &str) -> Result<()> {
        // pyiceberg marks namespaces without properties by an `exists` property.
        sqlx::query(
            "INSERT OR IGNORE INTO iceberg_namespace_properties \
             (catalog_name, namespace, property_key, property_value) VALUES (?, ?, 'exists', 'true')",
        )
        .bind(&self.name)
        .bind(namespace)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT namespace AS ns FROM iceberg_namespace_properties WHERE catalog_name = ? \
             UNION SELECT table_namespace AS ns FROM iceberg_tables WHERE catalog_name = ? ORDER BY ns",
        )
        .bind(&self.name)
        .bind(&self.name)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }

    async fn list_tables(&self, namespace: &str) -> Result<Vec<TableIdent>> {
        let rows = sqlx::query(
            "SELECT table_name FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? \
             ORDER BY table_name",
        )
        .bind(&self.name)
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| TableIdent::new(namespace, r.get::<String, _>(0)))
            .collect())
    }

    async fn metadata_location(&self, ident: &TableIdent) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT metadata_location FROM iceberg_tables \
             WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?",
        )
        .bind(&self.name)
        .bind(&ident.namespace)
        .bind(&ident.name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| r.get::<Option<String>, _>(0)))
    }

    async fn register_table(&self, ident: &TableIdent, metadata_location: &str) -> Result<()> {
        self.create_namespace(&ident.namespace).await?;
        let res = sqlx::query(
            "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, \
             metadata_location, previous_metadata_location, iceberg_type) VALUES (?, ?, ?, ?, NULL, 'TABLE')",
        )
        .bind(&self.name)
        .bind(&ident.namespace)
        .bind(&ident.name)
        .bind(metadata_location)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => {
                crate::durable::log(crate::durable::Op::Point {
                    table: ident.to_string(),
                    location: metadata_location.to_string(),
                });
                Ok(())
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(Error::TableAlreadyExists {
                catalog: self.name.clone(),
                table: ident.to_string(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn swap_metadata_location(&self, ident: &TableIdent, expected: &str, new: &str) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? \
             WHERE catalog_name = ? AND table_namespace = ? AND table_name = ? AND metadata_location = ?",
        )
        .bind(new)
        .bind(expected)
        .bind(&self.name)
        .bind(&ident.namespace)
        .bind(&ident.name)
        .bind(expected)
        .execute(&self.pool)
        .await?;
        let swapped = res.rows_affected() == 1;
        if swapped {
            crate::durable::log(crate::durable::Op::Point {
                table: ident.to_string(),
                location: new.to_string(),
            });
        }
        Ok(swapped)
    }

    async fn drop_table(&self, ident: &TableIdent) -> Result<bool> {
        let res =
            sqlx::query("DELETE FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?")
                .bind(&self.name)
                .bind(&ident.namespace)
                .bind(&ident.name)
                .execute(&self.pool)
                .await?;
        Ok(res.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn swap_is_compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let cat = SqliteCatalog::open("t", dir.path().join("c.db"), dir.path().to_str().unwrap())
            .await
            .unwrap();
        let id = TableIdent::new("ns", "t1");
        cat.register_table(&id, "m0").await.unwrap();
        assert!(matches!(
            cat.register_table(&id, "m0").await,
            Err(Error::TableAlreadyExists { .. })
        ));
        assert!(cat.swap_metadata_location(&id, "m0", "m1").await.unwrap());
        assert!(!cat.swap_metadata_location(&id, "m0", "m2").await.unwrap());
        assert_eq!(cat.metadata_location(&id).await.unwrap().as_deref(), Some("m1"));
        assert_eq!(cat.list_tables("ns").await.unwrap(), vec![id.clone()]);
        assert_eq!(cat.list_namespaces().await.unwrap(), vec!["ns".to_string()]);
    }

    #[tokio::test]
    async fn catalog_commits_are_synced() {
        let dir = tempfile::tempdir().unwrap();
        let cat = SqliteCatalog::open("t", dir.path().join("c.db"), dir.path().to_str().unwrap())
            .await
            .unwrap();
        let row = sqlx::query("PRAGMA synchronous").fetch_one(&cat.pool).await.unwrap();
        assert_eq!(row.get::<i64, _>(0), 2, "synchronous = FULL");
        let row = sqlx::query("PRAGMA journal_mode").fetch_one(&cat.pool).await.unwrap();
        assert_eq!(row.get::<String, _>(0), "delete");
    }

    #[test]
    fn ident_parses() {
        assert_eq!("a.b".parse::<TableIdent>().unwrap(), TableIdent::new("a", "b"));
        assert!("ab".parse::<TableIdent>().is_err());
    }
}
