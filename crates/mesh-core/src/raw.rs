//! Raw-layer readers: CSV, JSON lines and Parquet files in Hive partition folders, read with
//! the schema declared in the manifest (never inferred). Each bad row is either an error that
//! names the file, line and column (`bad_rows = "fail"`) or is set aside with its reason
//! (`bad_rows = "quarantine"`) while the good rows go on.
//!
//! Files are listed and fetched through `object_store` ([`ObjectStores`]), so the local lake
//! (`file://…`) and S3 (`s3://f01-raw-dev/pj01/…`) share this one code path; parsing runs on
//! blocking threads, a few files at a time, in file order.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder,
    Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use futures::{StreamExt, TryStreamExt};
use mesh_domain::{BadRows, Column, ColumnType, CsvOptions, RawFormat, Table, Transform};
use mesh_iceberg::ObjectStores;
use object_store::ObjectStoreExt;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::translate::{arrow_schema, arrow_type};

/// Rows per Arrow batch produced by the readers.
const BATCH_ROWS: usize = 64 * 1024;

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
    #[error("cannot access `{location}`: {detail}")]
    Store { location: String, detail: String },
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

/// Parses one text value as the column's type; the error says what was expected.
fn parse_text(text: &str, t: ColumnType) -> Result<Val<'_>, String> {
    let s = text.trim();
    let bad = || format!("`{text}` is not a valid {t}");
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
        ColumnType::Date => {
            let d = fast_date(s)
                .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                .ok_or_else(bad)?;
            Val::Date((d - epoch()).num_days() as i32)
        }
        ColumnType::Timestamp => Val::Ts(parse_timestamp(s, false).ok_or_else(bad)?),
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
    if tz {
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Some(dt.timestamp_micros());
        }
        if let Ok(dt) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
            return Some(dt.timestamp_micros());
        }
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc().timestamp_micros());
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

/// `YYYY-MM-DD` exactly. The common shape skips chrono's format interpreter, which parses its
/// format string again for every value (most of a raw read's time otherwise); anything else
/// goes to chrono, so what is accepted does not change.
fn fast_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(digits(&b[0..4])? as i32, digits(&b[5..7])?, digits(&b[8..10])?)
}

/// `YYYY-MM-DD[ T]HH:MM[:SS[.f]]` (1 to 9 fraction digits, no offset) in microseconds, the
/// same value chrono gives; None sends the text to chrono's parsers.
fn fast_naive_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 16 || !(b[10] == b' ' || b[10] == b'T') || b[13] != b':' {
        return None;
    }
    let date = fast_date(&s[..10])?;
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
    let t = date.and_hms_nano_opt(hour, minute, second, nanos)?;
    Some(t.and_utc().timestamp_micros())
}

/// Builds batches row by row; a row is appended only once every value of it parsed.
struct Rows {
    schema: SchemaRef,
    builders: Vec<Builder>,
    pending: usize,
    batches: Vec<RecordBatch>,
    rows: u64,
}

impl Rows {
    fn new(columns: &[Column], schema: SchemaRef) -> Rows {
        Rows {
            schema,
            builders: columns.iter().map(|c| Builder::new(c.data_type)).collect(),
            pending: 0,
            batches: Vec::new(),
            rows: 0,
        }
    }

