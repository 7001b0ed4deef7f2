//! `mesh state show|reset JOB` and the reset step of `mesh run --full-refresh`: a job's state
//! as its output table holds it (bookmarks, intervals done, fingerprint), and resetting it in
//! one commit.
//!
//! Summary properties are carried from snapshot to snapshot and cannot be removed, so a reset
//! state is an empty value: every reader of job state takes `""` as "no state" (an incremental
//! input is read in full, a time-range job has done no interval, no fingerprint is recorded).

use mesh_domain::{Job, Project};
use serde::Serialize;

use crate::engine::Engine;
use crate::fingerprint::{fingerprint_key, Fingerprint};

/// One state property of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateEntry {
    pub key: String,
    /// `None`: reset (or never written).
    pub value: Option<String>,
}

/// `mesh state show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateView {
    pub project: String,
    pub job: String,
    pub output: String,
    /// `incremental`, `time_range` or `none`.
    pub kind: String,
    pub on_change: String,
    /// The output table's current snapshot (`None`: no table or no snapshot yet).
    pub snapshot_id: Option<i64>,
    pub entries: Vec<StateEntry>,
    /// The fingerprint committed with the state, and the job's now.
    pub fingerprint_committed: Option<String>,
    pub fingerprint_now: Option<String>,
    /// The parts of the definition that changed since (empty: none, or nothing committed).
    pub changed: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no job `{job}` in any project\n  help: {help}")]
    UnknownJob { job: String, help: String },
    #[error("job `{job}` keeps no state (neither incremental nor time-range): every run recomputes {output}")]
    Stateless { job: String, output: String },
    #[error("job `{job}`: {source}")]
    Engine {
        job: String,
        #[source]
        source: Box<mesh_iceberg::Error>,
    },
}

/// The project and job named `name` (unique across projects, or `project/job`).
pub fn find_job<'a>(engine: &'a Engine, name: &str) -> Result<(&'a Project, &'a Job), StateError> {
    let (proj, job) = match name.split_once('/') {
        Some((p, j)) => (Some(p), j),
        None => (None, name),
    };
    let found = engine
        .domain
        .projects
        .iter()
        .filter(|p| proj.is_none_or(|x| x == p.name.as_str()))
        .find_map(|p| p.job(job).map(|j| (p, j)));
    found.ok_or_else(|| {
        let all: Vec<&str> = engine
            .domain
            .projects
            .iter()
            .flat_map(|p| p.jobs.iter().map(|j| j.name.as_str()))
            .collect();
        StateError::UnknownJob {
            job: name.to_string(),
            help: mesh_domain::diagnostic::did_you_mean(job, all.iter().copied())
                .unwrap_or_else(|| format!("jobs are: {}", all.join(", "))),
        }
    })
}

/// Every state key of `job` the table's snapshots (or the state tag's) have carried.
fn state_keys(t: &mesh_iceberg::Table, job: &Job) -> Vec<String> {
    let prefix = format!("{}{}.", mesh_iceberg::STATE_PREFIX, job.name);
    let mut keys: std::collections::BTreeSet<String> = t
        .metadata()
        .snapshots()
        .flat_map(|s| s.summary().additional_properties.keys().cloned().collect::<Vec<_>>())
        .filter(|k| k.starts_with(&prefix))
        .collect();
    // The keys the job writes now, even if no snapshot holds them yet.
    keys.insert(fingerprint_key(job.name.as_str()));
    if let Some(inc) = &job.incremental {
        for i in &inc.inputs {
            keys.insert(crate::incremental::bookmark_key(job.name.as_str(), &i.to_string()));
        }
    }
    if job.time_range.is_some() {
        keys.insert(crate::incremental::intervals_key(job.name.as_str()));
    }
    keys.into_iter().collect()
}

async fn output_table(
    engine: &Engine,
    project: &Project,
    job: &Job,
) -> Result<Option<mesh_iceberg::Table>, StateError> {
    if !job.is_stateful() {
        return Err(StateError::Stateless {
            job: job.name.to_string(),
            output: job.output.to_string(),
        });
    }
    crate::incremental::output_table(engine, project, job)
        .await
        .map_err(|source| StateError::Engine {
            job: job.name.to_string(),
            source: Box::new(source),
        })
}

