//! Run records: one JSON file per `mesh run` under `.mesh/runs/`, the input of `mesh report`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunRecord {
    pub run_id: String,
    pub domain: String,
    pub env: String,
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepRecord {
    pub name: String,
    /// `job` or `optimize`.
    pub kind: String,
    /// What the step reads and writes (`raw.sales_events → curated.daily_sales`).
    pub target: String,
    pub depends_on: Vec<String>,
    /// `succeeded`, `failed` or `skipped`.
    pub status: String,
    pub attempts: u32,
    pub seconds: f64,
    pub error: Option<String>,
    pub metrics: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot write the run record `{path}`: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read the run record `{path}`: {message}")]
    Read { path: PathBuf, message: String },
    #[error("no run records in `{0}`; run `mesh run` first")]
    NoRuns(PathBuf),
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
                let p = dir.join(format!("{}.json", id.trim_end_matches(".json")));
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
        let text = std::fs::read_to_string(&path).map_err(|e| RecordError::Read {
            path: path.clone(),
            message: e.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| RecordError::Read {
            path,
            message: e.to_string(),
        })
    }
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
                        kind: "job".into(),
                        target: "raw.a → curated.b".into(),
                        depends_on: vec![],
                        status: "failed".into(),
                        attempts: 2,
                        seconds: 1.5,
                        error: Some("check `unique(id)` failed: 3 rows <script>".into()),
                        metrics: BTreeMap::new(),
                    },
                    StepRecord {
                        name: "agg".into(),
                        kind: "job".into(),
                        target: "curated.b → curated.c".into(),
                        depends_on: vec!["load".into()],
                        status: "skipped".into(),
                        attempts: 0,
                        seconds: 0.0,
                        error: Some("`load` failed".into()),
                        metrics: BTreeMap::new(),
                    },
                ],
            }],
        }
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
}
