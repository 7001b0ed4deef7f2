//! `mesh bootstrap --env ENV`: what must exist in an account before `terraform init` can run.
//!
//! Terraform keeps its state in the artifacts bucket, which Terraform itself declares
//! (`storage.tf`), encrypted with the data key it also declares. Bootstrap creates exactly those
//! two (settings from [`crate::storage`], the source `storage.tf` is rendered from), then
//! Terraform adopts them with `terraform import`. Every step reads the current state first and
//! changes only what differs, so a re-run is safe and reports `unchanged`.
//!
//! What bootstrap leaves to the first `terraform apply`: the other buckets, and the artifacts
//! bucket's access logging (its target, the access-logs bucket, does not exist yet).

use std::collections::BTreeMap;
use std::fmt;

use aws_sdk_kms::types::KeyState;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketLocationConstraint, BucketVersioningStatus,
    CreateBucketConfiguration, ExpirationStatus, LifecycleRule, LifecycleRuleFilter, NoncurrentVersionExpiration,
    PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, Tag, Tagging, VersioningConfiguration,
};
use mesh_domain::{BucketKind, Domain, Env, Naming};
use serde::Serialize;

use crate::policy;
use crate::render::bucket_local;
use crate::storage::{self, Bucket, DataKey, Encryption};

/// Everything bootstrap will make true, derived from the model alone.
#[derive(Debug, Clone)]
pub struct Plan {
    pub env: Env,
    pub account: String,
    pub region: String,
    pub key: DataKey,
    pub bucket: Bucket,
    pub tags: BTreeMap<String, String>,
    /// The Terraform root that adopts what bootstrap creates: `infra/envs/{env}`.
    pub terraform_root: String,
}

pub fn plan(domain: &Domain, env: Env) -> Result<Plan, crate::InfraError> {
    if !env.is_cloud() {
        return Err(crate::InfraError::NotCloud { env });
    }
    let n = Naming::for_domain(domain, env);
    let arns = policy::arns(domain, &n)?;
    Ok(Plan {
        env,
        account: arns.account.clone(),
        region: domain.region.clone(),
        key: storage::data_key(domain, &n, &arns),
        bucket: storage::bucket(&n, &arns, BucketKind::Artifacts),
        tags: n.tags(domain, None),
        terraform_root: format!("infra/envs/{env}"),
    })
}

/// What one step found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    /// `--dry-run`: this would be created or changed.
    WouldChange,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::WouldChange => "would change",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub what: String,
    pub outcome: Outcome,
}

/// A `terraform import ADDRESS ID` that makes Terraform adopt what bootstrap made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Import {
    pub address: String,
    pub id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub env: Env,
    pub account: String,
    pub bucket: String,
    /// `None` on a dry run where the key does not exist yet.
    pub key_arn: Option<String>,
    pub steps: Vec<Step>,
    /// In order; the key's import needs its id, known once it exists.
    pub imports: Vec<Import>,
}

