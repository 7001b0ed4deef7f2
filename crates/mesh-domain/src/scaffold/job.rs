//! `mesh new job`: a `[[jobs]]` entry and its SQL file, written from the declared tables so
//! that the scaffold validates (and runs) as written, or says what is left to fill in.

use std::path::{Path, PathBuf};

use super::{key_values, list, project_file, quote, ScaffoldError, Undo};
use crate::ident::Name;
use crate::load::PROJECTS_DIR;
use crate::model::{ColumnType, Table};

pub struct NewJob<'a> {
    pub project: &'a str,
    pub name: &'a str,
    pub inputs: Vec<String>,
    pub output: &'a str,
    /// `None`: `append`, or `overwrite` for a time-range job.
    pub mode: Option<&'a str>,
    /// Read every input incrementally (`[jobs.incremental]`).
    pub incremental: bool,
    /// A time-range job (`[jobs.time_range]`).
    pub time_range: Option<NewTimeRange>,
    /// Merge keys (`--key`, repeat for a composite key): required by `mode = "merge"`.
    pub keys: Vec<String>,
    /// Everything else the manifest declares of a job; all optional.
    pub options: JobOptions,
    /// The declared output table, when the manifest has it: the SQL then selects exactly its
    /// columns (see [`new_job`]). `None`: a `SELECT *` to edit.
    pub output_table: Option<&'a Table>,
    /// The first input's declared table: columns of the same name are selected from it.
    pub input_table: Option<&'a Table>,
}

/// `[jobs.time_range]` as `mesh new job` flags give it.
#[derive(Debug, Clone)]
pub struct NewTimeRange {
    /// The output's time column.
    pub column: String,
    pub grain: String,
    /// The input's column that places a row in the interval, when the input has no column
    /// named as the output's (`--input-time-column`).
    pub input_column: Option<String>,
    pub start: Option<String>,
    pub lag: Option<String>,
    pub lookback: Option<u32>,
}

impl NewTimeRange {
    pub fn new(column: &str, grain: &str) -> NewTimeRange {
        NewTimeRange {
            column: column.to_string(),
            grain: grain.to_string(),
            input_column: None,
            start: None,
            lag: None,
            lookback: None,
        }
    }
}

/// The optional parts of a `[[jobs]]` entry, as `mesh new job` flags give them.
#[derive(Debug, Default)]
pub struct JobOptions {
    pub description: Option<String>,
    /// `--check KIND:ARGS` (severity error), see [`check_toml`].
    pub checks: Vec<String>,
    /// `--warn-check KIND:ARGS` (severity warn).
    pub warn_checks: Vec<String>,
    /// `error` or `keep_latest` (merge).
    pub on_duplicate: Option<String>,
    pub order_by: Option<String>,
    pub delete_when: Option<String>,
    /// `KEY=VALUE`: defaults of `${KEY}`.
    pub params: Vec<String>,
    pub on_change: Option<String>,
    pub worker_type: Option<String>,
    pub workers: Option<u32>,
    pub timeout_minutes: Option<u32>,
}

/// What `mesh new job` wrote.
#[derive(Debug)]
pub struct NewJobFiles {
    pub sql: PathBuf,
    /// Output columns the SQL leaves as `CAST(NULL AS …)` with a `-- TODO` line: to compute.
    pub to_fill: Vec<String>,
}

/// The forms `--check` takes, for its help and its errors.
pub const CHECK_FORMS: &str = "not_null:COL[,COL…], unique:COL[,COL…], accepted_values:COL:V[,V…], range:COL:MIN:MAX (MIN or MAX may be empty), row_count_min:N, sql:QUERY";

const CHECK_KINDS: [&str; 6] = ["not_null", "unique", "accepted_values", "range", "row_count_min", "sql"];

