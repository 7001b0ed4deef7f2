//! The checked domain model. Values of these types only come out of validation
//! (`crate::load`), so code that receives them can trust every invariant listed here.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::env::Env;
use crate::ident::{DomainAbbr, Name, ProjectSlug};

/// A whole domain repository: `domain.json` plus every project manifest.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Domain {
    pub name: String,
    pub abbr: DomainAbbr,
    pub region: String,
    pub versions: Versions,
    /// AWS account id per cloud environment, when declared.
    pub accounts: BTreeMap<Env, String>,
    /// The GitHub repository of the domain, `owner/name`: the only one whose workflows may
    /// assume the deploy and plan roles.
    pub github_repository: Option<String>,
    pub projects: Vec<Project>,
}

impl Domain {
    pub fn project(&self, name: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.name.as_str() == name)
    }

    /// All tables of the domain, each with its project.
    pub fn tables(&self) -> impl Iterator<Item = (&Project, &Table)> {
        self.projects.iter().flat_map(|p| p.tables.iter().map(move |t| (p, t)))
    }
}

/// Tool versions the domain is built and deployed with.
#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    /// AWS Glue version of the jobs, e.g. `5.0`.
    pub glue: String,
    /// Python of the Glue runner; must match the Glue version.
    pub python: String,
    /// `required_version` of the generated Terraform.
    pub terraform: String,
    /// Rust toolchain used by CI.
    pub rust: String,
}

#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Project {
    pub name: Name,
    pub slug: ProjectSlug,
    pub owner: String,
    pub contact: Option<String>,
    pub classification: Classification,
    pub description: Option<String>,
    /// The project folder, relative to the domain root (`projects/sales`).
    pub dir: PathBuf,
    pub tables: Vec<Table>,
    pub jobs: Vec<Job>,
    pub pipelines: Vec<Pipeline>,
    /// The slug the project had before (`moved_from_slug`): tables without a `moved_from` of
    /// their own move from the same layer and name under it.
    pub moved_from_slug: Option<ProjectSlug>,
    /// Tables deliberately deleted (`retired = ["layer.table"]`), under this project's slug:
    /// meshkit drops their catalog entries and files; nothing else may declare them.
    pub retired: Vec<TableRef>,
    /// Tables published to other domains (`[[products]]`, [`crate::product`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<crate::product::Product>,
    /// Products of other domains its jobs read (`[[consumes]]`, [`crate::consume`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consumes: Vec<crate::consume::Consumed>,
}

impl Project {
    /// Where table `t` was before, if it moved: its own `moved_from`, else the same layer and
    /// name under the project's previous slug.
    pub fn origin(&self, t: &Table) -> Option<TablePlace> {
        t.moved_from.clone().or_else(|| {
            self.moved_from_slug.as_ref().map(|slug| TablePlace {
                slug: slug.clone(),
                layer: t.layer,
                name: t.name.clone(),
            })
        })
    }
    pub fn table(&self, r: &TableRef) -> Option<&Table> {
        self.tables.iter().find(|t| t.layer == r.layer && t.name == r.table)
    }
    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name.as_str() == name)
    }
    pub fn pipeline(&self, name: &str) -> Option<&Pipeline> {
        self.pipelines.iter().find(|p| p.name.as_str() == name)
    }
    /// The tables pipeline `optimize` steps maintain, each once, in manifest order.
    pub fn optimized_tables(&self) -> Vec<&TableRef> {
        let mut out: Vec<&TableRef> = Vec::new();
        for s in self.pipelines.iter().flat_map(|p| &p.steps) {
            if let StepAction::Optimize(t) = &s.action {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        out
    }
    /// How many `optimize` steps one run of a pipeline can have in flight at once, at most:
    /// the maintenance job must allow that many concurrent runs.
    pub fn optimize_steps(&self) -> usize {
        self.pipelines
            .iter()
            .map(|p| {
                p.steps
                    .iter()
                    .filter(|s| matches!(s.action, StepAction::Optimize(_)))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    Public,
    Internal,
    Confidential,
    Restricted,
}

impl Classification {
    pub const ALL: [Classification; 4] = [
        Classification::Public,
        Classification::Internal,
        Classification::Confidential,
        Classification::Restricted,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Public => "public",
            Classification::Internal => "internal",
            Classification::Confidential => "confidential",
            Classification::Restricted => "restricted",
        }
    }
}

/// The three data layers. Raw holds landed files as Hive tables; the others are Iceberg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Raw,
    Refined,
    Curated,
}

impl Layer {
    pub const ALL: [Layer; 3] = [Layer::Raw, Layer::Refined, Layer::Curated];
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Raw => "raw",
            Layer::Refined => "refined",
            Layer::Curated => "curated",
        }
    }
    pub fn parse(s: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| l.as_str() == s)
    }
    pub fn is_iceberg(self) -> bool {
        self != Layer::Raw
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reference to a table of the same project: `layer.table`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TableRef {
    pub layer: Layer,
    pub table: Name,
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.layer, self.table)
    }
}