pub async fn show(engine: &Engine, project: &Project, job: &Job) -> Result<StateView, StateError> {
    let t = output_table(engine, project, job).await?;
    let engine_err = |source: mesh_iceberg::Error| StateError::Engine {
        job: job.name.to_string(),
        source: Box::new(source),
    };
    let mut entries = Vec::new();
    let mut committed = None;
    if let Some(t) = &t {
        for key in state_keys(t, job) {
            let value = t.job_state(&key).map_err(engine_err)?.filter(|v| !v.is_empty());
            if key == fingerprint_key(job.name.as_str()) {
                committed = value.clone();
            }
            entries.push(StateEntry { key, value });
        }
    }
    let now = Fingerprint::of_job(&engine.root, project, job);
    let changed = match (&now, &committed) {
        (Some(n), Some(c)) => n.changed_parts(c).into_iter().map(String::from).collect(),
        _ => Vec::new(),
    };
    Ok(StateView {
        project: project.name.to_string(),
        job: job.name.to_string(),
        output: job.output.to_string(),
        kind: match (&job.incremental, &job.time_range) {
            (Some(_), _) => "incremental".into(),
            (_, Some(_)) => "time_range".into(),
            _ => "none".into(),
        },
        on_change: job.on_change().as_str().into(),
        snapshot_id: t.as_ref().and_then(|t| t.current_snapshot_id()),
        entries,
        fingerprint_committed: committed,
        fingerprint_now: now.map(|f| f.0),
        changed,
    })
}

/// What a reset did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResetOutcome {
    pub job: String,
    pub output: String,
    /// The keys reset (they held a value).
    pub reset: Vec<String>,
    /// The snapshot of the reset commit (`None`: nothing to reset, nothing committed).
    pub snapshot_id: Option<i64>,
    /// Rows removed from the output (a full refresh empties it; `mesh state reset` keeps them).
    pub rows_removed: u64,
    /// A time-range job's intervals done before the reset (`2026-12-01/2026-12-05`).
    pub intervals_before: Option<String>,
}

/// Resets the job's state in one commit of its output table: every state key it holds is set
/// to `""`, each expected to still hold the value read (a run committing meanwhile makes the
/// reset fail, not lose its work). With `empty_output` the same commit removes every row of
/// the output (the first step of a full refresh: the table then is what a fresh environment
/// starts from).
pub async fn reset(
    engine: &Engine,
    project: &Project,
    job: &Job,
    empty_output: bool,
) -> Result<ResetOutcome, StateError> {
    let engine_err = |source: mesh_iceberg::Error| StateError::Engine {
        job: job.name.to_string(),
        source: Box::new(source),
    };
    let mut outcome = ResetOutcome {
        job: job.name.to_string(),
        output: job.output.to_string(),
        reset: vec![],
        snapshot_id: None,
        rows_removed: 0,
        intervals_before: None,
    };
    let Some(mut t) = output_table(engine, project, job).await? else {
        return Ok(outcome);
    };
    if let Some(tr) = &job.time_range {
        let v = t
            .job_state(&crate::incremental::intervals_key(job.name.as_str()))
            .map_err(engine_err)?;
        let done = crate::interval::DoneSet::parse(tr.grain, v.as_deref().unwrap_or(""));
        outcome.intervals_before = (!done.is_empty()).then(|| done.encode());
    }
    let mut props = mesh_iceberg::CommitProperties::default();
    for key in state_keys(&t, job) {
        let value = t.job_state(&key).map_err(engine_err)?;
        if value.as_deref().is_some_and(|v| !v.is_empty()) {
            props.set.insert(key.clone(), String::new());
            props.expect.insert(key.clone(), value);
            outcome.reset.push(key);
        }
    }
    let rows = t.info().total_records.unwrap_or(0);
    if props.set.is_empty() && (!empty_output || rows == 0) {
        return Ok(outcome);
    }
    t.set_commit_properties(props);
    let evolution = mesh_iceberg::SchemaEvolution::default();
    let commit = if empty_output && t.current_snapshot_id().is_some() {
        t.overwrite(&[], mesh_iceberg::OverwriteMode::All, evolution).await
    } else {
        t.append(&[], evolution).await
    }
    .map_err(engine_err)?;
    outcome.snapshot_id = commit.snapshot_id;
    outcome.rows_removed = if empty_output { commit.removed_records } else { 0 };
    Ok(outcome)
}

/// The intervals of a stored done set (`2026-12-01/2026-12-03,2026-12-05`), in order.
pub fn intervals_of(job: &Job, encoded: &str) -> Vec<crate::interval::Interval> {
    let Some(tr) = &job.time_range else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for part in encoded.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('/').unwrap_or((part, part));
        let (Some(mut i), Some(b)) = (
            crate::interval::Interval::parse_label(tr.grain, a),
            crate::interval::Interval::parse_label(tr.grain, b),
        ) else {
            continue;
        };
        while i <= b {
            out.push(i);
            i = i.next();
        }
    }
    out
}
