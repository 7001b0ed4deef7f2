//! Every AWS name and path of the domain, for every environment, derived in one place,
//! and the AWS limits each kind of name must satisfy.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::env::Env;
use crate::ident::{DomainAbbr, Name, ProjectSlug};
use crate::model::{Domain, Job, Layer, Pipeline, Project, Table, TableRef};

/// Where an object lives: a bucket and a key prefix. Storage-agnostic: the local
/// runtime maps the bucket to a folder, the cloud runtime to S3.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectPath {
    pub bucket: String,
    /// Key prefix without a leading slash; ends with `/` for folders.
    pub key: String,
}

impl ObjectPath {
    pub fn s3_uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
    pub fn join(&self, child: &str) -> ObjectPath {
        ObjectPath {
            bucket: self.bucket.clone(),
            key: format!("{}{}", self.key, child),
        }
    }
}

impl fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.s3_uri())
    }
}

/// A bucket of the domain: one per data layer plus artifacts and access logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketKind {
    Data(Layer),
    Artifacts,
    AccessLogs,
}

impl BucketKind {
    pub const ALL: [BucketKind; 5] = [
        BucketKind::Data(Layer::Raw),
        BucketKind::Data(Layer::Refined),
        BucketKind::Data(Layer::Curated),
        BucketKind::Artifacts,
        BucketKind::AccessLogs,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            BucketKind::Data(l) => l.as_str(),
            BucketKind::Artifacts => "artifacts",
            BucketKind::AccessLogs => "access-logs",
        }
    }
}

/// The AWS partition of a region, the second field of every ARN (`arn:{partition}:…`):
/// `aws-cn` for China (`cn-*`), `aws-us-gov` for GovCloud (`us-gov-*`), `aws-iso` and
/// `aws-iso-b` for the isolated regions (`us-iso-*`, `us-isob-*`), `aws` for every other region.
/// The one place ARNs get their partition: mesh-infra's policies, trusts, state machines and
/// workflows, and mesh-core's `mesh start`, all call it.
pub fn aws_partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// The reserved job name of a project's table-maintenance Glue job.
pub const MAINTENANCE_JOB: &str = "maintenance";

/// The name generator for one domain in one environment.
#[derive(Debug, Clone)]
pub struct Naming {
    abbr: DomainAbbr,
    env: Env,
}

impl Naming {
    pub fn new(abbr: &DomainAbbr, env: Env) -> Naming {
        Naming {
            abbr: abbr.clone(),
            env,
        }
    }
    pub fn for_domain(domain: &Domain, env: Env) -> Naming {
        Naming::new(&domain.abbr, env)
    }
    pub fn env(&self) -> Env {
        self.env
    }
    pub fn abbr(&self) -> &DomainAbbr {
        &self.abbr
    }