/// The Terraform addresses bootstrap's resources have in `storage.tf`, with their import ids.
pub fn imports(plan: &Plan, key_id: &str) -> Vec<Import> {
    let l = bucket_local(BucketKind::Artifacts);
    let mut out = vec![
        Import {
            address: "aws_kms_key.data".into(),
            id: key_id.into(),
        },
        Import {
            address: "aws_kms_alias.data".into(),
            id: plan.key.alias.clone(),
        },
    ];
    for kind in [
        "aws_s3_bucket",
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_lifecycle_configuration",
        "aws_s3_bucket_policy",
    ] {
        out.push(Import {
            address: format!("{kind}.{l}"),
            id: plan.bucket.name.clone(),
        });
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(
        "the AWS credentials are for account {actual}, but domain.json says `{env}` is account {expected}; \
         use credentials of account {expected} (AWS_PROFILE, or assume a role there), or fix aws_accounts.{env} in domain.json"
    )]
    WrongAccount { env: Env, expected: String, actual: String },
    #[error("the bucket `{bucket}` exists but belongs to another account (S3 answered 403); bucket names are global: pick another domain_abbr, or use the account that owns it")]
    BucketOfAnotherAccount { bucket: String },
    #[error("the data key `{alias}` ({key_id}) is {state}; cancel its deletion (`aws kms cancel-key-deletion --key-id {key_id}`, then `aws kms enable-key`) and run bootstrap again")]
    KeyUnusable {
        alias: String,
        key_id: String,
        state: String,
    },
    #[error("`{program}` could not be started ({message}); install Terraform {version} (or put it on PATH), or run the printed import commands by hand")]
    TerraformMissing {
        program: String,
        version: String,
        message: String,
    },
    #[error("`{command}` failed ({status}):\n{output}\n  help: fix what Terraform reports, then run `mesh bootstrap --import` again: imports already done are skipped")]
    TerraformFailed {
        command: String,
        status: String,
        output: String,
    },
    #[error("{dir}: no rendered Terraform root here; run `mesh render` first (it writes infra/envs/<env>)")]
    NoTerraformRoot { dir: String },
    /// A read bootstrap needs to compare failed: never taken for "absent" (which a dry run
    /// would report as "would change" and a real run would try to overwrite).
    #[error("cannot read {what} of `{resource}`: {action} failed: {message}\n  help: the credentials need the IAM permission `{permission}` on `{resource}`; nothing was changed from this point on")]
    ReadFailed {
        what: &'static str,
        resource: String,
        action: &'static str,
        permission: &'static str,
        message: String,
    },
    /// `CreateAlias` failed after `CreateKey`: the new key was scheduled for deletion (or, if
    /// that failed too, the error says how to adopt or delete it).
    #[error("kms:CreateAlias `{alias}` failed after kms:CreateKey made key {key_id}: {message}\n  {cleanup}")]
    AliasFailed {
        alias: String,
        key_id: String,
        message: String,
        cleanup: String,
    },
    #[error("{action} on `{resource}` failed: {message}")]
    Aws {
        action: &'static str,
        resource: String,
        message: String,
    },
}

fn aws<'a, E: std::error::Error>(action: &'static str, resource: &'a str) -> impl FnOnce(E) -> BootstrapError + 'a {
    move |e| BootstrapError::Aws {
        action,
        resource: resource.to_string(),
        message: error_text(&e),
    }
}

/// A read whose "not configured" answers (`absent`: error codes such as `NoSuchBucketPolicy`)
/// mean `None`; any other failure (AccessDenied, throttling, network) is an error naming the
/// IAM permission the read needs.
fn read<T, E>(
    result: Result<T, E>,
    absent: &[&str],
    what: &'static str,
    resource: &str,
    action: &'static str,
    permission: &'static str,
) -> Result<Option<T>, BootstrapError>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error,
{
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.code().is_some_and(|c| absent.contains(&c)) => Ok(None),
        Err(e) => Err(BootstrapError::ReadFailed {
            what,
            resource: resource.to_string(),
            action,
            permission,
            message: error_text(&e),
        }),
    }
}

/// The whole chain of an SDK error: its top level says only "service error".
fn error_text(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

/// The AWS clients bootstrap uses, from the standard AWS environment.
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub kms: aws_sdk_kms::Client,
    pub sts: aws_sdk_sts::Client,
}

impl Clients {
    /// From `loader` (the standard credential chain and endpoint variables, `AWS_ENDPOINT_URL`,
    /// …, with the runtime's HTTPS client); the region is the domain's unless `AWS_REGION` says
    /// otherwise. With an endpoint override, S3 requests are path style (what S3-compatible
    /// servers expect).
    pub async fn from_env(mut loader: aws_config::ConfigLoader, region: &str) -> Clients {
        if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none() {
            loader = loader.region(aws_config::Region::new(region.to_string()));
        }
        let sdk = loader.load().await;
        let path_style = sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3 = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(path_style)
            .build();
        Clients {
            s3: aws_sdk_s3::Client::from_conf(s3),
            kms: aws_sdk_kms::Client::new(&sdk),
            sts: aws_sdk_sts::Client::new(&sdk),
        }
    }
}

