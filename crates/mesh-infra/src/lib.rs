//! meshkit's infrastructure generator.
//!
//! [`render::render`] turns the checked domain model into one Terraform root per cloud
//! environment (`envs/{env}/`): HCL written by [`hcl`], IAM policies built as data by
//! [`policy`], state machines built from pipeline DAGs by [`sfn`]. [`iam_check::check`]
//! evaluates the rendered policies with a real IAM evaluator. [`workflows::render`] writes the
//! domain's GitHub Actions workflows. [`contract`] derives each data product's ODCS contract; [`sharing`] grants its consumers' accounts read access and [`consumer_check`] proves it. [`bootstrap`] creates, over the AWS APIs, what must exist
//! before `terraform init` (the state bucket and its key), with the settings of [`storage`]
//! that `storage.tf` is rendered from. Every AWS name comes from [`mesh_domain::Naming`].

pub mod bootstrap;
pub mod consumer_check;
pub mod contract;
pub mod contract_diff;
pub mod error;
pub mod hcl;
pub mod iam_check;
pub mod policy;
pub mod render;
pub mod sfn;
pub mod sharing;
pub mod storage;
pub mod workflows;
pub mod yaml;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub use error::InfraError;
pub use render::{render, Rendered, RenderedFile, Warning};

/// Writes rendered files under `out`, creating folders; returns the paths written.
pub fn write(rendered: &Rendered, out: &Path) -> Result<Vec<PathBuf>, InfraError> {
    let mut written = Vec::new();
    for f in &rendered.files {
        let path = out.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| InfraError::io(parent, e))?;
        }
        std::fs::write(&path, &f.contents).map_err(|e| InfraError::io(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

/// How a file on disk differs from what the model renders.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Drift {
    /// Rendered, but not on disk.
    Missing(PathBuf),
    /// On disk with other contents.
    Differs(PathBuf),
    /// On disk under a rendered environment folder, but no longer rendered.
    Stale(PathBuf),
}

/// The rendered files missing under `root` or holding other bytes there.
fn differing(rendered: &Rendered, root: &Path) -> Result<Vec<Drift>, InfraError> {
    let mut drift = Vec::new();
    for f in &rendered.files {
        let path = root.join(&f.path);
        match std::fs::read(&path) {
            Ok(bytes) if bytes == f.contents.as_bytes() => {}
            Ok(_) => drift.push(Drift::Differs(f.path.clone())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => drift.push(Drift::Missing(f.path.clone())),
            Err(e) => return Err(InfraError::io(path, e)),
        }
    }
    Ok(drift)
}

/// [`differing`], plus the files of the one folder `dir` (under `root`) that start with
/// `header` (generated) but are no longer rendered; other files there (written by hand) are
/// left alone. Workflows and contracts are checked this way.
pub(crate) fn drift_in_folder(
    rendered: &Rendered,
    root: &Path,
    dir: &str,
    header: &str,
) -> Result<Vec<Drift>, InfraError> {
    let mut drift = differing(rendered, root)?;
    let expected: BTreeSet<&Path> = rendered.files.iter().map(|f| f.path.as_path()).collect();
    let folder = root.join(dir);
    let entries = match std::fs::read_dir(&folder) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(drift),
        Err(e) => return Err(InfraError::io(&folder, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| InfraError::io(&folder, e))?;
        let rel = PathBuf::from(dir).join(entry.file_name());
        if expected.contains(rel.as_path()) || !entry.path().is_file() {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        if text.starts_with(header) {
            drift.push(Drift::Stale(rel));
        }
    }
    drift.sort();
    Ok(drift)
}

/// Compares `out` with the rendering: every rendered file must exist with the same bytes, and
/// no other file may sit in the rendered `envs/{env}/` folders (e.g. a removed project's file).
pub fn drift(rendered: &Rendered, out: &Path) -> Result<Vec<Drift>, InfraError> {
    let mut drift = differing(rendered, out)?;
    let expected: BTreeSet<&Path> = rendered.files.iter().map(|f| f.path.as_path()).collect();
    let env_dirs: BTreeSet<PathBuf> = rendered
        .files
        .iter()
        .filter_map(|f| f.path.iter().take(2).collect::<PathBuf>().into())
        .collect();
    for dir in env_dirs {
        let mut stack = vec![out.join(&dir)];
        while let Some(d) = stack.pop() {
            let entries = match std::fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(InfraError::io(&d, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| InfraError::io(&d, e))?;
                let path = entry.path();
                // Terraform's own working files are not ours to judge.
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name == ".terraform" || name == ".terraform.lock.hcl" || name.ends_with(".tfstate") {
                    continue;
                }
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(out).unwrap_or(&path).to_path_buf();
                    if !expected.contains(rel.as_path()) {
                        drift.push(Drift::Stale(rel));
                    }
                }
            }
        }
    }
    drift.sort();
    Ok(drift)
}
