//! `mesh new pipeline`: the jobs as the DAG their tables make, then table maintenance.

use std::collections::BTreeMap;
use std::path::Path;

use super::{list, project_file, quote, ScaffoldError, Undo};
use crate::ident::Name;

/// `mesh new pipeline PROJECT NAME --job A --job B [--optimize layer.t] [--schedule CRON]`.
#[derive(Debug, Default)]
pub struct NewPipeline<'a> {
    pub project: &'a str,
    pub name: &'a str,
    /// The jobs, in the order given (kept among jobs the lineage does not order).
    pub jobs: Vec<String>,
    /// Tables to maintain after the jobs that write them.
    pub optimize: Vec<String>,
    pub schedule: Option<&'a str>,
    /// Each job of the project: its inputs and its output, as `layer.table`.
    pub lineage: BTreeMap<String, (Vec<String>, String)>,
    /// `STEP=DEP`: orders the tables do not show.
    pub depends_on: Vec<String>,
    /// Retries of each job step.
    pub retries: Option<u32>,
    pub max_concurrency: Option<u32>,
    pub alert_emails: Vec<String>,
    pub description: Option<String>,
}

/// Each step's dependencies from the lineage: a job runs after the pipeline's jobs that write
/// one of its inputs, and after the earlier-listed jobs writing its own output (two commits
/// to one table in a run are ordered, not raced); an optimize step runs after the jobs that
/// write its table. Steps in a topological order, the given order among independent ones.
fn lineage_steps(p: &NewPipeline<'_>) -> Vec<PlannedStep> {
    let io = |job: &str| p.lineage.get(job);
    let mut steps: Vec<PlannedStep> = Vec::new();
    for (i, job) in p.jobs.iter().enumerate() {
        let deps: Vec<String> = p
            .jobs
            .iter()
            .enumerate()
            .filter(|&(k, other)| k != i && other != job)
            .filter(|&(k, other)| {
                let (Some((inputs, output)), Some((_, other_out))) = (io(job), io(other)) else {
                    return false;
                };
                inputs.contains(other_out) || (k < i && other_out == output)
            })
            .map(|(_, other)| other.clone())
            .collect();
        steps.push(PlannedStep {
            name: job.clone(),
            deps,
            optimize: None,
        });
    }
    for table in &p.optimize {
        let writers: Vec<String> = p
            .jobs
            .iter()
            .filter(|j| io(j).is_some_and(|(_, out)| out == table))
            .cloned()
            .collect();
        // Named as the validator names an optimize step.
        let name = format!("optimize_{}", table.split_once('.').map_or(table.as_str(), |t| t.1));
        steps.push(PlannedStep {
            name,
            deps: writers,
            optimize: Some(table.clone()),
        });
    }
    topological(steps)
}

/// A step of the pipeline being written.
#[derive(Debug, PartialEq)]
struct PlannedStep {
    name: String,
    deps: Vec<String>,
    /// The table of an optimize step; `None`: the job `name`.
    optimize: Option<String>,
}

/// Dependencies first, otherwise in the given order; a cycle (only possible through
/// `--depends-on`) keeps the rest in order for the validator to name.
fn topological(mut rest: Vec<PlannedStep>) -> Vec<PlannedStep> {
    let mut done: Vec<PlannedStep> = Vec::new();
    while !rest.is_empty() {
        let ready = rest.iter().position(|s| {
            s.deps
                .iter()
                .all(|d| done.iter().any(|x| &x.name == d) || !rest.iter().any(|x| &x.name == d))
        });
        match ready {
            Some(i) => done.push(rest.remove(i)),
            None => {
                done.append(&mut rest);
            }
        }
    }
    done
}

