//! `mesh sql`: one read-only query over the domain's tables.

use std::collections::BTreeMap;
use std::path::Path;

use mesh_domain::Domain;

use crate::cli::Format;
use crate::common::{config, open_engine, print_json, tokio_runtime};
use crate::exit::Failure;

/// `mesh sql`: ad-hoc DataFusion SQL over the domain's tables (raw tables are read only when
/// named), plus `layer.table`, `<table>_rejected` and `<table>_check_failures`.
pub fn run(root: &Path, domain: &Domain, query: &str, format: Format) -> Result<(), Failure> {
    if is_show_tables(query) {
        return show_tables(root, domain, format);
    }
    // Read-only before anything is opened: COPY … TO, INSERT, CREATE EXTERNAL TABLE, SET and
    // second statements never reach the engine.
    mesh_core::sql_check::check_read_only_query(query).map_err(|e| {
        let help = if is_time_travel(query) {
            "time travel (VERSION AS OF, TIMESTAMP AS OF) is Spark SQL that `mesh sql` (DataFusion) does not read; `mesh table snapshots TABLE` lists a table's snapshots"
        } else {
            "`mesh sql` runs one read-only query in DataFusion's SQL with Spark's functions (see `mesh sql --help`); tables are written by jobs (mesh run)"
        };
        Failure::Invalid(format!("{}\n  help: {help}", e.message))
    })?;
    let cfg = config(root, domain, BTreeMap::new())?;
    let rt = tokio_runtime()?;
    rt.block_on(async {
        let engine = open_engine(root, domain, &cfg).await?;
        let ctx = engine.session()?;
        // Only the tables the query names are read (a raw table is streamed as the query reads
        // it: a bad row stops it only if the query gets to it).
        let naming = &engine.layout.naming;
        // Also `layer.table`, `<table>_rejected` and `<table>_check_failures`.
        let extra = mesh_core::sql_tables::extra_tables(domain, naming, &ctx, query)?;
        let named = mesh_core::inputs::tables_in_query(domain, naming, &ctx, query)?;
        if let Some(unknown) = named
            .unknown
            .into_iter()
            .filter(|u| !extra.covers(&u.name))
            .chain(extra.unknown.iter().cloned())
            .next()
        {
            return Err(unknown.into());
        }
        mesh_core::inputs::register_tables(&engine, &ctx, named.tables).await?;
        mesh_core::sql_tables::register_extra(&engine, &ctx, &extra).await?;
        let df = ctx.sql_with_options(query, mesh_core::sql_check::read_only()).await?;
        let batches = df
            .collect()
            .await
            .map_err(|e| match mesh_core::inputs::raw_read_error(e) {
                Ok(raw) => Failure::from(raw),
                Err(e) => Failure::from(e),
            })?;
        match format {
            Format::Text => println!("{}", datafusion::arrow::util::pretty::pretty_format_batches(&batches)?),
            Format::Json => {
                // A NULL is a value of the result: keep the key, as `null`, rather than drop it.
                let mut w = datafusion::arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, datafusion::arrow::json::writer::JsonArray>(Vec::new());
                for b in &batches {
                    w.write(b)?;
                }
                w.finish()?;
                println!("{}", String::from_utf8_lossy(&w.into_inner()));
            }
        }
        Ok(())
    })
}

/// Spark's time travel clauses (`VERSION AS OF 3`, `TIMESTAMP AS OF '…'`, `FOR SYSTEM_TIME AS
/// OF`), which DataFusion's parser refuses with a bare syntax error.
fn is_time_travel(query: &str) -> bool {
    let words: Vec<String> = query.split_whitespace().map(str::to_ascii_uppercase).collect();
    words.windows(3).any(|w| {
        matches!(
            w[0].as_str(),
            "VERSION" | "TIMESTAMP" | "SYSTEM_VERSION" | "SYSTEM_TIME"
        ) && w[1] == "AS"
            && w[2] == "OF"
    })
}

/// `SHOW TABLES`, in any case, with or without a trailing `;`. DataFusion's own would list its
/// catalog, which holds only what a query names; people ask it to learn what they can name.
fn is_show_tables(query: &str) -> bool {
    let words: Vec<&str> = query.trim().trim_end_matches(';').split_whitespace().collect();
    matches!(words.as_slice(), [a, b] if a.eq_ignore_ascii_case("show") && b.eq_ignore_ascii_case("tables"))
}