#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Table {
    pub name: Name,
    pub layer: Layer,
    pub description: Option<String>,
    pub columns: Vec<Column>,
    /// Raw tables: identity only (Hive partition folders). Iceberg tables: any transform.
    pub partition_by: Vec<PartitionField>,
    pub sort_order: Vec<SortField>,
    /// Identifier (merge) keys; always non-nullable columns.
    pub identifier: Vec<Name>,
    pub storage: Storage,
    /// Where the table was before (`moved_from`): its data moves here.
    pub moved_from: Option<TablePlace>,
}

/// A table's place in the domain: the project slug its data lives under, its layer and name.
/// A table keeps its data across a change of these only through a declared move.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TablePlace {
    pub slug: ProjectSlug,
    pub layer: Layer,
    pub name: Name,
}

impl fmt::Display for TablePlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}.{}", self.slug, self.layer, self.name)
    }
}

impl Table {
    pub fn reference(&self) -> TableRef {
        TableRef {
            layer: self.layer,
            table: self.name.clone(),
        }
    }
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name.as_str() == name)
    }
    pub fn iceberg(&self) -> Option<&IcebergOptions> {
        match &self.storage {
            Storage::Iceberg(o) => Some(o),
            Storage::Hive(_) => None,
        }
    }
    pub fn hive(&self) -> Option<&HiveOptions> {
        match &self.storage {
            Storage::Hive(o) => Some(o),
            Storage::Iceberg(_) => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum Storage {
    Hive(HiveOptions),
    Iceberg(IcebergOptions),
}

#[derive(Debug, Clone, Serialize)]
pub struct HiveOptions {
    pub file_format: RawFormat,
    pub bad_rows: BadRows,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RawFormat {
    Csv(CsvOptions),
    Json,
    Parquet,
}

impl RawFormat {
    pub fn as_str(&self) -> &'static str {
        match self {
            RawFormat::Csv(_) => "csv",
            RawFormat::Json => "json",
            RawFormat::Parquet => "parquet",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CsvOptions {
    pub header: bool,
    pub delimiter: char,
    pub quote: char,
    pub escape: Option<char>,
    /// Text that stands for NULL (empty by default).
    pub null_value: String,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            header: true,
            delimiter: ',',
            quote: '"',
            escape: None,
            null_value: String::new(),
        }
    }
}

/// What a raw read does with rows that do not match the declared schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BadRows {
    /// Stop and name the file, line and column.
    Fail,
    /// Route bad rows, with the reason, to a `<table>_rejected` table and go on.
    Quarantine,
}

/// Iceberg's default target data file size (`write.target-file-size-bytes`), also AWS's.
pub const DEFAULT_TARGET_FILE_SIZE_MB: u32 = 512;

/// Megabytes (as the manifest gives sizes) to the bytes Iceberg properties and writers take.
pub fn megabytes(mb: u32) -> u64 {
    u64::from(mb) * 1024 * 1024
}

#[derive(Debug, Clone, Serialize)]
pub struct IcebergOptions {
    pub target_file_size_mb: u32,
    /// Whether writes may add new nullable columns and widen types.
    pub schema_evolution: bool,
    pub optimizers: Optimizers,
    /// Columns deliberately dropped (`dropped_columns`): a table that still has one drops it
    /// (metadata only) on its next write, on both engines, without `--allow-destructive`.
    pub dropped_columns: Vec<Name>,
}

impl IcebergOptions {
    /// `write.target-file-size-bytes` of the table.
    pub fn target_file_size_bytes(&self) -> u64 {
        megabytes(self.target_file_size_mb)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Column {
    pub name: Name,
    pub data_type: ColumnType,
    pub nullable: bool,
    pub comment: Option<String>,
    /// The name this column had before (`renamed_from = "old"`): an existing table renames
    /// that column (same Iceberg field id, its values kept) instead of adding a new one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<Name>,
}

/// Column types, as Iceberg primitive types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Decimal {
        precision: u8,
        scale: u8,
    },
    Date,
    /// Timestamp without time zone (microseconds).
    Timestamp,
    /// Timestamp with time zone, stored as UTC (microseconds).
    Timestamptz,
    String,
    Binary,
}

impl ColumnType {
    /// Accepts Iceberg names and the usual Spark/Hive aliases (`bigint`, `integer`, `bool`).
    pub fn parse(s: &str) -> Option<ColumnType> {
        let s = s.trim().to_ascii_lowercase();
        Some(match s.as_str() {
            "boolean" | "bool" => ColumnType::Boolean,
            "int" | "integer" | "int32" => ColumnType::Int,
            "long" | "bigint" | "int64" => ColumnType::Long,
            "float" | "real" | "float32" => ColumnType::Float,
            "double" | "float64" => ColumnType::Double,
            "date" => ColumnType::Date,
            "timestamp" | "timestamp_ntz" => ColumnType::Timestamp,
            "timestamptz" | "timestamp_ltz" => ColumnType::Timestamptz,
            "string" | "varchar" | "text" => ColumnType::String,
            "binary" | "bytes" => ColumnType::Binary,
            other => {
                let inner = other.strip_prefix("decimal(")?.strip_suffix(')')?;
                let (p, sc) = inner.split_once(',')?;
                let precision: u8 = p.trim().parse().ok()?;
                let scale: u8 = sc.trim().parse().ok()?;
                if precision == 0 || precision > 38 || scale > precision {
                    return None;
                }
                ColumnType::Decimal { precision, scale }
            }
        })
    }

    /// The Hive/Glue catalog type name.
    pub fn hive_name(self) -> String {
        match self {
            ColumnType::Boolean => "boolean".into(),
            ColumnType::Int => "int".into(),
            ColumnType::Long => "bigint".into(),
            ColumnType::Float => "float".into(),
            ColumnType::Double => "double".into(),
            ColumnType::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
            ColumnType::Date => "date".into(),
            ColumnType::Timestamp | ColumnType::Timestamptz => "timestamp".into(),
            ColumnType::String => "string".into(),
            ColumnType::Binary => "binary".into(),
        }
    }

    pub fn is_temporal(self) -> bool {
        matches!(self, ColumnType::Date | ColumnType::Timestamp | ColumnType::Timestamptz)
    }
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            ColumnType::Int | ColumnType::Long | ColumnType::Float | ColumnType::Double | ColumnType::Decimal { .. }
        )
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Boolean => f.write_str("boolean"),
            ColumnType::Int => f.write_str("int"),
            ColumnType::Long => f.write_str("long"),
            ColumnType::Float => f.write_str("float"),
            ColumnType::Double => f.write_str("double"),
            ColumnType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            ColumnType::Date => f.write_str("date"),
            ColumnType::Timestamp => f.write_str("timestamp"),
            ColumnType::Timestamptz => f.write_str("timestamptz"),
            ColumnType::String => f.write_str("string"),
            ColumnType::Binary => f.write_str("binary"),
        }
    }
}

