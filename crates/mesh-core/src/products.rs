//! Reading other domains' data products (issue 25 item 5), locally.
//!
//! A project declares what it consumes (`[[consumes]] product = "f01.daily_sales@1"`, `path`
//! to the producer domain's checkout); `mesh pull` records in `products.lock.json` (committed,
//! at the domain root) the snapshot of the producer's table each product is read at, with the
//! product's contract as it was then (columns, partitioning, identifier, freshness). A job
//! that names the product in its inputs reads exactly that snapshot from the producer's local
//! catalog and lake, as `{producer database}.{table}` (`f01_curated.daily_sales`, the name the
//! producer's Glue catalog gives it), and its run record names the product, version and
//! snapshot. Nothing moves until the next `mesh pull`: a producer's later writes do not change
//! what the consumer computes.
//!
//! `mesh validate` compares each pin with the producer's model at `path` (when it is checked
//! out): the product must still exist at the pinned major version, without breaking changes
//! since the pin (the comparison itself is mesh-infra's contract diff, done by the CLI).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use mesh_domain::{Consumed, Domain, Env, Naming, Product, ProductInput, Project, Table};
use serde::{Deserialize, Serialize};

use crate::config::{Config, Inputs};
use crate::engine::Engine;

pub use mesh_domain::consume::{Lock, Pin, PinColumn, LOCK_FILE};

#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a lock file meshkit wrote: {message}\n  help: run `mesh pull` to write it again")]
    BadLock { path: PathBuf, message: String },
    #[error("{product}: the producer domain at {path} cannot be read: {message}\n  help: check out the producer's repository there (the `path` of its [[consumes]] entry, relative to this domain's root)")]
    Producer {
        product: String,
        path: PathBuf,
        message: String,
    },
    #[error("{product}: {message}\n  help: {help}")]
    Product {
        product: String,
        message: String,
        help: String,
    },
    #[error("{product}: not pulled: {LOCK_FILE} has no pin for it\n  help: run `mesh pull` to record the producer's current snapshot, and commit {LOCK_FILE}")]
    NotPulled { product: String },
    #[error("{product}: the producer is not checked out at {path} (no domain.json there)\n  help: check out the producer's repository there (the `path` of its [[consumes]] entry, relative to this domain's root)")]
    NotCheckedOut { product: String, path: PathBuf },
    #[error("{product}: reading the producer's table: {source}")]
    Engine {
        product: String,
        #[source]
        source: Box<mesh_iceberg::Error>,
    },
    #[error("{product}: {message}")]
    Session { product: String, message: String },
}

/// What a job read of a product: in its run record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRead {
    /// `f01.daily_sales`.
    pub product: String,
    pub version: u32,
    pub snapshot_id: i64,
    pub rows: u64,
    /// The snapshot's commit time (ms since the epoch): how old the data read is.
    #[serde(default)]
    pub committed_at_ms: i64,
    /// The producer's freshness promise (`26h`), as the pin recorded it.
    #[serde(default)]
    pub freshness: String,
}

/// The lock file of the domain at `root`; an empty lock when there is none.
pub fn read_lock(root: &Path) -> Result<Lock, ProductError> {
    let path = root.join(LOCK_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| ProductError::BadLock {
            path,
            message: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Lock::default()),
        Err(source) => Err(ProductError::Io { path, source }),
    }
}

