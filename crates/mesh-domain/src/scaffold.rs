//! Creating domains, projects, tables and jobs from the command line. Every change is
//! validated with the whole domain before it is kept; a change that would make the domain
//! invalid is rolled back, so files are never left half-written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::env::Env;
use crate::ident::{DomainAbbr, Name, ProjectSlug};
use crate::load::{load_domain, DOMAIN_FILE, PROJECTS_DIR, PROJECT_FILE};
use crate::model::{Classification, ColumnType, Layer, Table};

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The request itself is wrong (bad name, existing file): nothing was written.
    #[error("{0}")]
    Invalid(String),
    /// The change would make the domain invalid: it was rolled back.
    #[error("the change was rolled back because the domain would not validate:\n{0}")]
    Rejected(Diagnostics),
    #[error("cannot write `{path}`: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The change failed (or was rejected) and undoing it failed too: the files listed are
    /// left as they are and must be fixed by hand.
    #[error("{cause}\nthe rollback could not undo everything; fix these by hand (or restore them with git):\n{}", .left.iter().map(|l| format!("  - {l}")).collect::<Vec<_>>().join("\n"))]
    RollbackIncomplete {
        cause: Box<ScaffoldError>,
        left: Vec<String>,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ScaffoldError + '_ {
    move |source| ScaffoldError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Files written so far, removed again if the change is rejected.
#[derive(Default)]
struct Undo {
    created: Vec<PathBuf>,
    created_dirs: Vec<PathBuf>,
    restored: Vec<(PathBuf, String)>,
}

impl Undo {
    fn create_dir(&mut self, dir: &Path) -> Result<(), ScaffoldError> {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            self.created_dirs.push(dir.to_path_buf());
        }
        Ok(())
    }
    fn create(&mut self, path: &Path, text: &str) -> Result<(), ScaffoldError> {
        if path.exists() {
            return Err(ScaffoldError::Invalid(format!(
                "`{}` already exists; nothing was written",
                path.display()
            )));
        }
        // Recorded first: a write that fails halfway leaves a file the rollback must remove.
        self.created.push(path.to_path_buf());
        std::fs::write(path, text).map_err(io(path))
    }
    fn append(&mut self, path: &Path, text: &str) -> Result<(), ScaffoldError> {
        let old = std::fs::read_to_string(path).map_err(io(path))?;
        let sep = if old.ends_with('\n') { "\n" } else { "\n\n" };
        let new = format!("{old}{sep}{text}");
        // Recorded first: a write that fails halfway leaves a file the rollback must restore.
        self.restored.push((path.to_path_buf(), old));
        std::fs::write(path, new).map_err(io(path))
    }
    /// Undoes every change, newest first, and says what it could not undo (a file already
    /// gone is not a failure).
    fn rollback(self) -> Vec<String> {
        let mut left = Vec::new();
        for (path, old) in self.restored.into_iter().rev() {
            if let Err(e) = std::fs::write(&path, old) {
                left.push(format!(
                    "`{}` still holds the new text: cannot restore it ({e})",
                    path.display()
                ));
            }
        }
        for path in self.created.into_iter().rev() {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => left.push(format!("`{}` was created and cannot be removed ({e})", path.display())),
            }
        }
        for dir in self.created_dirs.into_iter().rev() {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => left.push(format!(
                    "folder `{}` was created and cannot be removed ({e})",
                    dir.display()
                )),
            }
        }
        left
    }
    /// Rolls back after `cause`; the error also lists what could not be undone.
    fn fail(self, cause: ScaffoldError) -> ScaffoldError {
        let left = self.rollback();
        if left.is_empty() {
            cause
        } else {
            ScaffoldError::RollbackIncomplete {
                cause: Box::new(cause),
                left,
            }
        }
    }
    /// Runs the steps of a change; the first failure rolls back what the earlier ones wrote.
    fn run(&mut self, steps: impl FnOnce(&mut Undo) -> Result<(), ScaffoldError>) -> Result<(), ScaffoldError> {
        match steps(self) {
            Ok(()) => Ok(()),
            Err(e) => Err(std::mem::take(self).fail(e)),
        }
    }
    /// Keeps the change only if the domain still validates.
    fn commit(self, root: &Path) -> Result<(), ScaffoldError> {
        match load_domain(root) {
            Ok(_) => Ok(()),
            Err(d) => Err(self.fail(ScaffoldError::Rejected(d))),
        }
    }
}

