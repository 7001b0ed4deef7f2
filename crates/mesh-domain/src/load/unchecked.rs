//! Input exactly as written in `domain.json` and `project.toml`. Unknown fields are errors.
//! Nothing here is trusted: `crate::load` turns these into the checked model.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDomain {
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
pub struct RawProject {
    pub name: String,
    pub project_slug: String,
    pub owner: String,
    pub contact: Option<String>,
    pub classification: String,
    pub description: Option<String>,
    #[serde(default)]
    pub tables: Vec<RawTable>,
    #[serde(default)]
    pub jobs: Vec<RawJob>,
    #[serde(default)]
    pub pipelines: Vec<RawPipeline>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTable {
    pub name: String,
    pub layer: String,
    pub description: Option<String>,
    /// Raw tables: `csv`, `json` or `parquet`. Refined/curated: omitted or `iceberg`.
    pub format: Option<String>,
    pub csv: Option<RawCsv>,
    pub bad_rows: Option<String>,
    #[serde(default)]
    pub columns: Vec<RawColumn>,
    #[serde(default)]
    pub partition_by: Vec<String>,
    #[serde(default)]
    pub sort_order: Vec<String>,
    #[serde(default)]
    pub identifier: Vec<String>,
    pub target_file_size_mb: Option<u32>,
    pub schema_evolution: Option<bool>,
    pub optimizers: Option<RawOptimizers>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: Option<bool>,
    pub comment: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCsv {
    pub header: Option<bool>,
    pub delimiter: Option<String>,
    pub quote: Option<String>,
    pub escape: Option<String>,
    pub null_value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOptimizers {
    pub run_rate_hours: Option<u32>,
    pub compaction: Option<RawCompaction>,
    pub retention: Option<RawRetention>,
    pub orphans: Option<RawOrphans>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompaction {
    pub enabled: Option<bool>,
    pub target_file_size_mb: Option<u32>,
    pub min_file_size_ratio: Option<f64>,
    pub min_input_files: Option<u32>,
    pub delete_file_threshold: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub enabled: Option<bool>,
    pub snapshot_retention_days: Option<u32>,
    pub retain_last: Option<u32>,
    pub clean_expired_files: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOrphans {
    pub enabled: Option<bool>,
    pub retention_days: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJob {
    pub name: String,
    pub description: Option<String>,
    pub sql: String,
    #[serde(default)]
    pub inputs: Vec<String>,
    pub output: String,
    pub mode: Option<String>,
    pub merge: Option<RawMerge>,
    #[serde(default)]
    pub checks: Vec<RawCheck>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// `${name}` types (string when absent): date, timestamp, int, string.
    #[serde(default)]
    pub param_types: BTreeMap<String, String>,
    pub glue: Option<RawGlue>,
    pub incremental: Option<RawIncremental>,
    pub time_range: Option<RawTimeRange>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIncremental {
    #[serde(default)]
    pub inputs: Vec<String>,
    pub on_rewrite: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeRange {
    pub column: String,
    pub grain: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMerge {
    pub keys: Option<Vec<String>>,
    pub delete_when: Option<String>,
    pub on_duplicate: Option<String>,
    pub order_by: Option<String>,
}

/// One flat shape for every check type, so a misplaced field gets a message naming the check type.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
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
pub struct RawGlue {
    pub worker_type: Option<String>,
    pub workers: Option<u32>,
    pub timeout_minutes: Option<u32>,
    pub max_retries: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    pub name: String,
    pub description: Option<String>,
    pub schedule: Option<String>,
    pub max_concurrency: Option<u32>,
    #[serde(default)]
    pub alert_emails: Vec<String>,
    #[serde(default)]
    pub steps: Vec<RawStep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub name: Option<String>,
    pub job: Option<String>,
    pub optimize: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    pub retries: Option<u32>,
    pub retry_backoff_seconds: Option<u32>,
}