    /// `{abbr}-{layer}-{env}`, `{abbr}-artifacts-{env}`, `{abbr}-access-logs-{env}`.
    pub fn bucket(&self, kind: BucketKind) -> String {
        format!("{}-{}-{}", self.abbr, kind.as_str(), self.env)
    }
    pub fn data_bucket(&self, layer: Layer) -> String {
        self.bucket(BucketKind::Data(layer))
    }
    /// `{abbr}_{layer}`: databases are shared by all projects and environments name them alike.
    pub fn database(&self, layer: Layer) -> String {
        format!("{}_{}", self.abbr, layer)
    }
    /// `{abbr}_*`: every database of the domain (IAM resource pattern).
    pub fn database_wildcard(&self) -> String {
        format!("{}_*", self.abbr)
    }
    /// Where S3 server access logs of a bucket go, in the access-logs bucket.
    pub fn access_log_prefix(&self, kind: BucketKind) -> ObjectPath {
        ObjectPath {
            bucket: self.bucket(BucketKind::AccessLogs),
            key: format!("{}/", self.bucket(kind)),
        }
    }
    /// `{bucket}/{slug}/`: everything a project owns in a layer.
    pub fn data_prefix(&self, slug: &ProjectSlug, layer: Layer) -> ObjectPath {
        ObjectPath {
            bucket: self.data_bucket(layer),
            key: format!("{slug}/"),
        }
    }
    /// `s3://{bucket}/{slug}/iceberg/` for refined and curated.
    pub fn warehouse(&self, slug: &ProjectSlug, layer: Layer) -> ObjectPath {
        self.data_prefix(slug, layer).join("iceberg/")
    }
    /// Raw tables live at `{bucket}/{slug}/{table}/`; Iceberg tables under the warehouse.
    pub fn table_location(&self, slug: &ProjectSlug, table: &Table) -> ObjectPath {
        self.place_location(slug, table.layer, &table.name)
    }
    /// [`Naming::table_location`] of a table by its place, declared or not (a declared move's
    /// origin, a retired table).
    pub fn place_location(&self, slug: &ProjectSlug, layer: Layer, name: &Name) -> ObjectPath {
        if layer.is_iceberg() {
            self.warehouse(slug, layer).join(&format!("{name}/"))
        } else {
            self.data_prefix(slug, layer).join(&format!("{name}/"))
        }
    }
    /// `{db}.{table}` as job SQL names it.
    pub fn qualified_table(&self, table: &Table) -> String {
        format!("{}.{}", self.database(table.layer), table.name)
    }
    /// The project's table-maintenance Glue job: the runner in maintenance mode, started by
    /// pipeline `optimize` steps. Job names cannot be [`MAINTENANCE_JOB`], so it never clashes.
    pub fn maintenance_glue_job(&self, slug: &ProjectSlug) -> String {
        format!("{}-{}-{MAINTENANCE_JOB}-{}", self.abbr, slug, self.env)
    }
    /// The maintenance spec of one table (its optimizer settings), read by the maintenance job.
    pub fn maintenance_spec(&self, slug: &ProjectSlug, table: &TableRef) -> ObjectPath {
        self.job_artifacts(slug)
            .join(&format!("{MAINTENANCE_JOB}/{}.{}.json", table.layer, table.table))
    }
    pub fn glue_job(&self, slug: &ProjectSlug, job: &Name) -> String {
        format!("{}-{}-{}-{}", self.abbr, slug, job.kebab(), self.env)
    }
    /// `{abbr}-{slug}-pipeline-{env}` for a project's `main` pipeline; other pipelines put
    /// their name before `pipeline` so several can coexist.
    pub fn state_machine(&self, slug: &ProjectSlug, pipeline: &Name) -> String {
        if pipeline.as_str() == "main" {
            format!("{}-{}-pipeline-{}", self.abbr, slug, self.env)
        } else {
            format!("{}-{}-{}-pipeline-{}", self.abbr, slug, pipeline.kebab(), self.env)
        }
    }
    pub fn glue_role(&self, slug: &ProjectSlug) -> String {
        format!("{}-glue-{}-{}", self.abbr, slug, self.env)
    }
    pub fn optimizer_role(&self, slug: &ProjectSlug) -> String {
        format!("{}-optimizer-{}-{}", self.abbr, slug, self.env)
    }
    pub fn pipeline_role(&self, slug: &ProjectSlug) -> String {
        format!("{}-sfn-{}-{}", self.abbr, slug, self.env)
    }
    pub fn scheduler_role(&self, slug: &ProjectSlug) -> String {
        format!("{}-scheduler-{}-{}", self.abbr, slug, self.env)
    }
    /// The role the approved GitHub deploy job assumes with its OIDC token (Terraform apply and
    /// artifact upload). At most 10 + 15 + 4 characters: always within IAM's 64.
    pub fn github_deploy_role(&self) -> String {
        format!("{}-github-deploy-{}", self.abbr, self.env)
    }
    /// The read-only role of Terraform plans, no apply: the plan job of each deploy workflow and,
    /// outside prod, pull requests (prod's trusts only runs of main).
    pub fn github_plan_role(&self) -> String {
        format!("{}-github-plan-{}", self.abbr, self.env)
    }
    /// The GitHub environment whose jobs may assume the deploy role (its protection rules are
    /// the approval gate).
    pub fn github_deploy_environment(&self) -> String {
        self.env.to_string()
    }
    /// The GitHub environment of pull-request plans: no reviewer, a read-only role.
    pub fn github_plan_environment(&self) -> String {
        format!("{}-plan", self.env)
    }
    /// The quarantine table of a raw table with `bad_rows = "quarantine"`: `{table}_rejected`,
    /// registered under this name for checks and SQL.
    pub fn rejected_table(&self, table: &Table) -> String {
        format!("{}_rejected", table.name)
    }
    /// Where quarantined rows go: the raw table's sibling folder `{table}_rejected/`.
    pub fn rejected_location(&self, slug: &ProjectSlug, table: &Table) -> ObjectPath {
        self.data_prefix(slug, table.layer)
            .join(&format!("{}/", self.rejected_table(table)))
    }
    /// SSM parameters of a project: `/{slug}/...`.
    pub fn ssm_prefix(&self, slug: &ProjectSlug) -> String {
        format!("/{slug}/")
    }
    pub fn ssm_table_parameter(&self, slug: &ProjectSlug, table: &Table) -> String {
        format!("/{slug}/tables/{}/{}", table.layer, table.name)
    }
    /// Where the Glue runner writes temporary files for a project.
    pub fn glue_temp(&self, slug: &ProjectSlug) -> ObjectPath {
        ObjectPath {
            bucket: self.bucket(BucketKind::Artifacts),
            key: format!("glue-temp/{slug}/"),
        }
    }
    /// Job specs and SQL of a project in the artifacts bucket.
    pub fn job_artifacts(&self, slug: &ProjectSlug) -> ObjectPath {
        ObjectPath {
            bucket: self.bucket(BucketKind::Artifacts),
            key: format!("jobs/{slug}/"),
        }
    }
    /// One job's spec (inputs, output, mode, checks, SQL) that the Glue runner reads.
    pub fn job_spec(&self, slug: &ProjectSlug, job: &Name) -> ObjectPath {
        self.job_artifacts(slug).join(&format!("{job}.json"))
    }
    /// One job's SQL, next to its spec (the spec names it).
    pub fn job_sql(&self, slug: &ProjectSlug, job: &Name) -> ObjectPath {
        self.job_artifacts(slug).join(&format!("{job}.sql"))
    }
    /// Code shared by every project (the Glue runner and its libraries): readable by all jobs.
    pub fn runtime_artifacts(&self) -> ObjectPath {
        ObjectPath {
            bucket: self.bucket(BucketKind::Artifacts),
            key: "runtime/".into(),
        }
    }
    /// The script every Glue job starts; it reads `--job-spec` and runs the job.
    pub fn glue_runner_script(&self) -> ObjectPath {
        self.runtime_artifacts().join("glue_runner.py")
    }
    /// The domain's customer-managed KMS key (buckets, logs, alerts).
    pub fn kms_alias(&self) -> String {
        format!("alias/{}-data-{}", self.abbr, self.env)
    }
    /// CloudWatch alarm on failed executions of a pipeline.
    pub fn pipeline_alarm(&self, slug: &ProjectSlug, pipeline: &Name) -> String {
        format!("{}-failed", self.state_machine(slug, pipeline))
    }
    pub fn glue_log_group(&self, slug: &ProjectSlug) -> String {
        format!("/aws-glue/jobs/{}-{}-{}", self.abbr, slug, self.env)
    }
    pub fn pipeline_log_group(&self, slug: &ProjectSlug, pipeline: &Name) -> String {
        format!("/aws/vendedlogs/states/{}", self.state_machine(slug, pipeline))
    }
    /// EventBridge schedule names are limited to 64 characters, fewer than state machines' 80,
    /// so they leave out the `-pipeline` part.
    pub fn schedule(&self, slug: &ProjectSlug, pipeline: &Name) -> String {
        format!("{}-{}-{}-{}", self.abbr, slug, pipeline.kebab(), self.env)
    }
    pub fn alerts_topic(&self, slug: &ProjectSlug) -> String {
        format!("{}-{}-alerts-{}", self.abbr, slug, self.env)
    }
    pub fn terraform_state_key(&self) -> String {
        format!("terraform/{}/{}.tfstate", self.abbr, self.env)
    }

