//! Domain tables as SQL tables of a query session (`f01_raw.sales_events`): a raw table
//! streamed from its files as the query runs, an Iceberg table streamed from its current
//! snapshot. Jobs register their inputs with [`register_table`], `mesh sql` the tables its
//! query names with [`register_tables`], so both read a table the same way.

use std::sync::Arc;

use datafusion::common::TableReference;
use datafusion::prelude::SessionContext;
use mesh_domain::{Domain, Naming, Project, Table};

use crate::engine::Engine;
use crate::raw::{FileId, RawError};
use crate::raw_table::{RawScan, RawTable};
use crate::session::{register_provider, CATALOG};

/// Which files of a raw table to read.
#[derive(Clone, Copy)]
pub enum RawSelection<'a> {
    All,
    /// An incremental job's raw input: only files the bookmark has not processed.
    Unprocessed(&'a crate::incremental::RawBookmark),
}

/// What registering one table read.
#[derive(Debug, Default)]
pub struct Registered {
    /// Rows of the Iceberg table's current snapshot. A raw table's rows are counted as the
    /// query reads them: see `raw`.
    pub rows: u64,
    pub bytes: u64,
    /// The raw files selected (an incremental input: those not processed yet; none for an
    /// Iceberg table). The query's scans may read fewer: [`RawScan::scanned_files`].
    pub files: Vec<FileId>,
    /// A raw table's read, which its scans share: [`RawScan::finish`] completes it once the
    /// query has run and gives the rows kept and set aside (the table's `bad_rows` says what
    /// happens to rows that do not parse).
    pub raw: Option<Arc<RawScan>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("reading {table}: {source}")]
    Raw {
        table: String,
        // Boxed: a raw error carries file names and messages, and this keeps `Result` small.
        #[source]
        source: Box<RawError>,
    },
    /// An Iceberg table that is not in this environment's catalog yet.
    #[error("table `{table}` has not been written in env `{env}` yet\n  help: {help}")]
    NotWritten {
        table: String,
        env: mesh_domain::Env,
        /// The command that writes it.
        help: String,
    },
    #[error(transparent)]
    Engine(Box<mesh_iceberg::Error>),
    #[error("cannot register {table} as a SQL table: {source}")]
    Session {
        table: String,
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },
}

impl From<mesh_iceberg::Error> for RegisterError {
    fn from(e: mesh_iceberg::Error) -> Self {
        RegisterError::Engine(Box::new(e))
    }
}

/// Registers one table as `{database}.{table}` in `ctx`.
pub async fn register_table(
    engine: &Engine,
    ctx: &SessionContext,
    project: &Project,
    table: &Table,
    raw: RawSelection<'_>,
) -> Result<Registered, RegisterError> {
    let database = engine.layout.naming.database(table.layer);
    let session = |source| RegisterError::Session {
        table: table.reference().to_string(),
        source: Box::new(source),
    };
    if table.hive().is_some() {
        let location = engine.location(project, table);
        // The files are listed now (the job's bookmark names them); they are read as a query
        // scans the table.
        let batch_rows = ctx.copied_config().batch_size();
        let raw_error = |source| RegisterError::Raw {
            table: table.reference().to_string(),
            source: Box::new(source),
        };
        let scan = match raw {
            RawSelection::Unprocessed(b) => {
                // Processed files that changed are listed too, to be refused: reading one again
                // would repeat its rows.
                let select = |f: &FileId| b.changed(f).is_some() || !b.is_processed(f);
                let scan = RawScan::open(table, &engine.stores, &location, &select, batch_rows)
                    .await
                    .map_err(raw_error)?;
                if let Err(changed) = b.select(&scan.file_ids()) {
                    let root = location.strip_prefix("file://").unwrap_or(&location);
                    return Err(raw_error(RawError::File {
                        file: format!("{}/{}", root.trim_end_matches('/'), changed.now.path),
                        reason: changed.reason(),
                    }));
                }
                scan
            }
            RawSelection::All => RawScan::open(table, &engine.stores, &location, &|_| true, batch_rows)
                .await
                .map_err(raw_error)?,
        };
        let provider = Arc::new(RawTable::new(scan.clone()));
        register_provider(ctx, &database, table.name.as_str(), provider).map_err(session)?;
        Ok(Registered {
            rows: 0,
            bytes: scan.bytes(),
            files: scan.file_ids(),
            raw: Some(scan),
        })
    } else {
        let t = load_written(engine, project, table).await?;
        // Streamed by DataFusion from the current snapshot: only the columns and files the
        // query needs are read. Rows in = the snapshot's row count.
        let provider = t.table_provider(None).await?;
        register_provider(ctx, &database, table.name.as_str(), provider).map_err(session)?;
        Ok(Registered {
            rows: t.info().total_records.unwrap_or(0),
            ..Default::default()
        })
    }
}

