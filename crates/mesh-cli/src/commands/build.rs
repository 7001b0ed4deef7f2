//! `mesh build`: write the deployable artifacts of an environment and list them.

use std::path::{Path, PathBuf};

use mesh_core::artifacts::{self, Artifact, ArtifactError};
use mesh_domain::{Domain, Env};

use crate::cli::Format;
use crate::common::print_json;
use crate::exit::Failure;

pub(crate) fn cloud_env(env: Env) -> Result<Env, Failure> {
    if env.is_cloud() {
        Ok(env)
    } else {
        Err(Failure::Invalid(format!(
            "error: --env {env}: artifacts are for the Glue runtime; the local environment runs with `mesh run`\n  help: pass --env dev, int or prod (or set ENV)"
        )))
    }
}

pub(crate) fn failure(e: ArtifactError) -> Failure {
    match e {
        ArtifactError::ReadSql { .. } => Failure::Invalid(format!("error: {e}")),
        other => Failure::Runtime(other.to_string()),
    }
}

pub(crate) fn print_table(artifacts: &[Artifact]) {
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

pub fn run(root: &Path, domain: &Domain, env: Env, out: Option<PathBuf>, format: Format) -> Result<(), Failure> {
    let env = cloud_env(env)?;
    let out = out.unwrap_or_else(|| root.join(".mesh").join("build").join(env.as_str()));
    let built = artifacts::build(domain, root, env).map_err(failure)?;
    artifacts::write(&built, &out).map_err(failure)?;
    match format {
        Format::Json => print_json(&serde_json::json!({"env": env, "out": out, "artifacts": built})),
        Format::Text => {
            println!("built {} artifacts for {env} in {}", built.len(), out.display());
            print_table(&built);
        }
    }
    Ok(())
}
