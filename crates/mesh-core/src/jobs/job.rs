//! Running one job: read its inputs, run its SQL, check the result, then write it to the
//! output table with the manifest's write mode. Nothing is committed unless every `error`
//! check passes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::Column;
use datafusion::logical_expr::Expr;
use datafusion::prelude::{DataFrame, SessionContext};
use mesh_domain::{BadRows, ColumnType, Job, OnDuplicate, Project, Severity, Table, WriteMode};
use mesh_iceberg::{CommitMode, DuplicateKeys, MergeOptions, MergeSource, OverwriteMode, SchemaEvolution};
use serde::Serialize;
use tracing::{info, info_span, warn, Instrument};

use crate::checks::{run_checks, CheckOutcome};
use crate::engine::Engine;
use crate::inputs::{register_table, RawSelection, RegisterError};
use crate::raw_table::{RawScan, RejectedTable};
use crate::session::{register_batches, register_provider};

/// What a job did; also the metrics of a job step in its run record, read back by `mesh
/// report`. Fields added later default, so older records still load.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
#[serde(default)]
pub struct JobReport {
    pub job: String,
    pub rows_read: u64,
    pub rows_written: u64,
    /// Malformed raw rows set aside in the quarantine table.
    pub rows_rejected: u64,
    pub files_added: usize,
    pub files_removed: usize,
    pub bytes_read: u64,
    /// Bytes of the data files the commit added.
    pub bytes_written: u64,
    /// The output table's rows and data files once the job committed (its snapshot summary).
    pub table_rows: Option<u64>,
    pub table_files: Option<u64>,
    /// Raw files read (an incremental input: only those not processed before).
    pub files_read: usize,
    /// The interval a time-range job replaced (`2026-11-03`); the last one when a run
    /// processed several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Every interval a scheduled run of a time-range job replaced, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<String>,
    /// What a scheduled run of a time-range job found due, and why (`2026-12-06 (complete,
    /// not done), 2026-12-07 in progress: not yet (…)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
    pub snapshot_id: Option<i64>,
    pub operation: Option<String>,
    pub inserted: Option<u64>,
    pub updated: Option<u64>,
    pub deleted: Option<u64>,
    pub checks: Vec<CheckOutcome>,
    pub seconds: f64,
    /// Other domains' products read: each at its pinned version and snapshot.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub products_read: Vec<crate::products::ProductRead>,
}

