//! Property: whatever names a user picks, a domain that validates only derives AWS names
//! within AWS limits, and validation rejects exactly the choices whose derived names don't fit.

use std::path::Path;

use mesh_domain::{load_domain, Env, Naming};
use proptest::prelude::*;

fn ident(max: usize) -> impl Strategy<Value = String> {
    // Valid identifiers of any length up to `max`, so some derived names overflow their limit.
    proptest::string::string_regex(&format!("[a-z][a-z0-9]{{1,{}}}", max - 1)).unwrap()
}

fn snake(max: usize) -> impl Strategy<Value = String> {
    (1..=max).prop_flat_map(|n| proptest::string::string_regex(&format!("[a-z](_?[a-z0-9]){{0,{}}}", n / 2)).unwrap())
}

fn write_domain(dir: &Path, abbr: &str, slug: &str, table: &str, job: &str, pipeline: &str) {
    std::fs::write(
        dir.join("domain.json"),
        format!(r#"{{"domain_name": "prop", "domain_abbr": "{abbr}", "aws_region": "eu-west-1"}}"#),
    )
    .unwrap();
    let p = dir.join("projects/proj");
    std::fs::create_dir_all(p.join("sql")).unwrap();
    std::fs::write(p.join("sql/job.sql"), "SELECT 1 AS id").unwrap();
    std::fs::write(
        p.join("project.toml"),
        format!(
            r#"name = "proj"
project_slug = "{slug}"
owner = "o"
classification = "internal"

[[tables]]
name = "src_{table}"
layer = "raw"
columns = [{{ name = "id", type = "long" }}]

[[tables]]
name = "{table}"
layer = "curated"
columns = [{{ name = "id", type = "long" }}]

[[jobs]]
name = "{job}"
sql = "sql/job.sql"
inputs = ["raw.src_{table}"]
output = "curated.{table}"

[[pipelines]]
name = "{pipeline}"
steps = [{{ job = "{job}" }}]
"#
        ),
    )
    .unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn valid_domains_derive_names_within_aws_limits(
        abbr in ident(10), slug in ident(10), table in snake(90), job in snake(90), pipeline in snake(90),
    ) {
        let dir = tempfile::tempdir().unwrap();
        write_domain(dir.path(), &abbr, &slug, &table, &job, &pipeline);
        let result = load_domain(dir.path());
        // Recompute independently of validation: do all derived names fit?
        let abbr_id = mesh_domain::DomainAbbr::parse(&abbr).unwrap();
        let mut all_fit = true;
        for env in Env::ALL {
            let n = Naming::new(&abbr_id, env);
            let names = n.domain_names();
            for (kind, name) in names {
                all_fit &= kind.check(&name).is_ok();
            }
            if let Ok(d) = &result {
                for p in &d.projects {
                    for (kind, name) in n.project_names(p) {
                        prop_assert!(kind.check(&name).is_ok(), "{} `{}` passed validation but breaks AWS limits", kind.describe(), name);
                    }
                }
            }
            // Names derived without validation, for the converse.
            let slug_id = mesh_domain::ProjectSlug::parse(&slug).unwrap();
            let job_n = mesh_domain::Name::parse(&job).unwrap();
            let pipe_n = mesh_domain::Name::parse(&pipeline).unwrap();
            all_fit &= mesh_domain::NameKind::GlueJob.check(&n.glue_job(&slug_id, &job_n)).is_ok();
            all_fit &= mesh_domain::NameKind::StateMachine.check(&n.state_machine(&slug_id, &pipe_n)).is_ok();
            all_fit &= mesh_domain::NameKind::Schedule.check(&n.schedule(&slug_id, &pipe_n)).is_ok();
        }
        prop_assert_eq!(result.is_ok(), all_fit, "validation and the limits disagree: {:?}", result.err().map(|d| d.to_string()));
    }
}

#[test]
fn short_names_always_validate() {
    let dir = tempfile::tempdir().unwrap();
    write_domain(dir.path(), "ab", "cd", "t", "j", "main");
    if let Err(d) = load_domain(dir.path()) {
        panic!("{d}");
    }
}
