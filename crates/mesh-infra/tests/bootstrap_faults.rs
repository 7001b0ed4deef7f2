//! `mesh bootstrap` against the faults plain moto never produces (tools/moto_bootstrap_faults.py
//! injects them in front of the patched moto server; issue 26 item 11):
//!
//! - a read it cannot make (AccessDenied on an S3 bucket setting or the key policy) is an error
//!   naming the IAM permission, on a dry run too, never "would change";
//! - an existing key's description, policy and tags are compared with the model and repaired;
//! - `CreateAlias` failing after `CreateKey` schedules the new key's deletion, or, when that
//!   fails too, says how to adopt the key, and adopting it as told works.
//!
//! Needs `MESH_PYTHON` with moto[server] 5.2.5 (scripts/test.sh installs it).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mesh_domain::Env;
use mesh_infra::bootstrap::{self, BootstrapError, Clients, Outcome, Plan, Report};

const ACCOUNT: &str = "111111111111";

struct Faults {
    file: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Faults {
    fn new() -> Faults {
        let dir = tempfile::tempdir().unwrap();
        Faults {
            file: dir.path().join("faults.json"),
            log: dir.path().join("faults.log"),
            _dir: dir,
        }
    }
    fn set(&self, deny_s3: &[&str], fail_kms: &[&str]) {
        std::fs::write(
            &self.file,
            serde_json::json!({"deny_s3": deny_s3, "fail_kms": fail_kms}).to_string(),
        )
        .unwrap();
    }
    /// The injected answers since the last call.
    fn hits(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let _ = std::fs::remove_file(&self.log);
        text.lines().map(str::to_string).collect()
    }
}

fn start(faults: &Faults) -> common::MotoServer {
    common::start_moto_tool(
        "moto_bootstrap_faults.py",
        ACCOUNT,
        &[
            ("MESH_MOTO_FAULTS", faults.file.to_str().unwrap()),
            ("MESH_MOTO_LOG", faults.log.to_str().unwrap()),
        ],
    )
}

async fn clients(endpoint: &str, region: &str) -> Clients {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region.to_string()))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "test"));
    Clients::from_env(loader, region).await
}

fn plan() -> Plan {
    bootstrap::plan(&common::example_domain(), Env::Dev).unwrap()
}

fn outcomes(r: &Report) -> BTreeMap<String, Outcome> {
    r.steps.iter().map(|s| (s.what.clone(), s.outcome)).collect()
}

fn changed(r: &Report) -> Vec<String> {
    r.steps
        .iter()
        .filter(|s| s.outcome != Outcome::Unchanged)
        .map(|s| format!("{} {}", s.outcome, s.what))
        .collect()
}

async fn key_tags(c: &Clients, id: &str) -> BTreeMap<String, String> {
    let out = c.kms.list_resource_tags().key_id(id).send().await.unwrap();
    out.tags()
        .iter()
        .map(|t| (t.tag_key().to_string(), t.tag_value().to_string()))
        .collect()
}

async fn key_states(c: &Clients) -> Vec<String> {
    let mut states = Vec::new();
    for k in c.kms.list_keys().send().await.unwrap().keys() {
        let meta = c.kms.describe_key().key_id(k.key_id().unwrap()).send().await.unwrap();
        states.push(meta.key_metadata().unwrap().key_state().unwrap().as_str().to_string());
    }
    states.sort();
    states
}

