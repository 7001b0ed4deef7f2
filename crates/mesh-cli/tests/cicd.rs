//! Deploying a domain, on the real `mesh` binary: `mesh init` gives a new domain its
//! workflows and `.env` so it validates and renders with no hand edits; `mesh render --check`
//! covers the workflows; `mesh deploy artifacts --env prod` refuses outside CI without `--yes`
//! and uploads (to the moto server) with it; `mesh env` writes what `mesh config` reads;
//! `mesh bootstrap` creates the state bucket and key as storage.tf declares them (moto), and
//! imports them into Terraform.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;

mod common;
use common::{both, example_domain, mesh, mesh_cmd, repo_root};

/// `mesh` with a clean environment: nothing of the caller's CI, AWS or domain settings.
fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", both(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const ACCOUNTS: [&str; 6] = [
    "--account",
    "dev=123456789012",
    "--account",
    "int=223456789012",
    "--account",
    "prod=323456789012",
];

#[test]
fn init_validate_render_with_no_hand_edits() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("finance02");
    let out = ok(mesh_cmd()
        .arg("init")
        .arg(&root)
        .args(["--abbr", "s02", "--region", "us-east-2"])
        .args(ACCOUNTS)
        .output()
        .unwrap());
    assert!(out.contains("wrote 4 workflows"), "{out}");
    for f in ["domain.json", ".env", ".gitignore", ".github/workflows/ci.yml"] {
        assert!(root.join(f).is_file(), "{f} missing after init:\n{out}");
    }
    let domain: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("domain.json")).unwrap()).unwrap();
    assert_eq!(domain["aws_accounts"]["prod"], "323456789012");
    ok(mesh(&root, &["validate"]));
    let from_init = std::fs::read_to_string(root.join(".github/workflows/deploy-prod.yml")).unwrap();
    ok(mesh(&root, &["new", "project", "store", "--slug", "st01"]));
    let out = ok(mesh(&root, &["render"]));
    assert!(out.contains("wrote 4 workflows"), "{out}");
    assert!(root.join("infra/envs/prod/main.tf").is_file());
    let out = ok(mesh(&root, &["render", "--check"]));
    assert!(out.contains("ok: 4 workflows"), "{out}");
    // The workflows init wrote are the ones render writes.
    assert_eq!(
        std::fs::read_to_string(root.join(".github/workflows/deploy-prod.yml")).unwrap(),
        from_init
    );
    // Its own domain's deploys: role, region and the artifact upload in every environment.
    for env in ["dev", "int", "prod"] {
        let wf = std::fs::read_to_string(root.join(format!(".github/workflows/deploy-{env}.yml"))).unwrap();
        assert!(wf.contains(&format!("mesh deploy artifacts --env {env}")), "{wf}");
        assert!(wf.contains(&format!(":role/s02-github-deploy-{env}")), "{wf}");
        assert!(wf.contains("aws-region: us-east-2"), "{wf}");
        // Not meshkit's workspace: mesh is installed, not built from crates/.
        assert!(wf.contains("cargo install --locked --git"), "{wf}");
    }
    let env_file = std::fs::read_to_string(root.join(".env")).unwrap();
    assert!(
        env_file.contains("\nENV=local\n") && env_file.contains("\nS02_AWS_REGION=us-east-2\n"),
        "{env_file}"
    );
    assert!(std::fs::read_to_string(root.join(".gitignore"))
        .unwrap()
        .contains("/.env"));
}