/// Parses `--account ENV=ID` arguments: each cloud environment at most once, ids of 12 digits.
pub fn parse_account_args(args: &[String]) -> Result<BTreeMap<Env, String>, ScaffoldError> {
    let mut accounts = BTreeMap::new();
    for a in args {
        let (env, id) = a.split_once('=').ok_or_else(|| {
            ScaffoldError::Invalid(format!(
                "--account `{a}` must be ENV=ID, e.g. `--account dev=123456789012`"
            ))
        })?;
        let env = env.trim().parse::<Env>().ok().filter(|e| e.is_cloud()).ok_or_else(|| {
            ScaffoldError::Invalid(format!(
                "--account `{a}`: `{env}` is not a cloud environment; use dev, int or prod"
            ))
        })?;
        let id = id.trim();
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ScaffoldError::Invalid(format!(
                "--account `{a}`: `{id}` is not an AWS account id; account ids are 12 digits"
            )));
        }
        if accounts.insert(env, id.to_string()).is_some() {
            return Err(ScaffoldError::Invalid(format!(
                "--account {env}=…: given twice; give each of dev, int and prod once"
            )));
        }
    }
    Ok(accounts)
}

/// `mesh init DIR`: a new, valid, empty domain repository.
pub fn init_domain(
    dir: &Path,
    name: &str,
    abbr: &str,
    region: &str,
    accounts: &BTreeMap<Env, String>,
    github_repository: Option<&str>,
) -> Result<Vec<PathBuf>, ScaffoldError> {
    DomainAbbr::parse(abbr).map_err(|e| ScaffoldError::Invalid(e.to_string()))?;
    if let Some(repo) = github_repository {
        crate::load::check_github_repository(repo).map_err(|why| {
            ScaffoldError::Invalid(format!(
                "--github-repo `{repo}` is not a GitHub repository: {why}; use `owner/name`"
            ))
        })?;
    }
    if dir.join(DOMAIN_FILE).exists() {
        return Err(ScaffoldError::Invalid(format!(
            "`{}` already holds a {DOMAIN_FILE}; nothing was written",
            dir.display()
        )));
    }
    let mut undo = Undo::default();
    let mut domain = serde_json::json!({
        "domain_name": name,
        "domain_abbr": abbr,
        "aws_region": region,
        "glue_version": "5.0",
        "python_version": "3.11",
        "terraform_version": "1.9.8",
        "rust_toolchain": "1.95",
    });
    if !accounts.is_empty() {
        let map: serde_json::Map<String, serde_json::Value> = accounts
            .iter()
            .map(|(e, id)| (e.to_string(), serde_json::Value::String(id.clone())))
            .collect();
        domain["aws_accounts"] = serde_json::Value::Object(map);
    }
    if let Some(repo) = github_repository {
        domain["github_repository"] = serde_json::Value::String(repo.to_string());
    }
    let text = serde_json::to_string_pretty(&domain).expect("static JSON") + "\n";
    let files = [
        (dir.join(DOMAIN_FILE), text),
        // `.env` holds one developer's local settings (`mesh env` writes it): never committed.
        (dir.join(".gitignore"), "/.mesh/\n/target/\n/.env\n".to_string()),
        (dir.join(PROJECTS_DIR).join("README.md"), "One folder per project, each with a `project.toml`.\nCreate one with `mesh new project NAME --slug SLUG`.\n".to_string()),
    ];
    undo.run(|undo| {
        undo.create_dir(dir)?;
        undo.create_dir(&dir.join(PROJECTS_DIR))?;
        for (path, text) in &files {
            undo.create(path, text)?;
        }
        Ok(())
    })?;
    undo.commit(dir)?;
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

/// `mesh new project NAME --slug SLUG`.
pub fn new_project(
    root: &Path,
    name: &str,
    slug: &str,
    owner: &str,
    classification: Classification,
) -> Result<PathBuf, ScaffoldError> {
    Name::parse(name).map_err(|e| ScaffoldError::Invalid(e.to_string()))?;
    ProjectSlug::parse(slug).map_err(|e| ScaffoldError::Invalid(e.to_string()))?;
    let dir = root.join(PROJECTS_DIR).join(name);
    if dir.exists() {
        return Err(ScaffoldError::Invalid(format!(
            "project folder `{}` already exists; nothing was written",
            dir.display()
        )));
    }
    let mut undo = Undo::default();
    let file = dir.join(PROJECT_FILE);
    let text = format!(
        "name = {}\nproject_slug = {}\nowner = {}\nclassification = {}\n\n# Add tables with `mesh new table {name} NAME --layer raw --column id:long`,\n# jobs with `mesh new job {name} NAME --input raw.x --output curated.y`.\n",
        quote(name),
        quote(slug),
        quote(owner),
        quote(classification.as_str())
    );
    undo.run(|undo| {
        undo.create_dir(&dir)?;
        undo.create_dir(&dir.join("sql"))?;
        undo.create(&file, &text)
    })?;
    undo.commit(root)?;
    Ok(file)
}

/// A column given on the command line as `name:type`, with `!` for NOT NULL (`id:long!`).
pub fn parse_column_arg(s: &str) -> Result<(String, String, bool), ScaffoldError> {
    let (name, ty) = s.split_once(':').ok_or_else(|| {
        ScaffoldError::Invalid(format!(
            "column `{s}` must be NAME:TYPE, e.g. `order_id:long!` (`!` = not null)"
        ))
    })?;
    let (ty, required) = match ty.strip_suffix('!') {
        Some(t) => (t, true),
        None => (ty, false),
    };
    if ColumnType::parse(ty).is_none() {
        return Err(ScaffoldError::Invalid(format!("column `{name}`: `{ty}` is not a column type (boolean, int, long, float, double, decimal(P,S), date, timestamp, timestamptz, string, binary)")));
    }
    Ok((name.to_string(), ty.to_string(), required))
}

pub struct NewTable<'a> {
    pub project: &'a str,
    pub name: &'a str,
    pub layer: Layer,
    pub columns: Vec<(String, String, bool)>,
    pub partition_by: Vec<String>,
    pub format: Option<&'a str>,
}

