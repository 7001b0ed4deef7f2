//! `mesh check iam`: every rendered IAM policy against the project-isolation matrix; exit 1 on
//! a leak.

use std::path::{Path, PathBuf};

use mesh_domain::{Domain, Env};

use crate::commands::render::{envs, failure};
use crate::exit::Failure;

pub fn iam(root: &Path, domain: &Domain, env: Option<Env>, infra: Option<PathBuf>) -> Result<(), Failure> {
    let envs = envs(env)?;
    let dir = infra.unwrap_or_else(|| root.join("infra"));
    let report = mesh_infra::iam_check::check(domain, &dir, &envs).map_err(failure)?;
    println!("{report}");
    if report.passed() {
        Ok(())
    } else {
        Err(Failure::Runtime(format!(
            "{} IAM isolation violation(s); fix the policy (or re-render with `mesh render`)",
            report.violations.len()
        )))
    }
}
