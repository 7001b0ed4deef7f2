//! Consuming another domain's data product on the real binary (issue 25 item 5): a producer
//! and a consumer domain side by side in a temp folder. The consumer pins the producer's
//! product (`mesh pull`), its job reads the producer's rows at the pinned snapshot (not the
//! producer's later writes), and its run record names the product, version and snapshot; a
//! breaking change in the producer fails the producer's `mesh validate --against` naming the
//! consumer and the consumer's `mesh validate` naming the change; an additive change passes; a
//! version bump passes the producer and fails the consumer until it moves to the new version.
//! The consumer's rendered Glue role reads the product in the producer's account, and `mesh
//! check iam` counts a widened grant.
//!
//! A product older than its producer's freshness promise at the run's time fails the
//! consumer's job before it writes (a failed freshness check in the run record), and the report
//! shows the product read, its age and verdict, and the lineage across domains (issue 25 item 6).
//!
//! On AWS: crates/mesh-cli/tests/cloud.rs runs a consumer on moto with two accounts against
//! the producer's generated grants; consume_on_spark.rs runs the consumer's Glue job on Spark.

use std::path::Path;

mod common;
use common::{both, git, mesh};

const PRODUCER_DOMAIN: &str = r#"{
  "domain_name": "producer01",
  "domain_abbr": "p01",
  "aws_region": "eu-west-1",
  "aws_accounts": { "dev": "111111111111", "int": "222222222222", "prod": "333333333333" }
}"#;

const PRODUCER: &str = r#"name = "shop"
project_slug = "pj01"
owner = "shop-team"
classification = "internal"

[[tables]]
name = "sales"
layer = "raw"
format = "csv"
columns = [
  { name = "sale_date", type = "date", nullable = false },
  { name = "store_id", type = "int", nullable = false },
  { name = "units", type = "long", nullable = false },
  { name = "revenue", type = "decimal(18,2)", nullable = false },
]
[tables.csv]
header = true

[[tables]]
name = "daily"
layer = "curated"
columns = [
  { name = "sale_date", type = "date", nullable = false },
  { name = "store_id", type = "int", nullable = false },
  { name = "units", type = "long", nullable = false },
  { name = "revenue", type = "decimal(18,2)", nullable = false },
]

[[jobs]]
name = "daily"
sql = "sql/daily.sql"
inputs = ["raw.sales"]
output = "curated.daily"
mode = "overwrite"

[[products]]
name = "daily_sales"
table = "curated.daily"
version = 1
description = "Sales per store and day."
freshness = "26h"
consumers = [{ domain = "c02", accounts = { dev = "444444444444" } }]
"#;

const PRODUCER_SQL: &str = "SELECT sale_date, store_id, CAST(SUM(units) AS BIGINT) AS units, CAST(SUM(revenue) AS DECIMAL(18,2)) AS revenue\nFROM p01_raw.sales\nGROUP BY sale_date, store_id\n";

const CONSUMER_DOMAIN: &str = r#"{
  "domain_name": "consumer02",
  "domain_abbr": "c02",
  "aws_region": "eu-west-1",
  "aws_accounts": { "dev": "444444444444", "int": "555555555555", "prod": "666666666666" }
}"#;

const CONSUMER: &str = r#"name = "reports"
project_slug = "pj01"
owner = "reports-team"
classification = "internal"

[[consumes]]
product = "p01.daily_sales@1"
path = "../producer"
accounts = { dev = "111111111111" }

[[tables]]
name = "store_totals"
layer = "curated"
columns = [
  { name = "store_id", type = "int", nullable = false },
  { name = "revenue", type = "decimal(18,2)" },
]

[[jobs]]
name = "store_totals"
sql = "sql/store_totals.sql"
inputs = ["p01.daily_sales"]
output = "curated.store_totals"
mode = "overwrite"
"#;

const CONSUMER_SQL: &str =
    "SELECT store_id, CAST(SUM(revenue) AS DECIMAL(18,2)) AS revenue\nFROM p01_curated.daily\nGROUP BY store_id\n";

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A raw CSV file of the producer's sales.
fn land(producer: &Path, file: &str, rows: &[&str]) {
    let mut text = String::from("sale_date,store_id,units,revenue\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    write(
        &producer.join(format!(".mesh/lake/p01-raw-local/pj01/sales/{file}")),
        &text,
    );
}

