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

/// Where a run happens: the local lake, or `dev` on the moto server.
enum Target<'a> {
    Local,
    Dev(&'a Moto),
}

fn mesh(root: &Path, target: &Target<'_>, args: &[&str]) -> Output {
    let mut cmd = common::mesh_at(root);
    cmd.args(args);
    if let Target::Dev(m) = target {
        cmd.env("ENV", "dev")
            .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", m.port))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test");
    }
    cmd.output().unwrap()
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
