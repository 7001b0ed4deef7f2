//! Raw-layer readers: CSV, JSON lines and Parquet files in Hive partition folders, read with
//! the schema declared in the manifest (never inferred). Each bad row is either an error that
//! names the file, line and column (`bad_rows = "fail"`) or is set aside with its reason
//! (`bad_rows = "quarantine"`) while the good rows go on.
//!
//! Files are listed and fetched through `object_store` ([`ObjectStores`]), so the local lake
//! (`file://…`) and S3 (`s3://f01-raw-dev/pj01/…`) share this one code path. A file is parsed
//! on a blocking thread as it is read (never whole in memory) and its rows leave in batches
//! through a [`RowSink`]: a query's scan ([`crate::raw_table`]) streams them, [`read_raw`]
//! collects them.

use std::borrow::Cow;
use std::io::{BufRead, Read};
use std::sync::{Arc, Mutex};

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder,
    Int32Builder, Int64Builder, RecordBatch, RecordBatchOptions, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use bytes::{Buf, Bytes};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryStreamExt};
use mesh_domain::{BadRows, Column, ColumnType, CsvOptions, RawFormat, Table, Transform};
use mesh_iceberg::ObjectStores;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use crate::translate::{arrow_schema, arrow_type};

/// Why a row whose bytes are not UTF-8 is rejected (its raw text is left empty).
pub const NOT_UTF8: &str = "is not UTF-8 text";

/// Rows per Arrow batch of [`read_raw`]; a query's scan uses the session's batch size.
const BATCH_ROWS: usize = 64 * 1024;
/// Read buffer of the text readers: large reads keep the parse loop fed.
const READ_BUFFER: usize = 1 << 20;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RejectedRow {
    pub file: String,
    pub line: u64,
    pub column: Option<String>,
    pub reason: String,
    pub raw: String,
}

/// A raw file as an incremental job remembers it: its path under the table's location, its
/// size and its modification time. A file rewritten in place gets a new identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileId {
    pub path: String,
    pub size: u64,
    pub modified_ms: i64,
}

#[derive(Debug)]
pub struct RawRead {
    /// The files read, in path order.
    pub file_ids: Vec<FileId>,
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub rows: u64,
    pub files: usize,
    pub bytes: u64,
    pub rejected: Vec<RejectedRow>,
}

#[derive(Debug, thiserror::Error)]
pub enum RawError {
    #[error("{file}:{line}: column `{column}`: {reason}\n  help: fix the source file, or set bad_rows = \"quarantine\" on table `{table}` to set such rows aside")]
    BadRow {
        table: String,
        file: String,
        line: u64,
        column: String,
        reason: String,
    },
    #[error("{file}:{line}: {reason}\n  help: fix the source file, or set bad_rows = \"quarantine\" on table `{table}` to set such rows aside")]
    BadLine {
        table: String,
        file: String,
        line: u64,
        reason: String,
    },
    #[error("{file}: {reason}")]
    File { file: String, reason: String },
    /// An error already reported by another part of the same query, by its message.
    #[error("{0}")]
    Again(String),
    #[error("cannot access `{location}`: {source}")]
    Store {
        location: String,
        #[source]
        source: crate::layout::StorageError,
    },
}

/// One typed value parser per column, building an Arrow array.
enum Builder {
    Bool(BooleanBuilder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Dec(Decimal128Builder, u8, i8),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder, bool),
    Str(StringBuilder),
    Bin(BinaryBuilder),
}

/// A parsed value waiting for the whole row to be valid before it is appended.
#[derive(Clone, Copy)]
enum Val<'a> {
    Null,
    Bool(bool),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Dec(i128),
    Date(i32),
    Ts(i64),
    Str(&'a str),
}

impl Builder {
    fn new(t: ColumnType) -> Builder {
        match t {
            ColumnType::Boolean => Builder::Bool(BooleanBuilder::new()),
            ColumnType::Int => Builder::I32(Int32Builder::new()),
            ColumnType::Long => Builder::I64(Int64Builder::new()),
            ColumnType::Float => Builder::F32(Float32Builder::new()),
            ColumnType::Double => Builder::F64(Float64Builder::new()),
            ColumnType::Decimal { precision, scale } => Builder::Dec(
                Decimal128Builder::new()
                    .with_precision_and_scale(precision, scale as i8)
                    .expect("validated precision"),
                precision,
                scale as i8,
            ),
            ColumnType::Date => Builder::Date(Date32Builder::new()),
            ColumnType::Timestamp => Builder::Ts(TimestampMicrosecondBuilder::new(), false),
            ColumnType::Timestamptz => Builder::Ts(TimestampMicrosecondBuilder::new().with_timezone("+00:00"), true),
            ColumnType::String => Builder::Str(StringBuilder::new()),
            ColumnType::Binary => Builder::Bin(BinaryBuilder::new()),
        }
    }

    fn append(&mut self, v: Val) {
        match (self, v) {
            (Builder::Bool(b), Val::Bool(x)) => b.append_value(x),
            (Builder::I32(b), Val::I32(x)) => b.append_value(x),
            (Builder::I64(b), Val::I64(x)) => b.append_value(x),
            (Builder::F32(b), Val::F32(x)) => b.append_value(x),
            (Builder::F64(b), Val::F64(x)) => b.append_value(x),
            (Builder::Dec(b, ..), Val::Dec(x)) => b.append_value(x),
            (Builder::Date(b), Val::Date(x)) => b.append_value(x),
            (Builder::Ts(b, _), Val::Ts(x)) => b.append_value(x),
            (Builder::Str(b), Val::Str(x)) => b.append_value(x),
            (Builder::Bin(b), Val::Str(x)) => b.append_value(x.as_bytes()),
            (b, _) => b.append_null(),
        }
    }

