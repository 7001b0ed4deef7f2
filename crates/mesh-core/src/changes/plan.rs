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

use mesh_domain::{Domain, Job, Layer, OnChange, Project, Table, TablePlace, TableRef};
use serde::Serialize;

use crate::classify::worst;
pub use crate::classify::{base_of_catalog, promotes, refused_help, table_changes, BaseColumn, BaseTable, Class};
use crate::engine::Engine;
use crate::fingerprint::{describe_part, fingerprint_key, Fingerprint};

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

impl Change {
    /// A change nothing derives from, applied as it is (see [`Change::downstream`],
    /// [`Change::refused`]).
    fn new(
        object: Object,
        project: impl Into<String>,
        name: impl Into<String>,
        action: Action,
        class: Class,
        details: Vec<String>,
    ) -> Change {
        Change {
            object,
            project: project.into(),
            name: name.into(),
            action,
            class,
            details,
            downstream: Vec::new(),
            recompute: None,
            refused: None,
        }
    }

    fn downstream(mut self, tables: Vec<String>) -> Change {
        self.downstream = tables;
        self
    }

    /// `why`: the refusal with its fix (`None`: applied).
    fn refused(mut self, why: impl Into<Option<String>>) -> Change {
        self.refused = why.into();
        self
    }
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
    Some(
        Change::new(
            Object::Table,
            project.name.to_string(),
            name,
            Action::Changed,
            class,
            diffs.into_iter().map(|(_, d)| d).collect(),
        )
        .downstream(downstream(project, &table.reference()))
        .refused(refused),
    )
}

// ---------------------------------------------------------------------------------------------
// Against another model (a git ref).

