//! `mesh table`: inspect, check and re-register the domain's Iceberg tables.

pub(crate) mod text;

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

/// The Iceberg table `name` stands for (`layer.table` or `database.table`); `command` is what
/// the refusal of a raw (Hive) table says cannot be done with it.
pub fn find_iceberg_table<'a>(
    domain: &'a Domain,
    naming: &mesh_domain::Naming,
    name: &str,
    command: &str,
) -> Result<(&'a mesh_domain::Project, &'a mesh_domain::Table), Failure> {
    let (project, table) = domain.find_table(naming, name)?;
    if table.iceberg().is_none() {
        return Err(Failure::Invalid(format!(
            "`{name}` is a raw (Hive) table: {command} works on Iceberg tables\n  help: read it with `mesh sql \"SELECT * FROM {} LIMIT 10\"`",
            naming.qualified_table(table)
        )));
    }
    Ok((project, table))
}

fn show(root: &Path, domain: &Domain, what: &str, name: &str, format: Format) -> Result<(), Failure> {
    let cfg = config(root, domain, BTreeMap::new())?;
    let rt = tokio_runtime()?;
    rt.block_on(async {
        let engine = open_engine(root, domain, &cfg).await?;
        let (project, table) = find_iceberg_table(domain, &engine.layout.naming, name, "`mesh table`")?;
        let t = mesh_core::inputs::load_written(&engine, project, table).await?;
        let info = t.info();
        match (what, format) {
            ("show", Format::Json) => print_json(&info),
            ("show", Format::Text) => print!("{}", text::show(&info)),
            ("history", Format::Json) => print_json(&t.history()),
            ("history", Format::Text) => print_rows(&text::history(&t.history())),
            ("snapshots", Format::Json) => print_json(&t.snapshots()),
            ("snapshots", Format::Text) => print_rows(&text::snapshots(&t.snapshots())),
            (_, format) => {
                let files = t.files(None).await?;
                match format {
                    Format::Json => print_json(&files),
                    Format::Text => print_rows(&text::files(&files, &info.partition_spec)),
                }
            }
        }
        Ok(())
    })
}

/// `mesh table check`: every file the snapshot(s) reference exists and parses.
fn table_check(root: &Path, domain: &Domain, name: &str, all: bool, format: Format) -> Result<(), Failure> {
    let cfg = config(root, domain, BTreeMap::new())?;
    tokio_runtime()?.block_on(async {
        let engine = open_engine(root, domain, &cfg).await?;
        let (project, table) = find_iceberg_table(domain, &engine.layout.naming, name, "`mesh table check`")?;
        let t = mesh_core::inputs::load_written(&engine, project, table).await?;
        let report = t.check(all).await?;
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
        let (project, table) = find_iceberg_table(domain, &engine.layout.naming, name, "`mesh table register`")?;
        let t = engine.register(project, table).await?;
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

/// Aligned columns, in their order; a column is as wide as its longest cell up to 60
/// characters (a longer cell overflows rather than being cut).
fn print_rows(t: &text::Rows) {
    let widths: Vec<usize> = t
        .headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            t.rows
                .iter()
                .map(|r| r[i].chars().count())
                .chain([h.chars().count()])
                .max()
                .unwrap_or(0)
                .min(60)
        })
        .collect();
    let line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(&t.headers);
    for r in &t.rows {
        line(&r.iter().map(String::as_str).collect::<Vec<_>>());
    }
}
