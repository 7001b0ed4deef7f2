//! Rules across projects, checked once every project loaded: the domain shares its databases
//! and AWS names, so slugs and table names must be unique and every derived name must fit.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::{DOMAIN_FILE, PROJECT_FILE};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::env::Env;
use crate::model::{Domain, Layer, Project};
use crate::naming::{NameKind, Naming};
use crate::source::SourceMap;

/// Rules that span projects: unique slugs and names, unique tables per database, and every
/// derived AWS name within its limits in every environment.
pub(super) fn check_domain(root: &Path, domain: &Domain, diags: &mut Diagnostics) {
    let file_of = |p: &Project| p.dir.join(PROJECT_FILE);
    let texts: HashMap<PathBuf, String> = domain
        .projects
        .iter()
        .filter_map(|p| {
            std::fs::read_to_string(root.join(file_of(p)))
                .ok()
                .map(|t| (file_of(p), t))
        })
        .collect();
    let push = |diags: &mut Diagnostics, file: PathBuf, field: String, msg: String, help: String| {
        let line = texts.get(&file).and_then(|t| SourceMap::toml(t).line(&field));
        diags.push(Diagnostic::new(file, field, msg).at_line(line).with_help(help));
    };

    let mut slugs: HashMap<&str, &Project> = HashMap::new();
    for p in &domain.projects {
        if let Some(other) = slugs.insert(p.slug.as_str(), p) {
            push(
                diags,
                file_of(p),
                "project_slug".into(),
                format!(
                    "slug `{}` is already used by project `{}` ({})",
                    p.slug,
                    other.name,
                    file_of(other).display()
                ),
                "slugs isolate each project's data and roles: pick an unused one".into(),
            );
        }
    }
    let mut tables: HashMap<(Layer, &str), &Project> = HashMap::new();
    for p in &domain.projects {
        for (i, t) in p.tables.iter().enumerate() {
            if let Some(other) = tables.insert((t.layer, t.name.as_str()), p) {
                if other.name != p.name {
                    push(
                        diags,
                        file_of(p),
                        format!("tables[{i}].name"),
                        format!(
                            "table `{}` already exists in database {} (project `{}`)",
                            t.name,
                            Naming::new(&domain.abbr, Env::Dev).database(t.layer),
                            other.name
                        ),
                        format!(
                            "databases are shared by the whole domain: prefix the name, e.g. `{}_{}`",
                            p.name, t.name
                        ),
                    );
                }
            }
        }
    }
    // `<table>_rejected` names the quarantine of raw table `<table>` in the shared raw database
    // (the same project's clash is reported with the project).
    for p in &domain.projects {
        for (i, t) in p.tables.iter().enumerate() {
            let Some(base) = t.name.as_str().strip_suffix(super::project::REJECTED_SUFFIX) else {
                continue;
            };
            if t.layer != Layer::Raw {
                continue;
            }
            if let Some(other) = tables.get(&(Layer::Raw, base)).filter(|o| o.name != p.name) {
                let database = Naming::new(&domain.abbr, Env::Dev).database(Layer::Raw);
                push(
                    diags,
                    file_of(p),
                    format!("tables[{i}].name"),
                    format!(
                        "`{}` is reserved for the quarantine of raw table `{base}` of project `{}`, in the shared database {database}",
                        t.name, other.name
                    ),
                    format!("rename the table, e.g. `{base}_refused`; the suffix `_rejected` is reserved"),
                );
            }
        }
    }
    super::product::check_domain(root, domain, diags);
    // `local` is the longest environment name, so it is checked first and a name that is too
    // long is reported once, not once per environment.
    let mut reported: BTreeSet<(PathBuf, String, NameKind)> = BTreeSet::new();
    for env in [Env::Local, Env::Prod, Env::Dev, Env::Int] {
        let n = Naming::new(&domain.abbr, env);
        for (kind, name) in n.domain_names() {
            if let Err(e) = kind.check(&name) {
                if reported.insert((DOMAIN_FILE.into(), "domain_abbr".into(), kind)) {
                    diags.push(
                        Diagnostic::new(
                            DOMAIN_FILE,
                            "domain_abbr",
                            format!("derived {} `{name}` {e}", kind.describe()),
                        )
                        .with_help("shorten domain_abbr"),
                    );
                }
            }
        }
        for p in &domain.projects {
            for (kind, name, field) in derived_with_fields(&n, p) {
                if let Err(e) = kind.check(&name) {
                    if reported.insert((file_of(p), field.clone(), kind)) {
                        push(
                            diags,
                            file_of(p),
                            field,
                            format!("derived {} `{name}` {e} (in env {env})", kind.describe()),
                            "shorten this name".into(),
                        );
                    }
                }
            }
        }
    }
}

/// Each derived name of a project with the manifest field it comes from.
fn derived_with_fields(n: &Naming, p: &Project) -> Vec<(NameKind, String, String)> {
    let names = n.project_names(p);
    let mut fields: Vec<String> = vec!["project_slug".into(); 6];
    for (i, _) in p.tables.iter().enumerate() {
        fields.push(format!("tables[{i}].name"));
        fields.push(format!("tables[{i}].name"));
    }
    for (i, _) in p.jobs.iter().enumerate() {
        fields.push(format!("jobs[{i}].name"));
    }
    // The maintenance job's name grows with the slug only.
    if !p.optimized_tables().is_empty() {
        fields.push("project_slug".into());
    }
    for (i, _) in p.pipelines.iter().enumerate() {
        for _ in 0..3 {
            fields.push(format!("pipelines[{i}].name"));
        }
    }
    debug_assert_eq!(names.len(), fields.len(), "Naming::project_names changed shape");
    names
        .into_iter()
        .zip(fields)
        .map(|((k, name), field)| (k, name, field))
        .collect()
}
