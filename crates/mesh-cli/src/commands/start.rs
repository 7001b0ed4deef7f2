//! `mesh start`: start a deployed pipeline on AWS, as its schedule would.

use std::collections::BTreeMap;
use std::path::Path;

use mesh_domain::{Domain, Env};

use crate::cli::Format;
use crate::common::{check_project, config, print_json, tokio_runtime};
use crate::exit::Failure;

pub struct StartArgs {
    pub project: String,
    pub pipeline: Option<String>,
    pub env: Env,
    pub run_date: Option<chrono::NaiveDate>,
    /// Wait at most this long for the execution to end.
    pub wait: Option<std::time::Duration>,
    pub format: Format,
}

/// `mesh start`: StartExecution on the pipeline's state machine, then (with --wait) its end.
pub fn run(root: &Path, domain: &Domain, a: StartArgs) -> Result<(), Failure> {
    use mesh_core::start::{self, StartError};
    check_project(domain, &a.project)?;
    let project = domain.project(&a.project).expect("checked above");
    let invalid = |e: StartError| Failure::Invalid(format!("error: {e}"));
    let pipeline = start::pick(project, a.pipeline.as_deref()).map_err(invalid)?;
    let arn = start::state_machine_arn(domain, a.env, project, pipeline).map_err(invalid)?;
    let mut flags = BTreeMap::new();
    flags.insert("env", a.env.to_string());
    let cfg = config(root, domain, flags)?;
    let scheduled = start::scheduled_time(a.run_date, chrono::Utc::now());
    tokio_runtime()?.block_on(async {
        let sdk = mesh_core::cloud::sdk_config(&cfg).await;
        let client = aws_sdk_sfn_client(&sdk);
        let started = start::start(&client, &arn, &scheduled)
            .await
            .map_err(|e| Failure::Runtime(e.to_string()))?;
        let finished = match a.wait {
            None => None,
            Some(timeout) => {
                if matches!(a.format, Format::Text) {
                    eprintln!("started {}; waiting for it to end", started.execution_arn);
                }
                Some(
                    start::wait(&client, &started.execution_arn, timeout)
                        .await
                        .map_err(|e| Failure::Runtime(e.to_string()))?,
                )
            }
        };
        match a.format {
            Format::Json => print_json(&serde_json::json!({"started": started, "finished": finished})),
            Format::Text => {
                println!(
                    "started {} of {} ({}): {}",
                    pipeline.name, project.name, a.env, started.execution_arn
                );
                println!("  scheduled_time {}", started.scheduled_time);
                if let Some(f) = &finished {
                    println!("  {} after {:.1} s", f.status, f.seconds);
                }
            }
        }
        match finished {
            Some(f) if !f.succeeded() => Err(Failure::Runtime(format!(
                "execution {} ended {}: {}{}",
                f.execution_arn,
                f.status,
                f.error.as_deref().unwrap_or("no error name"),
                f.cause.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
            ))),
            _ => Ok(()),
        }
    })
}

fn aws_sdk_sfn_client(sdk: &mesh_core::aws_config::SdkConfig) -> mesh_core::aws_sdk_sfn::Client {
    mesh_core::aws_sdk_sfn::Client::new(sdk)
}