impl JobReport {
    /// Adds the report of one more interval of the same job (a scheduled catch-up run).
    fn absorb(&mut self, r: JobReport) {
        self.rows_read += r.rows_read;
        self.rows_written += r.rows_written;
        self.rows_rejected += r.rows_rejected;
        self.files_added += r.files_added;
        self.files_removed += r.files_removed;
        self.bytes_read += r.bytes_read;
        self.bytes_written += r.bytes_written;
        self.files_read += r.files_read;
        self.intervals.extend(r.interval.clone());
        self.interval = r.interval;
        self.table_rows = r.table_rows.or(self.table_rows);
        self.table_files = r.table_files.or(self.table_files);
        self.snapshot_id = r.snapshot_id.or(self.snapshot_id);
        self.operation = r.operation.or(self.operation.take());
        self.checks = r.checks;
        if self.products_read.is_empty() {
            self.products_read = r.products_read;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Another domain's product could not be read (not pulled, producer not checked out, …).
    #[error("job `{job}`: {source}")]
    Product {
        job: String,
        source: Box<crate::products::ProductError>,
    },
    /// `detail` is the check's outcome (`3 failing rows`), not an error.
    /// `detail` ends with the first failing rows and where the kept ones are (`\n  …` lines).
    #[error("job `{job}`: check `{check}` failed: {}; nothing was committed to {output}{}", detail.split_once('\n').map_or(detail.as_str(), |d| d.0), detail.split_once('\n').map(|d| format!("\n{}", d.1)).unwrap_or_default())]
    CheckFailed {
        job: String,
        check: String,
        detail: String,
        output: String,
        /// Every check's result, for the run record.
        checks: Box<[CheckOutcome]>,
    },
    /// Another domain's product whose snapshot is older than its producer's freshness promise
    /// at the run's time: its freshness check failed, and the job stopped before its query.
    #[error("job `{job}`: {}; nothing was committed to {}\n  help: {}", stale.message, stale.output, stale.help)]
    Stale { job: String, stale: Box<Stale> },
    #[error("job `{job}`: {file}: parameter `${{{param}}}` has no value\n  help: pass --param {param}=VALUE or add it to the job's params")]
    MissingParam { job: String, file: String, param: String },
    #[error("job `{job}`: {file}: {source}\n  help: pass a value of the parameter's type (param_types in the job), used as a value: ${{name}} or '${{name}}'")]
    BadParam {
        job: String,
        file: String,
        source: Box<crate::params::ParamError>,
    },
    #[error("job `{job}`: {file}{}: {message}\n  help: a job's SQL is exactly one query (SELECT or WITH … SELECT); the engine writes the result", line.map(|l| format!(":{l}")).unwrap_or_default())]
    NotAQuery {
        job: String,
        file: String,
        line: Option<usize>,
        message: String,
    },
    #[error("job `{job}`: cannot read `{file}`: {source}")]
    Sql {
        job: String,
        file: String,
        #[source]
        source: ProjectFileError,
    },
    /// The query is read but wrong: a column or table that does not exist, a type mismatch.
    #[error("job `{job}`: {file}: the query fails: {}{}", crate::type_names::in_message(&source.to_string()), help.as_ref().map(|h| format!("\n  help: {h}")).unwrap_or_default())]
    Query {
        job: String,
        file: String,
        #[source]
        source: Box<datafusion::error::DataFusionError>,
        help: Option<String>,
    },
    #[error("job `{job}`: reading {table}: {source}")]
    Raw {
        job: String,
        table: String,
        // Boxed: a raw error carries file names and messages, and this keeps `Result` small.
        source: Box<crate::raw::RawError>,
    },
    /// A declared column the result lacks (nullable or not: a misspelt alias must not leave
    /// the column NULL).
    #[error("job `{job}`: the SQL result has no column `{column}`, declared by {output}\n  help: {}select it in {file} (`… AS {column}`)", hint.as_ref().map(|h| format!("{h} ")).unwrap_or_default())]
    MissingColumn {
        job: String,
        column: String,
        output: String,
        file: String,
        /// `did you mean …?` naming the result column closest to the declared one.
        hint: Option<String>,
    },
    /// A result column the output does not declare (nothing is dropped without a word).
    #[error("job `{job}`: the SQL result's column `{column}` is not a column of {output}\n  help: {help}")]
    UnknownColumn {
        job: String,
        column: String,
        output: String,
        /// `did you mean …?` naming the closest declared column, the declared columns, the file.
        help: String,
    },
    /// A result column whose type cannot be written to the declared type without changing
    /// values. The table keeps the manifest's type: a result never widens it.
    #[error("job `{job}`: the SQL result's column `{column}` is {}, which cannot be written to {output}.{column} ({}) without changing values; the table keeps its declared type\n  help: cast it in {file} (CAST(… AS {})) or change the column's type in the manifest", types.0, types.1, types.1)]
    ColumnType {
        job: String,
        column: String,
        output: String,
        file: String,
        /// The result's type and the declared one.
        types: Box<(String, String)>,
    },
    /// A merge whose SQL returns a key twice under `on_duplicate = "error"`: the fix is in the
    /// manifest or the SQL, so both are named.
    #[error("job `{job}`: the SQL returns several rows with key ({key}) to merge into {output}; nothing was committed\n  help: {help}")]
    DuplicateKey {
        job: String,
        output: String,
        key: String,
        help: String,
    },
    #[error("job `{job}`: {source}")]
    Engine {
        job: String,
        #[source]
        source: Box<mesh_iceberg::Error>,
    },
    /// An Iceberg input that no run has written in this environment yet.
    #[error("job `{job}`: input {source}")]
    InputNotWritten {
        job: String,
        #[source]
        source: Box<RegisterError>,
    },
    /// The query session could not be set up (Spark functions, database schemas, S3 stores).
    #[error("job `{job}`: cannot open the query session: {source}")]
    Session {
        job: String,
        #[source]
        source: crate::session::SessionError,
    },
    /// An input (or the result, for the checks) could not be registered as a SQL table.
    #[error("job `{job}`: cannot register {table} as a SQL table: {source}")]
    Register {
        job: String,
        table: String,
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },
    /// The state kept in the output table (bookmarks, intervals) or an input's history.
    #[error("job `{job}`: {source}")]
    Increment {
        job: String,
        #[source]
        source: Box<crate::incremental::IncrementError>,
    },
    /// The job changed since its state was committed (see `crate::fingerprint`).
    #[error("job `{job}`: {source}")]
    Version {
        job: String,
        #[source]
        source: Box<crate::fingerprint::VersionError>,
    },
    #[error("job `{job}`: {source}")]
    Interval {
        job: String,
        #[source]
        source: Box<crate::incremental::IntervalError>,
    },
    /// A scheduled run of a time-range job failed on one of the intervals due; those before it
    /// are committed.
    #[error("job `{job}`, interval {interval}{}: {source}", if committed.is_empty() { String::new() } else { format!(" (committed before it: {})", committed.join(", ")) })]
    InInterval {
        job: String,
        interval: String,
        committed: Vec<String>,
        #[source]
        source: Box<JobError>,
    },
    #[error("job `{job}`: {source}")]
    CheckQuery {
        job: String,
        #[source]
        source: crate::checks::CheckError,
    },
    #[error("job `{job}`: `{name}` is not an input of this job (inputs: {})\n  help: add it to the job's `inputs` in the project manifest", inputs.join(", "))]
    NotAnInput {
        job: String,
        name: String,
        inputs: Vec<String>,
    },
    /// Reading or writing storage failed while the query ran (worth a retry).
    #[error("job `{job}`: {file}: {source}")]
    Io {
        job: String,
        file: String,
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },
}

/// The products of a job that were older than their producers' promises ([`JobError::Stale`]).
#[derive(Debug)]
pub struct Stale {
    pub output: String,
    /// Each stale product: the snapshot read, its age at the run's time, the promise.
    pub message: String,
    pub help: String,
    /// The freshness checks of every product read, for the run record.
    pub checks: Vec<CheckOutcome>,
    /// What was read, for the run record.
    pub products: Vec<crate::products::ProductRead>,
}

/// Why a project file (the job's SQL) could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProjectFileError {
    #[error("the file is missing or a link to a file outside the project folder")]
    Outside,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A query error, with a close column name when DataFusion says which fields exist. A raw
/// input's bad row (or unreadable file) met while the query streamed it is reported as reading
/// the input, as when inputs were read before the query.
fn query_error(job: String, file: String, e: datafusion::error::DataFusionError) -> JobError {
    if let Some((table, source)) = crate::raw_table::raw_error(&e) {
        return JobError::Raw {
            job,
            table,
            source: Box::new(source),
        };
    }
    JobError::Query {
        help: unknown_field_hint(&e.to_string()),
        job,
        file,
        source: Box::new(e),
    }
}

/// From DataFusion's "No field named x. Valid fields are a.b, a.c." a `did you mean` on the
/// unqualified names, or `None` when the message is another one.
fn unknown_field_hint(detail: &str) -> Option<String> {
    let rest = detail.split("No field named ").nth(1)?;
    let (wanted, rest) = rest.split_once(". Valid fields are ")?;
    let wanted = wanted.trim_matches(|c| c == '"' || c == '`');
    let wanted = wanted.rsplit('.').next().unwrap_or(wanted);
    let fields: Vec<&str> = rest
        .trim_end_matches('.')
        .split(", ")
        .map(|f| f.rsplit('.').next().unwrap_or(f).trim_matches('"'))
        .collect();
    mesh_domain::diagnostic::did_you_mean(wanted, fields.iter().copied())
        .or_else(|| Some(format!("the columns there are: {}", fields.join(", "))))
}

impl JobError {
    /// The check results a failed job step still has: those of a job whose `error` check failed.
    pub fn check_outcomes(&self) -> Option<&[CheckOutcome]> {
        match self {
            JobError::CheckFailed { checks, .. } => Some(checks),
            JobError::Stale { stale, .. } => Some(&stale.checks),
            JobError::InInterval { source, .. } => source.check_outcomes(),
            _ => None,
        }
    }

    /// The other domains' products a failed job step read before it stopped: those of a job
    /// that stopped on a stale product.
    pub fn products_read(&self) -> &[crate::products::ProductRead] {
        match self {
            JobError::Stale { stale, .. } => &stale.products,
            JobError::InInterval { source, .. } => source.products_read(),
            _ => &[],
        }
    }

    /// True when another attempt of the job may succeed: a whitelist of transient kinds (see
    /// [`crate::retry`]); a failed interval of a catch-up run is as transient as its cause.
    pub fn is_transient(&self) -> bool {
        match self {
            JobError::Engine { source, .. } => crate::retry::iceberg_error_is_transient(source),
            JobError::Raw { source, .. } => matches!(**source, crate::raw::RawError::Store { .. }),
            JobError::Io { .. } => true,
            // One interval of a scheduled catch-up run: a retry starts at that interval.
            JobError::InInterval { source, .. } => source.is_transient(),
            _ => false,
        }
    }

    fn engine(job: &Job) -> impl FnOnce(mesh_iceberg::Error) -> JobError + '_ {
        move |source| JobError::Engine {
            job: job.name.to_string(),
            source: Box::new(source),
        }
    }
}

/// Binds `${name}` as string values (see [`crate::params::bind`] for typed binding).
pub fn bind_params(sql: &str, params: &BTreeMap<String, String>) -> Result<String, crate::params::ParamError> {
    crate::params::bind(sql, params, &BTreeMap::new())
}

/// The error of a merge source with a key twice (`on_duplicate = "error"`): the manifest's
/// dedup rule is the fix, named with the output's only timestamp column when it has one.
fn duplicate_key(job: &Job, project: &Project, output: &Table, sql_file: &str, key: String) -> JobError {
    let timestamps: Vec<&str> = output
        .columns
        .iter()
        .filter(|c| matches!(c.data_type, ColumnType::Timestamp | ColumnType::Timestamptz))
        .map(|c| c.name.as_str())
        .collect();
    let order_by = match timestamps.as_slice() {
        [only] => format!("\"{only}\""),
        _ => "\"<column>\"".to_string(),
    };
    JobError::DuplicateKey {
        job: job.name.to_string(),
        output: job.output.to_string(),
        key,
        help: format!(
            "to keep the latest row of each key, set on_duplicate = \"keep_latest\" and order_by = {order_by} (a column the SQL selects; its greatest value wins) in [jobs.merge] of job `{}` in {}; or return each key once from {sql_file}",
            job.name,
            project.dir.join(mesh_domain::load::PROJECT_FILE).display()
        ),
    }
}

/// Columns the merge needs beyond the table's own (ordering column, delete condition).
fn merge_extra_columns(job: &Job, result: &Schema, table: &Table) -> Vec<String> {
    let WriteMode::Merge(m) = &job.mode else {
        return Vec::new();
    };
    result
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .filter(|n| table.column(n).is_none())
        .filter(|n| {
            matches!(&m.on_duplicate, OnDuplicate::KeepLatest { order_by } if order_by.as_str() == n)
                || m.delete_when.as_deref().is_some_and(|d| d.contains(n.as_str()))
        })
        .collect()
}

/// The result columns written to the table (plus merge control columns), in table order.
/// The result must name exactly the declared columns: a missing column (nullable or not) or
/// an extra one (other than a merge's control columns) is an error with the closest name, and
/// each column's type must be writable to the declared type (see [`assignable`]).
pub(crate) fn output_columns(
    job: &Job,
    table: &Table,
    schema: &Schema,
    sql_file: &str,
) -> Result<Vec<usize>, JobError> {
    let controls = merge_extra_columns(job, schema, table);
    let declared: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
    for f in schema.fields() {
        let name = f.name().as_str();
        if table.column(name).is_none() && !controls.iter().any(|c| c == name) {
            let hint = mesh_domain::diagnostic::did_you_mean(name, declared.iter().copied())
                .map(|h| format!("{h} "))
                .unwrap_or_default();
            return Err(JobError::UnknownColumn {
                job: job.name.to_string(),
                column: name.to_string(),
                output: job.output.to_string(),
                help: format!(
                    "{hint}rename or remove it in {sql_file} (declared: {})",
                    declared.join(", ")
                ),
            });
        }
    }
    let mut indices = Vec::new();
    for c in &table.columns {
        let Ok(i) = schema.index_of(c.name.as_str()) else {
            let undeclared = schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .filter(|n| table.column(n).is_none());
            return Err(JobError::MissingColumn {
                job: job.name.to_string(),
                column: c.name.to_string(),
                output: job.output.to_string(),
                file: sql_file.to_string(),
                hint: mesh_domain::diagnostic::did_you_mean(c.name.as_str(), undeclared),
            });
        };
        let have = schema.field(i).data_type();
        let want = crate::translate::arrow_type(c.data_type);
        if !assignable(have, &want) {
            return Err(JobError::ColumnType {
                job: job.name.to_string(),
                column: c.name.to_string(),
                output: job.output.to_string(),
                file: sql_file.to_string(),
                types: Box::new((sql_type_name(have), c.data_type.to_string())),
            });
        }
        indices.push(i);
    }
    for extra in controls {
        indices.push(schema.index_of(&extra).expect("found above"));
    }
    Ok(indices)
}

/// Whether a result column of type `from` may be written to a column declared `to`: the Glue
/// runner's rule (`writable`). Integers narrow or become decimals with a range check when
/// written, and become floats only when every value is exact (not bigint, nor int into
/// float); `float` takes no `double` and a decimal no wider precision or other scale (Spark's
/// store assignment would round or refuse). Other kinds follow the writer's own
/// conversions (strings, timestamps, nested types).
fn assignable(from: &datafusion::arrow::datatypes::DataType, to: &datafusion::arrow::datatypes::DataType) -> bool {
    use datafusion::arrow::datatypes::DataType::*;
    let numeric = |t: &datafusion::arrow::datatypes::DataType| t.is_numeric();
    if from == to || matches!(from, Null) {
        return true;
    }
    match (from, to) {
        // Into a float only when exact: bigint into double and int into float would round
        // values above 2^53 / 2^24 (the runner's `writable`, mesh-iceberg's `conform`).
        (f, Float32) if f.is_integer() => matches!(f, Int8 | Int16 | UInt8 | UInt16),
        (f, Float64) if f.is_integer() => matches!(f, Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32),
        (f, t) if f.is_integer() => t.is_integer() || matches!(t, Decimal128(_, _)),
        (Float16 | Float32, Float32 | Float64) => true,
        (Decimal128(p1, s1), Decimal128(p2, s2)) => s1 == s2 && p1 <= p2,
        (f, t) if numeric(f) || numeric(t) => false,
        _ => true,
    }
}

/// A result type as SQL names it in messages (`bigint`, `decimal(38,4)`).
fn sql_type_name(t: &datafusion::arrow::datatypes::DataType) -> String {
    use datafusion::arrow::datatypes::DataType::*;
    match t {
        Int8 => "tinyint".into(),
        Int16 => "smallint".into(),
        Int32 => "int".into(),
        Int64 => "bigint".into(),
        Float32 => "float".into(),
        Float64 => "double".into(),
        Decimal128(p, s) | Decimal256(p, s) => format!("decimal({p},{s})"),
        Utf8 | LargeUtf8 | Utf8View => "string".into(),
        Boolean => "boolean".into(),
        Date32 | Date64 => "date".into(),
        other => other.to_string(),
    }
}

/// The declared Arrow type a result column is cast to, when it differs numerically (the
/// writer would otherwise meet a wider type than the table's). `None`: written as it is.
fn store_type(
    table: &Table,
    name: &str,
    have: &datafusion::arrow::datatypes::DataType,
) -> Option<datafusion::arrow::datatypes::DataType> {
    let want = crate::translate::arrow_type(table.column(name)?.data_type);
    (have != &want && (have.is_numeric() || want.is_numeric())).then_some(want)
}

/// Projects the result onto the table's columns (plus merge control columns), in table order,
/// as a step of the plan: named by their unqualified names, each cast to its declared type
/// with a range check naming the column.
fn shape_frame(job: &Job, table: &Table, df: DataFrame, sql_file: &str) -> Result<DataFrame, JobError> {
    let indices = output_columns(job, table, df.schema().as_arrow(), sql_file)?;
    let columns: Vec<Expr> = indices
        .into_iter()
        .map(|i| {
            let (qualifier, field) = df.schema().qualified_field(i);
            let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
            let column = match store_type(table, field.name(), field.data_type()) {
                Some(t) => {
                    let label = format!("column `{}` of {}", field.name(), job.output);
                    crate::session::spark_arith::store_cast(column, t, label)
                }
                None => column,
            };
            column.alias(field.name())
        })
        .collect();
    df.select(columns)
        .map_err(|e| query_error(job.name.to_string(), sql_file.to_string(), e))
}

pub struct JobRun<'a> {
    pub engine: &'a Engine,
    pub project: &'a Project,
    pub job: &'a Job,
    pub params: &'a BTreeMap<String, String>,
    pub run_id: &'a str,
    /// The run's time (UTC): the clock, a schedule's time, or `--at`. A time-range job
    /// processes only intervals complete at this time; `${run_date}` defaults to its date.
    pub at: chrono::NaiveDateTime,
}

