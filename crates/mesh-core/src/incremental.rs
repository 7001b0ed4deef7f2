//! Job state kept in the output table's snapshot summary: the bookmark of each incremental
//! input and the intervals a time-range job has done. Read from the output table's latest
//! snapshot when the job starts, written with the commit of its result (one compare-and-swap:
//! a run killed before it reprocesses the same input, a run that committed never does).

use serde::{Deserialize, Serialize};

use crate::raw::FileId;

/// How far below the newest processed file's modification time files still count one by one.
/// Older files are taken as processed (the bookmark stays small); a landing process whose files
/// appear more than this late, by their own modification time, would have them skipped.
pub const BAND_MS: i64 = 60 * 60 * 1000;

/// Summary property holding a job's bookmark of one input.
pub fn bookmark_key(job: &str, input: &str) -> String {
    format!("{}{job}.bookmark.{input}", mesh_iceberg::STATE_PREFIX)
}

/// Summary property holding the intervals a time-range job has committed.
pub fn intervals_key(job: &str) -> String {
    format!("{}{job}.intervals", mesh_iceberg::STATE_PREFIX)
}

/// Which files of a raw input a job has processed: every file modified before `before_ms`,
/// and the listed files at or after it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawBookmark {
    pub before_ms: i64,
    pub files: Vec<FileId>,
}

impl RawBookmark {
    pub fn parse(s: &str) -> serde_json::Result<RawBookmark> {
        serde_json::from_str(s)
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("plain data")
    }

    pub fn is_processed(&self, f: &FileId) -> bool {
        f.modified_ms < self.before_ms || self.files.binary_search(f).is_ok()
    }

    /// The bookmark after also processing `read`.
    pub fn advance(&self, read: &[FileId]) -> RawBookmark {
        let newest = self
            .files
            .iter()
            .chain(read)
            .map(|f| f.modified_ms)
            .max()
            .unwrap_or(i64::MIN);
        let before_ms = self.before_ms.max(newest.saturating_sub(BAND_MS));
        let mut files: Vec<FileId> = self
            .files
            .iter()
            .chain(read)
            .filter(|f| f.modified_ms >= before_ms)
            .cloned()
            .collect();
        files.sort();
        files.dedup();
        RawBookmark { before_ms, files }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, size: u64, t: i64) -> FileId {
        FileId {
            path: path.into(),
            size,
            modified_ms: t,
        }
    }

