//! `mesh sql`: one read-only query over the domain's tables.

use std::collections::BTreeMap;
use std::path::Path;

use mesh_domain::Domain;

use crate::cli::Format;
use crate::commands::table::load_failure;
use crate::common::{config, open_engine, tokio_runtime};
use crate::exit::Failure;

/// `mesh sql`: ad-hoc Spark SQL over the local tables (raw tables are read only when named).
pub fn run(root: &Path, domain: &Domain, query: &str, format: Format) -> Result<(), Failure> {
    // Read-only before anything is opened: COPY … TO, INSERT, CREATE EXTERNAL TABLE, SET and
    // second statements never reach the engine.
    mesh_core::sql_check::check_read_only_query(query).map_err(|e| {
        Failure::Invalid(format!(
            "error: {}\n  help: `mesh sql` runs one read-only query; tables are written by jobs (mesh run)",
            e.message
        ))
    })?;
    let cfg = config(root, domain, BTreeMap::new())?;
    let rt = tokio_runtime()?;
    rt.block_on(async {
        let engine = open_engine(root, domain, &cfg).await?;
        let ctx = mesh_core::session::new_context_in(&engine.layout.naming, engine.runtime.clone())
            .map_err(|e| Failure::Runtime(e.to_string()))?;
        engine.register_object_stores(&ctx).map_err(Failure::Runtime)?;
        let lower = query.to_ascii_lowercase();
        for (project, table) in domain.tables() {
            let db = engine.layout.naming.database(table.layer);
            if !lower.contains(&format!("{db}.{}", table.name)) {
                continue;
            }
            if table.hive().is_some() {
                let read = mesh_core::raw::read_raw(table, &engine.stores, &engine.location(project, table))
                    .await
                    .map_err(|e| Failure::Runtime(e.to_string()))?;
                mesh_core::session::register_batches(&ctx, &db, table.name.as_str(), read.schema, read.batches)
                    .map_err(|e| Failure::Runtime(e.to_string()))?;
            } else {
                let t = engine.load_table(project, table).await.map_err(load_failure)?;
                let provider = t
                    .table_provider(None)
                    .await
                    .map_err(|e| Failure::Runtime(e.to_string()))?;
                mesh_core::session::register_provider(&ctx, &db, table.name.as_str(), provider)
                    .map_err(|e| Failure::Runtime(e.to_string()))?;
            }
        }
        let df = ctx
            .sql_with_options(query, mesh_core::sql_check::read_only())
            .await
            .map_err(|e| Failure::Invalid(format!("error: {e}")))?;
        let batches = df.collect().await.map_err(|e| Failure::Runtime(e.to_string()))?;
        match format {
            Format::Text => println!(
                "{}",
                datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                    .map_err(|e| Failure::Runtime(e.to_string()))?
            ),
            Format::Json => {
                // A NULL is a value of the result: keep the key, as `null`, rather than drop it.
                let mut w = datafusion::arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, datafusion::arrow::json::writer::JsonArray>(Vec::new());
                for b in &batches {
                    w.write(b).map_err(|e| Failure::Runtime(e.to_string()))?;
                }
                w.finish().map_err(|e| Failure::Runtime(e.to_string()))?;
                println!("{}", String::from_utf8_lossy(&w.into_inner()));
            }
        }
        Ok(())
    })
}