/// Makes the plan true (or, with `dry_run`, only reports what it would change).
pub async fn apply(plan: &Plan, c: &Clients, dry_run: bool) -> Result<Report, BootstrapError> {
    let who = c
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(aws("sts:GetCallerIdentity", "the current credentials"))?;
    let actual = who.account().unwrap_or_default().to_string();
    if actual != plan.account {
        return Err(BootstrapError::WrongAccount {
            env: plan.env,
            expected: plan.account.clone(),
            actual,
        });
    }
    let mut steps = Vec::new();
    let key = ensure_key(plan, c, dry_run, &mut steps).await?;
    ensure_bucket(plan, c, key.as_ref().map(|k| k.arn.as_str()), dry_run, &mut steps).await?;
    Ok(Report {
        env: plan.env,
        account: plan.account.clone(),
        bucket: plan.bucket.name.clone(),
        imports: imports(plan, key.as_ref().map_or("<key id, once created>", |k| k.id.as_str())),
        key_arn: key.map(|k| k.arn),
        steps,
    })
}

struct KeyRef {
    id: String,
    arn: String,
}

fn step(steps: &mut Vec<Step>, what: impl Into<String>, outcome: Outcome) {
    steps.push(Step {
        what: what.into(),
        outcome,
    });
}

fn change(dry_run: bool, real: Outcome) -> Outcome {
    if dry_run {
        Outcome::WouldChange
    } else {
        real
    }
}

async fn ensure_key(
    plan: &Plan,
    c: &Clients,
    dry_run: bool,
    steps: &mut Vec<Step>,
) -> Result<Option<KeyRef>, BootstrapError> {
    let alias = &plan.key.alias;
    let found = match c.kms.describe_key().key_id(alias).send().await {
        Ok(out) => out.key_metadata().map(|m| {
            (
                m.key_id().to_string(),
                m.arn().unwrap_or_default().to_string(),
                m.key_state().cloned(),
                m.description().unwrap_or_default().to_string(),
            )
        }),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found_exception()) => None,
        Err(e) => return Err(aws("kms:DescribeKey", alias)(e)),
    };
    let fresh = found.is_none();
    let key = match found {
        Some((id, arn, state, description)) => {
            if let Some(state) = state.filter(|s| *s != KeyState::Enabled) {
                return Err(BootstrapError::KeyUnusable {
                    alias: alias.clone(),
                    key_id: id,
                    state: state.as_str().to_lowercase(),
                });
            }
            step(steps, format!("KMS key {alias} ({id})"), Outcome::Unchanged);
            let key = KeyRef { id, arn };
            ensure_key_settings(plan, c, &key, &description, dry_run, steps).await?;
            key
        }
        None if dry_run => {
            for what in ["", "description of ", "policy of ", "tags of ", "rotation of "] {
                step(steps, format!("KMS key {what}{alias}"), Outcome::WouldChange);
            }
            return Ok(None);
        }
        None => {
            let key = create_key(plan, c).await?;
            step(steps, format!("KMS key {alias} ({})", key.id), Outcome::Created);
            // Created with them: the description, policy and tags are the plan's.
            for what in ["description", "policy", "tags"] {
                step(steps, format!("KMS key {what} of {alias}"), Outcome::Created);
            }
            key
        }
    };
    let rotating = c
        .kms
        .get_key_rotation_status()
        .key_id(&key.id)
        .send()
        .await
        .map_err(aws("kms:GetKeyRotationStatus", alias))?
        .key_rotation_enabled();
    if rotating == plan.key.rotation {
        step(steps, format!("KMS key rotation of {alias}"), Outcome::Unchanged);
    } else {
        if !dry_run {
            c.kms
                .enable_key_rotation()
                .key_id(&key.id)
                .send()
                .await
                .map_err(aws("kms:EnableKeyRotation", alias))?;
        }
        let done = if fresh { Outcome::Created } else { Outcome::Updated };
        step(steps, format!("KMS key rotation of {alias}"), change(dry_run, done));
    }
    Ok(Some(key))
}

