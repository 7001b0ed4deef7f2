//! One `project.toml`: its own fields, then its tables, jobs and pipelines (each checked in its
//! own module), and the names that must be unique within the project.

use std::collections::HashMap;
use std::path::Path;

use super::unchecked::UncheckedProject;
use super::{job, pipeline, product, table, toml_error, FileCx};
use crate::diagnostic::{relative, Diagnostics};
use crate::ident::ProjectSlug;
use crate::model::{BadRows, Classification, Job, Layer, Project, Table};
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

    let mut tables: Vec<Table> = project
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
    check_rejected_names(&mut cx, &tables);
    let (moved_from_slug, retired) = super::moves::check_project_moves(&mut cx, &project, slug.as_ref(), &mut tables);
    let mut consumes = super::consume::check_consumes(&mut cx, &project.consumes);
    super::consume::attach_pins(root, &mut consumes, cx.diags);
    let jobs: Vec<Job> = project
        .jobs
        .iter()
        .enumerate()
        .filter_map(|(i, j)| job::check_job(&mut cx, root, &dir, (&tables, &project.tables), &consumes, i, j))
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

    let products = product::check_products(&mut cx, &tables, &project.tables, &project.products);

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
        moved_from_slug,
        retired,
        products,
        consumes,
    })
}

/// `<table>_rejected` belongs to raw table `<table>`: its quarantine (`bad_rows = "quarantine"`)
/// writes rejected rows to the sibling folder of that name and registers the table
/// `<database>.<table>_rejected` in the job's session. A raw table declared with that name would
/// share the folder (Parquet quarantine files in a CSV table) and the SQL name, so the suffix is
/// reserved whenever the base raw table exists, quarantined or not yet.
fn check_rejected_names(cx: &mut FileCx<'_>, tables: &[Table]) {
    for (i, t) in tables.iter().enumerate() {
        if t.layer != Layer::Raw {
            continue;
        }
        let Some(base) = t.name.as_str().strip_suffix(REJECTED_SUFFIX) else {
            continue;
        };
        let Some((bi, b)) = tables
            .iter()
            .enumerate()
            .find(|(_, b)| b.layer == Layer::Raw && b.name.as_str() == base)
        else {
            continue;
        };
        let quarantined = b.hive().is_some_and(|h| h.bad_rows == BadRows::Quarantine);
        let message = if quarantined {
            format!(
                "raw table `{}` is the quarantine of raw table `{base}` (tables[{bi}], bad_rows = \"quarantine\"): its rejected rows are written to the folder `{}/` and read as `{}`, so the two tables would share both",
                t.name, t.name, t.name
            )
        } else {
            format!(
                "`{}` is reserved for the quarantine of raw table `{base}` (tables[{bi}]): with bad_rows = \"quarantine\" its rejected rows go to the folder `{}/`",
                t.name, t.name
            )
        };
        cx.err_help(
            format!("tables[{i}].name"),
            message,
            format!("rename the table, e.g. `{base}_refused` or `rejected_{base}`; the suffix `{REJECTED_SUFFIX}` is reserved"),
        );
    }
}

/// What a raw table's quarantine adds to its name ([`crate::naming::Naming::rejected_table`]).
pub(super) const REJECTED_SUFFIX: &str = "_rejected";

#[cfg(test)]
mod edge_tests {
    use super::super::testing::{diagnostics, one_at, projects};

    /// A project with raw table `base` (with `policy` as bad_rows) and a table `other` in `layer`.
    fn manifest(base: &str, policy: &str, other: &str, layer: &str) -> String {
        let format = if layer == "raw" { "format = \"csv\"\n" } else { "" };
        format!(
            r#"name = "shop"
project_slug = "pj01"
owner = "team"
classification = "internal"

[[tables]]
name = "{other}"
layer = "{layer}"
{format}columns = [{{ name = "id", type = "long" }}]

[[tables]]
name = "{base}"
layer = "raw"
format = "csv"
bad_rows = "{policy}"
columns = [{{ name = "id", type = "long" }}]
"#
        )
    }

    #[test]
    fn a_raw_table_named_like_a_quarantine_is_refused() {
        let d = one_at(
            &diagnostics(&manifest("orders", "quarantine", "orders_rejected", "raw"), &[]),
            "tables[0].name",
            &[
                "`orders_rejected` is the quarantine of raw table `orders`",
                "tables[1]",
                "folder",
            ],
        );
        assert!(d.help.unwrap().contains("orders_refused"));
        // Reserved while the base fails on bad rows too: switching it to quarantine later
        // must not start writing into another table's folder.
        one_at(
            &diagnostics(&manifest("orders", "fail", "orders_rejected", "raw"), &[]),
            "tables[0].name",
            &["reserved for the quarantine of raw table `orders`"],
        );
        // A base whose own name ends in `_rejected`.
        one_at(
            &diagnostics(&manifest("a_rejected", "quarantine", "a_rejected_rejected", "raw"), &[]),
            "tables[0].name",
            &["quarantine of raw table `a_rejected`"],
        );
    }

    #[test]
    fn names_ending_in_rejected_without_a_raw_base_are_accepted() {
        for (base, other, layer) in [
            ("orders", "returns_rejected", "raw"),
            ("orders", "orders_rejected", "refined"),
            ("orders", "orders_rejected", "curated"),
            ("orders", "orders_rejects", "raw"),
            ("orders", "rejected", "raw"),
        ] {
            let d = diagnostics(&manifest(base, "quarantine", other, layer), &[]);
            assert!(d.is_empty(), "{other} ({layer}): {d:#?}");
        }
    }

    #[test]
    fn a_quarantine_name_in_another_project_of_the_shared_database_is_refused() {
        let a = manifest("orders", "quarantine", "returns", "raw");
        let b = manifest("shipments", "fail", "orders_rejected", "raw")
            .replace("name = \"shop\"", "name = \"depot\"")
            .replace("pj01", "pj02");
        let d = projects(&[("shop", &a, &[]), ("depot", &b, &[])]);
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!(d[0].location.field, "tables[0].name");
        assert!(d[0].location.file.ends_with("depot/project.toml"), "{}", d[0]);
        assert!(
            d[0].message.contains("project `shop`") && d[0].message.contains("f01_raw"),
            "{}",
            d[0]
        );
    }
}
