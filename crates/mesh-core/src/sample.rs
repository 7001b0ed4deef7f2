//! Deterministic synthetic raw data, so a fresh clone can run every example pipeline.
//!
//! The example tables get realistic profiles (sales events, customer CDC with updates and
//! deletes, legacy orders with dirty rows); any other raw table gets values drawn from its
//! declared schema. The same seed always writes byte-identical files.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use mesh_domain::{ColumnType, CsvOptions, Domain, Project, RawFormat, Table, Transform};
use serde::Serialize;

use crate::layout::{Layout, Storage};
use futures::{StreamExt, TryStreamExt};
use mesh_iceberg::ObjectStores;
use object_store::ObjectStoreExt;

#[derive(Debug, Clone)]
pub struct SampleOptions {
    /// Rows of each raw table; of the example tables, only sales events get this many:
    /// legacy orders get a tenth, customers a twentieth (their profiles need fewer rows).
    pub rows: u64,
    pub seed: u64,
    /// First day of generated events.
    pub start: NaiveDate,
    pub days: u32,
    /// Written as `part-{part:05}` files. A landing process writes new data to new files (a
    /// landed file is complete, and incremental jobs refuse one that changes): a test that lands
    /// a second, different sample gives it another part number.
    pub part: u32,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            rows: 1_000_000,
            seed: 42,
            start: NaiveDate::from_ymd_opt(2026, 11, 1).expect("valid date"),
            days: 27,
            part: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("cannot write sample data to `{path}`: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("sample data is generated for the local lake only (ENV=local)")]
    NotLocal,
    #[error("cannot upload sample data to `{location}`: {source}\n  help: does the bucket exist, and may these credentials write to it?")]
    Upload {
        location: String,
        #[source]
        source: crate::layout::StorageError,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct TableSample {
    pub project: String,
    pub table: String,
    pub rows: u64,
    /// Rows written on purpose as malformed (legacy orders), included in `rows`.
    pub dirty_rows: u64,
    pub files: usize,
    pub bytes: u64,
    /// Where the files are: a local folder or an `s3://` prefix.
    pub location: String,
}

/// SplitMix64: tiny, fast, and stable forever (unlike a library RNG whose stream may change).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as i64 - 1) as usize]
    }
}

/// One generated value.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Null,
    Str(String),
    Int(i64),
    /// Unscaled value and scale: `Dec(1234, 2)` is 12.34.
    Dec(i64, u8),
    Float(f64),
    Bool(bool),
    Date(NaiveDate),
    Ts(NaiveDateTime),
}

impl V {
    fn text(&self) -> Option<String> {
        let mut out = String::new();
        self.write_text(&mut out).then_some(out)
    }