impl<'a> JobRun<'a> {
    /// Runs the job as the manifest declares it: its SQL file over its inputs. A time-range
    /// job whose parameters name no interval processes every interval due at the run's
    /// time, oldest first, each in its own commit with its state.
    pub async fn run(&self) -> Result<JobReport, JobError> {
        let named =
            crate::incremental::names_interval(self.params) || crate::incremental::names_interval(&self.job.params);
        match &self.job.time_range {
            Some(tr) if !named => self.run_due(tr).await,
            _ => self.run_one().await,
        }
    }

    async fn run_due(&self, tr: &mesh_domain::TimeRange) -> Result<JobReport, JobError> {
        let name = self.job.name.to_string();
        let done = crate::incremental::done_intervals(self.engine, self.project, self.job)
            .await
            .map_err(JobError::engine(self.job))?;
        let plan = crate::incremental::due_plan(tr, &done, self.at);
        info!(
            job = %name,
            at = %crate::interval::format_instant(self.at),
            "intervals: {}",
            plan.describe()
        );
        let mut total = JobReport {
            job: name.clone(),
            due: Some(plan.describe()),
            ..Default::default()
        };
        let started = Instant::now();
        for (interval, _) in &plan.due {
            let mut params = self.params.clone();
            params.extend(interval.params());
            let one = JobRun {
                params: &params,
                ..*self
            };
            let r = one.run_one().await.map_err(|e| JobError::InInterval {
                job: name.clone(),
                interval: interval.label(),
                committed: total.intervals.clone(),
                source: Box::new(e),
            })?;
            total.absorb(r);
        }
        total.seconds = started.elapsed().as_secs_f64();
        Ok(total)
    }