/// A `--check KIND:ARGS` (or `--warn-check`, `warn`) as the inline table of the manifest's
/// `checks` list. The columns are checked against the output by the validator.
pub fn check_toml(spec: &str, warn: bool) -> Result<String, ScaffoldError> {
    let flag = if warn { "--warn-check" } else { "--check" };
    let bad = |why: String| {
        ScaffoldError::Invalid(format!(
            "{flag} `{spec}`: {why}; nothing was written\n  help: a check is one of {CHECK_FORMS}"
        ))
    };
    let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
    let kind = kind.trim();
    let columns = |s: &str| -> Result<Vec<String>, ScaffoldError> {
        let cols: Vec<String> = s.split(',').map(|c| c.trim().to_string()).collect();
        if cols.iter().any(String::is_empty) {
            return Err(bad(format!("a `{kind}` check names its columns, separated by commas")));
        }
        Ok(cols)
    };
    // A bound as the manifest writes numbers: an integer stays one, anything else is a float.
    let number = |what: &str, s: &str| -> Result<Option<String>, ScaffoldError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if let Ok(i) = s.parse::<i64>() {
            return Ok(Some(i.to_string()));
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Some(toml::Value::Float(v).to_string())),
            _ => Err(bad(format!("{what} `{s}` is not a finite number"))),
        }
    };
    let body = match kind {
        "not_null" | "unique" => format!("columns = {}", list(&columns(rest)?)),
        "accepted_values" => {
            let (column, values) = rest
                .split_once(':')
                .ok_or_else(|| bad("an accepted_values check is accepted_values:COLUMN:VALUE[,VALUE…]".into()))?;
            let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
            format!("column = {}, values = {}", quote(column.trim()), list(&values))
        }
        "range" => {
            let mut parts = rest.splitn(3, ':');
            let column = parts.next().unwrap_or_default().trim();
            let (min, max) = match (parts.next(), parts.next()) {
                (Some(min), Some(max)) => (number("min", min)?, number("max", max)?),
                _ => {
                    return Err(bad(
                        "a range check is range:COLUMN:MIN:MAX (e.g. range:amount:0: for amount >= 0)".into(),
                    ))
                }
            };
            if column.is_empty() || (min.is_none() && max.is_none()) {
                return Err(bad("a range check names its column and a MIN, a MAX or both".into()));
            }
            let mut s = format!("column = {}", quote(column));
            for (key, v) in [("min", min), ("max", max)] {
                if let Some(v) = v {
                    s += &format!(", {key} = {v}");
                }
            }
            s
        }
        "row_count_min" => match rest.trim().parse::<u64>() {
            Ok(n) => format!("min = {n}"),
            Err(_) => return Err(bad(format!("`{rest}` is not a row count"))),
        },
        "sql" if !rest.trim().is_empty() => format!("sql = {}", quote(rest.trim())),
        "sql" => {
            return Err(bad(
                "a sql check is sql:QUERY, a query over `output` returning the failing rows".into(),
            ))
        }
        other => {
            let hint = crate::diagnostic::did_you_mean(other, CHECK_KINDS.iter().copied())
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            return Err(bad(format!("`{other}` is not a check kind{hint}")));
        }
    };
    let severity = if warn { ", severity = \"warn\"" } else { "" };
    Ok(format!("{{ type = {}, {body}{severity} }}", quote(kind)))
}

/// A type name both engines read in `CAST(… AS t)` as the column's type (Spark's names, as
/// mesh-core's `translate::spark_type`: Iceberg `timestamp` is Spark's `timestamp_ntz`).
fn cast_type(t: ColumnType) -> String {
    match t {
        ColumnType::Timestamp => "timestamp_ntz".into(),
        ColumnType::Timestamptz => "timestamp".into(),
        other => other.hive_name(),
    }
}

/// Whether a value of type `from` can be cast to `to` by both engines without a function.
fn castable(from: ColumnType, to: ColumnType) -> bool {
    use ColumnType as T;
    let numeric = |t: ColumnType| t.is_numeric();
    match (from, to) {
        (_, T::String) | (T::String, _) => true,
        (a, b) if numeric(a) && numeric(b) => true,
        (a, b) if a.is_temporal() && b.is_temporal() => true,
        (T::Boolean, b) => numeric(b),
        (a, T::Boolean) => numeric(a),
        _ => false,
    }
}