    /// Appends the value's text to `out` (false for NULL, which appends nothing). Appending,
    /// not returning a `String`, keeps sample-data from allocating per value.
    fn write_text(&self, out: &mut String) -> bool {
        use std::fmt::Write;
        // Writing into a String cannot fail.
        let _ = match self {
            V::Null => return false,
            V::Str(s) => {
                out.push_str(s);
                Ok(())
            }
            V::Int(i) => write!(out, "{i}"),
            V::Dec(v, s) => {
                let scale = 10i64.pow(u32::from(*s));
                let sign = if *v < 0 { "-" } else { "" };
                if *s == 0 {
                    write!(out, "{v}")
                } else {
                    write!(
                        out,
                        "{sign}{}.{:0width$}",
                        v.abs() / scale,
                        v.abs() % scale,
                        width = *s as usize
                    )
                }
            }
            V::Float(f) => write!(out, "{f}"),
            V::Bool(b) => write!(out, "{b}"),
            // Hand-formatted: chrono's format strings are interpreted per call, and this runs per row.
            V::Date(d) => write!(out, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
            V::Ts(t) => write!(
                out,
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
        };
        true
    }

    fn json(&self) -> serde_json::Value {
        match self {
            V::Null => serde_json::Value::Null,
            V::Int(i) => (*i).into(),
            V::Float(f) => serde_json::json!(f),
            V::Bool(b) => (*b).into(),
            other => other
                .text()
                .map(serde_json::Value::String)
                .unwrap_or(serde_json::Value::Null),
        }
    }
}

/// A row in table-column order, or a literal malformed line (CSV/JSON) to test bad-row handling.
pub enum Row {
    Values(Vec<V>),
    Malformed { line: String, partition: Vec<V> },
}

/// Writes rows of one table as Hive-partitioned files in its raw format.
struct TableWriter<'a> {
    table: &'a Table,
    dir: PathBuf,
    part: u32,
    /// Indices of partition columns (Hive folders), in partition order.
    part_cols: Vec<usize>,
    open: BTreeMap<String, BufWriter<File>>,
    bytes: u64,
    json: bool,
    csv: CsvOptions,
    delimiter: String,
}

impl<'a> TableWriter<'a> {
    fn new(table: &'a Table, dir: PathBuf) -> TableWriter<'a> {
        let part_cols = table
            .partition_by
            .iter()
            .filter(|p| p.transform == Transform::Identity)
            .filter_map(|p| table.columns.iter().position(|c| c.name == p.column))
            .collect();
        let (json, csv) = match table.hive().map(|h| &h.file_format) {
            Some(RawFormat::Json) => (true, CsvOptions::default()),
            Some(RawFormat::Csv(o)) => (false, o.clone()),
            _ => (false, CsvOptions::default()),
        };
        let delimiter = csv.delimiter.to_string();
        TableWriter {
            table,
            dir,
            part: 0,
            part_cols,
            open: BTreeMap::new(),
            bytes: 0,
            json,
            csv,
            delimiter,
        }
    }

    fn ext(&self) -> &'static str {
        if self.json {
            "json"
        } else {
            "csv"
        }
    }

    fn writer(&mut self, partition: &[V]) -> Result<&mut BufWriter<File>, SampleError> {
        let folder: Vec<String> = self
            .part_cols
            .iter()
            .zip(partition)
            .map(|(i, v)| {
                format!(
                    "{}={}",
                    self.table.columns[*i].name,
                    v.text().unwrap_or_else(|| "__HIVE_DEFAULT_PARTITION__".into())
                )
            })
            .collect();
        let key = folder.join("/");
        if !self.open.contains_key(&key) {
            let dir = self.dir.join(&key);
            std::fs::create_dir_all(&dir).map_err(|source| SampleError::Io {
                path: dir.clone(),
                source,
            })?;
            let path = dir.join(format!("part-{:05}.{}", self.part, self.ext()));
            let file = File::create(&path).map_err(|source| SampleError::Io {
                path: path.clone(),
                source,
            })?;
            let mut w = BufWriter::with_capacity(1 << 20, file);
            if !self.json && self.csv.header {
                let header: Vec<&str> = self
                    .table
                    .columns
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !self.part_cols.contains(i))
                    .map(|(_, c)| c.name.as_str())
                    .collect();
                let line = header.join(&self.delimiter) + "\n";
                w.write_all(line.as_bytes()).map_err(|source| SampleError::Io {
                    path: path.clone(),
                    source,
                })?;
            }
            self.open.insert(key.clone(), w);
        }
        Ok(self.open.get_mut(&key).expect("inserted above"))
    }

    fn write(&mut self, row: Row) -> Result<(), SampleError> {
        let (line, partition) = match row {
            Row::Malformed { line, partition } => (line + "\n", partition),
            Row::Values(values) => {
                let partition: Vec<V> = self.part_cols.iter().map(|i| values[*i].clone()).collect();
                let data = values
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| !self.part_cols.contains(i));
                let line = if self.json {
                    let obj: serde_json::Map<String, serde_json::Value> = data
                        .map(|(i, v)| (self.table.columns[i].name.to_string(), v.json()))
                        .collect();
                    serde_json::Value::Object(obj).to_string() + "\n"
                } else {
                    let mut line = String::with_capacity(128);
                    for (k, (_, v)) in data.enumerate() {
                        if k > 0 {
                            line.push_str(&self.delimiter);
                        }
                        push_csv_field(&mut line, &v, &self.csv);
                    }
                    line.push('\n');
                    line
                };
                (line, partition)
            }
        };
        self.bytes += line.len() as u64;
        let written = self.writer(&partition)?.write_all(line.as_bytes());
        written.map_err(|source| SampleError::Io {
            path: self.dir.clone(),
            source,
        })
    }

    fn finish(mut self) -> Result<(usize, u64), SampleError> {
        let files = self.open.len();
        for (_, mut w) in std::mem::take(&mut self.open) {
            w.flush().map_err(|source| SampleError::Io {
                path: self.dir.clone(),
                source,
            })?;
        }
        Ok((files, self.bytes))
    }
}

