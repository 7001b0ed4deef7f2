//! Render benchmark: a synthetic domain of 50 projects and 300 jobs, rendered for the three
//! cloud environments, plus the IAM matrix check of dev. Run with
//! `cargo bench -p mesh-infra --bench render`; the result line goes to bench/README.md.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use mesh_domain::Env;

const PROJECTS: usize = 50;
const JOBS_PER_PROJECT: usize = 6;

fn write_domain(root: &Path) {
    std::fs::write(
        root.join("domain.json"),
        r#"{"domain_name": "bench01", "domain_abbr": "b01", "aws_region": "eu-west-1", "glue_version": "5.0",
            "python_version": "3.11", "terraform_version": "1.9.8", "rust_toolchain": "1.95",
            "aws_accounts": {"dev": "111111111111", "int": "222222222222", "prod": "333333333333"}}"#,
    )
    .expect("write domain.json");
    for p in 0..PROJECTS {
        let dir = root.join(format!("projects/p{p:02}"));
        std::fs::create_dir_all(dir.join("sql")).expect("mkdir");
        let mut toml = format!(
            "name = \"p{p:02}\"\nproject_slug = \"pj{p:02}\"\nowner = \"team{p}\"\nclassification = \"internal\"\n\n\
             [[tables]]\nname = \"p{p:02}_events\"\nlayer = \"raw\"\nformat = \"csv\"\npartition_by = [\"event_date\"]\n\
             columns = [{{ name = \"id\", type = \"long\", nullable = false }}, {{ name = \"amount\", type = \"decimal(10,2)\" }}, {{ name = \"event_date\", type = \"date\", nullable = false }}]\n"
        );
        let mut steps = Vec::new();
        for j in 0..JOBS_PER_PROJECT {
            let _ = write!(
                toml,
                "\n[[tables]]\nname = \"p{p:02}_agg{j}\"\nlayer = \"curated\"\npartition_by = [\"month(event_date)\"]\n\
                 columns = [{{ name = \"event_date\", type = \"date\", nullable = false }}, {{ name = \"total\", type = \"decimal(18,2)\" }}]\n\
                 \n[[jobs]]\nname = \"job{j}\"\nsql = \"sql/job{j}.sql\"\ninputs = [\"raw.p{p:02}_events\"]\noutput = \"curated.p{p:02}_agg{j}\"\nmode = \"overwrite\"\n"
            );
            std::fs::write(
                dir.join(format!("sql/job{j}.sql")),
                format!("SELECT event_date, SUM(amount) AS total FROM b01_raw.p{p:02}_events GROUP BY event_date\n"),
            )
            .expect("write sql");
            // Two chains of three jobs: waves of two parallel branches.
            let dep = if j >= 2 {
                format!(", depends_on = [\"job{}\"]", j - 2)
            } else {
                String::new()
            };
            steps.push(format!("{{ job = \"job{j}\", retries = 1{dep} }}"));
        }
        let _ = write!(
            toml,
            "\n[[pipelines]]\nname = \"main\"\nschedule = \"cron(0 4 * * ? *)\"\nsteps = [{}]\n",
            steps.join(", ")
        );
        std::fs::write(dir.join("project.toml"), toml).expect("write project.toml");
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_domain(dir.path());
    let domain = match mesh_domain::load_domain(dir.path()) {
        Ok(d) => d,
        Err(e) => panic!("synthetic domain is invalid:\n{e}"),
    };
    let jobs: usize = domain.projects.iter().map(|p| p.jobs.len()).sum();
    assert_eq!((domain.projects.len(), jobs), (PROJECTS, PROJECTS * JOBS_PER_PROJECT));

    let mut best = Duration::MAX;
    let mut files = 0;
    let mut bytes = 0;
    for _ in 0..5 {
        let start = Instant::now();
        let rendered = mesh_infra::render(&domain, &Env::CLOUD).expect("render");
        best = best.min(start.elapsed());
        files = rendered.files.len();
        bytes = rendered.files.iter().map(|f| f.contents.len()).sum::<usize>();
    }
    let rendered = mesh_infra::render(&domain, &[Env::Dev]).expect("render");
    let out = dir.path().join("infra");
    mesh_infra::write(&rendered, &out).expect("write");
    let start = Instant::now();
    let report = mesh_infra::iam_check::check(&domain, &out, &[Env::Dev]).expect("check");
    let check = start.elapsed();
    assert!(report.passed(), "{report}");
    // The baseline in the same process: every request through the evaluator (no pre-filter).
    let start = Instant::now();
    let full = mesh_infra::iam_check::check_with(&domain, &out, &[Env::Dev], false).expect("check");
    let full_time = start.elapsed();
    assert_eq!(
        full.to_string(),
        report.to_string(),
        "the pre-filter changed the report"
    );
    println!(
        "render: {PROJECTS} projects / {jobs} jobs x 3 envs -> {files} files, {:.1} MB in {:.1} ms (best of 5); \
         check iam (dev): {} requests in {:.2} s; every request evaluated: {:.2} s ({:.1}x)",
        bytes as f64 / 1e6,
        best.as_secs_f64() * 1e3,
        report.requests,
        check.as_secs_f64(),
        full_time.as_secs_f64(),
        full_time.as_secs_f64() / check.as_secs_f64()
    );
}
