//! `mesh describe`: the domain as a tree; also the text view of `mesh names`.

use std::path::Path;

use mesh_domain::{Domain, NameSheet, StepAction, Storage};

use crate::cli::Format;
use crate::common::{load, print_json};
use crate::exit::Failure;

pub fn run(root_flag: Option<&Path>, format: Format) -> Result<(), Failure> {
    let domain = load(root_flag)?;
    match format {
        Format::Json => print_json(&domain),
        Format::Text => print!("{}", tree(&domain)),
    }
    Ok(())
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
                    format!(
                        "{}  {} → {} ({}, {} checks)",
                        j.name,
                        inputs.join(", "),
                        j.output,
                        j.mode.as_str(),
                        j.checks.len()
                    )
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
