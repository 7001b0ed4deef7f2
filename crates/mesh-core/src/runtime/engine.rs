//! The table engine as the runtime uses it: one catalog for the domain, Iceberg tables created
//! from the manifest on first use, at the location the naming engine gives them.
//!
//! [`Engine::open`] picks the storage and catalog from `ENV`: locally the SQLite catalog and
//! the lake folder, in `dev`/`int`/`prod` the Glue Data Catalog and S3 (see [`crate::cloud`]).
//! Everything above it (jobs, pipelines, raw IO) is the same code for every environment.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;
use mesh_domain::{Domain, Env, Layer, Project, Table};
use mesh_iceberg::maintenance::{FileLister, ListedFile, LocalLister, ObjectStoreLister};
use mesh_iceberg::{Catalog, GlueCatalog, ObjectStores, SqliteCatalog, TableIdent};

use crate::config::Config;
use crate::layout::{Layout, Storage};

pub struct Engine {
    pub domain: Arc<Domain>,
    pub root: PathBuf,
    pub layout: Layout,
    pub catalog: Arc<dyn Catalog>,
    /// Every file the runtime reads or writes outside Iceberg (raw tables, quarantine) goes
    /// through these; the catalog's Iceberg file IO uses the same stores in the cloud.
    pub stores: ObjectStores,
    /// DataFusion's runtime of every query the engine runs: one memory pool of the
    /// configuration's `memory_limit` for the whole process, spilling to the OS temp folder.
    pub runtime: Arc<RuntimeEnv>,
    /// The configuration's `max_concurrency`: also the compaction groups rewritten at once.
    pub max_concurrency: usize,
    /// `mesh run --allow-destructive`: a write applies the destructive table changes it can
    /// (a column dropped, other identifier fields) and goes on despite the others.
    pub allow_destructive: bool,
    /// The Glue catalog on AWS: other domains' catalogs (the products the domain consumes)
    /// are read through its client. `None` locally.
    pub glue: Option<GlueCatalog>,
}

impl Engine {
    /// The engine of the configured environment: [`Engine::local`] for `ENV=local`,
    /// [`Engine::cloud`] otherwise. `vars` are the process variables (AWS endpoints).
    pub async fn open(
        domain: Arc<Domain>,
        root: PathBuf,
        config: &Config,
        vars: &BTreeMap<String, String>,
    ) -> mesh_iceberg::Result<Engine> {
        match config.env.value {
            Env::Local => Engine::local(domain, root, config).await,
            Env::Dev | Env::Int | Env::Prod => Engine::cloud(domain, root, config, vars).await,
        }
    }

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
            stores: ObjectStores::default(),
            runtime: runtime(config)?,
            max_concurrency: config.max_concurrency.value,
            allow_destructive: false,
            glue: None,
        })
    }

    /// The AWS engine: Glue catalog and S3, named by the model for `config.env`, reached with
    /// the AWS SDK's default configuration chain. Missing Glue databases are created.
    pub async fn cloud(
        domain: Arc<Domain>,
        root: PathBuf,
        config: &Config,
        vars: &BTreeMap<String, String>,
    ) -> mesh_iceberg::Result<Engine> {
        let naming = mesh_domain::Naming::for_domain(&domain, config.env.value);
        let layout = Layout::for_env(naming.clone(), &config.lake_root.value);
        let sdk = crate::cloud::sdk_config(config).await;
        let stores = crate::cloud::object_stores(&sdk, config, vars);
        // Tables get explicit locations from the naming engine; the warehouse is only the
        // catalog's fallback for tables created by other tools.
        let warehouse = format!("s3://{}", naming.data_bucket(Layer::Refined));
        let catalog = GlueCatalog::new(
            domain.abbr.to_string(),
            crate::cloud::glue_client(&sdk, config, vars),
            &warehouse,
            stores.file_io(),
        );
        for layer in Layer::ALL {
            catalog.create_namespace(&naming.database(layer)).await?;
        }
        Ok(Engine {
            domain,
            root,
            layout,
            catalog: Arc::new(catalog.clone()),
            stores,
            runtime: runtime(config)?,
            max_concurrency: config.max_concurrency.value,
            allow_destructive: false,
            glue: Some(catalog),
        })
    }

    /// A query session (see [`crate::session::new_context`]) in the engine's memory pool that
    /// can also read the domain's buckets.
    pub fn session(&self) -> Result<SessionContext, crate::session::SessionError> {
        let ctx = crate::session::new_context_in(&self.layout.naming, self.runtime.clone())?;
        self.register_object_stores(&ctx)?;
        Ok(ctx)
    }

    /// Makes the domain's buckets readable by DataFusion itself (`s3://…` in SQL or listing
    /// tables) with the engine's S3 settings. Local files need nothing.
    pub fn register_object_stores(&self, ctx: &SessionContext) -> Result<(), crate::session::SessionError> {
        if !matches!(self.layout.storage, Storage::S3) {
            return Ok(());
        }
        for layer in Layer::ALL {
            let bucket = self.layout.naming.data_bucket(layer);
            let store = self.stores.bucket(&bucket)?;
            let url = ObjectStoreUrl::parse(format!("s3://{bucket}"))?;
            ctx.register_object_store(url.as_ref(), store);
        }
        Ok(())
    }

    /// The URL of a table's folder or object prefix, without a trailing slash.
    pub fn location(&self, project: &Project, table: &Table) -> String {
        self.layout
            .url(&self.layout.table_location(project, table))
            .trim_end_matches('/')
            .to_string()
    }

    pub fn ident(&self, table: &Table) -> TableIdent {
        self.ident_at(table.layer, table.name.as_str())
    }

    /// The catalog name of a table by its layer and name, declared or not (a declared move's
    /// origin, a retired table).
    pub fn ident_at(&self, layer: mesh_domain::Layer, name: &str) -> TableIdent {
        TableIdent::new(self.layout.naming.database(layer), name.to_string())
    }

    /// Lists and deletes table files for orphan cleanup, through the same stores the tables
    /// are written with (the local file system, or each table's S3 bucket).
    pub fn lister(&self) -> Arc<dyn FileLister> {
        Arc::new(StoresLister(self.stores.clone()))
    }

    pub async fn load_table(&self, _project: &Project, table: &Table) -> mesh_iceberg::Result<mesh_iceberg::Table> {
        mesh_iceberg::Table::load(self.catalog.clone(), self.ident(table)).await
    }

    /// The table a job writes: created from the manifest the first time, else brought to it
    /// (see [`crate::evolve`]) or refused before anything is written.
    pub async fn load_for_write(&self, project: &Project, table: &Table) -> mesh_iceberg::Result<mesh_iceberg::Table> {
        let mut t = self.load_or_create(project, table).await?;
        let writers: Vec<&str> = project
            .jobs
            .iter()
            .filter(|j| j.output == table.reference())
            .map(|j| j.name.as_str())
            .collect();
        let applied = crate::evolve::bring_to_manifest(&mut t, table, &writers, self.allow_destructive).await?;
        if !applied.is_empty() {
            tracing::info!(table = %table.reference(), changes = %applied.join("; "), "table brought to its manifest");
        }
        Ok(t)
    }

    /// Loads the table, creating it from the manifest (schema, partition spec, sort order,
    /// target file size) the first time.
    pub async fn load_or_create(&self, project: &Project, table: &Table) -> mesh_iceberg::Result<mesh_iceberg::Table> {
        let ident = self.ident(table);
        if self.catalog.metadata_location(&ident).await?.is_some() {
            return mesh_iceberg::Table::load(self.catalog.clone(), ident).await;
        }
        // A lost or replaced catalog must not silently start the table over its old files.
        if let Some(latest) = self.latest_metadata(project, table).await? {
            return Err(mesh_iceberg::Error::Unregistered {
                table: table.reference().to_string(),
                location: self.location(project, table),
                latest,
            });
        }
        let mut def = crate::translate::table_definition(table);
        def.location = Some(self.location(project, table));
        match mesh_iceberg::Table::create(self.catalog.clone(), ident.clone(), def).await {
            // Another job created it between our check and our create: use theirs.
            Err(mesh_iceberg::Error::TableAlreadyExists { .. }) => {
                mesh_iceberg::Table::load(self.catalog.clone(), ident).await
            }
            other => other,
        }
    }
}

