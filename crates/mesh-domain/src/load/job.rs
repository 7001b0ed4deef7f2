//! One `[[jobs]]` entry: its SQL file, input and output references, write mode (with merge
//! settings), parameters and Glue sizing. Checks, incremental and time-range settings have
//! their own modules.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::checks::check_check;
use super::daily::{check_daily, check_overwrite_trap};
use super::unchecked::{UncheckedGlue, UncheckedJob, UncheckedMerge, UncheckedTable};
use super::FileCx;
use crate::diagnostic::{did_you_mean, truncate};
use crate::ident::Name;
use crate::model::{GlueSizing, Job, Layer, MergeSpec, OnChange, OnDuplicate, Table, TableRef, WorkerType, WriteMode};
use crate::param::ParamType;

/// Checks job `i` of the project in `dir` (relative to `root`) against the project's checked
/// `tables` (and the `declared` ones, see [`resolve_ref`]).
pub(super) fn check_job(
    cx: &mut FileCx<'_>,
    root: &Path,
    dir: &Path,
    (tables, declared): (&[Table], &[UncheckedTable]),
    consumes: &[crate::consume::Consumed],
    i: usize,
    j: &UncheckedJob,
) -> Option<Job> {
    let before = cx.diags.len();
    let f = |field: &str| format!("jobs[{i}].{field}");
    let name = cx.name(&f("name"), &j.name);
    let sql = check_sql_file(cx, i, root, dir, j);

    let mut inputs = Vec::new();
    let mut products = Vec::new();
    for (ii, input) in j.inputs.iter().enumerate() {
        // `f01.daily_sales`: another domain's product (its prefix is no layer).
        match super::consume::product_input(cx, &f(&format!("inputs[{ii}]")), input, consumes) {
            Some(Some(p)) => products.push(p),
            Some(None) => {}
            None => {
                if let Some(r) = resolve_ref(cx, f(&format!("inputs[{ii}]")), input, tables, declared) {
                    inputs.push(r);
                }
            }
        }
    }
    let output = resolve_ref(cx, f("output"), &j.output, tables, declared);
    let out_table = output
        .as_ref()
        .and_then(|r| tables.iter().find(|t| t.reference() == *r));
    if let Some(t) = out_table {
        if t.layer == Layer::Raw {
            cx.err_help(
                f("output"),
                format!(
                    "jobs cannot write the raw layer (`{}`): raw holds landed files",
                    t.reference()
                ),
                "write a refined or curated table",
            );
        }
    }
    let mode = check_mode(cx, i, j, out_table);

    let mut checks = Vec::new();
    for (ci, c) in j.checks.iter().enumerate() {
        if let Some(c) = check_check(cx, i, ci, c, out_table) {
            checks.push(c);
        }
    }
    let param_types = check_param_types(cx, i, j);
    let glue = check_glue(cx, i, j.glue.as_ref());
    let (incremental, time_range) = check_daily(cx, i, j, &inputs, out_table);
    let on_change = check_on_change(cx, i, j);
    if let (Some(WriteMode::OverwritePartitions), Some(t), Ok(text)) =
        (&mode, out_table, std::fs::read_to_string(root.join(&sql)))
    {
        check_overwrite_trap(cx, i, &text, t);
    }

    if cx.diags.len() > before {
        return None;
    }
    Some(Job {
        name: name?,
        description: j.description.clone(),
        sql,
        inputs,
        products,
        output: output?,
        mode: mode?,
        checks,
        params: j.params.clone(),
        param_types,
        glue,
        incremental,
        time_range,
        on_change,
    })
}