/// Makes `dir` hold exactly the files of `staging` (which is removed): files with the same
/// bytes stay untouched, others are moved in, files no longer generated are removed.
fn replace_changed(staging: &Path, dir: &Path) -> Result<(), SampleError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SampleError::Io { path, source }
    };
    let mut generated = std::collections::BTreeSet::new();
    for new in files_below(staging).map_err(io(staging))? {
        let rel = new.strip_prefix(staging).expect("below staging").to_path_buf();
        let old = dir.join(&rel);
        let same = std::fs::metadata(&old)
            .is_ok_and(|m| m.len() == std::fs::metadata(&new).map(|n| n.len()).unwrap_or(u64::MAX))
            && std::fs::read(&old).ok() == std::fs::read(&new).ok();
        if !same {
            std::fs::create_dir_all(old.parent().expect("a file has a folder")).map_err(io(&old))?;
            std::fs::rename(&new, &old).map_err(io(&old))?;
        }
        generated.insert(rel);
    }
    if dir.exists() {
        for old in files_below(dir).map_err(io(dir))? {
            if !generated.contains(old.strip_prefix(dir).expect("below dir")) {
                std::fs::remove_file(&old).map_err(io(&old))?;
            }
        }
    }
    std::fs::remove_dir_all(staging).map_err(io(staging))
}

fn files_below(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    Ok(out)
}

/// Appends one CSV field to `line`, quoted when it holds the delimiter, the quote or a newline.
fn push_csv_field(line: &mut String, v: &V, opts: &CsvOptions) {
    let start = line.len();
    if !v.write_text(line) {
        line.push_str(&opts.null_value);
        return;
    }
    let text = &line[start..];
    if text.contains(opts.delimiter) || text.contains(opts.quote) || text.contains('\n') {
        let q = opts.quote.to_string();
        let quoted = format!("{q}{}{q}", text.replace(&q, &format!("{q}{q}")));
        line.truncate(start);
        line.push_str(&quoted);
    }
}

/// Writes sample data for every raw table of the domain into the local lake. Existing sample
/// files of those tables are replaced, so a re-run gives the same lake.
pub fn generate(domain: &Domain, layout: &Layout, opts: &SampleOptions) -> Result<Vec<TableSample>, SampleError> {
    let mut out = Vec::new();
    for project in &domain.projects {
        for table in project.tables.iter().filter(|t| t.hive().is_some()) {
            out.push(generate_table(project, table, layout, opts)?);
        }
    }
    Ok(out)
}

fn generate_table(
    project: &Project,
    table: &Table,
    layout: &Layout,
    opts: &SampleOptions,
) -> Result<TableSample, SampleError> {
    let dir = layout
        .path(&layout.table_location(project, table))
        .ok_or(SampleError::NotLocal)?;
    // Generated beside the table's folder, then moved in file by file: a file whose bytes did
    // not change is left as it was landed (same modification time), so regenerating the same
    // sample is not a rewrite that incremental jobs refuse, nor new input for them.
    let staging = dir.with_file_name(format!(
        ".{}.sample",
        dir.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
    ));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|source| SampleError::Io {
            path: staging.clone(),
            source,
        })?;
    }
    // Each table gets its own stream so adding a table never changes another table's data.
    let mut rng = Rng::new(opts.seed ^ fnv(&format!("{}.{}", project.name, table.name)));
    let mut w = TableWriter::new(table, staging.clone());
    w.part = opts.part;
    let (rows, dirty) = match table.name.as_str() {
        "sales_events" => sales_events(table, opts, &mut rng, &mut w)?,
        "customer_events" => customer_events(table, opts, &mut rng, &mut w)?,
        "legacy_orders" => legacy_orders(table, opts, &mut rng, &mut w)?,
        _ => generic(table, opts, &mut rng, &mut w)?,
    };
    let (files, bytes) = w.finish()?;
    replace_changed(&staging, &dir)?;
    Ok(TableSample {
        project: project.name.to_string(),
        table: table.name.to_string(),
        rows,
        dirty_rows: dirty,
        files,
        bytes,
        location: dir.display().to_string(),
    })
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Builds a row in the table's column order from named values; missing columns are NULL.
/// The values are moved out (NULL is left behind), not cloned: this runs per generated row.
fn row(table: &Table, values: &mut [(&str, V)]) -> Row {
    Row::Values(
        table
            .columns
            .iter()
            .map(|c| {
                values
                    .iter_mut()
                    .find(|(n, _)| *n == c.name.as_str())
                    .map(|(_, v)| std::mem::replace(v, V::Null))
                    .unwrap_or(V::Null)
            })
            .collect(),
    )
}

