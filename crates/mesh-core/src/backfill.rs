//! `mesh run --from --to`: the selected steps once per interval, in order. The intervals come
//! from the time-range jobs among the steps (their grain); an interval every one of them has
//! already committed is skipped, so a killed backfill resumes where it stopped. Without
//! time-range jobs the steps run once per day with `run_date` set, and nothing is skipped.

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
    #[error("reading the intervals done of job `{job}`: {source}")]
    State {
        job: String,
        #[source]
        source: mesh_iceberg::Error,
    },
}

/// The intervals to run and what is already done.
pub struct Backfill {
    pub grain: Grain,
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
        let intervals = intervals(grain, from, to)?;
        let mut done = Vec::new();
        for (p, j) in &jobs {
            let project = &engine.domain.projects[*p];
            let job = project.job(j.as_str()).expect("planned job");
            let set = done_intervals(engine, project, job)
                .await
                .map_err(|source| BackfillError::State {
                    job: j.to_string(),
                    source,
                })?;
            done.push((format!("{}/{}", project.name, j), set));
        }
        Ok(Backfill {
            grain,
            intervals,
            jobs: done,
        })
    }

    /// True when every time-range job has committed `interval` (never without such jobs).
    pub fn is_done(&self, interval: &Interval) -> bool {
        !self.jobs.is_empty() && self.jobs.iter().all(|(_, d)| d.contains(interval))
    }
}
