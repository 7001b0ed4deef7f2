//! Loading a domain repository: parse `domain.json` and every `projects/*/project.toml` into
//! their [`unchecked`] shapes, then check everything and build the model. All problems are
//! collected and returned together, each with file, line, field and a fix.
//!
//! This module reads the files and walks the projects; each concern has its own file:
//!
//! | file | checks |
//! |---|---|
//! | [`unchecked`] | nothing: the files' shapes as serde reads them |
//! | `domain.rs` | `domain.json`: names, region, versions, accounts, GitHub repository |
//! | `project.rs` | a `project.toml`'s own fields, duplicate tables, jobs and pipelines, and raw tables named like a quarantine (`<table>_rejected`) |
//! | `table.rs` | a `[[tables]]` entry: columns, partitioning (with Iceberg's partition-spec rules), sort order, identifier, storage (CSV characters that can split a file) |
//! | `optimizer.rs` | `[tables.optimizers]`: compaction, retention, orphan cleanup |
//! | `job.rs` | a `[[jobs]]` entry: SQL file, table references, write mode, merge, parameters, Glue sizing |
//! | `checks.rs` | a job's data-quality `checks`, and the columns a `sql` check names ([`crate::sql_columns`]) |
//! | `daily.rs` | incremental and time-range jobs, and the daily-overwrite trap |
//! | `pipeline.rs` | a `[[pipelines]]` entry: schedule (parsed as EventBridge does, [`crate::cron`]), steps, dependencies, order |
//! | `product.rs` | `[[products]]`: the published table, version, description, freshness, consumers; across projects, unique product names and consumers' accounts |
//! | `cross_project.rs` | rules across projects: unique slugs and tables, quarantine names in the shared raw database, AWS name limits |
//!
//! Every checker takes a `FileCx` (the file being checked, its line map and the shared
//! diagnostics) and returns `None` when it reported a problem.

use std::path::{Path, PathBuf};

use crate::diagnostic::{line_of, relative, Diagnostic, Diagnostics};
use crate::ident::Name;
use crate::model::{Domain, Project};
use crate::source::SourceMap;

mod checks;
mod consume;
mod cross_project;
mod daily;
mod domain;
mod job;
mod moves;
mod optimizer;
mod pipeline;
mod product;
mod project;
mod table;
pub mod unchecked;

pub(crate) use daily::parse_lag;
pub use domain::{check_github_repository, GLUE_VERSIONS};
pub use job::resolves_inside;
pub use optimizer::MAX_RETENTION_DAYS;
pub use pipeline::check_schedule;

pub const DOMAIN_FILE: &str = "domain.json";
pub const PROJECTS_DIR: &str = "projects";
pub const PROJECT_FILE: &str = "project.toml";

/// Loads and validates the domain rooted at `root`.
pub fn load_domain(root: &Path) -> Result<Domain, Diagnostics> {
    let mut diags = Diagnostics::default();
    let header = domain::load_header(root, &mut diags);
    let projects = load_projects(root, &mut diags);
    let Some(mut domain) = header else {
        return Err(diags.sorted());
    };
    domain.projects = projects.into_iter().map(|(p, _)| p).collect();
    if diags.is_empty() {
        cross_project::check_domain(root, &domain, &mut diags);
        moves::check_domain_moves(root, &domain, &mut diags);
        consume::check_domain(root, &domain, &mut diags);
    }
    if diags.is_empty() {
        Ok(domain)
    } else {
        Err(diags.sorted())
    }
}

/// Walks up from `start` to the folder holding `domain.json`.
pub fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| d.join(DOMAIN_FILE).is_file())
        .map(Path::to_path_buf)
}

/// Diagnostics for one file, with line lookup.
struct FileCx<'a> {
    file: PathBuf,
    map: SourceMap<'a>,
    diags: &'a mut Diagnostics,
}

impl FileCx<'_> {
    fn err(&mut self, field: impl Into<String>, message: impl Into<String>) -> &mut Diagnostic {
        let field = field.into();
        let line = self.map.line(&field);
        self.diags
            .push(Diagnostic::new(self.file.clone(), field, message).at_line(line));
        self.diags.last_mut()
    }

    fn err_help(&mut self, field: impl Into<String>, message: impl Into<String>, help: impl Into<String>) {
        let help = crate::diagnostic::cap(help.into());
        self.err(field, message).help = Some(help);
    }

    fn err_maybe_help(&mut self, field: impl Into<String>, message: impl Into<String>, help: Option<String>) {
        self.err(field, message).help = help.map(crate::diagnostic::cap);
    }

    fn name(&mut self, field: &str, value: &str) -> Option<Name> {
        match Name::parse(value) {
            Ok(n) => Some(n),
            Err(e) => {
                self.err_help(field, e.to_string(), format!("use `{}`", suggest_snake(value)));
                None
            }
        }
    }
}

impl Diagnostics {
    fn last_mut(&mut self) -> &mut Diagnostic {
        self.last_mut_inner().expect("a diagnostic was just pushed")
    }
}