    fn append_null(&mut self) {
        match self {
            Builder::Bool(b) => b.append_null(),
            Builder::I32(b) => b.append_null(),
            Builder::I64(b) => b.append_null(),
            Builder::F32(b) => b.append_null(),
            Builder::F64(b) => b.append_null(),
            Builder::Dec(b, ..) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Ts(b, _) => b.append_null(),
            Builder::Str(b) => b.append_null(),
            Builder::Bin(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::F32(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Dec(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .expect("validated precision"),
            ),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Ts(b, tz) => {
                let a = b.finish();
                Arc::new(if *tz { a.with_timezone("+00:00") } else { a })
            }
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::Bin(b) => Arc::new(b.finish()),
        }
    }
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")
}

/// `str::trim`, skipped when both ends are visible ASCII (nearly every value): trimming looks
/// at Unicode whitespace from both ends, a measurable part of a raw read otherwise.
fn trimmed(text: &str) -> &str {
    match text.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        [only] if only.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

/// Parses one text value as the column's type; the error says what was expected.
/// Why a `timestamp` value with a zone is refused (the runner gives the same reason).
pub const TZ_OFFSET_HINT: &str =
    ": it has a time zone offset, which a `timestamp` column (without zone) cannot keep; declare the column `timestamptz`";

fn parse_text(text: &str, t: ColumnType) -> Result<Val<'_>, String> {
    let s = trimmed(text);
    let bad = || format!("`{}` is not a valid {t}", echo(text));
    Ok(match t {
        ColumnType::Boolean => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "t" | "yes" => Val::Bool(true),
            "false" | "0" | "f" | "no" => Val::Bool(false),
            _ => return Err(bad()),
        },
        ColumnType::Int => Val::I32(s.parse().map_err(|_| bad())?),
        ColumnType::Long => Val::I64(s.parse().map_err(|_| bad())?),
        ColumnType::Float => Val::F32(s.parse().map_err(|_| bad())?),
        ColumnType::Double => Val::F64(s.parse().map_err(|_| bad())?),
        ColumnType::Decimal { precision, scale } => Val::Dec(parse_decimal(s, precision, scale).ok_or_else(bad)?),
        ColumnType::Date => Val::Date(match fast_date(s) {
            Some(days) => days,
            None => {
                let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?;
                (d - epoch()).num_days() as i32
            }
        }),
        ColumnType::Timestamp => Val::Ts(parse_timestamp(s, false).ok_or_else(|| match parse_timestamp(s, true) {
            // Spark would drop the offset (12:00+05:00 becomes 12:00): both engines refuse it.
            Some(_) => format!("{}{TZ_OFFSET_HINT}", bad()),
            None => bad(),
        })?),
        ColumnType::Timestamptz => Val::Ts(parse_timestamp(s, true).ok_or_else(bad)?),
        ColumnType::String | ColumnType::Binary => Val::Str(text),
    })
}

/// `-12.345` → unscaled i128 at `scale`, rounding half up like Spark; None when it does not fit.
pub fn parse_decimal(s: &str, precision: u8, scale: u8) -> Option<i128> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let scale = scale as usize;
    let mut value: i128 = 0;
    for b in int
        .bytes()
        .chain(frac.bytes().chain(std::iter::repeat(b'0')).take(scale))
    {
        value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
    }
    if frac.len() > scale && frac.as_bytes()[scale] >= b'5' {
        value += 1;
    }
    if value >= 10i128.pow(u32::from(precision)) {
        return None;
    }
    Some(if neg { -value } else { value })
}

/// Microseconds since the epoch. Accepts `YYYY-MM-DD[ T]HH:MM:SS[.f]`, a date alone, and for
/// `timestamptz` an offset or `Z` (converted to UTC).
pub fn parse_timestamp(s: &str, tz: bool) -> Option<i64> {
    fast_naive_timestamp(s).or_else(|| chrono_timestamp(s, tz))
}

/// Every accepted shape through chrono's parsers (the general path; also the reference the
/// fast path is tested against).
fn chrono_timestamp(s: &str, tz: bool) -> Option<i64> {
    use chrono::Timelike;
    // chrono reads second 60 as a leap second and counts it into the next minute (23:59:60
    // becomes the next day); Spark refuses it, so meshkit does too.
    let leap = |nanos: u32| nanos >= 1_000_000_000;
    if tz {
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return (!leap(dt.nanosecond())).then(|| dt.timestamp_micros());
        }
        if let Ok(dt) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
            return (!leap(dt.nanosecond())).then(|| dt.timestamp_micros());
        }
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return (!leap(t.nanosecond())).then(|| t.and_utc().timestamp_micros());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_micros())
}

/// The digits of `b` as a number; None when any byte is not a digit.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter()
        .try_fold(0u32, |v, c| c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0')))
}

/// `YYYY-MM-DD` exactly, as days since 1970-01-01. The common shape skips chrono's format
/// interpreter, which parses its format string again for every value (most of a raw read's
/// time otherwise); anything else goes to chrono, so what is accepted does not change.
fn fast_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    civil_days(digits(&b[0..4])? as i32, digits(&b[5..7])?, digits(&b[8..10])?)
}

/// Days from 1970-01-01 to a proleptic Gregorian date, None when it does not exist
/// (H. Hinnant's `days_from_civil`: integer arithmetic instead of chrono's date type).
fn civil_days(year: i32, month: u32, day: u32) -> Option<i32> {
    let month_days = mesh_domain::param::days_in_month(year, month)?;
    if day == 0 || day > month_days {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400) as u32;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era as i32 - 719_468)
}

/// `YYYY-MM-DD[ T]HH:MM[:SS[.f]]` (1 to 9 fraction digits, no offset) in microseconds, the
/// same value chrono gives; None sends the text to chrono's parsers.
fn fast_naive_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 16 || !(b[10] == b' ' || b[10] == b'T') || b[13] != b':' {
        return None;
    }
    let days = fast_date(&s[..10])?;
    let (hour, minute) = (digits(&b[11..13])?, digits(&b[14..16])?);
    let (mut second, mut nanos) = (0, 0);
    if b.len() > 16 {
        if b.len() < 19 || b[16] != b':' {
            return None;
        }
        second = digits(&b[17..19])?;
        if b.len() > 19 {
            let frac = &b[20..];
            if b[19] != b'.' || frac.is_empty() || frac.len() > 9 {
                return None;
            }
            nanos = digits(frac)? * 10u32.pow(9 - frac.len() as u32);
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let seconds = i64::from(days) * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Some(seconds * 1_000_000 + i64::from(nanos / 1000))
}

/// An emptied row buffer, its allocation kept for the next row (whose values borrow another
/// record): collecting a `vec::IntoIter` into a `Vec` of the same layout reuses the memory, so
/// a read allocates no row buffer per row.
fn reuse<'b>(mut values: Vec<Val<'_>>) -> Vec<Val<'b>> {
    values.clear();
    values.into_iter().map(|_| Val::Null).collect()
}

/// Why reading a file stopped before its end.
pub(crate) enum Halt {
    /// The file, the storage or the bad-row policy said no.
    Raw(RawError),
    /// Whoever wanted the rows went away (the query ended early or was dropped).
    Stopped,
}

impl From<RawError> for Halt {
    fn from(e: RawError) -> Halt {
        Halt::Raw(e)
    }
}

/// Where a file's rows go as they are parsed.
pub(crate) trait RowSink {
    fn batch(&mut self, batch: RecordBatch) -> Result<(), Halt>;
    /// A row the quarantine policy set aside.
    fn reject(&mut self, row: RejectedRow) -> Result<(), Halt>;
}

/// Which of the declared columns a read builds into batches, and how many rows a batch holds.
///
/// Every declared column of a CSV or JSON row is still parsed and checked, built or not: the
/// bad-row policy decides on whole rows, so which rows are rejected (and the `fail` error) must
/// not depend on the columns a query happens to select, nor differ from the Glue runner. What
/// an unselected column saves is its copy into an array. Parquet reads only the selected
/// columns and the `nullable = false` ones, the only check a Parquet value can fail.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    /// Indices of the declared columns to build, in output order.
    pub columns: Vec<usize>,
    pub schema: SchemaRef,
    pub batch_rows: usize,
}

