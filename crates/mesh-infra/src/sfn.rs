//! Step Functions definitions (ASL) from pipeline DAGs.
//!
//! The DAG is cut into waves: a step's wave is one more than the latest wave of the steps it
//! depends on. Each wave runs after the previous one; a wave with several steps is a Parallel
//! state with one branch per step. This keeps every dependency (a step never starts before
//! what it depends on has finished) at the cost of sometimes waiting for an unrelated step of
//! the previous wave, and it maps any DAG onto ASL without nested joins. A wave wider than the
//! pipeline's `max_concurrency` is split into consecutive Parallel states.

use std::collections::BTreeMap;

use mesh_domain::{Grain, Naming, Pipeline, Project, Step, StepAction};
use serde_json::{json, Map, Value};

use crate::policy::Arns;

pub const NOTIFY: &str = "Notify failure";
pub const FAILED: &str = "Failed";
pub const PREPARE: &str = "Prepare run";

/// Errors that a retry cannot fix: fail at once instead of backing off.
const NOT_RETRIED: &[&str] = &[
    "Glue.AccessDeniedException",
    "Glue.EntityNotFoundException",
    "Glue.InvalidInputException",
];

/// The waves of a pipeline (indices into `pipeline.steps`), dependencies first.
pub fn waves(pipeline: &Pipeline) -> Vec<Vec<usize>> {
    let mut wave_of: BTreeMap<&str, usize> = BTreeMap::new();
    let mut waves: Vec<Vec<usize>> = Vec::new();
    // Steps are topologically sorted by validation, so dependencies already have a wave.
    for (i, step) in pipeline.steps.iter().enumerate() {
        let w = step
            .depends_on
            .iter()
            .filter_map(|d| wave_of.get(d.as_str()))
            .map(|w| w + 1)
            .max()
            .unwrap_or(0);
        wave_of.insert(step.name.as_str(), w);
        if waves.len() <= w {
            waves.resize(w + 1, Vec::new());
        }
        waves[w].push(i);
    }
    // A Parallel state has no concurrency limit: a wave wider than the pipeline's
    // max_concurrency runs as consecutive Parallel states of at most that many branches.
    let max = pipeline.max_concurrency.max(1) as usize;
    waves
        .into_iter()
        .flat_map(|w| w.chunks(max).map(<[usize]>::to_vec).collect::<Vec<_>>())
        .collect()
}

fn step_state_name(step: &Step) -> String {
    match &step.action {
        StepAction::Job(j) => format!("Run {j}"),
        StepAction::Optimize(t) => format!("Optimize {t}"),
    }
}

/// A step as one state; `next` is `None` for the end of a branch or of the machine.
fn step_state(naming: &Naming, project: &Project, step: &Step, next: Option<&str>, catch: bool) -> Value {
    let (job_name, args) = match &step.action {
        StepAction::Job(job) => {
            let mut args = Map::new();
            args.insert("--run_date.$".into(), json!("$.run_date"));
            // Day and month intervals are the ones containing the run date; an hour needs the hour.
            let hourly = project
                .job(job.as_str())
                .and_then(|j| j.time_range.as_ref())
                .is_some_and(|t| t.grain == Grain::Hour);
            if hourly {
                args.insert("--interval_start.$".into(), json!("$.run_hour"));
            }
            (naming.glue_job(&project.slug, job), args)
        }
        // The project's maintenance job runs the Glue runner in maintenance mode on this
        // table's spec: Iceberg's rewrite_data_files, expire_snapshots and remove_orphan_files
        // with the manifest's settings and the floors of `mesh optimize`.
        StepAction::Optimize(t) => {
            let mut args = Map::new();
            args.insert(
                "--job-spec".into(),
                json!(naming.maintenance_spec(&project.slug, t).s3_uri()),
            );
            (naming.maintenance_glue_job(&project.slug), args)
        }
    };
    let mut state = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::glue:startJobRun.sync",
        "Parameters": {
            "JobName": job_name,
            "Arguments": args,
        },
        "ResultPath": null,
    });
    let mut retry = vec![json!({"ErrorEquals": NOT_RETRIED, "MaxAttempts": 0})];
    if step.retries > 0 {
        retry.push(json!({
            "ErrorEquals": ["States.ALL"],
            "IntervalSeconds": step.retry_backoff_seconds.max(1),
            "MaxAttempts": step.retries,
            "BackoffRate": 2,
        }));
    }
    state["Retry"] = Value::Array(retry);
    if catch {
        state["Catch"] = catch_all();
    }
    match next {
        Some(n) => state["Next"] = json!(n),
        None => state["End"] = json!(true),
    }
    state
}

