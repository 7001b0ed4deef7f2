//! The consumers' part of `mesh check iam` (issue 25 item 4): each consumer account of an
//! environment, as the principal `arn:aws:iam::{account}:root` (what a resource policy grants
//! an account, every principal of that account may get), against the domain's resource
//! policies as rendered: the Glue Data Catalog policy, every bucket policy and the data key's
//! policy (`resource_policies/*.json`, or the inline document of one that shares nothing).
//!
//! A consumer must be able to read each product it was granted (the table and its database
//! in the catalog, the objects under the table's location, listing that location, decrypting
//! through S3 for that bucket) and nothing else: no other table (declared or not, a sibling
//! prefix such as `daily_sales_v2/`, the project's other prefixes, the bucket root), no write,
//! no bucket setting, no other use of the key, no artifact, no SSM parameter. An account that
//! consumes nothing is probed the same way and must get nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use iam_rs::{Arn, Context, ContextValue, Decision, IAMPolicy, IAMRequest, PolicyEvaluator, Principal, PrincipalId};
use mesh_domain::{BucketKind, Domain, Env, Layer, Naming};
use serde_json::Value;

use crate::error::InfraError;
use crate::iam_check::{Expect, Violation};
use crate::policy::{self, Arns};
use crate::sharing;

/// The columns of a consumer row.
pub const COLUMNS: [&str; 3] = ["catalog", "data", "key"];

/// One principal against one table of the domain.
#[derive(Debug, Clone)]
pub struct ConsumerRow {
    /// `444444444444 (m02)`, or `999999999999 (none)` for the outsider.
    pub principal: String,
    /// `f01_curated.daily_sales`, plus ` [product daily_sales v1]` when it is one.
    pub table: String,
    pub cells: Vec<String>,
}

/// The consumer matrix of one environment.
#[derive(Debug, Clone, Default)]
pub struct ConsumerMatrix {
    pub rows: Vec<ConsumerRow>,
}

