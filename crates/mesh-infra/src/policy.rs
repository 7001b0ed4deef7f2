//! IAM policies as data. Each role's documents are built once here; the renderer writes them
//! byte for byte into `policies/*.json` (which Terraform deploys with `file()`), and
//! `mesh check iam` evaluates those files, so what is checked is what is deployed.

use std::collections::BTreeMap;

use mesh_domain::{BucketKind, Domain, Layer, Naming, Project, ProjectSlug};
use serde::{Deserialize, Serialize};

use crate::error::InfraError;

pub const VERSION: &str = "2012-10-17";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: String,
    pub statement: Vec<Statement>,
}

/// `{"StringLike": {"s3:prefix": ["pj01/*"]}}`
pub type Conditions = BTreeMap<String, BTreeMap<String, Vec<String>>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub sid: String,
    pub effect: Effect,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<BTreeMap<String, String>>,
    pub action: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Conditions::is_empty")]
    pub condition: Conditions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

impl Statement {
    fn allow(sid: &str, actions: &[&str], resources: Vec<String>) -> Statement {
        Statement {
            sid: sid.into(),
            effect: Effect::Allow,
            principal: None,
            action: actions.iter().map(|a| a.to_string()).collect(),
            resource: Some(resources),
            condition: Conditions::new(),
        }
    }
    fn when(mut self, operator: &str, key: &str, values: Vec<String>) -> Statement {
        self.condition
            .entry(operator.into())
            .or_default()
            .insert(key.into(), values);
        self
    }
}

impl PolicyDocument {
    pub fn new(statement: Vec<Statement>) -> PolicyDocument {
        PolicyDocument {
            version: VERSION.into(),
            statement,
        }
    }
    /// The JSON written to `policies/*.json`: pretty, keys in a fixed order.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("policies serialise");
        s.push('\n');
        s
    }
    /// A trust policy for an AWS service, limited to calls made for this account.
    pub fn trust(service: &str, account: &str) -> PolicyDocument {
        PolicyDocument::new(vec![Statement {
            sid: "AssumeFromService".into(),
            effect: Effect::Allow,
            principal: Some(BTreeMap::from([("Service".to_string(), service.to_string())])),
            action: vec!["sts:AssumeRole".into()],
            resource: None,
            condition: Conditions::new(),
        }
        .when("StringEquals", "aws:SourceAccount", vec![account.to_string()])])
    }
}

/// ARNs of one account and region.
#[derive(Debug, Clone)]
pub struct Arns {
    pub region: String,
    pub account: String,
}

impl Arns {
    /// `aws`, `aws-cn`, `aws-us-gov`, …: from the region ([`mesh_domain::naming::aws_partition`]).
    pub fn partition(&self) -> &'static str {
        mesh_domain::naming::aws_partition(&self.region)
    }
    pub fn bucket(&self, bucket: &str) -> String {
        format!("arn:{}:s3:::{bucket}", self.partition())
    }
    /// Every object under a prefix (the prefix ends with `/`).
    pub fn objects(&self, p: &mesh_domain::ObjectPath) -> String {
        format!("arn:{}:s3:::{}/{}*", self.partition(), p.bucket, p.key)
    }
    pub fn object(&self, bucket: &str, key: &str) -> String {
        format!("arn:{}:s3:::{bucket}/{key}", self.partition())
    }
    fn regional(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.partition(),
            self.region,
            self.account
        )
    }
    /// A global IAM ARN of this account: `role/NAME`, `root`, `oidc-provider/…`.
    pub fn iam(&self, resource: &str) -> String {
        format!("arn:{}:iam::{}:{resource}", self.partition(), self.account)
    }
    /// An AWS managed policy: `arn:{partition}:iam::aws:policy/NAME`.
    pub fn managed_policy(&self, name: &str) -> String {
        format!("arn:{}:iam::aws:policy/{name}", self.partition())
    }
    /// A Step Functions service integration: `arn:{partition}:states:::glue:startJobRun.sync`.
    pub fn integration(&self, what: &str) -> String {
        format!("arn:{}:states:::{what}", self.partition())
    }
    pub fn glue(&self, resource: &str) -> String {
        self.regional("glue", resource)
    }
    pub fn glue_job(&self, job: &str) -> String {
        self.glue(&format!("job/{job}"))
    }
    /// SSM parameter ARNs have no slash after `parameter` for hierarchical names (`/a/b`).
    pub fn ssm_parameter(&self, name: &str) -> String {
        self.regional("ssm", &format!("parameter{name}"))
    }
    pub fn log_group(&self, group: &str) -> String {
        self.regional("logs", &format!("log-group:{group}"))
    }
    pub fn sns_topic(&self, topic: &str) -> String {
        self.regional("sns", topic)
    }
    pub fn state_machine(&self, name: &str) -> String {
        self.regional("states", &format!("stateMachine:{name}"))
    }
    pub fn kms_keys(&self) -> String {
        self.regional("kms", "key/*")
    }
    /// A regional service principal; China's regional endpoints end in `.amazonaws.com.cn`.
    pub fn via(&self, service: &str) -> String {
        let suffix = if self.partition() == "aws-cn" { ".cn" } else { "" };
        format!("{service}.{}.amazonaws.com{suffix}", self.region)
    }
}

