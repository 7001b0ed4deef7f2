//! Sharing data products with other accounts (issue 25 item 4): the rendered Glue catalog,
//! bucket and key policies grant each consumer account exactly its products, `mesh check iam`
//! proves it on the files Terraform loads, and counts a grant widened by hand.

mod common;

use std::path::Path;

use mesh_domain::{Consumer, DomainAbbr, Env, Name, TableRef};
use mesh_infra::iam_check;
use serde_json::Value;

fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn leaks(report: &iam_check::Report) -> Vec<String> {
    report.violations.iter().map(|v| v.to_string()).collect()
}

#[test]
fn the_example_shares_daily_sales_with_its_consumer_and_nothing_else() {
    let (dir, rendered) = common::rendered_tree();
    let d = common::example_domain();
    for env in Env::CLOUD {
        let tf = rendered
            .files
            .iter()
            .find(|f| f.path.to_string_lossy() == format!("envs/{env}/sharing.tf"))
            .unwrap_or_else(|| panic!("no sharing.tf in {env}"));
        assert!(tf
            .contents
            .contains("resource \"aws_glue_resource_policy\" \"products\""));
        assert!(tf
            .contents
            .contains("file(\"${path.module}/resource_policies/glue-catalog.json\")"));
        let storage = read(dir.path(), &format!("envs/{env}/storage.tf"));
        assert!(
            storage.contains(&format!(
                "file(\"${{path.module}}/resource_policies/s3-f01-curated-{env}.json\")"
            )),
            "the curated bucket's policy is the file check iam reads"
        );
        assert!(storage.contains("file(\"${path.module}/resource_policies/kms-data-key.json\")"));
        // Buckets that hold no product keep their inline policy.
        assert!(!storage.contains(&format!("s3-f01-raw-{env}.json")));
    }
    let glue: Value = serde_json::from_str(&read(dir.path(), "envs/dev/resource_policies/glue-catalog.json")).unwrap();
    let st = &glue["Statement"][0];
    assert_eq!(st["Principal"]["AWS"][0], "arn:aws:iam::444444444444:root");
    assert_eq!(
        st["Resource"],
        serde_json::json!([
            "arn:aws:glue:eu-west-1:111111111111:catalog",
            "arn:aws:glue:eu-west-1:111111111111:database/f01_curated",
            "arn:aws:glue:eu-west-1:111111111111:table/f01_curated/daily_sales"
        ])
    );
    let prod: Value = serde_json::from_str(&read(
        dir.path(),
        "envs/prod/resource_policies/s3-f01-curated-prod.json",
    ))
    .unwrap();
    let objects = prod["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "ProductDailySalesV1Objects")
        .unwrap();
    assert_eq!(objects["Principal"]["AWS"][0], "arn:aws:iam::666666666666:root");
    assert_eq!(
        objects["Resource"],
        "arn:aws:s3:::f01-curated-prod/pj01/iceberg/daily_sales/*"
    );

    let report = iam_check::check(&d, dir.path(), &Env::CLOUD).unwrap();
    assert!(report.passed(), "{report}");
    assert_eq!(report.consumers.len(), 3);
    let text = report.to_string();
    // The consumer reads and lists its product, and only that table.
    let m02 = |table: &str| {
        text.lines()
            .find(|l| l.contains("444444444444 (m02)") && l.contains(table))
            .unwrap_or_else(|| panic!("no row for {table}:\n{text}"))
            .split_whitespace()
            .rev()
            .take(3)
            .collect::<Vec<_>>()
    };
    assert_eq!(m02("f01_curated.daily_sales [daily_sales v1]"), [".", "rl", "r"]);
    for other in [
        "f01_curated.customers",
        "f01_refined.orders_clean",
        "f01_raw.sales_events",
    ] {
        assert_eq!(m02(other), [".", "-", "-"], "{other}");
    }
    assert!(text.contains("999999999999 (none)"), "{text}");
}

/// The brief's test: each grant widened one step (a prefix one level up, a table wildcard,
/// the key without its S3 condition) is counted as extra access of the consumer.
#[test]
fn a_widened_grant_is_counted() {
    let d = common::example_domain();
    let cases: [(&str, &str, &str, &str); 5] = [
        (
            "envs/dev/resource_policies/s3-f01-curated-dev.json",
            "\"arn:aws:s3:::f01-curated-dev/pj01/iceberg/daily_sales/*\"",
            "\"arn:aws:s3:::f01-curated-dev/pj01/iceberg/*\"",
            "LEAK: allowed s3:GetObject on arn:aws:s3:::f01-curated-dev/pj01/iceberg/some_table/",
        ),
        (
            "envs/dev/resource_policies/s3-f01-curated-dev.json",
            "\"pj01/iceberg/daily_sales/*\"",
            "\"pj01/iceberg/daily_sales*\"",
            "LEAK: allowed s3:ListBucket on arn:aws:s3:::f01-curated-dev (s3:prefix = pj01/iceberg/daily_sales_v2/)",
        ),
        (
            "envs/dev/resource_policies/glue-catalog.json",
            "table/f01_curated/daily_sales\"",
            "table/f01_curated/*\"",
            "LEAK: allowed glue:GetTable on arn:aws:glue:eu-west-1:111111111111:table/f01_curated/customers",
        ),
        (
            "envs/dev/resource_policies/kms-data-key.json",
            ",\n          \"kms:ViaService\": \"s3.eu-west-1.amazonaws.com\"",
            "",
            "LEAK: allowed kms:Decrypt on arn:aws:kms:eu-west-1:111111111111:key/data",
        ),
        (
            "envs/dev/resource_policies/s3-f01-curated-dev.json",
            "\"Action\": \"s3:GetObject\"",
            "\"Action\": \"s3:*Object\"",
            "LEAK: allowed s3:PutObject on arn:aws:s3:::f01-curated-dev/pj01/iceberg/daily_sales/",
        ),
    ];
    for (file, from, to, wanted) in cases {
        let (dir, _) = common::rendered_tree();
        let path = dir.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from}");
        std::fs::write(&path, text.replace(from, to)).unwrap();
        let report = iam_check::check(&d, dir.path(), &[Env::Dev]).unwrap();
        let leaks = leaks(&report);
        assert!(
            leaks.iter().any(|l| l.contains(wanted)),
            "{to}: wanted `{wanted}` in\n{}",
            leaks.join("\n")
        );
        assert!(
            leaks
                .iter()
                .all(|l| l.contains("consumer arn:aws:iam::444444444444:root")),
            "only the consumer gains: {}",
            leaks.join("\n")
        );
    }
}