fn project_file(root: &Path, project: &str) -> Result<PathBuf, ScaffoldError> {
    let file = root.join(PROJECTS_DIR).join(project).join(PROJECT_FILE);
    if !file.is_file() {
        return Err(ScaffoldError::Invalid(format!(
            "project `{project}` does not exist ({} not found); create it with `mesh new project`",
            file.display()
        )));
    }
    Ok(file)
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", "))
}

/// `mesh new table PROJECT NAME --layer L --column c:t …`.
pub fn new_table(root: &Path, t: &NewTable<'_>) -> Result<(), ScaffoldError> {
    let file = project_file(root, t.project)?;
    if t.columns.is_empty() {
        return Err(ScaffoldError::Invalid(
            "a table needs at least one --column NAME:TYPE".into(),
        ));
    }
    let mut text = format!(
        "[[tables]]\nname = {}\nlayer = {}\n",
        quote(t.name),
        quote(t.layer.as_str())
    );
    if let Some(f) = t.format {
        text += &format!("format = {}\n", quote(f));
    }
    if !t.partition_by.is_empty() {
        text += &format!("partition_by = {}\n", list(&t.partition_by));
    }
    text += "columns = [\n";
    for (name, ty, required) in &t.columns {
        text += &format!(
            "  {{ name = {}, type = {}, nullable = {} }},\n",
            quote(name),
            quote(ty),
            !required
        );
    }
    text += "]\n";
    let mut undo = Undo::default();
    undo.append(&file, &text)?;
    undo.commit(root)
}

