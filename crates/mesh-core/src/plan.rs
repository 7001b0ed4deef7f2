//! `mesh plan`: what the model at HEAD changes, against what an environment holds (its
//! catalog's tables and each job's committed fingerprint) or against the model at a git ref.
//!
//! The result is a list of [`Change`]s, each with a class ([`Class`]: additive, type
//! promotion, breaking, destructive, needs a rewrite), the downstream tables it affects (from
//! the jobs' declared inputs and outputs), what must be recomputed and, when meshkit will not
//! apply it, why and the fix. `mesh run` applies the same plan to the tables and jobs it would
//! run ([`Plan::refusals_for`]). Later kinds of change (declared moves, retirements, schema
//! evolution applied by the engines) add [`Change`]s of the same shape.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mesh_domain::{Column, ColumnType, Domain, Job, Layer, OnChange, Project, Table, TablePlace, TableRef, Transform};
use serde::Serialize;

use crate::engine::Engine;
use crate::fingerprint::{describe_part, fingerprint_key, Fingerprint};

/// How a change reaches the data already written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Nothing written before changes meaning: new tables, jobs, nullable columns.
    Additive,
    /// A type Iceberg widens in place: int→long, float→double, decimal(p,s)→decimal(p',s), p'≥p.
    TypePromotion,
    /// Existing data no longer fits or would be read wrongly: narrowing, incompatible types,
    /// other merge keys.
    Breaking,
    /// Data would be dropped or orphaned: a table or column removed, a table moved.
    Destructive,
    /// Only correct once existing data is recomputed or rewritten: a NOT NULL column added, a
    /// partition spec changed, a stateful job whose definition changed.
    NeedsRewrite,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Additive => "additive",
            Class::TypePromotion => "type promotion",
            Class::Breaking => "breaking",
            Class::Destructive => "destructive",
            Class::NeedsRewrite => "needs a rewrite",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Object {
    Project,
    Table,
    Job,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Added,
    Removed,
    Moved,
    Changed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Added => "added",
            Action::Removed => "removed",
            Action::Moved => "moved",
            Action::Changed => "changed",
        }
    }
}

/// One change of the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub object: Object,
    pub project: String,
    /// `layer.table`, a job's name, or the project's name.
    pub name: String,
    pub action: Action,
    pub class: Class,
    /// What changed, one item per detail (`column qty: int → long`).
    pub details: Vec<String>,
    /// Tables whose data derives from this one (or from this job's output), transitively.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub downstream: Vec<String>,
    /// What must be recomputed, and how.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recompute: Option<String>,
    /// Why meshkit refuses to apply it, with the fix (`None`: it is applied or harmless).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// What the model at HEAD changes against a base.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// `env local`, `git main`.
    pub base: String,
    pub changes: Vec<Change>,
    /// What could not be compared (a table the catalog cannot load, a job state that cannot
    /// be found): the run that writes it reports the same error.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn refused(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.refused.is_some())
    }

    /// The refused changes a run of `jobs` (project, job) would meet: changes of the tables
    /// they write, and of the jobs themselves.
    pub fn refusals_for<'a>(&'a self, jobs: &[(&Project, &Job)]) -> Vec<&'a Change> {
        self.refused()
            .filter(|c| {
                jobs.iter().any(|(p, j)| {
                    c.project == p.name.as_str()
                        && match c.object {
                            Object::Table => c.name == j.output.to_string(),
                            Object::Job => c.name == j.name.as_str(),
                            Object::Project => true,
                        }
                })
            })
            .collect()
    }

    /// Stateful jobs whose fingerprint changed and whose policy is `full_refresh`.
    pub fn to_refresh(&self) -> Vec<(String, String)> {
        self.changes
            .iter()
            .filter(|c| c.object == Object::Job && c.action == Action::Changed)
            .filter(|c| c.recompute.as_deref().is_some_and(|r| r.starts_with(REFRESH_NEXT_RUN)))
            .map(|c| (c.project.clone(), c.name.clone()))
            .collect()
    }
}

const REFRESH_NEXT_RUN: &str = "full refresh by the next run";

// ---------------------------------------------------------------------------------------------
// Classification rules.

/// Iceberg's type promotions (format v2): int→long, float→double, decimal(p,s)→decimal(p',s)
/// with p' ≥ p.
pub fn promotes(from: ColumnType, to: ColumnType) -> bool {
    use ColumnType as C;
    match (from, to) {
        (C::Int, C::Long) | (C::Float, C::Double) => true,
        (
            C::Decimal { precision: p, scale: s },
            C::Decimal {
                precision: p2,
                scale: s2,
            },
        ) => s == s2 && p2 >= p,
        _ => false,
    }
}

/// A column as the base holds it: the type may be one meshkit cannot name (`None`, with the
/// text the catalog gave).
#[derive(Debug, Clone, PartialEq)]
pub struct BaseColumn {
    pub name: String,
    pub data_type: Result<ColumnType, String>,
    pub nullable: bool,
}

impl From<&Column> for BaseColumn {
    fn from(c: &Column) -> BaseColumn {
        BaseColumn {
            name: c.name.to_string(),
            data_type: Ok(c.data_type),
            nullable: c.nullable,
        }
    }
}

/// A table's shape as the base holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseTable {
    pub columns: Vec<BaseColumn>,
    /// `month(d)`, `bucket(16, id)`.
    pub partition_by: Vec<String>,
    /// `col asc nulls first`.
    pub sort_order: Vec<String>,
    /// `None`: the base does not record them (a catalog table written without identifier fields).
    pub identifier: Option<Vec<String>>,
    /// Whether the table holds rows: a NOT NULL column can be added to an empty one.
    pub holds_data: bool,
}

impl BaseTable {
    pub fn of(t: &Table) -> BaseTable {
        BaseTable {
            columns: t.columns.iter().map(BaseColumn::from).collect(),
            partition_by: t.partition_by.iter().map(|p| p.to_string()).collect(),
            sort_order: t.sort_order.iter().map(|s| s.to_string()).collect(),
            identifier: Some(t.identifier.iter().map(|i| i.to_string()).collect()),
            // Another model says nothing of the data: take it as written.
            holds_data: true,
        }
    }
}

