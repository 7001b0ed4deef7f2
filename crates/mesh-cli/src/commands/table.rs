//! `mesh table`: inspect, check and re-register the domain's Iceberg tables.

mod text;

use std::collections::BTreeMap;
use std::path::Path;

use mesh_domain::Domain;

use crate::cli::{Format, TableCommand};
use crate::common::{config, open_engine, print_json, tokio_runtime};
use crate::exit::Failure;

pub fn run(root: &Path, domain: &Domain, t: TableCommand) -> Result<(), Failure> {
    let (what, table, format) = match t {
        TableCommand::Show { table, format } => ("show", table, format),
        TableCommand::History { table, format } => ("history", table, format),
        TableCommand::Snapshots { table, format } => ("snapshots", table, format),
        TableCommand::Files { table, format } => ("files", table, format),
        TableCommand::Check {
            table,
            all_snapshots,
            format,
        } => return table_check(root, domain, &table, all_snapshots, format),
        TableCommand::Register { table } => return table_register(root, domain, &table),
    };
    show(root, domain, what, &table, format)
}

/// Resolves `layer.table` or `database.table` to a project's table.
pub fn find_table<'a>(
    domain: &'a Domain,
    naming: &mesh_domain::Naming,
    name: &str,
) -> Result<(&'a mesh_domain::Project, &'a mesh_domain::Table), Failure> {
    let found = domain.tables().find(|(_, t)| {
        let full = format!("{}.{}", naming.database(t.layer), t.name);
        name == t.reference().to_string() || name == full
    });
    found.ok_or_else(|| {
        let known: Vec<String> = domain
            .tables()
            .filter(|(_, t)| t.iceberg().is_some())
            .map(|(_, t)| t.reference().to_string())
            .collect();
        let hint = mesh_domain::diagnostic::did_you_mean(name, known.iter().map(String::as_str))
            .unwrap_or_else(|| format!("Iceberg tables: {}", known.join(", ")));
        Failure::Invalid(format!("error: no table `{name}`\n  help: {hint}"))
    })
}

fn show(root: &Path, domain: &Domain, what: &str, name: &str, format: Format) -> Result<(), Failure> {
    let cfg = config(root, domain, BTreeMap::new())?;
    let rt = tokio_runtime()?;
    rt.block_on(async {
        let engine = open_engine(root, domain, &cfg).await?;
        let (project, table) = find_table(domain, &engine.layout.naming, name)?;
        if table.iceberg().is_none() {
            return Err(Failure::Invalid(format!(
                "error: `{name}` is a raw (Hive) table; `mesh table` shows Iceberg tables"
            )));
        }
        let t = engine.load_table(project, table).await.map_err(load_failure)?;
        let info = t.info();
        match (what, format) {
            ("show", Format::Json) => print_json(&info),
            ("show", Format::Text) => print!("{}", text::show(&info)),
            ("history", Format::Json) => print_json(&t.history()),
            ("history", Format::Text) => print_value_table(&text::history(&t.history())),
            ("snapshots", Format::Json) => print_json(&t.snapshots()),
            ("snapshots", Format::Text) => print_value_table(&text::snapshots(&t.snapshots())),
            (_, format) => {
                let files = t.files(None).await.map_err(|e| Failure::Runtime(e.to_string()))?;
                match format {
                    Format::Json => print_json(&files),
                    Format::Text => print_value_table(&text::files(&files, &info.partition_spec)),
                }
            }
        }
        Ok(())
    })
}

/// A table that does not exist yet is a usage problem (exit 2); a damaged one is named and
/// exits 1, never "run the job first".
pub(crate) fn load_failure(e: mesh_core::mesh_iceberg::Error) -> Failure {
    match e {
        mesh_core::mesh_iceberg::Error::TableNotFound { .. } => Failure::Invalid(format!(
            "error: {e}\n  help: run the job that writes it first (mesh run)"
        )),
        other => Failure::Runtime(other.to_string()),
    }
}

/// `mesh table check`: every file the snapshot(s) reference exists and parses.
fn table_check(root: &Path, domain: &Domain, name: &str, all: bool, format: Format) -> Result<(), Failure> {
    let cfg = config(root, domain, BTreeMap::new())?;
    tokio_runtime()?.block_on(async {
        let engine = open_engine(root, domain, &cfg).await?;
        let (project, table) = find_table(domain, &engine.layout.naming, name)?;
        if table.iceberg().is_none() {
            return Err(Failure::Invalid(format!(
                "error: `{name}` is a raw (Hive) table; `mesh table check` checks Iceberg tables"
            )));
        }
        let t = engine.load_table(project, table).await.map_err(load_failure)?;
        let report = t.check(all).await.map_err(|e| Failure::Runtime(e.to_string()))?;
        match format {
            Format::Json => print_json(&report),
            Format::Text => {
                println!(
                    "{}: {} snapshot(s), {} manifest list(s), {} manifest(s), {} data file(s) read",
                    report.table, report.snapshots, report.manifest_lists, report.manifests, report.data_files
                );
                for p in &report.problems {
                    println!("  damaged {} {}: {}", p.kind, p.path, p.problem);
                }
            }
        }
        if report.problems.is_empty() {
            Ok(())
        } else {
            Err(Failure::Runtime(format!(
                "table {}: {} damaged file(s); restore them from a backup",
                report.table,
                report.problems.len()
            )))
        }
    })
}

/// `mesh table register`: adopt the newest metadata file after the catalog lost the table.
fn table_register(root: &Path, domain: &Domain, name: &str) -> Result<(), Failure> {
    let cfg = config(root, domain, BTreeMap::new())?;
    tokio_runtime()?.block_on(async {
        let engine = open_engine(root, domain, &cfg).await?;
        let (project, table) = find_table(domain, &engine.layout.naming, name)?;
        if table.iceberg().is_none() {
            return Err(Failure::Invalid(format!(
                "error: `{name}` is a raw (Hive) table; only Iceberg tables are in the catalog"
            )));
        }
        let t = engine.register(project, table).await.map_err(|e| match e {
            mesh_core::mesh_iceberg::Error::Invalid { .. } => Failure::Invalid(format!("error: {e}")),
            other => Failure::Runtime(other.to_string()),
        })?;
        println!(
            "registered {} at {} (snapshot {})",
            table.reference(),
            t.metadata_location(),
            t.metadata()
                .current_snapshot_id()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "none".into())
        );
        Ok(())
    })
}

/// Arrays of objects print as aligned columns; anything else as indented JSON.
fn print_value_table(v: &serde_json::Value) {
    let Some(rows) = v
        .as_array()
        .filter(|a| a.iter().all(|r| r.is_object()) && !a.is_empty())
    else {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
        return;
    };
    let keys: Vec<String> = rows[0]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let cell = |r: &serde_json::Value, k: &str| -> String {
        match r.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => "–".into(),
            Some(other) => other.to_string(),
        }
    };
    let widths: Vec<usize> = keys
        .iter()
        .map(|k| {
            rows.iter()
                .map(|r| cell(r, k).len())
                .max()
                .unwrap_or(0)
                .max(k.len())
                .min(60)
        })
        .collect();
    let line: Vec<String> = keys.iter().zip(&widths).map(|(k, w)| format!("{k:<w$}")).collect();
    println!("{}", line.join("  "));
    for r in rows {
        let line: Vec<String> = keys
            .iter()
            .zip(&widths)
            .map(|(k, w)| format!("{:<w$}", cell(r, k)))
            .collect();
        println!("{}", line.join("  "));
    }
}