    async fn run_one(&self) -> Result<JobReport, JobError> {
        let cx = self.open().await?;
        let span = cx.span.clone();
        let result = async {
            let df = cx.sql_file().await?;
            let origin = cx.job.sql.display().to_string();
            cx.commit_inner(df, origin).await
        }
        .instrument(span)
        .await;
        crate::memory_pool::return_free_memory();
        result
    }

    /// Opens the job for a transform written in Rust: its inputs registered as SQL tables and
    /// its parameters bound, exactly as for its SQL file. Finish with [`JobContext::commit`],
    /// which runs the manifest's checks and writes with its mode.
    pub async fn open(&self) -> Result<JobContext<'a>, JobError> {
        let span = info_span!("job", run_id = self.run_id, job = %self.job.name, project = %self.project.name);
        let started = Instant::now();
        let (job, engine) = (self.job, self.engine);
        let name = job.name.to_string();
        let mut report = JobReport {
            job: name.clone(),
            ..Default::default()
        };
        let ctx = engine.session().map_err(|source| JobError::Session {
            job: name.clone(),
            source,
        })?;
        let output_table = crate::incremental::output_table(engine, self.project, job)
            .await
            .map_err(JobError::engine(job))?;
        let mut state = mesh_iceberg::CommitProperties::default();
        // The job's version, committed with its state (refused if it changed, by policy).
        crate::fingerprint::record(&engine.root, self.project, job, output_table.as_ref(), &mut state).map_err(
            |source| JobError::Version {
                job: name.clone(),
                source: Box::new(source),
            },
        )?;
        let mut raw_inputs = Vec::new();
        self.register_inputs(&ctx, &mut report, output_table.as_ref(), &mut state, &mut raw_inputs)
            .instrument(span.clone())
            .await?;
        let mut params = job.params.clone();
        params.insert("run_id".into(), self.run_id.to_string());
        params.insert("env".into(), engine.layout.naming.env().to_string());
        params.extend(self.params.iter().map(|(k, v)| (k.clone(), v.clone())));
        let out_decl = self.project.table(&job.output).expect("validated reference");
        let interval =
            crate::incremental::bind_interval(job, out_decl, &mut params, output_table.as_ref(), &mut state, self.at)
                .map_err(|source| JobError::Interval {
                job: name.clone(),
                source: Box::new(source),
            })?;
        report.interval = interval.as_ref().map(|(i, _)| i.label());
        // `${run_date}` of a job that is not time-range: the run's date unless it was given.
        params
            .entry("run_date".into())
            .or_insert_with(|| self.at.format("%Y-%m-%d").to_string());
        Ok(JobContext {
            state,
            raw_inputs,
            interval,
            engine: self.engine,
            project: self.project,
            job: self.job,
            ctx,
            params,
            report,
            started,
            span,
        })
    }

    async fn register_inputs(
        &self,
        ctx: &SessionContext,
        report: &mut JobReport,
        output: Option<&mesh_iceberg::Table>,
        state: &mut mesh_iceberg::CommitProperties,
        raw_inputs: &mut Vec<Arc<RawScan>>,
    ) -> Result<(), JobError> {
        let (job, project, engine) = (self.job, self.project, self.engine);
        let increment_error = |e: crate::incremental::IncrementError| match e {
            crate::incremental::IncrementError::Engine(e) => JobError::engine(job)(e),
            other => JobError::Increment {
                job: job.name.to_string(),
                source: Box::new(other),
            },
        };
        for input in &job.inputs {
            let table = project.table(input).expect("validated reference");
            let incremental = job.incremental.as_ref().is_some_and(|i| i.inputs.contains(input));
            if table.hive().is_some() {
                let bookmark = incremental
                    .then(|| crate::incremental::raw_bookmark(job, input, output))
                    .transpose()
                    .map_err(increment_error)?;
                let selection = match &bookmark {
                    Some((_, _, b)) => RawSelection::Unprocessed(b),
                    None => RawSelection::All,
                };
                let read = self.register_raw(ctx, table, selection, raw_inputs).await?;
                if let Some((key, prev, bookmark)) = bookmark {
                    state.set.insert(
                        key.clone(),
                        bookmark.advance(&read, self.at.and_utc().timestamp_millis()).encode(),
                    );
                    state.expect.insert(key, prev);
                }
            } else if incremental {
                let database = engine.layout.naming.database(table.layer);
                let t = engine.load_table(project, table).await.map_err(JobError::engine(job))?;
                let read = crate::incremental::iceberg_increment(job, input, &t, output, state)
                    .await
                    .map_err(increment_error)?;
                report.rows_read += read.batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
                report.files_read += read.files;
                register_batches(ctx, &database, table.name.as_str(), read.schema, read.batches)
                    .map_err(|e| self.register_error(&table.reference().to_string(), e))?;
            } else {
                let read = register_table(engine, ctx, project, table, RawSelection::All)
                    .await
                    .map_err(|e| self.input_error(e))?;
                report.rows_read += read.rows;
            }
        }
        let products = crate::products::register_inputs(engine, ctx, project, &job.products)
            .await
            .map_err(|source| JobError::Product {
                job: job.name.to_string(),
                source: Box::new(source),
            })?;
        report.rows_read += products.iter().map(|p| p.rows).sum::<u64>();
        // Each product's freshness at the run's time, recorded with the job's checks (before
        // those on the output); a stale one stops the job before its query.
        let at_ms = self.at.and_utc().timestamp_millis();
        report.checks = products
            .iter()
            .map(|p| crate::checks::freshness_check(p, at_ms))
            .collect();
        report.products_read = products;
        if report.checks.iter().any(|c| !c.passed) {
            return Err(self.stale_error(report));
        }
        Ok(())
    }

    /// The error of a job whose products failed their freshness check: which, how old the data
    /// read is and the promise, and how to get fresher data. Locally the job reads the pin, so
    /// `mesh pull` moves it to the producer's current snapshot; on AWS the job reads the
    /// producer's current snapshot, so only the producer can make it fresh.
    fn stale_error(&self, report: &JobReport) -> JobError {
        use mesh_domain::product::age_text;
        let local = self.engine.layout.naming.env() == mesh_domain::Env::Local;
        let mut message = Vec::new();
        let mut help = Vec::new();
        for c in report.checks.iter().filter(|c| !c.passed) {
            let Some(f) = &c.freshness else { continue };
            let read = format!(
                "the snapshot read ({}, committed {}) is {} old at the run's time ({})",
                f.snapshot_id,
                crate::checks::utc_ms(f.committed_at_ms),
                age_text(f.age_seconds),
                crate::checks::utc_ms(f.at_ms)
            );
            message.push(match mesh_domain::Freshness::parse(&f.promise) {
                Ok(promise) => format!(
                    "`{}` is stale: {read}, older than its producer's promise (within {promise})",
                    f.product
                ),
                Err(_) => format!(
                    "`{}` cannot be checked for freshness: {read}, and the promise recorded for it, `{}`, is not a duration",
                    f.product, f.promise
                ),
            });
            let owner = self.producer_owner(&f.product);
            help.push(if local {
                format!(
                    "run `mesh pull` to pin the producer's current snapshot of {}, and commit {}; if that one is older than the promise too, ask the product's owner ({owner}) why its pipeline has not committed since",
                    f.product,
                    crate::products::LOCK_FILE
                )
            } else {
                format!(
                    "the producer's pipeline has not committed {} since {}: ask the product's owner ({owner}) why",
                    f.product,
                    crate::checks::utc_ms(f.committed_at_ms)
                )
            });
        }
        JobError::Stale {
            job: self.job.name.to_string(),
            stale: Box::new(Stale {
                output: self.job.output.to_string(),
                message: message.join("; "),
                help: help.join("\n  help: "),
                checks: report.checks.clone(),
                products: report.products_read.clone(),
            }),
        }
    }

    /// Who owns a consumed product (`f01.daily_sales@1`): its project's owner in the producer's
    /// model when the producer is checked out (as it is for local runs), else its domain.
    fn producer_owner(&self, product: &str) -> String {
        let id = product.split_once('@').map_or(product, |(id, _)| id);
        let Some(c) = self.project.consumes.iter().find(|c| c.id() == id) else {
            return format!("the team of domain {}", id.split('.').next().unwrap_or(id));
        };
        crate::products::producer_domain(&self.engine.root, c)
            .ok()
            .and_then(|(_, d)| {
                d.product(c.product.as_str())
                    .map(|(p, _, _)| format!("{}, project {} of domain {}", p.owner, p.name, c.producer))
            })
            .unwrap_or_else(|| format!("the team of domain {}", c.producer))
    }

    fn input_error(&self, e: RegisterError) -> JobError {
        let job = self.job.name.to_string();
        match e {
            RegisterError::Raw { table, source } => JobError::Raw { job, table, source },
            RegisterError::Engine(source) => JobError::Engine { job, source },
            RegisterError::Session { table, source } => JobError::Register { job, table, source },
            e @ RegisterError::NotWritten { .. } => JobError::InputNotWritten {
                job,
                source: Box::new(e),
            },
        }
    }

    fn register_error(&self, table: &str, e: datafusion::error::DataFusionError) -> JobError {
        JobError::Register {
            job: self.job.name.to_string(),
            table: table.to_string(),
            source: Box::new(e),
        }
    }

    /// Registers a raw input, streamed as the query reads it; its files, rows and rejected rows
    /// are counted by [`JobContext::finish_inputs`] once the query has run.
    async fn register_raw(
        &self,
        ctx: &SessionContext,
        table: &Table,
        selection: RawSelection<'_>,
        raw_inputs: &mut Vec<Arc<RawScan>>,
    ) -> Result<Vec<crate::raw::FileId>, JobError> {
        let (engine, project) = (self.engine, self.project);
        let read = register_table(engine, ctx, project, table, selection)
            .await
            .map_err(|e| self.input_error(e))?;
        // Files and bytes read are counted by `finish_inputs`: those the query's scans selected.
        let scan = read.raw.expect("a raw table registers its read");
        if table.hive().is_some_and(|h| h.bad_rows == BadRows::Quarantine) {
            // The quarantine table sits beside the raw table (Naming::rejected_location).
            let naming = &engine.layout.naming;
            let rejected_location = engine
                .layout
                .url(&naming.rejected_location(&project.slug, table))
                .trim_end_matches('/')
                .to_string();
            let already = crate::raw_table::quarantined_files(
                &engine.stores,
                engine.lister().as_ref(),
                &rejected_location,
                self.run_id,
            )
            .await
            .map_err(|source| JobError::Raw {
                job: self.job.name.to_string(),
                table: table.reference().to_string(),
                source: Box::new(source),
            })?;
            scan.quarantine_to(&engine.stores, &rejected_location, self.run_id, already);
            let database = naming.database(table.layer);
            let rejected_table = naming.rejected_table(table);
            let provider = RejectedTable::new(
                scan.clone(),
                engine.stores.clone(),
                format!("{database}.{rejected_table}"),
            );
            register_provider(ctx, &database, &rejected_table, Arc::new(provider))
                .map_err(|e| self.register_error(&rejected_table, e))?;
        }
        raw_inputs.push(scan);
        Ok(read.files)
    }
}