/// The changes from `base` (the model at a git ref, its files under `base_root`) to `head`
/// (under `head_root`).
pub fn diff_models(base: &Domain, base_root: &Path, head: &Domain, head_root: &Path) -> Vec<Change> {
    let mut out = Vec::new();
    for p in &head.projects {
        let Some(bp) = base.project(p.name.as_str()) else {
            out.push(Change::new(
                Object::Project,
                p.name.to_string(),
                p.name.to_string(),
                Action::Added,
                Class::Additive,
                vec![format!("{} table(s), {} job(s)", p.tables.len(), p.jobs.len())],
            ));
            continue;
        };
        if bp.slug != p.slug {
            let declared = p.moved_from_slug.as_ref() == Some(&bp.slug);
            out.push(Change::new(Object::Project, p.name.to_string(), p.name.to_string(), Action::Moved, if declared { Class::NeedsRewrite } else { Class::Destructive }, vec![if declared {
                    format!(
                        "project_slug {} → {} (moved_from_slug): `mesh apply` (or the next `mesh run`) moves each table's data from under {} to under {}; Terraform moves the resources' addresses",
                        bp.slug, p.slug, bp.slug, p.slug
                    )
                } else {
                    format!(
                        "project_slug {} → {}: every table's location and AWS name changes; the data under {} would be left behind and raw tables would read an empty folder",
                        bp.slug, p.slug, bp.slug
                    )
                }]).refused((!declared).then(|| {
                    format!(
                        "renaming a project slug leaves its data under the old slug\n  help: declare moved_from_slug = \"{}\" in the project's manifest (meshkit then moves the data), or keep project_slug = \"{}\"",
                        bp.slug, bp.slug
                    )
                })));
        }
    }
    for bp in &base.projects {
        if head.project(bp.name.as_str()).is_none() {
            out.push(Change::new(Object::Project, bp.name.to_string(), bp.name.to_string(), Action::Removed, Class::Destructive, vec![format!(
                    "{} table(s) and {} job(s) removed with it; their catalog entries and files would be orphaned",
                    bp.tables.len(),
                    bp.jobs.len()
                )]).refused(Some(format!(
                    "removing a project leaves its tables' data behind\n  help: keep the project, with its tables listed in retired = [{}] and no [[tables]], until every environment has dropped them",
                    bp.tables.iter().map(|t| format!("\"{}\"", t.reference())).collect::<Vec<_>>().join(", ")
                ))));
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
                    out.push(Change::new(Object::Table, p.name.to_string(), t.reference().to_string(), Action::Moved, Class::NeedsRewrite, vec![format!(
                            "moved from {origin} (declared): `mesh apply` (or the next `mesh run`) copies its rows and jobs' state here, then drops the old entry and files"
                        )]).downstream(downstream(p, &t.reference())));
                }
                None => {
                    let from = find_moved(base, t, p.name.as_str()).filter(|m| {
                        head.tables()
                            .all(|(hp, ht)| format!("{}/{}", hp.name, ht.reference()) != *m)
                    });
                    let change = match from {
                        Some(from) => Change::new(Object::Table, p.name.to_string(), t.reference().to_string(), Action::Moved, Class::Destructive, vec![format!(
                                "moved from {from}: the new location starts empty and the old table's catalog entry and files are orphaned"
                            )]).downstream(downstream(p, &t.reference())).refused(Some(format!(
                                "an undeclared move leaves {from}'s data behind and starts this table empty\n  help: declare moved_from = \"{}\" on the table (meshkit then moves the data), or keep the table where it was",
                                moved_from_value(base, p, &from)
                            ))),
                        None => Change::new(Object::Table, p.name.to_string(), t.reference().to_string(), Action::Added, Class::Additive, vec![format!("{} column(s)", t.columns.len())]),
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
                out.push(Change::new(Object::Table, bp.name.to_string(), bt.reference().to_string(), Action::Removed, Class::Destructive, vec![
                        "retired (declared): `mesh apply` (or the next `mesh run`) drops its catalog entry and deletes its files"
                            .into(),
                    ]).downstream(downstream(bp, &bt.reference())));
                continue;
            }
            out.push(Change::new(Object::Table, bp.name.to_string(), bt.reference().to_string(), Action::Removed, Class::Destructive, vec![
                    "removed from the manifest: its catalog entry and files would be orphaned (not read, not maintained)"
                        .into(),
                ]).downstream(downstream(bp, &bt.reference())).refused(Some(format!(
                    "removing {} from the manifest would orphan its catalog entry and files\n  help: list it in the project's retired = [\"{}\"] to drop its data, declare moved_from on the table that takes its data, or keep it in the manifest",
                    bt.reference(),
                    bt.reference()
                ))));
        }
    }
    // Jobs.
    for p in &head.projects {
        let bp = base.project(p.name.as_str());
        for j in &p.jobs {
            let Some(bj) = bp.and_then(|bp| bp.job(j.name.as_str())) else {
                out.push(Change::new(
                    Object::Job,
                    p.name.to_string(),
                    j.name.to_string(),
                    Action::Added,
                    Class::Additive,
                    vec![format!("writes {}", j.output)],
                ));
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
                    out.push(Change::new(
                        Object::Job,
                        p.name.to_string(),
                        bj.name.to_string(),
                        Action::Removed,
                        Class::Additive,
                        vec![format!(
                            "nothing writes {} any more; it keeps its rows and the job's state",
                            bj.output
                        )],
                    ));
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
        Err(crate::moves::MoveError::Refused { project, table, reason }) => {
            let (why, help) = reason.split_once('\n').unwrap_or((&reason, ""));
            changes.push(
                Change::new(
                    Object::Table,
                    project,
                    table,
                    Action::Moved,
                    Class::Destructive,
                    vec![why.to_string()],
                )
                .refused(Some(format!("the declared move cannot be applied\n{help}"))),
            );
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
        changes.push(Change::new(
            Object::Table,
            w.project.clone(),
            w.table.clone(),
            if retire { Action::Removed } else { Action::Moved },
            match w.kind {
                crate::moves::Kind::Retire => Class::Destructive,
                crate::moves::Kind::Move => Class::NeedsRewrite,
                crate::moves::Kind::FinishMove => Class::Additive,
            },
            vec![format!(
                "{} (declared; applied by `mesh apply` or the next `mesh run`)",
                w.describe()
            )],
        ));
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
                        changes.push(Change::new(Object::Table, p.name.to_string(), t.reference().to_string(), Action::Moved, Class::Destructive, vec![format!(
                                "the catalog's table is at {catalog_location}, the model puts it at {model_location}"
                            )]).downstream(downstream(p, &t.reference())).refused(Some(format!(
                                "{} would be written at another location than its data\n  help: declare where it was (moved_from on the table, or moved_from_slug on the project) and meshkit moves the data, or restore the model's names",
                                t.reference()
                            ))));
                    }
                    changes.extend(table_change(p, t, &base_of_catalog(&table)));
                    loaded.insert((p.name.to_string(), t.reference().to_string()), table);
                }
                Err(mesh_iceberg::Error::TableNotFound { .. }) => changes.push(Change::new(
                    Object::Table,
                    p.name.to_string(),
                    t.reference().to_string(),
                    Action::Added,
                    Class::Additive,
                    vec!["not in the catalog yet: created by its first write".into()],
                )),
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
            changes.push(Change::new(Object::Table, String::new(), format!("{}.{}", ident.namespace, ident.name), Action::Removed, Class::Destructive, vec![
                    "in the catalog but declared by no project: its data is orphaned (not read, not maintained)".into(),
                ]).refused(Some(
                    "an undeclared table's data is never dropped by meshkit\n  help: list it in a project's retired = [\"layer.table\"] (its catalog entry and files are then dropped), declare moved_from on the table that takes its data, or declare it again"
                        .into(),
                )));
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