/// Loads an Iceberg table that a job has written; one that is not in the catalog yet is
/// [`RegisterError::NotWritten`], naming the job to run.
pub async fn load_written(
    engine: &Engine,
    project: &Project,
    table: &Table,
) -> Result<mesh_iceberg::Table, RegisterError> {
    engine.load_table(project, table).await.map_err(|e| match e {
        mesh_iceberg::Error::TableNotFound { .. } => not_written(engine, table),
        other => other.into(),
    })
}

fn not_written(engine: &Engine, table: &Table) -> RegisterError {
    let env = engine.layout.naming.env();
    let flag = if env == mesh_domain::Env::Local {
        String::new()
    } else {
        format!(" --env {env}")
    };
    let reference = table.reference();
    let help = match engine.domain.writers(&reference).next() {
        Some((p, j)) => format!(
            "run the job that writes it first: `mesh run {} --job {}{flag}`",
            p.name, j.name
        ),
        None => "no job of the domain writes it: add one (`mesh new job`)".to_string(),
    };
    RegisterError::NotWritten {
        table: reference.to_string(),
        env,
        help,
    }
}

/// The raw read error a query over registered tables failed on, as registering reports one
/// (`reading raw.sales_events: …:12: column …`); any other error as it is.
pub fn raw_read_error(
    e: datafusion::error::DataFusionError,
) -> Result<RegisterError, datafusion::error::DataFusionError> {
    match crate::raw_table::raw_error(&e) {
        Some((table, source)) => Ok(RegisterError::Raw {
            table,
            source: Box::new(source),
        }),
        None => Err(e),
    }
}

/// Registers the given tables, each read in full.
pub async fn register_tables<'d>(
    engine: &Engine,
    ctx: &SessionContext,
    tables: impl IntoIterator<Item = (&'d Project, &'d Table)>,
) -> Result<(), RegisterError> {
    for (project, table) in tables {
        register_table(engine, ctx, project, table, RawSelection::All).await?;
    }
    Ok(())
}

/// The tables a query names, sorted out against the domain.
#[derive(Debug)]
pub struct QueryTables<'d> {
    /// Domain tables the query reads, in domain order.
    pub tables: Vec<(&'d Project, &'d Table)>,
    /// Names in a domain database (or unqualified names of a domain table) that are not a
    /// domain table, each with its `did you mean`.
    pub unknown: Vec<mesh_domain::UnknownTable>,
}

