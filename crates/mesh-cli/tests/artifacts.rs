//! `mesh build`, `mesh deploy artifacts` and the portable-SQL part of `mesh validate`, on the
//! real binary and a private copy of the example domain.

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

mod common;
use common::{both, example_domain, mesh_env as mesh, repo_root};

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", both(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", both(o)))
}

/// key -> size of every listed artifact.
fn listing(v: &Value) -> BTreeMap<String, u64> {
    v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["bucket"], "f01-artifacts-dev");
            (a["key"].as_str().unwrap().to_string(), a["size"].as_u64().unwrap())
        })
        .collect()
}

/// The S3 URIs the rendered Glue jobs of dev read: their script and `--job-spec`.
fn rendered_artifact_uris() -> Vec<String> {
    let mut uris = Vec::new();
    for e in std::fs::read_dir(repo_root().join("infra/envs/dev")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap_or_default();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("\"--job-spec\"") || line.starts_with("script_location") {
                let uri = line.rsplit('=').next().unwrap().trim().trim_matches('"');
                uris.push(uri.to_string());
            }
        }
    }
    uris
}

#[test]
fn build_then_dry_run_list_the_example_domains_artifacts() {
    let dir = example_domain();
    let root = dir.path();
    let built = json(&mesh(root, &["build", "--env", "dev", "--format", "json"], &[]));
    let keys = listing(&built);
    // The runner, a spec and the SQL of each of the 4 example jobs, and the maintenance spec
    // of each of the 2 tables a pipeline `optimize` step maintains.
    assert_eq!(keys.len(), 11, "{keys:?}");
    for key in [
        "runtime/glue_runner.py",
        "jobs/pj01/daily_sales.json",
        "jobs/pj01/daily_sales.sql",
        "jobs/pj02/customers_latest.json",
        "jobs/pj03/clean_orders.sql",
        "jobs/pj03/orders_by_country.json",
        "jobs/pj01/maintenance/curated.daily_sales.json",
        "jobs/pj03/maintenance/refined.orders_clean.json",
    ] {
        assert!(keys.contains_key(key), "{key} missing from {keys:?}");
    }
    // The folder mirrors the bucket, byte for byte what was listed.
    let out = root.join(".mesh/build/dev/f01-artifacts-dev");
    for (key, size) in &keys {
        let meta = std::fs::metadata(out.join(key)).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(meta.len(), *size, "{key}");
    }
    let runner = std::fs::read_to_string(out.join("runtime/glue_runner.py")).unwrap();
    assert_eq!(
        runner,
        std::fs::read_to_string(repo_root().join("runtime/glue/glue_runner.py")).unwrap()
    );
    let spec: Value = serde_json::from_slice(&std::fs::read(out.join("jobs/pj01/daily_sales.json")).unwrap()).unwrap();
    assert_eq!(spec["spec_version"], 1);
    assert_eq!(spec["glue_job"], "f01-pj01-daily-sales-dev");
    assert_eq!(spec["sql"]["uri"], "s3://f01-artifacts-dev/jobs/pj01/daily_sales.sql");
    assert_eq!(spec["inputs"][0]["qualified"], "f01_raw.sales_events");
    assert_eq!(spec["write"]["mode"], "overwrite_partitions");
    // Every object the rendered Glue jobs read is built, and nothing they do not read but SQL.
    let rendered = rendered_artifact_uris();
    assert_eq!(
        rendered.iter().filter(|u| u.ends_with(".json")).count(),
        4,
        "{rendered:?}"
    );
    for uri in &rendered {
        let key = uri.strip_prefix("s3://f01-artifacts-dev/").unwrap();
        assert!(
            keys.contains_key(key),
            "the Glue job reads {uri}, which mesh build does not produce"
        );
    }
    // The specs the state machines pass to the maintenance jobs exist too, and say so.
    let mut passed = 0;
    for e in std::fs::read_dir(repo_root().join("infra/envs/dev/states")).unwrap() {
        let asl: Value = serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
        let text = asl.to_string();
        for part in text.split("\"--job-spec\":\"").skip(1) {
            let uri = part.split('"').next().unwrap();
            let key = uri.strip_prefix("s3://f01-artifacts-dev/").unwrap();
            assert!(
                keys.contains_key(key),
                "a state machine passes {uri}, which mesh build does not produce"
            );
            let spec: Value = serde_json::from_slice(&std::fs::read(out.join(key)).unwrap()).unwrap();
            assert_eq!(spec["kind"], "maintenance");
            assert_eq!(spec["spec_version"], 1);
            passed += 1;
        }
    }
    assert_eq!(passed, 2, "one optimize step per example pipeline that has one");

    let text = mesh(root, &["deploy", "artifacts", "--env", "dev", "--dry-run"], &[]);
    assert!(text.status.success(), "{}", both(&text));
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("nothing uploaded"), "{stdout}");
    for (key, size) in &keys {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains("f01-artifacts-dev") && l.contains(key.as_str()) && l.contains(&size.to_string())),
            "{key} ({size} bytes) not listed:\n{stdout}"
        );
    }
    let dry = json(&mesh(
        root,
        &["deploy", "artifacts", "--env", "dev", "--dry-run", "--format", "json"],
        &[],
    ));
    assert_eq!(listing(&dry), keys);
    assert_eq!(dry["uploaded"], false);

    let local = mesh(root, &["build", "--env", "local"], &[]);
    assert_eq!(local.status.code(), Some(2), "{}", both(&local));
}

