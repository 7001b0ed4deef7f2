//! `mesh start`: run a deployed pipeline on AWS now, as its schedule would (Step Functions
//! `StartExecution` on the state machine `mesh render` generated), and optionally wait for it.

use std::time::{Duration, Instant};

use aws_sdk_sfn::types::ExecutionStatus;
use chrono::{DateTime, NaiveDate, Utc};
use mesh_domain::{Domain, Env, Naming, Project};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("project `{project}` has no pipeline `{pipeline}`\n  help: {help}")]
    UnknownPipeline {
        project: String,
        pipeline: String,
        help: String,
    },
    #[error("project `{project}` has {count} pipelines; name one with --pipeline ({names})")]
    WhichPipeline {
        project: String,
        count: usize,
        names: String,
    },
    #[error("`{env}` runs nowhere on AWS; start a local run with `mesh run`\n  help: use --env dev, int or prod")]
    NotCloud { env: Env },
    #[error("domain.json has no aws_accounts.{env}, so the state machine's ARN is unknown; add the account id")]
    NoAccount { env: Env },
    #[error("{action} on `{resource}` failed: {}\n  help: check the AWS credentials and region, and that `{resource}` is deployed (mesh render, terraform apply)", mesh_iceberg::ErrorChain(&**source))]
    Aws {
        action: &'static str,
        resource: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("gave up waiting for `{execution}` after {seconds} s; it is still {status}")]
    Timeout {
        execution: String,
        seconds: u64,
        status: String,
    },
}

/// What was started.
#[derive(Debug, Clone, Serialize)]
pub struct Started {
    pub state_machine: String,
    pub execution_arn: String,
    /// The execution's input: the `scheduled_time` the pipeline's first state turns into the
    /// run date (and the hour of hourly jobs).
    pub scheduled_time: String,
}

/// How the execution ended.
#[derive(Debug, Clone, Serialize)]
pub struct Finished {
    pub execution_arn: String,
    /// `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `ABORTED`.
    pub status: String,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub seconds: f64,
}

impl Finished {
    pub fn succeeded(&self) -> bool {
        self.status == ExecutionStatus::Succeeded.as_str()
    }
}

/// The pipeline to start: the named one, else the project's only one.
pub fn pick<'a>(project: &'a Project, name: Option<&str>) -> Result<&'a mesh_domain::Pipeline, StartError> {
    let names = || {
        project
            .pipelines
            .iter()
            .map(|p| p.name.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(n) => project.pipeline(n).ok_or_else(|| StartError::UnknownPipeline {
            project: project.name.to_string(),
            pipeline: n.to_string(),
            help: mesh_domain::diagnostic::did_you_mean(n, project.pipelines.iter().map(|p| p.name.as_str()))
                .unwrap_or_else(|| format!("pipelines are: {}", names())),
        }),
        None if project.pipelines.len() == 1 => Ok(&project.pipelines[0]),
        None => Err(StartError::WhichPipeline {
            project: project.name.to_string(),
            count: project.pipelines.len(),
            names: names(),
        }),
    }
}

/// `2026-11-27T00:00:00Z` for a run date, else the current time: what EventBridge Scheduler
/// passes as `scheduled_time`.
pub fn scheduled_time(run_date: Option<NaiveDate>, now: DateTime<Utc>) -> String {
    match run_date {
        Some(d) => format!("{d}T00:00:00Z"),
        None => now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }
}

pub fn state_machine_arn(
    domain: &Domain,
    env: Env,
    project: &Project,
    pipeline: &mesh_domain::Pipeline,
) -> Result<String, StartError> {
    if !env.is_cloud() {
        return Err(StartError::NotCloud { env });
    }
    let account = domain.accounts.get(&env).ok_or(StartError::NoAccount { env })?;
    let name = Naming::for_domain(domain, env).state_machine(&project.slug, &pipeline.name);
    Ok(format!(
        "arn:{}:states:{}:{account}:stateMachine:{name}",
        mesh_domain::naming::aws_partition(&domain.region),
        domain.region
    ))
}

fn aws<'a, E>(action: &'static str, resource: &'a str) -> impl FnOnce(E) -> StartError + 'a
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| StartError::Aws {
        action,
        resource: resource.to_string(),
        source: Box::new(e),
    }
}

pub async fn start(client: &aws_sdk_sfn::Client, arn: &str, scheduled_time: &str) -> Result<Started, StartError> {
    // Execution names are unique per state machine for 90 days; the time keeps them sortable.
    let name = format!(
        "mesh-{}-{}",
        Utc::now().format("%Y%m%dT%H%M%S"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let input = serde_json::json!({ "scheduled_time": scheduled_time }).to_string();
    let out = client
        .start_execution()
        .state_machine_arn(arn)
        .name(name)
        .input(input)
        .send()
        .await
        .map_err(aws("states:StartExecution", arn))?;
    Ok(Started {
        state_machine: arn.to_string(),
        execution_arn: out.execution_arn().to_string(),
        scheduled_time: scheduled_time.to_string(),
    })
}

/// Polls until the execution ends: every second at first, then less often (a pipeline runs
/// for minutes; DescribeExecution is throttled per account).
pub async fn wait(client: &aws_sdk_sfn::Client, execution: &str, timeout: Duration) -> Result<Finished, StartError> {
    let started = Instant::now();
    let mut pause = Duration::from_secs(1);
    loop {
        let d = client
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
            .map_err(aws("states:DescribeExecution", execution))?;
        if *d.status() != ExecutionStatus::Running && *d.status() != ExecutionStatus::PendingRedrive {
            return Ok(Finished {
                execution_arn: execution.to_string(),
                status: d.status().as_str().to_string(),
                error: d.error().map(str::to_string),
                cause: d.cause().map(str::to_string),
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        if started.elapsed() >= timeout {
            return Err(StartError::Timeout {
                execution: execution.to_string(),
                seconds: timeout.as_secs(),
                status: d.status().as_str().to_string(),
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(15));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_and_times_match_what_render_and_the_scheduler_use() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let d = mesh_domain::load_domain(&root).unwrap();
        let p = d.project("sales").unwrap();
        let pl = pick(p, None).unwrap();
        assert_eq!(
            state_machine_arn(&d, Env::Dev, p, pl).unwrap(),
            "arn:aws:states:eu-west-1:111111111111:stateMachine:f01-pj01-pipeline-dev"
        );
        // The partition follows the region (China, GovCloud), as in the rendered Terraform.
        for (region, prefix) in [
            ("cn-north-1", "arn:aws-cn:states:cn-north-1:"),
            ("us-gov-west-1", "arn:aws-us-gov:states:us-gov-west-1:"),
        ] {
            let mut other = d.clone();
            other.region = region.to_string();
            let p = other.project("sales").unwrap();
            let arn = state_machine_arn(&other, Env::Dev, p, pick(p, None).unwrap()).unwrap();
            assert!(arn.starts_with(prefix), "{arn}");
        }
        assert!(matches!(
            state_machine_arn(&d, Env::Local, p, pl),
            Err(StartError::NotCloud { .. })
        ));
        assert!(
            matches!(pick(p, Some("mian")), Err(StartError::UnknownPipeline { help, .. }) if help.contains("`main`"))
        );
        let now = DateTime::parse_from_rfc3339("2026-11-30T06:07:08Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(scheduled_time(None, now), "2026-11-30T06:07:08Z");
        assert_eq!(
            scheduled_time(NaiveDate::from_ymd_opt(2026, 11, 27), now),
            "2026-11-27T00:00:00Z"
        );
    }
}