/// `on_change`: one of the policies of [`OnChange`]; absent means the default.
fn check_on_change(cx: &mut FileCx<'_>, i: usize, j: &UncheckedJob) -> Option<OnChange> {
    let v = j.on_change.as_deref()?;
    if j.incremental.is_none() && j.time_range.is_none() {
        cx.err_help(
            format!("jobs[{i}].on_change"),
            format!("job `{}` keeps no state (neither incremental nor time-range): every run recomputes its output, so there is nothing a change could leave stale", j.name),
            "remove on_change, or make the job incremental or time-range",
        );
        return None;
    }
    let parsed = OnChange::parse(v);
    if parsed.is_none() {
        let all: Vec<&str> = OnChange::ALL.iter().map(|p| p.as_str()).collect();
        cx.err_help(
            format!("jobs[{i}].on_change"),
            format!("`{v}` is not a policy; use one of: {}", all.join(", ")),
            did_you_mean(v, all.iter().copied()).unwrap_or_else(|| {
                "fail stops the run (exit 2) when the job's SQL, inputs, mode, keys or output schema changed since its state was committed".into()
            }),
        );
    }
    parsed
}

/// The job's SQL file, relative to the domain root: it must exist inside the project folder,
/// links resolved.
fn check_sql_file(cx: &mut FileCx<'_>, i: usize, root: &Path, dir: &Path, j: &UncheckedJob) -> PathBuf {
    let field = format!("jobs[{i}].sql");
    let sql_rel = Path::new(&j.sql);
    let escapes = sql_rel.is_absolute() || sql_rel.components().any(|c| matches!(c, Component::ParentDir));
    let sql = dir.join(sql_rel);
    if escapes {
        cx.err_help(
            field,
            format!("`{}` points outside the project folder", j.sql),
            "keep SQL files in the project, e.g. sql = \"sql/daily_sales.sql\"",
        );
    } else if !root.join(&sql).is_file() {
        cx.err_help(
            field,
            format!("SQL file `{}` does not exist", sql.display()),
            format!(
                "create it, or run `mesh new job {} {}` to scaffold one",
                dir.file_name().and_then(|s| s.to_str()).unwrap_or("PROJECT"),
                j.name
            ),
        );
    } else if !resolves_inside(&root.join(&sql), &root.join(dir)) {
        // A symlink (or a link in a parent folder) would let validation, `mesh run` and
        // `mesh build` read, and ship, a file from anywhere on the machine.
        cx.err_help(
            field,
            format!(
                "SQL file `{}` is a link to a file outside the project folder",
                sql.display()
            ),
            "copy the SQL into the project's sql/ folder instead of linking to it",
        );
    }
    sql
}

/// The write mode (`append` when absent) and whether the output table and `[jobs.merge]` fit it.
fn check_mode(cx: &mut FileCx<'_>, i: usize, j: &UncheckedJob, out_table: Option<&Table>) -> Option<WriteMode> {
    let f = |field: &str| format!("jobs[{i}].{field}");
    let mode_s = j.mode.as_deref().unwrap_or("append");
    let mode = match mode_s {
        "append" => Some(WriteMode::Append),
        "overwrite" => Some(WriteMode::Overwrite),
        "overwrite_partitions" => {
            if let Some(t) = out_table {
                if t.partition_by.is_empty() {
                    cx.err_help(
                        f("mode"),
                        format!(
                            "overwrite_partitions needs a partitioned table; `{}` has no partition_by",
                            t.reference()
                        ),
                        "use mode = \"overwrite\" or add partition_by to the table",
                    );
                }
            }
            Some(WriteMode::OverwritePartitions)
        }
        "merge" => check_merge(cx, i, j.merge.as_ref(), out_table).map(WriteMode::Merge),
        other => {
            cx.err_help(
                f("mode"),
                format!("`{other}` is not a write mode"),
                "use append, overwrite, overwrite_partitions or merge",
            );
            None
        }
    };
    if j.merge.is_some() && mode_s != "merge" {
        cx.err_help(
            f("merge"),
            format!("merge settings on a job whose mode is `{mode_s}`"),
            "set mode = \"merge\" or remove the [jobs.merge] section",
        );
    }
    mode
}