/// Denied reads: every S3 setting and the key policy, on a dry run and a real run, on a bucket
/// and key that exist (so the read really happens). The error names the permission; nothing
/// is reported as "would change" and nothing is written.
#[tokio::test(flavor = "multi_thread")]
async fn a_denied_read_is_an_error_naming_the_permission_not_a_change() {
    let faults = Faults::new();
    faults.set(&[], &[]);
    let moto = start(&faults);
    let p = plan();
    let c = clients(&moto.endpoint, &p.region).await;
    let first = bootstrap::apply(&p, &c, false).await.unwrap();
    assert!(
        changed(&first).iter().all(|s| s.starts_with("created")),
        "{:?}",
        changed(&first)
    );
    let bucket = p.bucket.name.clone();
    for (query, permission, what) in [
        ("versioning", "s3:GetBucketVersioning", "the versioning"),
        ("policy", "s3:GetBucketPolicy", "the bucket policy"),
        ("tagging", "s3:GetBucketTagging", "the tags"),
        ("encryption", "s3:GetEncryptionConfiguration", "the default encryption"),
        ("lifecycle", "s3:GetLifecycleConfiguration", "the lifecycle rules"),
        (
            "publicAccessBlock",
            "s3:GetBucketPublicAccessBlock",
            "the public access block",
        ),
    ] {
        faults.set(&[query], &[]);
        for dry_run in [true, false] {
            let err = bootstrap::apply(&p, &c, dry_run).await.unwrap_err();
            assert!(
                matches!(&err, BootstrapError::ReadFailed { permission: got, .. } if *got == permission),
                "{query} (dry run {dry_run}): {err:?}"
            );
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("cannot read {what} of `{bucket}`"))
                    && text.contains(&format!("the IAM permission `{permission}`"))
                    && text.contains("AccessDenied"),
                "{text}"
            );
            assert_eq!(
                faults.hits(),
                [format!("s3:{query}")],
                "{query}: the fault was not hit once"
            );
        }
    }
    // The key policy: a KMS read.
    faults.set(&[], &["GetKeyPolicy"]);
    let err = bootstrap::apply(&p, &c, true).await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("cannot read the key policy of `{}`", p.key.alias))
            && err.contains("`kms:GetKeyPolicy`"),
        "{err}"
    );
    assert_eq!(faults.hits(), ["kms:GetKeyPolicy"]);
    // With the reads allowed again, nothing had changed: the denied runs wrote nothing.
    faults.set(&[], &[]);
    let again = bootstrap::apply(&p, &c, true).await.unwrap();
    assert!(changed(&again).is_empty(), "{:?}", changed(&again));
}

/// An existing key whose description, policy and tags were edited by hand: the dry run
/// reports each as "would change" and changes nothing, the real run repairs exactly those.
#[tokio::test(flavor = "multi_thread")]
async fn the_keys_description_policy_and_tags_are_compared_and_repaired() {
    let faults = Faults::new();
    faults.set(&[], &[]);
    let moto = start(&faults);
    let p = plan();
    let c = clients(&moto.endpoint, &p.region).await;
    let first = bootstrap::apply(&p, &c, false).await.unwrap();
    let alias = &p.key.alias;
    assert_eq!(
        outcomes(&first)[&format!("KMS key policy of {alias}")],
        Outcome::Created
    );
    let id = c
        .kms
        .describe_key()
        .key_id(alias)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    assert_eq!(key_tags(&c, &id).await, p.tags);
    let untouched = bootstrap::apply(&p, &c, false).await.unwrap();
    assert!(changed(&untouched).is_empty(), "{:?}", changed(&untouched));

    // Hand edits: another description, a policy that grants a stranger, a tag changed, one
    // removed and one added.
    c.kms
        .update_key_description()
        .key_id(&id)
        .description("edited by hand")
        .send()
        .await
        .unwrap();
    let mut policy = p.key.policy.clone();
    policy["Statement"].as_array_mut().unwrap().push(serde_json::json!({
        "Sid": "Stranger", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
        "Action": "kms:Decrypt", "Resource": "*"
    }));
    c.kms
        .put_key_policy()
        .key_id(&id)
        .policy_name("default")
        .policy(policy.to_string())
        .send()
        .await
        .unwrap();
    let (first_tag, _) = p.tags.iter().next().unwrap();
    let (last_tag, _) = p.tags.iter().last().unwrap();
    c.kms
        .untag_resource()
        .key_id(&id)
        .tag_keys(last_tag)
        .send()
        .await
        .unwrap();
    for (k, v) in [(first_tag.as_str(), "edited"), ("added_by_hand", "x")] {
        c.kms
            .tag_resource()
            .key_id(&id)
            .tags(
                aws_sdk_kms::types::Tag::builder()
                    .tag_key(k)
                    .tag_value(v)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }

    let dry = bootstrap::apply(&p, &c, true).await.unwrap();
    assert_eq!(
        changed(&dry),
        [
            format!("would change KMS key description of {alias}"),
            format!("would change KMS key policy of {alias}"),
            format!("would change KMS key tags of {alias}"),
        ]
    );
    let meta = c.kms.describe_key().key_id(&id).send().await.unwrap();
    assert_eq!(
        meta.key_metadata().unwrap().description(),
        Some("edited by hand"),
        "the dry run changed the key"
    );

    let fixed = bootstrap::apply(&p, &c, false).await.unwrap();
    assert_eq!(
        changed(&fixed),
        [
            format!("updated KMS key description of {alias}"),
            format!("updated KMS key policy of {alias}"),
            format!("updated KMS key tags of {alias}"),
        ]
    );
    let meta = c.kms.describe_key().key_id(&id).send().await.unwrap();
    assert_eq!(
        meta.key_metadata().unwrap().description(),
        Some(p.key.description.as_str())
    );
    let got: serde_json::Value = serde_json::from_str(
        c.kms
            .get_key_policy()
            .key_id(&id)
            .policy_name("default")
            .send()
            .await
            .unwrap()
            .policy()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(got, p.key.policy);
    assert_eq!(key_tags(&c, &id).await, p.tags);
    let again = bootstrap::apply(&p, &c, false).await.unwrap();
    assert!(changed(&again).is_empty(), "{:?}", changed(&again));
    assert_eq!(key_states(&c).await, ["Enabled"], "one key, the same one");
}

/// CreateAlias fails after CreateKey: the new key is scheduled for deletion and the error
/// says so; the next run (alias allowed) makes a working key and leaves the first one going.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_alias_schedules_the_new_keys_deletion() {
    let faults = Faults::new();
    faults.set(&[], &["CreateAlias"]);
    let moto = start(&faults);
    let p = plan();
    let c = clients(&moto.endpoint, &p.region).await;
    let err = bootstrap::apply(&p, &c, false).await.unwrap_err();
    let BootstrapError::AliasFailed { key_id, .. } = &err else {
        panic!("{err:?}")
    };
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "kms:CreateAlias `{}` failed after kms:CreateKey made key {key_id}",
            p.key.alias
        )) && text.contains("AccessDeniedException")
            && text.contains(&format!("the new key {key_id} was scheduled for deletion in 7 days")),
        "{text}"
    );
    assert_eq!(faults.hits(), ["kms:CreateAlias"]);
    assert_eq!(
        key_states(&c).await,
        ["PendingDeletion"],
        "the new key was not cleaned up"
    );
    // Nothing after the key was attempted: no bucket.
    assert!(c.s3.head_bucket().bucket(&p.bucket.name).send().await.is_err());

    faults.set(&[], &[]);
    let ok = bootstrap::apply(&p, &c, false).await.unwrap();
    assert!(
        changed(&ok).iter().all(|s| s.starts_with("created")),
        "{:?}",
        changed(&ok)
    );
    assert_eq!(key_states(&c).await, ["Enabled", "PendingDeletion"]);
    assert_ne!(ok.key_arn.as_deref().unwrap_or_default(), "", "{ok:?}");
    assert!(
        !ok.key_arn.unwrap().ends_with(key_id.as_str()),
        "the deleted key was reused"
    );
}