fn ts(start: NaiveDate, day: u32, second_of_day: i64) -> NaiveDateTime {
    start.and_hms_opt(0, 0, 0).expect("midnight") + Duration::days(i64::from(day)) + Duration::seconds(second_of_day)
}

fn sales_events(
    table: &Table,
    o: &SampleOptions,
    rng: &mut Rng,
    w: &mut TableWriter<'_>,
) -> Result<(u64, u64), SampleError> {
    let per_day = o.rows / u64::from(o.days.max(1));
    let mut id = 0u64;
    for day in 0..o.days {
        let n = if day + 1 == o.days {
            o.rows - per_day * u64::from(o.days - 1)
        } else {
            per_day
        };
        let date = o.start + Duration::days(i64::from(day));
        for _ in 0..n {
            id += 1;
            let t = ts(o.start, day, rng.range(0, 86_399));
            let currency = if rng.chance(0.01) {
                V::Null
            } else {
                V::Str("EUR".into())
            };
            w.write(row(
                table,
                &mut [
                    ("event_id", V::Str(format!("S{id:010}"))),
                    ("event_ts", V::Ts(t)),
                    ("store_id", V::Int(rng.range(1, 50))),
                    ("product_id", V::Str(format!("P{:04}", rng.range(1, 500)))),
                    ("quantity", V::Int(rng.range(1, 5))),
                    ("unit_price", V::Dec(rng.range(50, 20_000), 2)),
                    ("currency", currency),
                    ("event_date", V::Date(date)),
                ],
            ))?;
        }
    }
    Ok((o.rows, 0))
}

const COUNTRIES: [&str; 8] = ["fr", "de", "es", "it", "nl", "be", "pt", "ie"];
const FIRST: [&str; 8] = ["Ada", "Linus", "Grace", "Alan", "Margaret", "Ken", "Barbara", "Dennis"];
const LAST: [&str; 8] = [
    "Lovelace", "Torvalds", "Hopper", "Turing", "Hamilton", "Thompson", "Liskov", "Ritchie",
];

fn customer_events(
    table: &Table,
    o: &SampleOptions,
    rng: &mut Rng,
    w: &mut TableWriter<'_>,
) -> Result<(u64, u64), SampleError> {
    let customers = (o.rows / 20).max(10);
    let mut rows = 0u64;
    let mut event = 0u64;
    let span = i64::from(o.days.max(1)) * 86_400;
    for id in 1..=customers as i64 {
        // Distinct, increasing timestamps per customer so "latest" is always well defined.
        let mut t = rng.range(0, span / 2);
        let updates = rng.range(0, 3);
        let deleted = rng.chance(0.05);
        for k in 0..=updates + i64::from(deleted) {
            event += 1;
            let op = if k == 0 {
                "I"
            } else if deleted && k == updates + 1 {
                "D"
            } else {
                "U"
            };
            let when = ts(o.start, 0, t);
            let mut values = if op == "D" {
                vec![
                    ("event_id", V::Str(format!("C{event:010}"))),
                    ("customer_id", V::Int(id)),
                    ("op", V::Str(op.into())),
                    ("event_ts", V::Ts(when)),
                ]
            } else {
                let first = rng.pick(&FIRST);
                let last = rng.pick(&LAST);
                let segment = if rng.chance(0.005) {
                    "vip".to_string()
                } else {
                    rng.pick(&["consumer", "smb", "enterprise"]).to_string()
                };
                let email = format!("  {}.{}{}@Example.com ", first, last, id);
                vec![
                    ("event_id", V::Str(format!("C{event:010}"))),
                    ("customer_id", V::Int(id)),
                    ("op", V::Str(op.into())),
                    ("event_ts", V::Ts(when)),
                    ("email", V::Str(email)),
                    ("full_name", V::Str(format!("{first} {last}"))),
                    ("country", V::Str(rng.pick(&COUNTRIES).to_string())),
                    ("segment", V::Str(segment)),
                ]
            };
            w.write(row(table, &mut values))?;
            rows += 1;
            t += rng.range(60, 86_400);
        }
    }
    Ok((rows, 0))
}

