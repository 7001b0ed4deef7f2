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

/// Processed files a raw bookmark keeps listing below the band (the most recently modified
/// first), so that one that changes after it left the band is still recognised and refused
/// instead of read again as new. Bounds the bookmark's size (about 100 bytes a file).
pub const KEEP_FILES: usize = 200;

/// Summary property holding a job's bookmark of one input.
pub fn bookmark_key(job: &str, input: &str) -> String {
    format!("{}{job}.bookmark.{input}", mesh_iceberg::STATE_PREFIX)
}

/// Summary property holding the intervals a time-range job has committed.
pub fn intervals_key(job: &str) -> String {
    format!("{}{job}.intervals", mesh_iceberg::STATE_PREFIX)
}

/// Which files of a raw input a job has processed: every file modified before `before_ms`,
/// and the listed files at or after it. `files` also lists the most recently modified of the
/// older processed files, up to [`KEEP_FILES`] in all, to recognise them if they change.
///
/// Two rules keep it from skipping or doubling input, on both engines (the Glue runner's
/// `advance_bookmark` / `changed_file` encode the same):
/// - a file's modification time counts at most as the run's time when it moves `before_ms`:
///   one file dated in the future cannot make files landing normally after the run look
///   processed;
/// - a processed file that changed (grew, shrank or was rewritten: same path, another size or
///   time) is refused by [`RawBookmark::changed`]: reading it again would repeat its rows.
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

    /// The processed file `f` was when the bookmark recorded it, if `f` is that file changed
    /// since (the same path with another size or modification time).
    pub fn changed(&self, f: &FileId) -> Option<&FileId> {
        // Sorted by path first: the entries of one path are together.
        let from = self.files.partition_point(|p| p.path < f.path);
        self.files[from..]
            .iter()
            .take_while(|p| p.path == f.path)
            .find(|p| *p != f)
    }

    /// The files of `listed` not processed yet, in path order; a processed file that changed
    /// since is an error naming it (see [`RawBookmark::changed`]).
    pub fn select<'a>(&self, listed: &'a [FileId]) -> Result<Vec<&'a FileId>, ChangedFile> {
        if let Some((was, now)) = listed.iter().find_map(|f| self.changed(f).map(|was| (was, f))) {
            return Err(ChangedFile {
                was: was.clone(),
                now: now.clone(),
            });
        }
        let mut new: Vec<&FileId> = listed.iter().filter(|f| !self.is_processed(f)).collect();
        new.sort();
        Ok(new)
    }

    /// The bookmark after also processing `read` in a run at `run_ms` (milliseconds since the
    /// epoch): a modification time after the run's time counts as the run's time.
    pub fn advance(&self, read: &[FileId], run_ms: i64) -> RawBookmark {
        let newest = self
            .files
            .iter()
            .chain(read)
            .map(|f| f.modified_ms.min(run_ms))
            .max()
            .unwrap_or(i64::MIN);
        let before_ms = self.before_ms.max(newest.saturating_sub(BAND_MS));
        let mut every: Vec<FileId> = self.files.iter().chain(read).cloned().collect();
        every.sort();
        every.dedup();
        let (mut files, mut older): (Vec<FileId>, Vec<FileId>) =
            every.into_iter().partition(|f| f.modified_ms >= before_ms);
        older.sort_by(|a, b| {
            b.modified_ms
                .cmp(&a.modified_ms)
                .then_with(|| a.path.cmp(&b.path))
                .then_with(|| a.size.cmp(&b.size))
        });
        older.truncate(KEEP_FILES.saturating_sub(files.len()));
        files.extend(older);
        files.sort();
        RawBookmark { before_ms, files }
    }
}

/// A raw file an incremental job processed that has changed since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    /// As the bookmark recorded it.
    pub was: FileId,
    /// As listed now.
    pub now: FileId,
}