/// The classified differences between a table as the base holds it and as the model declares
/// it, one (class, detail) each.
pub fn table_changes(base: &BaseTable, table: &Table) -> Vec<(Class, String)> {
    let mut out = Vec::new();
    let find = |name: &str| base.columns.iter().find(|b| b.name == name);
    // Old names a declared column continues (`renamed_from`), when the base has the old name
    // and not yet the new one.
    let mut renamed: Vec<&str> = Vec::new();
    for c in &table.columns {
        let existing = match find(c.name.as_str()) {
            Some(b) => Some(b),
            None => match c.renamed_from.as_ref().and_then(|old| find(old.as_str())) {
                Some(b) => {
                    renamed.push(b.name.as_str());
                    out.push((
                        Class::Additive,
                        format!(
                            "column {} renamed to {} (same field id: its values are kept)",
                            b.name, c.name
                        ),
                    ));
                    Some(b)
                }
                None => None,
            },
        };
        match existing {
            None if c.nullable => out.push((Class::Additive, format!("column {} ({}) added", c.name, c.data_type))),
            None if !base.holds_data => out.push((
                Class::Additive,
                format!(
                    "NOT NULL column {} ({}) added to a table with no rows",
                    c.name, c.data_type
                ),
            )),
            None => out.push((
                Class::NeedsRewrite,
                format!(
                    "NOT NULL column {} ({}) added: the rows already written have no value for it",
                    c.name, c.data_type
                ),
            )),
            Some(b) => {
                match &b.data_type {
                    Ok(t) if *t == c.data_type => {}
                    Ok(t) if promotes(*t, c.data_type) => {
                        out.push((Class::TypePromotion, format!("column {}: {t} → {}", c.name, c.data_type)))
                    }
                    Ok(t) => out.push((
                        Class::Breaking,
                        format!(
                            "column {}: {t} → {} is not a type promotion Iceberg allows (int→long, float→double, decimal(p,s)→decimal(p',s) with p' ≥ p); the data already written keeps {t}",
                            c.name, c.data_type
                        ),
                    )),
                    Err(raw) => out.push((
                        Class::Breaking,
                        format!("column {}: {raw} → {}: not a type meshkit can change", c.name, c.data_type),
                    )),
                }
                match (b.nullable, c.nullable) {
                    (false, true) => out.push((Class::Additive, format!("column {}: NOT NULL → nullable", c.name))),
                    (true, false) if !base.holds_data => out.push((
                        Class::Additive,
                        format!("column {}: nullable → NOT NULL (the table has no rows)", c.name),
                    )),
                    (true, false) => out.push((
                        Class::NeedsRewrite,
                        format!(
                            "column {}: nullable → NOT NULL: rows already written may hold NULLs",
                            c.name
                        ),
                    )),
                    _ => {}
                }
            }
        }
    }
    let declared_drops: Vec<&str> = table
        .iceberg()
        .map(|o| o.dropped_columns.iter().map(|n| n.as_str()).collect())
        .unwrap_or_default();
    for b in &base.columns {
        if table.column(&b.name).is_none() && !renamed.contains(&b.name.as_str()) {
            out.push((
                Class::Destructive,
                if declared_drops.contains(&b.name.as_str()) {
                    format!("column {} dropped {DECLARED_DROP}", b.name)
                } else {
                    format!(
                        "column {} dropped: its values in the rows already written would be lost",
                        b.name
                    )
                },
            ));
        }
    }
    let partition: Vec<String> = table.partition_by.iter().map(|p| p.to_string()).collect();
    if partition != base.partition_by {
        out.push((
            Class::Additive,
            format!(
                "partition spec [{}] → [{}]: spec evolution (files already written keep the old spec, new writes use the new one)",
                base.partition_by.join(", "),
                partition.join(", ")
            ),
        ));
    }
    let sort: Vec<String> = table.sort_order.iter().map(|s| s.to_string()).collect();
    if sort != base.sort_order {
        out.push((
            Class::Additive,
            format!(
                "sort order [{}] → [{}]: applies to files written from now on",
                base.sort_order.join(", "),
                sort.join(", ")
            ),
        ));
    }
    let identifier: Vec<String> = table.identifier.iter().map(|i| i.to_string()).collect();
    // Identifier fields are a set (Iceberg keeps ids, in no order).
    let same_set = |a: &[String], b: &[String]| {
        let (mut a, mut b) = (a.to_vec(), b.to_vec());
        a.sort();
        b.sort();
        a == b
    };
    match &base.identifier {
        Some(base_id) if !same_set(base_id, &identifier) => out.push((
            Class::Breaking,
            format!(
                "identifier (merge) keys ({}) → ({}): rows merged under the old keys would be duplicated under the new ones",
                base_id.join(", "),
                identifier.join(", ")
            ),
        )),
        // A table written before meshkit set identifier fields gets them from the manifest.
        None if !identifier.is_empty() => out.push((
            Class::Additive,
            format!("identifier fields set to ({})", identifier.join(", ")),
        )),
        _ => {}
    }
    out
}