/// CreateAlias and the cleanup both fail: the key is left, and the error says how to adopt
/// it; doing what it says makes the next run find and keep that key (no second key).
#[tokio::test(flavor = "multi_thread")]
async fn when_the_cleanup_fails_too_the_error_says_how_to_adopt_the_key() {
    let faults = Faults::new();
    faults.set(&[], &["CreateAlias", "ScheduleKeyDeletion"]);
    let moto = start(&faults);
    let p = plan();
    let c = clients(&moto.endpoint, &p.region).await;
    let err = bootstrap::apply(&p, &c, false).await.unwrap_err();
    let BootstrapError::AliasFailed { key_id, .. } = &err else {
        panic!("{err:?}")
    };
    let key_id = key_id.clone();
    let text = err.to_string();
    let adopt = format!(
        "aws kms create-alias --alias-name {} --target-key-id {key_id}",
        p.key.alias
    );
    assert!(
        text.contains("could not be scheduled for deletion either")
            && text.contains(&adopt)
            && text.contains(&format!(
                "aws kms schedule-key-deletion --key-id {key_id} --pending-window-in-days 7"
            )),
        "{text}"
    );
    assert_eq!(faults.hits(), ["kms:CreateAlias", "kms:ScheduleKeyDeletion"]);
    assert_eq!(key_states(&c).await, ["Enabled"]);
    // The key carries the domain's tags, so it can be found.
    assert_eq!(key_tags(&c, &key_id).await, p.tags);

    // Adopt it as the error says, then bootstrap again: the same key, nothing recreated.
    faults.set(&[], &[]);
    c.kms
        .create_alias()
        .alias_name(&p.key.alias)
        .target_key_id(&key_id)
        .send()
        .await
        .unwrap();
    let ok = bootstrap::apply(&p, &c, false).await.unwrap();
    let o = outcomes(&ok);
    assert_eq!(o[&format!("KMS key {} ({key_id})", p.key.alias)], Outcome::Unchanged);
    assert_eq!(key_states(&c).await, ["Enabled"], "a second key was made");
    assert!(Path::new(&p.terraform_root).ends_with("dev"));
}