/// Iceberg partition transforms (identity is the only one a Hive table can use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "transform", content = "width", rename_all = "snake_case")]
pub enum Transform {
    Identity,
    Year,
    Month,
    Day,
    Hour,
    Bucket(u32),
    Truncate(u32),
}

impl Transform {
    /// Whether a column of type `t` can be partitioned by this transform (Iceberg spec table).
    pub fn accepts(self, t: ColumnType) -> bool {
        use ColumnType as C;
        match self {
            Transform::Identity => !matches!(t, C::Float | C::Double),
            Transform::Year | Transform::Month | Transform::Day => t.is_temporal(),
            Transform::Hour => matches!(t, C::Timestamp | C::Timestamptz),
            Transform::Bucket(_) => {
                matches!(
                    t,
                    C::Int
                        | C::Long
                        | C::Decimal { .. }
                        | C::Date
                        | C::Timestamp
                        | C::Timestamptz
                        | C::String
                        | C::Binary
                )
            }
            Transform::Truncate(_) => matches!(t, C::Int | C::Long | C::Decimal { .. } | C::String | C::Binary),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionField {
    pub column: Name,
    #[serde(flatten)]
    pub transform: Transform,
}

impl PartitionField {
    /// Parses `col`, `day(col)`, `days(col)`, `bucket(16, col)`, `truncate(4, col)`.
    pub fn parse(s: &str) -> Result<PartitionField, String> {
        let s = s.trim();
        let Some(open) = s.find('(') else {
            let column = Name::parse(s).map_err(|e| e.to_string())?;
            return Ok(PartitionField {
                column,
                transform: Transform::Identity,
            });
        };
        let func = s[..open].trim().to_ascii_lowercase();
        let args = s[open + 1..]
            .strip_suffix(')')
            .ok_or_else(|| format!("`{s}` has no closing parenthesis"))?;
        let args: Vec<&str> = args.split(',').map(str::trim).collect();
        let width = |args: &[&str]| -> Result<u32, String> {
            args[0]
                .parse::<u32>()
                .ok()
                .filter(|w| *w > 0)
                .ok_or_else(|| format!("`{s}`: the width `{}` must be a positive integer", args[0]))
        };
        let (transform, col) = match (func.as_str(), args.len()) {
            ("identity", 1) => (Transform::Identity, args[0]),
            ("year" | "years", 1) => (Transform::Year, args[0]),
            ("month" | "months", 1) => (Transform::Month, args[0]),
            ("day" | "days" | "date", 1) => (Transform::Day, args[0]),
            ("hour" | "hours", 1) => (Transform::Hour, args[0]),
            ("bucket", 2) => (Transform::Bucket(width(&args)?), args[1]),
            ("truncate", 2) => (Transform::Truncate(width(&args)?), args[1]),
            _ => {
                return Err(format!(
                    "`{s}` is not a partition transform; use `col`, `year(col)`, `month(col)`, `day(col)`, `hour(col)`, `bucket(N, col)` or `truncate(N, col)`"
                ))
            }
        };
        let column = Name::parse(col).map_err(|e| e.to_string())?;
        Ok(PartitionField { column, transform })
    }
}

impl fmt::Display for PartitionField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.column;
        match self.transform {
            Transform::Identity => write!(f, "{c}"),
            Transform::Year => write!(f, "year({c})"),
            Transform::Month => write!(f, "month({c})"),
            Transform::Day => write!(f, "day({c})"),
            Transform::Hour => write!(f, "hour({c})"),
            Transform::Bucket(n) => write!(f, "bucket({n}, {c})"),
            Transform::Truncate(n) => write!(f, "truncate({n}, {c})"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SortField {
    pub column: Name,
    pub descending: bool,
    pub nulls_first: bool,
}

impl SortField {
    /// Parses `col`, `col desc`, `col asc nulls last`.
    pub fn parse(s: &str) -> Result<SortField, String> {
        let words: Vec<String> = s.split_whitespace().map(str::to_ascii_lowercase).collect();
        let Some((col, rest)) = words.split_first() else {
            return Err("an empty sort field; write `column [asc|desc] [nulls first|last]`".into());
        };
        let column = Name::parse(col).map_err(|e| e.to_string())?;
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        let (descending, rest) = match rest.as_slice() {
            ["desc", r @ ..] => (true, r),
            ["asc", r @ ..] => (false, r),
            r => (false, r),
        };
        // Iceberg's default: nulls first when ascending, last when descending.
        let nulls_first = match rest {
            [] => !descending,
            ["nulls", "first"] => true,
            ["nulls", "last"] => false,
            _ => {
                return Err(format!(
                    "`{s}` is not a sort field; write `column [asc|desc] [nulls first|last]`"
                ))
            }
        };
        Ok(SortField {
            column,
            descending,
            nulls_first,
        })
    }
}

impl fmt::Display for SortField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} nulls {}",
            self.column,
            if self.descending { "desc" } else { "asc" },
            if self.nulls_first { "first" } else { "last" }
        )
    }
}

/// Table maintenance, with the same settings locally and in the generated Glue optimizers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Optimizers {
    pub compaction: Option<Compaction>,
    pub retention: Option<Retention>,
    pub orphans: Option<OrphanCleanup>,
    /// How often Glue runs the optimizers (3 to 168 hours).
    pub run_rate_hours: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Compaction {
    pub target_file_size_mb: u32,
    /// Files smaller than this share of the target are compaction candidates.
    pub min_file_size_ratio: f64,
    /// A partition is compacted once it has at least this many candidates.
    pub min_input_files: u32,
    pub delete_file_threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retention {
    pub snapshot_retention_days: u32,
    pub retain_last: u32,
    pub clean_expired_files: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrphanCleanup {
    pub retention_days: u32,
}

// Defaults. Every one is AWS Glue's table-optimizer default too, except `min_input_files`:
// meshkit compacts from Iceberg's 5 files where Glue waits for 100 (see
// `Compaction::DEFAULT_MIN_INPUT_FILES`). README.md, "project.toml", states the same values.

impl Optimizers {
    /// Hours between optimizer runs: Glue's `runRateInHours` default.
    pub const DEFAULT_RUN_RATE_HOURS: u32 = 24;
}

impl Compaction {
    /// Files smaller than this share of the target are candidates: Iceberg's
    /// `min-file-size-bytes` default and Glue's (75%).
    pub const DEFAULT_MIN_FILE_SIZE_RATIO: f64 = 0.75;
    /// Candidates that make a partition worth compacting: Iceberg's `rewrite_data_files`
    /// default. Glue's compaction optimizer waits for [`Self::GLUE_MIN_INPUT_FILES`]; meshkit
    /// keeps Iceberg's because a pipeline `optimize` step runs right after each write, when a
    /// partition has a few new files, not a hundred.
    pub const DEFAULT_MIN_INPUT_FILES: u32 = 5;
    /// Deletes in a data file that make it a candidate: Iceberg's and Glue's default.
    pub const DEFAULT_DELETE_FILE_THRESHOLD: u32 = 1;
    /// Glue's compaction optimizer default for `minInputFiles`. Terraform's
    /// `aws_glue_catalog_table_optimizer` cannot set it, so the managed optimizer compacts with
    /// this value whatever the manifest says; `mesh render` warns when they differ.
    pub const GLUE_MIN_INPUT_FILES: u32 = 100;
    /// Glue's compaction optimizer default for `deleteFileThreshold` (not settable either).
    pub const GLUE_DELETE_FILE_THRESHOLD: u32 = 1;
}

impl Retention {
    /// Glue's `snapshotRetentionPeriodInDays` default.
    pub const DEFAULT_SNAPSHOT_RETENTION_DAYS: u32 = 5;
    /// Glue's `numberOfSnapshotsToRetain` default.
    pub const DEFAULT_RETAIN_LAST: u32 = 1;
    pub const DEFAULT_CLEAN_EXPIRED_FILES: bool = true;
}

impl OrphanCleanup {
    /// Glue's `orphanFileRetentionPeriodInDays` default.
    pub const DEFAULT_RETENTION_DAYS: u32 = 3;
}

impl Default for Compaction {
    fn default() -> Self {
        Compaction {
            target_file_size_mb: DEFAULT_TARGET_FILE_SIZE_MB,
            min_file_size_ratio: Self::DEFAULT_MIN_FILE_SIZE_RATIO,
            min_input_files: Self::DEFAULT_MIN_INPUT_FILES,
            delete_file_threshold: Self::DEFAULT_DELETE_FILE_THRESHOLD,
        }
    }
}
impl Default for Retention {
    fn default() -> Self {
        Retention {
            snapshot_retention_days: Self::DEFAULT_SNAPSHOT_RETENTION_DAYS,
            retain_last: Self::DEFAULT_RETAIN_LAST,
            clean_expired_files: Self::DEFAULT_CLEAN_EXPIRED_FILES,
        }
    }
}
impl Default for OrphanCleanup {
    fn default() -> Self {
        OrphanCleanup {
            retention_days: Self::DEFAULT_RETENTION_DAYS,
        }
    }
}

/// A SQL transform that reads tables of its project and writes one table.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Job {
    pub name: Name,
    pub description: Option<String>,
    /// The SQL file, relative to the domain root.
    pub sql: PathBuf,
    pub inputs: Vec<TableRef>,
    /// Inputs that are other domains' products (`f01.daily_sales`), declared in the project's
    /// `[[consumes]]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<crate::consume::ProductInput>,
    pub output: TableRef,
    pub mode: WriteMode,
    pub checks: Vec<Check>,
    /// Default values of run parameters (`${run_date}` in the SQL).
    pub params: BTreeMap<String, String>,
    /// Declared parameter types; a parameter not listed is a string.
    pub param_types: BTreeMap<String, crate::param::ParamType>,
    pub glue: GlueSizing,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental: Option<Incremental>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_range: Option<TimeRange>,
    /// What a run does when the job's fingerprint (what determines its output) differs from
    /// the one committed with its state; `None`: [`OnChange::DEFAULT`]. See [`Job::on_change`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_change: Option<OnChange>,
}

impl Job {
    /// Whether the job keeps state in its output table (incremental bookmarks or time-range
    /// intervals done): only then can its output be stale after a change of the job.
    pub fn is_stateful(&self) -> bool {
        self.incremental.is_some() || self.time_range.is_some()
    }
    /// The declared policy, else [`OnChange::DEFAULT`].
    pub fn on_change(&self) -> OnChange {
        self.on_change.unwrap_or(OnChange::DEFAULT)
    }
}

/// The policy of a stateful job whose definition changed since its state was committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnChange {
    /// Stop before anything runs (exit 2), naming the job and the fix.
    Fail,
    /// Keep what was computed; the new definition applies to new input and intervals only.
    ForwardOnly,
    /// Recompute the job from scratch: state reset, output replaced.
    FullRefresh,
}

impl OnChange {
    /// Nothing is silently mixed: the operator decides.
    pub const DEFAULT: OnChange = OnChange::Fail;
    pub const ALL: [OnChange; 3] = [OnChange::Fail, OnChange::ForwardOnly, OnChange::FullRefresh];
    pub fn as_str(self) -> &'static str {
        match self {
            OnChange::Fail => "fail",
            OnChange::ForwardOnly => "forward_only",
            OnChange::FullRefresh => "full_refresh",
        }
    }
    pub fn parse(s: &str) -> Option<OnChange> {
        OnChange::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum WriteMode {
    Append,
    /// Replace the whole table.
    Overwrite,
    /// Replace exactly the partitions present in the job's output.
    OverwritePartitions,
    Merge(MergeSpec),
}

impl WriteMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            WriteMode::Append => "append",
            WriteMode::Overwrite => "overwrite",
            WriteMode::OverwritePartitions => "overwrite_partitions",
            WriteMode::Merge(_) => "merge",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergeSpec {
    pub keys: Vec<Name>,
    /// Source rows matching this SQL condition delete the target row (e.g. `op = 'D'`).
    pub delete_when: Option<String>,
    pub on_duplicate: OnDuplicate,
}

/// What a merge does when the source holds a key more than once.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum OnDuplicate {
    Error,
    KeepLatest { order_by: Name },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub name: String,
    pub severity: Severity,
    pub kind: CheckKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A failure commits nothing.
    Error,
    /// A failure is reported; the write goes on.
    Warn,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CheckKind {
    NotNull {
        columns: Vec<Name>,
    },
    Unique {
        columns: Vec<Name>,
    },
    AcceptedValues {
        column: Name,
        values: Vec<String>,
    },
    Range {
        column: Name,
        min: Option<f64>,
        max: Option<f64>,
    },
    RowCountMin {
        min: u64,
    },
    /// A query over the job's output (as `output`) that returns the failing rows.
    Sql {
        sql: String,
    },
}

impl CheckKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            CheckKind::NotNull { .. } => "not_null",
            CheckKind::Unique { .. } => "unique",
            CheckKind::AcceptedValues { .. } => "accepted_values",
            CheckKind::Range { .. } => "range",
            CheckKind::RowCountMin { .. } => "row_count_min",
            CheckKind::Sql { .. } => "sql",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlueSizing {
    pub worker_type: WorkerType,
    pub workers: u32,
    pub timeout_minutes: u32,
    pub max_retries: u32,
}

impl Default for GlueSizing {
    fn default() -> Self {
        GlueSizing {
            worker_type: WorkerType::G1X,
            workers: 2,
            timeout_minutes: 60,
            max_retries: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum WorkerType {
    #[serde(rename = "G.025X")]
    G025X,
    #[serde(rename = "G.1X")]
    G1X,
    #[serde(rename = "G.2X")]
    G2X,
    #[serde(rename = "G.4X")]
    G4X,
    #[serde(rename = "G.8X")]
    G8X,
}

impl WorkerType {
    pub const ALL: [WorkerType; 5] = [
        WorkerType::G025X,
        WorkerType::G1X,
        WorkerType::G2X,
        WorkerType::G4X,
        WorkerType::G8X,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerType::G025X => "G.025X",
            WorkerType::G1X => "G.1X",
            WorkerType::G2X => "G.2X",
            WorkerType::G4X => "G.4X",
            WorkerType::G8X => "G.8X",
        }
    }
}

/// A DAG of steps, run on a schedule by Step Functions (or `mesh run` locally).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Pipeline {
    pub name: Name,
    pub description: Option<String>,
    /// EventBridge Scheduler expression: `cron(…)` or `rate(…)`.
    pub schedule: Option<String>,
    pub max_concurrency: u32,
    pub alert_emails: Vec<String>,
    /// Steps in a topological order (dependencies first).
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: Name,
    pub action: StepAction,
    pub depends_on: Vec<Name>,
    pub retries: u32,
    pub retry_backoff_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "target", rename_all = "snake_case")]
pub enum StepAction {
    Job(Name),
    Optimize(TableRef),
}

// ---------------------------------------------------------------------------------------------
// Daily operation: incremental inputs and time-range jobs.

/// Inputs a job reads incrementally: only what arrived since the bookmark committed with the
/// job's last output snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incremental {
    /// A subset of the job's `inputs`.
    pub inputs: Vec<TableRef>,
    /// What an Iceberg input's non-append snapshot (overwrite, delete) since the bookmark does.
    pub on_rewrite: OnRewrite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRewrite {
    /// Fail, naming the snapshot.
    Error,
    /// Read the input in full instead.
    FullRead,
}

/// A job that processes one time interval per run and replaces exactly that interval's rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeRange {
    /// Output column holding the time (`date`, `timestamp` or `timestamptz`).
    pub column: Name,
    pub grain: Grain,
    /// The first interval a scheduled run catches up from, as its label (`2026-11-01`,
    /// `2026-11-01T00`, `2026-11`). Without it a job starts at the latest complete interval
    /// of its first run and catches up only after the latest interval it has done.
    pub start: Option<String>,
    /// Seconds after an interval's end before it counts as complete (late-arriving data).
    pub lag_seconds: u64,
    /// How many of the latest done intervals each scheduled run processes again.
    pub lookback: u32,
}

impl TimeRange {
    /// A time-range job with no start, no lag and no lookback.
    pub fn new(column: Name, grain: Grain) -> TimeRange {
        TimeRange {
            column,
            grain,
            start: None,
            lag_seconds: 0,
            lookback: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grain {
    Hour,
    Day,
    Month,
}

impl Grain {
    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Hour => "hour",
            Grain::Day => "day",
            Grain::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Option<Grain> {
        match s {
            "hour" => Some(Grain::Hour),
            "day" => Some(Grain::Day),
            "month" => Some(Grain::Month),
            _ => None,
        }
    }
}

impl std::fmt::Display for Grain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