/// Two products of two projects, each with its own consumer (and one consumer of both): each
/// account reads exactly what it was granted, and the matrix says so table by table.
#[test]
fn each_consumer_reads_exactly_its_products() {
    let mut d = common::example_domain();
    let pj03 = d.projects.iter().position(|p| p.slug.as_str() == "pj03").unwrap();
    let sales = d.projects.iter().position(|p| !p.products.is_empty()).unwrap();
    let mut second = d.projects[sales].products[0].clone();
    second.name = Name::parse("orders_by_country").unwrap();
    second.table = TableRef {
        layer: mesh_domain::Layer::Curated,
        table: Name::parse("orders_by_country").unwrap(),
    };
    let mut r04 = second.consumers[0].clone();
    r04.domain = DomainAbbr::parse("r04").unwrap();
    for a in r04.accounts.values_mut() {
        *a = a.replace('4', "7").replace('5', "8").replace('6', "9");
    }
    second.consumers = vec![r04, second.consumers[0].clone()];
    d.projects[pj03].products.push(second);
    let rendered = mesh_infra::render(&d, &Env::CLOUD).unwrap();
    let dir = tempfile::tempdir().unwrap();
    mesh_infra::write(&rendered, dir.path()).unwrap();
    let report = iam_check::check(&d, dir.path(), &[Env::Dev]).unwrap();
    assert!(report.passed(), "{report}");
    let text = report.to_string();
    let cells = |who: &str, table: &str| {
        text.lines()
            .find(|l| l.contains(who) && l.contains(table))
            .unwrap_or_else(|| panic!("no row {who} {table}:\n{text}"))
            .split_whitespace()
            .rev()
            .skip(1)
            .take(2)
            .collect::<Vec<_>>()
    };
    // m02 consumes both; r04 only orders_by_country.
    assert_eq!(cells("444444444444 (m02)", "f01_curated.daily_sales"), ["rl", "r"]);
    assert_eq!(
        cells("444444444444 (m02)", "f01_curated.orders_by_country"),
        ["rl", "r"]
    );
    assert_eq!(
        cells("777777777777 (r04)", "f01_curated.orders_by_country"),
        ["rl", "r"]
    );
    assert_eq!(cells("777777777777 (r04)", "f01_curated.daily_sales"), ["-", "-"]);
    // One catalog policy with both products' statements.
    let glue: Value = serde_json::from_str(&read(dir.path(), "envs/dev/resource_policies/glue-catalog.json")).unwrap();
    assert_eq!(glue["Statement"].as_array().unwrap().len(), 2);
    // Widening r04's object grant to the warehouse of pj03 reaches orders_clean's neighbours:
    // the curated bucket's pj03 warehouse holds only orders_by_country, so the sibling probe
    // (`some_table/`) shows it.
    let path = dir.path().join("envs/dev/resource_policies/s3-f01-curated-dev.json");
    let widened = read(dir.path(), "envs/dev/resource_policies/s3-f01-curated-dev.json").replace(
        "\"arn:aws:s3:::f01-curated-dev/pj03/iceberg/orders_by_country/*\"",
        "\"arn:aws:s3:::f01-curated-dev/pj03/*\"",
    );
    std::fs::write(&path, widened).unwrap();
    let report = iam_check::check(&d, dir.path(), &[Env::Dev]).unwrap();
    let leaks = leaks(&report);
    assert!(
        leaks.iter().any(|l| l.contains("777777777777")
            && l.contains("allowed s3:GetObject on arn:aws:s3:::f01-curated-dev/pj03/some_table/")),
        "{}",
        leaks.join("\n")
    );
}