/// An open job: its inputs are SQL tables (`f01_raw.sales_events`), its parameters are bound.
/// The SQL path and Rust transforms use the same primitives, so a Rust job gets the same
/// input binding, quality checks (before anything is written) and write modes as a SQL job.
pub struct JobContext<'a> {
    /// Bookmarks and intervals committed with the result.
    state: mesh_iceberg::CommitProperties,
    /// The raw inputs' reads, streamed by the query and completed by `finish_inputs`.
    raw_inputs: Vec<Arc<RawScan>>,
    /// A time-range job's interval and the predicate selecting its output rows.
    interval: Option<(crate::interval::Interval, String)>,
    engine: &'a Engine,
    project: &'a Project,
    job: &'a Job,
    ctx: SessionContext,
    params: BTreeMap<String, String>,
    report: JobReport,
    started: Instant,
    span: tracing::Span,
}

impl JobContext<'_> {
    /// The DataFusion session holding the inputs (Spark SQL functions registered).
    pub fn session(&self) -> &SessionContext {
        &self.ctx
    }

    /// A run parameter: `--param` values over the job's defaults, plus `run_id` and `env`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// One of the job's declared inputs, by table name (`sales_events`) or reference
    /// (`raw.sales_events`). Undeclared tables are an error: the manifest stays the truth.
    pub async fn input(&self, name: &str) -> Result<DataFrame, JobError> {
        let table = self
            .job
            .inputs
            .iter()
            .filter_map(|r| self.project.table(r))
            .find(|t| t.name.as_str() == name || t.reference().to_string() == name)
            .ok_or_else(|| JobError::NotAnInput {
                job: self.job.name.to_string(),
                name: name.to_string(),
                inputs: self.job.inputs.iter().map(|r| r.to_string()).collect(),
            })?;
        let database = self.engine.layout.naming.database(table.layer);
        self.ctx
            .table(format!("{database}.{}", table.name))
            .await
            .map_err(|e| query_error(self.job.name.to_string(), "(Rust transform)".into(), e))
    }

    /// Runs one query over the inputs, with `${param}` bound as values. Statements that write
    /// (INSERT, COPY, CREATE …) are refused: the commit is the only write.
    pub async fn sql(&self, sql: &str) -> Result<DataFrame, JobError> {
        let bound = self.bind(sql, "(inline SQL)")?;
        self.ctx
            .sql_with_options(&bound, crate::sql_check::read_only())
            .await
            .map_err(|e| query_error(self.job.name.to_string(), "(inline SQL)".into(), e))
    }

    fn bind(&self, sql: &str, file: &str) -> Result<String, JobError> {
        crate::params::bind(sql, &self.params, &self.job.param_types).map_err(|e| match e {
            crate::params::ParamError::Missing(param) => JobError::MissingParam {
                job: self.job.name.to_string(),
                file: file.to_string(),
                param,
            },
            source => JobError::BadParam {
                job: self.job.name.to_string(),
                file: file.to_string(),
                source: Box::new(source),
            },
        })
    }

    /// The job's SQL file, bound and planned.
    async fn sql_file(&self) -> Result<DataFrame, JobError> {
        let (job, name) = (self.job, self.job.name.to_string());
        let sql_file = job.sql.display().to_string();
        let bytes = read_inside(&self.engine.root, &self.project.dir, &job.sql).map_err(|source| JobError::Sql {
            job: name.clone(),
            file: sql_file.clone(),
            source,
        })?;
        // Checked again here (validation may be stale): nothing but one query is planned.
        crate::sql_check::check_job_sql(&bytes).map_err(|e| JobError::NotAQuery {
            job: name.clone(),
            file: sql_file.clone(),
            line: e.line,
            message: e.message,
        })?;
        let text = String::from_utf8(crate::sql_check::strip_bom(&bytes).to_vec()).expect("checked as UTF-8 above");
        let sql = self.bind(&text, &sql_file)?;
        let options = crate::sql_check::read_only();
        self.ctx
            .sql_with_options(&sql, options)
            .await
            .map_err(|e| query_error(name, sql_file, e))
    }

    /// Completes the raw inputs' reads once the query has run (its streams ended): the files the
    /// query left unread are read now, so the bad-row policy has seen every row before
    /// anything is committed, and the rows read and quarantined are those of whole files.
    async fn finish_inputs(&mut self) -> Result<(), JobError> {
        for scan in &self.raw_inputs {
            let counts = scan.finish().await.map_err(|source| JobError::Raw {
                job: self.job.name.to_string(),
                table: scan.table().to_string(),
                source: Box::new(source),
            })?;
            self.report.rows_read += counts.rows;
            let scanned = scan.scanned_files();
            self.report.files_read += scanned.len();
            self.report.bytes_read += scanned.iter().map(|f| f.size).sum::<u64>();
            if counts.rejected > 0 {
                self.report.rows_rejected += counts.rejected;
                let location = scan.quarantine_location().unwrap_or_default();
                warn!(table = %scan.table(), rejected = counts.rejected, location = %location, "bad rows quarantined");
            }
        }
        Ok(())
    }

    /// Computes the result, runs the manifest's checks on it, and writes it to the job's
    /// output table with the manifest's mode. A failing `error` check commits nothing.
    pub async fn commit(self, df: DataFrame) -> Result<JobReport, JobError> {
        let span = self.span.clone();
        let result = self.commit_inner(df, "(Rust transform)".into()).instrument(span).await;
        crate::memory_pool::return_free_memory();
        result
    }

    /// `origin` names where the result comes from in errors: the SQL file or a Rust transform.
    ///
    /// Write, audit, publish: the result streams into data files of the output table that no
    /// snapshot references yet, the checks run on those files, and only when every `error`
    /// check passes are they committed. Files of a run that fails a check (or the write) are
    /// left to orphan cleanup. A merge holds its source (in the memory pool, or spilled to a
    /// temporary file) until it is joined with the table, so there the checks run on the
    /// result before anything is written.
    async fn commit_inner(mut self, df: DataFrame, origin: String) -> Result<JobReport, JobError> {
        if matches!(self.job.mode, WriteMode::Merge(_)) {
            return self.commit_merge(df, origin).await;
        }
        let (job, project, engine) = (self.job, self.project, self.engine);
        let name = job.name.to_string();
        let sql_file = origin;
        let out_table = project.table(&job.output).expect("validated reference");
        let shaped = shape_frame(job, out_table, df, &sql_file)?;
        let mut t = engine
            .load_for_write(project, out_table)
            .await
            .map_err(JobError::engine(job))?;
        let staged = t.stage(shaped, evolution(out_table)).await.map_err(|e| match e {
            mesh_iceberg::Error::DataFusion(e) => result_error(name.clone(), sql_file.clone(), *e),
            other => JobError::engine(job)(other),
        })?;
        // The result stream has ended: read what the query left of the raw inputs (the bad-row
        // policy and the counts cover whole files), before anything is checked or committed.
        self.finish_inputs().await?;
        self.report.rows_written = staged.records();

        let provider = staged.table_provider().map_err(JobError::engine(job))?;
        register_provider(&self.ctx, "default", "output", provider).map_err(|e| JobError::Register {
            job: name.clone(),
            table: "the result".into(),
            source: Box::new(e),
        })?;
        self.audit().await?;

        // The commit is planned on the table as it is now, not as it was before the query ran
        // (a stale base only costs a lost compare-and-swap and a retry).
        t.refresh().await.map_err(JobError::engine(job))?;
        t.set_commit_properties(crate::incremental::changed_only(std::mem::take(&mut self.state)));
        let mode = match (&job.mode, &self.interval) {
            (WriteMode::Overwrite, Some((_, predicate))) => {
                CommitMode::Overwrite(OverwriteMode::Filter(predicate.clone()))
            }
            (WriteMode::Append, _) => CommitMode::Append,
            (WriteMode::Overwrite, None) => CommitMode::Overwrite(OverwriteMode::All),
            (WriteMode::OverwritePartitions, _) => CommitMode::Overwrite(OverwriteMode::DynamicPartitions),
            (WriteMode::Merge(_), _) => unreachable!("merges are committed by commit_merge"),
        };
        let commit = t.commit_staged(staged, mode).await.map_err(JobError::engine(job))?;
        self.finish(&t, commit)
    }

    /// Runs the manifest's checks, then a time-range job's interval check, on the relation
    /// `output`. A failing `error` check is an error (nothing is committed); a failing `warn`
    /// check is logged.
    async fn audit(&mut self) -> Result<(), JobError> {
        let job = self.job;
        let name = job.name.to_string();
        let outcomes = run_checks(&self.ctx, &job.checks)
            .await
            .map_err(|source| JobError::CheckQuery {
                job: name.clone(),
                source,
            })?;
        // The products' freshness checks (passed: the job got this far) stay first.
        let first = self.report.checks.len();
        self.report.checks.extend(outcomes);
        let kept = self.keep_failing_rows(first).await;
        for c in &self.report.checks[first..] {
            if !c.passed {
                let sample = crate::checks::sample_text(c);
                let sample = match (&kept, sample.is_empty()) {
                    (_, true) => String::new(),
                    (Some(kept), false) => format!(
                        "\n  failing rows (first {} of {}; {kept}):\n{sample}",
                        c.sample.len(),
                        c.failing_rows
                    ),
                    (None, false) => format!(
                        "\n  failing rows (first {} of {}):\n{sample}",
                        c.sample.len(),
                        c.failing_rows
                    ),
                };
                match c.severity {
                    Severity::Error => {
                        return Err(JobError::CheckFailed {
                            job: name.clone(),
                            check: c.name.clone(),
                            detail: format!("{}{sample}", c.detail),
                            output: job.output.to_string(),
                            checks: self.report.checks.clone().into(),
                        })
                    }
                    Severity::Warn => {
                        warn!(check = %c.name, failing_rows = c.failing_rows, "check failed (warn): {}{sample}", c.detail)
                    }
                }
            }
        }
        if let Some((interval, predicate)) = &self.interval {
            crate::incremental::check_in_interval(&self.ctx, job, interval, predicate)
                .await
                .map_err(|source| JobError::Interval {
                    job: name,
                    source: Box::new(source),
                })?;
        }
        Ok(())
    }

    /// The failing rows of the failed checks: a sample in each outcome, and up to
    /// [`crate::checks::SAMPLE_KEPT`] per check kept in `<table>_check_failures` (see
    /// [`crate::checks::keep_failures`]). Returns how to read the kept rows.
    /// `first`: the index of the first outcome of the output's checks in the report.
    async fn keep_failing_rows(&mut self, first: usize) -> Option<String> {
        let (job, project) = (self.job, self.project);
        let outcomes = &mut self.report.checks[first..];
        if outcomes.iter().all(|c| c.passed) {
            return None;
        }
        let table = project.table(&job.output).expect("validated reference");
        let keys = crate::checks::key_columns(job, table);
        let failures = crate::checks::sample_failures(&self.ctx, &job.checks, outcomes, &keys).await;
        let run_id = self.params.get("run_id").cloned().unwrap_or_default();
        match crate::checks::keep_failures(&self.engine.root, table, &run_id, job.name.as_str(), &keys, &failures) {
            Ok(Some(_)) => Some(format!(
                "kept: mesh sql \"SELECT * FROM {}_check_failures WHERE run_id = '{run_id}'\"",
                self.engine.layout.naming.qualified_table(table)
            )),
            Ok(None) => None,
            Err(e) => {
                warn!("cannot keep the failing rows of job `{}`: {e}", job.name);
                None
            }
        }
    }

    /// A merge: the result is shaped as every write shapes it, held as the merge's source in
    /// the engine's memory pool (spilled to a temporary file of its disk manager when the pool
    /// refuses it), and checked before anything is written.
    async fn commit_merge(mut self, df: DataFrame, origin: String) -> Result<JobReport, JobError> {
        let (job, project, engine) = (self.job, self.project, self.engine);
        let WriteMode::Merge(m) = &job.mode else {
            unreachable!("called for merges only")
        };
        let name = job.name.to_string();
        let sql_file = origin;
        let out_table = project.table(&job.output).expect("validated reference");
        let shaped = shape_frame(job, out_table, df, &sql_file)?;
        // Counted in the pool as memory that can spill: when the other jobs' operators leave it
        // no room, the source goes to disk instead of growing the process past the limit.
        let source = MergeSource::collect(shaped).await.map_err(|e| match e {
            mesh_iceberg::Error::DataFusion(e) => result_error(name.clone(), sql_file.clone(), *e),
            other => JobError::engine(job)(other),
        })?;
        self.finish_inputs().await?;

        // Checks run on the result before anything is written.
        let provider = source.table_provider().map_err(JobError::engine(job))?;
        register_provider(&self.ctx, "default", "output", provider).map_err(|e| JobError::Register {
            job: name.clone(),
            table: "the result".into(),
            source: Box::new(e),
        })?;
        self.audit().await?;
        // The merge owns the only reference to the source from here, so it can release it as
        // it writes.
        let _ = self.ctx.deregister_table("default.output");
        let mut t = engine
            .load_for_write(project, out_table)
            .await
            .map_err(JobError::engine(job))?;
        t.set_commit_properties(crate::incremental::changed_only(std::mem::take(&mut self.state)));
        let opts = MergeOptions {
            keys: m.keys.iter().map(|k| k.to_string()).collect(),
            duplicates: match &m.on_duplicate {
                OnDuplicate::Error => DuplicateKeys::Error,
                OnDuplicate::KeepLatest { order_by } => DuplicateKeys::KeepLatestBy(order_by.to_string()),
            },
            delete_when: m.delete_when.clone(),
            evolution: evolution(out_table),
        };
        let r = t.merge_source(source, &opts).await.map_err(|e| match e {
            mesh_iceberg::Error::DuplicateKey { key, .. } => duplicate_key(job, project, out_table, &sql_file, key),
            e => JobError::engine(job)(e),
        })?;
        self.report.inserted = Some(r.inserted);
        self.report.updated = Some(r.updated);
        self.report.deleted = Some(r.deleted);
        self.report.rows_written = r.inserted + r.updated;
        self.finish(&t, r.commit)
    }

    /// The report of a committed job.
    fn finish(mut self, t: &mesh_iceberg::Table, commit: mesh_iceberg::CommitResult) -> Result<JobReport, JobError> {
        let report = &mut self.report;
        report.snapshot_id = commit.snapshot_id;
        report.operation = commit.operation.clone();
        report.files_added = commit.added_files;
        report.files_removed = commit.removed_files;
        report.bytes_written = commit.added_bytes;
        let totals = t.info();
        (report.table_rows, report.table_files) = (totals.total_records, totals.total_data_files);
        report.seconds = self.started.elapsed().as_secs_f64();
        info!(
            rows_read = report.rows_read,
            rows_written = report.rows_written,
            snapshot_id = report.snapshot_id,
            "job committed"
        );
        Ok(self.report)
    }
}