    fn push(&mut self, values: Vec<Val<'_>>) {
        for (b, v) in self.builders.iter_mut().zip(values) {
            match v {
                Val::Null => b.append_null(),
                v => b.append(v),
            }
        }
        self.pending += 1;
        self.rows += 1;
        if self.pending == BATCH_ROWS {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.pending == 0 {
            return;
        }
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        self.batches
            .push(RecordBatch::try_new(self.schema.clone(), arrays).expect("builders follow the schema"));
        self.pending = 0;
    }
}

/// A data file with the partition values its folders give.
struct DataFile {
    /// The store's path of the object.
    path: object_store::path::Path,
    /// What errors show: the local file path or the `s3://` URL.
    display: String,
    size: u64,
    partition: Vec<(usize, Option<String>)>,
    id: FileId,
}

fn store_error(location: &str) -> impl FnOnce(object_store::Error) -> RawError + '_ {
    move |e| RawError::Store {
        location: location.to_string(),
        detail: e.to_string(),
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
        detail: e.to_string(),
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

/// Reads every file of a raw table at `location` (`file:///…` or `s3://bucket/prefix`).
pub async fn read_raw(table: &Table, stores: &ObjectStores, location: &str) -> Result<RawRead, RawError> {
    read_raw_selected(table, stores, location, &|_| true).await
}

/// Reads the files of a raw table that `select` picks (an incremental job: those not yet
/// processed).
pub async fn read_raw_selected(
    table: &Table,
    stores: &ObjectStores,
    location: &str,
    select: &(dyn Fn(&FileId) -> bool + Sync),
) -> Result<RawRead, RawError> {
    let hive = table.hive().ok_or_else(|| RawError::File {
        file: location.to_string(),
        reason: format!("`{}` is an Iceberg table, not a raw table", table.reference()),
    })?;
    let schema = arrow_schema(table);
    let (root, mut files) = list_files(table, stores, location).await?;
    files.retain(|f| select(&f.id));
    let file_ids: Vec<FileId> = files.iter().map(|f| f.id.clone()).collect();
    let partition_cols: Vec<usize> = table
        .partition_by
        .iter()
        .filter(|p| p.transform == Transform::Identity)
        .filter_map(|p| table.columns.iter().position(|c| c.name == p.column))
        .collect();
    let bytes = files.iter().map(|f| f.size).sum();
    let n_files = files.len();
    let cx = Arc::new(FileCx {
        table: table.reference().to_string(),
        columns: table.columns.clone(),
        schema: schema.clone(),
        partition_cols,
        policy: hive.bad_rows,
        format: hive.file_format.clone(),
    });

    // Files are independent: fetch and parse a few at once (one per core), results in file
    // order, so memory holds only the files in flight.
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let results: Vec<FileRead> = futures::stream::iter(files)
        .map(|f| {
            let cx = cx.clone();
            let store = root.store.clone();
            async move {
                let data = store
                    .get(&f.path)
                    .await
                    .map_err(store_error(&f.display))?
                    .bytes()
                    .await
                    .map_err(store_error(&f.display))?;
                tokio::task::spawn_blocking(move || read_file(&cx, &f, data))
                    .await
                    .expect("reader thread panicked")
            }
        })
        .buffered(threads.max(1))
        .try_collect()
        .await?;
    let mut out = RawRead {
        file_ids,
        schema,
        batches: Vec::new(),
        rows: 0,
        files: n_files,
        bytes,
        rejected: Vec::new(),
    };
    for r in results {
        out.rows += r.rows;
        out.batches.extend(r.batches);
        out.rejected.extend(r.rejected);
    }
    Ok(out)
}

struct FileCx {
    table: String,
    columns: Vec<Column>,
    schema: SchemaRef,
    partition_cols: Vec<usize>,
    policy: BadRows,
    format: RawFormat,
}

struct FileRead {
    batches: Vec<RecordBatch>,
    rows: u64,
    rejected: Vec<RejectedRow>,
}

impl FileCx {
    /// Applies the bad-row policy to one problem.
    fn reject(
        &self,
        out: &mut Vec<RejectedRow>,
        file: &DataFile,
        line: u64,
        column: Option<&str>,
        reason: String,
        raw: String,
    ) -> Result<(), RawError> {
        match (self.policy, column) {
            (BadRows::Fail, Some(col)) => Err(RawError::BadRow {
                table: self.table.clone(),
                file: file.display.clone(),
                line,
                column: col.into(),
                reason,
            }),
            (BadRows::Fail, None) => Err(RawError::BadLine {
                table: self.table.clone(),
                file: file.display.clone(),
                line,
                reason,
            }),
            (BadRows::Quarantine, _) => {
                out.push(RejectedRow {
                    file: file.display.clone(),
                    line,
                    column: column.map(str::to_string),
                    reason,
                    raw,
                });
                Ok(())
            }
        }
    }

    /// Converts one row of text fields (None = NULL) into values, or says which column is bad.
    fn convert<'a>(
        &self,
        fields: Vec<Option<&'a str>>,
        partition: &'a [(usize, Option<String>)],
    ) -> Result<Vec<Val<'a>>, (String, String)> {
        let mut values = Vec::with_capacity(self.columns.len());
        for (i, (c, f)) in self.columns.iter().zip(fields).enumerate() {
            let text = match partition.iter().find(|(pi, _)| *pi == i) {
                Some((_, v)) => v.as_deref(),
                None => f,
            };
            let v = match text {
                None => Val::Null,
                Some(t) => parse_text(t, c.data_type).map_err(|e| (c.name.to_string(), e))?,
            };
            if matches!(v, Val::Null) && !c.nullable {
                return Err((
                    c.name.to_string(),
                    "is NULL but the column is declared nullable = false".into(),
                ));
            }
            values.push(v);
        }
        Ok(values)
    }
}