    /// Tags every generated resource carries.
    pub fn tags(&self, domain: &Domain, project: Option<&Project>) -> BTreeMap<String, String> {
        let mut tags = BTreeMap::new();
        tags.insert("domain".into(), domain.name.clone());
        tags.insert("domain_abbr".into(), self.abbr.to_string());
        tags.insert("env".into(), self.env.to_string());
        tags.insert("managed_by".into(), "meshkit".into());
        if let Some(p) = project {
            tags.insert("project".into(), p.name.to_string());
            tags.insert("project_slug".into(), p.slug.to_string());
        }
        tags
    }

    /// Every derived name of a project, each with the AWS rule it must satisfy.
    pub fn project_names(&self, project: &Project) -> Vec<(NameKind, String)> {
        let slug = &project.slug;
        let mut out = vec![
            (NameKind::IamRole, self.glue_role(slug)),
            (NameKind::IamRole, self.optimizer_role(slug)),
            (NameKind::IamRole, self.pipeline_role(slug)),
            (NameKind::IamRole, self.scheduler_role(slug)),
            (NameKind::SnsTopic, self.alerts_topic(slug)),
            (NameKind::LogGroup, self.glue_log_group(slug)),
        ];
        for t in &project.tables {
            out.push((NameKind::GlueTable, t.name.to_string()));
            out.push((NameKind::SsmParameter, self.ssm_table_parameter(slug, t)));
        }
        for j in &project.jobs {
            out.push((NameKind::GlueJob, self.glue_job(slug, &j.name)));
        }
        if !project.optimized_tables().is_empty() {
            out.push((NameKind::GlueJob, self.maintenance_glue_job(slug)));
        }
        for p in &project.pipelines {
            out.push((NameKind::StateMachine, self.state_machine(slug, &p.name)));
            out.push((NameKind::LogGroup, self.pipeline_log_group(slug, &p.name)));
            out.push((NameKind::Schedule, self.schedule(slug, &p.name)));
        }
        out
    }