/// The days a key scheduled for deletion stays recoverable: KMS's minimum, so a key made by a
/// failed bootstrap goes soon, and can still be recovered with `aws kms cancel-key-deletion`.
pub const ORPHAN_KEY_DELETION_DAYS: i32 = 7;

/// CreateKey, then CreateAlias. A key without its alias is invisible to bootstrap (it looks
/// keys up by alias) and would be orphaned by a re-run creating another: when the alias
/// cannot be created, the new key is scheduled for deletion, and if even that fails the
/// error says how to adopt the key or delete it by hand.
async fn create_key(plan: &Plan, c: &Clients) -> Result<KeyRef, BootstrapError> {
    let alias = &plan.key.alias;
    let mut create = c
        .kms
        .create_key()
        .description(&plan.key.description)
        .policy(plan.key.policy.to_string());
    for (k, v) in &plan.tags {
        let tag = aws_sdk_kms::types::Tag::builder()
            .tag_key(k)
            .tag_value(v)
            .build()
            .map_err(aws("kms:CreateKey", alias))?;
        create = create.tags(tag);
    }
    let out = create.send().await.map_err(aws("kms:CreateKey", alias))?;
    let meta = out.key_metadata().ok_or_else(|| BootstrapError::Aws {
        action: "kms:CreateKey",
        resource: alias.clone(),
        message: "the response has no key metadata".into(),
    })?;
    let key = KeyRef {
        id: meta.key_id().to_string(),
        arn: meta.arn().unwrap_or_default().to_string(),
    };
    let aliased = c
        .kms
        .create_alias()
        .alias_name(alias)
        .target_key_id(&key.id)
        .send()
        .await;
    let Err(e) = aliased else {
        return Ok(key);
    };
    let message = error_text(&e);
    let scheduled = c
        .kms
        .schedule_key_deletion()
        .key_id(&key.id)
        .pending_window_in_days(ORPHAN_KEY_DELETION_DAYS)
        .send()
        .await;
    let id = &key.id;
    let cleanup = match scheduled {
        Ok(_) => format!(
            "the new key {id} was scheduled for deletion in {ORPHAN_KEY_DELETION_DAYS} days, so no key is left without its alias; fix the cause above and run `mesh bootstrap` again (it creates a new key)"
        ),
        Err(e) => format!(
            "the new key {id} could not be scheduled for deletion either ({}): it is left without its alias (it carries the domain's tags). Adopt it: `aws kms create-alias --alias-name {alias} --target-key-id {id}`, then run `mesh bootstrap` again (it finds the key by its alias); or delete it: `aws kms schedule-key-deletion --key-id {id} --pending-window-in-days {ORPHAN_KEY_DELETION_DAYS}`",
            error_text(&e)
        ),
    };
    Err(BootstrapError::AliasFailed {
        alias: alias.clone(),
        key_id: key.id.clone(),
        message,
        cleanup,
    })
}