    #[test]
    fn new_files_are_those_not_in_the_bookmark() {
        let h = BAND_MS;
        let b0 = RawBookmark::default();
        let day1 = [f("d=1/a.csv", 10, 0), f("d=1/b.csv", 20, 5)];
        assert!(day1.iter().all(|x| !b0.is_processed(x)));
        let b1 = b0.advance(&day1);
        assert!(day1.iter().all(|x| b1.is_processed(x)));
        // A file landing later, and one rewritten in place (new size and time), are new.
        let late = f("d=1/c.csv", 7, 3);
        assert!(!b1.is_processed(&late));
        assert!(!b1.is_processed(&f("d=1/a.csv", 11, 9)));
        // Far newer files move the watermark: older ones then count as processed and the
        // bookmark keeps only files inside the band.
        let day2 = [f("d=2/a.csv", 10, 10 * h)];
        let b2 = b1.advance(std::slice::from_ref(&late)).advance(&day2);
        assert_eq!(b2.before_ms, 9 * h);
        assert_eq!(b2.files, day2.to_vec());
        assert!(b2.is_processed(&late) && b2.is_processed(&day2[0]));
        assert!(!b2.is_processed(&f("d=2/b.csv", 1, 9 * h + 1)));
        assert_eq!(RawBookmark::parse(&b2.encode()).unwrap(), b2);
        assert!(RawBookmark::parse("{").is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// Reading and writing the state around a job run.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
use mesh_domain::{Job, OnRewrite, Project, TableRef};
use mesh_iceberg::{CommitProperties, Increment};

use crate::engine::Engine;
use crate::interval::{parse_instant, DoneSet, Interval};
use crate::job::JobReport;

/// The job's output table if it exists (its latest snapshot holds the job's state).
pub async fn output_table(
    engine: &Engine,
    project: &Project,
    job: &Job,
) -> Result<Option<mesh_iceberg::Table>, mesh_iceberg::Error> {
    if job.incremental.is_none() && job.time_range.is_none() {
        return Ok(None);
    }
    let table = project.table(&job.output).expect("validated reference");
    match engine.load_table(project, table).await {
        Ok(t) => Ok(Some(t)),
        Err(mesh_iceberg::Error::TableNotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A raw input's bookmark: its property key, the stored value, and the parsed bookmark.
pub fn raw_bookmark(
    job: &Job,
    input: &TableRef,
    output: Option<&mesh_iceberg::Table>,
) -> Result<(String, Option<String>, RawBookmark), IncrementError> {
    let key = bookmark_key(job.name.as_str(), &input.to_string());
    let prev = output.and_then(|t| t.summary_property(&key));
    let bookmark = match &prev {
        Some(s) => RawBookmark::parse(s).map_err(|source| IncrementError::UnreadableRawBookmark {
            input: input.to_string(),
            key: key.clone(),
            value: s.clone(),
            source,
        })?,
        None => RawBookmark::default(),
    };
    Ok((key, prev, bookmark))
}

#[derive(Debug, thiserror::Error)]
pub enum IncrementError {
    #[error(transparent)]
    Engine(#[from] mesh_iceberg::Error),
    #[error("incremental input {input}: snapshot {snapshot_id} ({operation}) rewrote rows after snapshot {from}, which this job processed up to; an append-only read would miss or repeat rows\n  help: set on_rewrite = \"full_read\" in [jobs.incremental] to read the input in full in that case, or reprocess it deliberately")]
    Rewritten {
        input: String,
        snapshot_id: i64,
        operation: String,
        from: i64,
    },
    #[error("incremental input {input}: the bookmark `{value}` in the output's summary property `{key}` is not a snapshot id")]
    BadBookmark { input: String, key: String, value: String },
    #[error("incremental input {input}: unreadable raw bookmark `{value}` in the output's summary property `{key}`: {source}")]
    UnreadableRawBookmark {
        input: String,
        key: String,
        value: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Rows of a time-range job's result outside its interval.
#[derive(Debug, thiserror::Error)]
#[error("{rows} row(s) of the result have `{column}` outside the interval {label} [{start}, {end}) (from {min} to {max}, or null); a time-range run replaces only its interval\n  help: filter the inputs with `${{interval_start}}` and `${{interval_end}}` in the job's SQL")]
pub struct OutsideInterval {
    pub rows: String,
    pub column: String,
    pub label: String,
    pub start: String,
    pub end: String,
    pub min: String,
    pub max: String,
}

/// What is wrong with a time-range job's interval.
#[derive(Debug, thiserror::Error)]
pub enum IntervalError {
    #[error("parameter {name} = `{value}` is not a date: use YYYY-MM-DD (or YYYY-MM-DDTHH for hourly jobs)")]
    NotADate { name: &'static str, value: String },
    #[error(transparent)]
    Outside(Box<OutsideInterval>),
    #[error("checking that the result lies in the interval failed: {0}")]
    Check(#[source] Box<datafusion::error::DataFusionError>),
}

/// An Iceberg input's rows appended since the bookmark (all rows the first time, or on a
/// rewrite when the manifest allows a full read); records the new bookmark in `state`.
pub async fn iceberg_increment(
    job: &Job,
    input: &TableRef,
    table: &mesh_iceberg::Table,
    output: Option<&mesh_iceberg::Table>,
    state: &mut CommitProperties,
    report: &mut JobReport,
) -> Result<(SchemaRef, Vec<RecordBatch>), IncrementError> {
    let key = bookmark_key(job.name.as_str(), &input.to_string());
    let prev = output.and_then(|t| t.summary_property(&key));
    let from = prev
        .as_deref()
        .map(|v| {
            v.parse::<i64>().map_err(|_| IncrementError::BadBookmark {
                input: input.to_string(),
                key: key.clone(),
                value: v.to_string(),
            })
        })
        .transpose()?;
    let on_rewrite = job
        .incremental
        .as_ref()
        .map(|i| i.on_rewrite)
        .unwrap_or(OnRewrite::Error);
    let schema = table.arrow_schema()?;
    let increment = match (from, table.current_snapshot_id()) {
        (_, None) => Increment::Appended {
            batches: vec![],
            files: 0,
        },
        (Some(from), Some(_)) => table.appended_since(from).await?,
        (None, Some(_)) => Increment::NotInHistory,
    };
    let (batches, files) = match increment {
        Increment::Appended { batches, files } => (batches, files),
        Increment::Rewritten { snapshot_id, operation } if on_rewrite == OnRewrite::Error => {
            return Err(IncrementError::Rewritten {
                input: input.to_string(),
                snapshot_id,
                operation,
                from: from.unwrap_or_default(),
            })
        }
        // First run, a rewrite the manifest accepts, or a bookmark older than the history
        // kept: the whole input.
        _ => {
            let scan = table.scan(&mesh_iceberg::ScanOptions::default()).await?;
            (scan.batches, scan.files_scanned)
        }
    };
    report.rows_read += batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
    report.files_read += files;
    if let Some(current) = table.current_snapshot_id() {
        state.set.insert(key.clone(), current.to_string());
        state.expect.insert(key, prev);
    }
    let schema = batches.first().map(|b| b.schema()).unwrap_or(schema);
    Ok((schema, batches))
}

/// A time-range job's interval (from `interval_start`, else `run_date`), bound as
/// `${interval_start}` / `${interval_end}`; records the interval as done in `state`.
pub fn bind_interval(
    job: &Job,
    output_decl: &mesh_domain::Table,
    params: &mut std::collections::BTreeMap<String, String>,
    output: Option<&mesh_iceberg::Table>,
    state: &mut CommitProperties,
) -> Result<Option<(Interval, String)>, IntervalError> {
    let Some(tr) = &job.time_range else {
        return Ok(None);
    };
    let (name, value) = match (params.get("interval_start"), params.get("run_date")) {
        (Some(v), _) => ("interval_start", v.clone()),
        (None, Some(v)) => ("run_date", v.clone()),
        (None, None) => ("run_date", chrono::Utc::now().format("%Y-%m-%d").to_string()),
    };
    let at = parse_instant(&value).ok_or_else(|| IntervalError::NotADate {
        name,
        value: value.clone(),
    })?;
    let interval = Interval::containing(tr.grain, at);
    for (k, v) in interval.params() {
        if k != "run_date" || !params.contains_key("run_date") {
            params.insert(k, v);
        }
    }
    let column = output_decl.column(tr.column.as_str()).expect("validated time column");
    let predicate = interval.predicate(tr.column.as_str(), column.data_type);
    let key = intervals_key(job.name.as_str());
    let prev = output.and_then(|t| t.summary_property(&key));
    let mut done = DoneSet::parse(tr.grain, prev.as_deref().unwrap_or(""));
    done.insert(interval);
    state.set.insert(key.clone(), done.encode());
    state.expect.insert(key, prev);
    Ok(Some((interval, predicate)))
}

/// The intervals of a time-range job recorded in its output table.
pub async fn done_intervals(engine: &Engine, project: &Project, job: &Job) -> Result<DoneSet, mesh_iceberg::Error> {
    let Some(tr) = &job.time_range else {
        return Ok(DoneSet::default());
    };
    let value = output_table(engine, project, job)
        .await?
        .and_then(|t| t.summary_property(&intervals_key(job.name.as_str())));
    Ok(DoneSet::parse(tr.grain, value.as_deref().unwrap_or("")))
}

/// Fails when a row of the result (table `output`) lies outside the interval: the overwrite
/// replaces only the interval, so such a row would be duplicated by the next run of its own.
pub async fn check_in_interval(
    ctx: &SessionContext,
    job: &Job,
    interval: &Interval,
    predicate: &str,
) -> Result<(), IntervalError> {
    let column = &job.time_range.as_ref().expect("time-range job").column;
    let sql = format!(
        "SELECT count(*), CAST(min({column}) AS VARCHAR), CAST(max({column}) AS VARCHAR) FROM output WHERE NOT ({predicate}) OR {column} IS NULL"
    );
    let check = |e| IntervalError::Check(Box::new(e));
    let batches = ctx.sql(&sql).await.map_err(check)?.collect().await.map_err(check)?;
    let b = &batches[0];
    let cell = |i: usize| arrow::util::display::array_value_to_string(b.column(i), 0).unwrap_or_default();
    if cell(0) != "0" {
        let (start, end) = (interval.params()[0].1.clone(), interval.params()[1].1.clone());
        return Err(IntervalError::Outside(Box::new(OutsideInterval {
            rows: cell(0),
            column: column.to_string(),
            label: interval.label(),
            start,
            end,
            min: cell(1),
            max: cell(2),
        })));
    }
    Ok(())
}

/// Drops properties that would not change (a run that found nothing new commits nothing).
pub fn changed_only(mut props: CommitProperties) -> CommitProperties {
    props.set.retain(|k, v| props.expect.get(k) != Some(&Some(v.clone())));
    if props.set.is_empty() {
        return CommitProperties::default();
    }
    props
}
