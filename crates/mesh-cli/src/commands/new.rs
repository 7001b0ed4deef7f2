//! `mesh new project|table|job|pipeline`: add to the model, in the files a person would edit.

use std::collections::BTreeMap;
use std::path::Path;

use mesh_domain::scaffold::{self, CsvArgs, JobOptions, NewJob, NewTable, NewTimeRange, TableOptions};
use mesh_domain::Layer;

use crate::cli::{
    BadRowsArg, GrainArg, NewCommand, NewJobArgs, NewPipelineArgs, NewTableArgs, OnChangeArg, OnDuplicateArg,
    RawFormatArg,
};
use crate::common::{display_rel, load, root};
use crate::exit::Failure;

pub fn run(root_flag: Option<&Path>, new: NewCommand) -> Result<(), Failure> {
    let root = root(root_flag)?;
    // Refused before anything is written: a rollback could not remove folders it
    // had to create above the project (`--root /nonexistent/dir` left `projects/`).
    if !root.join(mesh_domain::load::DOMAIN_FILE).is_file() {
        return Err(Failure::Invalid(format!(
            "no {} in `{}`; nothing was written\n  help: pass --root pointing at a domain, or create one with `mesh init DIR`",
            mesh_domain::load::DOMAIN_FILE,
            root.display()
        )));
    }
    match new {
        NewCommand::Project {
            name,
            slug,
            owner,
            classification,
            contact,
            description,
        } => {
            let file = scaffold::new_project(
                &root,
                &name,
                &slug,
                &owner,
                classification.into(),
                contact.as_deref(),
                description.as_deref(),
            )?;
            println!("created {}", display_rel(&root, &file));
        }
        NewCommand::Table(t) => new_table(&root, t)?,
        NewCommand::Job(j) => new_job(&root, j)?,
        NewCommand::Pipeline(p) => new_pipeline(&root, p)?,
    }
    Ok(())
}

fn new_table(root: &Path, t: NewTableArgs) -> Result<(), Failure> {
    let columns = t
        .columns
        .iter()
        .map(|c| scaffold::parse_column_arg(c))
        .collect::<Result<Vec<_>, _>>()?;
    let layer = Layer::from(t.layer);
    let format = t.format.map(|f| match f {
        RawFormatArg::Csv => "csv",
        RawFormatArg::Json => "json",
        RawFormatArg::Parquet => "parquet",
    });
    scaffold::new_table(
        root,
        &NewTable {
            project: &t.project,
            name: &t.name,
            layer,
            columns,
            partition_by: t.partition_by,
            format,
            options: TableOptions {
                description: t.description,
                comments: t.comments,
                sort_order: t.sort_order,
                identifier: t.identifier,
                target_file_size_mb: t.target_file_size_mb,
                bad_rows: t.bad_rows.map(|b| {
                    match b {
                        BadRowsArg::Fail => "fail",
                        BadRowsArg::Quarantine => "quarantine",
                    }
                    .to_string()
                }),
                csv: CsvArgs {
                    delimiter: t.csv_delimiter,
                    quote: t.csv_quote,
                    escape: t.csv_escape,
                    null_value: t.csv_null_value,
                    no_header: t.csv_no_header,
                },
            },
        },
    )?;
    println!("added table {layer}.{} to projects/{}/project.toml", t.name, t.project);
    Ok(())
}

fn new_job(root: &Path, j: NewJobArgs) -> Result<(), Failure> {
    let domain = load(Some(root))?;
    // The declared tables the SQL is written from (`layer.table`, in any project).
    let declared = |r: &str| {
        domain
            .tables()
            .map(|(_, t)| t)
            .find(|t| format!("{}.{}", t.layer.as_str(), t.name) == r)
    };
    let output_table = declared(&j.output);
    let input_table = j.inputs.first().and_then(|i| declared(i));
    let time_range = j
        .time_column
        .as_deref()
        .zip(j.grain)
        .map(|(column, grain)| NewTimeRange {
            input_column: j.input_time_column.clone(),
            start: j.start.clone(),
            lag: j.lag.clone(),
            lookback: j.lookback,
            ..NewTimeRange::new(
                column,
                match grain {
                    GrainArg::Hour => "hour",
                    GrainArg::Day => "day",
                    GrainArg::Month => "month",
                },
            )
        });
    let files = scaffold::new_job(
        root,
        domain.abbr.as_str(),
        &NewJob {
            project: &j.project,
            name: &j.name,
            inputs: j.inputs.clone(),
            output: &j.output,
            mode: j.mode.map(|m| m.as_str()),
            incremental: j.incremental,
            time_range,
            keys: j.keys,
            options: JobOptions {
                description: j.description,
                checks: j.checks,
                warn_checks: j.warn_checks,
                on_duplicate: j.on_duplicate.map(|d| {
                    match d {
                        OnDuplicateArg::Error => "error",
                        OnDuplicateArg::KeepLatest => "keep_latest",
                    }
                    .to_string()
                }),
                order_by: j.order_by,
                delete_when: j.delete_when,
                params: j.params,
                on_change: j.on_change.map(|c| {
                    match c {
                        OnChangeArg::Fail => "fail",
                        OnChangeArg::ForwardOnly => "forward_only",
                        OnChangeArg::FullRefresh => "full_refresh",
                    }
                    .to_string()
                }),
                worker_type: j.worker_type,
                workers: j.workers,
                timeout_minutes: j.timeout_minutes,
            },
            output_table,
            input_table,
        },
    )?;
    let sql = display_rel(root, &files.sql);
    println!(
        "added job {} to projects/{}/project.toml; edit {sql}",
        j.name, j.project
    );
    if !files.to_fill.is_empty() {
        println!(
            "columns left to fill in (CAST(NULL …) with a TODO in {sql}): {}",
            files.to_fill.join(", ")
        );
    }
    Ok(())
}

fn new_pipeline(root: &Path, p: NewPipelineArgs) -> Result<(), Failure> {
    let domain = load(Some(root))?;
    // Each job's tables: the pipeline's steps are ordered by them.
    let lineage: BTreeMap<String, (Vec<String>, String)> = domain
        .project(&p.project)
        .map(|proj| {
            proj.jobs
                .iter()
                .map(|j| {
                    (
                        j.name.to_string(),
                        (j.inputs.iter().map(|i| i.to_string()).collect(), j.output.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    scaffold::new_pipeline(
        root,
        &scaffold::NewPipeline {
            project: &p.project,
            name: &p.name,
            jobs: p.jobs,
            optimize: p.optimize,
            schedule: p.schedule.as_deref(),
            lineage,
            depends_on: p.depends_on,
            retries: p.retries,
            max_concurrency: p.max_concurrency,
            alert_emails: p.alert_emails,
            description: p.description,
        },
    )?;
    println!(
        "added pipeline {} to projects/{}/project.toml; run it with `mesh run {} --pipeline {}`",
        p.name, p.project, p.project, p.name
    );
    Ok(())
}
