//! What `storage.tf` declares about the data key and each bucket, as data. [`crate::render`]
//! writes it as Terraform; [`crate::bootstrap`] applies the same settings over the AWS APIs to
//! the one bucket that must exist before Terraform can run (it holds Terraform's state). One
//! source, so the bucket bootstrap creates is the bucket Terraform then adopts unchanged.

use mesh_domain::{BucketKind, Domain, Naming};
use serde_json::{json, Value};

use crate::policy::{self, Arns};

/// Noncurrent object versions are kept this long, then expire.
pub const NONCURRENT_DAYS: i64 = 90;
pub const ABORT_MULTIPART_DAYS: i64 = 7;
/// The id of the one lifecycle rule every bucket has.
pub const LIFECYCLE_RULE_ID: &str = "expire-noncurrent-and-abort-uploads";
/// A deleted key can be recovered this long (AWS allows 7–30 days).
pub const KEY_DELETION_WINDOW_DAYS: i64 = 30;

/// The domain's KMS key for data, logs and alerts of one environment.
#[derive(Debug, Clone, PartialEq)]
pub struct DataKey {
    pub description: String,
    /// `alias/{abbr}-data-{env}`: how bootstrap finds the key again.
    pub alias: String,
    pub policy: Value,
    /// Always on: yearly rotation of the key material.
    pub rotation: bool,
}

/// How a bucket encrypts objects at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// SSE-KMS with the domain's data key and an S3 bucket key (fewer KMS calls).
    DataKey,
    /// SSE-S3 (AES256): S3 server access logs cannot be delivered to an SSE-KMS bucket.
    S3Managed,
}

/// One bucket's settings. Versioning and a full public-access block are on for every bucket,
/// so they are not fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    pub kind: BucketKind,
    pub name: String,
    pub encryption: Encryption,
    /// Deny every request without TLS (and, for access logs, let S3 logging deliver).
    pub policy: Value,
    /// Where S3 writes this bucket's access logs (`None` for the access-logs bucket itself).
    pub access_log_prefix: Option<String>,
}

impl Bucket {
    pub fn bucket_key_enabled(&self) -> bool {
        self.encryption == Encryption::DataKey
    }
}

pub fn data_key(domain: &Domain, n: &Naming, a: &Arns) -> DataKey {
    let root = a.iam("root");
    let policy = json!({
        "Version": policy::VERSION,
        "Statement": [
            {
                "Sid": "AccountAdministers",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "LogsEncrypt",
                "Effect": "Allow",
                "Principal": {"Service": a.via("logs")},
                "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
                "Resource": "*",
                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": a.log_group("*")}},
            },
            {
                "Sid": "AlarmsPublishToAlerts",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": a.account}},
            },
        ],
    });
    let mut policy = policy;
    // Consumers of shared products decrypt through S3 (crate::sharing).
    let shared = crate::sharing::key_statements(domain, n, a);
    policy["Statement"].as_array_mut().expect("statements").extend(shared);
    DataKey {
        description: format!("{} data, logs and alerts ({})", domain.name, n.env()),
        alias: n.kms_alias(),
        policy,
        rotation: true,
    }
}

pub fn bucket(n: &Naming, a: &Arns, kind: BucketKind) -> Bucket {
    let name = n.bucket(kind);
    let logs = kind == BucketKind::AccessLogs;
    let arn = a.bucket(&name);
    let mut statements = vec![json!({
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, format!("{arn}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    })];
    if logs {
        statements.push(json!({
            "Sid": "ServerAccessLogsDelivery",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": format!("{arn}/*"),
            "Condition": {"StringEquals": {"aws:SourceAccount": a.account}},
        }));
    }
    Bucket {
        kind,
        encryption: if logs {
            Encryption::S3Managed
        } else {
            Encryption::DataKey
        },
        policy: json!({"Version": policy::VERSION, "Statement": statements}),
        access_log_prefix: (!logs).then(|| n.access_log_prefix(kind).key),
        name,
    }
}
