//! One `project.toml`: its own fields, then its tables, jobs and pipelines (each checked in its
//! own module), and the names that must be unique within the project.

use std::collections::HashMap;
use std::path::Path;

use super::unchecked::UncheckedProject;
use super::{job, pipeline, table, toml_error, FileCx};
use crate::diagnostic::{relative, Diagnostics};
use crate::ident::ProjectSlug;
use crate::model::{Classification, Job, Project, Table};
use crate::source::SourceMap;

/// Checks one `project.toml` and everything it declares.
pub(super) fn load_project(
    root: &Path,
    folder: &Path,
    file: &Path,
    text: &str,
    diags: &mut Diagnostics,
) -> Option<Project> {
    let project: UncheckedProject = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            diags.push(toml_error(root, file, text, e));
            return None;
        }
    };
    let mut cx = FileCx {
        file: relative(root, file),
        map: SourceMap::toml(text),
        diags,
    };
    let before = cx.diags.len();
    let dir = relative(root, folder);

    let name = cx.name("name", &project.name);
    if let Some(n) = &name {
        let folder_name = folder.file_name().and_then(|s| s.to_str()).unwrap_or_default();
        if n.as_str() != folder_name {
            cx.err_help(
                "name",
                format!("project `{n}` lives in folder `{folder_name}`"),
                format!("rename the folder to `projects/{n}` or set name = \"{folder_name}\""),
            );
        }
    }
    let slug = match ProjectSlug::parse(&project.project_slug) {
        Ok(s) => Some(s),
        Err(e) => {
            cx.err_help("project_slug", e.to_string(), "use a short code such as `pj01`");
            None
        }
    };
    if project.owner.trim().is_empty() {
        cx.err_help(
            "owner",
            "the owner is empty",
            "name the team or person accountable for this data",
        );
    }
    let classification = match Classification::ALL
        .iter()
        .find(|c| c.as_str() == project.classification)
    {
        Some(c) => Some(*c),
        None => {
            cx.err_help(
                "classification",
                format!("`{}` is not a data classification", project.classification),
                "use public, internal, confidential or restricted",
            );
            None
        }
    };

    let tables: Vec<Table> = project
        .tables
        .iter()
        .enumerate()
        .filter_map(|(i, t)| table::check_table(&mut cx, i, t))
        .collect();
    let mut seen = HashMap::new();
    for (i, t) in tables.iter().enumerate() {
        if let Some(first) = seen.insert(t.reference(), i) {
            cx.err_help(
                format!("tables[{i}].name"),
                format!(
                    "table `{}` is declared twice in layer {} (first as tables[{first}])",
                    t.name, t.layer
                ),
                "rename or remove one of them",
            );
        }
    }
    let jobs: Vec<Job> = project
        .jobs
        .iter()
        .enumerate()
        .filter_map(|(i, j)| job::check_job(&mut cx, root, &dir, &tables, &project.tables, i, j))
        .collect();
    let mut seen_jobs = HashMap::new();
    for (i, j) in project.jobs.iter().enumerate() {
        if j.name == crate::naming::MAINTENANCE_JOB {
            cx.err_help(
                format!("jobs[{i}].name"),
                format!(
                    "`{}` is reserved: it names the project's table-maintenance Glue job (pipeline `optimize` steps)",
                    j.name
                ),
                "rename the job, e.g. `maintenance_report`",
            );
        }
        if let Some(first) = seen_jobs.insert(j.name.as_str(), i) {
            cx.err_help(
                format!("jobs[{i}].name"),
                format!("job `{}` is declared twice (first as jobs[{first}])", j.name),
                "job names must be unique within a project",
            );
        }
    }
    let mut pipelines = Vec::new();
    let mut seen_pipelines = HashMap::new();
    for (i, p) in project.pipelines.iter().enumerate() {
        if let Some(first) = seen_pipelines.insert(p.name.as_str(), i) {
            cx.err_help(
                format!("pipelines[{i}].name"),
                format!("pipeline `{}` is declared twice (first as pipelines[{first}])", p.name),
                "pipeline names must be unique within a project",
            );
        }
        if let Some(p) = pipeline::check_pipeline(&mut cx, &project.jobs, &tables, &project.tables, i, p) {
            pipelines.push(p);
        }
    }

    if cx.diags.len() > before {
        return None;
    }
    Some(Project {
        name: name?,
        slug: slug?,
        owner: project.owner,
        contact: project.contact,
        classification: classification?,
        description: project.description,
        dir,
        tables,
        jobs,
        pipelines,
    })
}