/// What a role is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleKind {
    Glue,
    Optimizer,
    Pipeline,
    Scheduler,
}

impl RoleKind {
    pub const ALL: [RoleKind; 4] = [
        RoleKind::Glue,
        RoleKind::Optimizer,
        RoleKind::Pipeline,
        RoleKind::Scheduler,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            RoleKind::Glue => "glue",
            RoleKind::Optimizer => "optimizer",
            RoleKind::Pipeline => "pipeline",
            RoleKind::Scheduler => "scheduler",
        }
    }
    pub fn service(self) -> &'static str {
        match self {
            RoleKind::Glue | RoleKind::Optimizer => "glue.amazonaws.com",
            RoleKind::Pipeline => "states.amazonaws.com",
            RoleKind::Scheduler => "scheduler.amazonaws.com",
        }
    }
}

/// One project role: its name, trust policy and permissions policy.
#[derive(Debug, Clone)]
pub struct Role {
    pub kind: RoleKind,
    pub project: String,
    pub slug: ProjectSlug,
    pub name: String,
    pub trust: PolicyDocument,
    pub policy: PolicyDocument,
}

/// The account of an environment, from domain.json's `aws_accounts`.
pub fn account(domain: &Domain, naming: &Naming) -> Result<String, InfraError> {
    domain
        .accounts
        .get(&naming.env())
        .cloned()
        .ok_or(InfraError::MissingAccount { env: naming.env() })
}

pub fn arns(domain: &Domain, naming: &Naming) -> Result<Arns, InfraError> {
    Ok(Arns {
        region: domain.region.clone(),
        account: account(domain, naming)?,
    })
}

/// Every role of every project, in project order then [`RoleKind`] order.
pub fn roles(domain: &Domain, naming: &Naming) -> Result<Vec<Role>, InfraError> {
    let arns = arns(domain, naming)?;
    let mut out = Vec::new();
    for p in &domain.projects {
        // Roles exist only for what the project has: no pipelines, no Step Functions role;
        // no schedule, no scheduler role.
        let kinds = RoleKind::ALL.into_iter().filter(|k| match k {
            RoleKind::Glue | RoleKind::Optimizer => true,
            RoleKind::Pipeline => !p.pipelines.is_empty(),
            RoleKind::Scheduler => p.pipelines.iter().any(|pl| pl.schedule.is_some()),
        });
        for kind in kinds {
            let name = match kind {
                RoleKind::Glue => naming.glue_role(&p.slug),
                RoleKind::Optimizer => naming.optimizer_role(&p.slug),
                RoleKind::Pipeline => naming.pipeline_role(&p.slug),
                RoleKind::Scheduler => naming.scheduler_role(&p.slug),
            };
            let policy = match kind {
                RoleKind::Glue => glue_policy(naming, &arns, p),
                RoleKind::Optimizer => optimizer_policy(naming, &arns, p),
                RoleKind::Pipeline => pipeline_policy(naming, &arns, p),
                RoleKind::Scheduler => scheduler_policy(naming, &arns, p),
            };
            out.push(Role {
                kind,
                project: p.name.to_string(),
                slug: p.slug.clone(),
                name,
                trust: PolicyDocument::trust(kind.service(), &arns.account),
                policy,
            });
        }
    }
    Ok(out)
}

const OBJECT_RW: &[&str] = &[
    "s3:AbortMultipartUpload",
    "s3:DeleteObject",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:ListMultipartUploadParts",
    "s3:PutObject",
];