fn runtime(config: &Config) -> mesh_iceberg::Result<Arc<RuntimeEnv>> {
    crate::session::runtime_env(config.memory_limit.value, true, None)
        .map_err(|e| mesh_iceberg::Error::DataFusion(Box::new(e)))
}

impl Engine {
    /// The newest `*.metadata.json` in the table's `metadata/` folder (highest version
    /// number), if the folder holds any.
    pub async fn latest_metadata(&self, project: &Project, table: &Table) -> mesh_iceberg::Result<Option<String>> {
        let folder = format!("{}/metadata/", self.location(project, table));
        let files = self.lister().list(&folder).await?;
        let version = |name: &str| -> Option<u64> {
            let file = name.rsplit('/').next()?;
            let stem = file.strip_suffix(".metadata.json")?;
            stem.split(['-', '.']).next()?.trim_start_matches('v').parse().ok()
        };
        Ok(files
            .into_iter()
            .filter_map(|f| version(&f.location).map(|v| (v, f.location)))
            .max()
            .map(|(_, location)| location))
    }

    /// `mesh table register`: adopts the newest metadata file of the table's folder after the
    /// catalog lost its entry.
    pub async fn register(&self, project: &Project, table: &Table) -> mesh_iceberg::Result<mesh_iceberg::Table> {
        let location = self.location(project, table);
        let latest = self
            .latest_metadata(project, table)
            .await?
            .ok_or_else(|| mesh_iceberg::Error::Invalid {
                table: table.reference().to_string(),
                detail: format!(
                    "{location}/metadata/ holds no metadata file; nothing to register (the next run creates the table)"
                ),
            })?;
        mesh_iceberg::Table::register(self.catalog.clone(), self.ident(table), &latest, &location).await
    }
}

/// Orphan listing over the runtime's object stores: an `s3://bucket/…` location goes to that
/// bucket's store, a local path to the file system.
#[derive(Debug)]
struct StoresLister(ObjectStores);

impl StoresLister {
    fn lister_for(&self, location: &str) -> mesh_iceberg::Result<Box<dyn FileLister>> {
        if location.starts_with("file:") || location.starts_with('/') {
            return Ok(Box::new(LocalLister));
        }
        let located = self
            .0
            .locate(location)
            .map_err(|e| mesh_iceberg::Error::Io(std::io::Error::other(e)))?;
        Ok(Box::new(ObjectStoreLister::new(located.store, located.base)))
    }
}

#[async_trait::async_trait]
impl FileLister for StoresLister {
    async fn list(&self, prefix: &str) -> mesh_iceberg::Result<Vec<ListedFile>> {
        self.lister_for(prefix)?.list(prefix).await
    }

    async fn delete(&self, location: &str) -> mesh_iceberg::Result<()> {
        self.lister_for(location)?.delete(location).await
    }
}
