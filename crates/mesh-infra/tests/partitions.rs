//! The ARN partition comes from the domain's region (issue 26, item 11): a domain in China
//! (`cn-north-1`) or GovCloud (`us-gov-west-1`) renders no `arn:aws:` anywhere, in its
//! Terraform, policies, state machines or workflows, and `mesh check iam` still proves the
//! isolation matrix on its policies.

mod common;

use mesh_domain::{Domain, Env};
use mesh_infra::workflows::{self, MeshSource};

fn in_region(region: &str) -> Domain {
    let mut d = common::example_domain();
    d.region = region.to_string();
    d
}

/// Every rendered file of a domain: infra/ and the workflows.
fn everything(d: &Domain) -> Vec<(String, String)> {
    let mut files = mesh_infra::render(d, &Env::CLOUD).expect("renders");
    files
        .files
        .extend(workflows::render(d, &MeshSource::Workspace).expect("workflows").files);
    files
        .files
        .into_iter()
        .map(|f| (f.path.display().to_string(), f.contents))
        .collect()
}

#[test]
fn china_and_govcloud_domains_render_no_commercial_arn() {
    for (region, partition) in [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")] {
        let d = in_region(region);
        let files = everything(&d);
        let mut arns = 0;
        for (path, text) in &files {
            assert!(
                !text.contains("arn:aws:"),
                "{region}: {path} still has a commercial ARN:\n{}",
                text.lines()
                    .filter(|l| l.contains("arn:aws:"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            arns += text.matches(&format!("arn:{partition}:")).count();
        }
        // Each kind of ARN the generator builds, in this partition.
        let all: String = files.iter().map(|(_, t)| t.as_str()).collect();
        for needle in [
            format!("arn:{partition}:s3:::f01-curated-dev/pj01/"),
            format!("arn:{partition}:glue:{region}:111111111111:table/"),
            format!("arn:{partition}:states:::glue:startJobRun.sync"),
            format!("arn:{partition}:states:::sns:publish"),
            format!("arn:{partition}:iam::aws:policy/PowerUserAccess"),
            format!("arn:{partition}:iam::333333333333:role/f01-github-deploy-prod"),
            format!("arn:{partition}:iam::111111111111:root"),
            format!("arn:{partition}:logs:{region}:111111111111:log-group:*"),
            format!("arn:{partition}:kms:{region}:111111111111:key/*"),
        ] {
            assert!(all.contains(&needle), "{region}: no `{needle}` in the rendering");
        }
        assert!(arns > 100, "{region}: only {arns} ARNs in {partition}");
        // The policies still isolate the projects: `mesh check iam` on this rendering.
        let dir = tempfile::tempdir().unwrap();
        mesh_infra::write(&mesh_infra::render(&d, &Env::CLOUD).unwrap(), dir.path()).unwrap();
        let report = mesh_infra::iam_check::check(&d, dir.path(), &Env::CLOUD).expect("iam check runs");
        assert!(report.violations.is_empty(), "{region}: {:?}", report.violations);
        assert!(report.requests > 100);
    }
}

#[test]
fn the_example_domain_stays_in_the_commercial_partition() {
    let files = everything(&common::example_domain());
    let all: String = files.iter().map(|(_, t)| t.as_str()).collect();
    assert!(all.contains("arn:aws:states:::glue:startJobRun.sync"));
    assert!(
        !all.contains("arn:aws-"),
        "a commercial region rendered another partition"
    );
}
