//! `mesh check iam`: evaluates the rendered policy files (the bytes Terraform deploys) with a
//! real IAM evaluator (`iam-rs`) against a matrix of requests: for every project's roles and
//! every project's prefixes, what must be allowed and what must be denied.

use std::fmt::{self, Write};
use std::path::Path;
use std::sync::OnceLock;

use iam_rs::{Arn, Context, ContextValue, Decision, IAMPolicy, IAMRequest, PolicyEvaluator, Principal, PrincipalId};
use mesh_domain::{BucketKind, Domain, Env, Layer, Naming, ProjectSlug};

use crate::error::InfraError;
use crate::policy::{self, Arns, Role, RoleKind};
use crate::render::role_policy_path;

/// Every S3 action on objects and on buckets (AWS's service authorization reference, extracted
/// from parliament by tools/extract_s3_actions.py), so a grant of any of them is probed.
#[derive(serde::Deserialize)]
struct S3Actions {
    object: Vec<String>,
    bucket: Vec<String>,
}

fn s3_actions() -> &'static S3Actions {
    static ACTIONS: OnceLock<S3Actions> = OnceLock::new();
    ACTIONS.get_or_init(|| {
        serde_json::from_str(include_str!("../schema/s3_actions.json")).expect("schema/s3_actions.json is valid")
    })
}

/// Every S3 action on objects (the consumer matrix probes them too).
pub fn s3_object_actions() -> Vec<String> {
    s3_actions().object.clone()
}

/// Every S3 action on buckets.
pub fn s3_bucket_actions() -> Vec<String> {
    s3_actions().bucket.clone()
}

const READ: &[&str] = &["s3:GetObject"];
const READ_WRITE: &[&str] = &["s3:DeleteObject", "s3:GetObject", "s3:PutObject"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Allow,
    Deny,
    /// Either is acceptable (e.g. actions a role may have on its own data but does not need).
    Any,
}

