//! `mesh run`: the selected pipelines of the selected projects as one DAG, each step a job or
//! a table optimization, with a run record at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use mesh_domain::{Project, StepAction};

use crate::dag::{execute, DagStep, StepError, StepEvent, StepFuture, StepRunner};
use crate::engine::Engine;
use crate::job::{JobReport, JobRun};
use crate::optimize::TableReport;
use crate::record::{RunBuilder, RunRecord, StepKind, StepMetrics, StepRecord, StepStatus};
use mesh_domain::Name;

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// Projects to run; empty means all.
    pub projects: Vec<String>,
    /// Only this pipeline of each project.
    pub pipeline: Option<String>,
    /// Only this job (outside any pipeline).
    pub job: Option<String>,
    pub params: BTreeMap<String, String>,
    pub max_concurrency: usize,
    /// The run's time (UTC): the clock, a schedule's time or `--at`. Time-range jobs process
    /// the intervals complete at this time unless `params` name one.
    pub at: chrono::NaiveDateTime,
    /// dbt-style selectors (`JOB`, `JOB+`, `+JOB`, `layer.table+`, `project:NAME`, see
    /// [`crate::select`]): the selected jobs run on their own, ordered by their declared
    /// inputs and outputs. Empty (and no `exclude`): the pipelines.
    pub select: Vec<String>,
    /// Selectors of jobs not to run.
    pub exclude: Vec<String>,
}

/// Receives step events, e.g. to draw progress bars.
pub trait Progress: Send + Sync + 'static {
    fn event(&self, step: &StepKey, event: StepEvent<'_>);
}

/// One step of the combined DAG: a pipeline's step, or a job run on its own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StepKey {
    pub project: Name,
    /// `None` for a job run on its own (`mesh run --job`).
    pub pipeline: Option<Name>,
    pub step: Name,
}

impl StepKey {
    /// Another step of the same pipeline.
    fn sibling(&self, step: &Name) -> StepKey {
        StepKey {
            step: step.clone(),
            ..self.clone()
        }
    }

    /// The pipeline as the run record names it (`job` for a job run on its own).
    pub fn pipeline_name(&self) -> &str {
        self.pipeline.as_ref().map(Name::as_str).unwrap_or("job")
    }
}

/// `project/pipeline/step`, or `project/job` for a job run on its own.
impl std::fmt::Display for StepKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.pipeline {
            Some(p) => write!(f, "{}/{p}/{}", self.project, self.step),
            None => write!(f, "{}/{}", self.project, self.step),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub enum StepOutput {
    // Boxed: a job report carries its check results; the outputs of a whole run are kept.
    Job(Box<JobReport>),
    Optimize(Box<TableReport>),
}

/// One step of the combined DAG.
struct Planned {
    key: StepKey,
    project: usize,
    step: mesh_domain::Step,
}

/// What the run request names that does not exist; each carries a `help` line (a close match,
/// or what exists) so the user can fix the command without opening the manifests.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("no project `{name}`\n  help: {help}")]
    UnknownProject { name: String, help: String },
    #[error("project `{project}` has no pipeline `{pipeline}`\n  help: {help}")]
    UnknownPipeline {
        project: String,
        pipeline: String,
        help: String,
    },
    #[error("no project has a pipeline `{pipeline}`\n  help: {help}")]
    NoSuchPipeline { pipeline: String, help: String },
    #[error("no job `{job}` in the selected projects\n  help: {help}")]
    UnknownJob { job: String, help: String },
    #[error(transparent)]
    Select(#[from] crate::select::SelectError),
    #[error("nothing to run: {projects} {has} no pipelines\n  help: {help}")]
    Empty {
        projects: String,
        has: &'static str,
        help: String,
    },
}

/// `did you mean …?` for a close name, else the list of names there are.
fn hint<'a>(wanted: &str, what: &str, known: impl IntoIterator<Item = &'a str> + Clone) -> String {
    mesh_domain::diagnostic::did_you_mean(wanted, known.clone()).unwrap_or_else(|| {
        let all: Vec<&str> = known.into_iter().collect();
        if all.is_empty() {
            format!("there are no {what}s")
        } else {
            format!("{what}s are: {}", all.join(", "))
        }
    })
}