/// What the output table's manifest lets a write change in its schema.
fn evolution(table: &Table) -> SchemaEvolution {
    if table.iceberg().is_some_and(|o| o.schema_evolution) {
        SchemaEvolution::permissive()
    } else {
        SchemaEvolution::default()
    }
}

/// An error computing the job's result: storage that failed while the query ran (worth a
/// retry), or the query itself.
fn result_error(job: String, file: String, e: datafusion::error::DataFusionError) -> JobError {
    if crate::retry::datafusion_error_is_transient(&e) {
        JobError::Io {
            job,
            file,
            source: Box::new(e),
        }
    } else {
        query_error(job, file, e)
    }
}

/// Reads a project file that must resolve (links included) inside the project folder; the
/// error never quotes the file's content.
fn read_inside(
    root: &std::path::Path,
    project_dir: &std::path::Path,
    rel: &std::path::Path,
) -> Result<Vec<u8>, ProjectFileError> {
    let path = root.join(rel);
    if !mesh_domain::load::resolves_inside(&path, &root.join(project_dir)) {
        return Err(ProjectFileError::Outside);
    }
    Ok(std::fs::read(&path)?)
}

#[cfg(test)]
mod tests {
    /// bigint into double and int into float would round large values: refused like the
    /// runner's `writable` refuses them (issue 26 item 11); exact integer-to-float kept.
    #[test]
    fn integers_become_floats_only_when_exact() {
        use datafusion::arrow::datatypes::DataType::*;
        for (from, to, ok) in [
            (Int64, Float64, false),
            (Int64, Float32, false),
            (Int32, Float32, false),
            (UInt64, Float64, false),
            (Int32, Float64, true),
            (Int16, Float32, true),
            (Int8, Float64, true),
            (Int64, Int32, true),
            (Int64, Decimal128(20, 0), true),
        ] {
            assert_eq!(super::assignable(&from, &to), ok, "{from} -> {to}");
        }
    }