/// The domain tables a query reads, by its parsed table references (`f01_curated.daily_sales`,
/// or with the `mesh` catalog): a table name in a string literal, a comment, a CTE name or a
/// longer identifier is not a reference.
pub fn tables_in_query<'d>(
    domain: &'d Domain,
    naming: &Naming,
    ctx: &SessionContext,
    query: &str,
) -> datafusion::error::Result<QueryTables<'d>> {
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state.sql_to_statement(query, &dialect)?;
    let references = state.resolve_table_references(&statement)?;
    let default_schema = state.config().options().catalog.default_schema.clone();
    let databases: Vec<String> = mesh_domain::Layer::ALL.iter().map(|l| naming.database(*l)).collect();
    let mut read = vec![false; domain.tables().count()];
    let mut unknown = Vec::new();
    for r in references
        .into_iter()
        .map(|r: TableReference| r.resolve(CATALOG, &default_schema))
    {
        if &*r.catalog != CATALOG {
            continue;
        }
        let name = format!("{}.{}", r.schema, r.table);
        if let Some(i) = domain
            .tables()
            .position(|(_, t)| *r.schema == *naming.database(t.layer) && &*r.table == t.name.as_str())
        {
            read[i] = true;
        } else if databases.iter().any(|d| *d == *r.schema) {
            if let Err(e) = domain.find_table(naming, &name) {
                unknown.push(e);
            }
        } else if *r.schema == *default_schema {
            // `FROM daily_sales`: the table exists, but SQL names it with its database.
            if let Some((_, t)) = domain.tables().find(|(_, t)| t.name.as_str() == &*r.table) {
                let qualified = naming.qualified_table(t);
                unknown.push(mesh_domain::UnknownTable {
                    name: r.table.to_string(),
                    help: format!("did you mean `{qualified}`? SQL names a domain table with its database"),
                });
            }
        }
    }
    Ok(QueryTables {
        tables: domain.tables().zip(read).filter(|(_, r)| *r).map(|(t, _)| t).collect(),
        unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_domain::{Env, Layer};

    /// The example domain's tables a query reads, sorted, and its raw and curated databases.
    fn read_by(query: impl Fn(&str, &str) -> String) -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let domain = mesh_domain::load_domain(&root).expect("the example domain validates");
        let naming = Naming::for_domain(&domain, Env::Local);
        let ctx = crate::session::new_context(&naming).unwrap();
        let sql = query(&naming.database(Layer::Raw), &naming.database(Layer::Curated));
        let mut found: Vec<String> = tables_in_query(&domain, &naming, &ctx, &sql)
            .unwrap()
            .tables
            .into_iter()
            .map(|(_, t)| t.reference().to_string())
            .collect();
        found.sort();
        found
    }

    #[test]
    fn only_real_table_references_count() {
        assert_eq!(
            read_by(|raw, curated| format!(
                "SELECT * FROM {curated}.daily_sales d JOIN mesh.{raw}.sales_events e ON true"
            )),
            ["curated.daily_sales", "raw.sales_events"]
        );
        // In a string literal, a comment, a longer identifier or as a CTE name: not read.
        assert!(
            read_by(|raw, curated| format!("SELECT '{raw}.sales_events' AS s -- {curated}.daily_sales")).is_empty()
        );
        assert!(read_by(|raw, _| format!("SELECT * FROM {raw}.sales_events_archive")).is_empty());
        assert!(read_by(|_, _| "WITH daily_sales AS (SELECT 1 AS x) SELECT * FROM daily_sales".into()).is_empty());
        // A quoted name is the same table.
        assert_eq!(
            read_by(|_, curated| format!("SELECT * FROM \"{curated}\".\"daily_sales\"")),
            ["curated.daily_sales"]
        );
    }

    #[test]
    fn a_mistyped_or_unqualified_domain_table_is_reported_with_the_name_to_use() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let domain = mesh_domain::load_domain(&root).expect("the example domain validates");
        let naming = Naming::for_domain(&domain, Env::Local);
        let ctx = crate::session::new_context(&naming).unwrap();
        let curated = naming.database(Layer::Curated);
        let q = tables_in_query(
            &domain,
            &naming,
            &ctx,
            &format!("SELECT * FROM {curated}.daily_sale, daily_sales, information_schema.tables, other.x"),
        )
        .unwrap();
        assert!(q.tables.is_empty());
        let mut help: Vec<&str> = q.unknown.iter().map(|u| u.help.as_str()).collect();
        help.sort_unstable();
        assert_eq!(
            help,
            [
                format!("did you mean `{curated}.daily_sales`?"),
                format!("did you mean `{curated}.daily_sales`? SQL names a domain table with its database"),
            ]
        );
    }
}
