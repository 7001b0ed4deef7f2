//! `mesh bootstrap`: the AWS account's prerequisites for Terraform (mesh_infra::bootstrap).

use std::path::Path;

use mesh_domain::{Domain, Env};
use mesh_infra::bootstrap::{self, BootstrapError, Outcome};

use crate::cli::Format;
use crate::common::print_json;
use crate::exit::Failure;

fn failure(e: BootstrapError) -> Failure {
    match e {
        BootstrapError::WrongAccount { .. } | BootstrapError::NoTerraformRoot { .. } => {
            Failure::Invalid(format!("error: {e}"))
        }
        other => Failure::Runtime(other.to_string()),
    }
}

pub fn run(
    root: &Path,
    domain: &Domain,
    env: Env,
    dry_run: bool,
    terraform: Option<&str>,
    format: Format,
) -> Result<(), Failure> {
    let plan = bootstrap::plan(domain, env).map_err(|e| Failure::Invalid(format!("error: {e}")))?;
    let tf_dir = root.join(&plan.terraform_root);
    if terraform.is_some() {
        bootstrap::terraform_root_ready(&tf_dir).map_err(failure)?;
    }
    let rt = tokio::runtime::Runtime::new().map_err(|e| Failure::Runtime(format!("cannot start the runtime: {e}")))?;
    let report = rt
        .block_on(async {
            let clients = bootstrap::Clients::from_env(&plan.region).await;
            bootstrap::apply(&plan, &clients, dry_run).await
        })
        .map_err(failure)?;
    let imported = match terraform {
        Some(program) => Some(
            bootstrap::terraform_import(program, &domain.versions.terraform, &tf_dir, &report.imports)
                .map_err(failure)?,
        ),
        None => None,
    };
    match format {
        Format::Json => print_json(&serde_json::json!({
            "env": report.env,
            "account": report.account,
            "bucket": report.bucket,
            "key_arn": report.key_arn,
            "dry_run": dry_run,
            "steps": report.steps,
            "imports": report.imports,
            "imported": imported.as_ref().map(|d| d.iter().map(|(i, o)| serde_json::json!({"address": i.address, "id": i.id, "outcome": o})).collect::<Vec<_>>()),
        })),
        Format::Text => {
            let what = if dry_run { "dry run: " } else { "" };
            println!("{what}bootstrap of {env} (account {}, {})", report.account, plan.region);
            for s in &report.steps {
                println!("  {:<13} {}", s.outcome.to_string(), s.what);
            }
            match &imported {
                Some(done) => {
                    println!("terraform state of {}:", plan.terraform_root);
                    for (i, o) in done {
                        let o = if *o == Outcome::Created {
                            "imported"
                        } else {
                            "already held"
                        };
                        println!("  {o:<13} {}", i.address);
                    }
                    println!("next: terraform -chdir={} apply (as an administrator of the account, once: it creates the GitHub deploy roles the workflows use)", plan.terraform_root);
                }
                None if dry_run => println!("nothing created or changed"),
                None => {
                    println!("next, so Terraform adopts them (or run `mesh bootstrap --env {env} --import`):");
                    println!("  terraform -chdir={} init", plan.terraform_root);
                    for i in &report.imports {
                        println!(
                            "  terraform -chdir={} import {} {}",
                            plan.terraform_root, i.address, i.id
                        );
                    }
                }
            }
        }
    }
    Ok(())
}
