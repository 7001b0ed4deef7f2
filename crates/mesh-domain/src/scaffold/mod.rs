//! Creating domains, projects, tables and jobs from the command line. Every change is
//! validated with the whole domain before it is kept; a change that would make the domain
//! invalid is rolled back, so files are never left half-written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::env::Env;
use crate::ident::{DomainAbbr, Name, ProjectSlug};
use crate::load::{load_domain, DOMAIN_FILE, PROJECTS_DIR, PROJECT_FILE};
use crate::model::{Classification, ColumnType, Layer};

mod job;
mod pipeline;

pub use job::{check_toml, new_job, JobOptions, NewJob, NewJobFiles, NewTimeRange, CHECK_FORMS};
pub use pipeline::{new_pipeline, NewPipeline};

#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The request itself is wrong (bad name, existing file): nothing was written.
    #[error("{0}")]
    Invalid(String),
    /// The change would make the domain invalid: it was rolled back. `rejected` shows the
    /// text that was added, numbered as the problems' lines number it: those lines are no
    /// longer in the file.
    #[error("the change was rolled back because the domain would not validate:\n{problems}{rejected}")]
    Rejected { problems: Diagnostics, rejected: String },
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
    /// Text written to a file (appended, or a new file): the file, the line number of its
    /// first line, the text.
    appended: Vec<(PathBuf, usize, String)>,
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
        self.appended.push((path.to_path_buf(), 1, text.to_string()));
        std::fs::write(path, text).map_err(io(path))
    }
    fn append(&mut self, path: &Path, text: &str) -> Result<(), ScaffoldError> {
        let old = std::fs::read_to_string(path).map_err(io(path))?;
        let sep = if old.ends_with('\n') { "\n" } else { "\n\n" };
        let new = format!("{old}{sep}{text}");
        let first_line = format!("{old}{sep}").lines().count() + 1;
        self.appended.push((path.to_path_buf(), first_line, text.to_string()));
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
            Err(problems) => {
                let mut rejected = String::new();
                let named = problems.to_string();
                for (path, first, text) in &self.appended {
                    let shown = path.strip_prefix(root).unwrap_or(path).display().to_string();
                    // Only the files a problem names: the others hold nothing to look at.
                    if !named.contains(&shown) {
                        continue;
                    }
                    rejected += &format!(
                        "\nthe rejected text, numbered as it would have stood in {shown} (the file is as it was):\n"
                    );
                    for (i, line) in text.lines().enumerate() {
                        rejected += &format!("{:>5} | {line}\n", first + i);
                    }
                }
                Err(self.fail(ScaffoldError::Rejected {
                    problems,
                    rejected: rejected.trim_end().to_string(),
                }))
            }
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
    contact: Option<&str>,
    description: Option<&str>,
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
    let mut text = format!(
        "name = {}\nproject_slug = {}\nowner = {}\nclassification = {}\n",
        quote(name),
        quote(slug),
        quote(owner),
        quote(classification.as_str())
    );
    for (key, value) in [("contact", contact), ("description", description)] {
        if let Some(v) = value {
            text += &format!("{key} = {}\n", quote(v));
        }
    }
    text += &format!(
        "\n# Add tables with `mesh new table {name} NAME --layer raw --column id:long`,\n# jobs with `mesh new job {name} NAME --input raw.x --output curated.y`.\n"
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
    /// Everything else the manifest declares of a table; all optional.
    pub options: TableOptions,
}

/// The optional parts of a `[[tables]]` entry, as `mesh new table` flags give them.
#[derive(Debug, Default)]
pub struct TableOptions {
    pub description: Option<String>,
    /// `COLUMN=TEXT`: each column's `comment`.
    pub comments: Vec<String>,
    pub sort_order: Vec<String>,
    pub identifier: Vec<String>,
    pub target_file_size_mb: Option<u32>,
    /// `fail` or `quarantine` (raw tables).
    pub bad_rows: Option<String>,
    pub csv: CsvArgs,
}

/// `[tables.csv]` as given on the command line; `None`: the reader's default.
#[derive(Debug, Default)]
pub struct CsvArgs {
    pub delimiter: Option<String>,
    pub quote: Option<String>,
    pub escape: Option<String>,
    pub null_value: Option<String>,
    /// `--csv-no-header`.
    pub no_header: bool,
}

impl CsvArgs {
    fn is_empty(&self) -> bool {
        self.delimiter.is_none()
            && self.quote.is_none()
            && self.escape.is_none()
            && self.null_value.is_none()
            && !self.no_header
    }
}

/// A CSV character as typed in a shell: `tab` and `\t` stand for a tab, which is hard to type
/// (the manifest then holds `"\t"`); anything else is kept for the validator to judge.
fn csv_char(s: &str) -> String {
    match s {
        "tab" | "\\t" => "\t".to_string(),
        other => other.to_string(),
    }
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

/// `KEY=VALUE` arguments (`--comment amount=in EUR`, `--param region=eu`), in order; `flag`
/// names the option in the error.
fn key_values(flag: &str, args: &[String]) -> Result<Vec<(String, String)>, ScaffoldError> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(ScaffoldError::Invalid(format!(
                "{flag} `{a}` must be KEY=VALUE, e.g. {flag} amount='refunded amount, in EUR'; nothing was written"
            ))),
        })
        .collect()
}