impl Shape {
    /// `columns` of the table's `schema` (every one when `None`).
    pub fn new(schema: &SchemaRef, columns: Option<&[usize]>, batch_rows: usize) -> Shape {
        let columns: Vec<usize> = columns.map_or_else(|| (0..schema.fields().len()).collect(), <[usize]>::to_vec);
        let schema = Arc::new(schema.project(&columns).expect("projection within the table's columns"));
        Shape {
            columns,
            schema,
            batch_rows: batch_rows.max(1),
        }
    }
}

/// What reading one file to its end counted: rows kept and rows set aside.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FileCount {
    pub rows: u64,
    pub rejected: u64,
}

/// Builds batches row by row; a row is appended only once every value of it parsed. A full
/// batch leaves through the sink at once.
struct Rows<'s> {
    shape: &'s Shape,
    builders: Vec<Builder>,
    pending: usize,
    rows: u64,
}

impl<'s> Rows<'s> {
    fn new(columns: &[Column], shape: &'s Shape) -> Rows<'s> {
        Rows {
            shape,
            builders: shape
                .columns
                .iter()
                .map(|i| Builder::new(columns[*i].data_type))
                .collect(),
            pending: 0,
            rows: 0,
        }
    }

    fn push(&mut self, values: &[Val<'_>], sink: &mut dyn RowSink) -> Result<(), Halt> {
        for (b, i) in self.builders.iter_mut().zip(&self.shape.columns) {
            match values[*i] {
                Val::Null => b.append_null(),
                v => b.append(v),
            }
        }
        self.pending += 1;
        self.rows += 1;
        if self.pending == self.shape.batch_rows {
            self.flush(sink)?;
        }
        Ok(())
    }

    fn flush(&mut self, sink: &mut dyn RowSink) -> Result<(), Halt> {
        if self.pending == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        // The row count is explicit: a query may select no column at all (COUNT(*)).
        let options = RecordBatchOptions::new().with_row_count(Some(self.pending));
        let batch = RecordBatch::try_new_with_options(self.shape.schema.clone(), arrays, &options)
            .expect("builders follow the schema");
        self.pending = 0;
        sink.batch(batch)
    }
}

/// A data file with the partition values its folders give.
pub(crate) struct DataFile {
    /// The store's path of the object.
    pub path: object_store::path::Path,
    /// What errors show: the local file path or the `s3://` URL.
    pub display: String,
    pub size: u64,
    partition: Vec<(usize, Option<String>)>,
    pub id: FileId,
}

impl DataFile {
    /// The text the file's folders give column `column`: `None` when no folder names the column,
    /// `Some(None)` for the Hive default partition (NULL).
    pub(crate) fn partition_text(&self, column: usize) -> Option<Option<&str>> {
        self.partition
            .iter()
            .find(|(i, _)| *i == column)
            .map(|(_, v)| v.as_deref())
    }
}

fn store_error(location: &str) -> impl FnOnce(object_store::Error) -> RawError + '_ {
    move |e| RawError::Store {
        location: location.to_string(),
        source: e.into(),
    }
}

/// Every data file under a table's location, sorted by path. Hidden and marker files and
/// folders (`_SUCCESS`, `.crc`, `.tmp` files of writers) are not data.
async fn list_files(
    table: &Table,
    stores: &ObjectStores,
    location: &str,
) -> Result<(mesh_iceberg::Located, Vec<DataFile>), RawError> {
    let root = stores.locate(location).map_err(|e| RawError::Store {
        location: location.to_string(),
        source: e.into(),
    })?;
    let listed: Vec<object_store::ObjectMeta> = match root.store.list(Some(&root.path)).try_collect().await {
        Ok(v) => v,
        // A raw table nobody has written to yet: no files.
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(store_error(location)(e)),
    };
    let mut files = Vec::new();
    // Locally the file system lister follows links: a link in a table folder could make a
    // job read (and an error message quote) any file of the machine.
    let local_root = location
        .strip_prefix("file://")
        .or_else(|| location.starts_with('/').then_some(location))
        .and_then(|p| std::path::Path::new(p).canonicalize().ok());
    for meta in listed {
        let Some(rel) = meta.location.prefix_match(&root.path) else {
            continue;
        };
        if let Some(dir) = &local_root {
            let url = root.url(&meta.location);
            let file = url.strip_prefix("file://").unwrap_or(&url);
            if !std::path::Path::new(file)
                .canonicalize()
                .is_ok_and(|real| real.starts_with(dir))
            {
                return Err(RawError::File {
                    file: file.to_string(),
                    reason: "is a link to a file outside the table folder; raw files are read only from the lake itself\n  help: copy the file into the table folder instead of linking it".into(),
                });
            }
        }
        let parts: Vec<String> = rel.map(|p| p.as_ref().to_string()).collect();
        if parts.is_empty() || parts.iter().any(|p| p.starts_with('.') || p.starts_with('_')) {
            continue;
        }
        let mut partition = Vec::new();
        for comp in &parts[..parts.len() - 1] {
            if let Some((k, v)) = comp.split_once('=') {
                if let Some(i) = table.columns.iter().position(|c| c.name.as_str() == k) {
                    let v = (v != "__HIVE_DEFAULT_PARTITION__").then(|| v.to_string());
                    partition.push((i, v));
                }
            }
        }
        let url = root.url(&meta.location);
        let id = FileId {
            path: parts.join("/"),
            size: meta.size,
            modified_ms: meta.last_modified.timestamp_millis(),
        };
        files.push(DataFile {
            id,
            display: url.strip_prefix("file://").map(str::to_string).unwrap_or(url),
            path: meta.location,
            size: meta.size,
            partition,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((root, files))
}

/// A raw table's files selected for one read, and how to parse them.
pub(crate) struct RawSource {
    /// `raw.sales_events`, as errors name the table.
    pub table: String,
    pub columns: Vec<Column>,
    /// Every declared column, in declaration order.
    pub schema: SchemaRef,
    partition_cols: Vec<usize>,
    pub policy: BadRows,
    format: RawFormat,
    pub store: Arc<dyn ObjectStore>,
    /// In path order.
    pub files: Vec<DataFile>,
}

impl std::fmt::Debug for RawSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSource")
            .field("table", &self.table)
            .field("files", &self.files.len())
            .finish()
    }
}

impl RawSource {
    /// Lists the files of a raw table at `location` (`file:///…` or `s3://bucket/prefix`) and
    /// keeps those `select` picks (an incremental job: those not yet processed).
    pub async fn open(
        table: &Table,
        stores: &ObjectStores,
        location: &str,
        select: &(dyn Fn(&FileId) -> bool + Sync),
    ) -> Result<RawSource, RawError> {
        let hive = table.hive().ok_or_else(|| RawError::File {
            file: location.to_string(),
            reason: format!("`{}` is an Iceberg table, not a raw table", table.reference()),
        })?;
        let (root, mut files) = list_files(table, stores, location).await?;
        files.retain(|f| select(&f.id));
        let partition_cols: Vec<usize> = table
            .partition_by
            .iter()
            .filter(|p| p.transform == Transform::Identity)
            .filter_map(|p| table.columns.iter().position(|c| c.name == p.column))
            .collect();
        Ok(RawSource {
            table: table.reference().to_string(),
            columns: table.columns.clone(),
            schema: arrow_schema(table),
            partition_cols,
            policy: hive.bad_rows,
            format: hive.file_format.clone(),
            store: root.store,
            files,
        })
    }

    pub fn file_ids(&self) -> Vec<FileId> {
        self.files.iter().map(|f| f.id.clone()).collect()
    }

    /// Whether declared column `i` is a partition column (its value may come from folders).
    pub fn is_partition_column(&self, i: usize) -> bool {
        self.partition_cols.contains(&i)
    }

    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Parses file `i` on this (blocking) thread, `rt` running the storage requests: its rows
    /// go to `sink` a batch at a time, its bad rows to the policy. Counts are those of the
    /// whole file, so they are returned only when it was read to its end.
    pub fn read_file(&self, i: usize, shape: &Shape, rt: &Handle, sink: &mut dyn RowSink) -> Result<FileCount, Halt> {
        let file = &self.files[i];
        match &self.format {
            RawFormat::Csv(opts) => {
                let data = LineLimit::new(open_file(file, &self.store, rt)?, MAX_LINE_BYTES);
                read_csv(self, opts, file, Box::new(data), shape, sink)
            }
            RawFormat::Json => {
                let data = LineLimit::new(open_file(file, &self.store, rt)?, MAX_LINE_BYTES);
                read_json(self, file, Box::new(data), shape, sink)
            }
            RawFormat::Parquet => read_parquet(self, file, &self.store, rt, shape, sink),
        }
    }

    /// Applies the bad-row policy to one problem.
    #[allow(clippy::too_many_arguments)]
    fn reject(
        &self,
        sink: &mut dyn RowSink,
        rejected: &mut u64,
        file: &DataFile,
        line: u64,
        column: Option<&str>,
        reason: String,
        raw: impl FnOnce() -> String,
    ) -> Result<(), Halt> {
        match (self.policy, column) {
            (BadRows::Fail, Some(col)) => Err(Halt::Raw(RawError::BadRow {
                table: self.table.clone(),
                file: file.display.clone(),
                line,
                column: col.into(),
                reason,
            })),
            (BadRows::Fail, None) => Err(Halt::Raw(RawError::BadLine {
                table: self.table.clone(),
                file: file.display.clone(),
                line,
                reason,
            })),
            (BadRows::Quarantine, _) => {
                *rejected += 1;
                sink.reject(RejectedRow {
                    file: file.display.clone(),
                    line,
                    column: column.map(str::to_string),
                    reason,
                    raw: raw(),
                })
            }
        }
    }

    /// The values a file's folders give its partition columns, parsed once for all its rows
    /// (a bad one is reported on each row, as a bad field would be).
    fn partition_values<'a>(&self, partition: &'a [(usize, Option<String>)]) -> Vec<(usize, Result<Val<'a>, String>)> {
        partition
            .iter()
            .map(|(i, v)| {
                let value = match v {
                    None => Ok(Val::Null),
                    Some(t) => parse_text(t, self.columns[*i].data_type),
                };
                (*i, value)
            })
            .collect()
    }

    /// Converts one row into `values`: column `i`'s text is `field(i)` (None = NULL) unless the
    /// file's folders give it. Err says which column is bad and why.
    fn convert<'a>(
        &self,
        field: impl Fn(usize) -> Option<&'a str>,
        partition: &[(usize, Result<Val<'a>, String>)],
        values: &mut Vec<Val<'a>>,
    ) -> Result<(), (String, String)> {
        values.clear();
        for (i, c) in self.columns.iter().enumerate() {
            let v = match partition.iter().find(|(pi, _)| *pi == i) {
                Some((_, Ok(v))) => *v,
                Some((_, Err(e))) => return Err((c.name.to_string(), e.clone())),
                None => match field(i) {
                    None => Val::Null,
                    Some(t) => parse_text(t, c.data_type).map_err(|e| (c.name.to_string(), e))?,
                },
            };
            if matches!(v, Val::Null) && !c.nullable {
                return Err((
                    c.name.to_string(),
                    "is NULL but the column is declared nullable = false".into(),
                ));
            }
            values.push(v);
        }
        Ok(())
    }
}

/// Reads every file of a raw table at `location` (`file:///…` or `s3://bucket/prefix`) into
/// memory. Jobs and `mesh sql` stream raw tables instead ([`crate::raw_table`]).
pub async fn read_raw(table: &Table, stores: &ObjectStores, location: &str) -> Result<RawRead, RawError> {
    read_raw_selected(table, stores, location, &|_| true).await
}

/// Reads the files of a raw table that `select` picks into memory.
pub async fn read_raw_selected(
    table: &Table,
    stores: &ObjectStores,
    location: &str,
    select: &(dyn Fn(&FileId) -> bool + Sync),
) -> Result<RawRead, RawError> {
    let source = Arc::new(RawSource::open(table, stores, location, select).await?);
    let shape = Arc::new(Shape::new(&source.schema, None, BATCH_ROWS));
    // Files are independent: parse a few at once (one per core), results in file order.
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let rt = Handle::current();
    let results: Vec<Collect> = futures::stream::iter(0..source.files.len())
        .map(|i| {
            let (source, shape, rt) = (source.clone(), shape.clone(), rt.clone());
            async move {
                tokio::task::spawn_blocking(move || {
                    let mut out = Collect::default();
                    match source.read_file(i, &shape, &rt, &mut out) {
                        Ok(count) => {
                            out.rows = count.rows;
                            Ok(out)
                        }
                        Err(Halt::Raw(e)) => Err(e),
                        Err(Halt::Stopped) => unreachable!("a collecting read never stops"),
                    }
                })
                .await
                .expect("reader thread panicked")
            }
        })
        .buffered(threads.max(1))
        .try_collect()
        .await?;
    let mut out = RawRead {
        file_ids: source.file_ids(),
        schema: source.schema.clone(),
        batches: Vec::new(),
        rows: 0,
        files: source.files.len(),
        bytes: source.bytes(),
        rejected: Vec::new(),
    };
    for r in results {
        out.rows += r.rows;
        out.batches.extend(r.batches);
        out.rejected.extend(r.rejected);
    }
    Ok(out)
}

/// A file's rows and rejects, kept.
#[derive(Default)]
struct Collect {
    batches: Vec<RecordBatch>,
    rejected: Vec<RejectedRow>,
    rows: u64,
}

impl RowSink for Collect {
    fn batch(&mut self, batch: RecordBatch) -> Result<(), Halt> {
        self.batches.push(batch);
        Ok(())
    }
    fn reject(&mut self, row: RejectedRow) -> Result<(), Halt> {
        self.rejected.push(row);
        Ok(())
    }
}

/// A storage failure while a file is read, as the error of reaching the store. Carried
/// through `std::io` by the readers; an object store's own error is taken back out.
fn read_error(file: &DataFile, e: std::io::Error) -> RawError {
    if let Some(long) = e.get_ref().and_then(|i| i.downcast_ref::<LineTooLong>()) {
        // The file's content, not the storage: no retry can help.
        return RawError::File {
            file: file.display.clone(),
            reason: long.to_string(),
        };
    }
    let source = match e.into_inner() {
        Some(inner) => match inner.downcast::<object_store::Error>() {
            Ok(store) => *store,
            Err(other) => object_store::Error::Generic {
                store: "raw file",
                source: other,
            },
        },
        None => object_store::Error::Generic {
            store: "raw file",
            source: "read failed".into(),
        },
    };
    RawError::Store {
        location: file.display.clone(),
        source: source.into(),
    }
}

/// Longest value of a raw file echoed into a rejected row's reason or an error (in characters,
/// as the runner's `substring` counts): a whole field of a broken file would otherwise flood the
/// terminal, the log and the run record.
pub const MAX_ECHO_CHARS: usize = 200;

/// `text`, cut after [`MAX_ECHO_CHARS`] characters with `…`.
pub fn echo(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
    }
}

/// Longest physical line a CSV or JSON file may have. The parsers hold a whole record in
/// memory, so a file without newlines (a misplaced binary, a 2 GB sparse file) would take all
/// of it; no real record comes near this.
pub const MAX_LINE_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
#[error("has a line longer than {} MiB (from byte {start}): it is not line-delimited text (a binary or compressed file?)\n  help: move the file out of the table's folder; CSV and JSON lines files hold one record per line", .limit >> 20)]
struct LineTooLong {
    start: u64,
    limit: u64,
}

/// A reader that fails once a physical line grows past `limit` bytes, before a parser has
/// buffered more of it.
struct LineLimit<R> {
    inner: R,
    limit: u64,
    /// Bytes of the line in progress, and bytes read so far.
    run: u64,
    offset: u64,
}

impl<R> LineLimit<R> {
    fn new(inner: R, limit: u64) -> Self {
        LineLimit {
            inner,
            limit,
            run: 0,
            offset: 0,
        }
    }
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let chunk = &buf[..n];
        let too_long = |start: u64| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                LineTooLong {
                    start,
                    limit: self.limit,
                },
            )
        };
        if n as u64 > self.limit {
            // A chunk longer than the limit may hold a whole long line between two newlines.
            let (mut run, mut from) = (self.run, 0usize);
            for at in chunk.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i) {
                if run + (at - from) as u64 > self.limit {
                    return Err(too_long(self.offset + from as u64 - run));
                }
                run = 0;
                from = at + 1;
            }
            run += (n - from) as u64;
            if run > self.limit {
                return Err(too_long(self.offset + from as u64 - (run - (n - from) as u64)));
            }
            self.run = run;
        } else {
            // Lines inside a chunk are shorter than it: only the one in progress can be too long,
            // ending at the first newline or running on past the last.
            self.run = match (
                chunk.iter().position(|&b| b == b'\n'),
                chunk.iter().rposition(|&b| b == b'\n'),
            ) {
                (Some(first), Some(last)) => {
                    if self.run + first as u64 > self.limit {
                        return Err(too_long(self.offset - self.run));
                    }
                    (n - last - 1) as u64
                }
                _ => self.run + n as u64,
            };
            if self.run > self.limit {
                let start = self.offset + n as u64 - self.run;
                return Err(too_long(start));
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// A file's bytes as a reader on a blocking thread: a local file is read directly, an S3
/// object's body chunk by chunk as it arrives.
fn open_file(file: &DataFile, store: &Arc<dyn ObjectStore>, rt: &Handle) -> Result<Box<dyn Read + Send>, RawError> {
    let got = rt.block_on(store.get(&file.path)).map_err(store_error(&file.display))?;
    Ok(match got.payload {
        object_store::GetResultPayload::File(f, _) => Box::new(f),
        object_store::GetResultPayload::Stream(body) => Box::new(BodyRead {
            rt: rt.clone(),
            body,
            chunk: Bytes::new(),
        }),
    })
}

/// An object's body as `std::io::Read`, for a parser on a blocking thread.
struct BodyRead {
    rt: Handle,
    body: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
}

impl Read for BodyRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rt.block_on(self.body.next()) {
                None => return Ok(0),
                Some(Ok(b)) => self.chunk = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}

fn read_csv(
    src: &RawSource,
    opts: &CsvOptions,
    file: &DataFile,
    data: Box<dyn Read + Send>,
    shape: &Shape,
    sink: &mut dyn RowSink,
) -> Result<FileCount, Halt> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(opts.delimiter as u8)
        .quote(opts.quote as u8)
        .escape(opts.escape.map(|c| c as u8))
        .has_headers(opts.header)
        .flexible(true)
        .buffer_capacity(READ_BUFFER)
        .from_reader(data);
    let io_error = |e: csv::Error| {
        if e.is_io_error() {
            if let csv::ErrorKind::Io(io) = e.into_kind() {
                return read_error(file, io);
            }
            unreachable!("an I/O error is of the I/O kind");
        }
        RawError::File {
            file: file.display.clone(),
            reason: e.to_string(),
        }
    };
    // Data columns in the file: by header name when there is one, else in declaration order.
    let data_cols: Vec<usize> = (0..src.columns.len())
        .filter(|i| !src.partition_cols.contains(i))
        .collect();
    let positions: Vec<Option<usize>> = if opts.header {
        let header = match reader.headers() {
            Ok(h) => h.clone(),
            // A header that is not text: the file's first record is bad, like any other.
            Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {
                return Err(Halt::Raw(RawError::File {
                    file: file.display.clone(),
                    reason: format!("the header {NOT_UTF8}"),
                }))
            }
            Err(e) => return Err(Halt::Raw(io_error(e))),
        };
        if header.is_empty() {
            // An empty file: no header, no rows (a landing process's empty part file).
            return Ok(FileCount::default());
        }
        let names: Vec<&str> = header.iter().map(str::trim).collect();
        let missing: Vec<&str> = data_cols
            .iter()
            .map(|i| src.columns[*i].name.as_str())
            .filter(|n| !names.contains(n))
            .collect();
        if !missing.is_empty() {
            return Err(Halt::Raw(RawError::File {
                file: file.display.clone(),
                reason: format!(
                    "the header lacks column(s) {} declared for `{}` (header: {})",
                    missing.join(", "),
                    src.table,
                    echo(&names.join(","))
                ),
            }));
        }
        (0..src.columns.len())
            .map(|i| names.iter().position(|n| *n == src.columns[i].name.as_str()))
            .collect()
    } else {
        let mut pos = vec![None; src.columns.len()];
        for (k, i) in data_cols.iter().enumerate() {
            pos[*i] = Some(k);
        }
        pos
    };
    let expected = if opts.header {
        reader.headers().map(|h| h.len()).unwrap_or(data_cols.len())
    } else {
        data_cols.len()
    };
    let mut rows = Rows::new(&src.columns, shape);
    let mut rejected = 0;
    let partition = src.partition_values(&file.partition);
    let mut spare = Vec::with_capacity(src.columns.len());
    let mut record = csv::StringRecord::new();
    let joined = |record: &csv::StringRecord| record.iter().collect::<Vec<_>>().join(&opts.delimiter.to_string());
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) if e.is_io_error() => return Err(Halt::Raw(io_error(e))),
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                let reason = if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    NOT_UTF8.to_string()
                } else {
                    format!("unreadable CSV: {e}")
                };
                src.reject(sink, &mut rejected, file, line, None, reason, String::new)?;
                continue;
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() != expected {
            src.reject(
                sink,
                &mut rejected,
                file,
                line,
                None,
                format!("{} fields where {} are expected", record.len(), expected),
                || joined(&record),
            )?;
            continue;
        }
        let field = |i: usize| {
            positions[i]
                .and_then(|k| record.get(k))
                .filter(|v| *v != opts.null_value)
        };
        let mut values = reuse(std::mem::take(&mut spare));
        match src.convert(field, &partition, &mut values) {
            Ok(()) => rows.push(&values, sink)?,
            Err((col, reason)) => {
                src.reject(sink, &mut rejected, file, line, Some(&col), reason, || joined(&record))?
            }
        }
        spare = reuse(values);
    }
    rows.flush(sink)?;
    Ok(FileCount {
        rows: rows.rows,
        rejected,
    })
}