fn plan(engine: &Engine, req: &RunRequest) -> Result<Vec<Planned>, PlanError> {
    let domain = &engine.domain;
    let projects: Vec<usize> = if req.projects.is_empty() {
        (0..domain.projects.len()).collect()
    } else {
        req.projects
            .iter()
            .map(|p| {
                domain
                    .projects
                    .iter()
                    .position(|x| x.name.as_str() == p)
                    .ok_or_else(|| PlanError::UnknownProject {
                        name: p.clone(),
                        help: hint(p, "project", domain.projects.iter().map(|x| x.name.as_str())),
                    })
            })
            .collect::<Result<_, _>>()?
    };
    let mut out = Vec::new();
    if let Some(job) = &req.job {
        for &pi in &projects {
            if let Some(j) = domain.projects[pi].job(job) {
                let step = mesh_domain::Step {
                    name: j.name.clone(),
                    action: StepAction::Job(j.name.clone()),
                    depends_on: vec![],
                    retries: 0,
                    retry_backoff_seconds: 0,
                };
                out.push(Planned {
                    key: StepKey {
                        project: domain.projects[pi].name.clone(),
                        pipeline: None,
                        step: j.name.clone(),
                    },
                    project: pi,
                    step,
                });
            }
        }
        return if out.is_empty() {
            let known = projects
                .iter()
                .flat_map(|&pi| domain.projects[pi].jobs.iter().map(|j| j.name.as_str()));
            Err(PlanError::UnknownJob {
                job: job.clone(),
                help: hint(job, "job", known),
            })
        } else {
            Ok(out)
        };
    }
    if !req.select.is_empty() || !req.exclude.is_empty() {
        let chosen = crate::select::select_jobs(domain, &engine.layout.naming, &projects, &req.select, &req.exclude)?;
        return Ok(job_steps(domain, &chosen));
    }
    for &pi in &projects {
        let p: &Project = &domain.projects[pi];
        // A project without pipelines runs its jobs, in the order of their inputs and outputs.
        if req.pipeline.is_none() && p.pipelines.is_empty() {
            let jobs: Vec<_> = (0..p.jobs.len()).map(|j| (pi, j)).collect();
            out.extend(job_steps(domain, &jobs));
            continue;
        }
        let pipelines: Vec<_> = match &req.pipeline {
            None => p.pipelines.iter().collect(),
            Some(name) => match p.pipeline(name) {
                Some(pl) => vec![pl],
                // Without `--project`, a pipeline name picks the projects that have one so named.
                None if req.projects.is_empty() => vec![],
                None => {
                    return Err(PlanError::UnknownPipeline {
                        project: p.name.to_string(),
                        pipeline: name.clone(),
                        help: hint(name, "pipeline", p.pipelines.iter().map(|x| x.name.as_str())),
                    })
                }
            },
        };
        for pl in pipelines {
            for s in &pl.steps {
                out.push(Planned {
                    key: StepKey {
                        project: p.name.clone(),
                        pipeline: Some(pl.name.clone()),
                        step: s.name.clone(),
                    },
                    project: pi,
                    step: s.clone(),
                });
            }
        }
    }
    if let (true, Some(name)) = (out.is_empty(), &req.pipeline) {
        let mut known: Vec<&str> = projects
            .iter()
            .flat_map(|&pi| domain.projects[pi].pipelines.iter().map(|x| x.name.as_str()))
            .collect();
        known.sort_unstable();
        known.dedup();
        return Err(PlanError::NoSuchPipeline {
            pipeline: name.clone(),
            help: hint(name, "pipeline", known),
        });
    }
    if out.is_empty() {
        let names: Vec<String> = projects
            .iter()
            .map(|&pi| format!("`{}`", domain.projects[pi].name))
            .collect();
        let jobs: Vec<&str> = projects
            .iter()
            .flat_map(|&pi| domain.projects[pi].jobs.iter().map(|j| j.name.as_str()))
            .collect();
        let help = match jobs.first() {
            Some(first) => format!(
                "run one job with `mesh run --job {first}` (jobs: {}), or add a [[pipelines]] entry to the project.toml",
                jobs.join(", ")
            ),
            None => "add a job (`mesh new job`) and a [[pipelines]] entry to the project.toml".into(),
        };
        return Err(PlanError::Empty {
            has: if names.len() == 1 { "has" } else { "have" },
            projects: names.join(", "),
            help,
        });
    }
    Ok(out)
}

