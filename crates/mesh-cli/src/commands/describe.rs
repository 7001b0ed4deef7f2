//! `mesh describe`: the domain as a tree, or one table with everything about it; also the
//! text view of `mesh names`.

use std::path::Path;

use mesh_domain::{
    BadRows, Domain, Env, Job, NameSheet, Naming, OnDuplicate, Project, RawFormat, StepAction, Storage, Table,
    WriteMode,
};

use crate::cli::Format;
use crate::common::{load, print_json};
use crate::exit::Failure;

pub fn run(root_flag: Option<&Path>, table: Option<String>, format: Format) -> Result<(), Failure> {
    let domain = load(root_flag)?;
    if let Some(name) = table {
        let naming = Naming::new(&domain.abbr, Env::Local);
        let (project, t) = domain.find_table(&naming, &name)?;
        let view = TableView::of(&domain, &naming, project, t);
        match format {
            Format::Json => print_json(&view),
            Format::Text => print!("{}", view.text()),
        }
        return Ok(());
    }
    match format {
        Format::Json => print_json(&domain),
        Format::Text => print!("{}", tree(&domain)),
    }
    Ok(())
}

/// What a job does, in words: a time-range job replaces one interval per run, an incremental
/// one reads only new input; then its write mode (a merge with its keys) and its checks.
pub fn job_label(j: &Job) -> String {
    let mut parts = Vec::new();
    if let Some(tr) = &j.time_range {
        parts.push(format!(
            "time-range: replaces one {} of {} per run",
            tr.grain, tr.column
        ));
    } else {
        parts.push(match &j.mode {
            WriteMode::Merge(m) => {
                let keys: Vec<&str> = m.keys.iter().map(|k| k.as_str()).collect();
                let mut s = format!("merge on {}", keys.join(", "));
                if let OnDuplicate::KeepLatest { order_by } = &m.on_duplicate {
                    s += &format!(", latest by {order_by}");
                }
                if m.delete_when.is_some() {
                    s += ", deletes";
                }
                s
            }
            other => other.as_str().to_string(),
        });
        if let Some(inc) = &j.incremental {
            let inputs: Vec<String> = inc.inputs.iter().map(|i| i.to_string()).collect();
            parts.push(format!("incremental: only new rows of {}", inputs.join(", ")));
        }
    }
    parts.push(match j.checks.len() {
        1 => "1 check".to_string(),
        n => format!("{n} checks"),
    });
    parts.join(", ")
}

/// One table: its declaration, the names it has, the jobs that write and read it and the
/// pipelines that maintain it (`mesh describe TABLE`).
#[derive(serde::Serialize)]
struct TableView<'a> {
    project: &'a str,
    /// `database.table`, as SQL names it.
    name: String,
    table: &'a Table,
    /// Jobs writing it: `project/job` and what the job does.
    written_by: Vec<(String, String)>,
    /// Jobs reading it: `project/job`, and whether incrementally.
    read_by: Vec<(String, String)>,
    /// Pipeline steps maintaining it: `project/pipeline`.
    optimized_by: Vec<String>,
    /// A quarantining raw table's rejected rows, as `mesh sql` names them.
    rejected_rows: Option<String>,
}