pub struct NewJob<'a> {
    pub project: &'a str,
    pub name: &'a str,
    pub inputs: Vec<String>,
    pub output: &'a str,
    pub mode: &'a str,
    /// Read every input incrementally (`[jobs.incremental]`).
    pub incremental: bool,
    /// A time-range job: (output time column, grain); its mode is `overwrite`.
    pub time_range: Option<(&'a str, &'a str)>,
    /// Merge keys (`--key`, repeat for a composite key): required by `mode = "merge"`.
    pub keys: Vec<String>,
    /// The declared output table, when the manifest has it: the SQL then selects exactly its
    /// columns (see [`new_job`]). `None`: a `SELECT *` to edit.
    pub output_table: Option<&'a Table>,
    /// The first input's declared table: columns of the same name are selected from it.
    pub input_table: Option<&'a Table>,
}

/// What `mesh new job` wrote.
#[derive(Debug)]
pub struct NewJobFiles {
    pub sql: PathBuf,
    /// Output columns the SQL leaves as `CAST(NULL AS …)` with a `-- TODO` line: to compute.
    pub to_fill: Vec<String>,
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

/// The SELECT list of a job writing `output`, reading `input`: each declared column in order,
/// from the input column of the same name (cast when its type differs), else a typed NULL with
/// a `-- TODO` comment. Returns the lines and the columns left to compute.
fn select_list(output: &Table, input: Option<&Table>) -> (Vec<String>, Vec<String>) {
    let mut to_fill = Vec::new();
    let n = output.columns.len();
    let lines = output
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let comma = if i + 1 < n { "," } else { "" };
            let name = c.name.as_str();
            let want = c.data_type;
            let from = input.and_then(|t| t.column(name));
            match from {
                Some(f) if f.data_type == want => format!("  {name}{comma}"),
                Some(f) if castable(f.data_type, want) => {
                    format!("  CAST({name} AS {}) AS {name}{comma}", cast_type(want))
                }
                _ => {
                    to_fill.push(name.to_string());
                    let why = match from {
                        Some(f) => format!(
                            " (the input's {name} is {}, which does not cast to {})",
                            f.data_type.hive_name(),
                            want.hive_name()
                        ),
                        None => String::new(),
                    };
                    format!(
                        "  CAST(NULL AS {}) AS {name}{comma}  -- TODO: compute {name}{why}",
                        cast_type(want)
                    )
                }
            }
        })
        .collect();
    (lines, to_fill)
}

/// The interval filter of a time-range job reading `input`, whose output's time column is
/// `column`: on the input's column of that name, else on its only date/time column (said in a
/// comment), else a commented TODO naming the interval parameters.
fn interval_filter(column: &str, input: Option<&Table>) -> String {
    let filter = |c: &str| format!("WHERE {c} >= '${{interval_start}}' AND {c} < '${{interval_end}}'\n");
    if input.is_none_or(|t| t.column(column).is_some()) {
        return format!("-- Keep only the run's interval (end excluded).\n{}", filter(column));
    }
    let temporal: Vec<&str> = input
        .map(|t| {
            t.columns
                .iter()
                .filter(|c| c.data_type.is_temporal())
                .map(|c| c.name.as_str())
                .collect()
        })
        .unwrap_or_default();
    match temporal.as_slice() {
        [only] => format!(
            "-- Keep only the run's interval (end excluded). The input has no {column}: this filters on\n-- its only date/time column, {only}; check it is the one that places a row in the interval.\n{}",
            filter(only)
        ),
        _ => "-- TODO: keep only the run's interval (end excluded): the input has no single date/time\n-- column to filter on, e.g.\n--   WHERE <time column> >= '${interval_start}' AND <time column> < '${interval_end}'\n".to_string(),
    }
}

