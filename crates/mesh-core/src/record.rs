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

/// Whether `id` can name a file in the runs folder and nothing else: no separators, no `..`.
pub fn valid_run_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
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
}