/// Appends a pipeline whose steps are ordered by the lineage of their jobs (see
/// [`lineage_steps`]) and by `depends_on`, then keeps it if the domain still validates.
pub fn new_pipeline(root: &Path, p: &NewPipeline<'_>) -> Result<(), ScaffoldError> {
    let file = project_file(root, p.project)?;
    Name::parse(p.name).map_err(|e| ScaffoldError::Invalid(e.to_string()))?;
    if p.jobs.is_empty() && p.optimize.is_empty() {
        return Err(ScaffoldError::Invalid(
            "a pipeline needs at least one step: --job NAME (repeat) or --optimize layer.table".into(),
        ));
    }
    let mut steps = lineage_steps(p);
    for d in &p.depends_on {
        let (step, deps) = d.split_once('=').ok_or_else(|| {
            ScaffoldError::Invalid(format!(
                "--depends-on `{d}` must be STEP=DEP (STEP runs after DEP), e.g. --depends-on report=load; nothing was written"
            ))
        })?;
        let names: Vec<String> = steps.iter().map(|s| s.name.clone()).collect();
        for name in std::iter::once(step).chain(deps.split(',')) {
            let name = name.trim();
            if !names.iter().any(|n| n == name) {
                let help = crate::diagnostic::did_you_mean(name, names.iter().map(String::as_str))
                    .unwrap_or_else(|| format!("the pipeline's steps are: {}", names.join(", ")));
                return Err(ScaffoldError::Invalid(format!(
                    "--depends-on `{d}`: `{name}` is not a step of this pipeline; nothing was written\n  help: {help}"
                )));
            }
        }
        let entry = steps.iter_mut().find(|s| s.name == step.trim()).expect("checked above");
        for dep in deps.split(',').map(str::trim) {
            if !entry.deps.iter().any(|x| x == dep) {
                entry.deps.push(dep.to_string());
            }
        }
    }
    let steps = topological(steps);
    let mut text = format!("[[pipelines]]\nname = {}\n", quote(p.name));
    if let Some(d) = &p.description {
        text += &format!("description = {}\n", quote(d));
    }
    if let Some(s) = p.schedule {
        text += &format!("schedule = {}\n", quote(s));
    }
    if let Some(n) = p.max_concurrency {
        text += &format!("max_concurrency = {n}\n");
    }
    if !p.alert_emails.is_empty() {
        text += &format!("alert_emails = {}\n", list(&p.alert_emails));
    }
    if !p.jobs.is_empty() {
        text += "# A job runs after the jobs that write its inputs; jobs without such a link run side by side,\n# and a failed step skips only the steps that depend on it.\n";
    }
    text += "steps = [\n";
    for s in &steps {
        let action = match &s.optimize {
            Some(table) => format!("optimize = {}", quote(table)),
            None => format!("job = {}", quote(&s.name)),
        };
        let after = if s.deps.is_empty() {
            String::new()
        } else {
            format!(", depends_on = {}", list(&s.deps))
        };
        let retries = match (p.retries, &s.optimize) {
            (Some(n), None) => format!(", retries = {n}"),
            _ => String::new(),
        };
        text += &format!("  {{ {action}{after}{retries} }},\n");
    }
    text += "]\n";
    let mut undo = Undo::default();
    undo.append(&file, &text)?;
    undo.commit(root)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lineage(jobs: &[(&str, &[&str], &str)]) -> BTreeMap<String, (Vec<String>, String)> {
        jobs.iter()
            .map(|(j, ins, out)| {
                (
                    j.to_string(),
                    (ins.iter().map(|s| s.to_string()).collect(), out.to_string()),
                )
            })
            .collect()
    }

    /// A job depends only on the jobs writing its inputs: listed downstream-first, the steps
    /// come out dependencies first; an unrelated job depends on nothing.
    #[test]
    fn steps_follow_the_tables_not_the_order_given() {
        let p = NewPipeline {
            jobs: vec!["report".into(), "clean".into(), "rates".into(), "clean_late".into()],
            optimize: vec!["refined.orders".into(), "curated.rates".into()],
            lineage: lineage(&[
                ("clean", &["raw.orders"], "refined.orders"),
                ("clean_late", &["raw.late_orders"], "refined.orders"),
                ("report", &["refined.orders", "curated.rates"], "curated.report"),
                ("rates", &["raw.rates"], "curated.rates"),
            ]),
            ..Default::default()
        };
        let steps = lineage_steps(&p);
        let s = |n: &str, d: &[&str]| (n.to_string(), d.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        let steps: Vec<_> = steps.into_iter().map(|x| (x.name, x.deps)).collect();
        assert_eq!(
            steps,
            vec![
                s("clean", &[]),
                s("rates", &[]),
                s("clean_late", &["clean"]),
                s("report", &["clean", "rates", "clean_late"]),
                s("optimize_orders", &["clean", "clean_late"]),
                s("optimize_rates", &["rates"]),
            ]
        );
    }
}