fn legacy_orders(
    table: &Table,
    o: &SampleOptions,
    rng: &mut Rng,
    w: &mut TableWriter<'_>,
) -> Result<(u64, u64), SampleError> {
    let orders = (o.rows / 10).max(10);
    let span = i64::from(o.days.max(1)) * 86_400 - 1;
    let statuses = ["new", " Shipped", "COMPLETED ", "completed", "cancelled", "Completed"];
    let mut rows = 0u64;
    let mut dirty = 0u64;
    for id in 1..=orders as i64 {
        if rng.chance(0.005) {
            // Malformed on purpose: each kind of error a legacy export produces.
            let line = match rng.range(0, 3) {
                0 => format!("ABC{id};{};2026-11-03 10:00:00;12.50;new;fr", id),
                1 => format!("{id};{};2026-13-45 99:00:00;12.50;new;fr", id),
                2 => format!("{id};{};2026-11-03 10:00:00;12,50€;new;fr", id),
                _ => format!("{id};{};2026-11-03 10:00:00", id),
            };
            w.write(Row::Malformed {
                line,
                partition: vec![],
            })?;
            rows += 1;
            dirty += 1;
            continue;
        }
        let exports = if rng.chance(0.03) { 2 } else { 1 };
        let mut t = rng.range(0, span - 86_400);
        for _ in 0..exports {
            let amount = if rng.chance(0.02) {
                V::Null
            } else if rng.chance(0.01) {
                V::Dec(-rng.range(100, 10_000), 2)
            } else {
                V::Dec(rng.range(100, 500_000), 2)
            };
            let status = if rng.chance(0.01) {
                "UNKNOWN".to_string()
            } else {
                rng.pick(&statuses).to_string()
            };
            let country = if rng.chance(0.01) {
                V::Str("  ".into())
            } else {
                V::Str(format!(" {}", rng.pick(&COUNTRIES)))
            };
            let customer = if rng.chance(0.02) {
                V::Null
            } else {
                V::Int(rng.range(1, (o.rows / 20).max(10) as i64))
            };
            w.write(row(
                table,
                &mut [
                    ("order_id", V::Int(id)),
                    ("customer_id", customer),
                    ("order_ts", V::Ts(ts(o.start, 0, t))),
                    ("amount", amount),
                    ("status", V::Str(status)),
                    ("country", country),
                ],
            ))?;
            rows += 1;
            t += rng.range(60, 86_400);
        }
    }
    Ok((rows, dirty))
}

fn generic(
    table: &Table,
    o: &SampleOptions,
    rng: &mut Rng,
    w: &mut TableWriter<'_>,
) -> Result<(u64, u64), SampleError> {
    // The number asked for: a domain of its own tables gets `--rows N` rows per table.
    let n = o.rows;
    let span = i64::from(o.days.max(1)) * 86_400 - 1;
    for i in 0..n {
        let values = table
            .columns
            .iter()
            .map(|c| {
                if c.nullable && rng.chance(0.05) {
                    return V::Null;
                }
                match c.data_type {
                    ColumnType::Boolean => V::Bool(rng.chance(0.5)),
                    ColumnType::Int | ColumnType::Long => V::Int(rng.range(1, 1000)),
                    ColumnType::Float | ColumnType::Double => V::Float(rng.range(0, 100_000) as f64 / 100.0),
                    ColumnType::Decimal { scale, .. } => V::Dec(rng.range(0, 100_000), scale),
                    ColumnType::Date => V::Date(o.start + Duration::days(rng.range(0, i64::from(o.days.max(1)) - 1))),
                    ColumnType::Timestamp | ColumnType::Timestamptz => V::Ts(ts(o.start, 0, rng.range(0, span))),
                    ColumnType::String | ColumnType::Binary => V::Str(format!("{}_{i}", c.name)),
                }
            })
            .collect();
        w.write(Row::Values(values))?;
    }
    Ok((n, 0))
}