/// Why a write refuses `changes` of table `name` (`None`: it applies them), with one fix per
/// kind of change; `writers` are the jobs writing the table.
pub fn refused_help(name: &str, changes: &[(Class, String)], holds_data: bool, writers: &[&str]) -> Option<String> {
    let refused: Vec<&(Class, String)> = changes
        .iter()
        .filter(|(c, d)| refuses(*c) && !d.ends_with(DECLARED_DROP))
        .collect();
    if refused.is_empty() {
        return None;
    }
    let jobs = if writers.is_empty() {
        "J".to_string()
    } else {
        writers.join("/")
    };
    let mut help: Vec<String> = Vec::new();
    let has = |class: Class| refused.iter().any(|(c, _)| *c == class);
    if has(Class::Breaking) {
        help.push(
            "a type Iceberg cannot promote, or other identifier keys: keep the table's type (or a promotion: int→long, float→double, a wider decimal precision) and keys, or write a new table under another name".into(),
        );
    }
    if has(Class::NeedsRewrite) {
        help.push(format!(
            "a NOT NULL column or nullable → NOT NULL on rows already written: declare it nullable = true, or recompute the table (an incremental or time-range job: mesh run --job {jobs} --full-refresh empties it first)"
        ));
    }
    if has(Class::Destructive) {
        help.push(format!(
            "a dropped column: list it in the table's dropped_columns = [\"...\"] (every engine and environment then drops it from the schema; metadata only: older snapshots keep its values), or mesh run --job {jobs} --allow-destructive for this run, or declare it again; a renamed column needs renamed_from = \"old\""
        ));
    }
    let what: Vec<&str> = refused.iter().map(|(_, d)| d.as_str()).collect();
    Some(format!(
        "{name}: {} refused{}: {}\n  help: {}",
        if what.len() == 1 { "a change is" } else { "changes are" },
        if holds_data { " (the table holds data)" } else { "" },
        what.join("; "),
        help.join("\n  help: ")
    ))
}

/// The worst class of a list (destructive over breaking over needs-a-rewrite over promotion
/// over additive).
fn worst(classes: impl IntoIterator<Item = Class>) -> Class {
    let rank = |c: Class| match c {
        Class::Additive => 0,
        Class::TypePromotion => 1,
        Class::NeedsRewrite => 2,
        Class::Breaking => 3,
        Class::Destructive => 4,
    };
    classes.into_iter().max_by_key(|c| rank(*c)).unwrap_or(Class::Additive)
}

/// The detail of a column drop the manifest declares (`dropped_columns`): destructive, and
/// applied without `--allow-destructive`.
const DECLARED_DROP: &str = "(declared in dropped_columns: metadata only, older snapshots keep its values)";

/// Whether meshkit refuses to apply a change of this class to a table that holds data.
fn refuses(class: Class) -> bool {
    matches!(class, Class::Breaking | Class::Destructive | Class::NeedsRewrite)
}

/// The tables whose data derives from `table` through the project's jobs (declared inputs to
/// outputs), transitively, in the order they are reached.
pub fn downstream(project: &Project, table: &TableRef) -> Vec<String> {
    let mut seen: BTreeSet<TableRef> = BTreeSet::new();
    let mut order = Vec::new();
    let mut queue = vec![table.clone()];
    while let Some(t) = queue.pop() {
        for j in project.jobs.iter().filter(|j| j.inputs.contains(&t)) {
            if j.output != *table && seen.insert(j.output.clone()) {
                order.push(j.output.to_string());
                queue.push(j.output.clone());
            }
        }
    }
    order
}

fn table_change(project: &Project, table: &Table, base: &BaseTable) -> Option<Change> {
    let diffs = table_changes(base, table);
    if diffs.is_empty() {
        return None;
    }
    let class = worst(diffs.iter().map(|(c, _)| *c));
    let name = table.reference().to_string();
    let writers: Vec<&str> = project
        .jobs
        .iter()
        .filter(|j| j.output == table.reference())
        .map(|j| j.name.as_str())
        .collect();
    let refused = refused_help(&name, &diffs, base.holds_data, &writers);
    Some(Change {
        object: Object::Table,
        project: project.name.to_string(),
        name,
        action: Action::Changed,
        class,
        details: diffs.into_iter().map(|(_, d)| d).collect(),
        downstream: downstream(project, &table.reference()),
        recompute: None,
        refused,
    })
}

// ---------------------------------------------------------------------------------------------
// Against another model (a git ref).