/// An existing key's description, policy and tags compared with the plan, and written where
/// they differ (Terraform would change them at the next apply otherwise, or a key edited by
/// hand would keep a policy the model does not declare).
async fn ensure_key_settings(
    plan: &Plan,
    c: &Clients,
    key: &KeyRef,
    description: &str,
    dry_run: bool,
    steps: &mut Vec<Step>,
) -> Result<(), BootstrapError> {
    let alias = &plan.key.alias;
    let outcome = |same: bool| {
        if same {
            Outcome::Unchanged
        } else {
            change(dry_run, Outcome::Updated)
        }
    };

    let same = description == plan.key.description;
    if !same && !dry_run {
        c.kms
            .update_key_description()
            .key_id(&key.id)
            .description(&plan.key.description)
            .send()
            .await
            .map_err(aws("kms:UpdateKeyDescription", alias))?;
    }
    step(steps, format!("KMS key description of {alias}"), outcome(same));

    let policy = read(
        c.kms
            .get_key_policy()
            .key_id(&key.id)
            .policy_name("default")
            .send()
            .await,
        &[],
        "the key policy",
        alias,
        "kms:GetKeyPolicy",
        "kms:GetKeyPolicy",
    )?;
    let same = policy
        .as_ref()
        .and_then(|o| o.policy())
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .is_some_and(|p| p == plan.key.policy);
    if !same && !dry_run {
        c.kms
            .put_key_policy()
            .key_id(&key.id)
            .policy_name("default")
            .policy(plan.key.policy.to_string())
            .send()
            .await
            .map_err(aws("kms:PutKeyPolicy", alias))?;
    }
    step(steps, format!("KMS key policy of {alias}"), outcome(same));

    let mut current = BTreeMap::new();
    let mut marker: Option<String> = None;
    loop {
        let mut req = c.kms.list_resource_tags().key_id(&key.id);
        if let Some(m) = &marker {
            req = req.marker(m);
        }
        let out = read(
            req.send().await,
            &[],
            "the key tags",
            alias,
            "kms:ListResourceTags",
            "kms:ListResourceTags",
        )?
        .expect("no absent code");
        for t in out.tags() {
            current.insert(t.tag_key().to_string(), t.tag_value().to_string());
        }
        match out.next_marker() {
            Some(m) if out.truncated() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    let same = current == plan.tags;
    if !same && !dry_run {
        let extra: Vec<String> = current
            .keys()
            .filter(|k| !plan.tags.contains_key(*k))
            .cloned()
            .collect();
        if !extra.is_empty() {
            c.kms
                .untag_resource()
                .key_id(&key.id)
                .set_tag_keys(Some(extra))
                .send()
                .await
                .map_err(aws("kms:UntagResource", alias))?;
        }
        let mut tag = c.kms.tag_resource().key_id(&key.id);
        for (k, v) in &plan.tags {
            tag = tag.tags(
                aws_sdk_kms::types::Tag::builder()
                    .tag_key(k)
                    .tag_value(v)
                    .build()
                    .map_err(aws("kms:TagResource", alias))?,
            );
        }
        tag.send().await.map_err(aws("kms:TagResource", alias))?;
    }
    step(steps, format!("KMS key tags of {alias}"), outcome(same));
    Ok(())
}

async fn ensure_bucket(
    plan: &Plan,
    c: &Clients,
    key_arn: Option<&str>,
    dry_run: bool,
    steps: &mut Vec<Step>,
) -> Result<(), BootstrapError> {
    let b = &plan.bucket;
    let name = b.name.as_str();
    let exists = match c.s3.head_bucket().bucket(name).send().await {
        Ok(_) => true,
        Err(e) => match e.raw_response().map(|r| r.status().as_u16()) {
            Some(404) => false,
            Some(403) => {
                return Err(BootstrapError::BucketOfAnotherAccount {
                    bucket: name.to_string(),
                })
            }
            _ => return Err(aws("s3:HeadBucket", name)(e)),
        },
    };
    let what = format!("bucket {name}");
    if exists {
        step(steps, what, Outcome::Unchanged);
    } else if dry_run {
        step(steps, what, Outcome::WouldChange);
        // Nothing to read back: every setting below would be written.
        for s in [
            "public access block",
            "versioning",
            "encryption",
            "lifecycle",
            "TLS-only policy",
            "tags",
        ] {
            step(steps, format!("{s} of {name}"), Outcome::WouldChange);
        }
        return Ok(());
    } else {
        let mut create = c.s3.create_bucket().bucket(name);
        // us-east-1 is the one region S3 refuses as an explicit location constraint.
        if plan.region != "us-east-1" {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(plan.region.as_str()))
                    .build(),
            );
        }
        create.send().await.map_err(aws("s3:CreateBucket", name))?;
        step(steps, what, Outcome::Created);
    }
    let fresh = !exists;
    // Each setting: read, compare, write only if it differs. A new bucket is written in full.
    let outcome = |same: bool| {
        if same {
            Outcome::Unchanged
        } else if fresh {
            Outcome::Created
        } else {
            change(dry_run, Outcome::Updated)
        }
    };

    // Public access block first: nothing else may ever make the bucket public.
    // Every read below: "not configured" is absent, any other failure (AccessDenied…) an
    // error naming the permission, never a "would change" made up from a failed read.
    let pab = read(
        c.s3.get_public_access_block().bucket(name).send().await,
        &["NoSuchPublicAccessBlockConfiguration"],
        "the public access block",
        name,
        "s3:GetPublicAccessBlock",
        "s3:GetBucketPublicAccessBlock",
    )?;
    let blocked = pab
        .and_then(|o| o.public_access_block_configuration().cloned())
        .is_some_and(|p| {
            p.block_public_acls() == Some(true)
                && p.block_public_policy() == Some(true)
                && p.ignore_public_acls() == Some(true)
                && p.restrict_public_buckets() == Some(true)
        });
    if !blocked && !dry_run {
        c.s3.put_public_access_block()
            .bucket(name)
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(true)
                    .block_public_policy(true)
                    .ignore_public_acls(true)
                    .restrict_public_buckets(true)
                    .build(),
            )
            .send()
            .await
            .map_err(aws("s3:PutPublicAccessBlock", name))?;
    }
    step(steps, format!("public access block of {name}"), outcome(blocked));

    let versioned = read(
        c.s3.get_bucket_versioning().bucket(name).send().await,
        &[],
        "the versioning",
        name,
        "s3:GetBucketVersioning",
        "s3:GetBucketVersioning",
    )?
    .is_some_and(|o| o.status() == Some(&BucketVersioningStatus::Enabled));
    if !versioned && !dry_run {
        c.s3.put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(aws("s3:PutBucketVersioning", name))?;
    }
    step(steps, format!("versioning of {name}"), outcome(versioned));

    // On a dry run without a key yet, the encryption would change to the key about to exist.
    let want_key = match b.encryption {
        Encryption::DataKey => key_arn,
        Encryption::S3Managed => None,
    };
    let current = read(
        c.s3.get_bucket_encryption().bucket(name).send().await,
        &["ServerSideEncryptionConfigurationNotFoundError"],
        "the default encryption",
        name,
        "s3:GetBucketEncryption",
        "s3:GetEncryptionConfiguration",
    )?;
    let encrypted = current
        .as_ref()
        .and_then(|o| o.server_side_encryption_configuration())
        .and_then(|cfg| cfg.rules().first())
        .is_some_and(|r| {
            let d = r.apply_server_side_encryption_by_default();
            let bucket_key = r.bucket_key_enabled() == Some(b.bucket_key_enabled());
            match b.encryption {
                Encryption::DataKey => {
                    bucket_key
                        && want_key.is_some()
                        && d.is_some_and(|d| {
                            *d.sse_algorithm() == ServerSideEncryption::AwsKms && d.kms_master_key_id() == want_key
                        })
                }
                Encryption::S3Managed => d.is_some_and(|d| *d.sse_algorithm() == ServerSideEncryption::Aes256),
            }
        });
    if !encrypted && !dry_run {
        let mut default = ServerSideEncryptionByDefault::builder();
        default = match b.encryption {
            Encryption::DataKey => default
                .sse_algorithm(ServerSideEncryption::AwsKms)
                .kms_master_key_id(want_key.unwrap_or_default()),
            Encryption::S3Managed => default.sse_algorithm(ServerSideEncryption::Aes256),
        };
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(default.build().map_err(aws("s3:PutBucketEncryption", name))?)
            .bucket_key_enabled(b.bucket_key_enabled())
            .build();
        c.s3.put_bucket_encryption()
            .bucket(name)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder()
                    .rules(rule)
                    .build()
                    .map_err(aws("s3:PutBucketEncryption", name))?,
            )
            .send()
            .await
            .map_err(aws("s3:PutBucketEncryption", name))?;
    }
    step(steps, format!("encryption of {name}"), outcome(encrypted));

    let lifecycle = read(
        c.s3.get_bucket_lifecycle_configuration().bucket(name).send().await,
        &["NoSuchLifecycleConfiguration"],
        "the lifecycle rules",
        name,
        "s3:GetBucketLifecycleConfiguration",
        "s3:GetLifecycleConfiguration",
    )?;
    let expiring = lifecycle.as_ref().is_some_and(|o| {
        o.rules().len() == 1
            && o.rules().iter().all(|r| {
                r.id() == Some(storage::LIFECYCLE_RULE_ID)
                    && r.status() == &ExpirationStatus::Enabled
                    && r.noncurrent_version_expiration().and_then(|n| n.noncurrent_days())
                        == Some(storage::NONCURRENT_DAYS as i32)
                    && r.abort_incomplete_multipart_upload()
                        .and_then(|a| a.days_after_initiation())
                        == Some(storage::ABORT_MULTIPART_DAYS as i32)
            })
    });
    if !expiring && !dry_run {
        let rule = LifecycleRule::builder()
            .id(storage::LIFECYCLE_RULE_ID)
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("").build())
            .noncurrent_version_expiration(
                NoncurrentVersionExpiration::builder()
                    .noncurrent_days(storage::NONCURRENT_DAYS as i32)
                    .build(),
            )
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder()
                    .days_after_initiation(storage::ABORT_MULTIPART_DAYS as i32)
                    .build(),
            )
            .build()
            .map_err(aws("s3:PutBucketLifecycleConfiguration", name))?;
        c.s3.put_bucket_lifecycle_configuration()
            .bucket(name)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .rules(rule)
                    .build()
                    .map_err(aws("s3:PutBucketLifecycleConfiguration", name))?,
            )
            .send()
            .await
            .map_err(aws("s3:PutBucketLifecycleConfiguration", name))?;
    }
    step(steps, format!("lifecycle of {name}"), outcome(expiring));

    let current_policy = read(
        c.s3.get_bucket_policy().bucket(name).send().await,
        &["NoSuchBucketPolicy"],
        "the bucket policy",
        name,
        "s3:GetBucketPolicy",
        "s3:GetBucketPolicy",
    )?;
    let same_policy = current_policy
        .as_ref()
        .and_then(|o| o.policy())
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .is_some_and(|p| p == b.policy);
    if !same_policy && !dry_run {
        c.s3.put_bucket_policy()
            .bucket(name)
            .policy(b.policy.to_string())
            .send()
            .await
            .map_err(aws("s3:PutBucketPolicy", name))?;
    }
    step(steps, format!("TLS-only policy of {name}"), outcome(same_policy));

    let current_tags: BTreeMap<String, String> = read(
        c.s3.get_bucket_tagging().bucket(name).send().await,
        &["NoSuchTagSet"],
        "the tags",
        name,
        "s3:GetBucketTagging",
        "s3:GetBucketTagging",
    )?
    .map(|o| {
        o.tag_set()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()
    })
    .unwrap_or_default();
    let tagged = current_tags == plan.tags;
    if !tagged && !dry_run {
        let mut tagging = Tagging::builder();
        for (k, v) in &plan.tags {
            tagging = tagging.tag_set(
                Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(aws("s3:PutBucketTagging", name))?,
            );
        }
        c.s3.put_bucket_tagging()
            .bucket(name)
            .tagging(tagging.build().map_err(aws("s3:PutBucketTagging", name))?)
            .send()
            .await
            .map_err(aws("s3:PutBucketTagging", name))?;
    }
    step(steps, format!("tags of {name}"), outcome(tagged));
    Ok(())
}

