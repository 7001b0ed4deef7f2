//! Deployable artifacts: one JSON job spec and the SQL per job, plus the Glue runner that
//! executes a spec on AWS Glue (Spark). The spec is built from the validated model, so the
//! distributed engine runs exactly what `mesh run` runs locally: the same inputs, SQL,
//! parameters, checks and write mode.
//!
//! Artifacts are laid out by bucket and key exactly as in the artifacts bucket
//! (`{abbr}-artifacts-{env}/jobs/{slug}/{job}.json`, `…/{job}.sql`, `runtime/glue_runner.py`),
//! so `mesh build` writes a folder that mirrors S3 and `mesh deploy artifacts` uploads it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mesh_domain::{
    BadRows, Check, CheckKind, ColumnType, Consumed, Domain, Env, Job, Naming, OnDuplicate, Project, RawFormat,
    Severity, SharedTable, Storage, Table, WriteMode,
};
use mesh_iceberg::ObjectStores;

use crate::translate::{spark_transform, spark_type, table_properties};
use serde::{Deserialize, Serialize};

/// The Glue runner, kept in the repository as a plain PySpark script and shipped verbatim.
pub const GLUE_RUNNER: &str = include_str!("../../../../runtime/glue/glue_runner.py");

/// Version of the job-spec format. The runner refuses specs of another version, so an old
/// runner never misreads a newer spec (deploy the runner and the specs together).
pub const SPEC_VERSION: u32 = 1;

/// The Iceberg catalog name the Glue jobs configure (`--conf spark.sql.catalog.glue_catalog=…`).
pub const ICEBERG_CATALOG: &str = "glue_catalog";

/// Everything the Glue runner needs to run one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub spec_version: u32,
    pub domain: String,
    pub domain_abbr: String,
    pub env: Env,
    pub region: String,
    pub project: String,
    pub project_slug: String,
    pub job: String,
    pub glue_job: String,
    pub description: Option<String>,
    pub sql: SqlRef,
    pub iceberg: IcebergCatalogSpec,
    pub inputs: Vec<InputSpec>,
    pub output: OutputSpec,
    pub write: WriteSpec,
    pub checks: Vec<CheckSpec>,
    /// Default run parameters; run arguments (`--run_date 2026-11-27`) override them.
    pub params: BTreeMap<String, String>,
    /// Declared parameter types (`date`, `timestamp`, `int`); absent = `string`. The runner
    /// checks values against them and binds them as literals of that type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub param_types: BTreeMap<String, mesh_domain::ParamType>,
    pub glue: GlueSpec,
    /// Incremental inputs (`[jobs.incremental]`): the runner reads each bookmark from the output
    /// table's latest snapshot summary and commits the new one with the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incremental: Option<IncrementalSpec>,
    /// A time-range job (`[jobs.time_range]`): one interval per run, replaced by filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range: Option<TimeRangeSpec>,
}

/// A pipeline `optimize` step on AWS: the runner in maintenance mode on one table, with the
/// manifest's optimizer settings (`mesh optimize` runs the same settings locally).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaintenanceSpec {
    pub spec_version: u32,
    /// Always `maintenance`: what switches the runner from a job to table maintenance.
    pub kind: &'static str,
    pub domain: String,
    pub domain_abbr: String,
    pub env: Env,
    pub region: String,
    pub project: String,
    pub project_slug: String,
    /// For the runner's log lines: `optimize {layer}.{table}`.
    pub job: String,
    pub glue_job: String,
    pub iceberg: IcebergCatalogSpec,
    pub table: MaintainedTable,
    pub optimizers: mesh_domain::Optimizers,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaintainedTable {
    pub reference: String,
    pub database: String,
    pub table: String,
    /// A table with a sort order is compacted sorted (Iceberg's `sort` strategy).
    pub sort_order: Vec<String>,
}

