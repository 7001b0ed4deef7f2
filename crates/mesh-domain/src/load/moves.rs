//! Declared moves and retirements: `moved_from` on a table, `moved_from_slug` and `retired` on
//! a project. A table's data lives at a place derived from its project's slug, its layer and
//! its name; changing any of them without one of these declarations would leave the data
//! behind (and `mesh validate --against`, `mesh plan` refuse it), so the model says where data
//! comes from and what may be dropped, and meshkit moves or drops it (`mesh apply`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::unchecked::UncheckedProject;
use super::{FileCx, PROJECT_FILE};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::ident::{Name, ProjectSlug};
use crate::model::{Domain, Layer, Project, Table, TablePlace, TableRef};
use crate::source::SourceMap;

/// Parses `layer.table`, reporting at `field`.
fn parse_ref(cx: &mut FileCx<'_>, field: &str, value: &str) -> Option<(Layer, Name)> {
    let Some((layer_s, name_s)) = value.split_once('.') else {
        cx.err_help(
            field,
            format!("`{value}` is not a table reference"),
            "write `layer.table`, e.g. `refined.orders`",
        );
        return None;
    };
    let Some(layer) = Layer::parse(layer_s) else {
        cx.err_help(
            field,
            format!("`{layer_s}` in `{value}` is not a layer"),
            "write `raw.`, `refined.` or `curated.` before the table name",
        );
        return None;
    };
    Some((layer, cx.name(field, name_s)?))
}

/// The project's `moved_from_slug`, each table's `moved_from` and the `retired` list, checked
/// within the project; sets `Table::moved_from`.
pub(super) fn check_project_moves(
    cx: &mut FileCx<'_>,
    project: &UncheckedProject,
    slug: Option<&ProjectSlug>,
    tables: &mut [Table],
) -> (Option<ProjectSlug>, Vec<TableRef>) {
    let moved_from_slug = project
        .moved_from_slug
        .as_deref()
        .and_then(|s| match ProjectSlug::parse(s) {
            Ok(old) if Some(&old) == slug => {
                cx.err_help(
                    "moved_from_slug",
                    format!("moved_from_slug `{old}` is the project's slug"),
                    "remove moved_from_slug, or set it to the slug the project had before",
                );
                None
            }
            Ok(old) => Some(old),
            Err(e) => {
                cx.err_help(
                    "moved_from_slug",
                    e.to_string(),
                    "write the slug the project had before",
                );
                None
            }
        });
    // Without a slug, `moved_from` names a place of this project as it was: under its
    // previous slug when it has one.
    let before = moved_from_slug.as_ref().or(slug);
    for (i, raw) in project.tables.iter().enumerate() {
        let Some(value) = raw.moved_from.as_deref() else {
            continue;
        };
        let field = format!("tables[{i}].moved_from");
        let (slug_part, reference) = match value.split_once('/') {
            Some((s, r)) => match ProjectSlug::parse(s) {
                Ok(s) => (Some(s), r),
                Err(e) => {
                    cx.err_help(
                        &field,
                        format!("`{s}` in `{value}`: {e}"),
                        "write `slug/layer.table` or `layer.table`",
                    );
                    continue;
                }
            },
            None => (None, value),
        };
        let Some((layer, name)) = parse_ref(cx, &field, reference) else {
            continue;
        };
        let Some(origin_slug) = slug_part.or_else(|| before.cloned()) else {
            continue; // the project's slug is invalid: reported already
        };
        // `tables` holds only the tables that checked; find this one by its declaration.
        let Some(t) = tables
            .iter_mut()
            .find(|t| t.name.as_str() == raw.name && t.layer.as_str() == raw.layer)
        else {
            continue;
        };
        let origin = TablePlace {
            slug: origin_slug,
            layer,
            name,
        };
        let here = Some(&origin.slug) == slug && origin.layer == t.layer && origin.name == t.name;
        if here {
            cx.err_help(
                &field,
                format!("moved_from `{value}` is where table `{}` already is", t.name),
                "remove moved_from, or name the place the table had before",
            );
            continue;
        }
        if origin.layer.is_iceberg() != t.layer.is_iceberg() {
            cx.err_help(
                &field,
                format!(
                    "table `{}` ({}) cannot move from the {} layer: raw tables are plain files, refined and curated tables are Iceberg tables",
                    t.name, t.layer, origin.layer
                ),
                "declare a new table and a job that loads it from the old one, then retire the old one",
            );
            continue;
        }
        t.moved_from = Some(origin);
    }
    let mut retired: Vec<TableRef> = Vec::new();
    for (i, value) in project.retired.iter().enumerate() {
        let field = format!("retired[{i}]");
        let Some((layer, name)) = parse_ref(cx, &field, value) else {
            continue;
        };
        let r = TableRef { layer, table: name };
        if tables.iter().any(|t| t.reference() == r)
            || project
                .tables
                .iter()
                .any(|t| t.layer == r.layer.as_str() && t.name == r.table.as_str())
        {
            cx.err_help(
                &field,
                format!("table `{r}` is retired and declared in [[tables]]"),
                "a retired table's data is dropped: remove it from [[tables]], or from retired to keep it",
            );
            continue;
        }
        if retired.contains(&r) {
            cx.err_help(&field, format!("`{r}` is retired twice"), "remove one of them");
            continue;
        }
        retired.push(r);
    }
    (moved_from_slug, retired)
}