/// Resolves `layer.table` against the project's tables, with hints. `declared` holds every
/// table as written, so a reference to an invalid one (already reported) is not reported again.
pub(super) fn resolve_ref(
    cx: &mut FileCx<'_>,
    field: String,
    value: &str,
    tables: &[Table],
    declared: &[UncheckedTable],
) -> Option<TableRef> {
    let Some((layer_s, table_s)) = value.split_once('.') else {
        let hint = tables
            .iter()
            .find(|t| t.name.as_str() == value)
            .map(|t| format!("did you mean `{}`?", t.reference()));
        cx.err_maybe_help(
            field,
            format!("`{value}` is not a table reference"),
            Some(hint.unwrap_or_else(|| "write `layer.table`, e.g. `raw.sales_events`".into())),
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
    let found = tables.iter().find(|t| t.layer == layer && t.name.as_str() == table_s);
    if let Some(t) = found {
        return Some(t.reference());
    }
    // Declared but invalid tables were already reported; don't pile on.
    if declared.iter().any(|t| t.layer == layer_s && t.name == table_s) {
        return None;
    }
    let known: Vec<String> = tables.iter().map(|t| t.reference().to_string()).collect();
    let help = did_you_mean(value, known.iter().map(String::as_str)).or_else(|| {
        Some(if known.is_empty() {
            "declare the table in this project's [[tables]]".to_string()
        } else {
            format!("this project's tables are: {}", known.join(", "))
        })
    });
    cx.err_maybe_help(field, format!("table `{value}` is not declared in this project"), help);
    None
}

/// Whether `path`, with every link resolved, lies inside `dir` (also resolved).
pub fn resolves_inside(path: &Path, dir: &Path) -> bool {
    match (path.canonicalize(), dir.canonicalize()) {
        (Ok(p), Ok(d)) => p.starts_with(d),
        _ => false,
    }
}

/// Parameter names are names, declared parameter types are known types, and each default
/// value parses as its type.
fn check_param_types(cx: &mut FileCx<'_>, i: usize, j: &UncheckedJob) -> BTreeMap<String, ParamType> {
    for key in j.params.keys() {
        if Name::parse(key).is_err() {
            cx.err_help(
                format!("jobs[{i}].params"),
                format!("parameter `{key}` is not a valid name"),
                "use snake_case, e.g. run_date",
            );
        }
    }
    let mut types = BTreeMap::new();
    for (key, ty) in &j.param_types {
        match ParamType::parse(ty) {
            Some(t) => {
                types.insert(key.clone(), t);
            }
            None => cx.err_help(
                format!("jobs[{i}].param_types.{key}"),
                format!("`{}` is not a parameter type", truncate(ty)),
                format!("use one of: {}", ParamType::NAMES.join(", ")),
            ),
        }
    }
    for (key, value) in &j.params {
        let ty = types.get(key).copied().unwrap_or_default();
        if let Err(why) = ty.check(value) {
            cx.err_help(
                format!("jobs[{i}].params.{key}"),
                format!("default `{}` is not a {ty}: {why}", truncate(value)),
                "fix the value or its type in param_types",
            );
        }
    }
    types
}

fn check_merge(cx: &mut FileCx<'_>, i: usize, m: Option<&UncheckedMerge>, out: Option<&Table>) -> Option<MergeSpec> {
    let f = |field: &str| format!("jobs[{i}].merge.{field}");
    let key_names: Vec<String> = match m.and_then(|m| m.keys.clone()) {
        Some(k) => k,
        None => out
            .map(|t| t.identifier.iter().map(|n| n.to_string()).collect())
            .unwrap_or_default(),
    };
    if key_names.is_empty() {
        let field = if m.is_some() {
            f("keys")
        } else {
            format!("jobs[{i}].mode")
        };
        cx.err_help(
            field,
            "a merge needs keys",
            "set merge.keys = [\"id\"] or declare identifier = [\"id\"] on the output table",
        );
        return None;
    }
    let mut keys = Vec::new();
    for (ki, k) in key_names.iter().enumerate() {
        let field = f(&format!("keys[{ki}]"));
        let Some(n) = cx.name(&field, k) else {
            continue;
        };
        if let Some(t) = out {
            if t.column(k).is_none() {
                let help = did_you_mean(k, t.columns.iter().map(|c| c.name.as_str()))
                    .unwrap_or_else(|| format!("merge keys must be columns of `{}`", t.reference()));
                cx.err_help(
                    field,
                    format!("merge key `{k}` is not a column of `{}`", t.reference()),
                    help,
                );
                continue;
            }
        }
        keys.push(n);
    }
    let on_duplicate = match (
        m.and_then(|m| m.on_duplicate.as_deref()),
        m.and_then(|m| m.order_by.as_deref()),
    ) {
        (None | Some("error"), None) => OnDuplicate::Error,
        (Some("error"), Some(_)) => {
            cx.err_help(
                f("order_by"),
                "order_by is only used with on_duplicate = \"keep_latest\"",
                "remove order_by or set on_duplicate = \"keep_latest\"",
            );
            OnDuplicate::Error
        }
        (None | Some("keep_latest"), Some(col)) => match cx.name(&f("order_by"), col) {
            Some(order_by) => OnDuplicate::KeepLatest { order_by },
            None => OnDuplicate::Error,
        },
        (Some("keep_latest"), None) => {
            cx.err_help(
                f("on_duplicate"),
                "keep_latest needs an ordering column",
                "add order_by = \"event_ts\" (the latest row per key wins)",
            );
            OnDuplicate::Error
        }
        (Some(other), _) => {
            cx.err_help(
                f("on_duplicate"),
                format!("`{other}` is not a duplicate-key rule"),
                "use error or keep_latest",
            );
            OnDuplicate::Error
        }
    };
    let delete_when = m.and_then(|m| m.delete_when.clone());
    if delete_when.as_deref().is_some_and(|d| d.trim().is_empty()) {
        cx.err_help(
            f("delete_when"),
            "the delete condition is empty",
            "write a SQL condition such as `op = 'D'`, or remove it",
        );
    }
    Some(MergeSpec {
        keys,
        delete_when,
        on_duplicate,
    })
}

fn check_glue(cx: &mut FileCx<'_>, i: usize, g: Option<&UncheckedGlue>) -> GlueSizing {
    let f = |field: &str| format!("jobs[{i}].glue.{field}");
    let d = GlueSizing::default();
    let Some(g) = g else { return d };
    let worker_type = match g.worker_type.as_deref() {
        None => d.worker_type,
        Some(s) => match WorkerType::ALL.iter().find(|w| w.as_str() == s) {
            Some(w) => *w,
            None => {
                cx.err_help(
                    f("worker_type"),
                    format!("`{s}` is not a Glue worker type"),
                    "use G.025X, G.1X, G.2X, G.4X or G.8X",
                );
                d.worker_type
            }
        },
    };
    let workers = g.workers.unwrap_or(d.workers);
    if !(2..=299).contains(&workers) {
        cx.err_help(
            f("workers"),
            format!("{workers} workers is out of range"),
            "Glue Spark jobs take 2 to 299 workers",
        );
    }
    let timeout_minutes = g.timeout_minutes.unwrap_or(d.timeout_minutes);
    if !(1..=2880).contains(&timeout_minutes) {
        cx.err_help(
            f("timeout_minutes"),
            format!("{timeout_minutes} minutes is out of range"),
            "Glue job timeouts are 1 to 2880 minutes",
        );
    }
    let max_retries = g.max_retries.unwrap_or(d.max_retries);
    if max_retries > 10 {
        cx.err_help(
            f("max_retries"),
            format!("{max_retries} retries is out of range"),
            "0 to 10: the Glue runner's retries of transient errors (throttling, network, a lost commit race) for a run started by hand, outside a pipeline; pipeline runs use the step's `retries`, and the Glue job's own max_retries is always 0 (see crates/mesh-infra/README.md)",
        );
    }
    GlueSizing {
        worker_type,
        workers,
        timeout_minutes,
        max_retries,
    }
}