    #[test]
    fn unknown_columns_get_the_closest_name() {
        let d = "Schema error: No field named store_idd. Valid fields are f01_raw.sales_events.event_id, f01_raw.sales_events.store_id.";
        assert_eq!(
            super::unknown_field_hint(d).as_deref(),
            Some("did you mean `store_id`?")
        );
        let d = "Schema error: No field named zzz. Valid fields are t.a, t.b.";
        assert_eq!(
            super::unknown_field_hint(d).as_deref(),
            Some("the columns there are: a, b")
        );
        assert_eq!(
            super::unknown_field_hint("Error during planning: table x not found"),
            None
        );
    }

    use super::*;

    #[test]
    fn params_bind_and_report_missing() {
        let p: BTreeMap<String, String> = [("run_date".to_string(), "2026-11-27".to_string())].into();
        assert_eq!(
            bind_params("WHERE d = '${run_date}'", &p).unwrap(),
            "WHERE d = '2026-11-27'"
        );
        assert!(matches!(
            bind_params("SELECT ${nope}", &p),
            Err(crate::params::ParamError::Missing(name)) if name == "nope"
        ));
        assert_eq!(bind_params("no params", &p).unwrap(), "no params");
    }
}

#[cfg(test)]
mod transient_tests {
    use super::*;
    use crate::raw::RawError;
    use datafusion::error::DataFusionError;