/// Object access only under the project's prefix of each layer, and listing only that prefix.
fn data_statements(naming: &Naming, arns: &Arns, slug: &ProjectSlug, layers: &[Layer]) -> Vec<Statement> {
    let prefixes: Vec<_> = layers.iter().map(|l| naming.data_prefix(slug, *l)).collect();
    vec![
        Statement::allow(
            "ProjectDataObjects",
            OBJECT_RW,
            prefixes.iter().map(|p| arns.objects(p)).collect(),
        ),
        Statement::allow(
            "ProjectDataList",
            &["s3:ListBucket"],
            prefixes.iter().map(|p| arns.bucket(&p.bucket)).collect(),
        )
        .when("StringLike", "s3:prefix", vec![format!("{}*", prefixes[0].key)]),
    ]
}

/// Reading the catalog is domain-wide: databases are shared, and jobs may read any table.
fn catalog_read(naming: &Naming, arns: &Arns, actions: &[&str]) -> Statement {
    let databases = naming.database_wildcard();
    Statement::allow(
        "DomainCatalogRead",
        actions,
        vec![
            arns.glue("catalog"),
            arns.glue(&format!("database/{databases}")),
            arns.glue(&format!("table/{databases}/*")),
        ],
    )
}

/// Changing the catalog is per table: only the exact tables the project owns (Glue checks the
/// catalog, the database and the table ARN of a table write, so the database ARNs grant
/// nothing beyond these tables). `None` when the project owns no table of `layers`.
fn catalog_write(naming: &Naming, arns: &Arns, p: &Project, layers: &[Layer], actions: &[&str]) -> Option<Statement> {
    let tables: Vec<_> = p.tables.iter().filter(|t| layers.contains(&t.layer)).collect();
    if tables.is_empty() {
        return None;
    }
    let mut resources = vec![arns.glue("catalog")];
    let mut dbs: Vec<String> = tables.iter().map(|t| naming.database(t.layer)).collect();
    dbs.sort();
    dbs.dedup();
    resources.extend(dbs.iter().map(|db| arns.glue(&format!("database/{db}"))));
    resources.extend(
        tables
            .iter()
            .map(|t| arns.glue(&format!("table/{}/{}", naming.database(t.layer), t.name))),
    );
    Some(Statement::allow("ProjectTablesWrite", actions, resources))
}

fn kms_via(arns: &Arns, sid: &str, services: &[&str]) -> Statement {
    Statement::allow(sid, &["kms:Decrypt", "kms:GenerateDataKey"], vec![arns.kms_keys()]).when(
        "StringEquals",
        "kms:ViaService",
        services.iter().map(|s| arns.via(s)).collect(),
    )
}

