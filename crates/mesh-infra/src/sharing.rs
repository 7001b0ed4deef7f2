//! Sharing data products with other AWS accounts (issue 25 item 4): what the producer's
//! resource policies grant each consumer account, as data. [`crate::render`] writes the
//! documents into `envs/{env}/resource_policies/` (loaded with `file()`), and
//! `mesh check iam` ([`crate::consumer_check`]) evaluates those files, so what is checked is
//! what is deployed.
//!
//! A product is shared with Glue and S3 resource policies, not Lake Formation: meshkit's
//! access model is IAM and resource policies throughout (project roles, bucket policies, the
//! key policy), and a table shared this way is read by the consumer with the same APIs and
//! the same kind of grants as its own tables. Three documents of the producer's account
//! grant a consumer account read access to exactly the product's table:
//!
//! - the Glue Data Catalog resource policy (one per account and region, so every product's
//!   statements are in one document): `glue:GetTable`, `GetTables`, `GetDatabase`,
//!   `GetPartitions` on the catalog, the table's database and the table, by exact ARN;
//! - the bucket policy of the table's layer: `s3:GetObject` under the table's location
//!   (`{slug}/iceberg/{table}/`, with the trailing slash, so `daily_sales_v2/` is not
//!   included) and `s3:ListBucket` with an `s3:prefix` condition on that location;
//! - the data key's policy: `kms:Decrypt` only through S3 (`kms:ViaService`) and only for
//!   objects of the product's bucket (the encryption context of an S3 bucket key is the
//!   bucket's ARN), since every data bucket is SSE-KMS with the domain's key.
//!
//! The consumer account still needs its own IAM to allow the same requests (cross-account
//! access needs both sides); its principals get nothing of the domain beyond these grants.

use std::collections::{BTreeMap, BTreeSet};

use mesh_domain::{BucketKind, Domain, Env, Naming, Product, Project, Table};
use serde_json::{json, Value};

use crate::policy::{self, Arns};

/// The Glue actions a consumer needs to read an Iceberg table through the catalog: the table
/// (its metadata location), its database, listing it, and partitions (Hive readers ask).
pub const GLUE_READ: [&str; 4] = [
    "glue:GetDatabase",
    "glue:GetPartitions",
    "glue:GetTable",
    "glue:GetTables",
];

/// Where the resource policies of an environment root are written.
pub const DIR: &str = "resource_policies";
/// The Glue Data Catalog resource policy.
pub const GLUE_CATALOG_FILE: &str = "glue-catalog.json";
/// The data key's policy (only when a product is shared).
pub const DATA_KEY_FILE: &str = "kms-data-key.json";

/// AWS's size limit of a Glue Data Catalog resource policy (bytes).
pub const GLUE_POLICY_LIMIT: usize = 10_240;
/// AWS's size limit of an S3 bucket policy (bytes).
pub const BUCKET_POLICY_LIMIT: usize = 20_480;

/// The file of a bucket's policy when a product in it is shared.
pub fn bucket_file(bucket: &str) -> String {
    format!("s3-{bucket}.json")
}

/// A resource policy file, relative to the output folder.
pub fn path(env: Env, file: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("envs/{env}/{DIR}/{file}"))
}

/// One product shared in one environment.
#[derive(Debug, Clone)]
pub struct Share<'a> {
    pub project: &'a Project,
    pub product: &'a Product,
    pub table: &'a Table,
    /// The consumers' accounts in this environment, sorted, each once.
    pub accounts: Vec<String>,
}

impl Share<'_> {
    /// `DailySalesV1`: statement ids are letters and digits only.
    pub fn sid(&self, what: &str) -> String {
        let camel: String = self
            .product
            .name
            .as_str()
            .split('_')
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect();
        format!("Product{camel}V{}{what}", self.product.version)
    }

    pub fn location(&self, n: &Naming) -> mesh_domain::ObjectPath {
        n.table_location(&self.project.slug, self.table)
    }

    pub fn bucket(&self, n: &Naming) -> String {
        n.data_bucket(self.table.layer)
    }

    fn principal(&self, arns: &Arns) -> Value {
        json!({"AWS": self.accounts.iter().map(|a| root(arns, a)).collect::<Vec<_>>()})
    }
}

/// The root principal of an account: every principal of that account its own IAM allows.
pub fn root(arns: &Arns, account: &str) -> String {
    format!("arn:{}:iam::{account}:root", arns.partition())
}