/// `mesh new pipeline PROJECT NAME --job A --job B [--optimize layer.t] [--schedule CRON]`.
pub struct NewPipeline<'a> {
    pub project: &'a str,
    pub name: &'a str,
    /// Jobs in order: each step depends on the one before.
    pub jobs: Vec<String>,
    /// Tables to maintain after the last job.
    pub optimize: Vec<String>,
    pub schedule: Option<&'a str>,
}

/// Appends a pipeline that runs the jobs in order, then maintains the tables.
pub fn new_pipeline(root: &Path, p: &NewPipeline<'_>) -> Result<(), ScaffoldError> {
    let file = project_file(root, p.project)?;
    Name::parse(p.name).map_err(|e| ScaffoldError::Invalid(e.to_string()))?;
    if p.jobs.is_empty() && p.optimize.is_empty() {
        return Err(ScaffoldError::Invalid(
            "a pipeline needs at least one step: --job NAME (repeat, run in order) or --optimize layer.table".into(),
        ));
    }
    let mut text = format!("[[pipelines]]\nname = {}\n", quote(p.name));
    if let Some(s) = p.schedule {
        text += &format!("schedule = {}\n", quote(s));
    }
    text += "steps = [\n";
    let mut previous: Option<String> = None;
    let after = |prev: &Option<String>| {
        prev.as_ref()
            .map(|d| format!(", depends_on = [{}]", quote(d)))
            .unwrap_or_default()
    };
    for j in &p.jobs {
        text += &format!("  {{ job = {}{} }},\n", quote(j), after(&previous));
        previous = Some(j.clone());
    }
    let last_job = previous.clone();
    for t in &p.optimize {
        text += &format!("  {{ optimize = {}{} }},\n", quote(t), after(&last_job));
    }
    text += "]\n";
    let mut undo = Undo::default();
    undo.append(&file, &text)?;
    undo.commit(root)?;
    Ok(())
}