fn catch_all() -> Value {
    json!([{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": NOTIFY}])
}

/// The state machine of one pipeline.
pub fn definition(naming: &Naming, arns: &Arns, project: &Project, pipeline: &Pipeline) -> Value {
    let waves = waves(pipeline);
    let mut states = Map::new();
    let wave_names: Vec<String> = waves
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if w.len() == 1 {
                step_state_name(&pipeline.steps[w[0]])
            } else {
                format!("Wave {}", i + 1)
            }
        })
        .collect();
    let first = wave_names.first().cloned();
    // Scheduled runs pass `scheduled_time`; the date part is the run date every job receives,
    // the part before the first `:` (`2026-11-27T06`) the interval of an hourly time-range job.
    states.insert(
        PREPARE.into(),
        json!({
            "Type": "Pass",
            "Parameters": {
                "run_date.$": "States.ArrayGetItem(States.StringSplit($.scheduled_time, 'T'), 0)",
                "run_hour.$": "States.ArrayGetItem(States.StringSplit($.scheduled_time, ':'), 0)",
                "scheduled_time.$": "$.scheduled_time",
            },
            "Next": first.clone().unwrap_or_else(|| "Succeeded".into()),
        }),
    );
    for (i, wave) in waves.iter().enumerate() {
        let next = wave_names.get(i + 1).map(String::as_str);
        if wave.len() == 1 {
            let step = &pipeline.steps[wave[0]];
            states.insert(wave_names[i].clone(), step_state(naming, project, step, next, true));
        } else {
            // Errors inside a branch end the Parallel state; its Catch handles them.
            let branches: Vec<Value> = wave
                .iter()
                .map(|&s| {
                    let step = &pipeline.steps[s];
                    let name = step_state_name(step);
                    json!({
                        "StartAt": name,
                        "States": { name: step_state(naming, project, step, None, false) },
                    })
                })
                .collect();
            let mut par = json!({
                "Type": "Parallel",
                "Branches": branches,
                "ResultPath": null,
                "Catch": catch_all(),
            });
            match next {
                Some(n) => par["Next"] = json!(n),
                None => par["End"] = json!(true),
            }
            states.insert(wave_names[i].clone(), par);
        }
    }
    if first.is_none() {
        states.insert("Succeeded".into(), json!({"Type": "Succeed"}));
    }
    let topic = arns.sns_topic(&naming.alerts_topic(&project.slug));
    let machine = naming.state_machine(&project.slug, &pipeline.name);
    states.insert(
        NOTIFY.into(),
        json!({
            "Type": "Task",
            "Resource": "arn:aws:states:::sns:publish",
            "Parameters": {
                "TopicArn": topic,
                "Subject": format!("{machine} failed"),
                "Message.$": "States.JsonToString($.error)",
            },
            "ResultPath": null,
            // Still fail the execution when the alert itself cannot be sent.
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": null, "Next": FAILED}],
            "Next": FAILED,
        }),
    );
    states.insert(
        FAILED.into(),
        json!({"Type": "Fail", "Error": "PipelineFailed", "Cause": format!("a step of {machine} failed; see the alert and the execution history")}),
    );
    let comment = pipeline
        .description
        .clone()
        .unwrap_or_else(|| format!("Pipeline {} of project {}", pipeline.name, project.name));
    json!({
        "Comment": comment,
        "StartAt": PREPARE,
        "States": states,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_waves() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let d = mesh_domain::load_domain(&root).expect("example domain loads");
        let p = d.project("legacy_refactor").unwrap();
        assert_eq!(waves(&p.pipelines[0]), vec![vec![0], vec![1, 2]]);
        let p = d.project("sales").unwrap();
        assert_eq!(waves(&p.pipelines[0]), vec![vec![0], vec![1]]);
    }

    fn task<'a>(def: &'a Value, state: &str) -> &'a Value {
        def["States"]
            .get(state)
            .or_else(|| {
                def["States"].as_object().unwrap().values().find_map(|s| {
                    s["Branches"]
                        .as_array()
                        .and_then(|bs| bs.iter().find_map(|b| b["States"].get(state)))
                })
            })
            .unwrap_or_else(|| panic!("no state {state} in {def}"))
    }

    #[test]
    fn optimize_steps_run_the_maintenance_job_and_hourly_jobs_get_their_hour() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let d = mesh_domain::load_domain(&root).expect("example domain loads");
        let n = Naming::for_domain(&d, mesh_domain::Env::Dev);
        let arns = crate::policy::arns(&d, &n).unwrap();
        let mut p = d.project("sales").unwrap().clone();
        let def = definition(&n, &arns, &p, &p.pipelines[0]);
        let opt = task(&def, "Optimize curated.daily_sales");
        assert_eq!(opt["Type"], "Task");
        assert_eq!(opt["Resource"], "arn:aws:states:::glue:startJobRun.sync");
        assert_eq!(opt["Parameters"]["JobName"], "f01-pj01-maintenance-dev");
        assert_eq!(
            opt["Parameters"]["Arguments"]["--job-spec"],
            "s3://f01-artifacts-dev/jobs/pj01/maintenance/curated.daily_sales.json"
        );
        assert!(
            opt["Catch"].is_array(),
            "a failed maintenance run alerts like a failed job"
        );
        let run = task(&def, "Run daily_sales");
        assert_eq!(run["Parameters"]["Arguments"]["--run_date.$"], "$.run_date");
        assert!(run["Parameters"]["Arguments"].get("--interval_start.$").is_none());

        for (grain, hourly) in [(Grain::Hour, true), (Grain::Day, false), (Grain::Month, false)] {
            p.jobs[0].time_range = Some(mesh_domain::TimeRange {
                column: mesh_domain::Name::parse("sale_date").unwrap(),
                grain,
            });
            let def = definition(&n, &arns, &p, &p.pipelines[0]);
            let args = &task(&def, "Run daily_sales")["Parameters"]["Arguments"];
            assert_eq!(args.get("--interval_start.$").is_some(), hourly, "{grain:?}: {args}");
        }
        // `2026-11-27T06:00:00Z` split at `:` gives the hour the runner expects.
        assert_eq!(
            def["States"][PREPARE]["Parameters"]["run_hour.$"],
            "States.ArrayGetItem(States.StringSplit($.scheduled_time, ':'), 0)"
        );
    }

    proptest::proptest! {
        /// Any DAG (each step depends on a random subset of earlier ones) and any limit: every
        /// step runs once, after all its dependencies, in waves no wider than the limit.
        #[test]
        fn waves_keep_every_dependency(
            deps in proptest::collection::vec(proptest::bits::u32::ANY, 1..25),
            max in 1u32..5,
        ) {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let d = mesh_domain::load_domain(&root).expect("example domain loads");
            let mut pl = d.project("sales").unwrap().pipelines[0].clone();
            let template = pl.steps[0].clone();
            pl.max_concurrency = max;
            pl.steps = deps
                .iter()
                .enumerate()
                .map(|(i, bits)| {
                    let mut s = template.clone();
                    s.name = mesh_domain::Name::parse(&format!("s{i}")).unwrap();
                    s.depends_on = (0..i)
                        .filter(|j| bits & (1 << (j % 32)) != 0)
                        .map(|j| mesh_domain::Name::parse(&format!("s{j}")).unwrap())
                        .collect();
                    s
                })
                .collect();
            let waves = waves(&pl);
            let mut wave_of = vec![usize::MAX; pl.steps.len()];
            for (w, wave) in waves.iter().enumerate() {
                proptest::prop_assert!(!wave.is_empty() && wave.len() <= max as usize);
                for &s in wave {
                    proptest::prop_assert_eq!(wave_of[s], usize::MAX, "step {} in two waves", s);
                    wave_of[s] = w;
                }
            }
            for (i, step) in pl.steps.iter().enumerate() {
                proptest::prop_assert!(wave_of[i] != usize::MAX, "step {} never runs", i);
                for dep in &step.depends_on {
                    let j: usize = dep.as_str()[1..].parse().unwrap();
                    proptest::prop_assert!(wave_of[j] < wave_of[i], "s{} runs before its dependency s{}", i, j);
                }
            }
        }
    }

    #[test]
    fn waves_respect_max_concurrency() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let d = mesh_domain::load_domain(&root).expect("example domain loads");
        let mut pl = d.project("legacy_refactor").unwrap().pipelines[0].clone();
        pl.max_concurrency = 1;
        assert_eq!(waves(&pl), vec![vec![0], vec![1], vec![2]]);
    }
}