fn ok(o: std::process::Output) -> String {
    assert!(o.status.success(), "{}", both(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fails(o: std::process::Output, code: i32, wanted: &[&str]) -> String {
    let text = both(&o);
    assert_eq!(o.status.code(), Some(code), "{text}");
    for w in wanted {
        assert!(text.contains(w), "`{w}` not in:\n{text}");
    }
    text
}

fn totals(consumer: &Path) -> String {
    ok(mesh(
        consumer,
        &[
            "sql",
            "SELECT store_id, revenue FROM c02_curated.store_totals ORDER BY store_id",
            "--format",
            "json",
        ],
    ))
}

/// The producer domain (`p01`, project `shop` publishing `daily_sales`) at `dir`.
fn write_producer(dir: &Path) {
    write(&dir.join("domain.json"), PRODUCER_DOMAIN);
    write(&dir.join("projects/shop/project.toml"), PRODUCER);
    write(&dir.join("projects/shop/sql/daily.sql"), PRODUCER_SQL);
}

/// The consumer domain (`c02`, project `reports` reading `p01.daily_sales@1`) at `dir`.
fn write_consumer(dir: &Path) {
    write(&dir.join("domain.json"), CONSUMER_DOMAIN);
    write(&dir.join("projects/reports/project.toml"), CONSUMER);
    write(&dir.join("projects/reports/sql/store_totals.sql"), CONSUMER_SQL);
}

#[test]
fn a_consumer_reads_the_pinned_snapshot_and_validation_follows_the_producers_contract() {
    let dir = tempfile::tempdir().unwrap();
    let producer = dir.path().join("producer");
    let consumer = dir.path().join("consumer");
    write_producer(&producer);
    git(&producer, &["init", "-q", "-b", "main"]);
    git(&producer, &["add", "domain.json", "projects"]);
    git(&producer, &["commit", "-q", "-m", "base"]);
    write_consumer(&consumer);

    // The producer writes its product: snapshot 1.
    land(&producer, "day1.csv", &["2026-01-01,1,2,10.00", "2026-01-01,2,1,5.50"]);
    ok(mesh(&producer, &["run", "shop", "--job", "daily"]));

    // Not pulled yet: validation and the run say what to do.
    fails(
        mesh(&consumer, &["validate"]),
        2,
        &["`p01.daily_sales@1` is not pulled", "mesh pull", "consumes[0].product"],
    );
    let pulled = ok(mesh(&consumer, &["pull"]));
    assert!(
        pulled.contains("pinned p01.daily_sales@1 (p01_curated.daily) at snapshot"),
        "{pulled}"
    );
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(consumer.join("products.lock.json")).unwrap()).unwrap();
    let pinned = lock["products"][0]["snapshot_id"].as_i64().unwrap();
    ok(mesh(&consumer, &["validate"]));

    // On AWS: the consumer's Glue role reads the product in the producer's account (its
    // catalog, the table's location, the key through S3), and check iam proves exactly that.
    let rendered = both(&mesh(&consumer, &["render"]));
    assert!(
        !rendered.contains("another domain"),
        "the Glue job reads products: {rendered}"
    );
    let policy = std::fs::read_to_string(consumer.join("infra/envs/dev/policies/c02-glue-pj01-dev.json")).unwrap();
    for wanted in [
        "\"Sid\": \"ConsumedP01DailySalesV1Catalog\"",
        "arn:aws:glue:eu-west-1:111111111111:table/p01_curated/daily\"",
        "arn:aws:s3:::p01-curated-dev/pj01/iceberg/daily/*\"",
        "\"pj01/iceberg/daily/*\"",
        "arn:aws:kms:eu-west-1:111111111111:key/*",
    ] {
        assert!(policy.contains(wanted), "{wanted} not in {policy}");
    }
    // The producer's account is named for dev only: int has no grant.
    let int = std::fs::read_to_string(consumer.join("infra/envs/int/policies/c02-glue-pj01-int.json")).unwrap();
    assert!(!int.contains("Consumed"), "{int}");
    ok(mesh(&consumer, &["check", "iam", "--env", "dev"]));
    let path = consumer.join("infra/envs/dev/policies/c02-glue-pj01-dev.json");
    std::fs::write(&path, policy.replace("pj01/iceberg/daily/*\"", "pj01/iceberg/*\"")).unwrap();
    fails(
        mesh(&consumer, &["check", "iam", "--env", "dev"]),
        1,
        &["LEAK: allowed s3:GetObject on arn:aws:s3:::p01-curated-dev/pj01/iceberg/daily_v2/"],
    );
    std::fs::write(&path, policy).unwrap();

    // The producer writes again: snapshot 2, other totals. The consumer still reads snapshot 1.
    land(&producer, "day2.csv", &["2026-01-02,1,1,100.00"]);
    ok(mesh(&producer, &["run", "shop", "--job", "daily"]));
    ok(mesh(&consumer, &["run", "reports", "--job", "store_totals"]));
    let rows = totals(&consumer);
    assert_eq!(
        rows.trim(),
        r#"[{"store_id":1,"revenue":10.00},{"store_id":2,"revenue":5.50}]"#
    );
    assert!(!rows.contains("110.00"), "the producer's later write was read: {rows}");
    // The run record names what was read.
    let runs: Vec<_> = std::fs::read_dir(consumer.join(".mesh/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let record = std::fs::read_to_string(&runs[0]).unwrap();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    let read = &record["pipelines"][0]["steps"][0]["metrics"]["products_read"][0];
    assert_eq!(read["product"], "p01.daily_sales", "{record}");
    assert_eq!(read["version"], 1);
    assert_eq!(read["snapshot_id"].as_i64(), Some(pinned));
    assert_eq!(read["rows"], 2);

    // After a new pull the consumer reads snapshot 2.
    ok(mesh(&consumer, &["pull"]));
    ok(mesh(&consumer, &["run", "reports", "--job", "store_totals"]));
    assert_eq!(
        totals(&consumer).trim(),
        r#"[{"store_id":1,"revenue":110.00},{"store_id":2,"revenue":5.50}]"#
    );

    // An additive change (a new nullable column) passes both sides.
    let additive = PRODUCER.replace(
        "  { name = \"revenue\", type = \"decimal(18,2)\", nullable = false },\n]\n\n[[jobs]]",
        "  { name = \"revenue\", type = \"decimal(18,2)\", nullable = false },\n  { name = \"note\", type = \"string\" },\n]\n\n[[jobs]]",
    );
    assert_ne!(additive, PRODUCER);
    write(&producer.join("projects/shop/project.toml"), &additive);
    write(
        &producer.join("projects/shop/sql/daily.sql"),
        &PRODUCER_SQL.replace("AS revenue\n", "AS revenue, CAST(NULL AS STRING) AS note\n"),
    );
    ok(mesh(&producer, &["validate", "--against", "main"]));
    ok(mesh(&consumer, &["validate"]));

    // A breaking change without a version bump: the producer is refused naming the consumer,
    // and the consumer is refused naming the change.
    let units = "  { name = \"units\", type = \"long\", nullable = false },\n";
    let breaking = PRODUCER.replacen(units, "", 2);
    write(&producer.join("projects/shop/project.toml"), &breaking);
    write(
        &producer.join("projects/shop/sql/daily.sql"),
        "SELECT sale_date, store_id, CAST(SUM(revenue) AS DECIMAL(18,2)) AS revenue\nFROM p01_raw.sales\nGROUP BY sale_date, store_id\n",
    );
    fails(
        mesh(&producer, &["validate", "--against", "main"]),
        2,
        &["daily_sales", "column `units` removed", "c02"],
    );
    fails(
        mesh(&consumer, &["validate"]),
        2,
        &[
            "projects/reports/project.toml",
            "`p01.daily_sales@1` changed in a way that breaks this project without a new major version",
            "column `units` removed (breaking)",
        ],
    );

    // The producer raises the major version: it passes, and the consumer fails until it moves.
    write(
        &producer.join("projects/shop/project.toml"),
        &breaking.replace("version = 1", "version = 2"),
    );
    ok(mesh(&producer, &["validate", "--against", "main"]));
    fails(
        mesh(&consumer, &["validate"]),
        2,
        &[
            "now publishes `daily_sales` at version 2",
            "column `units` removed",
            "p01.daily_sales@2",
        ],
    );
    fails(
        mesh(&consumer, &["pull"]),
        2,
        &["the producer publishes version 2 of `daily_sales`, not 1"],
    );
    write(
        &consumer.join("projects/reports/project.toml"),
        &CONSUMER.replace("@1", "@2"),
    );
    fails(mesh(&consumer, &["validate"]), 2, &["not pulled at version 2"]);
    ok(mesh(&consumer, &["pull"]));
    ok(mesh(&consumer, &["validate"]));
}

/// The latest run record of `root`.
fn last_record(root: &Path) -> (String, serde_json::Value) {
    let mut runs: Vec<_> = std::fs::read_dir(root.join(".mesh/runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    runs.sort();
    let last = runs.last().expect("a run record");
    let id = last.file_stem().unwrap().to_string_lossy().into_owned();
    (
        id,
        serde_json::from_str(&std::fs::read_to_string(last).unwrap()).unwrap(),
    )
}

/// The HTML report of run `id` of `root`.
fn report(root: &Path, id: &str) -> String {
    let page = root.join(format!("{id}.html"));
    ok(mesh(root, &["report", id, "--out", page.to_str().unwrap()]));
    std::fs::read_to_string(page).unwrap()
}

/// A product older than its producer's freshness promise at the run's time (issue 25 item 6):
/// the consumer's job records a failed freshness check and stops before writing, with what to
/// do; within the promise it records a passing one. The run's time is `--at`, never the clock:
/// the pin is judged 25 h and 3 days after its commit. The report lists the product read with
/// its age and verdict, and its lineage draws the product as another domain's node.
#[test]
fn a_product_older_than_its_promise_fails_the_job_before_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let producer = dir.path().join("producer");
    let consumer = dir.path().join("consumer");
    write_producer(&producer);
    write_consumer(&consumer);
    land(&producer, "day1.csv", &["2026-01-01,1,2,10.00", "2026-01-01,2,1,5.50"]);
    ok(mesh(&producer, &["run", "shop", "--job", "daily"]));
    ok(mesh(&consumer, &["pull"]));
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(consumer.join("products.lock.json")).unwrap()).unwrap();
    let (snapshot, committed) = (
        lock["products"][0]["snapshot_id"].as_i64().unwrap(),
        lock["products"][0]["committed_at_ms"].as_i64().unwrap(),
    );
    let after = |hours: i64| common::at_hours_after(committed, hours);
    let commit_text = chrono::DateTime::from_timestamp_millis(committed)
        .unwrap()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    let snapshots = || -> usize {
        let out = ok(mesh(
            &consumer,
            &["table", "snapshots", "curated.store_totals", "--format", "json"],
        ));
        serde_json::from_str::<serde_json::Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    let freshness_check = |record: &serde_json::Value| {
        let step = &record["pipelines"][0]["steps"][0];
        assert_eq!(step["target"], "p01.daily_sales@1 → curated.store_totals");
        let check = step["metrics"]["checks"]
            .as_array()
            .unwrap_or_else(|| panic!("no checks in {step}"))
            .iter()
            .find(|c| c["name"] == "freshness(p01.daily_sales@1)")
            .unwrap_or_else(|| panic!("no freshness check in {step}"))
            .clone();
        assert_eq!(check["check"], "freshness");
        assert_eq!(check["severity"], "error");
        assert_eq!(check["freshness"]["snapshot_id"].as_i64(), Some(snapshot), "{check}");
        assert_eq!(check["freshness"]["committed_at_ms"].as_i64(), Some(committed));
        assert_eq!(check["freshness"]["promise"], "26h");
        assert_eq!(
            step["metrics"]["products_read"][0]["snapshot_id"].as_i64(),
            Some(snapshot)
        );
        (step["status"].as_str().unwrap().to_string(), check)
    };

    // Within the promise: 25 h after the commit. A passing check, the job writes.
    ok(mesh(
        &consumer,
        &["run", "reports", "--job", "store_totals", "--at", &after(25)],
    ));
    let (fresh_id, record) = last_record(&consumer);
    let (status, check) = freshness_check(&record);
    assert_eq!(status, "succeeded");
    assert_eq!(check["passed"], true, "{check}");
    assert_eq!(check["freshness"]["age_seconds"].as_u64(), Some(25 * 3600));
    assert!(
        check["detail"].as_str().unwrap().contains("1d1h old at the run's time"),
        "{check}"
    );
    assert_eq!(snapshots(), 1);
    let rows = totals(&consumer);

    // Three days after the commit: older than the 26 h promise. The job fails before its query.
    let text = fails(
        mesh(&consumer, &["run", "reports", "--job", "store_totals", "--at", &after(72)]),
        1,
        &[
            "job `store_totals`: `p01.daily_sales@1` is stale",
            &format!("the snapshot read ({snapshot}, committed {commit_text}) is 3d old at the run's time"),
            "older than its producer's promise (within 26h)",
            "nothing was committed to curated.store_totals",
            "help: run `mesh pull` to pin the producer's current snapshot of p01.daily_sales@1, and commit products.lock.json",
            "ask the product's owner (shop-team, project shop of domain p01)",
        ],
    );
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(snapshots(), 1, "nothing written to the output table");
    assert_eq!(totals(&consumer), rows);
    let (stale_id, record) = last_record(&consumer);
    assert_ne!(stale_id, fresh_id);
    assert_eq!(record["succeeded"], false);
    let (status, check) = freshness_check(&record);
    assert_eq!(status, "failed");
    assert_eq!(check["passed"], false, "{check}");
    assert_eq!(check["freshness"]["age_seconds"].as_u64(), Some(72 * 3600));
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("OLDER than the promise (26h)"),
        "{check}"
    );

    // The report of each run: the product read, fresh or STALE, and the lineage across the
    // domain's boundary.
    let section = |html: &str, start: &str, end: &str| -> String {
        let s = &html[html.find(start).unwrap_or_else(|| panic!("no `{start}` in the report"))..];
        s[..s.find(end).unwrap()].to_string()
    };
    let html = report(&consumer, &stale_id);
    let products = section(&html, "<section id=\"products\"", "</section>");
    let row = section(&products, "<tr class=\"product stale\">", "</tr>");
    for wanted in [
        "<code>p01.daily_sales@1</code>",
        "<td>p01</td>",
        &format!("<code>{snapshot}</code>"),
        &commit_text,
        ">3d<",
        "<td>26h</td>",
        "STALE",
    ] {
        assert!(row.contains(wanted), "`{wanted}` not in {row}");
    }
    let lineage = section(&html, "<svg class=\"lineage\"", "</svg>");
    let node = section(&lineage, "<g class=\"external product\">", "</g>");
    assert!(
        node.contains(">p01.daily_sales@1</text>") && node.contains("STALE: 3d old (promise 26h)"),
        "{node}"
    );
    assert!(
        lineage.contains("<title>job store_totals: p01.daily_sales@1 (domain p01) → curated.store_totals</title>"),
        "{lineage}"
    );
    let html = report(&consumer, &fresh_id);
    let row = section(&html, "<tr class=\"product fresh\">", "</tr>");
    assert!(row.contains(">fresh<") && row.contains(">1d1h<"), "{row}");
    assert!(!html.contains("STALE"));

    // The producer's report: its product's table has an arrow to its consumer domain.
    let (producer_run, _) = last_record(&producer);
    let html = report(&producer, &producer_run);
    let published = section(&html, "<table class=\"products-published\"", "</table>");
    assert!(
        published.contains("<code>p01.daily_sales@1</code>") && published.contains("c02 (dev 444444444444)"),
        "{published}"
    );
    let lineage = section(&html, "<svg class=\"lineage\"", "</svg>");
    assert!(lineage.contains(">domain c02</text>"), "{lineage}");
    assert!(lineage.contains("<title>product p01.daily_sales@1 → domain c02</title>"));

    // After a pull of the producer's current snapshot (written now) the job runs at the clock.
    land(&producer, "day2.csv", &["2026-01-02,1,1,100.00"]);
    ok(mesh(&producer, &["run", "shop", "--job", "daily"]));
    ok(mesh(&consumer, &["pull"]));
    ok(mesh(&consumer, &["run", "reports", "--job", "store_totals"]));
    assert_eq!(snapshots(), 2);
}

#[test]
fn a_job_input_names_a_declared_product_and_a_missing_producer_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let consumer = dir.path().join("consumer");
    write(&consumer.join("domain.json"), CONSUMER_DOMAIN);
    write(
        &consumer.join("projects/reports/project.toml"),
        &CONSUMER.replace("inputs = [\"p01.daily_sales\"]", "inputs = [\"p01.daily_sale\"]"),
    );
    write(&consumer.join("projects/reports/sql/store_totals.sql"), CONSUMER_SQL);
    fails(
        mesh(&consumer, &["validate"]),
        2,
        &[
            "`p01.daily_sale` is neither a table of this project nor a product it consumes",
            "p01.daily_sales",
        ],
    );
    write(&consumer.join("projects/reports/project.toml"), CONSUMER);
    // No producer checked out: validation says the pin could not be compared and that it is
    // not pulled; pull names the folder.
    fails(
        mesh(&consumer, &["validate"]),
        2,
        &["is not checked out at ../producer", "is not pulled"],
    );
    fails(
        mesh(&consumer, &["pull"]),
        2,
        &["the producer is not checked out at ../producer (no domain.json there)"],
    );
}

/// The repository's second example domain (examples/marketing02, `m02`) consumes the example
/// domain's product as its README says: the producer runs, the consumer pulls, validates, runs
/// and gets one row per store; its rendered Glue role reads f01's table in f01's dev account,
/// the account f01's resource policies grant m02's dev account, and check iam passes.
#[test]
fn the_example_consumer_domain_reads_the_example_product() {
    let dir = common::example_domain();
    let root = dir.path();
    common::copy_dir(&common::repo_root().join("examples"), &root.join("examples"));
    let consumer = root.join("examples/marketing02");
    for stale in [".mesh", "products.lock.json", "infra"] {
        let _ = std::fs::remove_dir_all(consumer.join(stale));
        let _ = std::fs::remove_file(consumer.join(stale));
    }
    fails(
        mesh(&consumer, &["validate"]),
        2,
        &["`f01.daily_sales@1` is not pulled"],
    );
    ok(mesh(root, &["run", "sales", "--sample-data", "--rows", "5000"]));
    let pulled = ok(mesh(&consumer, &["pull"]));
    assert!(
        pulled.contains("pinned f01.daily_sales@1 (f01_curated.daily_sales)"),
        "{pulled}"
    );
    ok(mesh(&consumer, &["validate"]));
    let listed = ok(mesh(&consumer, &["products"]));
    assert!(
        listed.contains("f01.daily_sales@1 by project store_performance from ../..")
            && listed.contains("pinned snapshot")
            && listed.contains("within its promise (26h)"),
        "{listed}"
    );
    ok(mesh(&consumer, &["run"]));
    let stores = ok(mesh(
        root,
        &[
            "sql",
            "SELECT COUNT(DISTINCT store_id) AS n FROM f01_curated.daily_sales",
            "--format",
            "json",
        ],
    ));
    let rows = ok(mesh(
        &consumer,
        &[
            "sql",
            "SELECT COUNT(*) AS n FROM m02_curated.store_revenue",
            "--format",
            "json",
        ],
    ));
    assert_eq!(stores.trim(), rows.trim(), "one row per store of f01's product");
    assert!(!rows.contains("\"n\":0"), "{rows}");

    // Both sides on AWS: f01 grants m02's dev account, and m02's role reads in f01's account.
    let m02: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(consumer.join("domain.json")).unwrap()).unwrap();
    let granted =
        std::fs::read_to_string(common::repo_root().join("infra/envs/dev/resource_policies/s3-f01-curated-dev.json"))
            .unwrap();
    assert!(
        granted.contains(&format!(
            "arn:aws:iam::{}:root",
            m02["aws_accounts"]["dev"].as_str().unwrap()
        )),
        "{granted}"
    );
    ok(mesh(&consumer, &["render"]));
    let role = std::fs::read_to_string(consumer.join("infra/envs/dev/policies/m02-glue-sp01-dev.json")).unwrap();
    assert!(
        role.contains("arn:aws:glue:eu-west-1:111111111111:table/f01_curated/daily_sales\""),
        "{role}"
    );
    assert!(
        role.contains("arn:aws:s3:::f01-curated-dev/pj01/iceberg/daily_sales/*\""),
        "{role}"
    );
    ok(mesh(&consumer, &["check", "iam"]));
}