fn glue_policy(naming: &Naming, arns: &Arns, p: &Project) -> PolicyDocument {
    let slug = &p.slug;
    let mut st = data_statements(naming, arns, slug, &Layer::ALL);
    let temp = naming.glue_temp(slug);
    let jobs = naming.job_artifacts(slug);
    let runtime = naming.runtime_artifacts();
    let artifacts = naming.bucket(BucketKind::Artifacts);
    st.push(Statement::allow(
        "ArtifactsRead",
        &["s3:GetObject"],
        vec![arns.objects(&runtime), arns.objects(&jobs), arns.objects(&temp)],
    ));
    st.push(
        Statement::allow("ArtifactsList", &["s3:ListBucket"], vec![arns.bucket(&artifacts)]).when(
            "StringLike",
            "s3:prefix",
            vec![
                format!("{}*", jobs.key),
                format!("{}*", temp.key),
                format!("{}*", runtime.key),
            ],
        ),
    );
    st.push(Statement::allow(
        "GlueTempWrite",
        &["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:PutObject"],
        vec![arns.objects(&temp)],
    ));
    st.push(catalog_read(
        naming,
        arns,
        &[
            "glue:BatchGetPartition",
            "glue:GetDatabase",
            "glue:GetDatabases",
            "glue:GetPartition",
            "glue:GetPartitions",
            "glue:GetTable",
            "glue:GetTables",
        ],
    ));
    st.extend(catalog_write(
        naming,
        arns,
        p,
        &Layer::ALL,
        &[
            "glue:BatchCreatePartition",
            "glue:BatchDeletePartition",
            "glue:CreatePartition",
            "glue:CreateTable",
            "glue:DeletePartition",
            "glue:UpdatePartition",
            "glue:UpdateTable",
        ],
    ));
    let ssm = naming.ssm_prefix(slug);
    st.push(Statement::allow(
        "ProjectParameters",
        &["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
        vec![
            arns.ssm_parameter(ssm.trim_end_matches('/')),
            arns.ssm_parameter(&format!("{ssm}*")),
        ],
    ));
    // Glue writes driver output to its two fixed groups whatever the job's own group is.
    st.push(Statement::allow(
        "JobLogs",
        &["logs:CreateLogStream", "logs:PutLogEvents"],
        vec![
            format!("{}:*", arns.log_group(&naming.glue_log_group(slug))),
            format!("{}:*", arns.log_group("/aws-glue/jobs/error")),
            format!("{}:*", arns.log_group("/aws-glue/jobs/output")),
        ],
    ));
    st.push(kms_via(arns, "DataKeyViaS3", &["s3"]));
    // Other domains' products the project consumes, in their producers' accounts.
    st.extend(crate::sharing::consumed_statements(naming, p));
    // PutMetricData has no resource-level permissions; the namespace condition limits it.
    st.push(
        Statement::allow("JobMetrics", &["cloudwatch:PutMetricData"], vec!["*".into()]).when(
            "StringEquals",
            "cloudwatch:namespace",
            vec!["Glue".into()],
        ),
    );
    PolicyDocument::new(st)
}

fn optimizer_policy(naming: &Naming, arns: &Arns, p: &Project) -> PolicyDocument {
    let iceberg: Vec<Layer> = Layer::ALL.into_iter().filter(|l| l.is_iceberg()).collect();
    let mut st = data_statements(naming, arns, &p.slug, &iceberg);
    st.push(catalog_read(
        naming,
        arns,
        &["glue:GetDatabase", "glue:GetTable", "glue:GetTables"],
    ));
    st.extend(catalog_write(naming, arns, p, &iceberg, &["glue:UpdateTable"]));
    // The fixed log groups the managed Iceberg optimizers write to.
    st.push(Statement::allow(
        "OptimizerLogs",
        &["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
        vec![
            format!("{}:*", arns.log_group("/aws-glue/iceberg-compaction/logs")),
            format!("{}:*", arns.log_group("/aws-glue/iceberg-orphan-file-deletion/logs")),
            format!("{}:*", arns.log_group("/aws-glue/iceberg-retention/logs")),
        ],
    ));
    st.push(kms_via(arns, "DataKeyViaS3", &["s3"]));
    PolicyDocument::new(st)
}

fn pipeline_policy(naming: &Naming, arns: &Arns, p: &Project) -> PolicyDocument {
    let mut jobs: Vec<String> = p
        .jobs
        .iter()
        .map(|j| arns.glue_job(&naming.glue_job(&p.slug, &j.name)))
        .collect();
    if !p.optimized_tables().is_empty() {
        jobs.push(arns.glue_job(&naming.maintenance_glue_job(&p.slug)));
    }
    let mut st = Vec::new();
    if !jobs.is_empty() {
        st.push(Statement::allow(
            "ProjectJobs",
            &[
                "glue:BatchStopJobRun",
                "glue:GetJobRun",
                "glue:GetJobRuns",
                "glue:StartJobRun",
            ],
            jobs,
        ));
    }
    st.push(Statement::allow(
        "Alerts",
        &["sns:Publish"],
        vec![arns.sns_topic(&naming.alerts_topic(&p.slug))],
    ));
    st.push(kms_via(arns, "AlertsKeyViaSns", &["sns"]));
    // CloudWatch Logs delivery and X-Ray actions have no resource-level permissions.
    st.push(Statement::allow(
        "LogDelivery",
        &[
            "logs:CreateLogDelivery",
            "logs:DeleteLogDelivery",
            "logs:DescribeLogGroups",
            "logs:DescribeResourcePolicies",
            "logs:GetLogDelivery",
            "logs:ListLogDeliveries",
            "logs:PutResourcePolicy",
            "logs:UpdateLogDelivery",
        ],
        vec!["*".into()],
    ));
    st.push(Statement::allow(
        "Tracing",
        &[
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
            "xray:PutTelemetryRecords",
            "xray:PutTraceSegments",
        ],
        vec!["*".into()],
    ));
    PolicyDocument::new(st)
}

fn scheduler_policy(naming: &Naming, arns: &Arns, p: &Project) -> PolicyDocument {
    let machines: Vec<String> = p
        .pipelines
        .iter()
        .filter(|pl| pl.schedule.is_some())
        .map(|pl| arns.state_machine(&naming.state_machine(&p.slug, &pl.name)))
        .collect();
    PolicyDocument::new(vec![Statement::allow(
        "StartPipelines",
        &["states:StartExecution"],
        machines,
    )])
}
