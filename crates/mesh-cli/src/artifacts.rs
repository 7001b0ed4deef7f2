//! `mesh build` and `mesh deploy artifacts`: print what mesh-core builds and uploads.

use std::path::{Path, PathBuf};

use mesh_core::artifacts::{self, Artifact, ArtifactError};
use mesh_domain::{Domain, Env};

use crate::cli::Format;
use crate::exit::Failure;

fn cloud_env(env: Env) -> Result<Env, Failure> {
    if env.is_cloud() {
        Ok(env)
    } else {
        Err(Failure::Invalid(format!(
            "error: --env {env}: artifacts are for the Glue runtime; the local environment runs with `mesh run`\n  help: pass --env dev, int or prod (or set ENV)"
        )))
    }
}

fn failure(e: ArtifactError) -> Failure {
    match e {
        ArtifactError::ReadSql { .. } => Failure::Invalid(format!("error: {e}")),
        other => Failure::Runtime(other.to_string()),
    }
}

fn print_table(artifacts: &[Artifact]) {
    let bw = artifacts.iter().map(|a| a.bucket.len()).max().unwrap_or(6).max(6);
    let kw = artifacts.iter().map(|a| a.key.len()).max().unwrap_or(3).max(3);
    println!("{:<bw$}  {:<kw$}  {:>8}  KIND", "BUCKET", "KEY", "SIZE");
    for a in artifacts {
        let kind = serde_json::to_value(a.kind).expect("kind serialises");
        println!(
            "{:<bw$}  {:<kw$}  {:>8}  {}",
            a.bucket,
            a.key,
            a.size,
            kind.as_str().unwrap_or_default()
        );
    }
    let total: u64 = artifacts.iter().map(|a| a.size).sum();
    println!("{} artifacts, {total} bytes", artifacts.len());
}

pub fn build(root: &Path, domain: &Domain, env: Env, out: Option<PathBuf>, format: Format) -> Result<(), Failure> {
    let env = cloud_env(env)?;
    let out = out.unwrap_or_else(|| root.join(".mesh").join("build").join(env.as_str()));
    let built = artifacts::build(domain, root, env).map_err(failure)?;
    artifacts::write(&built, &out).map_err(failure)?;
    match format {
        Format::Json => crate::print_json(&serde_json::json!({"env": env, "out": out, "artifacts": built})),
        Format::Text => {
            println!("built {} artifacts for {env} in {}", built.len(), out.display());
            print_table(&built);
        }
    }
    Ok(())
}

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

pub fn deploy(root: &Path, domain: &Domain, env: Env, dry_run: bool, yes: bool, format: Format) -> Result<(), Failure> {
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
        let cfg = crate::runtime::config(root, domain, flags)?;
        rt.block_on(async {
            let stores = mesh_core::cloud::stores_for(&cfg, &vars).await;
            artifacts::upload(&built, &stores).await
        })
        .map_err(failure)?;
    }
    match format {
        Format::Json => crate::print_json(
            &serde_json::json!({"env": env, "dry_run": dry_run, "uploaded": !dry_run, "artifacts": built}),
        ),
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