/// One item of a SELECT list and its trailing comment.
type Item = (String, Option<String>);

fn render_select(items: &[Item]) -> String {
    let n = items.len();
    items
        .iter()
        .enumerate()
        .map(|(i, (expr, comment))| {
            let comma = if i + 1 < n { "," } else { "" };
            match comment {
                Some(c) => format!("  {expr}{comma}  -- {c}"),
                None => format!("  {expr}{comma}"),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The SELECT list of a job writing `output`, reading `input`: each declared column in order,
/// from the input column of the same name (or the one `renames` gives: output, input), cast
/// when its type differs, else a typed NULL with a `-- TODO` comment. Returns the items and
/// the columns left to compute.
fn select_list(output: &Table, input: Option<&Table>, renames: &[(&str, &str)]) -> (Vec<Item>, Vec<String>) {
    let mut to_fill = Vec::new();
    let items = output
        .columns
        .iter()
        .map(|c| {
            let name = c.name.as_str();
            let want = c.data_type;
            let source = renames
                .iter()
                .find(|(out, _)| *out == name)
                .map_or(name, |(_, from)| from);
            let from = input.and_then(|t| t.column(source));
            match from {
                Some(f) if f.data_type == want && source == name => (name.to_string(), None),
                Some(f) if f.data_type == want => (format!("{source} AS {name}"), None),
                Some(f) if castable(f.data_type, want) => {
                    (format!("CAST({source} AS {}) AS {name}", cast_type(want)), None)
                }
                _ => {
                    to_fill.push(name.to_string());
                    let why = match from {
                        Some(f) => format!(
                            " (the input's {source} is {}, which does not cast to {})",
                            f.data_type.hive_name(),
                            want.hive_name()
                        ),
                        None => String::new(),
                    };
                    (
                        format!("CAST(NULL AS {}) AS {name}", cast_type(want)),
                        Some(format!("TODO: compute {name}{why}")),
                    )
                }
            }
        })
        .collect();
    (items, to_fill)
}

/// The input's date and time columns, `name (type)`, for a message.
fn temporal_columns(t: &Table) -> Vec<String> {
    t.columns
        .iter()
        .filter(|c| c.data_type.is_temporal())
        .map(|c| format!("{} ({})", c.name, c.data_type))
        .collect()
}

/// The input column a time-range job filters its interval on: `--input-time-column`, else the
/// output's time column. With the input declared, a column it lacks is refused, naming the
/// input's date/time columns (a filter on a missing column would only fail later, or, with
/// no filter, every run would read every row into its one interval).
fn interval_column<'a>(
    tr: &'a NewTimeRange,
    input: Option<&Table>,
    input_name: &str,
) -> Result<&'a str, ScaffoldError> {
    let wanted = tr.input_column.as_deref().unwrap_or(&tr.column);
    let Some(input) = input else {
        return Ok(wanted);
    };
    if input.column(wanted).is_some() {
        return Ok(wanted);
    }
    let temporal = temporal_columns(input);
    let help = if temporal.is_empty() {
        format!("{input_name} has no date or time column: declare the one that places a row in an interval, or write the interval filter of the SQL by hand")
    } else {
        format!(
            "its date/time columns are {}: pass --input-time-column COLUMN to filter on one (the SQL selects it as {})",
            temporal.join(", "),
            tr.column
        )
    };
    let flag = if tr.input_column.is_some() {
        format!("--input-time-column {wanted}")
    } else {
        format!("--time-column {wanted}")
    };
    Err(ScaffoldError::Invalid(format!(
        "{flag}: the input {input_name} has no column `{wanted}` to select each run's interval with; nothing was written\n  help: {help}"
    )))
}

/// The merge section: keys, the dedup rule (always declared: `error` unless keep_latest is
/// asked for), the delete condition.
fn merge_section(j: &NewJob<'_>) -> Result<String, ScaffoldError> {
    let o = &j.options;
    if j.keys.is_empty() {
        return Err(ScaffoldError::Invalid(
            "--mode merge needs the key the rows are matched on: --key COLUMN (repeat for a composite key); nothing was written".into(),
        ));
    }
    let timestamps: Vec<&str> = j
        .input_table
        .map(|t| {
            t.columns
                .iter()
                .filter(|c| matches!(c.data_type, ColumnType::Timestamp | ColumnType::Timestamptz))
                .map(|c| c.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    let mut text = format!(
        "# Rows whose keys match are updated, the others inserted.\n[jobs.merge]\nkeys = {}\n",
        list(&j.keys)
    );
    match (o.on_duplicate.as_deref(), o.order_by.as_deref()) {
        (None | Some("keep_latest"), Some(order_by)) => {
            text += &format!(
                "# Of the rows the SQL returns for one key, the one with the greatest {order_by} is merged.\non_duplicate = \"keep_latest\"\norder_by = {}\n",
                quote(order_by)
            );
        }
        (Some("keep_latest"), None) => {
            let help = if timestamps.is_empty() {
                "name the column whose greatest value wins, e.g. an update time".to_string()
            } else {
                format!("the input's timestamp columns are {}", timestamps.join(", "))
            };
            return Err(ScaffoldError::Invalid(format!(
                "--on-duplicate keep_latest needs --order-by COLUMN: the column whose greatest value wins among a key's rows; nothing was written\n  help: {help}"
            )));
        }
        (Some(_), Some(_)) => {
            return Err(ScaffoldError::Invalid(
                "--order-by chooses the row kept with --on-duplicate keep_latest; with --on-duplicate error a key twice fails the run; nothing was written\n  help: drop --on-duplicate error (--order-by alone keeps the latest row)".into(),
            ));
        }
        (_, None) => {
            // The dedup rule is declared, not implied: `error` refuses a run whose SQL returns
            // a key twice, so no row is dropped silently; keep_latest is one line away, named
            // with the input's only timestamp column when it has one.
            let order_by = match timestamps.as_slice() {
                [only] => only.to_string(),
                _ => "event_ts".to_string(),
            };
            text += &format!(
                "# A key the SQL returns twice fails the run. To keep the latest row per key instead, set\n# on_duplicate = \"keep_latest\" and order_by = {} (a column the SQL selects).\non_duplicate = \"error\"\n",
                quote(&order_by)
            );
        }
    }
    if let Some(d) = &o.delete_when {
        text += &format!(
            "# A row of the SQL for which this holds deletes the table's row of its key.\ndelete_when = {}\n",
            quote(d)
        );
    }
    Ok(text)
}

/// The columns a merge reads beyond the output's (its order_by, the columns of delete_when)
/// that the input has: selected too, or the merge would not find them.
fn merge_extras(j: &NewJob<'_>, output: &Table) -> Vec<Item> {
    let Some(input) = j.input_table else {
        return Vec::new();
    };
    let declared: Vec<&str> = output.columns.iter().map(|c| c.name.as_str()).collect();
    let mut extras: Vec<Item> = Vec::new();
    let mut add = |name: &str, why: &str| {
        if !declared.contains(&name) && input.column(name).is_some() && !extras.iter().any(|(e, _)| e == name) {
            extras.push((name.to_string(), Some(format!("{why}; not written to {}", j.output))));
        }
    };
    if let Some(o) = &j.options.order_by {
        add(o, "the merge's order_by");
    }
    if let Some(d) = &j.options.delete_when {
        for c in crate::sql_columns::unknown_columns(d, &declared).unwrap_or_default() {
            add(&c, "read by delete_when");
        }
    }
    extras
}

/// The job's other sections, in manifest order after the mode.
fn job_keys(j: &NewJob<'_>) -> Result<String, ScaffoldError> {
    let o = &j.options;
    let mut text = String::new();
    if let Some(p) = &o.on_change {
        text += &format!("on_change = {}\n", quote(p));
    }
    let checks: Vec<String> = o
        .checks
        .iter()
        .map(|c| check_toml(c, false))
        .chain(o.warn_checks.iter().map(|c| check_toml(c, true)))
        .collect::<Result<_, _>>()?;
    if !checks.is_empty() {
        text += "checks = [\n";
        for c in checks {
            text += &format!("  {c},\n");
        }
        text += "]\n";
    }
    let params = key_values("--param", &o.params)?;
    if !params.is_empty() {
        // A bare key when TOML allows one (`region = "eu"`), else quoted.
        let key = |k: &str| {
            if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                k.to_string()
            } else {
                quote(k)
            }
        };
        let items: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{} = {}", key(k), quote(v)))
            .collect();
        text += &format!("params = {{ {} }}\n", items.join(", "));
    }
    let glue: Vec<String> = [
        o.worker_type.as_ref().map(|w| format!("worker_type = {}", quote(w))),
        o.workers.map(|n| format!("workers = {n}")),
        o.timeout_minutes.map(|n| format!("timeout_minutes = {n}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !glue.is_empty() {
        text += &format!("glue = {{ {} }}\n", glue.join(", "));
    }
    Ok(text)
}

/// `mesh new job PROJECT NAME --input raw.x --output curated.y`: the manifest entry and a SQL file.
///
/// When the output table is declared, the SQL selects exactly its columns in order (see
/// [`select_list`]), so it validates as written; a time-range job filters on the interval (see
/// [`interval_column`]). Otherwise the SQL is a `SELECT *` of the first input to edit.
pub fn new_job(root: &Path, abbr: &str, j: &NewJob<'_>) -> Result<NewJobFiles, ScaffoldError> {
    let file = project_file(root, j.project)?;
    Name::parse(j.name).map_err(|e| ScaffoldError::Invalid(e.to_string()))?;
    let o = &j.options;
    let sql_rel = format!("sql/{}.sql", j.name);
    let sql_path = root.join(PROJECTS_DIR).join(j.project).join(&sql_rel);
    let first_input = j.inputs.first().cloned().unwrap_or_else(|| "raw.some_table".into());
    let from = match first_input.split_once('.') {
        Some((layer, table)) => format!("{abbr}_{layer}.{table}"),
        None => first_input.clone(),
    };
    let mode = j
        .mode
        .unwrap_or(if j.time_range.is_some() { "overwrite" } else { "append" });
    let merge_text = if mode == "merge" {
        Some(merge_section(j)?)
    } else {
        for (flag, given) in [
            ("--key", !j.keys.is_empty()),
            ("--on-duplicate", o.on_duplicate.is_some()),
            ("--order-by", o.order_by.is_some()),
            ("--delete-when", o.delete_when.is_some()),
        ] {
            if given {
                return Err(ScaffoldError::Invalid(format!(
                    "{flag} is for --mode merge, not `{mode}`; nothing was written"
                )));
            }
        }
        None
    };
    // The interval filter's column, and the output's time column selected from it when the
    // input names it otherwise.
    let filter_column = j
        .time_range
        .as_ref()
        .map(|tr| interval_column(tr, j.input_table, &first_input))
        .transpose()?;
    let renames: Vec<(&str, &str)> = match (&j.time_range, filter_column, j.input_table) {
        (Some(tr), Some(c), Some(input)) if input.column(&tr.column).is_none() => vec![(tr.column.as_str(), c)],
        _ => Vec::new(),
    };
    let (select, to_fill) = match j.output_table {
        Some(output) => {
            let (mut items, to_fill) = select_list(output, j.input_table, &renames);
            items.extend(merge_extras(j, output));
            (format!("SELECT\n{}\n", render_select(&items)), to_fill)
        }
        None => ("SELECT *\n".to_string(), Vec::new()),
    };
    let sql = match (&j.time_range, filter_column) {
        (Some(tr), Some(c)) => {
            let said = if c == tr.column {
                String::new()
            } else {
                format!(" by its {c}")
            };
            format!(
                "-- {}: replaces one {} of {} per run (time-range job)\n{select}FROM {from}\n-- Keep only the run's interval (end excluded){said}.\nWHERE {c} >= '${{interval_start}}' AND {c} < '${{interval_end}}'\n",
                j.name, tr.grain, j.output
            )
        }
        _ => format!("-- {}: writes {} ({mode})\n{select}FROM {from}\n", j.name, j.output),
    };

    let mut text = format!("[[jobs]]\nname = {}\n", quote(j.name));
    if let Some(d) = &o.description {
        text += &format!("description = {}\n", quote(d));
    }
    text += &format!(
        "sql = {}\ninputs = {}\noutput = {}\nmode = {}\n",
        quote(&sql_rel),
        list(&j.inputs),
        quote(j.output),
        quote(mode)
    );
    text += &job_keys(j)?;
    if let Some(m) = merge_text {
        text += &m;
    }
    if j.incremental {
        text += &format!(
            "# Each run reads only what arrived since its last commit (bookmark kept in the output's snapshots).\n[jobs.incremental]\ninputs = {}\n",
            list(&j.inputs)
        );
    }
    if let Some(tr) = &j.time_range {
        text += &format!(
            "# Each run replaces exactly one {} of {}; backfill with `mesh run --job {} --from DATE --to DATE`.\n[jobs.time_range]\ncolumn = {}\ngrain = {}\n",
            tr.grain,
            tr.column,
            j.name,
            quote(&tr.column),
            quote(&tr.grain)
        );
        if let Some(s) = &tr.start {
            text += &format!("start = {}\n", quote(s));
        }
        if let Some(l) = &tr.lag {
            text += &format!("lag = {}\n", quote(l));
        }
        if let Some(n) = tr.lookback {
            text += &format!("lookback = {n}\n");
        }
    }
    let mut undo = Undo::default();
    undo.run(|undo| {
        if let Some(parent) = sql_path.parent() {
            undo.create_dir(parent)?;
        }
        undo.create(&sql_path, &sql)?;
        undo.append(&file, &text)
    })?;
    undo.commit(root)?;
    Ok(NewJobFiles { sql: sql_path, to_fill })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_are_written_as_the_manifest_declares_them() {
        let ok = |s: &str| check_toml(s, false).unwrap();
        assert_eq!(ok("not_null:a, b"), r#"{ type = "not_null", columns = ["a", "b"] }"#);
        assert_eq!(ok("unique:id"), r#"{ type = "unique", columns = ["id"] }"#);
        assert_eq!(
            ok("accepted_values:status:new,shipped"),
            r#"{ type = "accepted_values", column = "status", values = ["new", "shipped"] }"#
        );
        assert_eq!(
            ok("range:t:-40:60.5"),
            r#"{ type = "range", column = "t", min = -40, max = 60.5 }"#
        );
        assert_eq!(
            ok("range:amount:0:"),
            r#"{ type = "range", column = "amount", min = 0 }"#
        );
        assert_eq!(
            ok("range:amount::1e3"),
            r#"{ type = "range", column = "amount", max = 1000.0 }"#
        );
        assert_eq!(ok("row_count_min:10"), r#"{ type = "row_count_min", min = 10 }"#);
        assert_eq!(
            ok("sql:SELECT * FROM output WHERE a > b"),
            r#"{ type = "sql", sql = "SELECT * FROM output WHERE a > b" }"#
        );
        assert_eq!(
            check_toml("unique:id", true).unwrap(),
            r#"{ type = "unique", columns = ["id"], severity = "warn" }"#
        );
        for (bad, says) in [
            ("uniq:id", "did you mean `unique`?"),
            ("range:amount", "range:COLUMN:MIN:MAX"),
            ("range:amount::", "a MIN, a MAX or both"),
            ("range:amount:x:1", "min `x` is not a finite number"),
            ("range:amount:0:inf", "max `inf` is not a finite number"),
            ("not_null:a,,b", "separated by commas"),
            ("row_count_min:-1", "not a row count"),
            ("sql:", "a sql check is sql:QUERY"),
        ] {
            let e = check_toml(bad, false).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("nothing was written"), "{bad}: {e}");
        }
    }
}