#[test]
fn environments_sharing_an_account_share_one_catalog_policy() {
    let mut d = common::example_domain();
    let dev = d.accounts[&Env::Dev].clone();
    d.accounts.insert(Env::Int, dev);
    let rendered = mesh_infra::render(&d, &Env::CLOUD).unwrap();
    let names: Vec<String> = rendered
        .files
        .iter()
        .map(|f| f.path.to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"envs/dev/sharing.tf".to_string()));
    assert!(
        !names.contains(&"envs/int/sharing.tf".to_string()),
        "int's catalog is dev's"
    );
    let glue = rendered
        .files
        .iter()
        .find(|f| f.path.to_string_lossy() == "envs/dev/resource_policies/glue-catalog.json")
        .unwrap();
    // The consumer's dev and int accounts, in the one policy.
    assert!(glue.contents.contains("444444444444") && glue.contents.contains("555555555555"));
    // Buckets are per environment: int's bucket policy still shares with int's account.
    let dir = tempfile::tempdir().unwrap();
    mesh_infra::write(&rendered, dir.path()).unwrap();
    let report = iam_check::check(&d, dir.path(), &[Env::Int]).unwrap();
    assert!(report.passed(), "{report}");
}

#[test]
fn a_domain_that_shares_nothing_renders_no_sharing_and_passes() {
    let mut d = common::example_domain();
    for p in &mut d.projects {
        for pr in &mut p.products {
            pr.consumers = Vec::<Consumer>::new();
        }
    }
    let rendered = mesh_infra::render(&d, &Env::CLOUD).unwrap();
    assert!(rendered
        .files
        .iter()
        .all(|f| !f.path.to_string_lossy().contains("sharing")
            && !f.path.to_string_lossy().contains("resource_policies")));
    let dir = tempfile::tempdir().unwrap();
    mesh_infra::write(&rendered, dir.path()).unwrap();
    let report = iam_check::check(&d, dir.path(), &[Env::Dev]).unwrap();
    assert!(report.passed(), "{report}");
    // The outsider alone is probed.
    assert!(report.consumers[0]
        .1
        .rows
        .iter()
        .all(|r| r.principal.contains("(none)")));
}

#[test]
fn a_missing_resource_policy_is_an_error_with_the_fix() {
    let (dir, _) = common::rendered_tree();
    std::fs::remove_file(dir.path().join("envs/prod/resource_policies/glue-catalog.json")).unwrap();
    let err = iam_check::check(&common::example_domain(), dir.path(), &[Env::Prod])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("glue-catalog.json")
            && err.contains("Glue Data Catalog resource policy")
            && err.contains("mesh render"),
        "{err}"
    );
}

/// parliament (the IAM linter the role policies pass) on the catalog and bucket policies. The
/// key policy is left out: parliament reads every document as an identity policy, and in a
/// key policy `"Resource": "*"` is the key itself, which it reports as RESOURCE_STAR.
#[test]
fn parliament_finds_nothing_in_the_catalog_and_bucket_policies() {
    let python = common::tool("MESH_PYTHON");
    let (dir, _) = common::rendered_tree();
    let mut files = Vec::new();
    for env in Env::CLOUD {
        for e in std::fs::read_dir(dir.path().join(format!("envs/{env}/resource_policies"))).unwrap() {
            let p = e.unwrap().path();
            if !p.to_string_lossy().ends_with("kms-data-key.json") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert_eq!(files.len(), 6, "{files:?}");
    let out = std::process::Command::new(&python)
        .arg(common::tools_dir().join("parliament_check.py"))
        .args(&files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("6 policies, 0 findings"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