/// `mesh new table PROJECT NAME --layer L --column c:t …`.
pub fn new_table(root: &Path, t: &NewTable<'_>) -> Result<(), ScaffoldError> {
    let file = project_file(root, t.project)?;
    if t.columns.is_empty() {
        return Err(ScaffoldError::Invalid(
            "a table needs at least one --column NAME:TYPE".into(),
        ));
    }
    let o = &t.options;
    let mut comments = BTreeMap::new();
    for (column, text) in key_values("--comment", &o.comments)? {
        if !t.columns.iter().any(|(name, _, _)| *name == column) {
            let names = t.columns.iter().map(|(n, _, _)| n.as_str());
            let help = crate::diagnostic::did_you_mean(&column, names.clone())
                .unwrap_or_else(|| format!("the columns are: {}", names.collect::<Vec<_>>().join(", ")));
            return Err(ScaffoldError::Invalid(format!(
                "--comment {column}=…: `{column}` is not a --column of this table; nothing was written\n  help: {help}"
            )));
        }
        comments.insert(column, text);
    }
    if !o.csv.is_empty() && t.format != Some("csv") {
        return Err(ScaffoldError::Invalid(format!(
            "--csv-* options describe CSV files, and this table's format is {}; nothing was written\n  help: add --format csv, or leave the --csv-* options out",
            t.format.map_or("not set".to_string(), |f| format!("`{f}`"))
        )));
    }
    let mut text = format!(
        "[[tables]]\nname = {}\nlayer = {}\n",
        quote(t.name),
        quote(t.layer.as_str())
    );
    if let Some(d) = &o.description {
        text += &format!("description = {}\n", quote(d));
    }
    if let Some(f) = t.format {
        text += &format!("format = {}\n", quote(f));
    }
    if let Some(b) = &o.bad_rows {
        text += &format!("bad_rows = {}\n", quote(b));
    }
    for (key, items) in [
        ("partition_by", &t.partition_by),
        ("sort_order", &o.sort_order),
        ("identifier", &o.identifier),
    ] {
        if !items.is_empty() {
            text += &format!("{key} = {}\n", list(items));
        }
    }
    if let Some(mb) = o.target_file_size_mb {
        text += &format!("target_file_size_mb = {mb}\n");
    }
    text += "columns = [\n";
    for (name, ty, required) in &t.columns {
        let comment = comments
            .get(name)
            .map(|c| format!(", comment = {}", quote(c)))
            .unwrap_or_default();
        text += &format!(
            "  {{ name = {}, type = {}, nullable = {}{comment} }},\n",
            quote(name),
            quote(ty),
            !required
        );
    }
    text += "]\n";
    if !o.csv.is_empty() {
        text += "[tables.csv]\n";
        if o.csv.no_header {
            text += "header = false\n";
        }
        for (key, value) in [
            ("delimiter", o.csv.delimiter.as_deref().map(csv_char)),
            ("quote", o.csv.quote.as_deref().map(csv_char)),
            ("escape", o.csv.escape.as_deref().map(csv_char)),
            ("null_value", o.csv.null_value.clone()),
        ] {
            if let Some(v) = value {
                text += &format!("{key} = {}\n", quote(&v));
            }
        }
    }
    let mut undo = Undo::default();
    undo.append(&file, &text)?;
    undo.commit(root)
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
            appended: vec![],
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
    /// typed NULL with a TODO). A time-range job whose input lacks the output's time column is
    /// refused, naming the input's date/time columns; with --input-time-column it filters on
    /// that column and selects it as the time column.
    #[test]
    fn a_declared_output_is_scaffolded_column_by_column() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        init_domain(root, "shop", "f01", "eu-west-1", &BTreeMap::new(), None).unwrap();
        new_project(root, "shop", "pj01", "team", Classification::Internal, None, None).unwrap();
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
                format: Some("csv").filter(|_| layer == Layer::Raw),
                options: TableOptions::default(),
            };
            new_table(root, &t).unwrap();
        }
        let domain = load_domain(root).unwrap();
        let table = |name: &str| domain.tables().map(|(_, t)| t).find(|t| t.name.as_str() == name);
        let job = |time_range: NewTimeRange| NewJob {
            project: "shop",
            name: "daily",
            inputs: vec!["raw.events".into()],
            output: "curated.out",
            mode: None,
            incremental: false,
            time_range: Some(time_range),
            keys: vec![],
            options: JobOptions::default(),
            output_table: table("out"),
            input_table: table("events"),
        };
        let err = new_job(root, "f01", &job(NewTimeRange::new("day", "day")))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--time-column day: the input raw.events has no column `day` to select each run's interval with; nothing was written\n  \
             help: its date/time columns are a (date), b (timestamp): pass --input-time-column COLUMN to filter on one (the SQL selects it as day)"
        );
        assert!(!root.join("projects/shop/sql/daily.sql").exists());
        let files = new_job(
            root,
            "f01",
            &job(NewTimeRange {
                input_column: Some("b".into()),
                ..NewTimeRange::new("day", "day")
            }),
        )
        .unwrap();
        assert_eq!(files.to_fill, ["raw"]);
        let sql = std::fs::read_to_string(&files.sql).unwrap();
        assert_eq!(
            sql,
            "-- daily: replaces one day of curated.out per run (time-range job)\n\
             SELECT\n  id,\n  CAST(n AS bigint) AS n,\n  CAST(b AS date) AS day,\n\
             \x20 CAST(NULL AS boolean) AS raw  -- TODO: compute raw (the input's raw is binary, which does not cast to boolean)\n\
             FROM f01_raw.events\n\
             -- Keep only the run's interval (end excluded) by its b.\n\
             WHERE b >= '${interval_start}' AND b < '${interval_end}'\n"
        );
        load_domain(root).unwrap();
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
                mode: None,
                incremental: false,
                time_range: None,
                keys: vec![],
                options: JobOptions::default(),
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
