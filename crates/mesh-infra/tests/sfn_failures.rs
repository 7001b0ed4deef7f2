//! Retries and failures of the generated state machines, run on the patched moto server
//! (`tools/moto_faults.py` makes chosen Glue job runs FAIL and throttles chosen StartJobRun
//! calls; plain moto's runs always succeed and never throttle):
//! - a permanently failing step beside an independent one: the independent step and its
//!   dependent finish, the failed step's dependent is skipped, the execution fails naming the
//!   failed and skipped steps, and the alert says which;
//! - a throttled StartJobRun is retried (the step's `retries`), a failed job run is not, and a
//!   call throttled more often than the retries allow fails the step.
//!
//! Needs `MESH_PYTHON` with moto[server] 5.2.5 (scripts/test.sh installs it).

mod common;

use mesh_domain::{Env, Name, Naming, Project, StepAction};
use serde_json::Value;

struct StepDef {
    name: &'static str,
    depends_on: &'static [&'static str],
    retries: u32,
}

/// The sales project with one pipeline of `steps`, each running a Glue job of its own name.
fn machine(steps: &[StepDef]) -> (Project, Naming, Value) {
    let domain = common::example_domain();
    let naming = Naming::for_domain(&domain, Env::Dev);
    let arns = mesh_infra::policy::arns(&domain, &naming).unwrap();
    let project = domain.project("sales").unwrap().clone();
    let mut pipeline = project.pipelines[0].clone();
    let template = pipeline.steps[0].clone();
    pipeline.max_concurrency = steps.len() as u32;
    pipeline.steps = steps
        .iter()
        .map(|d| {
            let mut s = template.clone();
            s.name = Name::parse(d.name).unwrap();
            s.action = StepAction::Job(Name::parse(d.name).unwrap());
            s.depends_on = d.depends_on.iter().map(|n| Name::parse(n).unwrap()).collect();
            s.retries = d.retries;
            s.retry_backoff_seconds = 1;
            s
        })
        .collect();
    let def = mesh_infra::sfn::definition(&naming, &arns, &project, &pipeline);
    (project, naming, def)
}

fn job(project: &Project, naming: &Naming, step: &str) -> String {
    naming.glue_job(&project.slug, &Name::parse(step).unwrap())
}

