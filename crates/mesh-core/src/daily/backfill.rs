//! `mesh run --from --to`: the selected steps once per interval, in order. The intervals come
//! from the time-range jobs among the steps (their grain); an interval every one of them has
//! already committed is skipped, so a killed backfill resumes where it stopped. Without
//! time-range jobs the steps run once per day with `run_date` set, and nothing is skipped.

use chrono::NaiveDateTime;
use mesh_domain::Grain;

use crate::engine::Engine;
use crate::incremental::done_intervals;
use crate::interval::{intervals, DoneSet, Interval, IntervalError};
use crate::pipeline::{time_range_jobs, PlanError, RunRequest};

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Interval(#[from] IntervalError),
    #[error("the selected time-range jobs have different grains ({0}); backfill them one at a time with --job")]
    MixedGrains(String),
    #[error("--to {to}: {source}")]
    NotComplete {
        to: String,
        #[source]
        source: IntervalError,
    },
    #[error("job `{job}`: {source}")]
    NamedNotComplete {
        job: String,
        #[source]
        source: IntervalError,
    },
    #[error("reading the intervals done of job `{job}`: {source}")]
    State {
        job: String,
        #[source]
        source: Box<mesh_iceberg::Error>,
    },
}

/// The intervals to run and what is already done.
pub struct Backfill {
    pub grain: Grain,
    /// The largest lag of the time-range jobs (seconds): an interval is complete that long
    /// after its end.
    pub lag_seconds: u64,
    pub intervals: Vec<Interval>,
    /// Time-range jobs (`project/job`) and the intervals each has committed.
    pub jobs: Vec<(String, DoneSet)>,
}

impl Backfill {
    pub async fn plan(engine: &Engine, req: &RunRequest, from: &str, to: &str) -> Result<Backfill, BackfillError> {
        let jobs = time_range_jobs(engine, req)?;
        let mut grains: Vec<Grain> = jobs
            .iter()
            .filter_map(|(p, j)| engine.domain.projects[*p].job(j.as_str()))
            .filter_map(|j| j.time_range.as_ref().map(|t| t.grain))
            .collect();
        grains.sort();
        grains.dedup();
        if grains.len() > 1 {
            return Err(BackfillError::MixedGrains(
                grains.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(", "),
            ));
        }
        let grain = grains.first().copied().unwrap_or(Grain::Day);
        let lag_seconds = jobs
            .iter()
            .filter_map(|(p, j)| engine.domain.projects[*p].job(j.as_str()))
            .filter_map(|j| j.time_range.as_ref().map(|t| t.lag_seconds))
            .max()
            .unwrap_or(0);
        let intervals = intervals(grain, from, to)?;
        let mut done = Vec::new();
        for (p, j) in &jobs {
            let project = &engine.domain.projects[*p];
            let job = project.job(j.as_str()).expect("planned job");
            let set = done_intervals(engine, project, job)
                .await
                .map_err(|source| BackfillError::State {
                    job: j.to_string(),
                    source: Box::new(source),
                })?;
            done.push((format!("{}/{}", project.name, j), set));
        }
        Ok(Backfill {
            grain,
            lag_seconds,
            intervals,
            jobs: done,
        })
    }

    /// Refuses a backfill whose last interval is not complete at the run's time `at`: its
    /// data may still arrive, and it would be recorded as done.
    pub fn check_complete(&self, at: NaiveDateTime) -> Result<(), BackfillError> {
        let last = self.intervals.last().expect("at least one interval");
        last.check_complete(at, self.lag_seconds)
            .map_err(|source| BackfillError::NotComplete {
                to: last.label(),
                source,
            })
    }

    /// True when every time-range job has committed `interval` (never without such jobs).
    pub fn is_done(&self, interval: &Interval) -> bool {
        !self.jobs.is_empty() && self.jobs.iter().all(|(_, d)| d.contains(interval))
    }
}

/// What a run at `req.at` will do for each time-range job among the selected steps, one line
/// each: `sales/daily_totals: 2026-12-06 (complete, not done), 2026-12-07 in progress: not yet (…)`.
pub async fn due_lines(engine: &Engine, req: &RunRequest) -> Result<Vec<String>, BackfillError> {
    let mut lines = Vec::new();
    for (p, j) in time_range_jobs(engine, req)? {
        let project = &engine.domain.projects[p];
        let job = project.job(j.as_str()).expect("planned job");
        let tr = job.time_range.as_ref().expect("time-range job");
        let done = done_intervals(engine, project, job)
            .await
            .map_err(|source| BackfillError::State {
                job: j.to_string(),
                source: Box::new(source),
            })?;
        let plan = crate::incremental::due_plan(tr, &done, req.at);
        lines.push(format!("{}/{}: {}", project.name, j, plan.describe()));
    }
    Ok(lines)
}

/// Refuses a run whose `--param run_date` / `interval_start` names an interval that is not
/// complete at the run's time for one of the selected time-range jobs (before anything runs).
pub fn check_named_interval(engine: &Engine, req: &RunRequest) -> Result<(), BackfillError> {
    let Some(value) = req.params.get("interval_start").or(req.params.get("run_date")) else {
        return Ok(());
    };
    for (p, j) in time_range_jobs(engine, req)? {
        let job = engine.domain.projects[p].job(j.as_str()).expect("planned job");
        let tr = job.time_range.as_ref().expect("time-range job");
        let Some(t) = crate::interval::parse_instant(value) else {
            continue; // the job names the bad value itself
        };
        let interval = Interval::containing(tr.grain, t);
        interval
            .check_complete(req.at, tr.lag_seconds)
            .map_err(|source| BackfillError::NamedNotComplete {
                job: j.to_string(),
                source,
            })?;
    }
    Ok(())
}