fn read_file(cx: &FileCx, file: &DataFile, data: Bytes) -> Result<FileRead, RawError> {
    match &cx.format {
        RawFormat::Csv(opts) => read_csv(cx, opts, file, &data),
        RawFormat::Json => read_json(cx, file, &data),
        RawFormat::Parquet => read_parquet(cx, file, data),
    }
}

fn read_csv(cx: &FileCx, opts: &CsvOptions, file: &DataFile, data: &[u8]) -> Result<FileRead, RawError> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(opts.delimiter as u8)
        .quote(opts.quote as u8)
        .escape(opts.escape.map(|c| c as u8))
        .has_headers(opts.header)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(data);
    // Data columns in the file: by header name when there is one, else in declaration order.
    let data_cols: Vec<usize> = (0..cx.columns.len())
        .filter(|i| !cx.partition_cols.contains(i))
        .collect();
    let positions: Vec<Option<usize>> = if opts.header {
        let header = reader
            .headers()
            .map_err(|e| RawError::File {
                file: file.display.clone(),
                reason: e.to_string(),
            })?
            .clone();
        let names: Vec<&str> = header.iter().map(str::trim).collect();
        let missing: Vec<&str> = data_cols
            .iter()
            .map(|i| cx.columns[*i].name.as_str())
            .filter(|n| !names.contains(n))
            .collect();
        if !missing.is_empty() {
            return Err(RawError::File {
                file: file.display.clone(),
                reason: format!(
                    "the header lacks column(s) {} declared for `{}` (header: {})",
                    missing.join(", "),
                    cx.table,
                    names.join(",")
                ),
            });
        }
        (0..cx.columns.len())
            .map(|i| names.iter().position(|n| *n == cx.columns[i].name.as_str()))
            .collect()
    } else {
        let mut pos = vec![None; cx.columns.len()];
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
    let mut rows = Rows::new(&cx.columns, cx.schema.clone());
    let mut rejected = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                cx.reject(
                    &mut rejected,
                    file,
                    line,
                    None,
                    format!("unreadable CSV: {e}"),
                    String::new(),
                )?;
                continue;
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() != expected {
            let raw = record.iter().collect::<Vec<_>>().join(&opts.delimiter.to_string());
            cx.reject(
                &mut rejected,
                file,
                line,
                None,
                format!("{} fields where {} are expected", record.len(), expected),
                raw,
            )?;
            continue;
        }
        let fields: Vec<Option<&str>> = positions
            .iter()
            .map(|p| p.and_then(|k| record.get(k)).filter(|v| *v != opts.null_value))
            .collect();
        match cx.convert(fields, &file.partition) {
            Ok(values) => rows.push(values),
            Err((col, reason)) => {
                let raw = record.iter().collect::<Vec<_>>().join(&opts.delimiter.to_string());
                cx.reject(&mut rejected, file, line, Some(&col), reason, raw)?;
            }
        }
    }
    rows.flush();
    Ok(FileRead {
        rows: rows.rows,
        batches: rows.batches,
        rejected,
    })
}

