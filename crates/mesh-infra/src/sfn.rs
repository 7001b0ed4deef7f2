//! Step Functions definitions (ASL) from pipeline DAGs.
//!
//! The DAG is cut into waves: a step's wave is one more than the latest wave of the steps it
//! depends on. Each wave runs after the previous one; a wave with several steps is a Parallel
//! state with one branch per step. This keeps every dependency (a step never starts before
//! what it depends on has finished) at the cost of sometimes waiting for an unrelated step of
//! the previous wave, and it maps any DAG onto ASL without nested joins. A wave wider than the
//! pipeline's `max_concurrency` is split into consecutive Parallel states.
//!
//! Failures behave as in `mesh run` (mesh-core's `dag`): a failed step skips only the steps
//! that depend on it, every other step and branch finishes, and the execution then fails naming
//! every failed step. The execution's state carries `steps`, one outcome per step
//! (`{"status": "pending" | "succeeded" | "failed" | "skipped", "failed": "", "skipped": ""}`):
//! each task records its success (`ResultSelector` into `$.steps.<step>`) and catches every
//! error into the same place (`Catch` with `ResultPath`, then a Pass marking it failed), so no
//! error escapes a step; a step with dependencies starts with a Choice that skips it unless every
//! dependency succeeded; a Parallel state takes each step's outcome from the branch that ran it.
//! After the last wave a Choice sends an execution with a failed step to the alert and the Fail
//! state, both naming the failed and skipped steps (from the `failed`/`skipped` fields, which
//! hold the step's name in backticks once it failed or was skipped and are empty otherwise,
//! concatenated with `States.Format`).
//!
//! Retries are as local too: only transient errors. The Glue runner retries the job's
//! transient errors itself (`--mesh-retries`, `--mesh-retry-backoff-seconds`: the step's
//! `retries` and `retry_backoff_seconds`) and fails the run for anything else, so a Glue run
//! that failed is final and the state machine never runs the job again; its `Retry` covers only
//! the transient errors of the `StartJobRun` call itself ([`GLUE_API_TRANSIENT`]), where no job
//! ran at all. The Glue jobs' own `max_retries` is 0 (see `render.rs`): Glue would rerun any
//! failed run, a failed check or a SQL typo included.

use std::collections::BTreeMap;

use mesh_domain::{Naming, Pipeline, Project, Step, StepAction};
use serde_json::{json, Map, Value};

use crate::policy::Arns;

pub const NOTIFY: &str = "Notify failure";
pub const FAILED: &str = "Failed";
pub const PREPARE: &str = "Prepare run";

pub const CHECK_FAILURES: &str = "Check for failures";
pub const SUMMARIZE: &str = "Summarize failures";
pub const SUCCEEDED: &str = "Succeeded";

/// The Glue runner's arguments for its own retries of transient errors (hyphenated, so the
/// runner never takes them for run parameters).
pub const RETRIES_ARG: &str = "--mesh-retries";
pub const RETRY_BACKOFF_ARG: &str = "--mesh-retry-backoff-seconds";