/// The changes from `base` (the model at a git ref, its files under `base_root`) to `head`
/// (under `head_root`).
pub fn diff_models(base: &Domain, base_root: &Path, head: &Domain, head_root: &Path) -> Vec<Change> {
    let mut out = Vec::new();
    for p in &head.projects {
        let Some(bp) = base.project(p.name.as_str()) else {
            out.push(Change {
                object: Object::Project,
                project: p.name.to_string(),
                name: p.name.to_string(),
                action: Action::Added,
                class: Class::Additive,
                details: vec![format!("{} table(s), {} job(s)", p.tables.len(), p.jobs.len())],
                downstream: vec![],
                recompute: None,
                refused: None,
            });
            continue;
        };
        if bp.slug != p.slug {
            let declared = p.moved_from_slug.as_ref() == Some(&bp.slug);
            out.push(Change {
                object: Object::Project,
                project: p.name.to_string(),
                name: p.name.to_string(),
                action: Action::Moved,
                class: if declared { Class::NeedsRewrite } else { Class::Destructive },
                details: vec![if declared {
                    format!(
                        "project_slug {} → {} (moved_from_slug): `mesh apply` (or the next `mesh run`) moves each table's data from under {} to under {}; Terraform moves the resources' addresses",
                        bp.slug, p.slug, bp.slug, p.slug
                    )
                } else {
                    format!(
                        "project_slug {} → {}: every table's location and AWS name changes; the data under {} would be left behind and raw tables would read an empty folder",
                        bp.slug, p.slug, bp.slug
                    )
                }],
                downstream: vec![],
                recompute: None,
                refused: (!declared).then(|| {
                    format!(
                        "renaming a project slug leaves its data under the old slug\n  help: declare moved_from_slug = \"{}\" in the project's manifest (meshkit then moves the data), or keep project_slug = \"{}\"",
                        bp.slug, bp.slug
                    )
                }),
            });
        }
    }
    for bp in &base.projects {
        if head.project(bp.name.as_str()).is_none() {
            out.push(Change {
                object: Object::Project,
                project: bp.name.to_string(),
                name: bp.name.to_string(),
                action: Action::Removed,
                class: Class::Destructive,
                details: vec![format!(
                    "{} table(s) and {} job(s) removed with it; their catalog entries and files would be orphaned",
                    bp.tables.len(),
                    bp.jobs.len()
                )],
                downstream: vec![],
                recompute: None,
                refused: Some(format!(
                    "removing a project leaves its tables' data behind\n  help: keep the project, with its tables listed in retired = [{}] and no [[tables]], until every environment has dropped them",
                    bp.tables.iter().map(|t| format!("\"{}\"", t.reference())).collect::<Vec<_>>().join(", ")
                )),
            });
        }
    }
    // Tables: (project, layer, name).
    let find_moved = |d: &Domain, t: &Table, skip: &str| -> Option<String> {
        d.tables()
            .find(|(p, x)| x.name == t.name && (x.layer != t.layer || p.name.as_str() != skip))
            .map(|(p, x)| format!("{}/{}", p.name, x.reference()))
    };
    for p in &head.projects {
        let bp = base.project(p.name.as_str());
        for t in &p.tables {
            match bp.and_then(|bp| bp.table(&t.reference())) {
                Some(bt) => out.extend(table_change(p, t, &BaseTable::of(bt))),
                None if declared_origin(base, p, t).is_some() => {
                    let origin = p.origin(t).expect("a declared origin");
                    out.push(Change {
                        object: Object::Table,
                        project: p.name.to_string(),
                        name: t.reference().to_string(),
                        action: Action::Moved,
                        class: Class::NeedsRewrite,
                        details: vec![format!(
                            "moved from {origin} (declared): `mesh apply` (or the next `mesh run`) copies its rows and jobs' state here, then drops the old entry and files"
                        )],
                        downstream: downstream(p, &t.reference()),
                        recompute: None,
                        refused: None,
                    });
                }
                None => {
                    let from = find_moved(base, t, p.name.as_str()).filter(|m| {
                        head.tables()
                            .all(|(hp, ht)| format!("{}/{}", hp.name, ht.reference()) != *m)
                    });
                    let change = match from {
                        Some(from) => Change {
                            object: Object::Table,
                            project: p.name.to_string(),
                            name: t.reference().to_string(),
                            action: Action::Moved,
                            class: Class::Destructive,
                            details: vec![format!(
                                "moved from {from}: the new location starts empty and the old table's catalog entry and files are orphaned"
                            )],
                            downstream: downstream(p, &t.reference()),
                            recompute: None,
                            refused: Some(format!(
                                "an undeclared move leaves {from}'s data behind and starts this table empty\n  help: declare moved_from = \"{}\" on the table (meshkit then moves the data), or keep the table where it was",
                                moved_from_value(base, p, &from)
                            )),
                        },
                        None => Change {
                            object: Object::Table,
                            project: p.name.to_string(),
                            name: t.reference().to_string(),
                            action: Action::Added,
                            class: Class::Additive,
                            details: vec![format!("{} column(s)", t.columns.len())],
                            downstream: vec![],
                            recompute: None,
                            refused: None,
                        },
                    };
                    out.push(change);
                }
            }
        }
    }
    for bp in &base.projects {
        let Some(p) = head.project(bp.name.as_str()) else {
            continue;
        };
        for bt in &bp.tables {
            if p.table(&bt.reference()).is_some() {
                continue;
            }
            let place = TablePlace {
                slug: bp.slug.clone(),
                layer: bt.layer,
                name: bt.name.clone(),
            };
            let declared_to = head.tables().any(|(hp, ht)| hp.origin(ht).as_ref() == Some(&place));
            let moved_to = head
                .tables()
                .any(|(hp, ht)| ht.name == bt.name && (ht.layer != bt.layer || hp.name != bp.name));
            if declared_to || moved_to {
                continue; // reported as moved at its new place
            }
            if p.retired.contains(&bt.reference()) {
                out.push(Change {
                    object: Object::Table,
                    project: bp.name.to_string(),
                    name: bt.reference().to_string(),
                    action: Action::Removed,
                    class: Class::Destructive,
                    details: vec![
                        "retired (declared): `mesh apply` (or the next `mesh run`) drops its catalog entry and deletes its files"
                            .into(),
                    ],
                    downstream: downstream(bp, &bt.reference()),
                    recompute: None,
                    refused: None,
                });
                continue;
            }
            out.push(Change {
                object: Object::Table,
                project: bp.name.to_string(),
                name: bt.reference().to_string(),
                action: Action::Removed,
                class: Class::Destructive,
                details: vec![
                    "removed from the manifest: its catalog entry and files would be orphaned (not read, not maintained)"
                        .into(),
                ],
                downstream: downstream(bp, &bt.reference()),
                recompute: None,
                refused: Some(format!(
                    "removing {} from the manifest would orphan its catalog entry and files\n  help: list it in the project's retired = [\"{}\"] to drop its data, declare moved_from on the table that takes its data, or keep it in the manifest",
                    bt.reference(),
                    bt.reference()
                )),
            });
        }
    }
    // Jobs.
    for p in &head.projects {
        let bp = base.project(p.name.as_str());
        for j in &p.jobs {
            let Some(bj) = bp.and_then(|bp| bp.job(j.name.as_str())) else {
                out.push(Change {
                    object: Object::Job,
                    project: p.name.to_string(),
                    name: j.name.to_string(),
                    action: Action::Added,
                    class: Class::Additive,
                    details: vec![format!("writes {}", j.output)],
                    downstream: vec![],
                    recompute: None,
                    refused: None,
                });
                continue;
            };
            let bp = bp.expect("found the job in it");
            let (Some(now), Some(was)) = (
                Fingerprint::of_job(head_root, p, j),
                Fingerprint::of_job(base_root, bp, bj),
            ) else {
                continue;
            };
            let parts = now.changed_parts(&was.0);
            if parts.is_empty() {
                continue;
            }
            out.push(job_change(p, j, &parts, None));
        }
        if let Some(bp) = bp {
            for bj in &bp.jobs {
                if p.job(bj.name.as_str()).is_none() {
                    out.push(Change {
                        object: Object::Job,
                        project: p.name.to_string(),
                        name: bj.name.to_string(),
                        action: Action::Removed,
                        class: Class::Additive,
                        details: vec![format!(
                            "nothing writes {} any more; it keeps its rows and the job's state",
                            bj.output
                        )],
                        downstream: vec![],
                        recompute: None,
                        refused: None,
                    });
                }
            }
        }
    }
    out
}

