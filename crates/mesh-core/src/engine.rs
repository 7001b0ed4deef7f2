//! The table engine as the runtime uses it: one catalog for the domain, Iceberg tables created
//! from the manifest on first use, at the location the naming engine gives them.

use std::path::PathBuf;
use std::sync::Arc;

use mesh_domain::{Domain, Project, Table, Transform};
use mesh_iceberg::maintenance::{FileLister, LocalLister};
use mesh_iceberg::{Catalog, PartitionField, PartitionTransform, SortKey, SqliteCatalog, TableDefinition, TableIdent};

use crate::config::Config;
use crate::layout::Layout;
use crate::raw::arrow_schema;

pub struct Engine {
    pub domain: Arc<Domain>,
    pub root: PathBuf,
    pub layout: Layout,
    pub catalog: Arc<dyn Catalog>,
}

impl Engine {
    /// The local engine: the SQLite catalog and the lake folder from the configuration.
    pub async fn local(domain: Arc<Domain>, root: PathBuf, config: &Config) -> mesh_iceberg::Result<Engine> {
        let naming = mesh_domain::Naming::for_domain(&domain, config.env.value);
        let layout = Layout::local(naming, &config.lake_root.value);
        let warehouse = format!("file://{}", config.lake_root.value.display());
        let catalog = SqliteCatalog::open(domain.abbr.to_string(), &config.catalog_path.value, warehouse).await?;
        Ok(Engine {
            domain,
            root,
            layout,
            catalog: Arc::new(catalog),
        })
    }

    pub fn ident(&self, table: &Table) -> TableIdent {
        TableIdent::new(self.layout.naming.database(table.layer), table.name.to_string())
    }

    /// Lists and deletes table files for orphan cleanup. The local runtime keeps tables on the
    /// file system; an S3 runtime returns an `ObjectStoreLister` over its bucket.
    pub fn lister(&self) -> Arc<dyn FileLister> {
        Arc::new(LocalLister)
    }

    pub async fn load_table(&self, _project: &Project, table: &Table) -> mesh_iceberg::Result<mesh_iceberg::Table> {
        mesh_iceberg::Table::load(self.catalog.clone(), self.ident(table)).await
    }

    /// Loads the table, creating it from the manifest (schema, partition spec, sort order,
    /// target file size) the first time.
    pub async fn load_or_create(&self, project: &Project, table: &Table) -> mesh_iceberg::Result<mesh_iceberg::Table> {
        let ident = self.ident(table);
        if self.catalog.metadata_location(&ident).await?.is_some() {
            return mesh_iceberg::Table::load(self.catalog.clone(), ident).await;
        }
        let mut def = TableDefinition::new(arrow_schema(table));
        for p in &table.partition_by {
            let t = match p.transform {
                Transform::Identity => PartitionTransform::Identity,
                Transform::Year => PartitionTransform::Year,
                Transform::Month => PartitionTransform::Month,
                Transform::Day => PartitionTransform::Day,
                Transform::Hour => PartitionTransform::Hour,
                Transform::Bucket(n) => PartitionTransform::Bucket(n),
                Transform::Truncate(w) => PartitionTransform::Truncate(w),
            };
            def = def.partition(PartitionField::new(p.column.to_string(), t));
        }
        for s in &table.sort_order {
            def = def.sort_by(SortKey {
                column: s.column.to_string(),
                descending: s.descending,
                nulls_first: s.nulls_first,
            });
        }
        if let Some(o) = table.iceberg() {
            def = def.property(
                "write.target-file-size-bytes",
                (u64::from(o.target_file_size_mb) * 1024 * 1024).to_string(),
            );
        }
        def.location = Some(self.layout.url(&self.layout.table_location(project, table)));
        match mesh_iceberg::Table::create(self.catalog.clone(), ident.clone(), def).await {
            // Another job created it between our check and our create: use theirs.
            Err(mesh_iceberg::Error::TableAlreadyExists { .. }) => {
                mesh_iceberg::Table::load(self.catalog.clone(), ident).await
            }
            other => other,
        }
    }
}