/// Refused before anything is created: an import needs the rendered root to import into.
pub fn terraform_root_ready(dir: &std::path::Path) -> Result<(), BootstrapError> {
    if dir.join("main.tf").is_file() {
        Ok(())
    } else {
        Err(BootstrapError::NoTerraformRoot {
            dir: dir.display().to_string(),
        })
    }
}

/// Runs `terraform init`, then `terraform import` for each import Terraform's state does not
/// hold yet (so a re-run, or a run after a partial failure, imports only what is missing).
/// Returns each import with `Created` (imported now) or `Unchanged` (already in the state).
pub fn terraform_import(
    terraform: &str,
    version: &str,
    dir: &std::path::Path,
    imports: &[Import],
) -> Result<Vec<(Import, Outcome)>, BootstrapError> {
    terraform_root_ready(dir)?;
    let chdir = format!("-chdir={}", dir.display());
    let run = |args: &[&str]| -> Result<String, BootstrapError> {
        let out = std::process::Command::new(terraform)
            .arg(&chdir)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| BootstrapError::TerraformMissing {
                program: terraform.to_string(),
                version: version.to_string(),
                message: e.to_string(),
            })?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            let mut output = stdout + &String::from_utf8_lossy(&out.stderr);
            // The end of Terraform's output is where it says what went wrong.
            if output.len() > 4000 {
                let cut = output.len() - 4000;
                let cut = (cut..output.len()).find(|&i| output.is_char_boundary(i)).unwrap_or(cut);
                output = format!("…{}", &output[cut..]);
            }
            return Err(BootstrapError::TerraformFailed {
                command: format!("terraform {chdir} {}", args.join(" ")),
                status: out.status.to_string(),
                output: output.trim_end().to_string(),
            });
        }
        Ok(stdout)
    };
    run(&["init", "-input=false", "-no-color"])?;
    // An empty state is not an error for `state list`; a missing backend would have failed init.
    let held: std::collections::BTreeSet<String> = run(&["state", "list", "-no-color"])?
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    let mut done = Vec::new();
    for i in imports {
        if held.contains(&i.address) {
            done.push((i.clone(), Outcome::Unchanged));
        } else {
            run(&["import", "-input=false", "-no-color", &i.address, &i.id])?;
            done.push((i.clone(), Outcome::Created));
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_domain::load_domain;

    fn example() -> Domain {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        load_domain(&root).expect("the example domain loads")
    }

    /// Every import names a resource that storage.tf declares, so `terraform import` adopts
    /// what bootstrap made instead of failing on an unknown address.
    #[test]
    fn imports_name_resources_of_the_rendered_storage_tf() {
        let domain = example();
        for env in [Env::Dev, Env::Int, Env::Prod] {
            let p = plan(&domain, env).unwrap();
            let rendered = crate::render(&domain, &[env]).unwrap();
            let storage = rendered.files.iter().find(|f| f.path.ends_with("storage.tf")).unwrap();
            for i in imports(&p, "k-1") {
                let (ty, name) = i.address.split_once('.').unwrap();
                assert!(
                    storage.contents.contains(&format!("resource \"{ty}\" \"{name}\" {{")),
                    "{} is not in {}",
                    i.address,
                    storage.path.display()
                );
            }
            assert!(storage.contents.contains(&format!("bucket = \"{}\"", p.bucket.name)));
            assert!(storage
                .contents
                .contains(&format!("name          = \"{}\"", p.key.alias)));
            assert_eq!(p.bucket.encryption, Encryption::DataKey);
        }
    }

    #[test]
    fn local_has_nothing_to_bootstrap() {
        assert!(matches!(
            plan(&example(), Env::Local),
            Err(crate::InfraError::NotCloud { .. })
        ));
    }
}