impl fmt::Display for ConsumerMatrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.rows.iter().map(|r| r.principal.len()).max().unwrap_or(9).max(9);
        let t = self.rows.iter().map(|r| r.table.len()).max().unwrap_or(5).max(5);
        let mut header = format!("  {:w$}  {:t$}", "principal", "table");
        for c in COLUMNS {
            header.push_str(&format!(" {c:>8}"));
        }
        writeln!(f, "{}", header.trim_end())?;
        for r in &self.rows {
            let mut line = format!("  {:w$}  {:t$}", r.principal, r.table);
            for c in &r.cells {
                line.push_str(&format!(" {c:>8}"));
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

struct Probe {
    column: &'static str,
    action: String,
    resource: String,
    context: Vec<(&'static str, String)>,
    expect: Expect,
}

impl Probe {
    fn new(column: &'static str, action: &str, resource: String, expect: Expect) -> Probe {
        Probe {
            column,
            action: action.into(),
            resource,
            context: Vec::new(),
            expect,
        }
    }
    fn with(mut self, key: &'static str, value: String) -> Probe {
        self.context.push((key, value));
        self
    }
}

const CATALOG_WRITES: [&str; 8] = [
    "glue:BatchCreatePartition",
    "glue:BatchDeletePartition",
    "glue:CreatePartition",
    "glue:CreateTable",
    "glue:DeletePartition",
    "glue:DeleteTable",
    "glue:UpdatePartition",
    "glue:UpdateTable",
];

const KEY_OTHER: [&str; 7] = [
    "kms:CreateGrant",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ScheduleKeyDeletion",
];

/// The resource policies of one environment as Terraform deploys them.
struct Policies {
    glue: Option<PolicyEvaluator>,
    buckets: BTreeMap<String, PolicyEvaluator>,
    key: PolicyEvaluator,
}

fn parse(path: &Path, text: &str) -> Result<PolicyEvaluator, InfraError> {
    let parsed = IAMPolicy::from_json(text).map_err(|e| InfraError::BadPolicy {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(PolicyEvaluator::with_policies(vec![parsed]))
}

/// A document that shares products is read from its file (missing: an error with the fix);
/// one that shares nothing is the inline document storage.tf holds.
fn load(
    infra_dir: &Path,
    env: Env,
    file: &str,
    shares: bool,
    inline: &Value,
    what: &str,
) -> Result<PolicyEvaluator, InfraError> {
    let rel = sharing::path(env, file);
    if !shares {
        return parse(&rel, &inline.to_string());
    }
    let path = infra_dir.join(&rel);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(InfraError::MissingResourcePolicy {
            path,
            what: what.into(),
        }),
        Err(e) => Err(InfraError::io(path, e)),
    }
}

fn policies(domain: &Domain, infra_dir: &Path, env: Env, n: &Naming, arns: &Arns) -> Result<Policies, InfraError> {
    // Environments in one account share its catalog, and the first of them renders its policy.
    let owner = sharing::catalog_owner(domain, env);
    let glue = match sharing::glue_policy(domain, owner, arns) {
        Some(doc) => Some(load(
            infra_dir,
            owner,
            sharing::GLUE_CATALOG_FILE,
            true,
            &doc,
            "Glue Data Catalog resource policy",
        )?),
        None => None,
    };
    let mut buckets = BTreeMap::new();
    for kind in BucketKind::ALL {
        let spec = crate::storage::bucket(n, arns, kind);
        let shares = !sharing::bucket_statements(domain, n, arns, kind).is_empty();
        let what = format!("policy of bucket {}", spec.name);
        let ev = load(
            infra_dir,
            env,
            &sharing::bucket_file(&spec.name),
            shares,
            &spec.policy,
            &what,
        )?;
        buckets.insert(spec.name, ev);
    }
    let key = crate::storage::data_key(domain, n, arns);
    let shares = !sharing::key_statements(domain, n, arns).is_empty();
    let key = load(
        infra_dir,
        env,
        sharing::DATA_KEY_FILE,
        shares,
        &key.policy,
        "data key policy",
    )?;
    Ok(Policies { glue, buckets, key })
}

fn evaluate(p: &Policies, principal: &str, probe: &Probe) -> Result<bool, InfraError> {
    let err = |message: String| InfraError::Evaluation {
        action: probe.action.clone(),
        resource: probe.resource.clone(),
        message,
    };
    let arn = Arn::parse(&probe.resource).map_err(|e| err(e.to_string()))?;
    let evaluator = match arn.service.as_str() {
        "glue" => match &p.glue {
            Some(e) => e,
            None => return Ok(false),
        },
        "s3" => {
            let bucket = arn.resource.split('/').next().unwrap_or_default();
            match p.buckets.get(bucket) {
                Some(e) => e,
                None => return Ok(false),
            }
        }
        "kms" => &p.key,
        // No resource policy of the domain covers another service (SSM parameters, jobs): a
        // principal of another account gets nothing there.
        _ => return Ok(false),
    };
    let mut ctx = Context::new();
    // Every request over TLS, unless the probe says otherwise (the buckets deny plain HTTP).
    ctx.insert("aws:SecureTransport".into(), ContextValue::Boolean(true));
    for (k, v) in &probe.context {
        let value = match v.as_str() {
            "true" => ContextValue::Boolean(true),
            "false" => ContextValue::Boolean(false),
            _ => ContextValue::String(v.clone()),
        };
        ctx.insert((*k).into(), value);
    }
    let req = IAMRequest::new_with_context(
        Principal::Aws(PrincipalId::String(principal.to_string())),
        probe.action.clone(),
        arn,
        ctx,
    );
    let result = evaluator.evaluate(&req).map_err(|e| err(e.to_string()))?;
    Ok(result.decision == Decision::Allow)
}

/// The requests of one principal against one table (`granted`: the table is a product this
/// principal consumes) and, once per principal (`first`), against the rest of the domain.
fn table_probes(
    n: &Naming,
    arns: &Arns,
    slug: &mesh_domain::ProjectSlug,
    t: &mesh_domain::Table,
    granted: bool,
) -> Vec<Probe> {
    let ex = |yes: bool| if yes { Expect::Allow } else { Expect::Deny };
    let db = n.database(t.layer);
    let table_arn = arns.glue(&format!("table/{db}/{}", t.name));
    let mut out = vec![
        Probe::new("catalog", "glue:GetTable", table_arn.clone(), ex(granted)),
        Probe::new("catalog", "glue:GetPartitions", table_arn.clone(), ex(granted)),
    ];
    for a in CATALOG_WRITES {
        out.push(Probe::new("catalog", a, table_arn.clone(), Expect::Deny));
    }
    let loc = n.table_location(slug, t);
    let metadata = arns.object(&loc.bucket, &format!("{}metadata/00001-x.metadata.json", loc.key));
    for a in &crate::iam_check::s3_object_actions() {
        let expect = ex(granted && a == "s3:GetObject");
        out.push(Probe::new("data", a, metadata.clone(), expect));
    }
    // Plain HTTP is refused even for what is granted.
    out.push(
        Probe::new("data", "s3:GetObject", metadata.clone(), Expect::Deny).with("aws:SecureTransport", "false".into()),
    );
    out.push(
        Probe::new("data", "s3:ListBucket", arns.bucket(&loc.bucket), ex(granted)).with("s3:prefix", loc.key.clone()),
    );
    out
}

/// What a principal may never reach, whatever it consumes: prefixes beside a product's (a
/// sibling table with the same start, the rest of the warehouse and of the project), the
/// bucket roots and settings, undeclared tables and other databases, writes to databases,
/// the key used any other way, the artifacts bucket and the projects' parameters.
fn domain_probes(domain: &Domain, n: &Naming, arns: &Arns, decrypts: &[String]) -> Vec<Probe> {
    let mut out = Vec::new();
    for s in sharing::shares(domain, n.env()) {
        let loc = s.location(n);
        let sibling = loc.key.trim_end_matches('/').to_string() + "_v2/";
        let warehouse_other = n.warehouse(&s.project.slug, s.table.layer).key + "some_table/";
        let project_other = n.data_prefix(&s.project.slug, s.table.layer).key + "some_table/";
        for key in [sibling, warehouse_other, project_other] {
            out.push(Probe::new(
                "data",
                "s3:GetObject",
                arns.object(&loc.bucket, &format!("{key}part-00000.parquet")),
                Expect::Deny,
            ));
            out.push(
                Probe::new("data", "s3:ListBucket", arns.bucket(&loc.bucket), Expect::Deny).with("s3:prefix", key),
            );
        }
    }
    for kind in BucketKind::ALL {
        let bucket = n.bucket(kind);
        out.push(
            Probe::new("data", "s3:ListBucket", arns.bucket(&bucket), Expect::Deny).with("s3:prefix", String::new()),
        );
        for a in crate::iam_check::s3_bucket_actions()
            .iter()
            .filter(|a| *a != "s3:ListBucket")
        {
            out.push(Probe::new("data", a, arns.bucket(&bucket), Expect::Deny).with("s3:prefix", String::new()));
        }
        let key_arn = arns.kms_keys().replace('*', "data");
        let granted = decrypts.contains(&bucket);
        out.push(
            Probe::new(
                "key",
                "kms:Decrypt",
                key_arn.clone(),
                if granted { Expect::Allow } else { Expect::Deny },
            )
            .with("kms:ViaService", arns.via("s3"))
            .with("kms:EncryptionContext:aws:s3:arn", arns.bucket(&bucket)),
        );
        // The key outside S3 (a direct Decrypt call), or through another service.
        out.push(
            Probe::new("key", "kms:Decrypt", key_arn.clone(), Expect::Deny)
                .with("kms:EncryptionContext:aws:s3:arn", arns.bucket(&bucket)),
        );
        out.push(
            Probe::new("key", "kms:Decrypt", key_arn.clone(), Expect::Deny)
                .with("kms:ViaService", arns.via("sns"))
                .with("kms:EncryptionContext:aws:s3:arn", arns.bucket(&bucket)),
        );
    }
    let key_arn = arns.kms_keys().replace('*', "data");
    for a in KEY_OTHER {
        out.push(Probe::new("key", a, key_arn.clone(), Expect::Deny).with("kms:ViaService", arns.via("s3")));
    }
    let artifacts = n.bucket(BucketKind::Artifacts);
    for key in [n.terraform_state_key(), n.glue_runner_script().key] {
        out.push(Probe::new(
            "data",
            "s3:GetObject",
            arns.object(&artifacts, &key),
            Expect::Deny,
        ));
    }
    for layer in Layer::ALL {
        let db = n.database(layer);
        out.push(Probe::new(
            "catalog",
            "glue:GetTable",
            arns.glue(&format!("table/{db}/some_table")),
            Expect::Deny,
        ));
        for a in ["glue:CreateTable", "glue:DeleteDatabase", "glue:UpdateDatabase"] {
            out.push(Probe::new(
                "catalog",
                a,
                arns.glue(&format!("database/{db}")),
                Expect::Deny,
            ));
        }
    }
    out.push(Probe::new(
        "catalog",
        "glue:GetDatabase",
        arns.glue("database/default"),
        Expect::Deny,
    ));
    out.push(Probe::new(
        "catalog",
        "glue:GetTable",
        arns.glue("table/default/some_table"),
        Expect::Deny,
    ));
    for p in &domain.projects {
        for t in &p.tables {
            out.push(Probe::new(
                "other",
                "ssm:GetParameter",
                arns.ssm_parameter(&n.ssm_table_parameter(&p.slug, t)),
                Expect::Deny,
            ));
        }
    }
    out
}

fn summarize(allowed: &[&Probe], violated: bool) -> String {
    let mut s = String::new();
    let has = |pred: &dyn Fn(&str) -> bool| allowed.iter().any(|p| pred(&p.action));
    if has(&|a| a.starts_with("s3:Get") || a.starts_with("glue:Get") || a == "kms:Decrypt") {
        s.push('r');
    }
    if has(&|a| {
        a.starts_with("s3:Put") || a.starts_with("s3:Delete") || CATALOG_WRITES.contains(&a) || a == "kms:Encrypt"
    }) {
        s.push('w');
    }
    if has(&|a| a == "s3:ListBucket") {
        s.push('l');
    }
    if s.is_empty() {
        s.push('-');
    }
    if violated {
        s.push('!');
    }
    s
}

/// An account id no consumer and no environment of the domain uses: the outsider.
fn outsider(domain: &Domain, consumers: &BTreeMap<String, Vec<String>>) -> String {
    (1..=9u8)
        .rev()
        .map(|d| d.to_string().repeat(12))
        .find(|a| !consumers.contains_key(a) && !domain.accounts.values().any(|x| x == a))
        .expect("nine candidates, fewer taken")
}

/// The consumer matrix of `env`: adds its requests and violations to the counts given.
pub fn check_env(
    domain: &Domain,
    infra_dir: &Path,
    env: Env,
    requests: &mut usize,
    violations: &mut Vec<Violation>,
) -> Result<ConsumerMatrix, InfraError> {
    let n = Naming::for_domain(domain, env);
    let arns = policy::arns(domain, &n)?;
    let p = policies(domain, infra_dir, env, &n, &arns)?;
    let shares = sharing::shares(domain, env);
    let consumers = sharing::consumers(domain, env);
    let mut principals: Vec<(String, String)> = consumers
        .keys()
        .map(|a| {
            let mut domains: Vec<String> = shares
                .iter()
                .flat_map(|s| s.product.consumers.iter())
                .filter(|c| c.accounts.get(&env) == Some(a))
                .map(|c| c.domain.to_string())
                .collect();
            domains.sort();
            domains.dedup();
            (a.clone(), domains.join(", "))
        })
        .collect();
    principals.push((outsider(domain, &consumers), "none".into()));
    let mut matrix = ConsumerMatrix::default();
    for (account, label) in &principals {
        let principal = sharing::root(&arns, account);
        let who = format!("{account} ({label})");
        let granted_tables: Vec<(String, String)> = shares
            .iter()
            .filter(|s| s.accounts.contains(account))
            .map(|s| (s.project.slug.to_string(), s.table.reference().to_string()))
            .collect();
        let decrypts: Vec<String> = shares
            .iter()
            .filter(|s| s.accounts.contains(account))
            .map(|s| s.bucket(&n))
            .collect();
        let mut run = |table: String, probes: Vec<Probe>, matrix: &mut ConsumerMatrix| -> Result<(), InfraError> {
            let mut cells = Vec::new();
            for column in COLUMNS {
                let mut allowed = Vec::new();
                let mut violated = false;
                for probe in probes.iter().filter(|p| p.column == column) {
                    *requests += 1;
                    let ok = evaluate(&p, &principal, probe)?;
                    if ok {
                        allowed.push(probe);
                    }
                    let bad = probe.expect.violated_by(ok);
                    if bad {
                        violated = true;
                        violations.push(Violation {
                            env,
                            role: format!("consumer {principal}"),
                            action: probe.action.clone(),
                            resource: probe.resource.clone(),
                            prefix: probe
                                .context
                                .iter()
                                .find(|(k, _)| *k == "s3:prefix")
                                .map(|(_, v)| v.clone()),
                            allowed: ok,
                        });
                    }
                }
                let any = probes.iter().any(|p| p.column == column);
                cells.push(if any { summarize(&allowed, violated) } else { ".".into() });
            }
            // Requests outside the three columns (SSM) count and are judged, but have no cell.
            for probe in probes.iter().filter(|p| !COLUMNS.contains(&p.column)) {
                *requests += 1;
                let ok = evaluate(&p, &principal, probe)?;
                if ok && probe.expect == Expect::Deny {
                    violations.push(Violation {
                        env,
                        role: format!("consumer {principal}"),
                        action: probe.action.clone(),
                        resource: probe.resource.clone(),
                        prefix: None,
                        allowed: true,
                    });
                }
            }
            matrix.rows.push(ConsumerRow {
                principal: who.clone(),
                table,
                cells,
            });
            Ok(())
        };
        for (proj, t) in domain.tables() {
            let granted = granted_tables
                .iter()
                .any(|(slug, r)| slug == proj.slug.as_str() && *r == t.reference().to_string());
            let mut label = n.qualified_table(t);
            if let Some(product) = proj.products.iter().find(|pr| pr.table == t.reference()) {
                label.push_str(&format!(" [{} v{}]", product.name, product.version));
            }
            run(label, table_probes(&n, &arns, &proj.slug, t, granted), &mut matrix)?;
        }
        run(
            "(rest of the domain)".into(),
            domain_probes(domain, &n, &arns, &decrypts),
            &mut matrix,
        )?;
    }
    Ok(matrix)
}