#[test]
fn init_without_accounts_says_what_to_do_next() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("d");
    let out = ok(mesh_cmd()
        .arg("init")
        .arg(&root)
        .args(["--abbr", "s02", "--account", "dev=123456789012"])
        .output()
        .unwrap());
    assert!(
        out.contains("next: add the AWS account of int, prod to aws_accounts"),
        "{out}"
    );
    assert!(!root.join(".github").exists());
    ok(mesh(&root, &["validate"]));
    let o = mesh(&root, &["render"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(both(&o).contains("aws_accounts.int is missing"), "{}", both(&o));

    for (bad, says) in [
        ("dev=12345", "not an AWS account id"),
        ("local=123456789012", "not a cloud environment"),
        ("dev", "must be ENV=ID"),
    ] {
        let o = mesh_cmd()
            .arg("init")
            .arg(tmp.path().join("bad"))
            .args(["--abbr", "s02", "--account", bad])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", both(&o));
        assert!(both(&o).contains(says), "{bad}: {}", both(&o));
        assert!(!tmp.path().join("bad/domain.json").exists());
    }
    let o = mesh_cmd()
        .arg("init")
        .arg(tmp.path().join("twice"))
        .args([
            "--abbr",
            "s02",
            "--account",
            "dev=123456789012",
            "--account",
            "dev=223456789012",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(both(&o).contains("given twice"), "{}", both(&o));
}

#[test]
fn render_check_covers_the_workflows() {
    let dir = example_domain();
    let root = dir.path();
    ok(mesh(root, &["render"]));
    ok(mesh(root, &["render", "--check"]));
    let wf = root.join(".github/workflows");
    let prod = wf.join("deploy-prod.yml");
    let text = std::fs::read_to_string(&prod).unwrap();
    std::fs::write(&prod, text.replace("mesh deploy artifacts --env prod", "true")).unwrap();
    std::fs::write(wf.join("release.yml"), "name: release\n").unwrap();
    let o = mesh(root, &["render", "--check"]);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    assert!(
        both(&o).contains("differs  .github/workflows/deploy-prod.yml"),
        "{}",
        both(&o)
    );
    assert!(
        !both(&o).contains("release.yml"),
        "hand-written workflows are not ours: {}",
        both(&o)
    );
    ok(mesh(root, &["render"]));
    assert_eq!(std::fs::read_to_string(&prod).unwrap(), text);
    assert!(wf.join("release.yml").is_file());
}

#[test]
fn mesh_env_writes_what_config_reads() {
    let dir = example_domain();
    let root = dir.path();
    let out = ok(mesh(root, &["env", "--env", "dev"]));
    assert!(out.contains("wrote .env"), "{out}");
    let text = std::fs::read_to_string(root.join(".env")).unwrap();
    for line in [
        "ENV=dev",
        "AWS_REGION=eu-west-1",
        "F01_AWS_REGION=eu-west-1",
        "# F01_LOG_LEVEL=",
        "# F01_S3_ENDPOINT=",
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "no `{line}` in\n{text}");
    }
    let shown = ok(mesh(root, &["config", "show", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["env"]["value"], "dev", "{shown}");
    assert_eq!(v["aws_region"]["value"], "eu-west-1");
    // An existing .env is never replaced silently.
    let o = mesh(root, &["env"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(both(&o).contains("--force"));
    ok(mesh(root, &["env", "--force"]));
    assert!(std::fs::read_to_string(root.join(".env"))
        .unwrap()
        .contains("\nENV=local\n"));
}

/// The patched moto server, killed when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> String {
    std::env::var("MESH_PYTHON")
        .unwrap_or_else(|_| panic!("MESH_PYTHON is not set: run scripts/test.sh, which installs moto and sets it"))
}

fn start_moto() -> Moto {
    start_moto_as("123456789012")
}

/// A moto server whose credentials belong to `account` (what STS GetCallerIdentity answers).
fn start_moto_as(account: &str) -> Moto {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = std::process::Command::new(python())
        .env("MOTO_ACCOUNT_ID", account)
        .arg(repo_root().join("tests/tools/moto_server_patched.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto");
    let mut moto = Moto { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = moto.child.try_wait() {
            panic!("moto exited with {status} before listening (is moto[server] installed in MESH_PYTHON?)");
        }
        assert!(
            Instant::now() < deadline,
            "moto did not listen on port {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

fn on_moto<'a>(cmd: &'a mut Command, m: &Moto) -> &'a mut Command {
    cmd.env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", m.port))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
}

fn create_bucket(m: &Moto, bucket: &str) {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", m.port)).unwrap();
    write!(
        s,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        m.port
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "CreateBucket {bucket}: {reply}");
}

#[test]
fn prod_uploads_outside_ci_need_yes() {
    let m = start_moto();
    create_bucket(&m, "f01-artifacts-prod");
    let dir = example_domain();
    let root = dir.path();
    let args = ["--root", root.to_str().unwrap(), "deploy", "artifacts", "--env", "prod"];

    // Outside CI, without --yes: refused before anything is built or sent, and says why.
    let o = on_moto(&mut mesh_cmd(), &m).args(args).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    let text = both(&o);
    assert!(
        text.contains("refusing to upload artifacts to prod from outside CI"),
        "{text}"
    );
    assert!(text.contains("required reviewer") && text.contains("--yes"), "{text}");
    // CI=false is not CI.
    let o = on_moto(&mut mesh_cmd(), &m)
        .args(args)
        .env("CI", "false")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    // Other environments and dry runs are not gated.
    ok(on_moto(&mut mesh_cmd(), &m)
        .args(args)
        .arg("--dry-run")
        .output()
        .unwrap());
    create_bucket(&m, "f01-artifacts-dev");
    ok(on_moto(&mut mesh_cmd(), &m)
        .args(["--root", root.to_str().unwrap(), "deploy", "artifacts", "--env", "dev"])
        .output()
        .unwrap());

    // With --yes, or inside CI (the approved workflow), the upload happens.
    let out = ok(on_moto(&mut mesh_cmd(), &m).args(args).arg("--yes").output().unwrap());
    assert!(out.contains("uploaded 11 artifacts to prod"), "{out}");
    for var in ["CI", "GITHUB_ACTIONS"] {
        let out = ok(on_moto(&mut mesh_cmd(), &m)
            .args(args)
            .env(var, "true")
            .output()
            .unwrap());
        assert!(out.contains("uploaded 11 artifacts to prod"), "{var}: {out}");
    }
}

/// What the moto server holds of the bootstrap's bucket and key, read with boto3 (an
/// independent client).
const INSPECT: &str = r#"
import json, sys
import boto3
endpoint, bucket, alias = sys.argv[1:4]
kw = dict(endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test")
s3, kms = boto3.client("s3", **kw), boto3.client("kms", **kw)
def get(f, *path):
    try:
        v = f(Bucket=bucket)
    except s3.exceptions.ClientError as e:
        return None
    for p in path:
        v = v[p]
    return v
out = {"buckets": [b["Name"] for b in s3.list_buckets()["Buckets"]], "keys": len(kms.list_keys()["Keys"])}
if bucket in out["buckets"]:
    out["versioning"] = get(s3.get_bucket_versioning).get("Status")
    out["encryption"] = get(s3.get_bucket_encryption, "ServerSideEncryptionConfiguration", "Rules")
    out["public_access_block"] = get(s3.get_public_access_block, "PublicAccessBlockConfiguration")
    out["policy"] = json.loads(get(s3.get_bucket_policy, "Policy") or "null")
    out["lifecycle"] = get(s3.get_bucket_lifecycle_configuration, "Rules")
    out["tags"] = {t["Key"]: t["Value"] for t in (get(s3.get_bucket_tagging, "TagSet") or [])}
try:
    meta = kms.describe_key(KeyId=alias)["KeyMetadata"]
    out["key"] = {"id": meta["KeyId"], "arn": meta["Arn"], "description": meta["Description"],
                  "rotation": kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"],
                  "policy": json.loads(kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"])}
except kms.exceptions.NotFoundException:
    out["key"] = None
if len(sys.argv) > 4 and sys.argv[4] == "drift":
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "EditedByHand", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": f"arn:aws:s3:::{bucket}"}]}))
print(json.dumps(out))
"#;

fn inspect(m: &Moto, extra: &[&str]) -> serde_json::Value {
    let o = std::process::Command::new(python())
        .args(["-c", INSPECT, &format!("http://127.0.0.1:{}", m.port)])
        .args(["f01-artifacts-dev", "alias/f01-data-dev"])
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", both(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn bootstrap(m: &Moto, root: &Path, extra: &[&str]) -> Output {
    on_moto(&mut mesh_cmd(), m)
        .args(["--root", root.to_str().unwrap(), "bootstrap", "--env", "dev"])
        .args(extra)
        .output()
        .unwrap()
}

fn outcomes(v: &serde_json::Value) -> Vec<(String, String)> {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["what"].as_str().unwrap().to_string(),
                s["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn bootstrap_creates_the_state_bucket_and_key_as_storage_tf_declares_them() {
    let m = start_moto_as("111111111111");
    let dir = example_domain();
    let root = dir.path();

    // A dry run reads and reports; it creates nothing.
    let dry: serde_json::Value =
        serde_json::from_str(&ok(bootstrap(&m, root, &["--dry-run", "--format", "json"]))).unwrap();
    assert!(outcomes(&dry).iter().all(|(_, o)| o == "would_change"), "{dry}");
    assert_eq!(dry["key_arn"], serde_json::Value::Null);
    let before = inspect(&m, &[]);
    assert_eq!(before["buckets"], serde_json::json!([]));
    assert_eq!(before["keys"], 0);

    let first: serde_json::Value = serde_json::from_str(&ok(bootstrap(&m, root, &["--format", "json"]))).unwrap();
    assert!(outcomes(&first).iter().all(|(_, o)| o == "created"), "{first}");
    let s = inspect(&m, &[]);
    let key = &s["key"];
    assert_eq!(first["key_arn"], key["arn"]);
    assert_eq!(key["rotation"], true);
    assert_eq!(key["description"], "finance01 data, logs and alerts (dev)");
    let sids: Vec<&str> = key["policy"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["Sid"].as_str().unwrap())
        .collect();
    // The key Terraform declares, with the example's product shared with its consumer's account.
    assert_eq!(
        sids,
        [
            "AccountAdministers",
            "LogsEncrypt",
            "AlarmsPublishToAlerts",
            "ProductDailySalesV1DecryptViaS3"
        ]
    );
    assert_eq!(s["versioning"], "Enabled");
    let rule = &s["encryption"][0];
    assert_eq!(rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"], "aws:kms");
    assert_eq!(rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"], key["arn"]);
    assert_eq!(rule["BucketKeyEnabled"], true);
    for flag in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(s["public_access_block"][flag], true, "{flag}: {s}");
    }
    let deny = &s["policy"]["Statement"][0];
    assert_eq!(deny["Sid"], "DenyInsecureTransport");
    assert_eq!(deny["Effect"], "Deny");
    assert_eq!(deny["Condition"]["Bool"]["aws:SecureTransport"], "false");
    assert_eq!(s["lifecycle"][0]["ID"], "expire-noncurrent-and-abort-uploads");
    assert_eq!(s["lifecycle"][0]["NoncurrentVersionExpiration"]["NoncurrentDays"], 90);
    assert_eq!(s["tags"]["domain_abbr"], "f01");
    assert_eq!(s["tags"]["env"], "dev");
    // The same settings the committed storage.tf declares for this bucket and key.
    let storage = std::fs::read_to_string(repo_root().join("infra/envs/dev/storage.tf")).unwrap();
    for needle in [
        "bucket = \"f01-artifacts-dev\"",
        "name          = \"alias/f01-data-dev\"",
        "noncurrent_days = 90",
        "file(\"${path.module}/resource_policies/kms-data-key.json\")",
        "description             = \"finance01 data, logs and alerts (dev)\"",
    ] {
        assert!(storage.contains(needle), "storage.tf has no {needle}");
    }
    let key_policy =
        std::fs::read_to_string(repo_root().join("infra/envs/dev/resource_policies/kms-data-key.json")).unwrap();
    assert!(
        key_policy.contains("\"Sid\": \"AlarmsPublishToAlerts\""),
        "{key_policy}"
    );
    // Terraform adopts exactly these: the import ids are the key id, alias and bucket.
    let imports: Vec<(String, String)> = first["imports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["address"].as_str().unwrap().to_string(),
                i["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        imports[0],
        ("aws_kms_key.data".into(), key["id"].as_str().unwrap().to_string())
    );
    assert_eq!(imports[1], ("aws_kms_alias.data".into(), "alias/f01-data-dev".into()));
    assert!(imports.contains(&("aws_s3_bucket.artifacts".into(), "f01-artifacts-dev".into())));
    assert_eq!(imports.len(), 8);

    // Re-running changes nothing and creates no second key.
    let again: serde_json::Value = serde_json::from_str(&ok(bootstrap(&m, root, &["--format", "json"]))).unwrap();
    assert!(outcomes(&again).iter().all(|(_, o)| o == "unchanged"), "{again}");
    assert_eq!(again["key_arn"], key["arn"]);
    assert_eq!(inspect(&m, &[])["keys"], 1);

    // Drift (versioning suspended, the policy replaced by hand) is repaired; the rest is untouched.
    inspect(&m, &["drift"]);
    let fixed: serde_json::Value = serde_json::from_str(&ok(bootstrap(&m, root, &["--format", "json"]))).unwrap();
    let changed: Vec<String> = outcomes(&fixed)
        .into_iter()
        .filter(|(_, o)| o != "unchanged")
        .map(|(w, o)| format!("{o} {w}"))
        .collect();
    assert_eq!(
        changed,
        [
            "updated versioning of f01-artifacts-dev",
            "updated TLS-only policy of f01-artifacts-dev"
        ]
    );
    let s = inspect(&m, &[]);
    assert_eq!(s["versioning"], "Enabled");
    assert_eq!(s["policy"]["Statement"][0]["Sid"], "DenyInsecureTransport");

    // The text output prints the import step.
    let text = ok(bootstrap(&m, root, &[]));
    assert!(
        text.contains("terraform -chdir=infra/envs/dev import aws_s3_bucket.artifacts f01-artifacts-dev"),
        "{text}"
    );
    assert!(
        text.contains(&format!("import aws_kms_key.data {}", key["id"].as_str().unwrap())),
        "{text}"
    );
}

#[test]
fn bootstrap_refuses_credentials_of_another_account() {
    let m = start_moto_as("999999999999");
    let dir = example_domain();
    let o = bootstrap(&m, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    let text = both(&o);
    assert!(
        text.contains("account 999999999999") && text.contains("`dev` is account 111111111111"),
        "{text}"
    );
    let s = inspect(&m, &[]);
    assert_eq!(
        s["buckets"],
        serde_json::json!([]),
        "nothing may be created in the wrong account"
    );
    assert_eq!(s["keys"], 0);
}

#[test]
fn bootstrap_import_runs_terraform_for_what_its_state_lacks() {
    let m = start_moto_as("111111111111");
    let dir = example_domain();
    let root = dir.path();
    // Without a rendered root there is nothing to import into.
    let o = bootstrap(&m, root, &["--import", "--terraform", "/nonexistent/terraform"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(both(&o).contains("run `mesh render` first"), "{}", both(&o));
    ok(mesh(root, &["render", "--env", "dev"]));
    let o = bootstrap(&m, root, &["--import", "--terraform", "/nonexistent/terraform"]);
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    assert!(both(&o).contains("install Terraform 1.9.8"), "{}", both(&o));

    // A stand-in for the terraform CLI that logs its arguments; its state already holds the
    // bucket (as after an interrupted earlier import).
    let log = root.join("terraform.log");
    let fake = root.join("terraform");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\ncase \"$2\" in state) echo aws_s3_bucket.artifacts ;; esac\nexit 0\n",
            log.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .unwrap();
    let out: serde_json::Value = serde_json::from_str(&ok(bootstrap(
        &m,
        root,
        &["--import", "--terraform", fake.to_str().unwrap(), "--format", "json"],
    )))
    .unwrap();
    let calls = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    let chdir = format!("-chdir={}", root.join("infra/envs/dev").display());
    assert!(calls.iter().all(|c| c.starts_with(&chdir)), "{calls:?}");
    assert!(calls[0].ends_with(" init -input=false -no-color"), "{calls:?}");
    assert!(calls[1].ends_with(" state list -no-color"), "{calls:?}");
    let imports: Vec<&str> = calls[2..]
        .iter()
        .map(|c| c.split(" import -input=false -no-color ").nth(1).unwrap())
        .collect();
    assert_eq!(imports.len(), 7, "{calls:?}");
    assert!(imports[0].starts_with("aws_kms_key.data "), "{imports:?}");
    assert!(
        !imports.iter().any(|i| i.starts_with("aws_s3_bucket.artifacts ")),
        "held already: {imports:?}"
    );
    assert!(
        imports.contains(&"aws_s3_bucket_policy.artifacts f01-artifacts-dev"),
        "{imports:?}"
    );
    let imported = out["imported"].as_array().unwrap();
    assert_eq!(imported.iter().filter(|i| i["outcome"] == "unchanged").count(), 1);
    assert_eq!(imported.iter().filter(|i| i["outcome"] == "created").count(), 7);
}

/// Deploys the rendered state machine of `sales` (and its Glue jobs and alert topic) to moto,
/// as `terraform apply` would; with `drop_job` the pipeline's first job is missing.
const DEPLOY_PIPELINE: &str = r#"
import json, sys, urllib.request
import boto3
endpoint, asl, drop_job = sys.argv[1], sys.argv[2], sys.argv[3]
kw = dict(endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test")
urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/config",
    data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(), method="POST",
    headers={"Content-Type": "application/json"}))
sfn, glue, sns = boto3.client("stepfunctions", **kw), boto3.client("glue", **kw), boto3.client("sns", **kw)
defn = json.load(open(asl))
def walk(states):
    for s in states.values():
        yield s
        for b in s.get("Branches", []):
            yield from walk(b["States"])
for s in walk(defn["States"]):
    p = s.get("Parameters", {})
    if "JobName" in p and p["JobName"] != drop_job:
        glue.create_job(Name=p["JobName"], Role="arn:aws:iam::111111111111:role/x", Command={"Name": "glueetl", "ScriptLocation": "s3://x/y.py"})
    if "TopicArn" in p:
        sns.create_topic(Name=p["TopicArn"].rsplit(":", 1)[1])
name = asl.rsplit("/", 1)[1].removesuffix(".asl.json")
sfn.create_state_machine(name=name, definition=json.dumps(defn), roleArn="arn:aws:iam::111111111111:role/sfn")
"#;

#[test]
fn start_runs_a_deployed_pipeline_and_waits_for_its_end() {
    let m = start_moto_as("111111111111");
    let dir = example_domain();
    let root = dir.path();
    ok(mesh(root, &["render", "--env", "dev"]));
    let asl = root.join("infra/envs/dev/states/f01-pj01-pipeline-dev.asl.json");
    let deploy = |drop: &str| {
        let o = std::process::Command::new(python())
            .args(["-c", DEPLOY_PIPELINE, &format!("http://127.0.0.1:{}", m.port)])
            .arg(&asl)
            .arg(drop)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", both(&o));
    };
    deploy("none");
    let start = |extra: &[&str]| {
        on_moto(&mut mesh_cmd(), &m)
            .args(["--root", root.to_str().unwrap(), "start", "sales", "--env", "dev"])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = start(&["--run-date", "2026-11-27", "--wait", "--format", "json"]);
    let text = both(&o);
    assert!(o.status.success(), "{text}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["started"]["state_machine"],
        "arn:aws:states:eu-west-1:111111111111:stateMachine:f01-pj01-pipeline-dev"
    );
    assert_eq!(v["started"]["scheduled_time"], "2026-11-27T00:00:00Z");
    assert_eq!(v["finished"]["status"], "SUCCEEDED", "{v}");
    // The job ran with the run date derived from the input, as a scheduled run gets it.
    let o = std::process::Command::new(python())
        .args([
            "-c",
            "import boto3,json,sys; g=boto3.client('glue',endpoint_url=sys.argv[1],region_name='eu-west-1',aws_access_key_id='test',aws_secret_access_key='test'); print(json.dumps([r.get('Arguments',{}) for r in g.get_job_runs(JobName='f01-pj01-daily-sales-dev')['JobRuns']]))",
            &format!("http://127.0.0.1:{}", m.port),
        ])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", both(&o)));
    assert_eq!(runs[0]["--run_date"], "2026-11-27", "{runs}");

    // Without --wait it only starts; a wrong pipeline name is a usage error with a suggestion.
    let o = start(&[]);
    assert!(o.status.success(), "{}", both(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(":execution:f01-pj01-pipeline-dev:mesh-"),
        "{}",
        both(&o)
    );
    let o = start(&["--pipeline", "mian"]);
    assert_eq!(o.status.code(), Some(2), "{}", both(&o));
    assert!(both(&o).contains("did you mean `main`?"), "{}", both(&o));
}

#[test]
fn start_wait_exits_1_when_the_execution_fails() {
    let m = start_moto_as("111111111111");
    let dir = example_domain();
    let root = dir.path();
    ok(mesh(root, &["render", "--env", "dev"]));
    let asl = root.join("infra/envs/dev/states/f01-pj01-pipeline-dev.asl.json");
    let o = std::process::Command::new(python())
        .args(["-c", DEPLOY_PIPELINE, &format!("http://127.0.0.1:{}", m.port)])
        .arg(&asl)
        .arg("f01-pj01-daily-sales-dev")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", both(&o));
    let o = on_moto(&mut mesh_cmd(), &m)
        .args([
            "--root",
            root.to_str().unwrap(),
            "start",
            "sales",
            "--env",
            "dev",
            "--wait",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", both(&o));
    let text = both(&o);
    assert!(
        text.contains("ended FAILED") && text.contains("PipelineFailed"),
        "{text}"
    );
}
