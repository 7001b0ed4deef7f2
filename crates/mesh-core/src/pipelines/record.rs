//! Run records: one JSON file per `mesh run` under `.mesh/runs/`, the input of `mesh report`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::job::JobReport;
use crate::optimize::{OptimizeMetrics, TableReport};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub run_id: String,
    pub domain: String,
    pub env: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    pub seconds: f64,
    pub params: BTreeMap<String, String>,
    pub succeeded: bool,
    pub pipelines: Vec<PipelineRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PipelineRecord {
    pub project: String,
    pub pipeline: String,
    pub steps: Vec<StepRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Succeeded,
    Failed,
    /// Not run because a step it depends on failed.
    Skipped,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for StepStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// A job: SQL (or a Rust transform) over its inputs, written to its output table.
    Job,
    /// Maintenance of one table.
    Optimize,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Job => "job",
            StepKind::Optimize => "optimize",
        }
    }
}

/// What a step did. In the JSON, the object of the step's kind; `{}` for a step that did
/// not succeed.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum StepMetrics {
    #[default]
    None,
    Job(Box<JobReport>),
    Optimize(Box<OptimizeMetrics>),
}

impl StepMetrics {
    pub fn job(&self) -> Option<&JobReport> {
        match self {
            StepMetrics::Job(j) => Some(j),
            _ => None,
        }
    }
    pub fn optimize(&self) -> Option<&OptimizeMetrics> {
        match self {
            StepMetrics::Optimize(o) => Some(o),
            _ => None,
        }
    }
}

impl Serialize for StepMetrics {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StepMetrics::None => serde::ser::SerializeMap::end(s.serialize_map(Some(0))?),
            StepMetrics::Job(j) => j.serialize(s),
            StepMetrics::Optimize(o) => o.serialize(s),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "StepFile")]
pub struct StepRecord {
    pub name: String,
    pub kind: StepKind,
    /// What the step reads and writes (`raw.sales_events → curated.daily_sales`).
    pub target: String,
    pub depends_on: Vec<String>,
    pub status: StepStatus,
    pub attempts: u32,
    pub seconds: f64,
    pub error: Option<String>,
    pub metrics: StepMetrics,
}

/// A step as stored: its metrics are read by its `kind`.
#[derive(Deserialize)]
struct StepFile {
    name: String,
    kind: StepKind,
    target: String,
    #[serde(default)]
    depends_on: Vec<String>,
    status: StepStatus,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    seconds: f64,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    metrics: serde_json::Map<String, serde_json::Value>,
}

impl TryFrom<StepFile> for StepRecord {
    type Error = String;
    fn try_from(f: StepFile) -> Result<Self, String> {
        let bad = |e: serde_json::Error| format!("step `{}`: metrics: {e}", f.name);
        let metrics = if f.metrics.is_empty() {
            StepMetrics::None
        } else {
            let value = serde_json::Value::Object(f.metrics);
            match f.kind {
                StepKind::Job => StepMetrics::Job(Box::new(serde_json::from_value(value).map_err(bad)?)),
                StepKind::Optimize => StepMetrics::Optimize(Box::new(serde_json::from_value(value).map_err(bad)?)),
            }
        };
        Ok(StepRecord {
            name: f.name,
            kind: f.kind,
            target: f.target,
            depends_on: f.depends_on,
            status: f.status,
            attempts: f.attempts,
            seconds: f.seconds,
            error: f.error,
            metrics,
        })
    }
}

impl StepRecord {
    /// A step that succeeded with these metrics.
    pub fn succeeded(name: String, target: String, metrics: StepMetrics) -> StepRecord {
        let kind = match metrics {
            StepMetrics::Optimize(_) => StepKind::Optimize,
            _ => StepKind::Job,
        };
        StepRecord {
            name,
            kind,
            target,
            depends_on: Vec::new(),
            status: StepStatus::Succeeded,
            attempts: 1,
            seconds: 0.0,
            error: None,
            metrics,
        }
    }

    /// A step that failed (or was skipped) with this error.
    pub fn not_succeeded(
        name: String,
        kind: StepKind,
        target: String,
        status: StepStatus,
        error: String,
    ) -> StepRecord {
        StepRecord {
            name,
            kind,
            target,
            depends_on: Vec::new(),
            status,
            attempts: 1,
            seconds: 0.0,
            error: Some(error),
            metrics: StepMetrics::None,
        }
    }