impl Expect {
    /// Whether the evaluator's answer (`allowed`) breaks this expectation.
    pub fn violated_by(self, allowed: bool) -> bool {
        match self {
            Expect::Allow => !allowed,
            Expect::Deny => allowed,
            Expect::Any => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Probe {
    pub column: &'static str,
    pub action: String,
    pub resource: String,
    /// `s3:prefix` of a ListBucket request.
    pub prefix: Option<String>,
    pub expect: Expect,
}

/// One evaluated request that did not match its expectation.
#[derive(Debug, Clone)]
pub struct Violation {
    pub env: Env,
    pub role: String,
    pub action: String,
    pub resource: String,
    pub prefix: Option<String>,
    pub allowed: bool,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.allowed {
            "LEAK: allowed"
        } else {
            "MISSING: denied"
        };
        write!(
            f,
            "{} {}: {what} {} on {}",
            self.env, self.role, self.action, self.resource
        )?;
        if let Some(p) = &self.prefix {
            write!(f, " (s3:prefix = {p})")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub role: String,
    pub target: String,
    /// Per column: a summary of what was allowed (`r`, `w`, `l`), `-` for nothing, `!` on a violation.
    pub cells: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub matrices: Vec<(Env, Vec<Row>)>,
    /// Each environment's consumer accounts against the domain's resource policies.
    pub consumers: Vec<(Env, crate::consumer_check::ConsumerMatrix)>,
    pub violations: Vec<Violation>,
    pub requests: usize,
    /// Of `requests`, those of other accounts against the resource policies.
    pub consumer_requests: usize,
}

pub const COLUMNS: [&str; 6] = ["raw", "refined", "curated", "artifacts", "catalog", "orchestration"];

impl Report {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (env, rows) in &self.matrices {
            let w = rows.iter().map(|r| r.role.len()).max().unwrap_or(4).max(4);
            writeln!(
                f,
                "env {env}: r = read, w = write, l = list, x = run, - = denied, ! = violation"
            )?;
            let mut header = format!("  {:w$}  {:8}", "role", "prefixes");
            for c in COLUMNS {
                let _ = write!(header, " {c:>13}");
            }
            writeln!(f, "{}", header.trim_end())?;
            for r in rows {
                let mut line = format!("  {:w$}  {:8}", r.role, r.target);
                for c in &r.cells {
                    let _ = write!(line, " {c:>13}");
                }
                writeln!(f, "{}", line.trim_end())?;
            }
        }
        for (env, m) in &self.consumers {
            writeln!(
                f,
                "env {env}, other accounts (consumers of data products, and one that consumes nothing) against the resource policies: r = read, w = write, l = list, - = denied, . = not probed, ! = violation"
            )?;
            write!(f, "{m}")?;
        }
        for v in &self.violations {
            writeln!(f, "{v}")?;
        }
        write!(
            f,
            "{} requests evaluated ({} of them by other accounts), {} violation(s)",
            self.requests,
            self.consumer_requests,
            self.violations.len()
        )
    }
}

fn object_probes(
    column: &'static str,
    arns: &Arns,
    bucket: &str,
    key: &str,
    allowed: &[&str],
    others: Expect,
) -> Vec<Probe> {
    s3_actions()
        .object
        .iter()
        .map(|a| Probe {
            column,
            action: a.clone(),
            resource: arns.object(bucket, key),
            prefix: None,
            expect: if allowed.contains(&a.as_str()) {
                Expect::Allow
            } else {
                others
            },
        })
        .collect()
}

fn list_probe(column: &'static str, arns: &Arns, bucket: &str, prefix: &str, expect: Expect) -> Probe {
    Probe {
        column,
        action: "s3:ListBucket".into(),
        resource: arns.bucket(bucket),
        prefix: Some(prefix.into()),
        expect,
    }
}

/// Bucket-level actions (policy, ACL, versioning, lifecycle, other listings...): no project role
/// needs any of them; `s3:ListBucket` is probed with prefixes elsewhere.
fn bucket_probes(column: &'static str, arns: &Arns, bucket: &str, prefix: &str) -> Vec<Probe> {
    s3_actions()
        .bucket
        .iter()
        .filter(|a| *a != "s3:ListBucket")
        .map(|a| Probe {
            column,
            action: a.clone(),
            resource: arns.bucket(bucket),
            prefix: a.starts_with("s3:List").then(|| prefix.to_string()),
            expect: Expect::Deny,
        })
        .collect()
}

/// Every catalog action that changes a table: counted as a violation when a role may do it
/// on a table of another project.
const CATALOG_WRITES: [&str; 7] = [
    "glue:BatchCreatePartition",
    "glue:BatchDeletePartition",
    "glue:CreatePartition",
    "glue:CreateTable",
    "glue:DeletePartition",
    "glue:UpdatePartition",
    "glue:UpdateTable",
];

/// The requests for one role of project `owner` against the prefixes of project `target`.
pub fn probes(n: &Naming, arns: &Arns, domain: &Domain, role: &Role, target: &ProjectSlug) -> Vec<Probe> {
    let own = &role.slug == target;
    let mut out = Vec::new();
    for layer in Layer::ALL {
        let col = layer.as_str();
        let p = n.data_prefix(target, layer);
        let key = format!("{}{}", p.key, "some_table/part-00000.parquet");
        let needs = match role.kind {
            RoleKind::Glue => own,
            RoleKind::Optimizer => own && layer.is_iceberg(),
            RoleKind::Pipeline | RoleKind::Scheduler => false,
        };
        let own_other_kind = own && matches!(role.kind, RoleKind::Optimizer);
        let (allowed, others) = if needs {
            (READ_WRITE, Expect::Any)
        } else if own_other_kind {
            (&[][..], Expect::Any)
        } else {
            (&[][..], Expect::Deny)
        };
        out.extend(object_probes(col, arns, &p.bucket, &key, allowed, others));
        let list_expect = if needs {
            Expect::Allow
        } else if own_other_kind {
            Expect::Any
        } else {
            Expect::Deny
        };
        out.push(list_probe(
            col,
            arns,
            &p.bucket,
            &format!("{}some_table/", p.key),
            list_expect,
        ));
        // Listing the bucket root would reveal every project's keys.
        out.push(list_probe(col, arns, &p.bucket, "", Expect::Deny));
        if own {
            out.extend(bucket_probes(col, arns, &p.bucket, &p.key));
        }
    }
    let artifacts = n.bucket(BucketKind::Artifacts);
    let glue = role.kind == RoleKind::Glue;
    let jobs = n.job_artifacts(target);
    let temp = n.glue_temp(target);
    let job_read = if glue && own { READ } else { &[][..] };
    out.extend(object_probes(
        "artifacts",
        arns,
        &artifacts,
        &format!("{}job.json", jobs.key),
        job_read,
        Expect::Deny,
    ));
    let temp_rw = if glue && own { READ_WRITE } else { &[][..] };
    let temp_others = if glue && own { Expect::Any } else { Expect::Deny };
    out.extend(object_probes(
        "artifacts",
        arns,
        &artifacts,
        &format!("{}tmp-1", temp.key),
        temp_rw,
        temp_others,
    ));
    // Shared code is readable by every job and writable by none; the Terraform state by no job.
    let runtime_read = if glue { READ } else { &[][..] };
    out.extend(object_probes(
        "artifacts",
        arns,
        &artifacts,
        &n.glue_runner_script().key,
        runtime_read,
        Expect::Deny,
    ));
    out.extend(object_probes(
        "artifacts",
        arns,
        &artifacts,
        &n.terraform_state_key(),
        &[],
        Expect::Deny,
    ));
    out.push(list_probe(
        "artifacts",
        arns,
        &artifacts,
        &jobs.key,
        if glue && own { Expect::Allow } else { Expect::Deny },
    ));
    out.push(list_probe("artifacts", arns, &artifacts, "", Expect::Deny));
    if own {
        out.extend(bucket_probes("artifacts", arns, &artifacts, &jobs.key));
    }
    // Catalog: databases are domain-wide, so only the domain prefix matters (probed once, own row).
    if own {
        let catalog_role = matches!(role.kind, RoleKind::Glue | RoleKind::Optimizer);
        let abbr = n.abbr();
        for layer in Layer::ALL {
            let db = n.database(layer);
            out.push(Probe {
                column: "catalog",
                action: "glue:GetTable".into(),
                resource: arns.glue(&format!("table/{db}/some_table")),
                prefix: None,
                expect: if catalog_role { Expect::Allow } else { Expect::Deny },
            });
            // A table no project declares: nobody may change it.
            for action in CATALOG_WRITES {
                out.push(Probe {
                    column: "catalog",
                    action: action.into(),
                    resource: arns.glue(&format!("table/{db}/some_table")),
                    prefix: None,
                    expect: Expect::Deny,
                });
            }
        }
        for other in [format!("x{abbr}_raw"), "default".to_string(), format!("{abbr}raw")] {
            for action in ["glue:GetTable", "glue:UpdateTable", "glue:DeleteTable"] {
                out.push(Probe {
                    column: "catalog",
                    action: action.into(),
                    resource: arns.glue(&format!("table/{other}/some_table")),
                    prefix: None,
                    expect: Expect::Deny,
                });
            }
            out.push(Probe {
                column: "catalog",
                action: "glue:GetDatabase".into(),
                resource: arns.glue(&format!("database/{other}")),
                prefix: None,
                expect: Expect::Deny,
            });
        }
        out.push(Probe {
            column: "catalog",
            action: "glue:DeleteDatabase".into(),
            resource: arns.glue(&format!("database/{}", n.database(Layer::Raw))),
            prefix: None,
            expect: Expect::Deny,
        });
    }
    let project = domain
        .projects
        .iter()
        .find(|p| &p.slug == target)
        .expect("target is a project");
    // Catalog rights per table: every table of `target` is readable by catalog roles, and
    // changeable only by the owner's roles (the optimizer: UpdateTable on Iceberg tables).
    let catalog_role = matches!(role.kind, RoleKind::Glue | RoleKind::Optimizer);
    for t in &project.tables {
        let resource = arns.glue(&format!("table/{}/{}", n.database(t.layer), t.name));
        out.push(Probe {
            column: "catalog",
            action: "glue:GetTable".into(),
            resource: resource.clone(),
            prefix: None,
            expect: if catalog_role { Expect::Allow } else { Expect::Deny },
        });
        for action in CATALOG_WRITES {
            let expect = match role.kind {
                _ if !own => Expect::Deny,
                RoleKind::Glue => Expect::Allow,
                RoleKind::Optimizer if action == "glue:UpdateTable" && t.layer.is_iceberg() => Expect::Allow,
                RoleKind::Optimizer => Expect::Any,
                RoleKind::Pipeline | RoleKind::Scheduler => Expect::Deny,
            };
            out.push(Probe {
                column: "catalog",
                action: action.into(),
                resource: resource.clone(),
                prefix: None,
                expect,
            });
        }
        out.push(Probe {
            column: "catalog",
            action: "glue:DeleteTable".into(),
            resource,
            prefix: None,
            expect: Expect::Deny,
        });
    }
    // Other domains' products the project consumes: its Glue role reads exactly them.
    if own {
        out.extend(consumed_probes(n, project, role.kind == RoleKind::Glue));
    }
    // Orchestration: a project's pipeline runs only its own jobs; its schedule only its pipelines.
    for j in &project.jobs {
        out.push(Probe {
            column: "orchestration",
            action: "glue:StartJobRun".into(),
            resource: arns.glue_job(&n.glue_job(target, &j.name)),
            prefix: None,
            expect: if own && role.kind == RoleKind::Pipeline {
                Expect::Allow
            } else {
                Expect::Deny
            },
        });
    }
    for pl in &project.pipelines {
        out.push(Probe {
            column: "orchestration",
            action: "states:StartExecution".into(),
            resource: arns.state_machine(&n.state_machine(target, &pl.name)),
            prefix: None,
            expect: if own && role.kind == RoleKind::Scheduler && pl.schedule.is_some() {
                Expect::Allow
            } else {
                Expect::Deny
            },
        });
    }
    out
}

/// A consuming project's role against its products in the producers' accounts: the Glue role
/// reads the table, its objects and lists its location; nobody writes them or reaches the
/// producer's other tables or a sibling prefix.
fn consumed_probes(n: &Naming, project: &mesh_domain::Project, glue: bool) -> Vec<Probe> {
    let mut out = Vec::new();
    let ex = |yes: bool| if yes { Expect::Allow } else { Expect::Deny };
    for g in crate::sharing::consumed_grants(n, project) {
        let probe = |column: &'static str, action: &str, resource: String, prefix: Option<String>, expect| Probe {
            column,
            action: action.into(),
            resource,
            prefix,
            expect,
        };
        let col = g.layer.as_str();
        let loc = &g.location;
        let object = g
            .producer
            .object(&loc.bucket, &format!("{}metadata/00001-x.metadata.json", loc.key));
        let sibling = g.producer.object(
            &loc.bucket,
            &format!("{}_v2/part-00000.parquet", loc.key.trim_end_matches('/')),
        );
        out.push(probe("catalog", "glue:GetTable", g.catalog[2].clone(), None, ex(glue)));
        out.push(probe(
            "catalog",
            "glue:UpdateTable",
            g.catalog[2].clone(),
            None,
            Expect::Deny,
        ));
        out.push(probe(
            "catalog",
            "glue:GetTable",
            g.sibling_table.clone(),
            None,
            Expect::Deny,
        ));
        out.push(probe(col, "s3:GetObject", object.clone(), None, ex(glue)));
        out.push(probe(col, "s3:PutObject", object, None, Expect::Deny));
        out.push(probe(col, "s3:GetObject", sibling, None, Expect::Deny));
        let bucket = g.producer.bucket(&loc.bucket);
        out.push(probe(
            col,
            "s3:ListBucket",
            bucket.clone(),
            Some(loc.key.clone()),
            ex(glue),
        ));
        out.push(probe(col, "s3:ListBucket", bucket, Some(String::new()), Expect::Deny));
    }
    out
}

fn evaluate(evaluator: &PolicyEvaluator, role_arn: &str, probe: &Probe) -> Result<bool, InfraError> {
    let err = |message: String| InfraError::Evaluation {
        action: probe.action.clone(),
        resource: probe.resource.clone(),
        message,
    };
    let arn = Arn::parse(&probe.resource).map_err(|e| err(e.to_string()))?;
    let mut ctx = Context::new();
    if let Some(p) = &probe.prefix {
        ctx.insert("s3:prefix".into(), ContextValue::String(p.clone()));
    }
    let req = IAMRequest::new_with_context(
        Principal::Aws(PrincipalId::String(role_arn.to_string())),
        probe.action.clone(),
        arn,
        ctx,
    );
    let result = evaluator.evaluate(&req).map_err(|e| err(e.to_string()))?;
    Ok(result.decision == Decision::Allow)
}

fn summarize(allowed: &[&Probe], violated: bool) -> String {
    let mut s = String::new();
    let has = |pred: &dyn Fn(&str) -> bool| allowed.iter().any(|p| pred(&p.action));
    if has(&|a| a.starts_with("s3:Get") || a == "glue:GetTable") {
        s.push('r');
    }
    if has(&|a| a.starts_with("s3:Put") || a.starts_with("s3:Delete") || a == "glue:UpdateTable") {
        s.push('w');
    }
    if has(&|a| a == "s3:ListBucket") {
        s.push('l');
    }
    if has(&|a| a == "glue:StartJobRun" || a == "states:StartExecution") {
        s.push('x');
    }
    if s.is_empty() {
        s.push('-');
    }
    if violated {
        s.push('!');
    }
    s
}

/// The `Allow` statements of a policy as (action patterns, resource patterns), lowercase, when
/// the policy is in the plain form this pre-filter understands (no `NotResource`, `NotAction`
/// or `NotPrincipal`, no policy variables); `None` sends every request to the evaluator.
///
/// A request that no `Allow` statement names (by action and resource) is denied whatever its
/// context (IAM allows only through a matching statement), so it needs no evaluation. Most of
/// the matrix is such requests (every role against every other project's prefixes, every S3
/// action), which made the check grow with the square of the projects.
type Statements = Vec<(Vec<String>, Vec<String>)>;

fn allow_statements(text: &str) -> Option<Statements> {
    use serde_json::Value;
    let v: Value = serde_json::from_str(text).ok()?;
    let statements = match &v["Statement"] {
        Value::Array(a) => a.iter().collect::<Vec<_>>(),
        s @ Value::Object(_) => vec![s],
        _ => return None,
    };
    let strings = |v: &Value| -> Option<Vec<String>> {
        match v {
            Value::String(r) => Some(vec![r.to_lowercase()]),
            Value::Array(a) => a.iter().map(|r| r.as_str().map(str::to_lowercase)).collect(),
            _ => None,
        }
    };
    let mut out = Vec::new();
    for s in statements {
        if ["NotResource", "NotAction", "NotPrincipal"]
            .iter()
            .any(|k| s.get(k).is_some())
        {
            return None;
        }
        if s["Effect"] != "Allow" {
            continue;
        }
        let (actions, resources) = (strings(&s["Action"])?, strings(&s["Resource"])?);
        if resources.iter().any(|r| r.contains("${")) {
            return None;
        }
        out.push((actions, resources));
    }
    Some(out)
}

/// IAM's wildcard match (`*` any run of characters, `?` one), ignoring ASCII case: a pre-filter
/// may match more than IAM does (the evaluator then decides), never less. `pattern` is
/// lowercase already; no allocation (it runs for every request).
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and the text position it has absorbed up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti].to_ascii_lowercase()) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Checks every role of every given environment, reading policies from `infra_dir`
/// (`envs/{env}/policies/{role}.json`).
pub fn check(domain: &Domain, infra_dir: &Path, envs: &[Env]) -> Result<Report, InfraError> {
    check_with(domain, infra_dir, envs, true)
}