    /// Names that belong to the domain rather than to a project.
    pub fn domain_names(&self) -> Vec<(NameKind, String)> {
        let mut out: Vec<_> = BucketKind::ALL
            .iter()
            .map(|k| (NameKind::S3Bucket, self.bucket(*k)))
            .collect();
        out.extend(Layer::ALL.iter().map(|l| (NameKind::GlueDatabase, self.database(*l))));
        out
    }
}

/// The kinds of AWS names, each with its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum NameKind {
    S3Bucket,
    GlueDatabase,
    GlueTable,
    GlueJob,
    IamRole,
    StateMachine,
    SsmParameter,
    LogGroup,
    Schedule,
    SnsTopic,
}

impl NameKind {
    pub fn describe(self) -> &'static str {
        match self {
            NameKind::S3Bucket => "S3 bucket name",
            NameKind::GlueDatabase => "Glue database name",
            NameKind::GlueTable => "Glue table name",
            NameKind::GlueJob => "Glue job name",
            NameKind::IamRole => "IAM role name",
            NameKind::StateMachine => "Step Functions state machine name",
            NameKind::SsmParameter => "SSM parameter name",
            NameKind::LogGroup => "CloudWatch log group name",
            NameKind::Schedule => "EventBridge schedule name",
            NameKind::SnsTopic => "SNS topic name",
        }
    }

    /// Checks a name against AWS's documented limits; the error says which limit.
    pub fn check(self, name: &str) -> Result<(), String> {
        let len = name.len();
        let max_len = |max: usize| {
            if len > max {
                Err(format!("is {len} characters long; the limit is {max}"))
            } else if len == 0 {
                Err("is empty".to_string())
            } else {
                Ok(())
            }
        };
        let charset = |ok: fn(char) -> bool, allowed: &str| match name.chars().find(|c| !ok(*c)) {
            Some(c) => Err(format!("contains `{c}`; allowed characters are {allowed}")),
            None => Ok(()),
        };
        match self {
            NameKind::S3Bucket => {
                if !(3..=63).contains(&len) {
                    return Err(format!("is {len} characters long; S3 bucket names have 3 to 63"));
                }
                charset(
                    |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-',
                    "lowercase letters, digits and `-`",
                )?;
                if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
                    || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
                {
                    return Err("must start and end with a letter or digit".into());
                }
                for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
                    if name.starts_with(prefix) {
                        return Err(format!("must not start with `{prefix}` (reserved by AWS)"));
                    }
                }
                for suffix in ["-s3alias", "--ol-s3", "--x-s3", ".mrap", "--table-s3"] {
                    if name.ends_with(suffix) {
                        return Err(format!("must not end with `{suffix}` (reserved by AWS)"));
                    }
                }
                Ok(())
            }
            NameKind::GlueDatabase | NameKind::GlueTable => {
                max_len(255)?;
                charset(
                    |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_',
                    "lowercase letters, digits and `_`",
                )
            }
            NameKind::GlueJob => {
                max_len(255)?;
                charset(
                    |c| c.is_ascii_alphanumeric() || "-_.".contains(c),
                    "letters, digits, `-`, `_` and `.`",
                )
            }
            NameKind::IamRole => {
                max_len(64)?;
                charset(
                    |c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c),
                    "letters, digits and `+=,.@_-`",
                )
            }
            NameKind::StateMachine => {
                max_len(80)?;
                charset(
                    |c| c.is_ascii_alphanumeric() || "-_".contains(c),
                    "letters, digits, `-` and `_`",
                )
            }
            NameKind::SsmParameter => {
                max_len(1011)?;
                charset(
                    |c| c.is_ascii_alphanumeric() || "_.-/".contains(c),
                    "letters, digits and `_.-/`",
                )?;
                if !name.starts_with('/') {
                    return Err("must start with `/` (hierarchical parameter)".into());
                }
                let depth = name.split('/').filter(|s| !s.is_empty()).count();
                if depth > 15 {
                    return Err(format!("has {depth} levels; the limit is 15"));
                }
                let first = name.trim_start_matches('/').to_ascii_lowercase();
                if first.starts_with("aws") || first.starts_with("ssm") {
                    return Err("must not start with `aws` or `ssm` (reserved)".into());
                }
                Ok(())
            }
            NameKind::LogGroup => {
                max_len(512)?;
                charset(
                    |c| c.is_ascii_alphanumeric() || "._-/#".contains(c),
                    "letters, digits and `._-/#`",
                )
            }
            NameKind::Schedule => {
                max_len(64)?;
                charset(
                    |c| c.is_ascii_alphanumeric() || "-_.".contains(c),
                    "letters, digits, `-`, `_` and `.`",
                )
            }
            NameKind::SnsTopic => {
                max_len(256)?;
                charset(
                    |c| c.is_ascii_alphanumeric() || "-_".contains(c),
                    "letters, digits, `-` and `_`",
                )
            }
        }
    }
}