/// `mesh validate --against REF`: each table or project that moved or disappeared since `REF`
/// without a declaration (`moved_from`, `moved_from_slug`, `retired`), as a diagnostic of the
/// manifest that must declare it, naming the data it would orphan.
pub fn undeclared_moves(
    base: &Domain,
    base_root: &Path,
    head: &Domain,
    head_root: &Path,
    git_ref: &str,
) -> mesh_domain::Diagnostics {
    let mut out = mesh_domain::Diagnostics::default();
    let changes = diff_models(base, base_root, head, head_root);
    for c in changes.iter().filter(|c| c.refused.is_some()) {
        if !matches!(c.object, Object::Table | Object::Project) || !matches!(c.action, Action::Moved | Action::Removed)
        {
            continue;
        }
        let project = head.project(&c.project).or_else(|| base.project(&c.project));
        let Some(project) = project else { continue };
        let file = project.dir.join(mesh_domain::load::PROJECT_FILE);
        let field = match (c.object, c.action) {
            (Object::Project, Action::Moved) => "project_slug".to_string(),
            (Object::Project, _) => "name".to_string(),
            (_, Action::Moved) => head
                .project(&c.project)
                .and_then(|p| p.tables.iter().position(|t| t.reference().to_string() == c.name))
                .map(|i| format!("tables[{i}].name"))
                .unwrap_or_else(|| "tables".into()),
            _ => "retired".to_string(),
        };
        let what = match c.object {
            Object::Project => format!("project `{}`", c.name),
            _ => format!("table `{}` of project `{}`", c.name, c.project),
        };
        let refused = c.refused.as_deref().unwrap_or_default();
        let (why, help) = refused.split_once("\n").unwrap_or((refused, ""));
        let line = std::fs::read_to_string(head_root.join(&file))
            .ok()
            .and_then(|t| mesh_domain::source::SourceMap::toml(&t).line(&field));
        out.push(
            mesh_domain::Diagnostic::new(
                file,
                field,
                format!(
                    "{what} {} since {git_ref} without a declaration: {}; {why}",
                    c.action.as_str(),
                    c.details.join("; ")
                ),
            )
            .at_line(line)
            .with_help(help.trim().trim_start_matches("help: ").to_string()),
        );
    }
    out
}

/// The place `t` declares it moved from (its own `moved_from`, or the project's previous slug),
/// when the base model has a table there.
fn declared_origin(base: &Domain, p: &Project, t: &Table) -> Option<TablePlace> {
    let origin = p.origin(t)?;
    base.projects
        .iter()
        .any(|bp| {
            bp.slug == origin.slug
                && bp
                    .tables
                    .iter()
                    .any(|bt| bt.layer == origin.layer && bt.name == origin.name)
        })
        .then_some(origin)
}

/// `moved_from`'s value for a table found at `from` (`project/layer.table`) in the base.
fn moved_from_value(base: &Domain, p: &Project, from: &str) -> String {
    let (project, table) = from.split_once('/').unwrap_or(("", from));
    match base.project(project) {
        Some(bp) if bp.slug != p.slug => format!("{}/{table}", bp.slug),
        _ => table.to_string(),
    }
}

/// What a stateful job has done with its old definition: intervals and incremental inputs.
#[derive(Debug, Clone, Default)]
pub struct StaleState {
    /// A time-range job's intervals done (`2026-12-01/2026-12-05`) and how many.
    pub intervals: Option<(String, usize)>,
    /// Incremental inputs read up to a bookmark.
    pub inputs: Vec<String>,
}

/// A changed job; `stale`: what its state in an environment says (`None`: a model diff, no
/// environment).
fn job_change(p: &Project, j: &Job, parts: &[&str], stale: Option<StaleState>) -> Change {
    let in_env = stale.is_some();
    let mut details: Vec<String> = parts.iter().map(|p| format!("{} changed", describe_part(p))).collect();
    let output = j.output.to_string();
    let mut downstream_tables = vec![output.clone()];
    downstream_tables.extend(downstream(p, &j.output));
    if !j.is_stateful() {
        return Change {
            object: Object::Job,
            project: p.name.to_string(),
            name: j.name.to_string(),
            action: Action::Changed,
            class: Class::NeedsRewrite,
            details,
            downstream: downstream_tables,
            recompute: Some(format!(
                "its next run recomputes {output} from its inputs (the job keeps no state)"
            )),
            refused: None,
        };
    }
    let stale = stale.unwrap_or_default();
    let mut what = Vec::new();
    if let Some((ranges, n)) = &stale.intervals {
        what.push(format!("{n} interval(s) done with the old definition: {ranges}"));
    } else if j.time_range.is_some() {
        what.push("every interval done with the old definition".to_string());
    }
    if let Some(inc) = &j.incremental {
        let inputs: Vec<String> = if stale.inputs.is_empty() {
            inc.inputs.iter().map(|i| i.to_string()).collect()
        } else {
            stale.inputs.clone()
        };
        what.push(format!(
            "rows read from {} before this change (re-read in full by a refresh)",
            inputs.join(", ")
        ));
    }
    details.push(format!("stale in {output}: {}", what.join("; ")));
    let refresh = format!("mesh run --job {} --full-refresh", j.name);
    let backfill = match (&j.time_range, &stale.intervals) {
        (Some(_), Some((ranges, _))) => {
            let first = ranges.split([',', '/']).next().unwrap_or_default();
            let last = ranges.rsplit([',', '/']).next().unwrap_or_default();
            format!(
                ", or a backfill: mesh run --job {} --from {first} --to {last} --force",
                j.name
            )
        }
        _ => String::new(),
    };
    let (recompute, refused) = match j.on_change() {
        OnChange::Fail => (
            Some(format!("{refresh} (resets the job's state and replaces {output}){backfill}")),
            Some(format!(
                "job `{}` {}\n  help: {refresh} to recompute {output} from scratch, or set on_change = \"forward_only\" (keep the rows already written) or \"full_refresh\" in the job",
                j.name,
                if in_env {
                    "changed since its state was committed and its on_change is \"fail\""
                } else {
                    "keeps state and changed: with on_change = \"fail\" its next run stops (exit 2) wherever it has state"
                }
            )),
        ),
        OnChange::ForwardOnly => (
            Some(format!(
                "none (on_change = \"forward_only\"): the rows already written stay as the old definition computed them; {refresh} recomputes them"
            )),
            None,
        ),
        OnChange::FullRefresh => (
            Some(format!(
                "{REFRESH_NEXT_RUN} (on_change = \"full_refresh\"): state reset, {output} replaced"
            )),
            None,
        ),
    };
    Change {
        object: Object::Job,
        project: p.name.to_string(),
        name: j.name.to_string(),
        action: Action::Changed,
        class: Class::NeedsRewrite,
        details,
        downstream: downstream_tables,
        recompute,
        refused,
    }
}