/// [`check`], with the pre-filter of requests no `Allow` statement names on or off (off: every
/// request is evaluated; the tests compare both).
pub fn check_with(domain: &Domain, infra_dir: &Path, envs: &[Env], prefilter: bool) -> Result<Report, InfraError> {
    let mut report = Report::default();
    for &env in envs {
        let n = Naming::for_domain(domain, env);
        let arns = policy::arns(domain, &n)?;
        let mut rows = Vec::new();
        for role in policy::roles(domain, &n)? {
            let path = infra_dir.join(role_policy_path(env, &role.name));
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(InfraError::MissingPolicy {
                        path,
                        role: role.name.clone(),
                    })
                }
                Err(e) => return Err(InfraError::io(path, e)),
            };
            let parsed = IAMPolicy::from_json(&text).map_err(|e| InfraError::BadPolicy {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let evaluator = PolicyEvaluator::with_policies(vec![parsed]);
            let allows = if prefilter { allow_statements(&text) } else { None };
            // The statements whose resources name a resource, once per resource (a role's
            // requests repeat each resource for every action).
            let mut by_resource: std::collections::HashMap<String, Vec<usize>> = std::collections::HashMap::new();
            let role_arn = arns.iam(&format!("role/{}", role.name));
            for target in &domain.projects {
                let probes = probes(&n, &arns, domain, &role, &target.slug);
                let mut cells = Vec::new();
                for column in COLUMNS {
                    let mut allowed = Vec::new();
                    let mut violated = false;
                    let mut any = false;
                    for probe in probes.iter().filter(|p| p.column == column) {
                        any = true;
                        report.requests += 1;
                        let is_named = match &allows {
                            Some(statements) => {
                                if !by_resource.contains_key(&probe.resource) {
                                    let matching = (0..statements.len())
                                        .filter(|&i| statements[i].1.iter().any(|p| wildcard_match(p, &probe.resource)))
                                        .collect();
                                    by_resource.insert(probe.resource.clone(), matching);
                                }
                                by_resource[&probe.resource]
                                    .iter()
                                    .any(|&i| statements[i].0.iter().any(|a| wildcard_match(a, &probe.action)))
                            }
                            None => true,
                        };
                        let ok = is_named && evaluate(&evaluator, &role_arn, probe)?;
                        if ok {
                            allowed.push(probe);
                        }
                        let bad = probe.expect.violated_by(ok);
                        if bad {
                            violated = true;
                            report.violations.push(Violation {
                                env,
                                role: role.name.clone(),
                                action: probe.action.clone(),
                                resource: probe.resource.clone(),
                                prefix: probe.prefix.clone(),
                                allowed: ok,
                            });
                        }
                    }
                    cells.push(if any { summarize(&allowed, violated) } else { ".".into() });
                }
                rows.push(Row {
                    role: role.name.clone(),
                    target: target.slug.to_string(),
                    cells,
                });
            }
        }
        report.matrices.push((env, rows));
        let before = report.requests;
        let consumers =
            crate::consumer_check::check_env(domain, infra_dir, env, &mut report.requests, &mut report.violations)?;
        report.consumer_requests += report.requests - before;
        report.consumers.push((env, consumers));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_iam_does_and_never_less() {
        for (p, t, want) in [
            ("arn:aws:s3:::b/pj01/*", "arn:aws:s3:::b/pj01/t/part-0.parquet", true),
            ("arn:aws:s3:::b/pj01/*", "arn:aws:s3:::b/pj02/t/part-0.parquet", false),
            ("arn:aws:s3:::b/pj01/*", "arn:aws:s3:::b/pj01/", true),
            ("arn:aws:s3:::b", "arn:aws:s3:::b/x", false),
            ("arn:aws:s3:::b*", "arn:aws:s3:::b/x", true),
            ("*", "anything", true),
            (
                "arn:aws:glue:*:123:table/f01_*/t?",
                "arn:aws:glue:eu-west-1:123:table/f01_raw/t1",
                true,
            ),
            (
                "arn:aws:glue:*:123:table/f01_*/t?",
                "arn:aws:glue:eu-west-1:123:table/f01_raw/t12",
                false,
            ),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("arn:aws:s3:::b/*", "ARN:AWS:S3:::B/k", true),
            ("", "", true),
            ("", "x", false),
        ] {
            assert_eq!(wildcard_match(p, t), want, "{p} ~ {t}");
        }
    }

    #[test]
    fn policies_the_prefilter_cannot_read_go_to_the_evaluator() {
        let plain = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":["arn:aws:s3:::b/P/*"]},{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;
        assert_eq!(
            allow_statements(plain),
            Some(vec![(
                vec!["s3:getobject".to_string()],
                vec!["arn:aws:s3:::b/p/*".to_string()]
            )])
        );
        for other in [
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","NotResource":"arn:aws:s3:::b/p/*"}]}"#,
            r#"{"Statement":{"Effect":"Allow","NotAction":"s3:*","Resource":"*"}}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}/*"}]}"#,
            "not json",
        ] {
            assert_eq!(allow_statements(other), None, "{other}");
        }
    }
}