impl<'a> TableView<'a> {
    fn of(domain: &'a Domain, naming: &Naming, project: &'a Project, t: &'a Table) -> TableView<'a> {
        let r = t.reference();
        let jobs = || domain.projects.iter().flat_map(|p| p.jobs.iter().map(move |j| (p, j)));
        TableView {
            project: project.name.as_str(),
            name: naming.qualified_table(t),
            table: t,
            written_by: jobs()
                .filter(|(_, j)| j.output == r)
                .map(|(p, j)| (format!("{}/{}", p.name, j.name), job_label(j)))
                .collect(),
            read_by: jobs()
                .filter(|(_, j)| j.inputs.contains(&r))
                .map(|(p, j)| {
                    let how = match &j.incremental {
                        Some(i) if i.inputs.contains(&r) => "incrementally",
                        _ => "in full",
                    };
                    (format!("{}/{}", p.name, j.name), how.to_string())
                })
                .collect(),
            optimized_by: domain
                .projects
                .iter()
                .flat_map(|p| {
                    p.pipelines
                        .iter()
                        .filter(|pl| {
                            pl.steps
                                .iter()
                                .any(|s| matches!(&s.action, StepAction::Optimize(o) if *o == r))
                        })
                        .map(move |pl| format!("{}/{}", p.name, pl.name))
                })
                .collect(),
            rejected_rows: t
                .hive()
                .filter(|h| h.bad_rows == BadRows::Quarantine)
                .map(|_| format!("{r}_rejected")),
        }
    }

    fn text(&self) -> String {
        let t = self.table;
        let mut s = format!("{} ({}) · project {}\n", t.reference(), self.name, self.project);
        let mut line = |k: &str, v: String| s.push_str(&format!("  {k:<13}{v}\n"));
        if let Some(d) = &t.description {
            line("description", d.clone());
        }
        match &t.storage {
            Storage::Hive(h) => {
                let format = match &h.file_format {
                    RawFormat::Csv(c) => {
                        let shown = |ch: char| match ch {
                            '\t' => "tab".to_string(),
                            c => format!("{:?}", c.to_string()),
                        };
                        let mut f = format!("csv, delimiter {}, quote {}", shown(c.delimiter), shown(c.quote));
                        if let Some(e) = c.escape {
                            f += &format!(", escape {}", shown(e));
                        }
                        if !c.header {
                            f += ", no header";
                        }
                        if !c.null_value.is_empty() {
                            f += &format!(", NULL as {:?}", c.null_value);
                        }
                        f
                    }
                    other => other.as_str().to_string(),
                };
                line("format", format!("raw files (Hive), {format}"));
                line(
                    "bad rows",
                    match &self.rejected_rows {
                        Some(r) => format!("quarantine: set aside in {r} (mesh sql)"),
                        None => "fail: a read stops at the first bad row".into(),
                    },
                );
            }
            Storage::Iceberg(i) => {
                line(
                    "format",
                    format!(
                        "Iceberg, {} MB data files{}",
                        i.target_file_size_mb,
                        if i.schema_evolution {
                            ""
                        } else {
                            ", schema evolution off"
                        }
                    ),
                );
            }
        }
        if !t.partition_by.is_empty() {
            let parts: Vec<String> = t.partition_by.iter().map(|p| p.to_string()).collect();
            line("partitioned", parts.join(", "));
        }
        if !t.sort_order.is_empty() {
            let sort: Vec<String> = t
                .sort_order
                .iter()
                .map(|f| format!("{}{}", f.column, if f.descending { " desc" } else { "" }))
                .collect();
            line("sorted by", sort.join(", "));
        }
        if !t.identifier.is_empty() {
            let keys: Vec<&str> = t.identifier.iter().map(|k| k.as_str()).collect();
            line("identifier", keys.join(", "));
        }
        s.push_str("  columns\n");
        let width = t.columns.iter().map(|c| c.name.as_str().len()).max().unwrap_or(0);
        let type_width = t
            .columns
            .iter()
            .map(|c| c.data_type.to_string().len())
            .max()
            .unwrap_or(0);
        for c in &t.columns {
            let mut l = format!(
                "    {:<width$}  {:<type_width$}  {}",
                c.name.as_str(),
                c.data_type.to_string(),
                if c.nullable { "        " } else { "not null" }
            );
            if let Some(comment) = &c.comment {
                l += &format!("  {comment}");
            }
            s.push_str(l.trim_end());
            s.push('\n');
        }
        let mut line = |k: &str, v: String| s.push_str(&format!("  {k:<13}{v}\n"));
        for (job, what) in &self.written_by {
            line("written by", format!("{job} ({what})"));
        }
        for (job, how) in &self.read_by {
            line("read by", format!("{job} ({how})"));
        }
        for p in &self.optimized_by {
            line("optimized by", format!("pipeline {p}"));
        }
        if let Some(o) = t.iceberg().map(|i| &i.optimizers) {
            let mut m = Vec::new();
            if let Some(c) = &o.compaction {
                m.push(format!("compaction at {} small files", c.min_input_files));
            }
            if let Some(r) = &o.retention {
                m.push(format!(
                    "snapshots kept {} days (at least {})",
                    r.snapshot_retention_days, r.retain_last
                ));
            }
            if let Some(or) = &o.orphans {
                m.push(format!("orphan files removed after {} days", or.retention_days));
            }
            if !m.is_empty() {
                line("maintenance", m.join("; "));
            }
        }
        if self.written_by.is_empty() && t.layer.is_iceberg() {
            line("written by", "no job yet (mesh new job … --output LAYER.TABLE)".into());
        }
        s
    }
}

/// The domain as a tree: projects, then their tables, jobs and pipelines.
pub fn tree(d: &Domain) -> String {
    let mut out = format!(
        "{} ({}) · {} · Glue {} · Python {} · Terraform {}\n",
        d.name, d.abbr, d.region, d.versions.glue, d.versions.python, d.versions.terraform
    );
    for (pi, p) in d.projects.iter().enumerate() {
        let last_p = pi + 1 == d.projects.len();
        let (branch, pad) = if last_p {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        out += &format!(
            "{branch}{} [{}] · owner {} · {}\n",
            p.name,
            p.slug,
            p.owner,
            p.classification.as_str()
        );
        let mut sections: Vec<(&str, Vec<String>)> = Vec::new();
        sections.push((
            "tables",
            p.tables
                .iter()
                .map(|t| {
                    let format = match &t.storage {
                        Storage::Hive(h) => format!("hive {}", h.file_format.as_str()),
                        Storage::Iceberg(_) => "iceberg".to_string(),
                    };
                    let mut s = format!("{}  {format} · {} columns", t.reference(), t.columns.len());
                    if !t.partition_by.is_empty() {
                        let parts: Vec<String> = t.partition_by.iter().map(|p| p.to_string()).collect();
                        s += &format!(" · partitioned by {}", parts.join(", "));
                    }
                    if !t.identifier.is_empty() {
                        let keys: Vec<&str> = t.identifier.iter().map(|k| k.as_str()).collect();
                        s += &format!(" · keys {}", keys.join(", "));
                    }
                    s
                })
                .collect(),
        ));
        sections.push((
            "jobs",
            p.jobs
                .iter()
                .map(|j| {
                    let inputs: Vec<String> = j.inputs.iter().map(|i| i.to_string()).collect();
                    format!("{}  {} → {} ({})", j.name, inputs.join(", "), j.output, job_label(j))
                })
                .collect(),
        ));
        sections.push((
            "pipelines",
            p.pipelines
                .iter()
                .map(|pl| {
                    let steps: Vec<String> = pl
                        .steps
                        .iter()
                        .map(|s| {
                            let what = match &s.action {
                                StepAction::Job(_) => s.name.to_string(),
                                StepAction::Optimize(t) => format!("optimize {t}"),
                            };
                            if s.depends_on.is_empty() {
                                what
                            } else {
                                let deps: Vec<&str> = s.depends_on.iter().map(|d| d.as_str()).collect();
                                format!("{what} (after {})", deps.join(", "))
                            }
                        })
                        .collect();
                    format!(
                        "{}  {} · {}",
                        pl.name,
                        pl.schedule.as_deref().unwrap_or("no schedule"),
                        steps.join("; ")
                    )
                })
                .collect(),
        ));
        sections.push((
            "products",
            p.products
                .iter()
                .map(|pr| {
                    let consumers: Vec<&str> = pr.consumers.iter().map(|c| c.domain.as_str()).collect();
                    format!(
                        "{} v{}  {} · fresh within {} · consumers: {}",
                        pr.name,
                        pr.version,
                        pr.table,
                        pr.freshness,
                        if consumers.is_empty() {
                            "none yet".into()
                        } else {
                            consumers.join(", ")
                        }
                    )
                })
                .collect(),
        ));
        sections.retain(|(_, items)| !items.is_empty());
        for (si, (title, items)) in sections.iter().enumerate() {
            let last_s = si + 1 == sections.len();
            let (b2, pad2) = if last_s {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            out += &format!("{pad}{b2}{title}\n");
            for (ii, item) in items.iter().enumerate() {
                let b3 = if ii + 1 == items.len() {
                    "└── "
                } else {
                    "├── "
                };
                out += &format!("{pad}{pad2}{b3}{item}\n");
            }
        }
    }
    out
}

pub fn print_names(s: &NameSheet) {
    println!("domain {} · env {} · region {}", s.domain, s.env, s.region);
    println!("buckets");
    for (k, v) in &s.buckets {
        println!("  {k:<12} {v}");
    }
    println!("glue databases");
    for (k, v) in &s.databases {
        println!("  {k:<12} {v}");
    }
    for p in &s.projects {
        println!("project {} [{}]", p.name, p.slug);
        for (k, v) in &p.roles {
            println!("  role {k:<10} {v}");
        }
        for (k, v) in &p.data_prefixes {
            println!("  prefix {k:<8} {v}");
        }
        for (k, v) in &p.iceberg_warehouses {
            println!("  warehouse {k:<5} {v}");
        }
        println!("  ssm prefix     {}", p.ssm_prefix);
        println!("  glue temp      {}", p.glue_temp);
        for t in &p.tables {
            println!("  table {:<30} {} ({})", t.qualified, t.location, t.format);
        }
        for j in &p.jobs {
            println!("  job {:<20} {}", j.name, j.glue_job);
        }
        for pl in &p.pipelines {
            println!("  pipeline {:<15} {}", pl.name, pl.state_machine);
        }
    }
}