/// The maintenance spec of one table of a validated domain, or `None` when the table is not an
/// Iceberg table (validation allows `optimize` steps only on Iceberg tables).
pub fn maintenance_spec(domain: &Domain, env: Env, project: &Project, table: &Table) -> Option<MaintenanceSpec> {
    let n = Naming::for_domain(domain, env);
    let options = table.iceberg()?;
    let out = output_spec(&n, project, table);
    Some(MaintenanceSpec {
        spec_version: SPEC_VERSION,
        kind: "maintenance",
        domain: domain.name.clone(),
        domain_abbr: domain.abbr.to_string(),
        env,
        region: domain.region.clone(),
        project: project.name.to_string(),
        project_slug: project.slug.to_string(),
        job: format!("optimize {}", table.reference()),
        glue_job: n.maintenance_glue_job(&project.slug),
        iceberg: IcebergCatalogSpec {
            catalog: ICEBERG_CATALOG.into(),
            warehouse: n.warehouse(&project.slug, mesh_domain::Layer::Curated).s3_uri(),
        },
        table: MaintainedTable {
            reference: out.reference,
            database: out.database,
            table: out.table,
            sort_order: out.sort_order,
        },
        optimizers: options.optimizers.clone(),
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncrementalSpec {
    /// Input reference (`raw.customer_events`) -> summary property holding its bookmark.
    pub bookmarks: BTreeMap<String, String>,
    /// `error` or `full_read`.
    pub on_rewrite: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRangeSpec {
    pub column: String,
    /// `date`, `timestamp` or `timestamptz`.
    pub column_type: String,
    /// `hour`, `day` or `month`.
    pub grain: String,
    /// Summary property holding the intervals done.
    pub intervals_key: String,
    /// `[jobs.time_range]` start, lag and lookback: which intervals a scheduled run processes
    /// (the runner decides as `mesh run` does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default)]
    pub lag_seconds: u64,
    #[serde(default)]
    pub lookback: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlRef {
    /// The file in the repository, relative to the domain root.
    pub file: String,
    /// Where the runner reads it: `s3://{abbr}-artifacts-{env}/jobs/{slug}/{job}.sql`.
    pub uri: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcebergCatalogSpec {
    pub catalog: String,
    /// Warehouse of tables created by the runner; existing tables keep their own location.
    pub warehouse: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    /// Spark SQL type (`bigint`, `decimal(18,2)`, `timestamp_ntz`).
    pub spark_type: String,
    pub nullable: bool,
    /// The column's previous name: the runner renames it in an existing table.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub renamed_from: Option<String>,
}

/// A table the job reads, under the name its SQL uses (`database.table`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// `layer.table` as in the manifest.
    pub reference: String,
    pub database: String,
    pub table: String,
    /// `database.table`: the name the job SQL reads.
    pub qualified: String,
    pub layer: String,
    /// `iceberg`, or the raw file format `csv` | `json` | `parquet`.
    pub format: String,
    pub location: String,
    pub columns: Vec<ColumnSpec>,
    /// Raw tables: Hive partition folders (`event_date=2026-11-27/`).
    pub partition_by: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub csv: Option<CsvSpec>,
    /// Raw tables: `fail` or `quarantine`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bad_rows: Option<String>,
    /// Raw tables with `bad_rows = "quarantine"`: where rejected rows go (`run_id=…/` folders).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rejected_location: Option<String>,
    /// Another domain's product: the producer's account, whose Glue Data Catalog holds the
    /// table (read through the grants of its resource policy).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub catalog_id: Option<String>,
    /// Another domain's product: its major version, its producer's freshness promise (`26h`) and the same in
    /// seconds; the runner fails a run whose snapshot is older at the run's time, as meshkit's
    /// freshness check does.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub freshness: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub freshness_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvSpec {
    pub header: bool,
    pub delimiter: String,
    pub quote: String,
    pub escape: Option<String>,
    pub null_value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub reference: String,
    pub database: String,
    pub table: String,
    pub qualified: String,
    pub layer: String,
    pub location: String,
    pub columns: Vec<ColumnSpec>,
    /// Spark partition transforms: `months(sale_date)`, `bucket(8, customer_id)`.
    pub partition_by: Vec<String>,
    /// Iceberg's rendering of the sort order: `sale_date ASC NULLS FIRST`.
    pub sort_order: Vec<String>,
    pub identifier: Vec<String>,
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum WriteSpec {
    Append,
    /// Replace the whole table.
    Overwrite,
    /// Replace the partitions present in the output (Spark's dynamic partition overwrite).
    OverwritePartitions,
    Merge {
        keys: Vec<String>,
        /// Keys match null-safely (`<=>`): a NULL key matches a NULL key, as in the Rust engine.
        null_safe: bool,
        on_duplicate: DuplicateSpec,
        /// SQL condition on source rows marking deletions (`op = 'D'`).
        delete_when: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum DuplicateSpec {
    Error,
    KeepLatest { order_by: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub name: String,
    /// `error` (a failure writes nothing) or `warn`.
    pub severity: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlueSpec {
    pub glue_version: String,
    pub worker_type: String,
    pub workers: u32,
    pub timeout_minutes: u32,
    pub max_retries: u32,
}

fn columns(table: &Table) -> Vec<ColumnSpec> {
    table
        .columns
        .iter()
        .map(|c| ColumnSpec {
            name: c.name.to_string(),
            spark_type: spark_type(c.data_type),
            nullable: c.nullable,
            renamed_from: c.renamed_from.as_ref().map(|n| n.to_string()),
        })
        .collect()
}

fn check_spec(c: &Check) -> CheckSpec {
    let mut s = CheckSpec {
        name: c.name.clone(),
        severity: match c.severity {
            Severity::Error => "error".into(),
            Severity::Warn => "warn".into(),
        },
        kind: c.kind.type_name().into(),
        columns: Vec::new(),
        column: None,
        values: Vec::new(),
        min: None,
        max: None,
        sql: None,
    };
    match &c.kind {
        CheckKind::NotNull { columns } | CheckKind::Unique { columns } => {
            s.columns = columns.iter().map(|c| c.to_string()).collect()
        }
        CheckKind::AcceptedValues { column, values } => {
            s.column = Some(column.to_string());
            s.values = values.clone();
        }
        CheckKind::Range { column, min, max } => {
            s.column = Some(column.to_string());
            s.min = *min;
            s.max = *max;
        }
        CheckKind::RowCountMin { min } => s.min = Some(*min as f64),
        CheckKind::Sql { sql } => s.sql = Some(sql.clone()),
    }
    s
}

fn input_spec(n: &Naming, project: &Project, table: &Table) -> InputSpec {
    let location = n.table_location(&project.slug, table);
    let mut spec = InputSpec {
        reference: table.reference().to_string(),
        database: n.database(table.layer),
        table: table.name.to_string(),
        qualified: n.qualified_table(table),
        layer: table.layer.to_string(),
        format: "iceberg".into(),
        location: location.s3_uri(),
        columns: columns(table),
        partition_by: Vec::new(),
        csv: None,
        bad_rows: None,
        rejected_location: None,
        catalog_id: None,
        version: None,
        freshness: None,
        freshness_seconds: None,
    };
    if let Storage::Hive(h) = &table.storage {
        spec.format = h.file_format.as_str().into();
        spec.partition_by = table.partition_by.iter().map(|p| p.column.to_string()).collect();
        if let RawFormat::Csv(c) = &h.file_format {
            spec.csv = Some(CsvSpec {
                header: c.header,
                delimiter: c.delimiter.to_string(),
                quote: c.quote.to_string(),
                escape: c.escape.map(|e| e.to_string()),
                null_value: c.null_value.clone(),
            });
        }
        spec.bad_rows = Some(
            match h.bad_rows {
                BadRows::Fail => "fail",
                BadRows::Quarantine => "quarantine",
            }
            .into(),
        );
        if h.bad_rows == BadRows::Quarantine {
            spec.rejected_location = Some(n.rejected_location(&project.slug, table).s3_uri());
        }
    }
    spec
}

/// A consumed product as a job input: the producer's table in its catalog, as the pin says.
fn product_input_spec(c: &Consumed, shared: &SharedTable) -> InputSpec {
    let columns = c.pin.as_ref().map_or_else(Vec::new, |pin| {
        pin.columns
            .iter()
            .filter_map(|col| {
                Some(ColumnSpec {
                    name: col.name.clone(),
                    spark_type: spark_type(ColumnType::parse(&col.data_type)?),
                    nullable: col.nullable,
                    renamed_from: None,
                })
            })
            .collect()
    });
    InputSpec {
        reference: c.id(),
        database: shared.database.clone(),
        table: shared.table.to_string(),
        qualified: format!("{}.{}", shared.database, shared.table),
        layer: shared.layer.to_string(),
        format: "iceberg".into(),
        location: shared.location.s3_uri(),
        columns,
        partition_by: Vec::new(),
        csv: None,
        bad_rows: None,
        rejected_location: None,
        catalog_id: Some(shared.account.clone()),
        version: Some(c.version),
        freshness: c.pin.as_ref().map(|p| p.freshness.clone()),
        freshness_seconds: c
            .pin
            .as_ref()
            .and_then(|p| mesh_domain::Freshness::parse(&p.freshness).ok())
            .map(|f| f.seconds),
    }
}

fn output_spec(n: &Naming, project: &Project, table: &Table) -> OutputSpec {
    let properties = table_properties(table);
    OutputSpec {
        reference: table.reference().to_string(),
        database: n.database(table.layer),
        table: table.name.to_string(),
        qualified: n.qualified_table(table),
        layer: table.layer.to_string(),
        location: n.table_location(&project.slug, table).s3_uri(),
        columns: columns(table),
        partition_by: table
            .partition_by
            .iter()
            .map(|p| spark_transform(p.column.as_str(), p.transform))
            .collect(),
        sort_order: table
            .sort_order
            .iter()
            .map(|s| {
                format!(
                    "{} {} NULLS {}",
                    s.column,
                    if s.descending { "DESC" } else { "ASC" },
                    if s.nulls_first { "FIRST" } else { "LAST" }
                )
            })
            .collect(),
        identifier: table.identifier.iter().map(|c| c.to_string()).collect(),
        properties,
    }
}

fn write_spec(mode: &WriteMode) -> WriteSpec {
    match mode {
        WriteMode::Append => WriteSpec::Append,
        WriteMode::Overwrite => WriteSpec::Overwrite,
        WriteMode::OverwritePartitions => WriteSpec::OverwritePartitions,
        WriteMode::Merge(m) => WriteSpec::Merge {
            keys: m.keys.iter().map(|k| k.to_string()).collect(),
            null_safe: true,
            on_duplicate: match &m.on_duplicate {
                OnDuplicate::Error => DuplicateSpec::Error,
                OnDuplicate::KeepLatest { order_by } => DuplicateSpec::KeepLatest {
                    order_by: order_by.to_string(),
                },
            },
            delete_when: m.delete_when.clone(),
        },
    }
}

/// The spec of one job of a validated domain in one environment.
pub fn job_spec(domain: &Domain, env: Env, project: &Project, job: &Job) -> JobSpec {
    let n = Naming::for_domain(domain, env);
    let output = project.table(&job.output).expect("validated reference");
    JobSpec {
        spec_version: SPEC_VERSION,
        domain: domain.name.clone(),
        domain_abbr: domain.abbr.to_string(),
        env,
        region: domain.region.clone(),
        project: project.name.to_string(),
        project_slug: project.slug.to_string(),
        job: job.name.to_string(),
        glue_job: n.glue_job(&project.slug, &job.name),
        description: job.description.clone(),
        sql: SqlRef {
            file: job.sql.display().to_string(),
            uri: n.job_sql(&project.slug, &job.name).s3_uri(),
        },
        iceberg: IcebergCatalogSpec {
            catalog: ICEBERG_CATALOG.into(),
            warehouse: n.warehouse(&project.slug, mesh_domain::Layer::Curated).s3_uri(),
        },
        // Products [`build`] checked are pulled and have an account here; a spec built without
        // that check leaves out what it cannot place.
        inputs: job
            .inputs
            .iter()
            .map(|r| input_spec(&n, project, project.table(r).expect("validated reference")))
            .chain(job.products.iter().filter_map(|i| {
                let c = project.consumed(i)?;
                Some(product_input_spec(c, &c.shared_table(env)?))
            }))
            .collect(),
        output: output_spec(&n, project, output),
        write: write_spec(&job.mode),
        checks: job.checks.iter().map(check_spec).collect(),
        params: job.params.clone(),
        param_types: job.param_types.clone(),
        glue: GlueSpec {
            glue_version: domain.versions.glue.clone(),
            worker_type: job.glue.worker_type.as_str().into(),
            workers: job.glue.workers,
            timeout_minutes: job.glue.timeout_minutes,
            max_retries: job.glue.max_retries,
        },
        incremental: job.incremental.as_ref().map(|i| IncrementalSpec {
            bookmarks: i
                .inputs
                .iter()
                .map(|r| {
                    (
                        r.to_string(),
                        crate::incremental::bookmark_key(job.name.as_str(), &r.to_string()),
                    )
                })
                .collect(),
            on_rewrite: match i.on_rewrite {
                mesh_domain::OnRewrite::Error => "error",
                mesh_domain::OnRewrite::FullRead => "full_read",
            }
            .into(),
        }),
        time_range: job.time_range.as_ref().map(|t| TimeRangeSpec {
            column: t.column.to_string(),
            column_type: output
                .column(t.column.as_str())
                .map(|c| c.data_type.to_string())
                .unwrap_or_default(),
            grain: t.grain.to_string(),
            intervals_key: crate::incremental::intervals_key(job.name.as_str()),
            start: t.start.clone(),
            lag_seconds: t.lag_seconds,
            lookback: t.lookback,
        }),
    }
}

/// What an artifact is, for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    GlueRunner,
    JobSpec,
    JobSql,
    /// The maintenance spec of a table a pipeline `optimize` step maintains.
    MaintenanceSpec,
}

/// One object of the artifacts bucket, with its exact bytes.
#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    pub kind: ArtifactKind,
    pub bucket: String,
    pub key: String,
    pub project: Option<String>,
    pub job: Option<String>,
    pub size: u64,
    #[serde(skip)]
    pub bytes: Arc<Vec<u8>>,
}

impl Artifact {
    pub fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{file}: cannot read the SQL of job `{job}`: {source}\n  help: the manifest names this file; create it or fix `sql` in the job")]
    ReadSql {
        job: String,
        file: String,
        source: std::io::Error,
    },
    #[error("{path}: cannot write: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("job `{job}` reads `{product}`, which cannot be placed in env `{env}`: it is not pulled, or its [[consumes]] entry names no producer account for {env}\n  help: run `mesh pull` and commit products.lock.json, and give the entry `accounts = {{ {env} = \"<producer's 12-digit account>\" }}`")]
    Product { job: String, product: String, env: Env },
    #[error("upload of s3://{bucket}/{key} failed: {source}\n  help: check AWS credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), AWS_REGION and, for a local S3, AWS_ENDPOINT_URL; the bucket is created by the environment's Terraform")]
    Upload {
        bucket: String,
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("S3 client for bucket {bucket}: {source}")]
    Client {
        bucket: String,
        #[source]
        source: mesh_iceberg::StoreError,
    },
}

/// Every artifact of the domain for `env`: the runner, then per job its spec and its SQL.
pub fn build(domain: &Domain, root: &Path, env: Env) -> Result<Vec<Artifact>, ArtifactError> {
    let n = Naming::for_domain(domain, env);
    let runner = n.glue_runner_script();
    let mut out = vec![Artifact {
        kind: ArtifactKind::GlueRunner,
        bucket: runner.bucket,
        key: runner.key,
        project: None,
        job: None,
        size: GLUE_RUNNER.len() as u64,
        bytes: Arc::new(GLUE_RUNNER.as_bytes().to_vec()),
    }];
    for p in &domain.projects {
        for j in &p.jobs {
            for i in &j.products {
                let c = p.consumed(i).expect("validated product input");
                if c.shared_table(env).is_none() {
                    return Err(ArtifactError::Product {
                        job: j.name.to_string(),
                        product: c.to_string(),
                        env,
                    });
                }
            }
            let spec = job_spec(domain, env, p, j);
            let mut json = serde_json::to_vec_pretty(&spec).expect("spec serialises");
            json.push(b'\n');
            let sql = std::fs::read(root.join(&j.sql)).map_err(|source| ArtifactError::ReadSql {
                job: j.name.to_string(),
                file: j.sql.display().to_string(),
                source,
            })?;
            for (kind, path, bytes) in [
                (ArtifactKind::JobSpec, n.job_spec(&p.slug, &j.name), json),
                (ArtifactKind::JobSql, n.job_sql(&p.slug, &j.name), sql),
            ] {
                out.push(Artifact {
                    kind,
                    bucket: path.bucket,
                    key: path.key,
                    project: Some(p.name.to_string()),
                    job: Some(j.name.to_string()),
                    size: bytes.len() as u64,
                    bytes: Arc::new(bytes),
                });
            }
        }
        for r in p.optimized_tables() {
            let Some(spec) = p.table(r).and_then(|t| maintenance_spec(domain, env, p, t)) else {
                continue;
            };
            let mut json = serde_json::to_vec_pretty(&spec).expect("spec serialises");
            json.push(b'\n');
            let path = n.maintenance_spec(&p.slug, r);
            out.push(Artifact {
                kind: ArtifactKind::MaintenanceSpec,
                bucket: path.bucket,
                key: path.key,
                project: Some(p.name.to_string()),
                job: Some(spec.job.clone()),
                size: json.len() as u64,
                bytes: Arc::new(json),
            });
        }
    }
    Ok(out)
}

/// Writes artifacts under `dir` as `{bucket}/{key}`; returns the files written.
pub fn write(artifacts: &[Artifact], dir: &Path) -> Result<Vec<PathBuf>, ArtifactError> {
    let mut written = Vec::new();
    for a in artifacts {
        let path = dir.join(&a.bucket).join(&a.key);
        let err = |source| ArtifactError::Write {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        std::fs::write(&path, a.bytes.as_slice()).map_err(err)?;
        written.push(path);
    }
    Ok(written)
}

/// Uploads artifacts over the S3 API with the standard AWS environment (credentials, region,
/// `AWS_ENDPOINT_URL` for S3-compatible servers). Each object is one PUT, so a reader sees the
/// old or the new bytes, never a mix; the runner is uploaded last so a new runner never meets
/// specs of an older version.
pub async fn upload(artifacts: &[Artifact], stores: &ObjectStores) -> Result<(), ArtifactError> {
    use object_store::{path::Path as ObjectPath, ObjectStoreExt, PutPayload};

    let mut ordered: Vec<&Artifact> = artifacts.iter().collect();
    ordered.sort_by_key(|a| a.kind == ArtifactKind::GlueRunner);
    for a in ordered {
        let store = stores.bucket(&a.bucket).map_err(|source| ArtifactError::Client {
            bucket: a.bucket.clone(),
            source,
        })?;
        store
            .put(
                &ObjectPath::from(a.key.as_str()),
                PutPayload::from(a.bytes.as_slice().to_vec()),
            )
            .await
            .map_err(|source| ArtifactError::Upload {
                bucket: a.bucket.clone(),
                key: a.key.clone(),
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> (Domain, PathBuf) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        (
            mesh_domain::load_domain(&root).expect("the example domain validates"),
            root,
        )
    }

    #[test]
    fn specs_round_trip_and_name_what_the_glue_jobs_read() {
        let (domain, root) = example();
        let built = build(&domain, &root, Env::Dev).unwrap();
        let jobs: usize = domain.projects.iter().map(|p| p.jobs.len()).sum();
        let optimized: usize = domain.projects.iter().map(|p| p.optimized_tables().len()).sum();
        assert_eq!(built.len(), 1 + 2 * jobs + optimized);
        // Each maintenance spec carries the table's manifest settings, which the runner applies.
        for a in built.iter().filter(|a| a.kind == ArtifactKind::MaintenanceSpec) {
            let spec: serde_json::Value = serde_json::from_slice(&a.bytes).unwrap();
            let p = domain.project(a.project.as_deref().unwrap()).unwrap();
            let t = p
                .tables
                .iter()
                .find(|t| t.reference().to_string() == spec["table"]["reference"])
                .unwrap();
            assert_eq!(spec["kind"], "maintenance");
            assert_eq!(spec["spec_version"], SPEC_VERSION);
            assert_eq!(
                spec["optimizers"],
                serde_json::to_value(&t.iceberg().unwrap().optimizers).unwrap()
            );
            assert_eq!(
                spec["glue_job"],
                Naming::for_domain(&domain, Env::Dev).maintenance_glue_job(&p.slug)
            );
        }
        for a in built.iter().filter(|a| a.kind == ArtifactKind::JobSpec) {
            let spec: JobSpec = serde_json::from_slice(&a.bytes).unwrap();
            assert_eq!(spec.spec_version, SPEC_VERSION);
            assert_eq!(
                serde_json::to_vec_pretty(&spec).unwrap(),
                a.bytes[..a.bytes.len() - 1].to_vec()
            );
            let sql_key = spec.sql.uri.strip_prefix(&format!("s3://{}/", a.bucket)).unwrap();
            assert!(
                built.iter().any(|b| b.kind == ArtifactKind::JobSql && b.key == sql_key),
                "{sql_key}"
            );
        }
        let p = domain.project("customers").unwrap();
        let spec = job_spec(&domain, Env::Prod, p, p.job("customers_latest").unwrap());
        assert_eq!(spec.glue_job, "f01-pj02-customers-latest-prod");
        assert_eq!(spec.output.partition_by, vec!["bucket(8, customer_id)".to_string()]);
        assert_eq!(
            spec.write,
            WriteSpec::Merge {
                keys: vec!["customer_id".into()],
                null_safe: true,
                on_duplicate: DuplicateSpec::KeepLatest {
                    order_by: "updated_at".into()
                },
                delete_when: Some("op = 'D'".into()),
            }
        );
        assert_eq!(spec.inputs[0].columns[3].spark_type, "timestamp_ntz");
    }
}
