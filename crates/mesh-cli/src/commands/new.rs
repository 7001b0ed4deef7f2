//! `mesh new project|table|job|pipeline`: add to the model, in the files a person would edit.

use std::path::Path;

use mesh_domain::scaffold::{self, NewJob, NewTable};
use mesh_domain::Layer;

use crate::cli::NewCommand;
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
        } => {
            let file = scaffold::new_project(&root, &name, &slug, &owner, classification.into())?;
            println!("created {}", display_rel(&root, &file));
        }
        NewCommand::Table {
            project,
            name,
            layer,
            columns,
            partition_by,
            format,
        } => {
            let columns = columns
                .iter()
                .map(|c| scaffold::parse_column_arg(c))
                .collect::<Result<Vec<_>, _>>()?;
            let layer = Layer::from(layer);
            scaffold::new_table(
                &root,
                &NewTable {
                    project: &project,
                    name: &name,
                    layer,
                    columns,
                    partition_by,
                    format: format.as_deref(),
                },
            )?;
            println!("added table {layer}.{name} to projects/{project}/project.toml");
        }
        NewCommand::Job {
            project,
            name,
            inputs,
            output,
            mode,
            incremental,
            time_column,
            grain,
            keys,
        } => {
            let domain = load(Some(&root))?;
            // The declared tables the SQL is written from (`layer.table`, in any project).
            let declared = |r: &str| {
                domain
                    .tables()
                    .map(|(_, t)| t)
                    .find(|t| format!("{}.{}", t.layer.as_str(), t.name) == r)
            };
            let output_table = declared(&output);
            let input_table = inputs.first().and_then(|i| declared(i));
            let files = scaffold::new_job(
                &root,
                domain.abbr.as_str(),
                &NewJob {
                    project: &project,
                    name: &name,
                    inputs,
                    output: &output,
                    mode: mode.as_str(),
                    incremental,
                    time_range: time_column.as_deref().zip(grain.as_deref()),
                    keys,
                    output_table,
                    input_table,
                },
            )?;
            let sql = display_rel(&root, &files.sql);
            println!("added job {name} to projects/{project}/project.toml; edit {sql}");
            if !files.to_fill.is_empty() {
                println!(
                    "columns left to fill in (CAST(NULL …) with a TODO in {sql}): {}",
                    files.to_fill.join(", ")
                );
            }
        }
        NewCommand::Pipeline {
            project,
            name,
            jobs,
            optimize,
            schedule,
        } => {
            scaffold::new_pipeline(
                &root,
                &scaffold::NewPipeline {
                    project: &project,
                    name: &name,
                    jobs,
                    optimize,
                    schedule: schedule.as_deref(),
                },
            )?;
            println!("added pipeline {name} to projects/{project}/project.toml; run it with `mesh run {project} --pipeline {name}`");
        }
    }
    Ok(())
}