/// The model as a git ref holds it: `domain.json` and `projects/` of the domain at `root`,
/// read with `git show` into a temporary folder.
pub fn model_at_ref(root: &Path, git_ref: &str) -> Result<(Domain, tempfile::TempDir), PlanError> {
    let git = |args: &[&str]| -> Result<Vec<u8>, PlanError> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .map_err(|e| PlanError::Git(format!("cannot run git: {e}")))?;
        if !out.status.success() {
            return Err(PlanError::Git(format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(out.stdout)
    };
    let prefix = String::from_utf8_lossy(&git(&["rev-parse", "--show-prefix"])?)
        .trim()
        .to_string();
    let listing = git(&["ls-tree", "-r", "--name-only", git_ref, "--", "domain.json", "projects"])?;
    let dir = tempfile::tempdir().map_err(|e| PlanError::Git(format!("cannot create a temporary folder: {e}")))?;
    let mut any = false;
    for path in String::from_utf8_lossy(&listing).lines() {
        let rel = path.strip_prefix(&prefix).unwrap_or(path);
        let bytes = git(&["show", &format!("{git_ref}:{path}")])?;
        let target: PathBuf = dir.path().join(rel);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| PlanError::Git(e.to_string()))?;
        }
        std::fs::write(&target, bytes).map_err(|e| PlanError::Git(e.to_string()))?;
        any = true;
    }
    if !any {
        return Err(PlanError::Git(format!(
            "{git_ref} holds no domain.json under {}",
            root.display()
        )));
    }
    let domain = mesh_domain::load_domain(dir.path()).map_err(|d| PlanError::BaseInvalid {
        git_ref: git_ref.to_string(),
        problems: d.to_string(),
    })?;
    Ok((domain, dir))
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("--against: {0}")]
    Git(String),
    #[error("--against {git_ref}: the model at that ref does not validate:\n{problems}")]
    BaseInvalid { git_ref: String, problems: String },
}

// ---------------------------------------------------------------------------------------------
// Against an environment.

/// A catalog type name as the model names types (`None` for types meshkit does not declare).
fn catalog_type(s: &str) -> Result<ColumnType, String> {
    ColumnType::parse(&s.replace(", ", ",")).ok_or_else(|| s.to_string())
}

/// A catalog partition field (`month` of `d`, `bucket[16]` of `id`) as the model writes it.
fn catalog_partition(transform: &str, source: &str) -> String {
    let t = match transform {
        "identity" => Some(Transform::Identity),
        "year" => Some(Transform::Year),
        "month" => Some(Transform::Month),
        "day" => Some(Transform::Day),
        "hour" => Some(Transform::Hour),
        other => {
            let width = |p: &str| other.strip_prefix(p)?.strip_suffix(']')?.parse::<u32>().ok();
            width("bucket[")
                .map(Transform::Bucket)
                .or_else(|| width("truncate[").map(Transform::Truncate))
        }
    };
    match (t, mesh_domain::Name::parse(source)) {
        (Some(transform), Ok(column)) => mesh_domain::PartitionField { column, transform }.to_string(),
        _ => format!("{transform}({source})"),
    }
}