    fn engine(e: mesh_iceberg::Error) -> JobError {
        JobError::Engine {
            job: "j".into(),
            source: Box::new(e),
        }
    }

    #[test]
    fn only_whitelisted_kinds_are_transient() {
        assert!(JobError::is_transient(&engine(mesh_iceberg::Error::Conflict {
            table: "t".into(),
            reason: "lost".into()
        })));
        assert!(JobError::is_transient(&engine(mesh_iceberg::Error::Io(
            std::io::Error::other("reset")
        ))));
        assert!(JobError::is_transient(&engine(mesh_iceberg::Error::CatalogService {
            catalog: "glue".into(),
            kind: mesh_iceberg::ServiceErrorKind::Throttled,
            detail: "UpdateTable: ThrottlingException: Rate exceeded".into()
        })));
        assert!(!JobError::is_transient(&engine(mesh_iceberg::Error::CatalogService {
            catalog: "glue".into(),
            kind: mesh_iceberg::ServiceErrorKind::Rejected,
            detail: "GetTable: AccessDeniedException".into()
        })));
        assert!(!JobError::is_transient(&engine(mesh_iceberg::Error::Invalid {
            table: "t".into(),
            detail: "bad predicate".into()
        })));
        assert!(!JobError::is_transient(&engine(mesh_iceberg::Error::Schema {
            table: "t".into(),
            column: "c".into(),
            detail: "int vs string".into()
        })));
        assert!(!JobError::is_transient(&JobError::Query {
            job: "j".into(),
            file: "projects/sales/sql/x.sql".into(),
            source: Box::new(DataFusionError::Plan("No field named qty".into())),
            help: None,
        }));
        assert!(!JobError::is_transient(&JobError::CheckFailed {
            job: "j".into(),
            check: "unique".into(),
            detail: "2 duplicates".into(),
            output: "curated.t".into(),
            checks: Box::new([]),
        }));
        let bad_row = RawError::BadRow {
            table: "raw.t".into(),
            file: "f.csv".into(),
            line: 3,
            column: "qty".into(),
            reason: "not an int".into(),
        };
        assert!(!JobError::is_transient(&JobError::Raw {
            job: "j".into(),
            table: "raw.t".into(),
            source: Box::new(bad_row)
        }));
        let store = RawError::Store {
            location: "s3://b/k".into(),
            source: object_store::Error::Generic {
                store: "S3",
                source: "connection reset".into(),
            }
            .into(),
        };
        assert!(JobError::is_transient(&JobError::Raw {
            job: "j".into(),
            table: "raw.t".into(),
            source: Box::new(store)
        }));
    }
}