/// Jobs run on their own (no pipeline), each after the chosen jobs writing its inputs, with
/// the retries of the pipeline step that runs it, if any.
fn job_steps(domain: &mesh_domain::Domain, chosen: &[crate::select::JobId]) -> Vec<Planned> {
    chosen
        .iter()
        .map(|&(pi, ji)| {
            let project = &domain.projects[pi];
            let job = &project.jobs[ji];
            let in_pipeline = project
                .pipelines
                .iter()
                .flat_map(|pl| &pl.steps)
                .find(|s| matches!(&s.action, StepAction::Job(j) if j == &job.name));
            let step = mesh_domain::Step {
                name: job.name.clone(),
                action: StepAction::Job(job.name.clone()),
                depends_on: crate::select::upstream_of(domain, chosen, (pi, ji))
                    .into_iter()
                    .map(|(p, j)| domain.projects[p].jobs[j].name.clone())
                    .collect(),
                retries: in_pipeline.map_or(0, |s| s.retries),
                retry_backoff_seconds: in_pipeline.map_or(0, |s| s.retry_backoff_seconds),
            };
            Planned {
                key: StepKey {
                    project: project.name.clone(),
                    pipeline: None,
                    step: job.name.clone(),
                },
                project: pi,
                step,
            }
        })
        .collect()
}

struct Runner {
    engine: Arc<Engine>,
    steps: BTreeMap<StepKey, (usize, mesh_domain::Step)>,
    params: BTreeMap<String, String>,
    run_id: String,
    at: chrono::NaiveDateTime,
    progress: Arc<dyn Progress>,
}

impl StepRunner<StepKey, StepOutput> for Runner {
    fn run(&self, key: &StepKey, _attempt: u32) -> StepFuture<StepOutput> {
        let engine = self.engine.clone();
        let (pi, step) = self.steps[key].clone();
        let params = self.params.clone();
        let run_id = self.run_id.clone();
        let at = self.at;
        Box::pin(async move {
            let project = &engine.domain.projects[pi];
            match &step.action {
                StepAction::Job(name) => {
                    let job = project.job(name.as_str()).expect("validated step");
                    JobRun {
                        engine: &engine,
                        project,
                        job,
                        params: &params,
                        run_id: &run_id,
                        at,
                    }
                    .run()
                    .await
                    .map(|r| StepOutput::Job(Box::new(r)))
                    .map_err(|e| {
                        if e.is_transient() {
                            StepError::transient(e)
                        } else {
                            StepError::permanent(e)
                        }
                    })
                }
                StepAction::Optimize(t) => {
                    let table = project.table(t).expect("validated step");
                    // Maintenance fails mostly on lost commit races with writers: retried.
                    crate::optimize::optimize_step(&engine, project, table)
                        .await
                        .map(|t| StepOutput::Optimize(Box::new(t)))
                        .map_err(|e| {
                            if e.is_transient() {
                                StepError::transient(e)
                            } else {
                                StepError::permanent(e)
                            }
                        })
                }
            }
        })
    }

    fn event(&self, step: &StepKey, event: StepEvent<'_>) {
        self.progress.event(step, event);
    }
}