/// Everything `mesh names` prints for one environment.
#[derive(Debug, Clone, Serialize)]
pub struct NameSheet {
    pub domain: String,
    pub env: Env,
    pub region: String,
    pub buckets: BTreeMap<String, String>,
    pub databases: BTreeMap<String, String>,
    pub projects: Vec<ProjectNames>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectNames {
    pub name: String,
    pub slug: String,
    pub roles: BTreeMap<String, String>,
    pub data_prefixes: BTreeMap<String, String>,
    pub iceberg_warehouses: BTreeMap<String, String>,
    pub glue_temp: String,
    pub ssm_prefix: String,
    pub glue_log_group: String,
    pub alerts_topic: String,
    pub tables: Vec<TableNames>,
    pub jobs: Vec<JobNames>,
    pub pipelines: Vec<PipelineNames>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableNames {
    pub name: String,
    pub layer: Layer,
    pub format: &'static str,
    pub database: String,
    pub qualified: String,
    pub location: String,
    pub ssm_parameter: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobNames {
    pub name: String,
    pub glue_job: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PipelineNames {
    pub name: String,
    pub state_machine: String,
    pub log_group: String,
    pub schedule: String,
}

impl NameSheet {
    pub fn build(domain: &Domain, env: Env, only_project: Option<&str>) -> NameSheet {
        let n = Naming::for_domain(domain, env);
        let buckets = BucketKind::ALL
            .iter()
            .map(|k| (k.as_str().to_string(), n.bucket(*k)))
            .collect();
        let databases = Layer::ALL
            .iter()
            .map(|l| (l.as_str().to_string(), n.database(*l)))
            .collect();
        let projects = domain
            .projects
            .iter()
            .filter(|p| only_project.is_none_or(|only| p.name.as_str() == only))
            .map(|p| project_names(&n, domain, p))
            .collect();
        NameSheet {
            domain: domain.name.clone(),
            env,
            region: domain.region.clone(),
            buckets,
            databases,
            projects,
        }
    }
}

fn project_names(n: &Naming, domain: &Domain, p: &Project) -> ProjectNames {
    let slug = &p.slug;
    let roles = [
        ("glue", n.glue_role(slug)),
        ("optimizer", n.optimizer_role(slug)),
        ("pipeline", n.pipeline_role(slug)),
        ("scheduler", n.scheduler_role(slug)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let data_prefixes = Layer::ALL
        .iter()
        .map(|l| (l.to_string(), n.data_prefix(slug, *l).s3_uri()))
        .collect();
    let iceberg_warehouses = Layer::ALL
        .iter()
        .filter(|l| l.is_iceberg())
        .map(|l| (l.to_string(), n.warehouse(slug, *l).s3_uri()))
        .collect();
    ProjectNames {
        name: p.name.to_string(),
        slug: slug.to_string(),
        roles,
        data_prefixes,
        iceberg_warehouses,
        glue_temp: n.glue_temp(slug).s3_uri(),
        ssm_prefix: n.ssm_prefix(slug),
        glue_log_group: n.glue_log_group(slug),
        alerts_topic: n.alerts_topic(slug),
        tables: p.tables.iter().map(|t| table_names(n, slug, t)).collect(),
        jobs: p
            .jobs
            .iter()
            .map(|j: &Job| JobNames {
                name: j.name.to_string(),
                glue_job: n.glue_job(slug, &j.name),
            })
            .collect(),
        pipelines: p
            .pipelines
            .iter()
            .map(|pl: &Pipeline| PipelineNames {
                name: pl.name.to_string(),
                state_machine: n.state_machine(slug, &pl.name),
                log_group: n.pipeline_log_group(slug, &pl.name),
                schedule: n.schedule(slug, &pl.name),
            })
            .collect(),
        tags: n.tags(domain, Some(p)),
    }
}

fn table_names(n: &Naming, slug: &ProjectSlug, t: &Table) -> TableNames {
    TableNames {
        name: t.name.to_string(),
        layer: t.layer,
        format: match t.hive() {
            Some(h) => h.file_format.as_str(),
            None => "iceberg",
        },
        database: n.database(t.layer),
        qualified: n.qualified_table(t),
        location: n.table_location(slug, t).s3_uri(),
        ssm_parameter: n.ssm_table_parameter(slug, t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naming(env: Env) -> Naming {
        Naming::new(&DomainAbbr::parse("f01").unwrap(), env)
    }
    fn slug() -> ProjectSlug {
        ProjectSlug::parse("pj01").unwrap()
    }

    #[test]
    fn names_of_the_example_domain() {
        let n = naming(Env::Dev);
        assert_eq!(n.data_bucket(Layer::Raw), "f01-raw-dev");
        assert_eq!(n.bucket(BucketKind::Artifacts), "f01-artifacts-dev");
        assert_eq!(n.database(Layer::Raw), "f01_raw");
        assert_eq!(
            n.glue_job(&slug(), &Name::parse("daily_sales").unwrap()),
            "f01-pj01-daily-sales-dev"
        );
        assert_eq!(
            n.state_machine(&slug(), &Name::parse("main").unwrap()),
            "f01-pj01-pipeline-dev"
        );
        assert_eq!(n.glue_role(&slug()), "f01-glue-pj01-dev");
        assert_eq!(n.optimizer_role(&slug()), "f01-optimizer-pj01-dev");
        assert_eq!(
            n.warehouse(&slug(), Layer::Curated).s3_uri(),
            "s3://f01-curated-dev/pj01/iceberg/"
        );
        assert_eq!(n.data_prefix(&slug(), Layer::Raw).s3_uri(), "s3://f01-raw-dev/pj01/");
        assert_eq!(n.ssm_prefix(&slug()), "/pj01/");
    }

    #[test]
    fn the_partition_comes_from_the_region() {
        for (region, partition) in [
            ("eu-west-1", "aws"),
            ("us-east-1", "aws"),
            ("ap-southeast-2", "aws"),
            ("cn-north-1", "aws-cn"),
            ("cn-northwest-1", "aws-cn"),
            ("us-gov-west-1", "aws-us-gov"),
            ("us-gov-east-1", "aws-us-gov"),
            ("us-iso-east-1", "aws-iso"),
            ("us-isob-east-1", "aws-iso-b"),
            // Prefixes only: a region that merely contains `cn` or `gov` is commercial.
            ("eu-cnx-1", "aws"),
            ("ca-west-1", "aws"),
        ] {
            assert_eq!(aws_partition(region), partition, "{region}");
        }
    }

    #[test]
    fn infrastructure_names() {
        let n = naming(Env::Int);
        let job = Name::parse("daily_sales").unwrap();
        assert_eq!(
            n.job_spec(&slug(), &job).s3_uri(),
            "s3://f01-artifacts-int/jobs/pj01/daily_sales.json"
        );
        assert_eq!(
            n.job_sql(&slug(), &job).s3_uri(),
            "s3://f01-artifacts-int/jobs/pj01/daily_sales.sql"
        );
        assert_eq!(
            n.glue_runner_script().s3_uri(),
            "s3://f01-artifacts-int/runtime/glue_runner.py"
        );
        assert_eq!(n.kms_alias(), "alias/f01-data-int");
        assert_eq!(
            n.pipeline_alarm(&slug(), &Name::parse("main").unwrap()),
            "f01-pj01-pipeline-int-failed"
        );
        assert_eq!(n.database_wildcard(), "f01_*");
        assert_eq!(
            n.access_log_prefix(BucketKind::Data(Layer::Raw)).s3_uri(),
            "s3://f01-access-logs-int/f01-raw-int/"
        );
    }

    #[test]
    fn other_pipelines_keep_their_name() {
        let n = naming(Env::Prod);
        assert_eq!(
            n.state_machine(&slug(), &Name::parse("hourly_refresh").unwrap()),
            "f01-pj01-hourly-refresh-pipeline-prod"
        );
    }

    #[test]
    fn bucket_limits() {
        let k = NameKind::S3Bucket;
        assert!(k.check("f01-raw-dev").is_ok());
        assert!(k.check("ab").is_err());
        assert!(k.check(&"a".repeat(64)).is_err());
        assert!(k.check("xn--abc").is_err());
        assert!(k.check("abc-s3alias").is_err());
        assert!(k.check("Abc").is_err());
        assert!(k.check("abc-").is_err());
    }

    #[test]
    fn other_limits() {
        assert!(NameKind::IamRole.check(&"r".repeat(64)).is_ok());
        assert!(NameKind::IamRole
            .check(&"r".repeat(65))
            .unwrap_err()
            .contains("limit is 64"));
        assert!(NameKind::StateMachine.check(&"s".repeat(81)).is_err());
        assert!(NameKind::GlueJob.check(&"j".repeat(256)).is_err());
        assert!(NameKind::SsmParameter.check("/pj01/tables/raw/x").is_ok());
        assert!(NameKind::SsmParameter.check("/aws/x").is_err());
        assert!(NameKind::SsmParameter.check("pj01/x").is_err());
        assert!(NameKind::GlueDatabase.check("f01-raw").is_err());
    }
}