/// Every product with at least one consumer account in `env`, in manifest order.
pub fn shares(domain: &Domain, env: Env) -> Vec<Share<'_>> {
    domain
        .products()
        .filter_map(|(project, product, table)| {
            let accounts: BTreeSet<String> = product
                .consumers
                .iter()
                .filter_map(|c| c.accounts.get(&env).cloned())
                .collect();
            (!accounts.is_empty()).then(|| Share {
                project,
                product,
                table,
                accounts: accounts.into_iter().collect(),
            })
        })
        .collect()
}

/// The environments whose Glue catalog is this environment's: those with the same account
/// (databases are named alike in every environment, so they share the catalog too).
fn same_catalog(domain: &Domain, env: Env) -> Vec<Env> {
    let account = domain.accounts.get(&env);
    Env::CLOUD
        .into_iter()
        .filter(|e| account.is_some() && domain.accounts.get(e) == account)
        .collect()
}

/// The environment whose root renders the catalog policy `env` uses: the first with the same
/// account.
pub fn catalog_owner(domain: &Domain, env: Env) -> Env {
    same_catalog(domain, env).first().copied().unwrap_or(env)
}

/// The Glue Data Catalog resource policy of `env`'s account, or `None` when no product is
/// shared there, or when an earlier environment in the same account owns the policy (one
/// policy per account and region: it then holds the statements of both environments).
pub fn glue_policy(domain: &Domain, env: Env, arns: &Arns) -> Option<Value> {
    let envs = same_catalog(domain, env);
    if envs.first().is_some_and(|first| *first != env) {
        return None;
    }
    let n = Naming::for_domain(domain, env);
    // One statement per product, its principals the consumers of every environment here.
    let mut by_product: BTreeMap<String, Share<'_>> = BTreeMap::new();
    for e in envs {
        for s in shares(domain, e) {
            match by_product.get_mut(s.product.name.as_str()) {
                Some(existing) => {
                    existing.accounts.extend(s.accounts);
                    existing.accounts.sort();
                    existing.accounts.dedup();
                }
                None => {
                    by_product.insert(s.product.name.to_string(), s);
                }
            }
        }
    }
    if by_product.is_empty() {
        return None;
    }
    let statements: Vec<Value> = by_product
        .values()
        .map(|s| {
            let db = n.database(s.table.layer);
            json!({
                "Sid": s.sid("Catalog"),
                "Effect": "Allow",
                "Principal": s.principal(arns),
                "Action": GLUE_READ,
                "Resource": [
                    arns.glue("catalog"),
                    arns.glue(&format!("database/{db}")),
                    arns.glue(&format!("table/{db}/{}", s.table.name)),
                ],
            })
        })
        .collect();
    Some(json!({"Version": policy::VERSION, "Statement": statements}))
}

/// The statements a bucket's policy gets for the products stored in it (none for a bucket
/// that holds no shared product).
pub fn bucket_statements(domain: &Domain, n: &Naming, arns: &Arns, kind: BucketKind) -> Vec<Value> {
    let bucket = n.bucket(kind);
    let mut out = Vec::new();
    for s in shares(domain, n.env()) {
        if s.bucket(n) != bucket {
            continue;
        }
        let location = s.location(n);
        out.push(json!({
            "Sid": s.sid("Objects"),
            "Effect": "Allow",
            "Principal": s.principal(arns),
            "Action": "s3:GetObject",
            "Resource": arns.objects(&location),
        }));
        out.push(json!({
            "Sid": s.sid("List"),
            "Effect": "Allow",
            "Principal": s.principal(arns),
            "Action": "s3:ListBucket",
            "Resource": arns.bucket(&bucket),
            "Condition": {"StringLike": {"s3:prefix": [format!("{}*", location.key)]}},
        }));
    }
    out
}

/// The data key's statements for shared products: each product's consumers may decrypt, only
/// through S3 and only objects of the product's bucket. S3 asks KMS only for an object the
/// bucket policy lets the caller read, so the bucket policy decides which objects.
pub fn key_statements(domain: &Domain, n: &Naming, arns: &Arns) -> Vec<Value> {
    shares(domain, n.env())
        .iter()
        .map(|s| {
            json!({
                "Sid": s.sid("DecryptViaS3"),
                "Effect": "Allow",
                "Principal": s.principal(arns),
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {
                    "kms:ViaService": arns.via("s3"),
                    "kms:EncryptionContext:aws:s3:arn": arns.bucket(&s.bucket(n)),
                }},
            })
        })
        .collect()
}