/// Runs the request; the record says what happened to every step (a failed step is in the
/// record, not an `Err`).
pub async fn run(
    engine: Arc<Engine>,
    req: &RunRequest,
    run_id: &str,
    progress: Arc<dyn Progress>,
) -> Result<(RunRecord, Vec<(StepKey, StepOutput)>), PlanError> {
    let planned = plan(&engine, req)?;
    let mut run = RunBuilder::start(
        run_id,
        &engine.domain.name,
        &engine.layout.naming.env().to_string(),
        req.params.clone(),
    );
    let dag: Vec<DagStep<StepKey>> = planned
        .iter()
        .map(|p| DagStep {
            name: p.key.clone(),
            depends_on: p.step.depends_on.iter().map(|d| p.key.sibling(d)).collect(),
            retries: p.step.retries,
            backoff: Duration::from_secs(u64::from(p.step.retry_backoff_seconds)),
        })
        .collect();
    let runner = Arc::new(Runner {
        engine: engine.clone(),
        steps: planned
            .iter()
            .map(|p| (p.key.clone(), (p.project, p.step.clone())))
            .collect(),
        params: req.params.clone(),
        run_id: run_id.to_string(),
        at: req.at,
        progress,
    });
    let results = execute(&dag, req.max_concurrency.max(1), runner)
        .await
        .expect("validated DAG");

    let mut outputs = Vec::new();
    for (p, r) in planned.iter().zip(results) {
        let project = &engine.domain.projects[p.project];
        let (kind, target) = match &p.step.action {
            StepAction::Job(j) => {
                let job = project.job(j.as_str()).expect("validated");
                // Other domains' products too (`f01.daily_sales@1`), or a job reading only
                // those would read nothing.
                let inputs: Vec<String> = job
                    .inputs
                    .iter()
                    .map(|i| i.to_string())
                    .chain(
                        job.products
                            .iter()
                            .map(|i| project.consumed(i).map_or(i.to_string(), |c| c.to_string())),
                    )
                    .collect();
                (StepKind::Job, format!("{} → {}", inputs.join(", "), job.output))
            }
            StepAction::Optimize(t) => (StepKind::Optimize, t.to_string()),
        };
        let name = p.step.name.to_string();
        let mut record = match r.status {
            crate::dag::StepStatus::Succeeded { output } => {
                let metrics = match &output {
                    StepOutput::Job(j) => StepMetrics::Job(j.clone()),
                    StepOutput::Optimize(t) => StepMetrics::Optimize(Box::new(t.metrics())),
                };
                outputs.push((p.key.clone(), output));
                StepRecord::succeeded(name, target, metrics)
            }
            crate::dag::StepStatus::Failed { error } => {
                let mut record = StepRecord::not_succeeded(name, kind, target, StepStatus::Failed, error.to_string());
                // A failed check (on the output, or a product's freshness) leaves the results
                // of every check in the record, with the products read.
                let job_error = error.error.downcast_ref::<crate::job::JobError>();
                if let Some((checks, products)) =
                    job_error.and_then(|e| e.check_outcomes().map(|c| (c, e.products_read())))
                {
                    record.metrics = StepMetrics::Job(Box::new(JobReport {
                        job: p.step.name.to_string(),
                        checks: checks.to_vec(),
                        products_read: products.to_vec(),
                        ..Default::default()
                    }));
                }
                record
            }
            crate::dag::StepStatus::Skipped { because } => {
                // Named as the record names steps: by their name within the pipeline.
                let dependency = &because.dependency.step;
                let what = if because.skipped { "was skipped" } else { "failed" };
                StepRecord::not_succeeded(
                    name,
                    kind,
                    target,
                    StepStatus::Skipped,
                    format!("skipped: `{dependency}` {what}"),
                )
            }
        };
        record.depends_on = p.step.depends_on.iter().map(|d| d.to_string()).collect();
        record.attempts = r.attempts;
        record.seconds = r.seconds;
        run.step(project.name.as_str(), p.key.pipeline_name(), record);
    }
    Ok((run.finish(), outputs))
}

/// The jobs among the steps a request would run, as (project index, job name), in step order.
pub fn planned_jobs(engine: &Engine, req: &RunRequest) -> Result<Vec<(usize, mesh_domain::Name)>, PlanError> {
    Ok(plan(engine, req)?
        .into_iter()
        .filter_map(|p| match &p.step.action {
            StepAction::Job(j) => Some((p.project, j.clone())),
            StepAction::Optimize(_) => None,
        })
        .collect())
}

/// The time-range jobs among the steps a request would run, as (project index, job name).
pub fn time_range_jobs(engine: &Engine, req: &RunRequest) -> Result<Vec<(usize, mesh_domain::Name)>, PlanError> {
    Ok(plan(engine, req)?
        .into_iter()
        .filter_map(|p| match &p.step.action {
            StepAction::Job(j)
                if engine.domain.projects[p.project]
                    .job(j.as_str())
                    .is_some_and(|job| job.time_range.is_some()) =>
            {
                Some((p.project, j.clone()))
            }
            _ => None,
        })
        .collect())
}
