//! `mesh render`: the Terraform of every cloud environment and the GitHub workflows; with
//! `--check`, exit 1 when generated files drift from the model.

use std::path::{Path, PathBuf};

use mesh_domain::{Domain, Env};
use mesh_infra::{Drift, InfraError};

use crate::exit::Failure;

pub(crate) fn envs(env: Option<Env>) -> Result<Vec<Env>, Failure> {
    match env {
        Some(e) if !e.is_cloud() => Err(Failure::Invalid(format!(
            "--env {e}: the local environment has no cloud infrastructure\n  help: use dev, int or prod"
        ))),
        Some(e) => Ok(vec![e]),
        None => Ok(Env::CLOUD.to_vec()),
    }
}

/// How the generated workflows get `mesh`: built from this repository when it is meshkit's
/// workspace, else installed from meshkit's repository at the version doing the rendering.
pub fn mesh_source(root: &Path) -> mesh_infra::workflows::MeshSource {
    mesh_infra::workflows::MeshSource::detect(root, env!("CARGO_PKG_REPOSITORY"), env!("CARGO_PKG_VERSION"))
}

fn drift_line(d: &Drift) -> String {
    match d {
        Drift::Missing(p) => format!("\n  missing  {}", p.display()),
        Drift::Differs(p) => format!("\n  differs  {}", p.display()),
        Drift::Stale(p) => format!("\n  stale    {} (no longer rendered; delete it)", p.display()),
    }
}

pub fn run(root: &Path, domain: &Domain, env: Option<Env>, out: Option<PathBuf>, check: bool) -> Result<(), Failure> {
    // The workflows describe every environment and live in the repository itself: a partial
    // (--env) or relocated (--out) rendering leaves them alone.
    let with_workflows = env.is_none() && out.is_none();
    let envs = envs(env)?;
    let out = out.unwrap_or_else(|| root.join("infra"));
    let rendered = mesh_infra::render(domain, &envs)?;
    let workflows = if with_workflows {
        Some(mesh_infra::workflows::render(domain, &mesh_source(root))?)
    } else {
        None
    };
    // Data contracts belong to the repository like the workflows (one per product, whatever
    // the environment).
    let contracts = with_workflows.then(|| mesh_infra::contract::render(domain));
    // The same manifest setting warns once, naming every environment it concerns.
    let mut warnings: Vec<(String, Vec<Env>)> = Vec::new();
    for w in &rendered.warnings {
        match warnings.iter_mut().find(|(m, _)| *m == w.message) {
            Some((_, envs)) => envs.push(w.env),
            None => warnings.push((w.message.clone(), vec![w.env])),
        }
    }
    for (message, envs) in warnings {
        let envs: Vec<&str> = envs.iter().map(|e| e.as_str()).collect();
        eprintln!("warning: {}: {message}", envs.join(", "));
    }
    if check {
        let drift = mesh_infra::drift(&rendered, &out)?;
        let wf_drift = match &workflows {
            Some(w) => mesh_infra::workflows::drift(w, root)?,
            None => Vec::new(),
        };
        let contract_drift = match &contracts {
            Some(c) => mesh_infra::contract::drift(c, root)?,
            None => Vec::new(),
        };
        if drift.is_empty() && wf_drift.is_empty() && contract_drift.is_empty() {
            println!(
                "ok: {} files in {} match the model",
                rendered.files.len(),
                out.display()
            );
            if let Some(w) = &workflows {
                println!(
                    "ok: {} workflows in {} match the model",
                    w.files.len(),
                    root.join(mesh_infra::workflows::WORKFLOWS_DIR).display()
                );
            }
            if let Some(c) = contracts.as_ref().filter(|c| !c.files.is_empty()) {
                println!(
                    "ok: {} data contracts in {} match the model",
                    c.files.len(),
                    root.join(mesh_domain::product::CONTRACTS_DIR).display()
                );
            }
            return Ok(());
        }
        let mut msg = String::new();
        if !drift.is_empty() {
            msg.push_str(&format!(
                "{} generated file(s) in {} differ from the model:",
                drift.len(),
                out.display()
            ));
            for d in &drift {
                msg.push_str(&drift_line(d));
            }
        }
        if !wf_drift.is_empty() {
            if !msg.is_empty() {
                msg.push('\n');
            }
            msg.push_str(&format!(
                "{} generated workflow(s) in {} differ from the model:",
                wf_drift.len(),
                root.display()
            ));
            for d in &wf_drift {
                msg.push_str(&drift_line(d));
            }
        }
        if !contract_drift.is_empty() {
            if !msg.is_empty() {
                msg.push('\n');
            }
            msg.push_str(&format!(
                "{} data contract(s) in {} differ from the model:",
                contract_drift.len(),
                root.display()
            ));
            for d in &contract_drift {
                msg.push_str(&drift_line(d));
            }
        }
        msg.push_str("\n  help: run `mesh render` and commit the result");
        return Err(Failure::Runtime(msg));
    }
    let written = mesh_infra::write(&rendered, &out)?;
    let stale: Vec<Drift> = mesh_infra::drift(&rendered, &out)?
        .into_iter()
        .filter(|d| matches!(d, Drift::Stale(_)))
        .collect();
    for d in stale {
        if let Drift::Stale(p) = d {
            let path = out.join(&p);
            std::fs::remove_file(&path).map_err(|e| InfraError::io(&path, e))?;
            println!("removed {} (no longer rendered)", p.display());
        }
    }
    println!(
        "wrote {} files for {} into {}",
        written.len(),
        envs.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "),
        out.display()
    );
    if let Some(w) = &workflows {
        write_workflows(root, w)?;
    }
    if let Some(c) = &contracts {
        write_contracts(root, c)?;
    }
    Ok(())
}

/// Writes the data contracts into the repository and removes generated ones no longer rendered.
fn write_contracts(root: &Path, c: &mesh_infra::Rendered) -> Result<(), Failure> {
    let written = mesh_infra::write(c, root)?;
    for d in mesh_infra::contract::drift(c, root)? {
        if let Drift::Stale(p) = d {
            let path = root.join(&p);
            std::fs::remove_file(&path).map_err(|e| InfraError::io(&path, e))?;
            println!("removed {} (no longer rendered)", p.display());
        }
    }
    if !written.is_empty() {
        println!(
            "wrote {} data contracts into {}",
            written.len(),
            root.join(mesh_domain::product::CONTRACTS_DIR).display()
        );
    }
    Ok(())
}

/// Writes the workflows into the repository and removes generated ones no longer rendered.
pub fn write_workflows(root: &Path, w: &mesh_infra::Rendered) -> Result<(), Failure> {
    let written = mesh_infra::write(w, root)?;
    for d in mesh_infra::workflows::drift(w, root)? {
        if let Drift::Stale(p) = d {
            let path = root.join(&p);
            std::fs::remove_file(&path).map_err(|e| InfraError::io(&path, e))?;
            println!("removed {} (no longer rendered)", p.display());
        }
    }
    println!(
        "wrote {} workflows into {}",
        written.len(),
        root.join(mesh_infra::workflows::WORKFLOWS_DIR).display()
    );
    Ok(())
}