fn write_lock(root: &Path, lock: &Lock) -> Result<PathBuf, ProductError> {
    let path = root.join(LOCK_FILE);
    let mut text = serde_json::to_string_pretty(lock).expect("the lock serialises");
    text.push('\n');
    std::fs::write(&path, text).map_err(|source| ProductError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Every product the domain's projects consume, each once (the first declaration).
pub fn consumed(domain: &Domain) -> Vec<&Consumed> {
    let mut out: Vec<&Consumed> = Vec::new();
    for c in domain.projects.iter().flat_map(|p| p.consumes.iter()) {
        if !out.iter().any(|o| o.id() == c.id()) {
            out.push(c);
        }
    }
    out
}

/// The producer's model, checked out at `root/c.path`.
pub fn producer_domain(root: &Path, c: &Consumed) -> Result<(PathBuf, Domain), ProductError> {
    let dir = root.join(&c.path);
    let err = |message: String| ProductError::Producer {
        product: c.to_string(),
        path: c.path.clone(),
        message,
    };
    if !dir.join(mesh_domain::load::DOMAIN_FILE).is_file() {
        return Err(ProductError::NotCheckedOut {
            product: c.to_string(),
            path: c.path.clone(),
        });
    }
    let domain = mesh_domain::load_domain(&dir).map_err(|d| err(format!("its model is not valid:\n{d}")))?;
    if domain.abbr != c.producer {
        return Err(err(format!("it is domain `{}`, not `{}`", domain.abbr, c.producer)));
    }
    Ok((dir, domain))
}

/// The product in the producer's model, or why it cannot be consumed at the pinned version.
pub fn find_product<'d>(
    producer: &'d Domain,
    c: &Consumed,
) -> Result<(&'d Project, &'d Product, &'d Table), ProductError> {
    let Some(found) = producer.product(c.product.as_str()) else {
        let names: Vec<String> = producer.products().map(|(_, p, _)| p.name.to_string()).collect();
        return Err(ProductError::Product {
            product: c.to_string(),
            message: format!("domain `{}` publishes no product `{}`", producer.abbr, c.product),
            help: if names.is_empty() {
                "it publishes no products: ask its team to declare one ([[products]])".into()
            } else {
                format!("its products are: {}", names.join(", "))
            },
        });
    };
    Ok(found)
}

/// A local engine on the producer's checkout (its `mesh.toml` and `.env` apply; always the
/// local environment: a checkout's lake is its local one).
async fn producer_engine(dir: &Path, producer: Domain, c: &Consumed) -> Result<Engine, ProductError> {
    let inputs = Inputs {
        domain_root: dir,
        abbr: &producer.abbr,
        region: &producer.region,
        vars: crate::config::read_dotenv(&dir.join(crate::config::DOTENV_FILE)),
        flags: BTreeMap::from([("env", Env::Local.to_string())]),
    };
    let config = Config::resolve(&inputs).map_err(|e| ProductError::Producer {
        product: c.to_string(),
        path: c.path.clone(),
        message: e.to_string(),
    })?;
    Engine::local(Arc::new(producer), dir.to_path_buf(), &config)
        .await
        .map_err(|e| ProductError::Engine {
            product: c.to_string(),
            source: Box::new(e),
        })
}

async fn producer_table(dir: &Path, producer: &Domain, c: &Consumed) -> Result<mesh_iceberg::Table, ProductError> {
    let (project, _, table) = find_product(producer, c)?;
    let engine = producer_engine(dir, producer.clone(), c).await?;
    engine.load_table(project, table).await.map_err(|e| match e {
        mesh_iceberg::Error::TableNotFound { .. } => ProductError::Product {
            product: c.to_string(),
            message: format!(
                "the producer has not written {} yet",
                Naming::for_domain(producer, Env::Local).qualified_table(table)
            ),
            help: format!(
                "run its jobs in the producer's checkout first (`mesh run` in {})",
                c.path.display()
            ),
        },
        other => ProductError::Engine {
            product: c.to_string(),
            source: Box::new(other),
        },
    })
}

/// `mesh pull`: pins every consumed product at its producer's current snapshot and writes the
/// lock; returns the pins and the lock's path.
pub async fn pull(root: &Path, domain: &Domain) -> Result<(Vec<Pin>, PathBuf), ProductError> {
    let mut pins = Vec::new();
    for c in consumed(domain) {
        let (dir, producer) = producer_domain(root, c)?;
        let (_, product, table) = find_product(&producer, c)?;
        if product.version != c.version {
            return Err(ProductError::Product {
                product: c.to_string(),
                message: format!(
                    "the producer publishes version {} of `{}`, not {}",
                    product.version, c.product, c.version
                ),
                help: format!(
                    "read its contract ({}), adapt the jobs that read it, then consume `{}.{}@{}`",
                    dir.join(product.contract_path()).display(),
                    c.producer,
                    c.product,
                    product.version
                ),
            });
        }
        let t = producer_table(&dir, &producer, c).await?;
        let Some(snapshot) = t.metadata().current_snapshot() else {
            return Err(ProductError::Product {
                product: c.to_string(),
                message: "the producer's table has no snapshot yet".into(),
                help: format!(
                    "run its jobs in the producer's checkout first (`mesh run` in {})",
                    c.path.display()
                ),
            });
        };
        let n = Naming::for_domain(&producer, Env::Local);
        let (project, _, _) = find_product(&producer, c)?;
        pins.push(Pin {
            product: c.id(),
            version: c.version,
            path: c.path.clone(),
            snapshot_id: snapshot.snapshot_id(),
            committed_at_ms: snapshot.timestamp_ms(),
            region: producer.region.clone(),
            slug: project.slug.to_string(),
            layer: table.layer.to_string(),
            database: n.database(table.layer),
            table: table.name.to_string(),
            freshness: product.freshness.to_string(),
            columns: table
                .columns
                .iter()
                .map(|col| PinColumn {
                    name: col.name.to_string(),
                    data_type: col.data_type.to_string(),
                    nullable: col.nullable,
                })
                .collect(),
            partition_by: table.partition_by.iter().map(|p| p.to_string()).collect(),
            identifier: table.identifier.iter().map(|i| i.to_string()).collect(),
        });
    }
    let path = write_lock(root, &Lock { products: pins.clone() })?;
    Ok((pins, path))
}

/// Registers a job's product inputs in `ctx`. Locally each is read at its pinned snapshot from
/// the producer's checkout. On AWS (`dev`, `int`, `prod`) it is read from the producer's Glue
/// Data Catalog in that environment (the account `[[consumes]] accounts` names), at the
/// producer's current snapshot, through what the producer's sharing Terraform grants; the pin
/// still says where the table is and which columns the consumer relies on.
pub async fn register_inputs(
    engine: &Engine,
    ctx: &SessionContext,
    project: &Project,
    inputs: &[ProductInput],
) -> Result<Vec<ProductRead>, ProductError> {
    if inputs.is_empty() {
        return Ok(Vec::new());
    }
    let lock = read_lock(&engine.root)?;
    let mut out = Vec::new();
    for input in inputs {
        let c = project.consumed(input).expect("validated product input");
        let pin = lock
            .pin(&c.id())
            .filter(|p| p.version == c.version)
            .ok_or_else(|| ProductError::NotPulled { product: c.to_string() })?;
        let (t, snapshot_id) = match engine.layout.naming.env() {
            Env::Local => pinned_table(engine, c, pin).await?,
            env => shared_table(engine, c, pin, env).await?,
        };
        let provider = t
            .table_provider(Some(snapshot_id))
            .await
            .map_err(|e| ProductError::Engine {
                product: c.to_string(),
                source: Box::new(e),
            })?;
        crate::session::register_provider(ctx, &pin.database, &pin.table, provider).map_err(|e| {
            ProductError::Session {
                product: c.to_string(),
                message: format!("cannot register {}: {e}", pin.qualified()),
            }
        })?;
        let snapshot = t.metadata().snapshot_by_id(snapshot_id);
        let rows = snapshot
            .and_then(|s| s.summary().additional_properties.get("total-records").cloned())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        out.push(ProductRead {
            product: c.id(),
            version: c.version,
            snapshot_id,
            rows,
            committed_at_ms: snapshot.map_or(pin.committed_at_ms, |s| s.timestamp_ms()),
            freshness: pin.freshness.clone(),
        });
    }
    Ok(out)
}

/// Locally: the producer's checkout, at the pinned snapshot.
async fn pinned_table(engine: &Engine, c: &Consumed, pin: &Pin) -> Result<(mesh_iceberg::Table, i64), ProductError> {
    let (dir, producer) = producer_domain(&engine.root, c)?;
    let t = producer_table(&dir, &producer, c).await?;
    if t.metadata().snapshot_by_id(pin.snapshot_id).is_none() {
        return Err(ProductError::Product {
            product: c.to_string(),
            message: format!(
                "the pinned snapshot {} is no longer in the producer's table (expired by its maintenance)",
                pin.snapshot_id
            ),
            help: format!("run `mesh pull` to read its current snapshot, and commit {LOCK_FILE}"),
        });
    }
    Ok((t, pin.snapshot_id))
}

/// On AWS: the producer's catalog in `env`, at its current snapshot. The pinned snapshot is
/// the producer's local one and means nothing there; what the consumer relies on is the
/// contract, so every column the pin records must still be in the table.
async fn shared_table(
    engine: &Engine,
    c: &Consumed,
    pin: &Pin,
    env: Env,
) -> Result<(mesh_iceberg::Table, i64), ProductError> {
    let Some(account) = c.accounts.get(&env) else {
        return Err(ProductError::Product {
            product: c.to_string(),
            message: format!("no AWS account of the producer `{}` for env `{env}`", c.producer),
            help: format!(
                "add `{env} = \"<12-digit account>\"` to the `accounts` of this [[consumes]] entry: the account whose Glue catalog shares the product"
            ),
        });
    };
    let Some(glue) = &engine.glue else {
        return Err(ProductError::Product {
            product: c.to_string(),
            message: format!("env `{env}` has no Glue catalog configured"),
            help: "run with ENV=local to read the pinned snapshot of the producer's checkout".into(),
        });
    };
    let ident = mesh_iceberg::TableIdent::new(&pin.database, &pin.table);
    let catalog: Arc<dyn mesh_iceberg::Catalog> = Arc::new(glue.of_account(account));
    let t = mesh_iceberg::Table::load(catalog, ident).await.map_err(|e| match e {
        mesh_iceberg::Error::TableNotFound { .. } => ProductError::Product {
            product: c.to_string(),
            message: format!(
                "{} is not in the Glue catalog of account {account} (env `{env}`)",
                pin.qualified()
            ),
            help: format!(
                "the producer `{}` deploys and runs the product in {env} first; check that account {account} is the producer's {env} account",
                c.producer
            ),
        },
        other => ProductError::Engine {
            product: c.to_string(),
            source: Box::new(other),
        },
    })?;
    let Some(snapshot) = t.metadata().current_snapshot() else {
        return Err(ProductError::Product {
            product: c.to_string(),
            message: format!("{} has no snapshot in env `{env}` yet", pin.qualified()),
            help: format!("the producer `{}` runs its pipeline in {env} first", c.producer),
        });
    };
    let snapshot_id = snapshot.snapshot_id();
    let schema = t.metadata().current_schema();
    let missing: Vec<&str> = pin
        .columns
        .iter()
        .filter(|col| schema.field_by_name(&col.name).is_none())
        .map(|col| col.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(ProductError::Product {
            product: c.to_string(),
            message: format!(
                "the producer's table in env `{env}` (account {account}) has no column {} that the pin in {LOCK_FILE} records",
                missing.join(", ")
            ),
            help: format!(
                "the deployed product no longer matches version {} of its contract: ask the producer `{}`, or `mesh pull` and adapt to its current contract",
                c.version, c.producer
            ),
        });
    }
    Ok((t, snapshot_id))
}

/// Registers the pinned schema of every consumed product as an empty table, so `mesh validate`
/// plans job SQL over it as over the domain's own tables. Products not pulled are left out
/// (reported by [`check_pins`]).
pub fn register_pinned_schemas(ctx: &SessionContext, root: &Path) {
    let Ok(lock) = read_lock(root) else { return };
    for pin in &lock.products {
        let fields: Vec<datafusion::arrow::datatypes::Field> = pin
            .columns
            .iter()
            .filter_map(|c| {
                let t = mesh_domain::ColumnType::parse(&c.data_type)?;
                Some(datafusion::arrow::datatypes::Field::new(
                    &c.name,
                    crate::translate::arrow_type(t),
                    c.nullable,
                ))
            })
            .collect();
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
        if let Ok(mem) = MemTable::try_new(schema, vec![vec![]]) {
            let _ = crate::session::register_provider(ctx, &pin.database, &pin.table, Arc::new(mem));
        }
    }
}

/// One consumed product as `mesh validate` sees it: its pin, and the producer's product now
/// (when the producer is checked out).
pub struct PinState<'d> {
    pub consumed: &'d Consumed,
    /// The project consuming it (the manifest to point at).
    pub project: &'d Project,
    pub index: usize,
    pub pin: Option<Pin>,
    /// The producer's model and product, or why it could not be read.
    pub producer: Result<Domain, ProductError>,
}

/// Every `[[consumes]]` entry with its pin and its producer's model.
pub fn check_pins<'d>(root: &Path, domain: &'d Domain) -> Result<Vec<PinState<'d>>, ProductError> {
    let lock = read_lock(root)?;
    let mut out = Vec::new();
    for p in &domain.projects {
        for (index, c) in p.consumes.iter().enumerate() {
            out.push(PinState {
                consumed: c,
                project: p,
                index,
                pin: lock.pin(&c.id()).cloned(),
                producer: producer_domain(root, c).map(|(_, d)| d),
            });
        }
    }
    Ok(out)
}