/// Rules across projects: an origin or a retired table is nobody's current place, two tables
/// do not move from one place, and a previous slug is not another project's slug.
pub(super) fn check_domain_moves(root: &Path, domain: &Domain, diags: &mut Diagnostics) {
    let file_of = |p: &Project| p.dir.join(PROJECT_FILE);
    let push = |diags: &mut Diagnostics, file: PathBuf, field: String, msg: String, help: String| {
        let line = std::fs::read_to_string(root.join(&file))
            .ok()
            .and_then(|t| SourceMap::toml(&t).line(&field));
        diags.push(Diagnostic::new(file, field, msg).at_line(line).with_help(help));
    };
    let field_of = |p: &Project, t: &Table| {
        let i = p
            .tables
            .iter()
            .position(|x| x.reference() == t.reference())
            .unwrap_or(0);
        if t.moved_from.is_some() {
            format!("tables[{i}].moved_from")
        } else {
            "moved_from_slug".to_string()
        }
    };
    let mut current: HashMap<TablePlace, &Project> = HashMap::new();
    for p in &domain.projects {
        for t in &p.tables {
            current.insert(
                TablePlace {
                    slug: p.slug.clone(),
                    layer: t.layer,
                    name: t.name.clone(),
                },
                p,
            );
        }
    }
    let mut origins: HashMap<TablePlace, (&Project, &Table)> = HashMap::new();
    for p in &domain.projects {
        if let Some(old) = &p.moved_from_slug {
            if let Some(other) = domain.projects.iter().find(|o| &o.slug == old) {
                push(
                    diags,
                    file_of(p),
                    "moved_from_slug".into(),
                    format!("moved_from_slug `{old}` is the slug of project `{}`", other.name),
                    "a project moves from a slug no project uses any more: check the slug".into(),
                );
            }
        }
        for t in &p.tables {
            let Some(origin) = p.origin(t) else { continue };
            if let Some(holder) = current.get(&origin) {
                push(
                    diags,
                    file_of(p),
                    field_of(p, t),
                    format!(
                        "table `{}` moves from {origin}, which project `{}` still declares",
                        t.reference(),
                        holder.name
                    ),
                    "a move empties the old place: remove the old table's declaration, or declare a new table instead of a move".into(),
                );
                continue;
            }
            if let Some((op, ot)) = origins.insert(origin.clone(), (p, t)) {
                push(
                    diags,
                    file_of(p),
                    field_of(p, t),
                    format!(
                        "table `{}` and table `{}` of project `{}` both move from {origin}",
                        t.reference(),
                        ot.reference(),
                        op.name
                    ),
                    "a table's data moves to one place: keep moved_from on one of them".into(),
                );
            }
        }
    }
    for p in &domain.projects {
        for (i, r) in p.retired.iter().enumerate() {
            let place = TablePlace {
                slug: p.slug.clone(),
                layer: r.layer,
                name: r.table.clone(),
            };
            if let Some((mp, mt)) = origins.get(&place) {
                push(
                    diags,
                    file_of(p),
                    format!("retired[{i}]"),
                    format!(
                        "`{r}` is retired and moved to `{}` of project `{}`",
                        mt.reference(),
                        mp.name
                    ),
                    "a moved table keeps its data: remove it from retired".into(),
                );
            }
        }
    }
}
