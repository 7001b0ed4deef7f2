//! dbt-style job selection for `mesh run --select/--exclude`, over the lineage the manifests
//! declare: job A comes before job B when A's output is one of B's inputs (within a project).
//!
//! A selector is
//! - `JOB`: the job so named (in any selected project);
//! - `layer.table` (or `db.table`): the jobs writing the table; for a table no job writes (a
//!   raw table), the jobs reading it;
//! - `project:NAME` (or a project's name that is no job's): every job of the project;
//!
//! with `+` after it for everything downstream too, before it for everything upstream
//! (`+JOB+`: both). Several selectors add up; `--exclude` takes its selection away.

use std::collections::BTreeSet;

use mesh_domain::{Domain, Naming};

/// A job: (project index in the domain, job index in the project).
pub type JobId = (usize, usize);

#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("--{flag} `{selector}` selects nothing: no job, table or project so named\n  help: {help}")]
    Unknown {
        flag: &'static str,
        selector: String,
        help: String,
    },
    #[error("--select/--exclude leave no job to run\n  help: {help}")]
    Empty { help: String },
}

struct Graph<'d> {
    domain: &'d Domain,
    jobs: Vec<JobId>,
}

impl<'d> Graph<'d> {
    fn job(&self, id: JobId) -> &'d mesh_domain::Job {
        &self.domain.projects[id.0].jobs[id.1]
    }

    /// The jobs `id` reads the output of.
    fn parents(&self, id: JobId) -> Vec<JobId> {
        let j = self.job(id);
        self.jobs
            .iter()
            .copied()
            .filter(|&p| p.0 == id.0 && p != id && j.inputs.contains(&self.job(p).output))
            .collect()
    }

    fn children(&self, id: JobId) -> Vec<JobId> {
        let out = &self.job(id).output;
        self.jobs
            .iter()
            .copied()
            .filter(|&c| c.0 == id.0 && c != id && self.job(c).inputs.contains(out))
            .collect()
    }

    fn closure(&self, seeds: &BTreeSet<JobId>, next: impl Fn(JobId) -> Vec<JobId>) -> BTreeSet<JobId> {
        let mut seen = seeds.clone();
        let mut todo: Vec<JobId> = seeds.iter().copied().collect();
        while let Some(j) = todo.pop() {
            for n in next(j) {
                if seen.insert(n) {
                    todo.push(n);
                }
            }
        }
        seen
    }

    /// The jobs one selector stands for.
    fn select(&self, naming: &Naming, flag: &'static str, selector: &str) -> Result<BTreeSet<JobId>, SelectError> {
        let s = selector.trim();
        let (up, s) = s.strip_prefix('+').map_or((false, s), |r| (true, r));
        let (down, s) = s.strip_suffix('+').map_or((false, s), |r| (true, r));
        let project_named = |name: &str| -> BTreeSet<JobId> {
            self.jobs
                .iter()
                .copied()
                .filter(|&(p, _)| self.domain.projects[p].name.as_str() == name)
                .collect()
        };
        let seeds: BTreeSet<JobId> = if let Some(project) = s.strip_prefix("project:") {
            project_named(project)
        } else if s.contains('.') {
            let is_table = |t: &mesh_domain::Table| t.reference().to_string() == s || naming.qualified_table(t) == s;
            let table =
                |id: JobId, r: &mesh_domain::TableRef| self.domain.projects[id.0].table(r).is_some_and(is_table);
            let writers: BTreeSet<JobId> = self
                .jobs
                .iter()
                .copied()
                .filter(|&id| table(id, &self.job(id).output))
                .collect();
            if writers.is_empty() {
                self.jobs
                    .iter()
                    .copied()
                    .filter(|&id| self.job(id).inputs.iter().any(|i| table(id, i)))
                    .collect()
            } else {
                writers
            }
        } else {
            let jobs: BTreeSet<JobId> = self
                .jobs
                .iter()
                .copied()
                .filter(|&id| self.job(id).name.as_str() == s)
                .collect();
            if jobs.is_empty() {
                project_named(s)
            } else {
                jobs
            }
        };
        if seeds.is_empty() {
            let mut known: Vec<String> = self.jobs.iter().map(|&id| self.job(id).name.to_string()).collect();
            for &(p, j) in &self.jobs {
                let project = &self.domain.projects[p];
                if let Some(t) = project.table(&project.jobs[j].output) {
                    known.push(t.reference().to_string());
                }
                known.push(format!("project:{}", project.name));
            }
            known.sort();
            known.dedup();
            let help = mesh_domain::diagnostic::did_you_mean(s, known.iter().map(String::as_str))
                .unwrap_or_else(|| format!("jobs, tables and projects are: {}", known.join(", ")));
            return Err(SelectError::Unknown {
                flag,
                selector: selector.to_string(),
                help,
            });
        }
        let mut out = seeds.clone();
        if up {
            out.extend(self.closure(&seeds, |j| self.parents(j)));
        }
        if down {
            out.extend(self.closure(&seeds, |j| self.children(j)));
        }
        Ok(out)
    }
}

/// The selected jobs of the given projects, in domain order. `select` empty: every job.
/// Each selector string may hold several, separated by spaces or commas.
pub fn select_jobs(
    domain: &Domain,
    naming: &Naming,
    projects: &[usize],
    select: &[String],
    exclude: &[String],
) -> Result<Vec<JobId>, SelectError> {
    let jobs: Vec<JobId> = projects
        .iter()
        .flat_map(|&p| (0..domain.projects[p].jobs.len()).map(move |j| (p, j)))
        .collect();
    let graph = Graph { domain, jobs };
    let split = |v: &[String]| -> Vec<String> {
        v.iter()
            .flat_map(|s| {
                s.split([' ', ','])
                    .filter(|x| !x.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let mut chosen: BTreeSet<JobId> = if select.is_empty() {
        graph.jobs.iter().copied().collect()
    } else {
        let mut all = BTreeSet::new();
        for s in split(select) {
            all.extend(graph.select(naming, "select", &s)?);
        }
        all
    };
    for s in split(exclude) {
        for j in graph.select(naming, "exclude", &s)? {
            chosen.remove(&j);
        }
    }
    if chosen.is_empty() {
        return Err(SelectError::Empty {
            help: "`mesh describe` lists the jobs with their inputs and outputs".into(),
        });
    }
    Ok(chosen.into_iter().collect())
}

/// The selected jobs among `chosen` that `id` waits for: those writing one of its inputs.
pub fn upstream_of(domain: &Domain, chosen: &[JobId], id: JobId) -> Vec<JobId> {
    let graph = Graph {
        domain,
        jobs: chosen.to_vec(),
    };
    graph.parents(id)
}