/// Deploys `def` to a moto server with the given faults, runs one execution, returns its report
/// (see tools/run_execution.py).
fn execute(def: &Value, faults: &[(&str, &str)]) -> Value {
    let domain = common::example_domain();
    let account = domain.accounts[&Env::Dev].clone();
    let moto = common::start_moto_with_faults(&account, faults);
    let dir = tempfile::tempdir().unwrap();
    let asl = dir.path().join("machine.asl.json");
    std::fs::write(&asl, serde_json::to_string_pretty(def).unwrap()).unwrap();
    let out = std::process::Command::new(common::tool("MESH_PYTHON"))
        .arg(common::tools_dir().join("run_execution.py"))
        .args([&moto.endpoint, &account, &domain.region])
        .arg(&asl)
        .output()
        .expect("run run_execution.py");
    drop(moto);
    let text = format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn statuses(report: &Value) -> Vec<(String, String)> {
    report["steps"]
        .as_object()
        .unwrap_or_else(|| panic!("no step outcomes in {report}"))
        .iter()
        .map(|(k, v)| (k.clone(), v["status"].as_str().unwrap().to_string()))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn a_failed_step_skips_only_its_dependents_and_its_independent_sibling_finishes() {
    let (p, n, def) = machine(&[
        StepDef {
            name: "broken",
            depends_on: &[],
            retries: 2,
        },
        StepDef {
            name: "independent",
            depends_on: &[],
            retries: 0,
        },
        StepDef {
            name: "after_broken",
            depends_on: &["broken"],
            retries: 0,
        },
        StepDef {
            name: "after_independent",
            depends_on: &["independent"],
            retries: 0,
        },
    ]);
    // broken and independent are branches of one Parallel state: on AWS before this change a
    // failed branch aborted its sibling and every later wave.
    assert_eq!(def["States"]["Wave 1"]["Type"], "Parallel", "{def}");
    let broken = job(&p, &n, "broken");
    let r = execute(&def, &[("MESH_MOTO_FAILING_JOBS", broken.as_str())]);
    let machine = n.state_machine(&p.slug, &p.pipelines[0].name);

    assert_eq!(r["status"], "FAILED", "{r}");
    assert_eq!(r["error"], "PipelineFailed", "{r}");
    assert_eq!(
        r["cause"],
        format!(
            "{machine}: failed steps: `broken`; skipped steps: `after_broken`. See the alert and the execution history"
        ),
        "{r}"
    );
    assert_eq!(
        statuses(&r),
        pairs(&[
            ("after_broken", "skipped"),
            ("after_independent", "succeeded"),
            ("broken", "failed"),
            ("independent", "succeeded"),
        ])
    );
    // Each job ran once or not at all: the failed run was not retried despite `retries = 2`.
    let runs = &r["runs"];
    assert_eq!(runs[&broken], 1, "{r}");
    assert_eq!(runs[job(&p, &n, "independent")], 1, "{r}");
    assert_eq!(runs[job(&p, &n, "after_independent")], 1, "{r}");
    assert_eq!(runs[job(&p, &n, "after_broken")], 0, "{r}");
    assert_eq!(
        r["task_failures"],
        serde_json::json!([{"state": "Run broken", "error": "States.TaskFailed"}]),
        "{r}"
    );
    // The failure of the run is kept for the alert, with Glue's error message.
    let error = &r["steps"]["broken"]["error"];
    assert_eq!(error["Error"], "States.TaskFailed");
    assert!(
        error["Cause"].as_str().unwrap().contains("check `unique` failed"),
        "{error}"
    );
    let entered: Vec<&str> = r["entered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    for state in ["Skip after_broken", "Run after_independent", "Notify failure", "Failed"] {
        assert!(entered.contains(&state), "{state} not entered: {entered:?}");
    }
    assert!(!entered.contains(&"Run after_broken"), "{entered:?}");
    // The alert was published and names the failed and the skipped step.
    assert_eq!(r["alert_published"], true, "{r}");
    let alert = &r["alert"];
    assert_eq!(alert["Subject"], format!("{machine} failed"));
    let message = alert["Message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Failed steps: `broken`. Skipped steps (a dependency did not succeed): `after_broken`. Outcome of every step: {"
        ),
        "{message}"
    );
}

#[test]
fn every_step_succeeding_ends_in_succeeded() {
    let (p, n, def) = machine(&[
        StepDef {
            name: "first",
            depends_on: &[],
            retries: 1,
        },
        StepDef {
            name: "second",
            depends_on: &["first"],
            retries: 0,
        },
    ]);
    let r = execute(&def, &[]);
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    assert_eq!(statuses(&r), pairs(&[("first", "succeeded"), ("second", "succeeded")]));
    assert_eq!(r["runs"][job(&p, &n, "second")], 1, "{r}");
    assert_eq!(r["alert"], Value::Null, "no alert: {r}");
}

#[test]
fn a_throttled_glue_call_is_retried_but_a_failed_job_is_not() {
    let (p, n, def) = machine(&[
        StepDef {
            name: "throttled",
            depends_on: &[],
            retries: 2,
        },
        StepDef {
            name: "broken",
            depends_on: &[],
            retries: 2,
        },
        StepDef {
            name: "over_throttled",
            depends_on: &[],
            retries: 1,
        },
    ]);
    let (throttled, broken, over) = (
        job(&p, &n, "throttled"),
        job(&p, &n, "broken"),
        job(&p, &n, "over_throttled"),
    );
    let r = execute(
        &def,
        &[
            ("MESH_MOTO_FAILING_JOBS", broken.as_str()),
            ("MESH_MOTO_THROTTLED_JOBS", &format!("{throttled}=2,{over}=2")),
        ],
    );
    let failures = |state: &str| -> Vec<String> {
        r["task_failures"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["state"] == state)
            .map(|f| f["error"].as_str().unwrap().to_string())
            .collect()
    };
    // Throttled twice, retried twice, then the job started once and succeeded.
    assert_eq!(failures("Run throttled"), ["Glue.ThrottlingException"; 2], "{r}");
    assert_eq!(r["runs"][&throttled], 1, "{r}");
    // The failed job run: one run, one failure, no retry (retries = 2 notwithstanding).
    assert_eq!(failures("Run broken"), ["States.TaskFailed"], "{r}");
    assert_eq!(r["runs"][&broken], 1, "{r}");
    // One retry allowed, throttled twice: the step fails with the throttling error.
    assert_eq!(failures("Run over_throttled"), ["Glue.ThrottlingException"; 2], "{r}");
    assert_eq!(r["runs"][&over], 0, "{r}");
    assert_eq!(
        r["steps"]["over_throttled"]["error"]["Error"],
        "Glue.ThrottlingException"
    );
    assert_eq!(
        statuses(&r),
        pairs(&[
            ("broken", "failed"),
            ("over_throttled", "failed"),
            ("throttled", "succeeded")
        ])
    );
    assert_eq!(r["status"], "FAILED", "{r}");
    let machine = n.state_machine(&p.slug, &p.pipelines[0].name);
    assert_eq!(
        r["cause"],
        format!("{machine}: failed steps: `broken` `over_throttled`; skipped steps:. See the alert and the execution history"),
        "{r}"
    );
}