    /// A `mesh optimize` of one table, or a pipeline `optimize` step.
    pub fn optimized(name: String, report: &TableReport) -> StepRecord {
        let mut s = StepRecord::succeeded(
            name,
            report.table.clone(),
            StepMetrics::Optimize(Box::new(report.metrics())),
        );
        s.seconds = report.seconds;
        s
    }

    /// The step's name for a table's maintenance: `optimize_daily_sales`.
    pub fn optimize_name(table: &str) -> String {
        format!("optimize_{}", table.rsplit('.').next().unwrap_or_default())
    }
}

/// Builds a run record as the steps end; `mesh run` and `mesh optimize` record runs alike.
pub struct RunBuilder {
    record: RunRecord,
    started: Instant,
    started_at: chrono::DateTime<chrono::Utc>,
}

impl RunBuilder {
    /// Starts the clock of run `run_id`.
    pub fn start(run_id: &str, domain: &str, env: &str, params: BTreeMap<String, String>) -> RunBuilder {
        RunBuilder {
            record: RunRecord {
                run_id: run_id.to_string(),
                domain: domain.to_string(),
                env: env.to_string(),
                started_at: String::new(),
                finished_at: String::new(),
                seconds: 0.0,
                params,
                succeeded: true,
                pipelines: Vec::new(),
            },
            started: Instant::now(),
            started_at: chrono::Utc::now(),
        }
    }

    /// Adds a step to its pipeline (pipelines in order of first step); any step that did not
    /// succeed makes the run fail.
    pub fn step(&mut self, project: &str, pipeline: &str, step: StepRecord) {
        if step.status != StepStatus::Succeeded {
            self.record.succeeded = false;
        }
        let pipelines = &mut self.record.pipelines;
        match pipelines
            .iter_mut()
            .find(|p| p.project == project && p.pipeline == pipeline)
        {
            Some(p) => p.steps.push(step),
            None => pipelines.push(PipelineRecord {
                project: project.to_string(),
                pipeline: pipeline.to_string(),
                steps: vec![step],
            }),
        }
    }

    /// The record, with the run's times.
    pub fn finish(mut self) -> RunRecord {
        self.record.started_at = self.started_at.to_rfc3339();
        self.record.finished_at = chrono::Utc::now().to_rfc3339();
        self.record.seconds = self.started.elapsed().as_secs_f64();
        self.record
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot write the run record `{path}`: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read the run record `{path}`: {message}")]
    Read { path: PathBuf, message: String },
    #[error("no run records in `{0}`; run `mesh run` first")]
    NoRuns(PathBuf),
    #[error("`{0}` is not a run id (letters, digits, `-`, `_` and `.`, at most 64, not starting with `.`); `ls .mesh/runs` lists the runs")]
    InvalidRunId(String),
    #[error(
        "the run record `{path}` names the run `{id}`, which is not a run id; the file was not written by mesh run"
    )]
    BadRecord { path: PathBuf, id: String },
    #[error("the run record `{0}` is a link; run records are read only from the runs folder itself")]
    Link(PathBuf),
    #[error("no run `{id}` in `{dir}`; `ls {dir}` lists the runs")]
    UnknownRun { id: String, dir: PathBuf },
}

/// A sortable, unique-enough id: UTC time to the millisecond plus the process id.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    format!(
        "{}-{:05}",
        now.format("%Y%m%dT%H%M%S%3fZ"),
        std::process::id() % 100_000
    )
}

pub use crate::layout::valid_run_id;

impl RunRecord {
    /// Writes `{dir}/{run_id}.json` atomically (temp file + rename), so readers never see half a record.
    pub fn save(&self, dir: &Path) -> Result<PathBuf, RecordError> {
        let path = dir.join(format!("{}.json", self.run_id));
        let err = |source| RecordError::Write {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        let tmp = dir.join(format!(".{}.json.tmp", self.run_id));
        let text = serde_json::to_string_pretty(self).expect("records serialise");
        std::fs::write(&tmp, text).map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)?;
        Ok(path)
    }

