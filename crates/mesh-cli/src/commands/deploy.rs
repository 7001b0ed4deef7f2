//! `mesh deploy artifacts`: upload what `mesh build` writes to the artifacts bucket.

use std::path::Path;

use mesh_core::artifacts;
use mesh_domain::{Domain, Env};

use crate::cli::Format;
use crate::commands::build::{cloud_env, failure, print_table};
use crate::common::print_json;
use crate::exit::Failure;

/// Whether this process runs in CI: GitHub Actions sets both, most CI systems set `CI`.
fn in_ci(vars: &std::collections::BTreeMap<String, String>) -> bool {
    ["CI", "GITHUB_ACTIONS"]
        .iter()
        .any(|k| vars.get(*k).is_some_and(|v| !v.is_empty() && v != "false" && v != "0"))
}

/// Prod is deployed by the approved `deploy-prod` workflow; an upload from a laptop would skip
/// the reviewer, so it needs an explicit `--yes`.
fn prod_guard(
    env: Env,
    dry_run: bool,
    yes: bool,
    vars: &std::collections::BTreeMap<String, String>,
) -> Result<(), Failure> {
    if env != Env::Prod || dry_run || yes || in_ci(vars) {
        return Ok(());
    }
    Err(Failure::Invalid(
        "error: refusing to upload artifacts to prod from outside CI (neither CI nor GITHUB_ACTIONS is set)\n  \
         why: prod is deployed by the `deploy-prod` workflow, in the `prod` GitHub environment, after a required reviewer approves; an upload from here skips that approval\n  \
         help: push to `main` and let the workflow deploy, use --dry-run to see what would be uploaded, or pass --yes to upload anyway"
            .to_string(),
    ))
}

pub fn artifacts(
    root: &Path,
    domain: &Domain,
    env: Env,
    dry_run: bool,
    yes: bool,
    format: Format,
) -> Result<(), Failure> {
    let env = cloud_env(env)?;
    let vars: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    prod_guard(env, dry_run, yes, &vars)?;
    let built = artifacts::build(domain, root, env).map_err(failure)?;
    if !dry_run {
        let rt =
            tokio::runtime::Runtime::new().map_err(|e| Failure::Runtime(format!("cannot start the runtime: {e}")))?;
        // The runtime's stores: the AWS SDK credential chain and endpoint settings, as `mesh run` uses.
        let mut flags = std::collections::BTreeMap::new();
        flags.insert("env", env.to_string());
        let cfg = crate::common::config(root, domain, flags)?;
        rt.block_on(async {
            let stores = mesh_core::cloud::stores_for(&cfg, &vars).await;
            artifacts::upload(&built, &stores).await
        })
        .map_err(failure)?;
    }
    match format {
        Format::Json => {
            print_json(&serde_json::json!({"env": env, "dry_run": dry_run, "uploaded": !dry_run, "artifacts": built}))
        }
        Format::Text => {
            if dry_run {
                println!(
                    "dry run: would upload {} artifacts to {env} (nothing uploaded)",
                    built.len()
                );
            } else {
                println!("uploaded {} artifacts to {env}", built.len());
            }
            print_table(&built);
        }
    }
    Ok(())
}