fn suggest_snake(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 && !out.ends_with('_') {
            out.push('_');
        }
        match c {
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            'a'..='z' | '0'..='9' => out.push(c),
            _ if !out.ends_with('_') => out.push('_'),
            _ => {}
        }
    }
    let trimmed = out.trim_matches('_').to_string();
    if trimmed.starts_with(|c: char| c.is_ascii_lowercase()) {
        trimmed
    } else {
        format!("t_{trimmed}")
    }
}

fn read(root: &Path, path: &Path, diags: &mut Diagnostics) -> Option<String> {
    match std::fs::read_to_string(path) {
        // A byte-order mark (Windows editors write one) is not content: JSON and TOML parsers
        // would report "expected value" at line 1 for a file that is otherwise fine.
        Ok(t) => Some(match t.strip_prefix('\u{feff}') {
            Some(rest) => rest.to_string(),
            None => t,
        }),
        Err(e) => {
            diags.push(
                Diagnostic::new(relative(root, path), "", format!("cannot read the file: {e}"))
                    .with_help(format!("check that `{}` exists and is readable UTF-8", path.display())),
            );
            None
        }
    }
}

fn load_projects(root: &Path, diags: &mut Diagnostics) -> Vec<(Project, PathBuf)> {
    let dir = root.join(PROJECTS_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut folders: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    let mut out = Vec::new();
    for folder in folders {
        let file = folder.join(PROJECT_FILE);
        if !file.is_file() {
            diags.push(
                Diagnostic::new(
                    relative(root, &folder),
                    "",
                    format!("project folder has no {PROJECT_FILE}"),
                )
                .with_help("add one with `mesh new project NAME --slug SLUG`, or remove the folder"),
            );
            continue;
        }
        if let Some(text) = read(root, &file, diags) {
            if let Some(p) = project::load_project(root, &folder, &file, &text, diags) {
                out.push((p, file));
            }
        }
    }
    out
}

fn toml_error(root: &Path, file: &Path, text: &str, e: toml::de::Error) -> Diagnostic {
    let line = e.span().map(|s| line_of(text, s.start));
    let msg = e.message().trim().to_string();
    let help = if msg.starts_with("unknown field") {
        "remove or rename the field; the accepted fields are listed in the message"
    } else if msg.starts_with("missing field") {
        "add the field; README.md lists every field of project.toml"
    } else {
        "fix the TOML syntax at that line"
    };
    Diagnostic::new(relative(root, file), "", msg)
        .at_line(line)
        .with_help(help)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_suggestions() {
        assert_eq!(suggest_snake("DailySales"), "daily_sales");
        assert_eq!(suggest_snake("daily-sales"), "daily_sales");
        assert_eq!(suggest_snake("9lives"), "t_9lives");
    }
}

/// Loading whole domains in unit tests: one project beside the checks it exercises.
#[cfg(test)]
pub(crate) mod testing {
    use crate::diagnostic::Diagnostic;

    pub const DOMAIN: &str = r#"{ "domain_name": "finance01", "domain_abbr": "f01", "aws_region": "eu-west-1" }"#;

    /// The diagnostics of a domain whose only project is `projects/shop/project.toml` with this
    /// text, plus `files` (paths relative to the project folder); empty when it loads.
    pub fn diagnostics(project: &str, files: &[(&str, &str)]) -> Vec<Diagnostic> {
        projects(&[("shop", project, files)])
    }

    /// A project folder's name, its project.toml, and other files (path, content).
    pub type ProjectFiles<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

    /// The diagnostics of a domain with these projects.
    pub fn projects(projects: &[ProjectFiles<'_>]) -> Vec<Diagnostic> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("domain.json"), DOMAIN).unwrap();
        for (name, text, files) in projects {
            let folder = dir.path().join("projects").join(name);
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join("project.toml"), text).unwrap();
            for (path, content) in *files {
                let p = folder.join(path);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, content).unwrap();
            }
        }
        match super::load_domain(dir.path()) {
            Ok(_) => Vec::new(),
            Err(d) => d.into_iter().collect(),
        }
    }

    /// Exactly one diagnostic, at `field`, whose message holds every one of `wanted`; it names
    /// the file and a line, and has a fix.
    #[track_caller]
    pub fn one_at(diags: &[Diagnostic], field: &str, wanted: &[&str]) -> Diagnostic {
        assert_eq!(diags.len(), 1, "expected one problem at {field}, got:\n{diags:#?}");
        let d = diags[0].clone();
        assert_eq!(d.location.field, field, "{d}");
        assert!(d.location.file.ends_with("project.toml"), "{d}");
        assert!(d.location.line.is_some(), "no line: {d}");
        assert!(d.help.as_deref().is_some_and(|h| !h.is_empty()), "no fix: {d}");
        for w in wanted {
            assert!(d.message.contains(w), "`{w}` not in: {d}");
        }
        d
    }

    /// The repository's example domain (domain.json, projects/) loads without a problem.
    #[test]
    fn the_example_domain_loads() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        if let Err(d) = super::load_domain(&root) {
            panic!("{d}");
        }
    }
}
