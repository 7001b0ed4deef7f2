//! Loading a domain repository: parse `domain.json` and every `projects/*/project.toml`
//! into raw structs, then check everything and build the model. All problems are
//! collected and returned together.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use crate::diagnostic::{did_you_mean, line_of, relative, Diagnostic, Diagnostics};
use crate::env::Env;
use crate::ident::{DomainAbbr, Name, ProjectSlug};
use crate::model::*;
use crate::naming::{NameKind, Naming};
use self::unchecked::*;
use crate::source::SourceMap;

pub mod unchecked;

pub const DOMAIN_FILE: &str = "domain.json";
pub const PROJECTS_DIR: &str = "projects";
pub const PROJECT_FILE: &str = "project.toml";

/// Glue versions meshkit can deploy, with the Python each one runs.
pub const GLUE_VERSIONS: [(&str, &str); 2] = [("4.0", "3.10"), ("5.0", "3.11")];

/// Loads and validates the domain rooted at `root`.
pub fn load_domain(root: &Path) -> Result<Domain, Diagnostics> {
    let mut diags = Diagnostics::default();
    let header = load_header(root, &mut diags);
    let projects = load_projects(root, &mut diags);
    let Some(mut domain) = header else {
        return Err(diags.sorted());
    };
    domain.projects = projects.into_iter().map(|(p, _)| p).collect();
    if diags.is_empty() {
        check_domain(root, &domain, &mut diags);
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

fn load_header(root: &Path, diags: &mut Diagnostics) -> Option<Domain> {
    let path = root.join(DOMAIN_FILE);
    if !path.is_file() {
        diags.push(
            Diagnostic::new(DOMAIN_FILE, "", format!("no {DOMAIN_FILE} in `{}`", root.display()))
                .with_help("run `mesh init DIR` to create a domain, or pass `--root` pointing at one"),
        );
        return None;
    }
    let text = read(root, &path, diags)?;
    let raw: RawDomain = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(e) => {
            let msg = e.to_string();
            // serde_json appends " at line L column C"; we print the line ourselves.
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            let help = if msg.starts_with("unknown field") {
                "remove the field; domain.json accepts domain_name, domain_abbr, aws_region, glue_version, python_version, terraform_version, rust_toolchain, aws_accounts, github_repository"
            } else if msg.starts_with("missing field") {
                "add the field; see README.md, section domain.json"
            } else {
                "fix the JSON syntax (a missing comma or quote is the usual cause)"
            };
            diags.push(
                Diagnostic::new(DOMAIN_FILE, "", msg)
                    .at_line(Some(e.line()))
                    .with_help(help),
            );
            return None;
        }
    };
    let mut cx = FileCx {
        file: PathBuf::from(DOMAIN_FILE),
        map: SourceMap::json(&text),
        diags,
    };
    let before = cx.diags.len();

    let name = raw.domain_name.trim().to_string();
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        cx.err_help(
            "domain_name",
            format!("`{}` is not a valid domain name", raw.domain_name),
            "use 1 to 64 lowercase letters, digits, `-` or `_`, e.g. `finance01`",
        );
    }
    let abbr = match DomainAbbr::parse(&raw.domain_abbr) {
        Ok(a) => Some(a),
        Err(e) => {
            cx.err_help(
                "domain_abbr",
                e.to_string(),
                "pick a short code such as `f01`; it prefixes every AWS name",
            );
            None
        }
    };
    if !valid_region(&raw.aws_region) {
        cx.err_help(
            "aws_region",
            format!("`{}` is not an AWS region", raw.aws_region),
            "use a region code such as `eu-west-1` or `us-east-1`",
        );
    }
    let glue = raw.glue_version.clone().unwrap_or_else(|| "5.0".into());
    let python = match GLUE_VERSIONS.iter().find(|(g, _)| *g == glue) {
        None => {
            cx.err_help(
                "glue_version",
                format!("Glue version `{glue}` is not supported"),
                "use `5.0` (Spark 3.5, Python 3.11) or `4.0` (Spark 3.3, Python 3.10)",
            );
            raw.python_version.clone().unwrap_or_default()
        }
        Some((_, py)) => match &raw.python_version {
            Some(p) if p != py => {
                cx.err_help(
                    "python_version",
                    format!("Glue {glue} runs Python {py}, not {p}"),
                    format!("set `python_version` to `{py}` or remove it"),
                );
                p.clone()
            }
            _ => py.to_string(),
        },
    };
    let terraform = raw.terraform_version.clone().unwrap_or_else(|| "1.9.8".into());
    if !is_version(&terraform, 3) {
        cx.err_help(
            "terraform_version",
            format!("`{terraform}` is not a version"),
            "use MAJOR.MINOR.PATCH, e.g. `1.9.8`",
        );
    }
    let rust = raw.rust_toolchain.clone().unwrap_or_else(|| "1.95".into());
    if !is_version(&rust, 2) && !is_version(&rust, 3) {
        cx.err_help(
            "rust_toolchain",
            format!("`{rust}` is not a toolchain version"),
            "use e.g. `1.95`",
        );
    }
    let mut accounts = BTreeMap::new();
    for (env, id) in &raw.aws_accounts {
        match env.parse::<Env>() {
            Ok(e) if e.is_cloud() => {
                if id.len() != 12 || !id.chars().all(|c| c.is_ascii_digit()) {
                    cx.err_help(
                        format!("aws_accounts.{env}"),
                        format!("`{id}` is not an AWS account id"),
                        "account ids are 12 digits, quoted",
                    );
                }
                accounts.insert(e, id.clone());
            }
            _ => cx.err_help(
                "aws_accounts",
                format!("`{env}` is not a cloud environment"),
                "use the keys dev, int and prod (local has no account)",
            ),
        }
    }
    if let Some(repo) = &raw.github_repository {
        if let Err(why) = check_github_repository(repo) {
            cx.err_help(
                "github_repository",
                format!("`{repo}` is not a GitHub repository: {why}"),
                "use `owner/name`, e.g. `acme/finance01-domain`",
            );
        }
    }
    if cx.diags.len() > before {
        return None;
    }
    Some(Domain {
        name,
        abbr: abbr?,
        region: raw.aws_region,
        versions: Versions {
            glue,
            python,
            terraform,
            rust,
        },
        accounts,
        github_repository: raw.github_repository,
        projects: Vec::new(),
    })
}