fn read_json(
    src: &RawSource,
    file: &DataFile,
    data: Box<dyn Read + Send>,
    shape: &Shape,
    sink: &mut dyn RowSink,
) -> Result<FileCount, Halt> {
    let mut rows = Rows::new(&src.columns, shape);
    let mut rejected = 0;
    let partition = src.partition_values(&file.partition);
    let mut spare = Vec::with_capacity(src.columns.len());
    let names: Vec<&str> = src.columns.iter().map(|c| c.name.as_str()).collect();
    let mut reader = std::io::BufReader::with_capacity(READ_BUFFER, data);
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(|e| read_error(file, e))? == 0 {
            break;
        }
        line_no += 1;
        let bytes = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let Ok(line) = std::str::from_utf8(bytes) else {
            src.reject(sink, &mut rejected, file, line_no, None, NOT_UTF8.into(), String::new)?;
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        let mut de = serde_json::Deserializer::from_str(line);
        let texts = match JsonRow(&names).deserialize(&mut de).and_then(|t| de.end().map(|_| t)) {
            Ok(t) => t,
            Err(e) => {
                src.reject(
                    sink,
                    &mut rejected,
                    file,
                    line_no,
                    None,
                    format!("not a JSON object: {e}"),
                    || line.to_string(),
                )?;
                continue;
            }
        };
        let mut values = reuse(std::mem::take(&mut spare));
        match src.convert(|i| texts[i].as_deref(), &partition, &mut values) {
            Ok(()) => rows.push(&values, sink)?,
            Err((col, reason)) => src.reject(sink, &mut rejected, file, line_no, Some(&col), reason, || {
                line.to_string()
            })?,
        }
        spare = reuse(values);
    }
    rows.flush(sink)?;
    Ok(FileCount {
        rows: rows.rows,
        rejected,
    })
}