fn read_json(cx: &FileCx, file: &DataFile, data: &[u8]) -> Result<FileRead, RawError> {
    let mut rows = Rows::new(&cx.columns, cx.schema.clone());
    let mut rejected = Vec::new();
    let names: Vec<&str> = cx.columns.iter().map(|c| c.name.as_str()).collect();
    for (n, bytes) in data.split(|b| *b == b'\n').enumerate() {
        let line_no = n as u64 + 1;
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let line = std::str::from_utf8(bytes).map_err(|e| RawError::File {
            file: file.display.clone(),
            reason: format!("line {line_no} is not UTF-8 text: {e}"),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let mut de = serde_json::Deserializer::from_str(line);
        let texts = match JsonRow(&names).deserialize(&mut de).and_then(|t| de.end().map(|_| t)) {
            Ok(t) => t,
            Err(e) => {
                cx.reject(
                    &mut rejected,
                    file,
                    line_no,
                    None,
                    format!("not a JSON object: {e}"),
                    line.to_string(),
                )?;
                continue;
            }
        };
        let fields: Vec<Option<&str>> = texts.iter().map(|t| t.as_deref()).collect();
        match cx.convert(fields, &file.partition) {
            Ok(values) => rows.push(values),
            Err((col, reason)) => cx.reject(&mut rejected, file, line_no, Some(&col), reason, line.to_string())?,
        }
    }
    rows.flush();
    Ok(FileRead {
        rows: rows.rows,
        batches: rows.batches,
        rejected,
    })
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

fn read_parquet(cx: &FileCx, file: &DataFile, data: Bytes) -> Result<FileRead, RawError> {
    let err = |reason: String| RawError::File {
        file: file.display.clone(),
        reason,
    };
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(data)
        .map_err(|e| err(format!("not a Parquet file: {e}")))?
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| err(e.to_string()))?;
    let mut batches = Vec::new();
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| err(e.to_string()))?;
        let n = batch.num_rows();
        let mut arrays = Vec::with_capacity(cx.columns.len());
        for (i, c) in cx.columns.iter().enumerate() {
            let target = arrow_type(c.data_type);
            let array = if let Some((_, v)) = file.partition.iter().find(|(pi, _)| *pi == i) {
                let scalar = match v {
                    Some(t) => arrow::array::StringArray::from(vec![t.as_str(); n]),
                    None => arrow::array::StringArray::from(vec![None::<&str>; n]),
                };
                arrow::compute::cast(&scalar, &target).map_err(|e| err(format!("partition `{}`: {e}", c.name)))?
            } else {
                let col = batch
                    .column_by_name(c.name.as_str())
                    .ok_or_else(|| err(format!("has no column `{}` declared for `{}`", c.name, cx.table)))?;
                arrow::compute::cast(col, &target)
                    .map_err(|e| err(format!("column `{}` cannot be read as {}: {e}", c.name, c.data_type)))?
            };
            if !c.nullable && array.null_count() > 0 {
                return Err(err(format!(
                    "column `{}` holds NULLs but is declared nullable = false",
                    c.name
                )));
            }
            arrays.push(array);
        }
        rows += n as u64;
        batches.push(RecordBatch::try_new(cx.schema.clone(), arrays).map_err(|e| err(e.to_string()))?);
    }
    Ok(FileRead {
        batches,
        rows,
        rejected: Vec::new(),
    })
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
/// (`{location}/{key}={value}/part-00000.parquet`) and returns its URL. The file is one PUT,
/// so a reader never lists a half-written file.
pub async fn write_parquet_partition(
    stores: &ObjectStores,
    location: &str,
    key: &str,
    value: &str,
    batch: &RecordBatch,
) -> Result<String, RawError> {
    let url = format!("{}/{key}={value}/part-00000.parquet", location.trim_end_matches('/'));
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .build();
    let io = |e: parquet::errors::ParquetError| RawError::File {
        file: url.clone(),
        reason: e.to_string(),
    };
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).map_err(io)?;
    w.write(batch).map_err(io)?;
    w.close().map_err(io)?;
    let target = stores.locate(&url).map_err(|e| RawError::Store {
        location: url.clone(),
        detail: e.to_string(),
    })?;
    target
        .store
        .put(&target.path, Bytes::from(buf).into())
        .await
        .map_err(store_error(&url))?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            assert_eq!(
                fast_date(d).or_else(|| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
                NaiveDate::parse_from_str(d, "%Y-%m-%d").ok(),
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
        assert_eq!(checked, 16 * 24 * 2);
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
