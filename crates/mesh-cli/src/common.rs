//! What several commands share: finding the domain, resolving the configuration, the async
//! runtime and engine, JSON output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mesh_core::config::{Config, Inputs};
use mesh_core::engine::Engine;
use mesh_domain::Domain;

use crate::exit::Failure;

/// The domain root: `--root`, else the nearest folder above the current one with a domain.json.
pub fn root(flag: Option<&Path>) -> Result<PathBuf, Failure> {
    if let Some(r) = flag {
        // Absolute, so every location derived from it (Iceberg table locations stored in the
        // catalog, file:// URLs) stays valid from any working directory.
        return std::path::absolute(r)
            .map_err(|e| Failure::Runtime(format!("--root `{}`: cannot resolve it: {e}", r.display())));
    }
    let cwd =
        std::env::current_dir().map_err(|e| Failure::Runtime(format!("cannot read the current directory: {e}")))?;
    mesh_domain::find_root(&cwd).ok_or_else(|| {
        Failure::Invalid(format!(
            "error: no domain.json in `{}` or any folder above it\n  help: run inside a domain repository, pass --root DIR, or create one with `mesh init DIR`",
            cwd.display()
        ))
    })
}

/// The domain root and its validated model, for commands that need both.
pub fn root_and_domain(flag: Option<&Path>) -> Result<(PathBuf, Domain), Failure> {
    let root = root(flag)?;
    let domain = load(Some(&root))?;
    Ok((root, domain))
}

pub fn load(flag: Option<&Path>) -> Result<Domain, Failure> {
    let root = root(flag)?;
    mesh_domain::load_domain(&root).map_err(|d| Failure::Invalid(format!("{d}\n  (run `mesh validate` after fixing)")))
}

pub fn check_project(domain: &Domain, name: &str) -> Result<(), Failure> {
    if domain.project(name).is_some() {
        return Ok(());
    }
    let known: Vec<&str> = domain.projects.iter().map(|p| p.name.as_str()).collect();
    let hint = mesh_domain::diagnostic::did_you_mean(name, known.iter().copied())
        .unwrap_or_else(|| format!("projects are: {}", known.join(", ")));
    Err(Failure::Invalid(format!(
        "error: --project: no project `{name}`\n  help: {hint}"
    )))
}

pub fn display_rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

pub fn print_json<T: serde::Serialize>(value: &T) {
    println!("{}", serde_json::to_string_pretty(value).expect("model serialises"));
}

/// Resolves the configuration from the process environment, `.env`, `mesh.toml` and flags.
pub fn config(root: &Path, domain: &Domain, flags: BTreeMap<&'static str, String>) -> Result<Config, Failure> {
    let inputs = Inputs {
        domain_root: root,
        abbr: &domain.abbr,
        region: &domain.region,
        vars: Inputs::vars_with_dotenv(root),
        flags,
    };
    Config::resolve(&inputs).map_err(|e| Failure::Invalid(format!("error: {e}")))
}

pub fn tokio_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // DataFusion's planner and optimizer recurse over expression trees; SQL is limited to
        // sql_check::MAX_DEPTH levels, and 16 MiB keeps that far from tokio's 2 MiB default.
        .thread_stack_size(16 << 20)
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))
}

/// The process environment: the AWS SDK reads its variables (endpoints, credentials) from
/// there only, so S3 must too, or Glue and S3 could be configured differently.
pub fn aws_vars() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

/// The engine of the configured environment (local lake, or Glue + S3 for dev/int/prod).
pub async fn open_engine(root: &Path, domain: &Domain, cfg: &Config) -> Result<Arc<Engine>, Failure> {
    Engine::open(Arc::new(domain.clone()), root.to_path_buf(), cfg, &aws_vars())
        .await
        .map(Arc::new)
        .map_err(|e| Failure::Runtime(format!("cannot open the {} catalog: {e}", cfg.env.value)))
}