/// The table as the catalog holds it.
pub fn base_of_catalog(t: &mesh_iceberg::Table) -> BaseTable {
    let info = t.info();
    let schema = t.metadata().current_schema();
    let ids: Vec<String> = schema
        .identifier_field_ids()
        .filter_map(|id| schema.field_by_id(id).map(|f| f.name.clone()))
        .collect();
    BaseTable {
        columns: info
            .schema
            .iter()
            .map(|c| BaseColumn {
                name: c.name.clone(),
                data_type: catalog_type(&c.r#type),
                nullable: !c.required,
            })
            .collect(),
        partition_by: info
            .partition_spec
            .iter()
            .map(|p| catalog_partition(&p.transform, &p.source))
            .collect(),
        sort_order: info.sort_order.clone(),
        // Tables written before meshkit set identifier fields record none: they get them.
        identifier: (!ids.is_empty()).then_some(ids),
        holds_data: info.total_records.unwrap_or(0) > 0,
    }
}

/// The model at HEAD against what the engine's environment holds: each Iceberg table of the
/// model against its catalog entry, catalog tables the model no longer declares, and each
/// stateful job's committed fingerprint against its definition now.
pub async fn plan_env(engine: &Engine) -> Result<Plan, PlanError> {
    let domain = engine.domain.clone();
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    let mut known: BTreeSet<(String, String)> = BTreeSet::new();
    let mut loaded: BTreeMap<(String, String), mesh_iceberg::Table> = BTreeMap::new();
    // Declared moves and retirements still to apply: they explain a table at another place, a
    // table not in the catalog yet and a catalog entry no project declares.
    let pending = match crate::moves::pending(engine).await {
        Ok(v) => v,
        Err(crate::moves::MoveError::Refused(why)) => {
            let (what, help) = why.split_once('\n').unwrap_or((&why, ""));
            let (project, rest) = what.split_once('/').unwrap_or(("", what));
            let name = rest.split(':').next().unwrap_or(rest).to_string();
            changes.push(Change {
                object: Object::Table,
                project: project.to_string(),
                name,
                action: Action::Moved,
                class: Class::Destructive,
                details: vec![rest.split_once(": ").map(|x| x.1).unwrap_or(rest).to_string()],
                downstream: vec![],
                recompute: None,
                refused: Some(format!("the declared move cannot be applied\n{help}")),
            });
            Vec::new()
        }
        Err(e) => {
            warnings.push(format!("declared moves and retirements: {e}"));
            Vec::new()
        }
    };
    let pending_here = |p: &Project, t: &Table| {
        pending.iter().any(|w| {
            w.kind == crate::moves::Kind::Move && w.project == p.name.as_str() && w.table == t.reference().to_string()
        })
    };
    for w in &pending {
        let retire = w.kind == crate::moves::Kind::Retire;
        changes.push(Change {
            object: Object::Table,
            project: w.project.clone(),
            name: w.table.clone(),
            action: if retire { Action::Removed } else { Action::Moved },
            class: match w.kind {
                crate::moves::Kind::Retire => Class::Destructive,
                crate::moves::Kind::Move => Class::NeedsRewrite,
                crate::moves::Kind::FinishMove => Class::Additive,
            },
            details: vec![format!(
                "{} (declared; applied by `mesh apply` or the next `mesh run`)",
                w.describe()
            )],
            downstream: vec![],
            recompute: None,
            refused: None,
        });
    }
    for w in pending.iter().filter(|w| w.kind != crate::moves::Kind::FinishMove) {
        // The old place's catalog entry is accounted for by the move or retirement.
        let place = if w.kind == crate::moves::Kind::Retire {
            &w.table
        } else {
            w.from.split_once('/').map(|x| x.1).unwrap_or(&w.from)
        };
        if let Some((layer, name)) = place.split_once('.').and_then(|(l, n)| Some((Layer::parse(l)?, n))) {
            known.insert((engine.layout.naming.database(layer), name.to_string()));
        }
    }
    for p in &domain.projects {
        for t in p.tables.iter().filter(|t| t.layer.is_iceberg()) {
            let ident = engine.ident(t);
            known.insert((ident.namespace.clone(), ident.name.clone()));
            if pending_here(p, t) {
                continue; // reported as the move above; compared once it is applied
            }
            match engine.load_table(p, t).await {
                Ok(table) => {
                    let catalog_location = table.metadata().location().trim_end_matches('/').to_string();
                    let model_location = engine.location(p, t);
                    if catalog_location != model_location {
                        changes.push(Change {
                            object: Object::Table,
                            project: p.name.to_string(),
                            name: t.reference().to_string(),
                            action: Action::Moved,
                            class: Class::Destructive,
                            details: vec![format!(
                                "the catalog's table is at {catalog_location}, the model puts it at {model_location}"
                            )],
                            downstream: downstream(p, &t.reference()),
                            recompute: None,
                            refused: Some(format!(
                                "{} would be written at another location than its data\n  help: declare where it was (moved_from on the table, or moved_from_slug on the project) and meshkit moves the data, or restore the model's names",
                                t.reference()
                            )),
                        });
                    }
                    changes.extend(table_change(p, t, &base_of_catalog(&table)));
                    loaded.insert((p.name.to_string(), t.reference().to_string()), table);
                }
                Err(mesh_iceberg::Error::TableNotFound { .. }) => changes.push(Change {
                    object: Object::Table,
                    project: p.name.to_string(),
                    name: t.reference().to_string(),
                    action: Action::Added,
                    class: Class::Additive,
                    details: vec!["not in the catalog yet: created by its first write".into()],
                    downstream: vec![],
                    recompute: None,
                    refused: None,
                }),
                Err(e) => warnings.push(format!("{}/{}: cannot load the table: {e}", p.name, t.reference())),
            }
        }
    }
    // Catalog tables the model does not declare.
    let namespaces: BTreeSet<String> = [Layer::Refined, Layer::Curated]
        .into_iter()
        .map(|l| engine.layout.naming.database(l))
        .collect();
    for ns in namespaces {
        let idents = match engine.catalog.list_tables(&ns).await {
            Ok(v) => v,
            Err(_) => continue, // a namespace not created yet
        };
        for ident in idents {
            if known.contains(&(ident.namespace.clone(), ident.name.clone())) {
                continue;
            }
            changes.push(Change {
                object: Object::Table,
                project: String::new(),
                name: format!("{}.{}", ident.namespace, ident.name),
                action: Action::Removed,
                class: Class::Destructive,
                details: vec![
                    "in the catalog but declared by no project: its data is orphaned (not read, not maintained)".into(),
                ],
                downstream: vec![],
                recompute: None,
                refused: Some(
                    "an undeclared table's data is never dropped by meshkit\n  help: list it in a project's retired = [\"layer.table\"] (its catalog entry and files are then dropped), declare moved_from on the table that takes its data, or declare it again"
                        .into(),
                ),
            });
        }
    }
    // Stateful jobs: the fingerprint committed with their state.
    for p in &domain.projects {
        for j in p.jobs.iter().filter(|j| j.is_stateful()) {
            let Some(t) = loaded.get(&(p.name.to_string(), j.output.to_string())) else {
                continue;
            };
            let committed = match t.job_state(&fingerprint_key(j.name.as_str())) {
                Ok(v) => v,
                Err(e) => {
                    warnings.push(format!("{}/{}: {e}", p.name, j.name));
                    continue;
                }
            };
            let Some(committed) = committed.filter(|v| !v.is_empty()) else {
                continue; // no state yet, reset, or written before job versions
            };
            let Some(now) = Fingerprint::of_job(&engine.root, p, j) else {
                continue;
            };
            let parts = now.changed_parts(&committed);
            if parts.is_empty() {
                continue;
            }
            let stale = match stale_state(t, j) {
                Ok(v) => v,
                Err(e) => {
                    warnings.push(format!("{}/{}: {e}", p.name, j.name));
                    continue;
                }
            };
            changes.push(job_change(p, j, &parts, Some(stale)));
        }
    }
    Ok(Plan {
        base: format!("env {}", engine.layout.naming.env()),
        changes,
        warnings,
    })
}

/// What a stateful job recorded in its output table `t`.
pub fn stale_state(t: &mesh_iceberg::Table, j: &Job) -> Result<StaleState, mesh_iceberg::Error> {
    let mut s = StaleState::default();
    if let Some(tr) = &j.time_range {
        let v = t.job_state(&crate::incremental::intervals_key(j.name.as_str()))?;
        let done = crate::interval::DoneSet::parse(tr.grain, v.as_deref().unwrap_or(""));
        if !done.is_empty() {
            s.intervals = Some((done.encode(), done.len()));
        }
    }
    if let Some(inc) = &j.incremental {
        for i in &inc.inputs {
            let key = crate::incremental::bookmark_key(j.name.as_str(), &i.to_string());
            if t.job_state(&key)?.is_some_and(|v| !v.is_empty()) {
                s.inputs.push(i.to_string());
            }
        }
    }
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// Rendering.

fn subject(c: &Change) -> String {
    let kind = match c.object {
        Object::Project => "project",
        Object::Table => "table",
        Object::Job => "job",
    };
    if c.project.is_empty() || c.object == Object::Project {
        format!("{kind} {}", c.name)
    } else {
        format!("{kind} {}/{}", c.project, c.name)
    }
}

fn counts(plan: &Plan) -> String {
    let mut by: BTreeMap<Class, usize> = BTreeMap::new();
    for c in &plan.changes {
        *by.entry(c.class).or_default() += 1;
    }
    let parts: Vec<String> = by.iter().map(|(k, n)| format!("{n} {}", k.as_str())).collect();
    format!(
        "{} change(s){}; {} refused",
        plan.changes.len(),
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        },
        plan.refused().count()
    )
}

/// For people, in a terminal.
pub fn render_text(plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "plan: the model at HEAD against {}", plan.base);
    for w in &plan.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    if plan.changes.is_empty() {
        let _ = writeln!(s, "no changes");
        return s;
    }
    for c in &plan.changes {
        let _ = writeln!(s, "\n{} {} [{}]", subject(c), c.action.as_str(), c.class.as_str());
        for d in &c.details {
            let _ = writeln!(s, "  - {d}");
        }
        if !c.downstream.is_empty() {
            let _ = writeln!(s, "  affects: {}", c.downstream.join(", "));
        }
        if let Some(r) = &c.recompute {
            let _ = writeln!(s, "  recompute: {r}");
        }
        if let Some(r) = &c.refused {
            let _ = writeln!(s, "  REFUSED: {}", r.replace('\n', "\n  "));
        }
    }
    let _ = writeln!(s, "\n{}", counts(plan));
    s
}