    /// Loads a run by id, or the latest run when `id` is None.
    pub fn load(dir: &Path, id: Option<&str>) -> Result<RunRecord, RecordError> {
        let path = match id {
            Some(id) => {
                let id = id.trim_end_matches(".json");
                if !valid_run_id(id) {
                    return Err(RecordError::InvalidRunId(
                        mesh_domain::diagnostic::truncate(id).into_owned(),
                    ));
                }
                let p = dir.join(format!("{id}.json"));
                if !p.is_file() {
                    return Err(RecordError::UnknownRun {
                        id: id.to_string(),
                        dir: dir.to_path_buf(),
                    });
                }
                p
            }
            None => {
                let mut runs: Vec<PathBuf> = std::fs::read_dir(dir)
                    .map_err(|_| RecordError::NoRuns(dir.to_path_buf()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.extension().is_some_and(|e| e == "json")
                            && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
                    })
                    .collect();
                runs.sort();
                runs.pop().ok_or_else(|| RecordError::NoRuns(dir.to_path_buf()))?
            }
        };
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(RecordError::Link(path));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| RecordError::Read {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let record: RunRecord = serde_json::from_str(&text).map_err(|e| RecordError::Read {
            path: path.clone(),
            message: e.to_string(),
        })?;
        // The id names the report file written beside the record: `../../x` would leave the folder.
        if !valid_run_id(&record.run_id) {
            return Err(RecordError::BadRecord {
                path,
                id: mesh_domain::diagnostic::truncate(&record.run_id).into_owned(),
            });
        }
        Ok(record)
    }
}

/// The last `limit` runs in `dir` up to run `until` (included; run ids sort by their start
/// time), oldest first, for the history of `mesh report` and `mesh runs`. Records that do not
/// load (a link, another format) are left out and counted.
pub fn recent_runs(dir: &Path, limit: usize, until: Option<&str>) -> (Vec<RunRecord>, usize) {
    let mut ids: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(".json")?;
            valid_run_id(id).then(|| id.to_string())
        })
        .filter(|id| until.is_none_or(|u| id.as_str() <= u))
        .collect();
    ids.sort();
    let mut runs = Vec::new();
    let mut unreadable = 0;
    for id in ids.iter().rev() {
        if runs.len() == limit {
            break;
        }
        match RunRecord::load(dir, Some(id)) {
            Ok(r) => runs.push(r),
            Err(_) => unreadable += 1,
        }
    }
    runs.reverse();
    (runs, unreadable)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> RunRecord {
        RunRecord {
            run_id: "20261127T080000000Z-00001".into(),
            domain: "finance01".into(),
            env: "local".into(),
            started_at: "2026-11-27T08:00:00Z".into(),
            finished_at: "2026-11-27T08:00:05Z".into(),
            seconds: 5.0,
            params: BTreeMap::new(),
            succeeded: false,
            pipelines: vec![PipelineRecord {
                project: "sales".into(),
                pipeline: "main".into(),
                steps: vec![
                    StepRecord {
                        name: "load".into(),
                        kind: StepKind::Job,
                        target: "raw.a → curated.b".into(),
                        depends_on: vec![],
                        status: StepStatus::Failed,
                        attempts: 2,
                        seconds: 1.5,
                        error: Some("check `unique(id)` failed: 3 rows <script>".into()),
                        metrics: StepMetrics::None,
                    },
                    StepRecord {
                        name: "agg".into(),
                        kind: StepKind::Job,
                        target: "curated.b → curated.c".into(),
                        depends_on: vec!["load".into()],
                        status: StepStatus::Skipped,
                        attempts: 0,
                        seconds: 0.0,
                        error: Some("`load` failed".into()),
                        metrics: StepMetrics::None,
                    },
                ],
            }],
        }
    }

    #[test]
    fn recent_runs_stop_at_the_run_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = sample();
        for id in [
            "20261127T080000000Z-00001",
            "20261127T090000000Z-00002",
            "20261127T100000000Z-00003",
        ] {
            r.run_id = id.into();
            r.save(dir.path()).unwrap();
        }
        let ids = |runs: Vec<RunRecord>| runs.into_iter().map(|r| r.run_id).collect::<Vec<_>>();
        let (all, bad) = recent_runs(dir.path(), 10, None);
        assert_eq!((all.len(), bad), (3, 0));
        let (upto, _) = recent_runs(dir.path(), 10, Some("20261127T090000000Z-00002"));
        assert_eq!(ids(upto), ["20261127T080000000Z-00001", "20261127T090000000Z-00002"]);
        let (last, _) = recent_runs(dir.path(), 1, Some("20261127T090000000Z-00002"));
        assert_eq!(ids(last), ["20261127T090000000Z-00002"]);
    }

    #[test]
    fn save_and_load_latest() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = sample();
        a.save(dir.path()).unwrap();
        a.run_id = "20261127T090000000Z-00002".into();
        a.save(dir.path()).unwrap();
        assert_eq!(RunRecord::load(dir.path(), None).unwrap().run_id, a.run_id);
        assert_eq!(
            RunRecord::load(dir.path(), Some("20261127T080000000Z-00001"))
                .unwrap()
                .run_id,
            "20261127T080000000Z-00001"
        );
        assert!(matches!(
            RunRecord::load(dir.path(), Some("nope")),
            Err(RecordError::UnknownRun { .. })
        ));
    }

    #[test]
    fn run_ids_stay_in_the_runs_folder() {
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("runs");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(top.path().join("x.json"), serde_json::to_string(&sample()).unwrap()).unwrap();
        for id in [
            "../x",
            "../../x",
            "/etc/passwd",
            "a/b",
            "",
            ".hidden",
            "a\\b",
            &"x".repeat(65),
        ] {
            assert!(
                matches!(RunRecord::load(&dir, Some(id)), Err(RecordError::InvalidRunId(_))),
                "{id}"
            );
        }
        // A record whose own id would steer the report file elsewhere is refused.
        let mut evil = sample();
        evil.run_id = "../../../../x".into();
        std::fs::write(dir.join("r1.json"), serde_json::to_string(&evil).unwrap()).unwrap();
        assert!(matches!(
            RunRecord::load(&dir, Some("r1")),
            Err(RecordError::BadRecord { .. })
        ));
        assert!(matches!(
            RunRecord::load(&dir, None),
            Err(RecordError::BadRecord { .. })
        ));
        // A link in the runs folder is not followed.
        std::os::unix::fs::symlink(top.path().join("x.json"), dir.join("r2.json")).unwrap();
        assert!(matches!(RunRecord::load(&dir, Some("r2")), Err(RecordError::Link(_))));
        assert!(valid_run_id(&new_run_id()));
    }

    /// A record as `mesh run` wrote it before the metrics were typed: it loads, and saving it
    /// again writes the same JSON.
    const OLD: &str = r#"{
  "run_id": "20261201T025200711Z-15761", "domain": "finance01", "env": "local",
  "started_at": "2026-12-01T02:52:00.743633465+00:00", "finished_at": "2026-12-01T02:52:01.154311848+00:00",
  "seconds": 0.41067874, "params": {"run_date": "2026-12-01"}, "succeeded": false,
  "pipelines": [{"project": "customers", "pipeline": "main", "steps": [
    {"name": "customers_latest", "kind": "job", "target": "raw.customer_events → curated.customers",
     "depends_on": [], "status": "succeeded", "attempts": 1, "seconds": 0.28, "error": null,
     "metrics": {"bytes_read": 739881, "checks": [
        {"check": "accepted_values", "detail": "19 failing rows", "failing_rows": 19,
         "name": "accepted_values(segment)", "passed": false, "severity": "warn"}],
       "deleted": 0, "files_added": 8, "files_read": 1, "files_removed": 0, "inserted": 1429,
       "job": "customers_latest", "operation": "append", "rows_read": 3849, "rows_rejected": 0,
       "rows_written": 1429, "seconds": 0.28, "snapshot_id": 8803496360810922606, "updated": 0}},
    {"name": "optimize_customers", "kind": "optimize", "target": "curated.customers",
     "depends_on": ["customers_latest"], "status": "succeeded", "attempts": 1, "seconds": 0.02,
     "error": null, "metrics": {"bytes_after": 10658, "bytes_before": 10658, "bytes_compacted": 0,
       "compaction_groups": 0, "dry_run": false, "expired_bytes": 0, "expired_files": 0,
       "files_after": 1, "files_before": 1, "files_compacted": 0, "orphan_bytes": 0, "orphan_files": 0,
       "seconds": 0.018, "snapshot_id": null, "snapshots_expired": 0}},
    {"name": "optimize_other", "kind": "optimize", "target": "curated.other", "depends_on": [],
     "status": "succeeded", "attempts": 1, "seconds": 0.01, "error": null,
     "metrics": {"compaction": "disabled", "dry_run": false, "seconds": 0.01}},
    {"name": "agg", "kind": "job", "target": "curated.customers → curated.c", "depends_on": ["customers_latest"],
     "status": "failed", "attempts": 2, "seconds": 1.0, "error": "boom", "metrics": {}}
  ]}]
}"#;

    #[test]
    fn old_records_load_typed_and_save_the_same_keys() {
        let r: RunRecord = serde_json::from_str(OLD).unwrap();
        let steps = &r.pipelines[0].steps;
        let job = steps[0].metrics.job().expect("job metrics");
        assert_eq!((job.rows_written, job.snapshot_id), (1429, Some(8803496360810922606)));
        assert_eq!(job.bytes_written, 0, "absent in old records");
        assert_eq!(job.checks[0].severity, mesh_domain::Severity::Warn);
        assert!(!job.checks[0].passed && job.checks[0].failing_rows == 19);
        let opt = steps[1].metrics.optimize().expect("optimize metrics");
        assert_eq!(opt.compacted.as_ref().map(|c| c.files_after), Some(1));
        assert_eq!(opt.retention.as_ref().map(|c| c.snapshots_expired), Some(0));
        assert_eq!(opt.orphans.as_ref().map(|c| c.orphan_files), Some(0));
        let disabled = steps[2].metrics.optimize().unwrap();
        assert_eq!(disabled.compaction, Some(crate::optimize::NotRun::Disabled));
        assert!(disabled.compacted.is_none() && disabled.retention.is_none());
        assert_eq!(
            (steps[3].status, &steps[3].metrics),
            (StepStatus::Failed, &StepMetrics::None)
        );

        let old: serde_json::Value = serde_json::from_str(OLD).unwrap();
        let new = serde_json::to_value(&r).unwrap();
        let keys = |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        for (i, (o, n)) in old["pipelines"][0]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .zip(new["pipelines"][0]["steps"].as_array().unwrap())
            .enumerate()
        {
            assert_eq!(o["status"], n["status"]);
            assert_eq!(o["kind"], n["kind"]);
            let (ko, kn) = (keys(&o["metrics"]), keys(&n["metrics"]));
            let missing: Vec<&String> = ko.iter().filter(|k| !kn.contains(k)).collect();
            assert!(missing.is_empty(), "step {i}: keys lost: {missing:?}");
            for k in &ko {
                assert_eq!(o["metrics"][k], n["metrics"][k], "step {i} key {k}");
            }
        }
        // And it loads again.
        let again: RunRecord = serde_json::from_value(new).unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn the_builder_fails_the_run_when_a_step_did_not_succeed() {
        let mut b = RunBuilder::start("r1", "d", "local", BTreeMap::new());
        b.step(
            "p",
            "main",
            StepRecord::succeeded("a".into(), "x".into(), StepMetrics::None),
        );
        let ok = b.finish();
        assert!(ok.succeeded && ok.pipelines.len() == 1);
        let mut b = RunBuilder::start("r2", "d", "local", BTreeMap::new());
        b.step(
            "p",
            "main",
            StepRecord::succeeded("a".into(), "x".into(), StepMetrics::None),
        );
        b.step(
            "p",
            "main",
            StepRecord::not_succeeded("b".into(), StepKind::Job, "y".into(), StepStatus::Skipped, "`a`".into()),
        );
        b.step(
            "q",
            "main",
            StepRecord::succeeded("c".into(), "z".into(), StepMetrics::None),
        );
        let r = b.finish();
        assert!(!r.succeeded);
        assert_eq!(r.pipelines.iter().map(|p| p.steps.len()).collect::<Vec<_>>(), [2, 1]);
        assert!(chrono::DateTime::parse_from_rfc3339(&r.finished_at).is_ok());
    }
}