/// What a consuming project's Glue role may read of one product of another domain in one
/// environment (the producer's side grants the same to the account: [`glue_policy`] etc.).
#[derive(Debug, Clone)]
pub struct ConsumedGrant {
    /// `ConsumedF01DailySalesV1`.
    pub sid: String,
    pub layer: mesh_domain::Layer,
    /// The producer's catalog, database and table.
    pub catalog: [String; 3],
    /// A table of the same database the grant must not reach.
    pub sibling_table: String,
    pub location: mesh_domain::ObjectPath,
    pub producer: Arns,
}

/// The grants of project `p`'s consumed products in `n`'s environment: those pulled
/// (`products.lock.json` says where the table is) with a producer account in that environment.
pub fn consumed_grants(n: &Naming, p: &Project) -> Vec<ConsumedGrant> {
    let env = n.env();
    let mut out = Vec::new();
    for c in &p.consumes {
        let Some(shared) = c.shared_table(env) else {
            continue;
        };
        let producer = Arns {
            region: shared.region.clone(),
            account: shared.account.clone(),
        };
        let (db, table) = (&shared.database, &shared.table);
        let camel: String = format!("{}_{}", c.producer, c.product)
            .split('_')
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut ch = w.chars();
                ch.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + ch.as_str())
                    .unwrap_or_default()
            })
            .collect();
        out.push(ConsumedGrant {
            sid: format!("Consumed{camel}V{}", c.version),
            layer: shared.layer,
            catalog: [
                producer.glue("catalog"),
                producer.glue(&format!("database/{db}")),
                producer.glue(&format!("table/{db}/{table}")),
            ],
            sibling_table: producer.glue(&format!("table/{db}/some_table")),
            location: shared.location.clone(),
            producer,
        });
    }
    out
}

/// The statements of a consuming project's Glue role: read the products it consumes through
/// their producers' catalogs, objects and keys (only through S3).
pub fn consumed_statements(n: &Naming, p: &Project) -> Vec<policy::Statement> {
    let mut out = Vec::new();
    for g in consumed_grants(n, p) {
        let allow = |sid: String, actions: &[&str], resources: Vec<String>| policy::Statement {
            sid,
            effect: policy::Effect::Allow,
            principal: None,
            action: actions.iter().map(|a| a.to_string()).collect(),
            resource: Some(resources),
            condition: policy::Conditions::new(),
        };
        out.push(allow(format!("{}Catalog", g.sid), &GLUE_READ, g.catalog.to_vec()));
        out.push(allow(
            format!("{}Objects", g.sid),
            &["s3:GetObject"],
            vec![g.producer.objects(&g.location)],
        ));
        let mut list = allow(
            format!("{}List", g.sid),
            &["s3:ListBucket"],
            vec![g.producer.bucket(&g.location.bucket)],
        );
        list.condition.insert(
            "StringLike".into(),
            BTreeMap::from([("s3:prefix".to_string(), vec![format!("{}*", g.location.key)])]),
        );
        out.push(list);
        let mut key = allow(format!("{}Key", g.sid), &["kms:Decrypt"], vec![g.producer.kms_keys()]);
        key.condition.insert(
            "StringEquals".into(),
            BTreeMap::from([("kms:ViaService".to_string(), vec![g.producer.via("s3")])]),
        );
        out.push(key);
    }
    out
}

/// A policy document as written to `resource_policies/`: pretty, keys sorted, newline-ended.
pub fn to_file(doc: &Value) -> String {
    let mut s = serde_json::to_string_pretty(doc).expect("policies serialise");
    s.push('\n');
    s
}

/// The consumer accounts of `env` with the products each may read (product names), sorted.
pub fn consumers(domain: &Domain, env: Env) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in shares(domain, env) {
        for a in &s.accounts {
            out.entry(a.clone()).or_default().push(s.product.name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_ids_are_letters_and_digits() {
        let d = mesh_domain::load_domain(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")))
            .expect("the example domain loads");
        let s = &shares(&d, Env::Dev)[0];
        assert_eq!(s.sid("Objects"), "ProductDailySalesV1Objects");
    }
}