/// A Parquet file in an object store, read by ranges: the footer, then the column chunks a
/// read needs. A storage failure is kept aside so it is reported as one, not as a bad file.
struct StoreParquet {
    store: Arc<dyn ObjectStore>,
    path: object_store::path::Path,
    size: u64,
    failed: Arc<Mutex<Option<object_store::Error>>>,
}

impl StoreParquet {
    fn keep(&self, e: object_store::Error) -> parquet::errors::ParquetError {
        let message = e.to_string();
        *self.failed.lock().expect("not poisoned") = Some(e);
        parquet::errors::ParquetError::External(message.into())
    }
}

impl parquet::arrow::async_reader::AsyncFileReader for StoreParquet {
    fn get_bytes(&mut self, range: std::ops::Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move { self.store.get_range(&self.path, range).await.map_err(|e| self.keep(e)) }.boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(|e| self.keep(e))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a parquet::arrow::arrow_reader::ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<parquet::file::metadata::ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = parquet::file::metadata::ParquetMetaDataReader::new()
                .load_and_finish(&mut *self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

fn read_parquet(
    src: &RawSource,
    file: &DataFile,
    store: &Arc<dyn ObjectStore>,
    rt: &Handle,
    shape: &Shape,
    sink: &mut dyn RowSink,
) -> Result<FileCount, Halt> {
    let failed = Arc::new(Mutex::new(None::<object_store::Error>));
    let err = |reason: String| RawError::File {
        file: file.display.clone(),
        reason,
    };
    // A storage failure kept aside by the reader wins over what the decoder made of it.
    let parquet_error =
        |prefix: &str, e: parquet::errors::ParquetError| match failed.lock().expect("not poisoned").take() {
            Some(store) => RawError::Store {
                location: file.display.clone(),
                source: store.into(),
            },
            None => err(format!("{prefix}{e}")),
        };
    let input = StoreParquet {
        store: store.clone(),
        path: file.path.clone(),
        size: file.size,
        failed: failed.clone(),
    };
    let builder = rt
        .block_on(parquet::arrow::ParquetRecordBatchStreamBuilder::new(input))
        .map_err(|e| parquet_error("not a Parquet file: ", e))?;
    let file_schema = builder.schema().clone();
    let partition_value = |i: usize| file.partition.iter().find(|(pi, _)| *pi == i).map(|(_, v)| v);
    // Checked on every batch: the columns built, and those a NULL would make the file bad.
    let checked: Vec<usize> = (0..src.columns.len())
        .filter(|i| shape.columns.contains(i) || !src.columns[*i].nullable)
        .collect();
    let roots: Vec<usize> = checked
        .iter()
        .filter(|i| partition_value(**i).is_none())
        .filter_map(|i| file_schema.index_of(src.columns[*i].name.as_str()).ok())
        .collect();
    let mask = parquet::arrow::ProjectionMask::roots(builder.parquet_schema(), roots);
    let mut stream = builder
        .with_projection(mask)
        .with_batch_size(shape.batch_rows)
        .build()
        .map_err(|e| parquet_error("", e))?;
    let mut rows = 0u64;
    let mut first = true;
    while let Some(batch) = rt.block_on(stream.next()) {
        let batch = batch.map_err(|e| parquet_error("", e))?;
        let n = batch.num_rows();
        let mut arrays: Vec<Option<ArrayRef>> = vec![None; src.columns.len()];
        // In declaration order, as a whole read would meet them: a column the file lacks or
        // cannot cast (the first batch tells, read or not), then a NULL where none may be.
        for (i, c) in src.columns.iter().enumerate() {
            let target = arrow_type(c.data_type);
            let read = checked.contains(&i);
            let array = if let Some(v) = partition_value(i) {
                if !read {
                    continue;
                }
                let scalar = match v {
                    Some(t) => arrow::array::StringArray::from(vec![t.as_str(); n]),
                    None => arrow::array::StringArray::from(vec![None::<&str>; n]),
                };
                arrow::compute::cast(&scalar, &target).map_err(|e| err(format!("partition `{}`: {e}", c.name)))?
            } else {
                let cannot_cast = |e: arrow::error::ArrowError| {
                    err(format!("column `{}` cannot be read as {}: {e}", c.name, c.data_type))
                };
                if first {
                    let field = file_schema
                        .field_with_name(c.name.as_str())
                        .map_err(|_| err(format!("has no column `{}` declared for `{}`", c.name, src.table)))?;
                    if !read {
                        // Not read: whether it casts is a matter of its type alone.
                        let empty = arrow::array::new_empty_array(field.data_type());
                        arrow::compute::cast(&empty, &target).map_err(cannot_cast)?;
                    }
                }
                if !read {
                    continue;
                }
                let col = batch
                    .column_by_name(c.name.as_str())
                    .ok_or_else(|| err(format!("has no column `{}` declared for `{}`", c.name, src.table)))?;
                arrow::compute::cast(col, &target).map_err(cannot_cast)?
            };
            if !c.nullable && array.null_count() > 0 {
                return Err(Halt::Raw(err(format!(
                    "column `{}` holds NULLs but is declared nullable = false",
                    c.name
                ))));
            }
            arrays[i] = Some(array);
        }
        first = false;
        rows += n as u64;
        let columns: Vec<ArrayRef> = shape
            .columns
            .iter()
            .map(|i| arrays[*i].clone().expect("built columns are read"))
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        let out = RecordBatch::try_new_with_options(shape.schema.clone(), columns, &options)
            .map_err(|e| err(e.to_string()))?;
        sink.batch(out)?;
    }
    Ok(FileCount { rows, rejected: 0 })
}

/// The declared columns' values of one JSON object line, as text: strings as they are (borrowed
/// from the line when they hold no escapes), other values as their JSON text, null and absent
/// keys as None, other keys skipped; a repeated key keeps its last value. One pass, no map.
struct JsonRow<'c>(&'c [&'c str]);

type JsonTexts<'de> = Vec<Option<Cow<'de, str>>>;

impl<'de> DeserializeSeed<'de> for JsonRow<'_> {
    type Value = JsonTexts<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for JsonRow<'_> {
    type Value = JsonTexts<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = vec![None; self.0.len()];
        while let Some(key) = map.next_key::<JsonText<'de>>()? {
            match self.0.iter().position(|c| *c == key.0) {
                Some(i) => out[i] = map.next_value::<JsonValue<'de>>()?.0,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// A JSON string, borrowed when it can be.
struct JsonText<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for JsonText<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(JsonValueVisitor).and_then(|v| {
            v.0.map(JsonText)
                .ok_or_else(|| serde::de::Error::custom("a key is not a string"))
        })
    }
}

/// Any JSON value as the text the column parsers read.
struct JsonValue<'de>(Option<Cow<'de, str>>);

impl<'de> Deserialize<'de> for JsonValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonValueVisitor)
    }
}