/// `mesh new job PROJECT NAME --input raw.x --output curated.y`: the manifest entry and a SQL file.
///
/// When the output table is declared, the SQL selects exactly its columns in order (see
/// [`select_list`]), so it validates as written; a time-range job filters on the interval (see
/// [`interval_filter`]). Otherwise the SQL is a `SELECT *` of the first input to edit.
pub fn new_job(root: &Path, abbr: &str, j: &NewJob<'_>) -> Result<NewJobFiles, ScaffoldError> {
    let file = project_file(root, j.project)?;
    Name::parse(j.name).map_err(|e| ScaffoldError::Invalid(e.to_string()))?;
    let sql_rel = format!("sql/{}.sql", j.name);
    let sql_path = root.join(PROJECTS_DIR).join(j.project).join(&sql_rel);
    let from = j
        .inputs
        .first()
        .map(|i| match i.split_once('.') {
            Some((layer, table)) => format!("{abbr}_{layer}.{table}"),
            None => i.clone(),
        })
        .unwrap_or_else(|| format!("{abbr}_raw.some_table"));
    let mode = if j.time_range.is_some() { "overwrite" } else { j.mode };
    let (select, to_fill) = match j.output_table {
        Some(output) => {
            let (lines, to_fill) = select_list(output, j.input_table);
            (format!("SELECT\n{}\n", lines.join("\n")), to_fill)
        }
        None => ("SELECT *\n".to_string(), Vec::new()),
    };
    let mut sql = format!("-- {}: writes {} ({mode})\n{select}FROM {from}\n", j.name, j.output);
    let mut text = format!(
        "[[jobs]]\nname = {}\nsql = {}\ninputs = {}\noutput = {}\nmode = {}\n",
        quote(j.name),
        quote(&sql_rel),
        list(&j.inputs),
        quote(j.output),
        quote(mode)
    );
    if mode == "merge" {
        if j.keys.is_empty() {
            return Err(ScaffoldError::Invalid(
                "--mode merge needs the key the rows are matched on: --key COLUMN (repeat for a composite key); nothing was written".into(),
            ));
        }
        // The dedup rule is declared, not implied: `error` refuses a run whose SQL returns a key
        // twice, so no row is dropped silently; keep_latest is one line away, named with the
        // input's only timestamp column when it has one.
        let order_by = j
            .input_table
            .map(|t| {
                t.columns
                    .iter()
                    .filter(|c| matches!(c.data_type, ColumnType::Timestamp | ColumnType::Timestamptz))
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
            })
            .and_then(|cs| (cs.len() == 1).then(|| cs[0].to_string()))
            .unwrap_or_else(|| "event_ts".to_string());
        text += &format!(
            "# Rows whose keys match are updated, the others inserted.\n[jobs.merge]\nkeys = {}\n# A key the SQL returns twice fails the run. To keep the latest row per key instead, set\n# on_duplicate = \"keep_latest\" and order_by = {} (a column the SQL selects).\non_duplicate = \"error\"\n",
            list(&j.keys),
            quote(&order_by)
        );
    } else if !j.keys.is_empty() {
        return Err(ScaffoldError::Invalid(format!(
            "--key is for --mode merge, not `{mode}`; nothing was written"
        )));
    }
    if j.incremental {
        text += &format!(
            "# Each run reads only what arrived since its last commit (bookmark kept in the output's snapshots).\n[jobs.incremental]\ninputs = {}\n",
            list(&j.inputs)
        );
    }
    if let Some((column, grain)) = j.time_range {
        text += &format!(
            "# Each run replaces exactly one {grain} of {column}; backfill with `mesh run --job {} --from DATE --to DATE`.\n[jobs.time_range]\ncolumn = {}\ngrain = {}\n",
            j.name,
            quote(column),
            quote(grain)
        );
        sql = match j.output_table {
            Some(_) => format!(
                "-- {}: replaces one {grain} of {} per run (time-range job)\n{select}FROM {from}\n{}",
                j.name,
                j.output,
                interval_filter(column, j.input_table)
            ),
            None => format!(
                "-- {}: replaces one {grain} of {} per run (time-range job)\nSELECT *\nFROM {from}\n-- Keep only the run's interval (end excluded); name the input's time column here.\nWHERE {column} >= '${{interval_start}}' AND {column} < '${{interval_end}}'\n",
                j.name, j.output
            ),
        };
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

impl From<Diagnostic> for ScaffoldError {
    fn from(d: Diagnostic) -> Self {
        ScaffoldError::Invalid(d.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the rollback cannot undo is reported, path by path, after the cause: a file that
    /// cannot be restored (a folder took its place) and one that cannot be removed (also a
    /// folder now); a created file already gone is no failure.
    #[test]
    fn a_rollback_that_cannot_undo_says_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let restored = dir.path().join("project.toml");
        let created = dir.path().join("sql");
        std::fs::create_dir(&restored).unwrap();
        std::fs::create_dir_all(created.join("inside")).unwrap();
        let undo = Undo {
            created: vec![created.clone(), dir.path().join("already-gone.sql")],
            created_dirs: vec![],
            restored: vec![(restored.clone(), "name = \"x\"\n".into())],
        };
        let err = undo.fail(ScaffoldError::Invalid("the cause".into()));
        let ScaffoldError::RollbackIncomplete { cause, left } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(cause.to_string(), "the cause");
        assert_eq!(left.len(), 2, "{left:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("the cause\nthe rollback could not undo everything"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "  - `{}` still holds the new text: cannot restore it (",
                restored.display()
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "  - `{}` was created and cannot be removed (",
                created.display()
            )),
            "{text}"
        );
        assert!(!text.contains("already-gone"), "{text}");
    }

    /// A complete rollback returns the cause alone and leaves the tree as it was.
    #[test]
    fn a_complete_rollback_returns_the_cause_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("project.toml");
        std::fs::write(&file, "name = \"x\"\n").unwrap();
        let mut undo = Undo::default();
        let err = undo
            .run(|u| {
                u.create_dir(&dir.path().join("sql"))?;
                u.create(&dir.path().join("sql/a.sql"), "SELECT 1")?;
                u.append(&file, "[[jobs]]")?;
                Err(ScaffoldError::Invalid("stop".into()))
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "stop");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "name = \"x\"\n");
        assert!(!dir.path().join("sql").exists());
    }

    /// With the tables declared, the scaffold selects the output's columns (as is, cast, or a
    /// typed NULL with a TODO) and, for a time-range job whose input has no single date/time
    /// column, leaves the interval filter as a commented TODO naming the parameters.
    #[test]
    fn a_declared_output_is_scaffolded_column_by_column() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        init_domain(root, "shop", "f01", "eu-west-1", &BTreeMap::new(), None).unwrap();
        new_project(root, "shop", "pj01", "team", Classification::Internal).unwrap();
        let cols = |cs: &[&str]| cs.iter().map(|c| parse_column_arg(c).unwrap()).collect();
        for (name, layer, columns) in [
            (
                "events",
                Layer::Raw,
                cols(&["id:string!", "n:int", "a:date", "b:timestamp", "raw:binary"]),
            ),
            (
                "out",
                Layer::Curated,
                cols(&["id:string!", "n:long", "day:date", "raw:boolean"]),
            ),
        ] {
            let t = NewTable {
                project: "shop",
                name,
                layer,
                columns,
                partition_by: vec![],
                format: None,
            };
            new_table(root, &t).unwrap();
        }
        let domain = load_domain(root).unwrap();
        let table = |name: &str| domain.tables().map(|(_, t)| t).find(|t| t.name.as_str() == name);
        let files = new_job(
            root,
            "f01",
            &NewJob {
                project: "shop",
                name: "daily",
                inputs: vec!["raw.events".into()],
                output: "curated.out",
                mode: "append",
                incremental: false,
                time_range: Some(("day", "day")),
                keys: vec![],
                output_table: table("out"),
                input_table: table("events"),
            },
        )
        .unwrap();
        assert_eq!(files.to_fill, ["day", "raw"]);
        let sql = std::fs::read_to_string(&files.sql).unwrap();
        assert_eq!(
            sql,
            "-- daily: replaces one day of curated.out per run (time-range job)\n\
             SELECT\n  id,\n  CAST(n AS bigint) AS n,\n\
             \x20 CAST(NULL AS date) AS day,  -- TODO: compute day\n\
             \x20 CAST(NULL AS boolean) AS raw  -- TODO: compute raw (the input's raw is binary, which does not cast to boolean)\n\
             FROM f01_raw.events\n\
             -- TODO: keep only the run's interval (end excluded): the input has no single date/time\n\
             -- column to filter on, e.g.\n\
             --   WHERE <time column> >= '${interval_start}' AND <time column> < '${interval_end}'\n"
        );
    }

    /// `mesh new job` whose manifest cannot be appended to (not UTF-8) removes the SQL file it
    /// had already written, instead of leaving it behind.
    #[test]
    fn a_failed_new_job_leaves_no_sql_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join(PROJECTS_DIR).join("sales");
        std::fs::create_dir_all(&project).unwrap();
        std::fs::write(project.join(PROJECT_FILE), b"name = \"sales\"\n# \xff\xfe\n").unwrap();
        let err = new_job(
            dir.path(),
            "f01",
            &NewJob {
                project: "sales",
                name: "daily",
                inputs: vec!["raw.orders".into()],
                output: "curated.daily",
                mode: "append",
                incremental: false,
                time_range: None,
                keys: vec![],
                output_table: None,
                input_table: None,
            },
        )
        .unwrap_err();
        assert!(matches!(err, ScaffoldError::Io { .. }), "{err}");
        assert!(!project.join("sql/daily.sql").exists(), "the SQL file was left behind");
        assert!(!project.join("sql").exists(), "the sql folder was left behind");
    }
}