#[derive(serde::Serialize)]
struct TableRow {
    /// `layer.table`, as manifests and `mesh table` name it.
    table: String,
    /// `database.table`, as a query names it.
    name: String,
    project: String,
    /// `iceberg` or `raw`.
    format: &'static str,
    /// The file format of a raw table (csv, json, parquet).
    file_format: Option<&'static str>,
    /// Whether the current environment's lake holds it yet (a job or sample-data wrote it).
    exists: bool,
}

/// Every table of the domain, and whether the lake of the current environment has it yet.
fn show_tables(root: &Path, domain: &Domain, format: Format) -> Result<(), Failure> {
    let cfg = config(root, domain, BTreeMap::new())?;
    let env = cfg.env.value;
    let rows = tokio_runtime()?.block_on(async {
        let engine = open_engine(root, domain, &cfg).await?;
        let lister = engine.lister();
        let mut rows = Vec::new();
        for (project, table) in domain.tables() {
            let (format, file_format, exists) = match table.hive() {
                Some(h) => {
                    let files = lister.list(&engine.location(project, table)).await?;
                    ("raw", Some(h.file_format.as_str()), !files.is_empty())
                }
                None => match engine.load_table(project, table).await {
                    Ok(_) => ("iceberg", None, true),
                    Err(mesh_core::mesh_iceberg::Error::TableNotFound { .. }) => ("iceberg", None, false),
                    Err(e) => return Err(Failure::from(e)),
                },
            };
            rows.push(TableRow {
                table: table.reference().to_string(),
                name: engine.layout.naming.qualified_table(table),
                project: project.name.to_string(),
                format,
                file_format,
                exists,
            });
            // A quarantining raw table's rejected rows: a table of their own.
            if table
                .hive()
                .is_some_and(|h| h.bad_rows == mesh_domain::BadRows::Quarantine)
            {
                let naming = &engine.layout.naming;
                let location = engine.layout.url(&naming.rejected_location(&project.slug, table));
                let files = lister.list(&location).await?;
                let rejected = naming.rejected_table(table);
                rows.push(TableRow {
                    table: format!("{}.{rejected}", table.layer),
                    name: format!("{}.{rejected}", naming.database(table.layer)),
                    project: project.name.to_string(),
                    format: "rejected rows",
                    file_format: Some("parquet"),
                    exists: !files.is_empty(),
                });
            }
        }
        Ok::<_, Failure>(rows)
    })?;
    match format {
        Format::Json => print_json(&rows),
        Format::Text => {
            let header = ["table", "query it as", "project", "format", "in the lake"];
            let cells: Vec<[String; 5]> = rows
                .iter()
                .map(|r| {
                    [
                        r.table.clone(),
                        r.name.clone(),
                        r.project.clone(),
                        match r.file_format {
                            Some(f) => format!("{} ({f})", r.format),
                            None => r.format.to_string(),
                        },
                        if r.exists { "yes" } else { "not yet" }.to_string(),
                    ]
                })
                .collect();
            let widths: Vec<usize> = (0..header.len())
                .map(|i| cells.iter().map(|c| c[i].len()).max().unwrap_or(0).max(header[i].len()))
                .collect();
            let line = |c: &[&str]| {
                let padded: Vec<String> = c.iter().zip(&widths).map(|(s, w)| format!("{s:<w$}")).collect();
                println!("{}", padded.join("  ").trim_end());
            };
            line(&header);
            for c in &cells {
                line(&c.iter().map(String::as_str).collect::<Vec<_>>());
            }
            let missing = rows.iter().filter(|r| !r.exists).count();
            println!(
                "{} table(s) in env {env}{}",
                rows.len(),
                if missing == 0 {
                    String::new()
                } else {
                    format!("; {missing} not in the lake yet (mesh run writes them; mesh sample-data the raw ones)")
                }
            );
            if let Some(r) = rows.iter().find(|r| r.exists).or(rows.first()) {
                println!("query one: mesh sql \"SELECT * FROM {} LIMIT 10\"", r.name);
            }
        }
    }
    Ok(())
}