/// For a pull request: a summary table, then what must be recomputed and what is refused.
pub fn render_markdown(plan: &Plan) -> String {
    let esc = |t: &str| t.replace('|', "\\|").replace('\n', " ");
    let mut s = String::new();
    let _ = writeln!(s, "### mesh plan: HEAD against {}\n", plan.base);
    for w in &plan.warnings {
        let _ = writeln!(s, "> warning: {}\n", esc(w));
    }
    if plan.changes.is_empty() {
        let _ = writeln!(s, "No changes.");
        return s;
    }
    let _ = writeln!(s, "{}\n", counts(plan));
    let _ = writeln!(s, "| | Object | Change | Class | Details | Affects |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for c in &plan.changes {
        let mark = if c.refused.is_some() { "⛔" } else { "✅" };
        let _ = writeln!(
            s,
            "| {mark} | `{}` | {} | {} | {} | {} |",
            esc(&subject(c)),
            c.action.as_str(),
            c.class.as_str(),
            esc(&c.details.join("; ")),
            c.downstream
                .iter()
                .map(|d| format!("`{d}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let recompute: Vec<&Change> = plan.changes.iter().filter(|c| c.recompute.is_some()).collect();
    if !recompute.is_empty() {
        let _ = writeln!(s, "\n#### Recompute\n");
        for c in recompute {
            let _ = writeln!(
                s,
                "- `{}`: {}",
                subject(c),
                esc(c.recompute.as_deref().unwrap_or_default())
            );
        }
    }
    let refused: Vec<&Change> = plan.refused().collect();
    if !refused.is_empty() {
        let _ = writeln!(s, "\n#### Refused\n");
        for c in refused {
            let r = c.refused.as_deref().unwrap_or_default();
            let (why, help) = r.split_once("\n  help: ").unwrap_or((r, ""));
            let _ = write!(s, "- `{}`: {}", subject(c), esc(why));
            if !help.is_empty() {
                let _ = write!(s, " **Fix:** {}", esc(&help.replace("\n  help: ", " **Or:** ")));
            }
            let _ = writeln!(s);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iceberg_type_promotions() {
        use ColumnType as C;
        let d = |precision, scale| C::Decimal { precision, scale };
        assert!(promotes(C::Int, C::Long));
        assert!(promotes(C::Float, C::Double));
        assert!(promotes(d(10, 2), d(18, 2)));
        assert!(promotes(d(10, 2), d(10, 2)));
        assert!(!promotes(d(18, 2), d(10, 2)), "narrowing");
        assert!(!promotes(d(10, 2), d(12, 3)), "another scale");
        assert!(!promotes(C::Long, C::Int));
        assert!(!promotes(C::Int, C::Double));
        assert!(!promotes(C::Date, C::Timestamp));
    }

    #[test]
    fn catalog_partitions_read_as_the_model_writes_them() {
        assert_eq!(catalog_partition("month", "d"), "month(d)");
        assert_eq!(catalog_partition("bucket[16]", "id"), "bucket(16, id)");
        assert_eq!(catalog_partition("truncate[4]", "s"), "truncate(4, s)");
        assert_eq!(catalog_partition("identity", "d"), "d");
        assert_eq!(
            catalog_type("decimal(18, 2)"),
            Ok(ColumnType::Decimal {
                precision: 18,
                scale: 2
            })
        );
        assert_eq!(catalog_type("struct<…>"), Err("struct<…>".to_string()));
    }
}
