//! `ENV=dev` end to end, offline: the real `mesh` binary against a moto server that plays S3
//! and the Glue Data Catalog on one local port. The same sample data run locally must give
//! the same table contents.

use std::path::Path;
use std::process::{Child, Output};

mod common;
use common::{both, example_domain, repo_root};

/// moto (patched: Glue UpdateTable honours VersionId) for the lifetime of the test.
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

fn moto() -> Moto {
    let python = std::env::var("MESH_PYTHON").unwrap_or_else(|_| {
        panic!("MESH_PYTHON is not set: run scripts/test.sh (venv from tests/python/requirements.txt, with moto)")
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(python)
        .arg(repo_root().join("tests/tools/moto_server_patched.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut m = Moto { child, port };
    // Readiness: the server accepts connections (bounded wait, not a timing assumption).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            m.child.try_wait().unwrap().is_none(),
            "moto server exited; is moto installed in MESH_PYTHON?"
        );
        assert!(std::time::Instant::now() < deadline, "moto server did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    m
}

/// A path-style `PUT /{bucket}` (moto does not check signatures). In AWS the buckets come from
/// the generated Terraform; the runtime never creates buckets.
fn create_bucket(m: &Moto, bucket: &str) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", m.port)).unwrap();
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

/// Where a run happens: the local lake, or `dev` on the moto server (as moto's default
/// account, or as the AWS account given: the patched server's `AKIAMESH{account}` keys).
enum Target<'a> {
    Local,
    Dev(&'a Moto),
    DevAs(&'a Moto, &'a str),
}

fn mesh(root: &Path, target: &Target<'_>, args: &[&str]) -> Output {
    let mut cmd = common::mesh_at(root);
    cmd.args(args);
    let (m, key) = match target {
        Target::Local => return cmd.output().unwrap(),
        Target::Dev(m) => (m, "test".to_string()),
        Target::DevAs(m, account) => (m, access_key(account)),
    };
    cmd.env("ENV", "dev")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", m.port))
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", "test");
    cmd.output().unwrap()
}

/// The access key the patched moto server takes for `account`.
fn access_key(account: &str) -> String {
    format!("AKIAMESH{account}")
}

/// One request to the moto server as `account` (moto does not check signatures, only the
/// access key in the credential scope); the reply's status line and body.
fn request(m: &Moto, account: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", m.port)).unwrap();
    // The credential scope names the service (moto routes by it) and the region: Glue's
    // catalog is regional (the domain's eu-west-1); S3 buckets created without a location
    // constraint are us-east-1's.
    let (service, region) = if headers.iter().any(|(_, v)| v.starts_with("AWSGlue.")) {
        ("glue", "eu-west-1")
    } else {
        ("s3", "us-east-1")
    };
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\nAuthorization: AWS4-HMAC-SHA256 Credential={}/20261207/{region}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n",
        m.port,
        body.len(),
        access_key(account)
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(s, "{head}\r\n{body}").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

/// All rows of a query as JSON objects, sorted, so file order does not matter.
fn rows(root: &Path, target: &Target<'_>, query: &str) -> Vec<String> {
    let out = mesh(root, target, &["sql", query, "--format", "json"]);
    assert!(out.status.success(), "{query}: {}", both(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", both(&out)));
    let mut rows: Vec<String> = v.as_array().unwrap().iter().map(|r| r.to_string()).collect();
    rows.sort();
    rows
}

#[test]
fn dev_on_s3_and_glue_gives_the_local_results() {
    let m = moto();
    for layer in ["raw", "refined", "curated"] {
        create_bucket(&m, &format!("f01-{layer}-dev"));
    }
    let dev_dir = example_domain();
    let local_dir = example_domain();
    let (dev, local) = (dev_dir.path(), local_dir.path());
    let dev_target = Target::Dev(&m);

    for (root, target, lake) in [
        (dev, &dev_target, "s3://f01-raw-dev"),
        (local, &Target::Local, ".mesh/lake"),
    ] {
        let out = mesh(root, target, &["sample-data", "--rows", "20000", "--seed", "3"]);
        assert!(out.status.success(), "{}", both(&out));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            stdout.contains("wrote sample data to ") && stdout.contains(lake),
            "{stdout}"
        );
        let out = mesh(root, target, &["run"]);
        assert!(out.status.success(), "{}", both(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("6 succeeded, 0 not"),
            "{}",
            both(&out)
        );
    }

    // The dev run kept nothing locally but its run records: no lake folder, no SQLite catalog.
    assert!(!dev.join(".mesh/lake").exists(), "dev wrote to the local lake");
    assert!(!dev.join(".mesh/catalog.db").exists(), "dev used the SQLite catalog");

    // Tables are in Glue, at the naming engine's S3 locations.
    let out = mesh(
        dev,
        &dev_target,
        &["table", "show", "curated.daily_sales", "--format", "json"],
    );
    assert!(out.status.success(), "{}", both(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["location"], "s3://f01-curated-dev/pj01/iceberg/daily_sales");
    assert!(info["metadata_location"]
        .as_str()
        .unwrap()
        .starts_with("s3://f01-curated-dev/pj01/iceberg/daily_sales/metadata/"));

    // Every refined and curated table, and the raw input read back from S3, equal the local run.
    for table in [
        "f01_raw.sales_events",
        "f01_curated.daily_sales",
        "f01_curated.customers",
        "f01_refined.orders_clean",
        "f01_curated.orders_by_country",
    ] {
        let query = format!("SELECT * FROM {table}");
        let from_dev = rows(dev, &dev_target, &query);
        let from_local = rows(local, &Target::Local, &query);
        assert!(!from_local.is_empty(), "{table} is empty locally");
        assert_eq!(from_dev.len(), from_local.len(), "{table}: row counts differ");
        assert!(
            from_dev == from_local,
            "{table}: contents differ between dev (S3/Glue) and local"
        );
    }
}

/// The keys under `prefix` of a bucket on the moto server (path-style ListObjectsV2).
fn keys(m: &Moto, bucket: &str, prefix: &str) -> Vec<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", m.port)).unwrap();
    write!(
        s,
        "GET /{bucket}?list-type=2&prefix={prefix} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
        m.port
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
        .split("<Key>")
        .skip(1)
        .filter_map(|k| k.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

/// A declared slug rename on AWS (moto's S3 and Glue): `mesh apply --env dev` copies the raw
/// files and the Iceberg tables under the new slug, swaps the Glue entries (same names) to the
/// copies and deletes the old prefixes; the tables then read the same rows, and the next run
/// writes at the new place.
#[test]
fn a_declared_slug_rename_moves_the_data_on_s3_and_glue() {
    let m = moto();
    for layer in ["raw", "refined", "curated"] {
        create_bucket(&m, &format!("f01-{layer}-dev"));
    }
    let dir = example_domain();
    let root = dir.path();
    let dev = Target::Dev(&m);
    for args in [
        &["sample-data", "--rows", "2000", "--seed", "5"][..],
        &["run", "legacy_refactor"],
    ] {
        let out = mesh(root, &dev, args);
        assert!(out.status.success(), "{}", both(&out));
    }
    let tables = [
        "f01_refined.orders_clean",
        "f01_curated.orders_by_country",
        "f01_raw.legacy_orders",
    ];
    let before: Vec<Vec<String>> = tables
        .iter()
        .map(|t| rows(root, &dev, &format!("SELECT * FROM {t}")))
        .collect();
    assert!(
        before.iter().all(|rows| !rows.is_empty()),
        "every table holds rows before the move"
    );
    assert!(!keys(&m, "f01-raw-dev", "pj03/legacy_orders/").is_empty());

    let manifest = root.join("projects/legacy_refactor/project.toml");
    let s = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        s.replace(
            "project_slug = \"pj03\"",
            "project_slug = \"pj08\"\nmoved_from_slug = \"pj03\"",
        ),
    )
    .unwrap();
    let out = mesh(root, &dev, &["plan", "--format", "json"]);
    assert!(out.status.success(), "{}", both(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let moves: Vec<_> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["action"] == "moved")
        .collect();
    assert_eq!(moves.len(), 3, "{plan:#}");
    assert!(moves.iter().all(|c| c["refused"].is_null()), "{plan:#}");

    let out = mesh(root, &dev, &["apply"]);
    assert!(out.status.success(), "{}", both(&out));
    for (t, want) in tables.iter().zip(&before) {
        assert_eq!(&rows(root, &dev, &format!("SELECT * FROM {t}")), want, "{t}");
    }
    let out = mesh(
        root,
        &dev,
        &["table", "show", "curated.orders_by_country", "--format", "json"],
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        info["location"], "s3://f01-curated-dev/pj08/iceberg/orders_by_country",
        "{info:#}"
    );
    for (bucket, prefix) in [
        ("f01-raw-dev", "pj03/"),
        ("f01-refined-dev", "pj03/"),
        ("f01-curated-dev", "pj03/"),
    ] {
        assert_eq!(
            keys(&m, bucket, prefix),
            Vec::<String>::new(),
            "{bucket}/{prefix} is left behind"
        );
    }
    assert!(!keys(&m, "f01-raw-dev", "pj08/legacy_orders/").is_empty());
    // Nothing left to apply, and the pipelines run at the new place.
    let out = mesh(root, &dev, &["apply"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to apply"),
        "{}",
        both(&out)
    );
    let out = mesh(root, &dev, &["run", "legacy_refactor"]);
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        rows(root, &dev, "SELECT * FROM f01_curated.orders_by_country"),
        before[1]
    );
}

/// Issue 25: the consumer's `mesh run --env dev` reads the producer's product in the producer's
/// account through what the producer's generated policies grant, and nothing else. Two AWS
/// accounts on one moto server (patched: Glue honours `CatalogId` through the catalog's
/// resource policy, S3 checks the bucket policy of another account's bucket): f01 (dev account
/// 111111111111) runs its pipeline; m02 (444444444444, examples/marketing02) reads
/// `f01.daily_sales@1`. Without grants Glue refuses; with the Glue grant only, S3 refuses; with
/// both (the files `mesh render` wrote for f01), the run reads f01's current snapshot in dev
/// and its table holds one row per store of f01's dev table.
#[test]
fn a_consumer_reads_the_producers_product_on_aws_through_the_generated_grants() {
    let (f01, m02) = ("111111111111", "444444444444");
    let dir = example_domain();
    let root = dir.path();
    common::copy_dir(&repo_root().join("examples"), &root.join("examples"));
    let consumer = root.join("examples/marketing02");
    // Locally: the producer runs and the consumer pins the product (the lock says where the
    // table is in every environment).
    let out = mesh(
        root,
        &Target::Local,
        &["run", "sales", "--sample-data", "--rows", "2000"],
    );
    assert!(out.status.success(), "{}", both(&out));
    let out = mesh(&consumer, &Target::Local, &["pull"]);
    assert!(out.status.success(), "{}", both(&out));
    let out = mesh(root, &Target::Local, &["render"]);
    assert!(out.status.success(), "{}", both(&out));

    let m = moto();
    for (account, abbr) in [(f01, "f01"), (m02, "m02")] {
        for layer in ["raw", "refined", "curated"] {
            let reply = request(&m, account, "PUT", &format!("/{abbr}-{layer}-dev"), &[], "");
            assert!(
                reply.starts_with("HTTP/1.1 200"),
                "CreateBucket {abbr}-{layer}-dev: {reply}"
            );
        }
    }
    let producer = Target::DevAs(&m, f01);
    let consumer_dev = Target::DevAs(&m, m02);
    for args in [&["sample-data", "--rows", "3000", "--seed", "5"][..], &["run", "sales"]] {
        let out = mesh(root, &producer, args);
        assert!(out.status.success(), "{}", both(&out));
    }

    // No grant yet: f01's catalog refuses m02.
    let out = mesh(&consumer, &consumer_dev, &["run"]);
    let text = both(&out);
    assert!(!out.status.success(), "read without a grant: {text}");
    assert!(
        text.contains("f01.daily_sales@1") && text.contains("AccessDeniedException") && text.contains("glue:GetTable"),
        "{text}"
    );

    // The Glue grant alone: the catalog answers, the bucket refuses the data files.
    let policies = root.join("infra/envs/dev/resource_policies");
    let glue_policy = std::fs::read_to_string(policies.join("glue-catalog.json")).unwrap();
    let body = serde_json::json!({ "PolicyInJson": glue_policy }).to_string();
    let reply = request(
        &m,
        f01,
        "POST",
        "/",
        &[
            ("X-Amz-Target", "AWSGlue.PutResourcePolicy"),
            ("Content-Type", "application/x-amz-json-1.1"),
        ],
        &body,
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "PutResourcePolicy: {reply}");
    let out = mesh(&consumer, &consumer_dev, &["run"]);
    let text = both(&out);
    assert!(!out.status.success(), "read without the bucket grant: {text}");
    assert!(
        text.contains("f01.daily_sales@1") && text.contains("AccessDenied"),
        "{text}"
    );

    // And the bucket policy: the run reads the product.
    let bucket_policy = std::fs::read_to_string(policies.join("s3-f01-curated-dev.json")).unwrap();
    let reply = request(&m, f01, "PUT", "/f01-curated-dev?policy", &[], &bucket_policy);
    assert!(reply.starts_with("HTTP/1.1 20"), "PutBucketPolicy: {reply}");
    let out = mesh(&consumer, &consumer_dev, &["run"]);
    assert!(out.status.success(), "{}", both(&out));

    // One row per store of f01's table in dev, with its totals.
    let expected = rows(
        root,
        &producer,
        "SELECT store_id, COUNT(*) AS days, CAST(SUM(units) AS BIGINT) AS units, CAST(SUM(revenue) AS DECIMAL(18,2)) AS revenue FROM f01_curated.daily_sales GROUP BY store_id",
    );
    let got = rows(&consumer, &consumer_dev, "SELECT * FROM m02_curated.store_revenue");
    assert!(!expected.is_empty());
    assert_eq!(got, expected, "m02's table is not f01's dev product aggregated");

    // The run record names f01's current snapshot in dev (not the local pin).
    let out = mesh(
        root,
        &producer,
        &["table", "show", "curated.daily_sales", "--format", "json"],
    );
    assert!(out.status.success(), "{}", both(&out));
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let current = info["snapshot_id"]
        .as_i64()
        .or_else(|| info["current_snapshot_id"].as_i64())
        .unwrap_or_else(|| panic!("no snapshot id in {info}"));
    let mut runs: Vec<_> = std::fs::read_dir(consumer.join(".mesh/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    runs.sort();
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.last().unwrap()).unwrap()).unwrap();
    let read = &record["pipelines"][0]["steps"][0]["metrics"]["products_read"][0];
    assert_eq!(read["product"], "f01.daily_sales", "{record}");
    assert_eq!(read["snapshot_id"].as_i64(), Some(current), "{record}");

    // Three days later without a new commit by f01, the product is stale; only its producer
    // can make it fresh on AWS, and the error says so.
    let committed = read["committed_at_ms"].as_i64().unwrap();
    let late = common::at_hours_after(committed, 72);
    let out = mesh(&consumer, &consumer_dev, &["run", "--at", &late]);
    let text = both(&out);
    assert!(!out.status.success(), "{text}");
    for w in [
        "`f01.daily_sales@1` is stale",
        "older than its producer's promise (within 26h)",
        "the producer's pipeline has not committed f01.daily_sales@1 since",
    ] {
        assert!(text.contains(w), "`{w}` not in: {text}");
    }
}