/// GitHub's rules: an owner of 1–39 letters, digits or inner single hyphens; a repository name
/// of 1–100 letters, digits, `-`, `_` or `.`, not `.` or `..`. The name ends up in an IAM trust
/// condition, so nothing else (no wildcard) may pass.
pub fn check_github_repository(repo: &str) -> Result<(), &'static str> {
    let Some((owner, name)) = repo.split_once('/') else {
        return Err("it has no `/` between owner and name");
    };
    if owner.is_empty()
        || owner.len() > 39
        || owner.starts_with('-')
        || owner.ends_with('-')
        || owner.contains("--")
        || !owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err("the owner must be 1 to 39 letters, digits or single inner hyphens");
    }
    if name.is_empty()
        || name.len() > 100
        || name == "."
        || name == ".."
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err("the name must be 1 to 100 letters, digits, `-`, `_` or `.`");
    }
    Ok(())
}

fn valid_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

fn is_version(v: &str, parts: usize) -> bool {
    let ps: Vec<&str> = v.split('.').collect();
    ps.len() == parts
        && ps
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
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
            if let Some(p) = load_project(root, &folder, &file, &text, diags) {
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

fn load_project(root: &Path, folder: &Path, file: &Path, text: &str, diags: &mut Diagnostics) -> Option<Project> {
    let raw: RawProject = match toml::from_str(text) {
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

    let name = cx.name("name", &raw.name);
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
    let slug = match ProjectSlug::parse(&raw.project_slug) {
        Ok(s) => Some(s),
        Err(e) => {
            cx.err_help("project_slug", e.to_string(), "use a short code such as `pj01`");
            None
        }
    };
    if raw.owner.trim().is_empty() {
        cx.err_help(
            "owner",
            "the owner is empty",
            "name the team or person accountable for this data",
        );
    }
    let classification = match Classification::ALL.iter().find(|c| c.as_str() == raw.classification) {
        Some(c) => Some(*c),
        None => {
            cx.err_help(
                "classification",
                format!("`{}` is not a data classification", raw.classification),
                "use public, internal, confidential or restricted",
            );
            None
        }
    };

    let tables: Vec<Table> = raw
        .tables
        .iter()
        .enumerate()
        .filter_map(|(i, t)| check_table(&mut cx, i, t))
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
    let jobs: Vec<Job> = raw
        .jobs
        .iter()
        .enumerate()
        .filter_map(|(i, j)| check_job(&mut cx, root, &dir, &tables, &raw.tables, i, j))
        .collect();
    let mut seen_jobs = HashMap::new();
    for (i, j) in raw.jobs.iter().enumerate() {
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
    for (i, p) in raw.pipelines.iter().enumerate() {
        if let Some(first) = seen_pipelines.insert(p.name.as_str(), i) {
            cx.err_help(
                format!("pipelines[{i}].name"),
                format!("pipeline `{}` is declared twice (first as pipelines[{first}])", p.name),
                "pipeline names must be unique within a project",
            );
        }
        if let Some(p) = check_pipeline(&mut cx, &raw.jobs, &tables, &raw.tables, i, p) {
            pipelines.push(p);
        }
    }

    if cx.diags.len() > before {
        return None;
    }
    Some(Project {
        name: name?,
        slug: slug?,
        owner: raw.owner,
        contact: raw.contact,
        classification: classification?,
        description: raw.description,
        dir,
        tables,
        jobs,
        pipelines,
    })
}

fn single_char(cx: &mut FileCx<'_>, field: String, value: &Option<String>, default: char) -> char {
    match value {
        None => default,
        // The CSV reader (and Spark's) works on bytes: a multi-byte character would be cut to
        // its first byte, or silently replaced.
        Some(s) if s.chars().count() == 1 && !s.is_ascii() => {
            cx.err_help(
                field,
                format!("`{s}` is not an ASCII character (the CSV reader splits on single bytes)"),
                "use one ASCII character, e.g. \",\", \";\", \"|\" or \"\\t\"",
            );
            default
        }
        Some(s) if s.chars().count() == 1 && s.as_bytes()[0] == 0 => {
            cx.err_help(field, "a NUL character cannot delimit CSV", "use e.g. \",\" or \"\\t\"");
            default
        }
        Some(s) if s.chars().count() == 1 => s.chars().next().unwrap_or(default),
        Some(s) if s == "\\t" => '\t',
        Some(s) => {
            cx.err_help(
                field,
                format!("`{}` is not a single character", crate::diagnostic::truncate(s)),
                "use one character, e.g. \",\" or \"\\t\"",
            );
            default
        }
    }
}

fn check_table(cx: &mut FileCx<'_>, i: usize, t: &RawTable) -> Option<Table> {
    let before = cx.diags.len();
    let f = |field: &str| format!("tables[{i}].{field}");
    let name = cx.name(&f("name"), &t.name);
    let layer = Layer::parse(&t.layer);
    if layer.is_none() {
        cx.err_help(
            f("layer"),
            format!("`{}` is not a layer", t.layer),
            "use raw, refined or curated",
        );
    }

    let mut columns: Vec<Column> = Vec::new();
    if t.columns.is_empty() {
        cx.err_help(
            f("columns"),
            "the table declares no columns",
            "add columns = [{ name = \"id\", type = \"long\" }, …]",
        );
    }
    for (ci, c) in t.columns.iter().enumerate() {
        let cf = |field: &str| format!("tables[{i}].columns[{ci}].{field}");
        let cname = cx.name(&cf("name"), &c.name);
        let ty = ColumnType::parse(&c.data_type);
        if ty.is_none() {
            cx.err_help(
                cf("type"),
                format!("`{}` is not a column type", c.data_type),
                "use boolean, int, long, float, double, decimal(P,S), date, timestamp, timestamptz, string or binary",
            );
        }
        if let (Some(cname), Some(ty)) = (cname, ty) {
            if columns.iter().any(|x| x.name == cname) {
                cx.err_help(
                    cf("name"),
                    format!("column `{cname}` is declared twice"),
                    "column names must be unique",
                );
            }
            columns.push(Column {
                name: cname,
                data_type: ty,
                nullable: c.nullable.unwrap_or(true),
                comment: c.comment.clone(),
            });
        }
    }
    let known_cols: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let find_col = |cx: &mut FileCx<'_>, field: String, col: &str| -> Option<Column> {
        match columns.iter().find(|c| c.name.as_str() == col) {
            Some(c) => Some(c.clone()),
            None => {
                let help = did_you_mean(col, known_cols.iter().copied())
                    .unwrap_or_else(|| format!("declare `{col}` in columns or use one of: {}", known_cols.join(", ")));
                cx.err_help(field, format!("column `{col}` is not declared in this table"), help);
                None
            }
        }
    };

    let mut partition_by = Vec::new();
    for (pi, p) in t.partition_by.iter().enumerate() {
        let field = f(&format!("partition_by[{pi}]"));
        match PartitionField::parse(p) {
            Err(e) => cx.err(field, e).help = Some("e.g. partition_by = [\"day(order_ts)\"]".into()),
            Ok(pf) => {
                if let Some(col) = find_col(cx, field.clone(), pf.column.as_str()) {
                    if !pf.transform.accepts(col.data_type) {
                        cx.err_help(
                            field.clone(),
                            format!("cannot partition by `{pf}`: column `{}` is {}", col.name, col.data_type),
                            "year/month/day need a date or timestamp, hour a timestamp; truncate needs int, long, decimal, string or binary",
                        );
                    }
                }
                if partition_by.iter().any(|x: &PartitionField| x == &pf) {
                    cx.err_help(field, format!("`{pf}` is listed twice"), "remove the duplicate");
                } else {
                    partition_by.push(pf);
                }
            }
        }
    }
    let mut sort_order = Vec::new();
    for (si, s) in t.sort_order.iter().enumerate() {
        let field = f(&format!("sort_order[{si}]"));
        match SortField::parse(s) {
            Err(e) => {
                cx.err(field, e);
            }
            Ok(sf) => {
                if find_col(cx, field, sf.column.as_str()).is_some() {
                    sort_order.push(sf);
                }
            }
        }
    }
    let mut identifier = Vec::new();
    for (ki, k) in t.identifier.iter().enumerate() {
        let field = f(&format!("identifier[{ki}]"));
        if let Some(col) = find_col(cx, field.clone(), k) {
            if col.nullable {
                cx.err_help(
                    field,
                    format!("identifier column `{k}` is nullable"),
                    format!("Iceberg identifier fields must be required: set nullable = false on column `{k}`"),
                );
            }
            identifier.push(col.name);
        }
    }

    let storage = match layer {
        Some(Layer::Raw) => {
            let format = t.format.as_deref().unwrap_or("csv");
            let file_format = match format {
                "csv" => {
                    let raw = t.csv.as_ref();
                    let d = RawCsv::default();
                    let raw = raw.unwrap_or(&d);
                    let delimiter = single_char(cx, f("csv.delimiter"), &raw.delimiter, ',');
                    let quote = single_char(cx, f("csv.quote"), &raw.quote, '"');
                    let escape = raw
                        .escape
                        .as_ref()
                        .map(|_| single_char(cx, f("csv.escape"), &raw.escape, '\\'));
                    Some(RawFormat::Csv(CsvOptions {
                        header: raw.header.unwrap_or(true),
                        delimiter,
                        quote,
                        escape,
                        null_value: raw.null_value.clone().unwrap_or_default(),
                    }))
                }
                "json" => Some(RawFormat::Json),
                "parquet" => Some(RawFormat::Parquet),
                "iceberg" => {
                    cx.err_help(
                        f("format"),
                        "raw tables are Hive-style tables; Iceberg is for the refined and curated layers",
                        "set format to csv, json or parquet, or move the table to layer = \"refined\"",
                    );
                    None
                }
                other => {
                    cx.err_help(
                        f("format"),
                        format!("`{other}` is not a raw file format"),
                        "use csv, json or parquet",
                    );
                    None
                }
            };
            if t.csv.is_some() && format != "csv" {
                cx.err_help(
                    f("csv"),
                    format!("csv options on a {format} table"),
                    "remove the [csv] section or set format = \"csv\"",
                );
            }
            let bad_rows = match t.bad_rows.as_deref() {
                None | Some("fail") => BadRows::Fail,
                Some("quarantine") => BadRows::Quarantine,
                Some(other) => {
                    cx.err_help(
                        f("bad_rows"),
                        format!("`{other}` is not a bad-rows policy"),
                        "use fail or quarantine",
                    );
                    BadRows::Fail
                }
            };
            for (pi, p) in partition_by.iter().enumerate() {
                if p.transform != Transform::Identity {
                    cx.err_help(
                        f(&format!("partition_by[{pi}]")),
                        format!("raw tables are partitioned by Hive folders; `{p}` is an Iceberg transform"),
                        format!(
                            "partition by the column itself (`{}`) or move the table to refined/curated",
                            p.column
                        ),
                    );
                }
            }
            let iceberg_only = [
                ("sort_order", !t.sort_order.is_empty()),
                ("identifier", !t.identifier.is_empty()),
                ("target_file_size_mb", t.target_file_size_mb.is_some()),
                ("schema_evolution", t.schema_evolution.is_some()),
                ("optimizers", t.optimizers.is_some()),
            ];
            for (key, present) in iceberg_only {
                if present {
                    cx.err_help(
                        f(key),
                        format!("`{key}` applies to Iceberg tables only; this table is in the raw layer"),
                        "remove it, or move the table to layer = \"refined\" or \"curated\"",
                    );
                }
            }
            file_format.map(|file_format| Storage::Hive(HiveOptions { file_format, bad_rows }))
        }
        Some(_) => {
            match t.format.as_deref() {
                None | Some("iceberg") => {}
                Some(other) => cx.err_help(
                    f("format"),
                    format!(
                        "{} tables are Iceberg tables; `{other}` applies to the raw layer only",
                        t.layer
                    ),
                    "remove `format` (or set it to \"iceberg\")",
                ),
            }
            for (key, present) in [("csv", t.csv.is_some()), ("bad_rows", t.bad_rows.is_some())] {
                if present {
                    cx.err_help(f(key), format!("`{key}` applies to raw tables only"), "remove it");
                }
            }
            let target = t
                .target_file_size_mb
                .unwrap_or(crate::model::DEFAULT_TARGET_FILE_SIZE_MB);
            if !(1..=4096).contains(&target) {
                cx.err_help(
                    f("target_file_size_mb"),
                    format!("{target} MB is out of range"),
                    "use 1 to 4096 (Iceberg's default is 512)",
                );
            }
            let optimizers = check_optimizers(cx, i, t.optimizers.as_ref(), target);
            Some(Storage::Iceberg(IcebergOptions {
                target_file_size_mb: target,
                schema_evolution: t.schema_evolution.unwrap_or(true),
                optimizers,
            }))
        }
        None => None,
    };

    if cx.diags.len() > before {
        return None;
    }
    Some(Table {
        name: name?,
        layer: layer?,
        description: t.description.clone(),
        columns,
        partition_by,
        sort_order,
        identifier,
        storage: storage?,
    })
}

fn check_optimizers(cx: &mut FileCx<'_>, i: usize, raw: Option<&RawOptimizers>, target: u32) -> Optimizers {
    let f = |field: &str| format!("tables[{i}].optimizers.{field}");
    let d = RawOptimizers::default();
    let raw = raw.unwrap_or(&d);
    let run_rate_hours = raw.run_rate_hours.unwrap_or(Optimizers::DEFAULT_RUN_RATE_HOURS);
    if !(3..=168).contains(&run_rate_hours) {
        cx.err_help(
            f("run_rate_hours"),
            format!("{run_rate_hours} hours is out of range"),
            "Glue runs optimizers every 3 to 168 hours",
        );
    }
    let compaction = match &raw.compaction {
        Some(c) if c.enabled == Some(false) => None,
        c => {
            let c = c.as_ref();
            let d = Compaction::default();
            let out = Compaction {
                target_file_size_mb: c.and_then(|c| c.target_file_size_mb).unwrap_or(target),
                min_file_size_ratio: c.and_then(|c| c.min_file_size_ratio).unwrap_or(d.min_file_size_ratio),
                min_input_files: c.and_then(|c| c.min_input_files).unwrap_or(d.min_input_files),
                delete_file_threshold: c
                    .and_then(|c| c.delete_file_threshold)
                    .unwrap_or(d.delete_file_threshold),
            };
            if !(out.min_file_size_ratio > 0.0 && out.min_file_size_ratio < 1.0) {
                cx.err_help(
                    f("compaction.min_file_size_ratio"),
                    "must be between 0 and 1 (exclusive)",
                    "Iceberg's default is 0.75",
                );
            }
            if out.min_input_files < 2 {
                cx.err_help(
                    f("compaction.min_input_files"),
                    "compacting fewer than 2 files rewrites data for nothing",
                    "use 2 or more (default 5)",
                );
            }
            Some(out)
        }
    };
    let retention = match &raw.retention {
        Some(r) if r.enabled == Some(false) => None,
        r => {
            let r = r.as_ref();
            let d = Retention::default();
            let out = Retention {
                snapshot_retention_days: r
                    .and_then(|r| r.snapshot_retention_days)
                    .unwrap_or(d.snapshot_retention_days),
                retain_last: r.and_then(|r| r.retain_last).unwrap_or(d.retain_last),
                clean_expired_files: r.and_then(|r| r.clean_expired_files).unwrap_or(d.clean_expired_files),
            };
            if out.retain_last == 0 {
                cx.err_help(
                    f("retention.retain_last"),
                    "retain_last = 0 would expire the current snapshot",
                    "keep at least 1 snapshot",
                );
            }
            if out.snapshot_retention_days == 0 {
                cx.err_help(
                    f("retention.snapshot_retention_days"),
                    "0 days would expire snapshots readers may still use",
                    "use 1 or more days (default 5)",
                );
            }
            if out.snapshot_retention_days > MAX_RETENTION_DAYS {
                cx.err_help(
                    f("retention.snapshot_retention_days"),
                    format!(
                        "{} days is beyond any date the engines can compute",
                        out.snapshot_retention_days
                    ),
                    format!(
                        "use at most {MAX_RETENTION_DAYS} days (100 years), or enabled = false to keep every snapshot"
                    ),
                );
            }
            Some(out)
        }
    };
    let orphans = match &raw.orphans {
        Some(o) if o.enabled == Some(false) => None,
        o => {
            let days = o
                .as_ref()
                .and_then(|o| o.retention_days)
                .unwrap_or(OrphanCleanup::default().retention_days);
            if days < 1 {
                cx.err_help(
                    f("orphans.retention_days"),
                    "orphan cleanup younger than 1 day can delete files of writes still in flight",
                    "use 1 or more days (default 3)",
                );
            }
            if days > MAX_RETENTION_DAYS {
                cx.err_help(
                    f("orphans.retention_days"),
                    format!("{days} days is beyond any date the engines can compute"),
                    format!("use at most {MAX_RETENTION_DAYS} days (100 years), or enabled = false"),
                );
            }
            Some(OrphanCleanup { retention_days: days })
        }
    };
    Optimizers {
        compaction,
        retention,
        orphans,
        run_rate_hours,
    }
}

/// Resolves `layer.table` against the project's tables, with hints.
fn resolve_ref(
    cx: &mut FileCx<'_>,
    field: String,
    value: &str,
    tables: &[Table],
    raw_tables: &[RawTable],
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
    if raw_tables.iter().any(|t| t.layer == layer_s && t.name == table_s) {
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

fn check_job(
    cx: &mut FileCx<'_>,
    root: &Path,
    dir: &Path,
    tables: &[Table],
    raw_tables: &[RawTable],
    i: usize,
    j: &RawJob,
) -> Option<Job> {
    let before = cx.diags.len();
    let f = |field: &str| format!("jobs[{i}].{field}");
    let name = cx.name(&f("name"), &j.name);

    let sql_rel = Path::new(&j.sql);
    let escapes = sql_rel.is_absolute() || sql_rel.components().any(|c| matches!(c, Component::ParentDir));
    let sql = dir.join(sql_rel);
    if escapes {
        cx.err_help(
            f("sql"),
            format!("`{}` points outside the project folder", j.sql),
            "keep SQL files in the project, e.g. sql = \"sql/daily_sales.sql\"",
        );
    } else if !root.join(&sql).is_file() {
        cx.err_help(
            f("sql"),
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
            f("sql"),
            format!(
                "SQL file `{}` is a link to a file outside the project folder",
                sql.display()
            ),
            "copy the SQL into the project's sql/ folder instead of linking to it",
        );
    }

    let mut inputs = Vec::new();
    for (ii, input) in j.inputs.iter().enumerate() {
        if let Some(r) = resolve_ref(cx, f(&format!("inputs[{ii}]")), input, tables, raw_tables) {
            inputs.push(r);
        }
    }
    let output = resolve_ref(cx, f("output"), &j.output, tables, raw_tables);
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

    let mut checks = Vec::new();
    for (ci, c) in j.checks.iter().enumerate() {
        if let Some(c) = check_check(cx, i, ci, c, out_table) {
            checks.push(c);
        }
    }
    for key in j.params.keys() {
        if Name::parse(key).is_err() {
            cx.err_help(
                f("params"),
                format!("parameter `{key}` is not a valid name"),
                "use snake_case, e.g. run_date",
            );
        }
    }
    let param_types = check_param_types(cx, i, j);
    let glue = check_glue(cx, i, j.glue.as_ref());
    let (incremental, time_range) = check_daily(cx, i, j, &inputs, out_table);
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
        output: output?,
        mode: mode?,
        checks,
        params: j.params.clone(),
        param_types,
        glue,
        incremental,
        time_range,
    })
}

/// Longest retention window in days (100 years): longer ones overflow date arithmetic.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// Whether `path`, with every link resolved, lies inside `dir` (also resolved).
pub fn resolves_inside(path: &Path, dir: &Path) -> bool {
    match (path.canonicalize(), dir.canonicalize()) {
        (Ok(p), Ok(d)) => p.starts_with(d),
        _ => false,
    }
}

/// Declared parameter types are known types, and each default value parses as its type.
fn check_param_types(cx: &mut FileCx<'_>, i: usize, j: &RawJob) -> BTreeMap<String, crate::param::ParamType> {
    use crate::param::ParamType;
    let mut types = BTreeMap::new();
    for (key, ty) in &j.param_types {
        match ParamType::parse(ty) {
            Some(t) => {
                types.insert(key.clone(), t);
            }
            None => cx.err_help(
                format!("jobs[{i}].param_types.{key}"),
                format!("`{}` is not a parameter type", crate::diagnostic::truncate(ty)),
                format!("use one of: {}", ParamType::NAMES.join(", ")),
            ),
        }
    }
    for (key, value) in &j.params {
        let ty = types.get(key).copied().unwrap_or_default();
        if let Err(why) = ty.check(value) {
            cx.err_help(
                format!("jobs[{i}].params.{key}"),
                format!("default `{}` is not a {ty}: {why}", crate::diagnostic::truncate(value)),
                "fix the value or its type in param_types",
            );
        }
    }
    types
}

fn check_merge(cx: &mut FileCx<'_>, i: usize, m: Option<&RawMerge>, out: Option<&Table>) -> Option<MergeSpec> {
    let f = |field: &str| format!("jobs[{i}].merge.{field}");
    let keys_raw: Vec<String> = match m.and_then(|m| m.keys.clone()) {
        Some(k) => k,
        None => out
            .map(|t| t.identifier.iter().map(|n| n.to_string()).collect())
            .unwrap_or_default(),
    };
    if keys_raw.is_empty() {
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
    for (ki, k) in keys_raw.iter().enumerate() {
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

fn check_check(cx: &mut FileCx<'_>, i: usize, ci: usize, c: &RawCheck, out: Option<&Table>) -> Option<Check> {
    let f = |field: &str| format!("jobs[{i}].checks[{ci}].{field}");
    let before = cx.diags.len();
    let severity = match c.severity.as_deref() {
        None | Some("error") => Severity::Error,
        Some("warn") => Severity::Warn,
        Some(other) => {
            cx.err_help(
                f("severity"),
                format!("`{other}` is not a severity"),
                "use error (commits nothing on failure) or warn",
            );
            Severity::Error
        }
    };
    let col = |cx: &mut FileCx<'_>, field: String, name: &str| -> Option<Name> {
        let n = cx.name(&field, name)?;
        if let Some(t) = out {
            if t.column(name).is_none() {
                let help = did_you_mean(name, t.columns.iter().map(|c| c.name.as_str()))
                    .unwrap_or_else(|| format!("checks run on the output table `{}`", t.reference()));
                cx.err_help(
                    field,
                    format!("column `{name}` is not in the output table `{}`", t.reference()),
                    help,
                );
                return None;
            }
        }
        Some(n)
    };
    let need = |cx: &mut FileCx<'_>, key: &str, present: bool| {
        if !present {
            cx.err_help(
                f(key),
                format!("a `{}` check needs `{key}`", c.kind),
                format!("add {key} = …"),
            );
        }
        present
    };
    let allowed: &[&str] = match c.kind.as_str() {
        "not_null" | "unique" => &["columns"],
        "accepted_values" => &["column", "values"],
        "range" => &["column", "min", "max"],
        "row_count_min" => &["min"],
        "sql" => &["sql"],
        _ => &[],
    };
    let present = [
        ("columns", c.columns.is_some()),
        ("column", c.column.is_some()),
        ("values", c.values.is_some()),
        ("min", c.min.is_some()),
        ("max", c.max.is_some()),
        ("sql", c.sql.is_some()),
    ];
    let kind = match c.kind.as_str() {
        "not_null" | "unique" => {
            if need(cx, "columns", c.columns.as_ref().is_some_and(|v| !v.is_empty())) {
                let cols: Vec<Name> = c
                    .columns
                    .iter()
                    .flatten()
                    .enumerate()
                    .filter_map(|(k, name)| col(cx, f(&format!("columns[{k}]")), name))
                    .collect();
                Some(if c.kind == "unique" {
                    CheckKind::Unique { columns: cols }
                } else {
                    CheckKind::NotNull { columns: cols }
                })
            } else {
                None
            }
        }
        "accepted_values" => {
            let has = need(cx, "column", c.column.is_some())
                & need(cx, "values", c.values.as_ref().is_some_and(|v| !v.is_empty()));
            if has {
                let column = col(cx, f("column"), c.column.as_deref().unwrap_or_default());
                let values = c
                    .values
                    .iter()
                    .flatten()
                    .map(|v| match v {
                        toml::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                column.map(|column| CheckKind::AcceptedValues { column, values })
            } else {
                None
            }
        }
        "range" => {
            if need(cx, "column", c.column.is_some()) {
                if c.min.is_none() && c.max.is_none() {
                    cx.err_help(
                        f("min"),
                        "a range check needs min, max or both",
                        "add min = 0 and/or max = …",
                    );
                }
                for (field, v) in [("min", c.min), ("max", c.max)] {
                    if let Some(v) = v.filter(|v| !v.is_finite()) {
                        // NaN compares false with everything and becomes the SQL name `nan`.
                        cx.err_help(
                            f(field),
                            format!("{v} is not a finite number"),
                            "use a number such as 0 or 1e6, or leave it out for an open range",
                        );
                    }
                }
                if let (Some(lo), Some(hi)) = (c.min, c.max) {
                    if lo > hi {
                        cx.err_help(f("min"), format!("min {lo} is greater than max {hi}"), "swap them");
                    }
                }
                col(cx, f("column"), c.column.as_deref().unwrap_or_default()).map(|column| CheckKind::Range {
                    column,
                    min: c.min,
                    max: c.max,
                })
            } else {
                None
            }
        }
        "row_count_min" => match c.min {
            Some(m) if m >= 0.0 && m.fract() == 0.0 && m <= 9.0e15 => Some(CheckKind::RowCountMin { min: m as u64 }),
            Some(m) => {
                cx.err_help(f("min"), format!("{m} is not a row count"), "use a whole number ≥ 0");
                None
            }
            None => {
                need(cx, "min", false);
                None
            }
        },
        "sql" => {
            if need(cx, "sql", c.sql.as_ref().is_some_and(|s| !s.trim().is_empty())) {
                Some(CheckKind::Sql {
                    sql: c.sql.clone().unwrap_or_default(),
                })
            } else {
                None
            }
        }
        other => {
            cx.err_help(
                f("type"),
                format!("`{other}` is not a check type"),
                did_you_mean(
                    other,
                    ["not_null", "unique", "accepted_values", "range", "row_count_min", "sql"],
                )
                .unwrap_or_else(|| "use not_null, unique, accepted_values, range, row_count_min or sql".into()),
            );
            None
        }
    };
    if !allowed.is_empty() {
        for (key, is_present) in present {
            if is_present && !allowed.contains(&key) {
                cx.err_help(
                    f(key),
                    format!("`{key}` does not apply to a `{}` check", c.kind),
                    format!("a `{}` check takes: {}", c.kind, allowed.join(", ")),
                );
            }
        }
    }
    if cx.diags.len() > before {
        return None;
    }
    let kind = kind?;
    let name = c.name.clone().unwrap_or_else(|| match &kind {
        CheckKind::NotNull { columns } | CheckKind::Unique { columns } => {
            format!(
                "{}({})",
                kind.type_name(),
                columns.iter().map(Name::as_str).collect::<Vec<_>>().join(", ")
            )
        }
        CheckKind::AcceptedValues { column, .. } | CheckKind::Range { column, .. } => {
            format!("{}({column})", kind.type_name())
        }
        CheckKind::RowCountMin { min } => format!("row_count_min({min})"),
        CheckKind::Sql { .. } => format!("sql_check_{ci}"),
    });
    Some(Check { name, severity, kind })
}

fn check_glue(cx: &mut FileCx<'_>, i: usize, g: Option<&RawGlue>) -> GlueSizing {
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
            "Glue allows 0 to 10 retries",
        );
    }
    GlueSizing {
        worker_type,
        workers,
        timeout_minutes,
        max_retries,
    }
}

/// EventBridge Scheduler accepts `cron(6 fields)` with `?` in day-of-month or day-of-week, or `rate(N unit)`.
pub fn check_schedule(expr: &str) -> Result<(), String> {
    if let Some(inner) = expr.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')) {
        let fields: Vec<&str> = inner.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(format!(
                "`{expr}` has {} fields; EventBridge cron has 6: minutes hours day-of-month month day-of-week year",
                fields.len()
            ));
        }
        if fields[2] != "?" && fields[4] != "?" {
            return Err(format!("`{expr}`: one of day-of-month and day-of-week must be `?`"));
        }
        let ok = |f: &str| f.chars().all(|c| c.is_ascii_alphanumeric() || ",-*/?LW#".contains(c));
        if let Some(bad) = fields.iter().find(|f| !ok(f)) {
            return Err(format!("`{expr}`: `{bad}` is not a cron field"));
        }
        return Ok(());
    }
    if let Some(inner) = expr.strip_prefix("rate(").and_then(|s| s.strip_suffix(')')) {
        let parts: Vec<&str> = inner.split_whitespace().collect();
        return match parts.as_slice() {
            [n, unit]
                if n.parse::<u32>().is_ok_and(|n| n > 0)
                    && ["minute", "minutes", "hour", "hours", "day", "days"].contains(unit) =>
            {
                Ok(())
            }
            _ => Err(format!(
                "`{expr}` is not a rate; write e.g. rate(1 hour) or rate(15 minutes)"
            )),
        };
    }
    Err(format!(
        "`{expr}` is not a schedule; write cron(0 6 * * ? *) or rate(1 day)"
    ))
}

fn check_pipeline(
    cx: &mut FileCx<'_>,
    jobs: &[RawJob],
    tables: &[Table],
    raw_tables: &[RawTable],
    i: usize,
    p: &RawPipeline,
) -> Option<Pipeline> {
    let before = cx.diags.len();
    let f = |field: &str| format!("pipelines[{i}].{field}");
    let name = cx.name(&f("name"), &p.name);
    if let Some(s) = &p.schedule {
        if let Err(e) = check_schedule(s) {
            cx.err_help(
                f("schedule"),
                e,
                "EventBridge Scheduler syntax: cron(minutes hours day-of-month month day-of-week year)",
            );
        }
    }
    let max_concurrency = p.max_concurrency.unwrap_or(4);
    if !(1..=64).contains(&max_concurrency) {
        cx.err_help(
            f("max_concurrency"),
            format!("{max_concurrency} is out of range"),
            "use 1 to 64",
        );
    }
    for (ei, e) in p.alert_emails.iter().enumerate() {
        let valid = e.split_once('@').is_some_and(|(a, b)| !a.is_empty() && b.contains('.'));
        if !valid {
            cx.err_help(
                f(&format!("alert_emails[{ei}]")),
                format!("`{e}` is not an email address"),
                "use name@example.com",
            );
        }
    }
    if p.steps.is_empty() {
        cx.err_help(
            f("steps"),
            "the pipeline has no steps",
            "add [[pipelines.steps]] entries with job = \"…\"",
        );
    }

    let mut steps: Vec<Step> = Vec::new();
    for (si, s) in p.steps.iter().enumerate() {
        let sf = |field: &str| format!("pipelines[{i}].steps[{si}].{field}");
        let action = match (&s.job, &s.optimize) {
            (Some(job), None) => {
                if jobs.iter().any(|j| &j.name == job) {
                    Name::parse(job).ok().map(StepAction::Job)
                } else {
                    let help = did_you_mean(job, jobs.iter().map(|j| j.name.as_str()))
                        .unwrap_or_else(|| "declare the job in [[jobs]] first".into());
                    cx.err_help(sf("job"), format!("job `{job}` is not declared in this project"), help);
                    None
                }
            }
            (None, Some(target)) => {
                let found = target
                    .split_once('.')
                    .and_then(|(l, t)| tables.iter().find(|x| x.layer.as_str() == l && x.name.as_str() == t));
                match found {
                    Some(t) if t.layer.is_iceberg() => Some(StepAction::Optimize(t.reference())),
                    Some(t) => {
                        cx.err_help(
                            sf("optimize"),
                            format!(
                                "`{}` is a raw (Hive) table; only Iceberg tables are optimized",
                                t.reference()
                            ),
                            "optimize a refined or curated table",
                        );
                        None
                    }
                    // Declared but invalid tables were already reported; don't pile on.
                    None if raw_tables
                        .iter()
                        .any(|t| Some((t.layer.as_str(), t.name.as_str())) == target.split_once('.')) =>
                    {
                        None
                    }
                    None => {
                        let known: Vec<String> = tables
                            .iter()
                            .filter(|t| t.layer.is_iceberg())
                            .map(|t| t.reference().to_string())
                            .collect();
                        let help = did_you_mean(target, known.iter().map(String::as_str))
                            .unwrap_or_else(|| "write `layer.table` of an Iceberg table of this project".into());
                        cx.err_help(
                            sf("optimize"),
                            format!("table `{target}` is not declared in this project"),
                            help,
                        );
                        None
                    }
                }
            }
            (Some(_), Some(_)) => {
                cx.err_help(
                    sf("job"),
                    "a step has both `job` and `optimize`",
                    "split it into two steps",
                );
                None
            }
            (None, None) => {
                cx.err_help(
                    format!("pipelines[{i}].steps[{si}]"),
                    "a step needs `job` or `optimize`",
                    "add job = \"name\"",
                );
                None
            }
        };
        let step_name = s.name.clone().or_else(|| match &action {
            Some(StepAction::Job(j)) => Some(j.to_string()),
            Some(StepAction::Optimize(t)) => Some(format!("optimize_{}", t.table)),
            None => None,
        });
        let step_name = step_name.and_then(|n| cx.name(&sf("name"), &n));
        let retries = s.retries.unwrap_or(0);
        if retries > 10 {
            cx.err_help(
                sf("retries"),
                format!("{retries} retries is out of range"),
                "use 0 to 10",
            );
        }
        let mut depends_on = Vec::new();
        for (di, d) in s.depends_on.iter().enumerate() {
            if let Some(n) = cx.name(&sf(&format!("depends_on[{di}]")), d) {
                depends_on.push(n);
            }
        }
        if let (Some(action), Some(step_name)) = (action, step_name) {
            if steps.iter().any(|x| x.name == step_name) {
                cx.err_help(
                    sf("name"),
                    format!("step `{step_name}` appears twice"),
                    "give the second one a different `name`",
                );
            }
            steps.push(Step {
                name: step_name,
                action,
                depends_on,
                retries,
                retry_backoff_seconds: s.retry_backoff_seconds.unwrap_or(30),
            });
        }
    }
    if cx.diags.len() > before {
        return None;
    }
    // References and cycles, only once every step parsed.
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    for (si, s) in steps.iter().enumerate() {
        for (di, d) in s.depends_on.iter().enumerate() {
            if !names.contains(&d.as_str()) {
                let help = did_you_mean(d.as_str(), names.iter().copied())
                    .unwrap_or_else(|| format!("steps are: {}", names.join(", ")));
                cx.err_help(
                    format!("pipelines[{i}].steps[{si}].depends_on[{di}]"),
                    format!("step `{d}` does not exist in this pipeline"),
                    help,
                );
            }
            if d == &s.name {
                cx.err_help(
                    format!("pipelines[{i}].steps[{si}].depends_on[{di}]"),
                    format!("step `{d}` depends on itself"),
                    "remove it from depends_on",
                );
            }
        }
    }
    if cx.diags.len() > before {
        return None;
    }
    let steps = match topo_sort(&steps) {
        Ok(s) => s,
        Err(cycle) => {
            cx.err_help(
                f("steps"),
                format!("the steps form a cycle: {}", cycle.join(" → ")),
                "remove one of these depends_on links",
            );
            return None;
        }
    };
    Some(Pipeline {
        name: name?,
        description: p.description.clone(),
        schedule: p.schedule.clone(),
        max_concurrency,
        alert_emails: p.alert_emails.clone(),
        steps,
    })
}

/// Orders steps so dependencies come first (stable: declaration order among ready steps),
/// or returns one cycle.
fn topo_sort(steps: &[Step]) -> Result<Vec<Step>, Vec<String>> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    while out.len() < steps.len() {
        let ready = steps
            .iter()
            .find(|s| !done.contains(s.name.as_str()) && s.depends_on.iter().all(|d| done.contains(d.as_str())));
        match ready {
            Some(s) => {
                done.insert(s.name.as_str());
                out.push(s.clone());
            }
            None => {
                // Follow unmet dependencies from any blocked step until a name repeats.
                let mut path: Vec<String> = Vec::new();
                let mut cur = steps
                    .iter()
                    .find(|s| !done.contains(s.name.as_str()))
                    .map(|s| s.name.as_str());
                while let Some(c) = cur {
                    if let Some(pos) = path.iter().position(|p| p == c) {
                        let mut cycle = path[pos..].to_vec();
                        cycle.push(c.to_string());
                        return Err(cycle);
                    }
                    path.push(c.to_string());
                    cur = steps
                        .iter()
                        .find(|s| s.name.as_str() == c)
                        .and_then(|s| s.depends_on.iter().find(|d| !done.contains(d.as_str())))
                        .map(Name::as_str);
                }
                return Err(path);
            }
        }
    }
    Ok(out)
}

/// Rules that span projects: unique slugs and names, unique tables per database, and every
/// derived AWS name within its limits in every environment.
fn check_domain(root: &Path, domain: &Domain, diags: &mut Diagnostics) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, deps: &[&str]) -> Step {
        Step {
            name: Name::parse(name).unwrap(),
            action: StepAction::Job(Name::parse(name).unwrap()),
            depends_on: deps.iter().map(|d| Name::parse(d).unwrap()).collect(),
            retries: 0,
            retry_backoff_seconds: 1,
        }
    }

    #[test]
    fn github_repositories_are_owner_slash_name_and_nothing_wider() {
        for ok in ["acme/finance01", "a/b", "Acme-Corp/repo.name_2", "x/.github"] {
            assert_eq!(check_github_repository(ok), Ok(()), "{ok}");
        }
        for bad in [
            "acme",
            "acme/*",
            "*/*",
            "/repo",
            "acme/",
            "-acme/r",
            "ac--me/r",
            "acme/..",
            "acme/r/x",
            "acme/r:ref",
        ] {
            assert!(check_github_repository(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn topo_orders_dependencies_first() {
        let s = topo_sort(&[step("c", &["b"]), step("a", &[]), step("b", &["a"])]).unwrap();
        let names: Vec<_> = s.iter().map(|s| s.name.to_string()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn topo_reports_a_cycle() {
        let cycle = topo_sort(&[step("a", &["c"]), step("b", &["a"]), step("c", &["b"]), step("d", &[])]).unwrap_err();
        assert_eq!(cycle.first(), cycle.last());
        assert!(cycle.len() == 4, "{cycle:?}");
    }

    #[test]
    fn schedules() {
        assert!(check_schedule("cron(0 6 * * ? *)").is_ok());
        assert!(check_schedule("rate(1 hour)").is_ok());
        assert!(check_schedule("cron(0 6 * * *)").is_err());
        assert!(check_schedule("cron(0 6 1 * MON *)").is_err());
        assert!(check_schedule("0 6 * * *").is_err());
    }

    #[test]
    fn snake_suggestions() {
        assert_eq!(suggest_snake("DailySales"), "daily_sales");
        assert_eq!(suggest_snake("daily-sales"), "daily_sales");
        assert_eq!(suggest_snake("9lives"), "t_9lives");
    }
}

// ---------------------------------------------------------------------------------------------
// Daily operation: incremental inputs, time-range jobs, and the daily-overwrite trap.

/// `[jobs.incremental]` and `[jobs.time_range]` of job `i`.
fn check_daily(
    cx: &mut FileCx<'_>,
    i: usize,
    j: &RawJob,
    inputs: &[TableRef],
    out_table: Option<&Table>,
) -> (Option<Incremental>, Option<TimeRange>) {
    let f = |field: &str| format!("jobs[{i}].{field}");
    let mode = j.mode.as_deref().unwrap_or("append");
    let incremental = j.incremental.as_ref().and_then(|inc| {
        let before = cx.diags.len();
        let mut refs = Vec::new();
        if inc.inputs.is_empty() {
            cx.err_help(
                f("incremental.inputs"),
                "an incremental job names the inputs it reads incrementally",
                format!("e.g. inputs = [\"{}\"]", j.inputs.first().map(String::as_str).unwrap_or("raw.events")),
            );
        }
        for (k, name) in inc.inputs.iter().enumerate() {
            match inputs.iter().find(|r| r.to_string() == *name) {
                Some(r) => refs.push(r.clone()),
                None => cx.err_help(
                    f(&format!("incremental.inputs[{k}]")),
                    format!("`{name}` is not one of the job's inputs"),
                    format!("the job's inputs are: {}", j.inputs.join(", ")),
                ),
            }
        }
        let on_rewrite = match inc.on_rewrite.as_deref() {
            None | Some("error") => OnRewrite::Error,
            Some("full_read") => OnRewrite::FullRead,
            Some(other) => {
                cx.err_help(
                    f("incremental.on_rewrite"),
                    format!("`{other}` is not a choice"),
                    "use \"error\" (fail, naming the snapshot) or \"full_read\"",
                );
                OnRewrite::Error
            }
        };
        if !matches!(mode, "append" | "merge") {
            cx.err_help(
                f("mode"),
                format!("an incremental job cannot use mode `{mode}`: each run sees only the new input, so replacing the output with it loses what earlier runs wrote"),
                "use mode = \"append\" or \"merge\", or a time-range job ([jobs.time_range]) to recompute whole intervals",
            );
        }
        (cx.diags.len() == before).then_some(Incremental {
            inputs: refs,
            on_rewrite,
        })
    });
    let time_range = j.time_range.as_ref().and_then(|tr| {
        let before = cx.diags.len();
        let grain = Grain::parse(&tr.grain);
        if grain.is_none() {
            cx.err_help(
                f("time_range.grain"),
                format!("`{}` is not a grain", tr.grain),
                "use \"hour\", \"day\" or \"month\"",
            );
        }
        let column = cx.name(&f("time_range.column"), &tr.column);
        if let (Some(t), Some(c)) = (out_table, &column) {
            match t.column(c.as_str()) {
                None => cx.err_maybe_help(
                    f("time_range.column"),
                    format!("`{c}` is not a column of `{}`", t.reference()),
                    did_you_mean(c.as_str(), t.columns.iter().map(|c| c.name.as_str())),
                ),
                Some(col) => {
                    let time = matches!(
                        col.data_type,
                        ColumnType::Date | ColumnType::Timestamp | ColumnType::Timestamptz
                    );
                    if !time || (col.data_type == ColumnType::Date && grain == Some(Grain::Hour)) {
                        cx.err_help(
                            f("time_range.column"),
                            format!(
                                "`{c}` is a {} column, which cannot hold {} intervals",
                                col.data_type, tr.grain
                            ),
                            "pick a date or timestamp column (hour grain needs a timestamp)",
                        );
                    }
                }
            }
        }
        if mode != "overwrite" {
            cx.err_help(
                f("mode"),
                format!("a time-range job replaces exactly its interval's rows; mode `{mode}` does not fit"),
                "set mode = \"overwrite\" (with [jobs.time_range] it overwrites only the interval)",
            );
        }
        if j.incremental.is_some() {
            cx.err_help(
                f("time_range"),
                "a job is either incremental or time-range, not both",
                "a time-range job recomputes its interval from the full inputs; drop [jobs.incremental]",
            );
        }
        (cx.diags.len() == before).then_some(TimeRange {
            column: column?,
            grain: grain?,
        })
    });
    (incremental, time_range)
}

/// The grain a `${param}` name suggests (`run_date` → day, `run_hour` → hour).
fn param_grain(name: &str) -> Option<Grain> {
    if name.contains("hour") {
        Some(Grain::Hour)
    } else if name.contains("date") || name.contains("day") {
        Some(Grain::Day)
    } else if name.contains("month") {
        Some(Grain::Month)
    } else {
        None
    }
}

/// The data-loss trap: an `overwrite_partitions` job filtering its input by a daily (or hourly)
/// run parameter into a table partitioned by month replaces the whole month with one day.
fn check_overwrite_trap(cx: &mut FileCx<'_>, i: usize, sql: &str, out: &Table) {
    // The finest time grain of the partition spec; no time partition = the whole table.
    let part_grain = out
        .partition_by
        .iter()
        .filter_map(|p| match p.transform {
            Transform::Hour => Some((0, "hour")),
            Transform::Day => Some((1, "day")),
            Transform::Identity
                if out
                    .column(p.column.as_str())
                    .is_some_and(|c| c.data_type == ColumnType::Date) =>
            {
                Some((1, "day"))
            }
            Transform::Month => Some((2, "month")),
            Transform::Year => Some((3, "year")),
            _ => None,
        })
        .min();
    let mut rest = sql;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        rest = &after[end + 1..];
        let Some(g) = param_grain(name) else { continue };
        let finer = match g {
            Grain::Hour => 0,
            Grain::Day => 1,
            Grain::Month => 2,
        };
        let (coarse, label) = part_grain.unwrap_or((4, "the whole table"));
        if finer < coarse {
            let partitions = if part_grain.is_some() {
                format!("partitions by {label}")
            } else {
                label.to_string()
            };
            cx.err_help(
                format!("jobs[{i}].mode"),
                format!(
                    "overwrite_partitions with a filter on `${{{name}}}` (one {}) into `{}`, which {partitions}: each run replaces every row of its {label} with one {}, losing the rest",
                    g.as_str(),
                    out.reference(),
                    g.as_str()
                ),
                format!(
                    "make it a time-range job: mode = \"overwrite\" and [jobs.time_range] column = \"…\", grain = \"{}\" (overwrites exactly the interval), then backfill with `mesh run --from DATE --to DATE`",
                    g.as_str()
                ),
            );
            return;
        }
    }
}