/// The only errors the state machine retries: transient errors of the `StartJobRun` call (the
/// job did not start). A job run that failed ends as `States.TaskFailed`, which is never
/// retried here: the runner has already retried what was transient. Configuration errors
/// (`Glue.EntityNotFoundException`, `AccessDeniedException`, `InvalidInputException`) and
/// anything unknown fail at once, as the local engine's whitelist does.
pub const GLUE_API_TRANSIENT: &[&str] = &[
    "Glue.ThrottlingException",
    "Glue.ConcurrentRunsExceededException",
    "Glue.InternalServiceException",
    "Glue.OperationTimeoutException",
    "Glue.ResourceNumberLimitExceededException",
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

/// Where an outcome of `step` is kept in the execution's state.
fn outcome_path(step: &Step) -> String {
    format!("$.steps.{}", step.name)
}

/// An outcome as `$.steps.<step>` holds it; `failed`/`skipped` name the step when it is so.
fn outcome(step: &Step, status: &str) -> Value {
    let named = |s: &str| {
        if status == s {
            format!(" `{}`", step.name)
        } else {
            String::new()
        }
    };
    json!({"status": status, "failed": named("failed"), "skipped": named("skipped")})
}

/// The first state of a step: its Choice when it has dependencies, else its task.
fn entry_state_name(step: &Step) -> String {
    if step.depends_on.is_empty() {
        step_state_name(step)
    } else {
        format!("Check {}", step.name)
    }
}

fn set_next(state: &mut Value, next: Option<&str>) {
    match next {
        Some(n) => state["Next"] = json!(n),
        None => state["End"] = json!(true),
    }
}

/// The states of one step, its entry state first; `next` is `None` at the end of a branch.
/// Whatever happens, the step's outcome is recorded under `$.steps.<step>` and the execution
/// goes on to `next`: a Choice skips the step unless every dependency succeeded, the task
/// records its success, and its Catch (every error) records the failure.
fn step_states(
    naming: &Naming,
    arns: &Arns,
    project: &Project,
    step: &Step,
    next: Option<&str>,
) -> Vec<(String, Value)> {
    let (job_name, mut args) = match &step.action {
        StepAction::Job(job) => {
            let mut args = Map::new();
            // A time-range job gets the schedule's time, not a date: it processes the intervals
            // complete at that time and not yet done (catch-up after a pause, never the interval
            // still in progress). Other jobs get the run date their SQL may bind.
            let time_range = project.job(job.as_str()).is_some_and(|j| j.time_range.is_some());
            if time_range {
                args.insert("--run_at.$".into(), json!("$.scheduled_time"));
            } else {
                args.insert("--run_date.$".into(), json!("$.run_date"));
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
    // The runner retries transient errors of the job itself, as `mesh run` does, and fails
    // the run for anything else.
    args.insert(RETRIES_ARG.into(), json!(step.retries.to_string()));
    args.insert(RETRY_BACKOFF_ARG.into(), json!(step.retry_backoff_seconds.to_string()));
    let task_name = step_state_name(step);
    let failed_name = format!("{} failed", step.name);
    let path = outcome_path(step);
    let mut task = json!({
        "Type": "Task",
        "Resource": arns.integration("glue:startJobRun.sync"),
        "Parameters": {
            "JobName": job_name,
            "Arguments": args,
        },
        "ResultSelector": outcome(step, "succeeded"),
        "ResultPath": path,
        // Every error, so that a failed step never ends its branch or the execution: its
        // dependents are skipped, everything else runs.
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": path, "Next": failed_name}],
    });
    if step.retries > 0 {
        task["Retry"] = json!([{
            "ErrorEquals": GLUE_API_TRANSIENT,
            "IntervalSeconds": step.retry_backoff_seconds.max(1),
            "MaxAttempts": step.retries,
            "BackoffRate": 2,
        }]);
    }
    set_next(&mut task, next);
    // The caught error (`Error`, `Cause`) is kept beside the status for the alert.
    let mut failed = outcome(step, "failed");
    failed["error.$"] = json!(path);
    let mut record_failure = json!({"Type": "Pass", "Parameters": failed, "ResultPath": path});
    set_next(&mut record_failure, next);
    let mut states = Vec::new();
    if !step.depends_on.is_empty() {
        let skip_name = format!("Skip {}", step.name);
        let deps: Vec<String> = step.depends_on.iter().map(|d| format!("`{d}`")).collect();
        let because = match deps.as_slice() {
            [one] => format!("{one} did not succeed"),
            many => format!("one of {} did not succeed", many.join(", ")),
        };
        let rules: Vec<Value> = step
            .depends_on
            .iter()
            .map(|d| {
                json!({
                    "Not": {"Variable": format!("$.steps.{d}.status"), "StringEquals": "succeeded"},
                    "Next": skip_name,
                })
            })
            .collect();
        states.push((
            entry_state_name(step),
            json!({"Type": "Choice", "Choices": rules, "Default": task_name}),
        ));
        let mut skipped = outcome(step, "skipped");
        skipped["because"] = json!(because);
        let mut skip = json!({"Type": "Pass", "Result": skipped, "ResultPath": path});
        set_next(&mut skip, next);
        states.push((skip_name, skip));
    }
    states.push((task_name, task));
    states.push((failed_name, record_failure));
    states
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
                entry_state_name(&pipeline.steps[w[0]])
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
            "Next": first.clone().unwrap_or_else(|| SUCCEEDED.into()),
        }),
    );
    // Every step starts `pending`; its states record how it ended.
    let initial: Map<String, Value> = pipeline
        .steps
        .iter()
        .map(|s| (s.name.to_string(), outcome(s, "pending")))
        .collect();
    states[PREPARE]["Parameters"]["steps"] = Value::Object(initial);
    let after_waves = if pipeline.steps.is_empty() {
        SUCCEEDED
    } else {
        CHECK_FAILURES
    };
    for (i, wave) in waves.iter().enumerate() {
        let next = Some(wave_names.get(i + 1).map_or(after_waves, String::as_str));
        if wave.len() == 1 {
            states.extend(step_states(naming, arns, project, &pipeline.steps[wave[0]], next));
        } else {
            // No error leaves a branch (each step catches its own), so every branch runs to
            // its end. Each branch returns the whole state; the outcome of a step of this
            // wave comes from its branch, every other one is unchanged in any branch.
            let branches: Vec<Value> = wave
                .iter()
                .map(|&s| {
                    let step = &pipeline.steps[s];
                    let states: Map<String, Value> =
                        step_states(naming, arns, project, step, None).into_iter().collect();
                    json!({"StartAt": entry_state_name(step), "States": states})
                })
                .collect();
            let selector: Map<String, Value> = pipeline
                .steps
                .iter()
                .enumerate()
                .map(|(si, step)| {
                    let branch = wave.iter().position(|&w| w == si).unwrap_or(0);
                    (
                        format!("{}.$", step.name),
                        json!(format!("$[{branch}].steps.{}", step.name)),
                    )
                })
                .collect();
            let mut par = json!({
                "Type": "Parallel",
                "Branches": branches,
                "ResultSelector": selector,
                "ResultPath": "$.steps",
            });
            set_next(&mut par, next);
            states.insert(wave_names[i].clone(), par);
        }
    }
    states.insert(SUCCEEDED.into(), json!({"Type": "Succeed"}));
    let machine = naming.state_machine(&project.slug, &pipeline.name);
    if !pipeline.steps.is_empty() {
        // Any failed step fails the execution (a skipped one implies a failed one).
        let rules: Vec<Value> = pipeline
            .steps
            .iter()
            .map(|s| json!({"Variable": format!("$.steps.{}.status", s.name), "StringEquals": "failed", "Next": SUMMARIZE}))
            .collect();
        states.insert(
            CHECK_FAILURES.into(),
            json!({"Type": "Choice", "Choices": rules, "Default": SUCCEEDED}),
        );
        // The names of the failed and of the skipped steps, e.g. " `a` `b`".
        let names = |field: &str| {
            let holes = "{}".repeat(pipeline.steps.len());
            let args: Vec<String> = pipeline
                .steps
                .iter()
                .map(|s| format!("$.steps.{}.{field}", s.name))
                .collect();
            format!("States.Format('{holes}', {})", args.join(", "))
        };
        states.insert(
            SUMMARIZE.into(),
            json!({
                "Type": "Pass",
                "Parameters": {"failed.$": names("failed"), "skipped.$": names("skipped")},
                "ResultPath": "$.failures",
                "Next": NOTIFY,
            }),
        );
    }
    let topic = arns.sns_topic(&naming.alerts_topic(&project.slug));
    states.insert(
        NOTIFY.into(),
        json!({
            "Type": "Task",
            "Resource": arns.integration("sns:publish"),
            "Parameters": {
                "TopicArn": topic,
                "Subject": format!("{machine} failed"),
                "Message.$": "States.Format('Failed steps:{}. Skipped steps (a dependency did not succeed):{}. Outcome of every step: {}', $.failures.failed, $.failures.skipped, States.JsonToString($.steps))",
            },
            "ResultPath": null,
            // Still fail the execution when the alert itself cannot be sent.
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": null, "Next": FAILED}],
            "Next": FAILED,
        }),
    );
    states.insert(
        FAILED.into(),
        json!({
            "Type": "Fail",
            "Error": "PipelineFailed",
            "CausePath": format!("States.Format('{machine}: failed steps:{{}}; skipped steps:{{}}. See the alert and the execution history', $.failures.failed, $.failures.skipped)"),
        }),
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
    use mesh_domain::Grain;

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

        // A time-range job of any grain gets the schedule's time and no date: the runner picks
        // the intervals complete at that time.
        for grain in [Grain::Hour, Grain::Day, Grain::Month] {
            p.jobs[0].time_range = Some(mesh_domain::TimeRange::new(
                mesh_domain::Name::parse("sale_date").unwrap(),
                grain,
            ));
            let def = definition(&n, &arns, &p, &p.pipelines[0]);
            let args = &task(&def, "Run daily_sales")["Parameters"]["Arguments"];
            assert_eq!(args["--run_at.$"], "$.scheduled_time", "{grain:?}: {args}");
            assert!(
                args.get("--run_date.$").is_none() && args.get("--interval_start.$").is_none(),
                "{grain:?}: {args}"
            );
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
    fn example() -> (mesh_domain::Domain, Naming, Arns) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let d = mesh_domain::load_domain(&root).expect("example domain loads");
        let n = Naming::for_domain(&d, mesh_domain::Env::Dev);
        let arns = crate::policy::arns(&d, &n).unwrap();
        (d, n, arns)
    }

    fn all_states(states: &Value, out: &mut Vec<(String, Value)>) {
        for (name, s) in states.as_object().unwrap() {
            out.push((name.clone(), s.clone()));
            for b in s["Branches"].as_array().into_iter().flatten() {
                all_states(&b["States"], out);
            }
        }
    }

    #[test]
    fn only_transient_glue_api_errors_are_retried_and_the_runner_gets_the_step_policy() {
        let (d, n, arns) = example();
        let p = d.project("sales").unwrap();
        let pl = &p.pipelines[0];
        let def = definition(&n, &arns, p, pl);
        let step = pl.steps.iter().find(|s| s.name.as_str() == "daily_sales").unwrap();
        assert!(step.retries > 0, "the example's job step has retries");
        let run = task(&def, "Run daily_sales");
        assert_eq!(
            run["Retry"],
            json!([{
                "ErrorEquals": [
                    "Glue.ThrottlingException",
                    "Glue.ConcurrentRunsExceededException",
                    "Glue.InternalServiceException",
                    "Glue.OperationTimeoutException",
                    "Glue.ResourceNumberLimitExceededException",
                ],
                "IntervalSeconds": step.retry_backoff_seconds.max(1),
                "MaxAttempts": step.retries,
                "BackoffRate": 2,
            }])
        );
        let args = &run["Parameters"]["Arguments"];
        assert_eq!(args[RETRIES_ARG], json!(step.retries.to_string()));
        assert_eq!(args[RETRY_BACKOFF_ARG], json!(step.retry_backoff_seconds.to_string()));
        // A step without retries is not retried at all, as locally.
        let opt = task(&def, "Optimize curated.daily_sales");
        assert!(opt.get("Retry").is_none(), "{opt}");
        assert_eq!(opt["Parameters"]["Arguments"][RETRIES_ARG], "0");

        // No state of any pipeline retries a failed job run (States.TaskFailed, matched by
        // States.ALL) or a timeout: only the listed Glue API errors.
        for p in &d.projects {
            for pl in &p.pipelines {
                let mut states = Vec::new();
                all_states(&definition(&n, &arns, p, pl)["States"], &mut states);
                for (name, s) in states {
                    for r in s["Retry"].as_array().into_iter().flatten() {
                        for e in r["ErrorEquals"].as_array().unwrap() {
                            let e = e.as_str().unwrap();
                            assert!(GLUE_API_TRANSIENT.contains(&e), "{name} retries {e}");
                        }
                    }
                    if s["Type"] == "Task" {
                        assert_eq!(
                            s["Catch"][0]["ErrorEquals"],
                            json!(["States.ALL"]),
                            "{name}: every error is caught"
                        );
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // A small interpreter of the ASL this module generates (Pass, Choice, Task, Parallel,
    // Succeed, Fail; paths `$.a.b` and `$[i].a.b`; `States.Format` over paths), so that any
    // DAG can be run with any set of failing tasks. moto runs the real thing in
    // tests/sfn_failures.rs; this covers every shape of DAG.

    fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
        let rest = path.strip_prefix('$').unwrap_or_else(|| panic!("not a path: {path}"));
        let mut cur = v;
        for part in rest.split('.').filter(|p| !p.is_empty()) {
            if let Some(i) = part.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
                cur = &cur[i.parse::<usize>().unwrap()];
            } else {
                cur = cur
                    .get(part)
                    .unwrap_or_else(|| panic!("no {part} in {cur} (path {path})"));
            }
        }
        cur
    }

    /// Applies a state's `ResultPath` (absent: `$`; null: the input passes unchanged).
    fn put(v: &mut Value, state: &Value, result: Value) {
        let path = match state.get("ResultPath") {
            None => "$",
            Some(Value::Null) => return,
            Some(p) => p.as_str().unwrap(),
        };
        if path == "$" {
            *v = result;
            return;
        }
        let mut cur = v;
        for part in path.strip_prefix("$.").unwrap().split('.') {
            cur = cur.as_object_mut().unwrap().entry(part).or_insert(Value::Null);
        }
        *cur = result;
    }

    fn eval(input: &Value, expr: &str) -> Value {
        if let Some(inner) = expr.strip_prefix("States.Format('").and_then(|e| e.strip_suffix(')')) {
            let (template, args) = inner.split_once("', ").unwrap();
            let mut out = template.to_string();
            for a in args.split(", ") {
                let v = get(input, a).as_str().unwrap().to_string();
                out = out.replacen("{}", &v, 1);
            }
            json!(out)
        } else if expr.starts_with("States.") {
            json!(null) // not needed by these tests (dates, the alert's message)
        } else {
            get(input, expr).clone()
        }
    }

    fn template(input: &Value, t: &Value) -> Value {
        match t {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| match k.strip_suffix(".$") {
                        Some(k) => (k.to_string(), eval(input, v.as_str().unwrap())),
                        None => (k.clone(), template(input, v)),
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Runs `states` from `start`; a task of a job in `failing` fails. Returns the final
    /// state, the terminal (`Ok(state)` or `Err(cause)`) and every task entered.
    fn interpret(
        states: &Value,
        start: &str,
        mut v: Value,
        failing: &[String],
        ran: &mut Vec<String>,
    ) -> Result<Value, String> {
        let mut at = start.to_string();
        loop {
            let s = &states[&at];
            let next = match s["Type"].as_str().unwrap() {
                "Pass" => {
                    let result = if let Some(p) = s.get("Parameters") {
                        template(&v, p)
                    } else {
                        s["Result"].clone()
                    };
                    put(&mut v, s, result);
                    s.get("Next")
                }
                "Choice" => {
                    let hit = s["Choices"].as_array().unwrap().iter().find(|rule| {
                        let (rule, negate) = match rule.get("Not") {
                            Some(r) => (r, true),
                            None => (*rule, false),
                        };
                        let equal = get(&v, rule["Variable"].as_str().unwrap()) == &rule["StringEquals"];
                        equal != negate
                    });
                    Some(hit.map_or(&s["Default"], |r| &r["Next"]))
                }
                "Task" => {
                    let job = s["Parameters"]["JobName"].as_str().unwrap_or("");
                    if !job.is_empty() {
                        ran.push(at.clone());
                    }
                    if failing.iter().any(|f| f == job) {
                        let c = &s["Catch"][0];
                        put(&mut v, c, json!({"Error": "States.TaskFailed", "Cause": "{}"}));
                        Some(&c["Next"])
                    } else {
                        let result = s.get("ResultSelector").map_or(Value::Null, |r| template(&v, r));
                        put(&mut v, s, result);
                        s.get("Next")
                    }
                }
                "Parallel" => {
                    let outs: Vec<Value> = s["Branches"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|b| interpret(&b["States"], b["StartAt"].as_str().unwrap(), v.clone(), failing, ran))
                        .collect::<Result<_, _>>()?;
                    let result = template(&Value::Array(outs), &s["ResultSelector"]);
                    put(&mut v, s, result);
                    s.get("Next")
                }
                "Succeed" => return Ok(v),
                "Fail" => return Err(eval(&v, s["CausePath"].as_str().unwrap()).as_str().unwrap().to_string()),
                t => panic!("unexpected state type {t}"),
            };
            match next {
                Some(n) => at = n.as_str().unwrap().to_string(),
                None => return Ok(v), // End of a branch
            }
        }
    }

    proptest::proptest! {
        /// Any DAG, any limit, any set of failing jobs: exactly the steps whose dependencies
        /// all succeeded run (as `mesh run` runs them), the others are skipped, and the
        /// execution fails naming exactly the failed and the skipped steps.
        #[test]
        fn a_failed_step_skips_only_its_dependents(
            deps in proptest::collection::vec(proptest::bits::u32::ANY, 1..12),
            fails in proptest::bits::u32::ANY,
            max in 1u32..4,
        ) {
            let (d, n, arns) = example();
            let p = d.project("sales").unwrap().clone();
            let mut pl = p.pipelines[0].clone();
            let template_step = pl.steps[0].clone();
            pl.max_concurrency = max;
            pl.steps = deps
                .iter()
                .enumerate()
                .map(|(i, bits)| {
                    let mut s = template_step.clone();
                    s.name = mesh_domain::Name::parse(&format!("s{i}")).unwrap();
                    s.action = StepAction::Job(mesh_domain::Name::parse(&format!("job{i}")).unwrap());
                    s.depends_on = (0..i)
                        .filter(|j| bits & (1 << (j % 32)) != 0)
                        .map(|j| mesh_domain::Name::parse(&format!("s{j}")).unwrap())
                        .collect();
                    s
                })
                .collect();
            let def = definition(&n, &arns, &p, &pl);
            let failing: Vec<String> = (0..pl.steps.len())
                .filter(|i| fails & (1 << i) != 0)
                .map(|i| n.glue_job(&p.slug, &mesh_domain::Name::parse(&format!("job{i}")).unwrap()))
                .collect();
            // What `mesh run` does: a step runs when every dependency succeeded.
            let mut status: Vec<&str> = Vec::new();
            for (i, s) in pl.steps.iter().enumerate() {
                let ready = s.depends_on.iter().all(|dep| status[dep.as_str()[1..].parse::<usize>().unwrap()] == "succeeded");
                status.push(if !ready { "skipped" } else if fails & (1 << i) != 0 { "failed" } else { "succeeded" });
            }
            let mut ran = Vec::new();
            let input = json!({"scheduled_time": "2026-11-27T06:00:00Z"});
            let end = interpret(&def["States"], PREPARE, input, &failing, &mut ran);
            let mut expected_ran: Vec<String> = (0..pl.steps.len()).filter(|&i| status[i] != "skipped").map(|i| format!("Run job{i}")).collect();
            expected_ran.sort();
            ran.sort();
            proptest::prop_assert_eq!(ran, expected_ran);
            let named = |what: &str| -> String {
                (0..pl.steps.len()).filter(|&i| status[i] == what).map(|i| format!(" `s{i}`")).collect()
            };
            match end {
                Ok(v) => {
                    proptest::prop_assert!(!status.contains(&"failed"), "succeeded with failed steps: {:?}", status);
                    for (i, st) in status.iter().enumerate() {
                        proptest::prop_assert_eq!(&v["steps"][format!("s{i}")]["status"], st);
                    }
                }
                Err(cause) => {
                    proptest::prop_assert!(status.contains(&"failed"));
                    let machine = n.state_machine(&p.slug, &pl.name);
                    proptest::prop_assert_eq!(
                        cause,
                        format!("{machine}: failed steps:{}; skipped steps:{}. See the alert and the execution history", named("failed"), named("skipped"))
                    );
                }
            }
        }
    }
}