/// The patched moto server, killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
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
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = std::process::Command::new(python())
        .arg(repo_root().join("tests/tools/moto_server_patched.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto");
    let mut moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    // A dead server (moto missing) must fail fast rather than time out.
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = moto.child.try_wait() {
            panic!("moto exited with {status} before listening (is moto[server] installed in MESH_PYTHON?)");
        }
        assert!(
            Instant::now() < deadline,
            "moto did not listen on port {port} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    moto
}

const S3_SCRIPT: &str = r#"
import hashlib, json, sys
import boto3
endpoint, action, bucket = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="eu-west-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
if action == "create":
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
else:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            out[o["Key"]] = hashlib.sha256(body).hexdigest()
    print(json.dumps(out))
"#;

fn s3(endpoint: &str, action: &str) -> Output {
    let out = std::process::Command::new(python())
        .args(["-c", S3_SCRIPT, endpoint, action, "f01-artifacts-dev"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", both(&out));
    out
}

fn sha256_of(path: &Path) -> String {
    let out = std::process::Command::new(python())
        .args([
            "-c",
            "import hashlib,sys;print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest())",
        ])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn deploy_uploads_every_artifact_over_the_s3_api() {
    let dir = example_domain();
    let root = dir.path();
    let moto = start_moto();
    let aws = [
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "eu-west-1"),
    ];
    // No bucket yet: the upload fails with a message, exit 1.
    let missing = mesh(root, &["deploy", "artifacts", "--env", "dev"], &aws);
    assert_eq!(missing.status.code(), Some(1), "{}", both(&missing));
    assert!(both(&missing).contains("s3://f01-artifacts-dev/"), "{}", both(&missing));

    s3(&moto.endpoint, "create");
    let deployed = json(&mesh(
        root,
        &["deploy", "artifacts", "--env", "dev", "--format", "json"],
        &aws,
    ));
    assert_eq!(deployed["uploaded"], true);
    let built = json(&mesh(root, &["build", "--env", "dev", "--format", "json"], &[]));
    let listed: BTreeMap<String, String> = serde_json::from_slice(&s3(&moto.endpoint, "list").stdout).unwrap();
    let keys = listing(&built);
    assert_eq!(
        listed.keys().collect::<Vec<_>>(),
        keys.keys().collect::<Vec<_>>(),
        "the bucket holds exactly the artifacts"
    );
    for key in keys.keys() {
        let local = root.join(".mesh/build/dev/f01-artifacts-dev").join(key);
        assert_eq!(
            listed[key],
            sha256_of(&local),
            "{key}: uploaded bytes differ from mesh build's"
        );
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains(from), "{} does not contain {from:?}", path.display());
    std::fs::write(path, s.replacen(from, to, 1)).unwrap();
}

#[test]
fn validate_flags_sql_one_engine_cannot_run() {
    let dir = example_domain();
    let root = dir.path();
    let ok = mesh(root, &["validate"], &[]);
    assert!(ok.status.success(), "the example SQL is portable: {}", both(&ok));

    // `array_to_string` exists only in DataFusion, `soundex` only in Spark.
    let sales = root.join("projects/sales/sql/daily_sales.sql");
    edit(
        &sales,
        "  store_id,\n",
        "  store_id,\n  array_to_string(array(currency), ',') AS currencies,\n",
    );
    let orders = root.join("projects/legacy_refactor/sql/orders_by_country.sql");
    edit(&orders, "  country,\n", "  country,\n  soundex(country) AS sound,\n");
    let bad = mesh(root, &["validate"], &[]);
    assert_eq!(bad.status.code(), Some(2), "{}", both(&bad));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("projects/sales/sql/daily_sales.sql:5: `array_to_string` is not a Spark 3.5 function"),
        "{err}"
    );
    assert!(
        err.contains(
            "projects/legacy_refactor/sql/orders_by_country.sql:5: `soundex` is not a function of the local engine"
        ),
        "{err}"
    );
    assert!(err.contains("help:"), "{err}");
    let j = mesh(root, &["validate", "--format", "json"], &[]);
    let v: Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 2, "{v}");

    // Syntax Spark does not accept.
    std::fs::write(&sales, "SELECT store_id,\nFROM FROM f01_raw.sales_events\n").unwrap();
    let syntax = mesh(root, &["validate"], &[]);
    let err = String::from_utf8_lossy(&syntax.stderr);
    assert!(
        err.contains("projects/sales/sql/daily_sales.sql:2: does not parse as Spark SQL"),
        "{err}"
    );
}
