//! `domain.json` and `project.toml` exactly as written: the shapes serde reads, before any
//! rule is checked. Unknown fields are errors; nothing else here is trusted, and
//! [`crate::load`] turns these into the checked [`crate::model`].
//!
//! Every type is named `Unchecked…` after the model type it becomes (`UncheckedTable` →
//! [`crate::model::Table`]): the prefix says what sets them apart from the model, and it keeps
//! "raw" for the data layer alone. (`…Manifest` would read as an Iceberg manifest, and `…File`
//! fits only the two top-level files.) Field names are the file formats' and must not change.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedDomain {
    #[serde(rename = "$schema", default)]
    pub schema: Option<String>,
    pub domain_name: String,
    pub domain_abbr: String,
    pub aws_region: String,
    pub glue_version: Option<String>,
    pub python_version: Option<String>,
    pub terraform_version: Option<String>,
    pub rust_toolchain: Option<String>,
    #[serde(default)]
    pub aws_accounts: BTreeMap<String, String>,
    pub github_repository: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedProject {
    pub name: String,
    pub project_slug: String,
    pub owner: String,
    pub contact: Option<String>,
    pub classification: String,
    pub description: Option<String>,
    #[serde(default)]
    pub tables: Vec<UncheckedTable>,
    #[serde(default)]
    pub jobs: Vec<UncheckedJob>,
    #[serde(default)]
    pub pipelines: Vec<UncheckedPipeline>,
    /// The slug this project had before (`moved_from_slug = "old"`): its tables move from
    /// under the old slug.
    pub moved_from_slug: Option<String>,
    /// Tables deliberately deleted (`layer.table`): meshkit drops their catalog entries and files.
    #[serde(default)]
    pub retired: Vec<String>,
    #[serde(default)]
    pub products: Vec<UncheckedProduct>,
    #[serde(default)]
    pub consumes: Vec<UncheckedConsume>,
}

/// `[[consumes]]`: `product = "f01.daily_sales@1"`, `path = "../finance01"`, `accounts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedConsume {
    pub product: String,
    pub path: Option<String>,
    #[serde(default)]
    pub accounts: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedTable {
    pub name: String,
    pub layer: String,
    pub description: Option<String>,
    /// Raw tables: `csv`, `json` or `parquet`. Refined/curated: omitted or `iceberg`.
    pub format: Option<String>,
    pub csv: Option<UncheckedCsv>,
    pub bad_rows: Option<String>,
    #[serde(default)]
    pub columns: Vec<UncheckedColumn>,
    #[serde(default)]
    pub partition_by: Vec<String>,
    #[serde(default)]
    pub sort_order: Vec<String>,
    #[serde(default)]
    pub identifier: Vec<String>,
    pub target_file_size_mb: Option<u32>,
    pub schema_evolution: Option<bool>,
    pub optimizers: Option<UncheckedOptimizers>,
    /// Where the table was before: `layer.table`, or `slug/layer.table` from another project.
    pub moved_from: Option<String>,
    /// Columns the table had and drops deliberately (Iceberg tables).
    #[serde(default)]
    pub dropped_columns: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: Option<bool>,
    pub comment: Option<String>,
    pub renamed_from: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedCsv {
    pub header: Option<bool>,
    pub delimiter: Option<String>,
    pub quote: Option<String>,
    pub escape: Option<String>,
    pub null_value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedOptimizers {
    pub run_rate_hours: Option<u32>,
    pub compaction: Option<UncheckedCompaction>,
    pub retention: Option<UncheckedRetention>,
    pub orphans: Option<UncheckedOrphans>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedCompaction {
    pub enabled: Option<bool>,
    pub target_file_size_mb: Option<u32>,
    pub min_file_size_ratio: Option<f64>,
    pub min_input_files: Option<u32>,
    pub delete_file_threshold: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedRetention {
    pub enabled: Option<bool>,
    pub snapshot_retention_days: Option<u32>,
    pub retain_last: Option<u32>,
    pub clean_expired_files: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedOrphans {
    pub enabled: Option<bool>,
    pub retention_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedJob {
    pub name: String,
    pub description: Option<String>,
    pub sql: String,
    #[serde(default)]
    pub inputs: Vec<String>,
    pub output: String,
    pub mode: Option<String>,
    pub merge: Option<UncheckedMerge>,
    #[serde(default)]
    pub checks: Vec<UncheckedCheck>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// `${name}` types (string when absent): date, timestamp, int, string.
    #[serde(default)]
    pub param_types: BTreeMap<String, String>,
    pub glue: Option<UncheckedGlue>,
    pub incremental: Option<UncheckedIncremental>,
    pub time_range: Option<UncheckedTimeRange>,
    /// What a run does when the job's fingerprint differs from the one committed with its
    /// state: `fail`, `forward_only` or `full_refresh`.
    pub on_change: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedIncremental {
    #[serde(default)]
    pub inputs: Vec<String>,
    pub on_rewrite: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedTimeRange {
    pub column: String,
    pub grain: String,
    pub start: Option<String>,
    pub lag: Option<String>,
    pub lookback: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedMerge {
    pub keys: Option<Vec<String>>,
    pub delete_when: Option<String>,
    pub on_duplicate: Option<String>,
    pub order_by: Option<String>,
}

/// One flat shape for every check type, so a misplaced field gets a message naming the check type.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedCheck {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    pub severity: Option<String>,
    pub columns: Option<Vec<String>>,
    pub column: Option<String>,
    pub values: Option<Vec<toml::Value>>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub sql: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedGlue {
    pub worker_type: Option<String>,
    pub workers: Option<u32>,
    pub timeout_minutes: Option<u32>,
    pub max_retries: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedPipeline {
    pub name: String,
    pub description: Option<String>,
    pub schedule: Option<String>,
    pub max_concurrency: Option<u32>,
    #[serde(default)]
    pub alert_emails: Vec<String>,
    #[serde(default)]
    pub steps: Vec<UncheckedStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedStep {
    pub name: Option<String>,
    pub job: Option<String>,
    pub optimize: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    pub retries: Option<u32>,
    pub retry_backoff_seconds: Option<u32>,
}

/// A `[[products]]` entry: a table published to other domains ([`crate::product::Product`]).
/// Everything but the name and table is optional here so a missing field gets a message with
/// its fix rather than serde's bare "missing field".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedProduct {
    pub name: String,
    pub table: String,
    pub version: Option<i64>,
    pub description: Option<String>,
    pub freshness: Option<String>,
    #[serde(default)]
    pub consumers: Vec<UncheckedConsumer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UncheckedConsumer {
    pub domain: String,
    #[serde(default)]
    pub accounts: BTreeMap<String, String>,
}