impl ChangedFile {
    /// Why the run refuses it, naming the file (`path` as errors show it) and what to do.
    pub fn reason(&self) -> String {
        let how = if self.now.size > self.was.size {
            format!("grew from {} to {} bytes", self.was.size, self.now.size)
        } else if self.now.size != self.was.size {
            format!("shrank from {} to {} bytes", self.was.size, self.now.size)
        } else {
            "was rewritten".to_string()
        };
        format!(
            "{how} (modified at {} ms, processed as modified at {} ms) after this job processed it; reading it again would repeat its rows, reading only part of it is not possible\n  help: land new rows in new files (a raw file is complete once landed); put this file back as it was, or move it out of the table's folder and land its rows again under a new name",
            self.now.modified_ms, self.was.modified_ms
        )
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

    /// A run's time far after every file: the cap changes nothing.
    const LATER: i64 = i64::MAX;

    #[test]
    fn new_files_are_those_not_in_the_bookmark() {
        let h = BAND_MS;
        let b0 = RawBookmark::default();
        let day1 = [f("d=1/a.csv", 10, 0), f("d=1/b.csv", 20, 5)];
        assert!(day1.iter().all(|x| !b0.is_processed(x)));
        let b1 = b0.advance(&day1, LATER);
        assert!(day1.iter().all(|x| b1.is_processed(x)));
        // A file landing later is new.
        let late = f("d=1/c.csv", 7, 3);
        assert!(!b1.is_processed(&late));
        // Far newer files move the watermark: older ones then count as processed (and stay
        // listed, up to KEEP_FILES, to be recognised if they change).
        let day2 = [f("d=2/a.csv", 10, 10 * h)];
        let b2 = b1.advance(std::slice::from_ref(&late), LATER).advance(&day2, LATER);
        assert_eq!(b2.before_ms, 9 * h);
        assert_eq!(b2.files, [&day1[..], std::slice::from_ref(&late), &day2[..]].concat());
        assert!(b2.is_processed(&late) && b2.is_processed(&day2[0]));
        assert!(!b2.is_processed(&f("d=2/b.csv", 1, 9 * h + 1)));
        assert_eq!(RawBookmark::parse(&b2.encode()).unwrap(), b2);
        assert!(RawBookmark::parse("{").is_err());
    }

    /// A file dated in the future moves the watermark only up to the run's time: files that
    /// land after the run, dated before the future file, are still new.
    #[test]
    fn a_future_dated_file_does_not_hide_files_landing_after_the_run() {
        let h = BAND_MS;
        let run = 100 * h;
        let future = f("d=1/future.csv", 5, run + 48 * h);
        let normal = f("d=1/a.csv", 5, run - 10);
        let b = RawBookmark::default().advance(&[normal.clone(), future.clone()], run);
        assert_eq!(b.before_ms, run - h, "capped at the run's time, less the band");
        assert_eq!(b.files, vec![normal.clone(), future.clone()]);
        // Landed after the run, modified after it: new. Without the cap the watermark would be
        // at run + 47 h and this file would count as processed.
        let landed = f("d=1/b.csv", 5, run + 2 * h);
        assert!(!b.is_processed(&landed));
        assert!(b.is_processed(&future) && b.is_processed(&normal));
        let uncapped = RawBookmark::default().advance(&[normal, future.clone()], LATER);
        assert!(uncapped.is_processed(&landed), "the case the cap is for");
        // The next run (two hours later) reads the landed file; the future file stays listed
        // (so still processed) until the watermark passes its time.
        let next = b.advance(std::slice::from_ref(&landed), run + 2 * h);
        assert_eq!(next.before_ms, run + h);
        assert!(next.is_processed(&future) && next.is_processed(&landed));
        assert_eq!(
            next.select(&[future.clone(), landed.clone()]).unwrap(),
            Vec::<&FileId>::new()
        );
    }

    /// Below the band the bookmark keeps the most recently modified processed files, up to
    /// KEEP_FILES in all: one of them that changes hours later is still refused.
    #[test]
    fn older_processed_files_are_kept_up_to_a_bound() {
        let h = BAND_MS;
        let old: Vec<FileId> = (0..KEEP_FILES as i64 + 50)
            .map(|i| f(&format!("d=1/{i:04}.csv"), 1, i))
            .collect();
        let b = RawBookmark::default().advance(&old, LATER);
        let later = f("d=2/a.csv", 1, 5 * h);
        let b = b.advance(std::slice::from_ref(&later), LATER);
        assert_eq!(b.before_ms, 4 * h);
        assert_eq!(b.files.len(), KEEP_FILES);
        assert!(b.files.contains(&later));
        // The newest of the older files are kept, the oldest dropped (processed all the same).
        assert!(b.files.contains(old.last().unwrap()) && !b.files.contains(&old[0]));
        assert!(old.iter().all(|x| b.is_processed(x)));
        // A kept file that grew hours after it was processed is refused.
        let grown = f("d=1/0249.csv", 9, 6 * h);
        assert_eq!(b.select(std::slice::from_ref(&grown)).unwrap_err().was, old[249]);
    }

    /// A processed file that grew or was rewritten is refused, naming it; an untouched one and a
    /// new one are not.
    #[test]
    fn a_processed_file_that_changed_is_refused() {
        let a = f("d=1/a.csv", 10, 1_000);
        let b = RawBookmark::default().advance(&[a.clone(), f("d=1/b.csv", 3, 900)], 2_000);
        let new = f("d=1/c.csv", 4, 1_500);
        assert_eq!(b.select(&[a.clone(), new.clone()]).unwrap(), vec![&new]);
        for (now, how) in [
            (f("d=1/a.csv", 25, 1_800), "grew from 10 to 25 bytes"),
            (f("d=1/a.csv", 4, 1_800), "shrank from 10 to 4 bytes"),
            (f("d=1/a.csv", 10, 1_800), "was rewritten"),
        ] {
            let e = b.select(&[new.clone(), now.clone()]).unwrap_err();
            assert_eq!(
                e,
                ChangedFile {
                    was: a.clone(),
                    now: now.clone()
                }
            );
            assert!(e.reason().starts_with(how), "{}", e.reason());
        }
        assert_eq!(b.changed(&a), None);
        assert_eq!(b.changed(&new), None);
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
use chrono::NaiveDateTime;

use crate::interval::{parse_instant, DoneSet, DuePlan, Interval};

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
    let prev = output.map(|t| t.job_state(&key)).transpose()?.flatten();
    let bookmark = match &prev {
        // `""`: reset (`mesh state reset`, a full refresh): every file is new.
        Some(s) if !s.is_empty() => RawBookmark::parse(s).map_err(|source| IncrementError::UnreadableRawBookmark {
            input: input.to_string(),
            key: key.clone(),
            value: s.clone(),
            source,
        })?,
        _ => RawBookmark::default(),
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
    #[error(transparent)]
    Bound(crate::interval::IntervalError),
    #[error("no interval is due: {0}")]
    NothingDue(String),
    #[error("checking that the result lies in the interval failed: {0}")]
    Check(#[source] Box<datafusion::error::DataFusionError>),
    /// The job's done intervals cannot be found in its output table (see `Table::job_state`).
    #[error(transparent)]
    State(#[from] mesh_iceberg::Error),
}

/// An Iceberg input's rows appended since the bookmark (all rows the first time, or on a
/// rewrite when the manifest allows a full read); records the new bookmark in `state`.
pub async fn iceberg_increment(
    job: &Job,
    input: &TableRef,
    table: &mesh_iceberg::Table,
    output: Option<&mesh_iceberg::Table>,
    state: &mut CommitProperties,
) -> Result<IcebergIncrement, IncrementError> {
    let key = bookmark_key(job.name.as_str(), &input.to_string());
    let prev = output.map(|t| t.job_state(&key)).transpose()?.flatten();
    let from = prev
        .as_deref()
        .filter(|v| !v.is_empty()) // reset: read the whole input
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
    if let Some(current) = table.current_snapshot_id() {
        state.set.insert(key.clone(), current.to_string());
        state.expect.insert(key, prev);
    }
    let schema = batches.first().map(|b| b.schema()).unwrap_or(schema);
    Ok(IcebergIncrement { schema, batches, files })
}

/// What [`iceberg_increment`] read: the rows, and the data files they came from.
pub struct IcebergIncrement {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub files: usize,
}

/// Whether the run's parameters name a time-range job's interval (`interval_start` or
/// `run_date`): then it processes exactly that interval; otherwise the intervals due.
pub fn names_interval(params: &std::collections::BTreeMap<String, String>) -> bool {
    params.contains_key("interval_start") || params.contains_key("run_date")
}

/// A time-range job's plan at the run's time `at`, from the intervals its output records.
pub fn due_plan(tr: &mesh_domain::TimeRange, done: &DoneSet, at: NaiveDateTime) -> DuePlan {
    crate::interval::due(tr.grain, tr.start.as_deref(), tr.lag_seconds, tr.lookback, done, at)
}

/// A time-range job's interval, bound as `${interval_start}` / `${interval_end}`: the one
/// named by `interval_start`, else `run_date`, else the oldest interval due at `at`. The
/// interval must be complete at `at`. Records it as done in `state` (and drops intervals
/// recorded as done before they were complete, so they are processed when due).
pub fn bind_interval(
    job: &Job,
    output_decl: &mesh_domain::Table,
    params: &mut std::collections::BTreeMap<String, String>,
    output: Option<&mesh_iceberg::Table>,
    state: &mut CommitProperties,
    at: NaiveDateTime,
) -> Result<Option<(Interval, String)>, IntervalError> {
    let Some(tr) = &job.time_range else {
        return Ok(None);
    };
    let key = intervals_key(job.name.as_str());
    let prev = output.map(|t| t.job_state(&key)).transpose()?.flatten();
    let mut done = DoneSet::parse(tr.grain, prev.as_deref().unwrap_or(""));
    let plan = due_plan(tr, &done, at);
    let named = match (params.get("interval_start"), params.get("run_date")) {
        (Some(v), _) => Some(("interval_start", v.clone())),
        (None, Some(v)) => Some(("run_date", v.clone())),
        (None, None) => None,
    };
    let interval = match named {
        Some((name, value)) => {
            let t = parse_instant(&value).ok_or_else(|| IntervalError::NotADate {
                name,
                value: value.clone(),
            })?;
            Interval::containing(tr.grain, t)
        }
        None => match plan.due.first() {
            Some((i, _)) => *i,
            None => return Err(IntervalError::NothingDue(plan.describe())),
        },
    };
    interval
        .check_complete(at, tr.lag_seconds)
        .map_err(IntervalError::Bound)?;
    for (k, v) in interval.params() {
        if k != "run_date" || !params.contains_key("run_date") {
            params.insert(k, v);
        }
    }
    let column = output_decl.column(tr.column.as_str()).expect("validated time column");
    let predicate = interval.predicate(tr.column.as_str(), column.data_type);
    for early in &plan.not_complete_done {
        done.remove(early);
    }
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
        .map(|t| t.job_state(&intervals_key(job.name.as_str())))
        .transpose()?
        .flatten();
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