struct JsonValueVisitor;

impl<'de> Visitor<'de> for JsonValueVisitor {
    type Value = JsonValue<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(JsonValue(None))
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(JsonValue(None))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(JsonValue(Some(Cow::Borrowed(v))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(JsonValue(Some(Cow::Owned(v.to_string()))))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(JsonValue(Some(Cow::Owned(v))))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(JsonValue(Some(Cow::Borrowed(if v { "true" } else { "false" }))))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(JsonValue(Some(Cow::Owned(v.to_string()))))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(JsonValue(Some(Cow::Owned(v.to_string()))))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        // serde_json's own rendering of the number, as a serde_json::Value would print it.
        Ok(JsonValue(
            serde_json::Number::from_f64(v).map(|n| Cow::Owned(n.to_string())),
        ))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let v = serde_json::Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
        Ok(JsonValue(Some(Cow::Owned(v.to_string()))))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let v = serde_json::Value::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        Ok(JsonValue(Some(Cow::Owned(v.to_string()))))
    }
}

/// The schema of a `<table>_rejected` quarantine table.
pub fn rejected_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("file", DataType::Utf8, false),
        Field::new("line", DataType::Int64, false),
        Field::new("column_name", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("raw", DataType::Utf8, false),
    ]))
}

pub fn rejected_batch(rows: &[RejectedRow]) -> RecordBatch {
    use arrow::array::{Int64Array, StringArray};
    RecordBatch::try_new(
        rejected_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.file.as_str()))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.line as i64))),
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.column.as_deref()))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.reason.as_str()))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.raw.as_str()))),
        ],
    )
    .expect("fixed schema")
}