/// Writes sample data to the layout's storage: straight into the local lake, or (S3) into a
/// temporary folder that is then uploaded, replacing every object the raw tables held.
pub async fn generate_into(
    domain: &Domain,
    layout: &Layout,
    stores: &ObjectStores,
    opts: &SampleOptions,
) -> Result<Vec<TableSample>, SampleError> {
    if let Storage::Local { .. } = layout.storage {
        return generate(domain, layout, opts);
    }
    let staging = tempfile::tempdir().map_err(|source| SampleError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    // Same naming (so the same bucket names), folders instead of buckets.
    let local = Layout::local(layout.naming.clone(), staging.path());
    let mut tables = generate(domain, &local, opts)?;
    for sample in &mut tables {
        let (project, table) = domain
            .tables()
            .find(|(p, t)| p.name.as_str() == sample.project && t.name.as_str() == sample.table)
            .expect("generated from this domain");
        let from = local.path(&local.table_location(project, table)).expect("local layout");
        let to = layout
            .url(&layout.table_location(project, table))
            .trim_end_matches('/')
            .to_string();
        upload_folder(stores, &from, &to).await?;
        sample.location = to;
    }
    Ok(tables)
}

/// Replaces everything under `to` by the files of folder `from` (same relative keys).
async fn upload_folder(stores: &ObjectStores, from: &Path, to: &str) -> Result<(), SampleError> {
    let fail = |e: crate::layout::StorageError| SampleError::Upload {
        location: to.to_string(),
        source: e,
    };
    let target = stores.locate(to).map_err(|e| fail(e.into()))?;
    let old = target.store.list(Some(&target.path)).map_ok(|m| m.location).boxed();
    target
        .store
        .delete_stream(old)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| fail(e.into()))?;
    let mut files = Vec::new();
    collect_files(from, &mut files).map_err(|source| SampleError::Io {
        path: from.to_path_buf(),
        source,
    })?;
    futures::stream::iter(files)
        .map(|file| {
            let target = &target;
            async move {
                let rel = file.strip_prefix(from).expect("listed under it");
                let mut key = target.path.clone();
                for part in rel.components() {
                    key = key.join(part.as_os_str().to_string_lossy().as_ref());
                }
                let data = tokio::fs::read(&file).await.map_err(|source| SampleError::Io {
                    path: file.clone(),
                    source,
                })?;
                target
                    .store
                    .put(&key, bytes::Bytes::from(data).into())
                    .await
                    .map_err(|e| SampleError::Upload {
                        location: target.url(&key),
                        source: e.into(),
                    })
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            collect_files(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Total size of a folder, for summaries.
pub fn folder_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                folder_bytes(&p)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_stable() {
        let mut r = Rng::new(42);
        let first: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        let mut again = Rng::new(42);
        assert_eq!(first, (0..3).map(|_| again.next_u64()).collect::<Vec<_>>());
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            let x = r.range(3, 7);
            assert!((3..=7).contains(&x));
        }
    }

    #[test]
    fn decimals_and_csv_quoting() {
        assert_eq!(V::Dec(1234, 2).text().unwrap(), "12.34");
        assert_eq!(V::Dec(-5, 2).text().unwrap(), "-0.05");
        let o = CsvOptions::default();
        let csv_field = |v: &V, o: &CsvOptions| {
            let mut line = String::from("x,");
            push_csv_field(&mut line, v, o);
            line.split_off(2)
        };
        assert_eq!(csv_field(&V::Str("a,b".into()), &o), "\"a,b\"");
        assert_eq!(csv_field(&V::Str("say \"hi\"".into()), &o), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field(&V::Null, &o), "");
    }
}