/// Writes a batch as one Hive-partition folder of zstd Parquet
/// (`{location}/{key}={value}/part-00000.parquet`) and returns its URL.
pub async fn write_parquet_partition(
    stores: &ObjectStores,
    location: &str,
    key: &str,
    value: &str,
    batch: &RecordBatch,
) -> Result<String, RawError> {
    let url = format!("{}/{key}={value}/part-00000.parquet", location.trim_end_matches('/'));
    write_parquet_file(stores, &url, batch).await?;
    Ok(url)
}

/// Writes a batch as one zstd Parquet file at `url`. The file is one PUT, so a reader never
/// lists a half-written file.
pub async fn write_parquet_file(stores: &ObjectStores, url: &str, batch: &RecordBatch) -> Result<(), RawError> {
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    let io = |e: parquet::errors::ParquetError| RawError::File {
        file: url.to_string(),
        reason: e.to_string(),
    };
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).map_err(io)?;
    w.write(batch).map_err(io)?;
    w.close().map_err(io)?;
    let target = stores.locate(url).map_err(|e| RawError::Store {
        location: url.to_string(),
        source: e.into(),
    })?;
    target
        .store
        .put(&target.path, Bytes::from(buf).into())
        .await
        .map_err(store_error(url))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_past_the_limit_fails_the_read_and_shorter_ones_pass() {
        fn read_all(data: &[u8], limit: u64, chunk: usize) -> Result<Vec<u8>, String> {
            struct Chunks<'a>(&'a [u8], usize);
            impl Read for Chunks<'_> {
                fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                    let n = self.0.len().min(self.1).min(buf.len());
                    buf[..n].copy_from_slice(&self.0[..n]);
                    self.0 = &self.0[n..];
                    Ok(n)
                }
            }
            let mut out = Vec::new();
            LineLimit::new(Chunks(data, chunk), limit)
                .read_to_end(&mut out)
                .map_err(|e| e.into_inner().unwrap().to_string())?;
            Ok(out)
        }
        for chunk in [1, 3, 7, 64] {
            // Lines of exactly the limit pass, whatever the chunking.
            let ok = b"0123456789\n0123456789\n\n0123456789";
            assert_eq!(read_all(ok, 10, chunk).unwrap(), ok);
            // One byte more fails, naming where the line starts: in the middle, across chunks,
            // at the end without a newline.
            for (data, start) in [
                (&b"0123456789\n0123456789a\n01"[..], 11),
                (&b"ab\n0123456789ab"[..], 3),
                (&b"0123456789a"[..], 0),
            ] {
                let e = read_all(data, 10, chunk).unwrap_err();
                assert!(e.contains(&format!("from byte {start})")), "{chunk}: {e}");
            }
        }
    }

    #[test]
    fn echoes_of_raw_values_are_cut() {
        assert_eq!(echo("short"), "short");
        let long = "é".repeat(MAX_ECHO_CHARS + 5);
        let cut = echo(&long);
        assert_eq!(cut.chars().count(), MAX_ECHO_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(echo(&"x".repeat(MAX_ECHO_CHARS)).len(), MAX_ECHO_CHARS);
    }

    #[test]
    fn decimals_round_half_up_and_check_precision() {
        assert_eq!(parse_decimal("12.34", 10, 2), Some(1234));
        assert_eq!(parse_decimal("-0.5", 10, 2), Some(-50));
        assert_eq!(parse_decimal("1.005", 10, 2), Some(101));
        assert_eq!(parse_decimal("7", 10, 2), Some(700));
        assert_eq!(parse_decimal("12,50", 10, 2), None);
        assert_eq!(
            parse_decimal("123456789", 10, 2),
            None,
            "11 digits do not fit decimal(10,2)"
        );
        assert_eq!(parse_decimal("", 10, 2), None);
        assert_eq!(parse_decimal("-", 10, 2), None);
    }

    #[test]
    fn a_zone_in_a_timestamp_column_is_refused_saying_why() {
        for v in ["2026-12-31 12:00:00Z", "2026-12-31T12:00:00+05:00"] {
            let e = parse_text(v, ColumnType::Timestamp).err().unwrap();
            assert_eq!(e, format!("`{v}` is not a valid timestamp{TZ_OFFSET_HINT}"));
            assert!(parse_text(v, ColumnType::Timestamptz).is_ok());
        }
        let e = parse_text("yesterday", ColumnType::Timestamp).err().unwrap();
        assert_eq!(e, "`yesterday` is not a valid timestamp");
    }

    #[test]
    fn a_leap_second_is_not_a_timestamp() {
        for s in ["2026-12-31 23:59:60", "2026-12-31T23:59:60.5", "2026-06-30 23:59:60"] {
            assert_eq!(parse_timestamp(s, false), None, "{s}");
        }
        assert_eq!(parse_timestamp("2026-12-31T23:59:60Z", true), None);
        assert_eq!(parse_timestamp("2026-12-31 23:59:60+01:00", true), None);
        assert!(parse_timestamp("2026-12-31 23:59:59.999999", false).is_some());
    }

    #[test]
    fn timestamps() {
        let t = parse_timestamp("2026-11-03 10:00:00", false).unwrap();
        assert_eq!(t, parse_timestamp("2026-11-03T10:00:00", false).unwrap());
        assert_eq!(parse_timestamp("2026-11-03T11:00:00+01:00", true).unwrap(), t);
        assert!(parse_timestamp("2026-13-45 99:00:00", false).is_none());
    }

    #[test]
    fn fast_date_and_timestamp_parsing_agree_with_chrono() {
        let dates = [
            "0001-01-01",
            "0000-02-29",
            "1900-02-29",
            "2000-02-29",
            "1969-12-31",
            "1970-01-01",
            "2024-02-29",
            "2023-02-29",
            "2026-11-27",
            "9999-12-31",
            "2026-00-10",
            "2026-13-01",
            "2026-04-31",
            "2026-01-00",
            "2026-1-01",
            "20261-01-01",
            "2026/01/01",
            "2026-01-0a",
            "+2026-01-01",
        ];
        let times = [
            "",
            " 00:00",
            "T23:59",
            " 24:00",
            " 12:34:56",
            "T12:34:56",
            " 23:59:59",
            " 23:59:60",
            " 12:34:5",
            " 12:34:56.1",
            " 12:34:56.123456",
            "T12:34:56.123456789",
            " 12:34:56.1234567891",
            " 12:34:56.",
            " 12:34:56Z",
            " 12:34:56 ",
            "t12:34:56",
            "_12:34:56",
            " 12:34:56.12a",
            " 1:02:03",
            " 12:60:00",
            "T00:00:00.000001",
            " 12:34:56+01:00",
            "T12:34:56Z",
        ];
        let mut checked = 0;
        for d in dates {
            let chrono_days = NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .ok()
                .map(|x| (x - epoch()).num_days() as i32);
            assert_eq!(fast_date(d).or(chrono_days), chrono_days, "{d}");
            assert_eq!(
                parse_text(d, ColumnType::Date).ok().map(|v| match v {
                    Val::Date(x) => x,
                    _ => unreachable!("a date column parses to a date"),
                }),
                chrono_days,
                "{d}"
            );
            for t in times {
                let s = format!("{d}{t}");
                for tz in [false, true] {
                    assert_eq!(parse_timestamp(&s, tz), chrono_timestamp(&s, tz), "{s:?} tz={tz}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 19 * 24 * 2);
        // Every day of four centuries and around the epoch, through the integer arithmetic.
        let mut day = NaiveDate::from_ymd_opt(1599, 12, 1).unwrap();
        while day < NaiveDate::from_ymd_opt(2401, 3, 1).unwrap() {
            let text = day.format("%Y-%m-%d").to_string();
            assert_eq!(fast_date(&text), Some((day - epoch()).num_days() as i32), "{text}");
            day = day.succ_opt().unwrap();
        }
        // The fast path took the common shapes (else this test compares chrono with itself).
        assert!(fast_naive_timestamp("2026-11-27 12:34:56.5").is_some());
        assert!(fast_naive_timestamp("2026-11-27T12:34").is_some());
    }

    /// The one-pass JSON reader gives, per declared column, the text a `serde_json::Value`
    /// map would have given (strings as they are, other values as JSON text, null as None).
    #[test]
    fn json_rows_match_a_value_map() {
        let columns: Vec<&str> = ["id", "name", "n", "x", "nested", "missing"].to_vec();
        let lines = [
            r#"{"id": 1, "name": "plain", "n": 12.5, "x": true}"#,
            r#"{"name": "esc\"aped\u00e9\n", "id": -7, "extra": [1, {"a": 2}], "n": 1e20}"#,
            r#"{"id": 18446744073709551615, "n": 123456789012345678901234567890, "x": null}"#,
            r#"{"nested": {"b": [1, 2, null], "a": "s"}, "x": false, "id": 0.1}"#,
            r#"{"id": 1, "id": 2}"#,
            r#"{}"#,
        ];
        for line in lines {
            let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
            let expected: Vec<Option<String>> = columns
                .iter()
                .map(|c| match map.get(*c) {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(other) => Some(other.to_string()),
                })
                .collect();
            let mut de = serde_json::Deserializer::from_str(line);
            let got: Vec<Option<String>> = JsonRow(&columns)
                .deserialize(&mut de)
                .unwrap()
                .into_iter()
                .map(|t| t.map(|c| c.into_owned()))
                .collect();
            assert_eq!(got, expected, "{line}");
        }
        for bad in ["[1, 2]", "\"text\"", "{\"id\": 1", "{\"id\": 1} trailing"] {
            let mut de = serde_json::Deserializer::from_str(bad);
            let r = JsonRow(&columns).deserialize(&mut de).and_then(|t| de.end().map(|_| t));
            assert!(r.is_err(), "{bad} was accepted");
        }
    }
}
