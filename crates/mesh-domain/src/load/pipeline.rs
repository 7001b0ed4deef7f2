//! One `[[pipelines]]` entry: schedule, concurrency, alert addresses and steps (a job or an
//! `optimize` of an Iceberg table), then the dependencies between steps and their order.

use std::collections::BTreeSet;

use super::unchecked::{UncheckedJob, UncheckedPipeline, UncheckedStep, UncheckedTable};
use super::FileCx;
use crate::diagnostic::did_you_mean;
use crate::ident::Name;
use crate::model::{Pipeline, Step, StepAction, Table};

/// Checks pipeline `i` against the project's declared `jobs` and its checked `tables` (and the
/// `declared` ones: a step on an invalid table, already reported, is not reported again).
pub(super) fn check_pipeline(
    cx: &mut FileCx<'_>,
    jobs: &[UncheckedJob],
    tables: &[Table],
    declared: &[UncheckedTable],
    i: usize,
    p: &UncheckedPipeline,
) -> Option<Pipeline> {
    let before = cx.diags.len();
    let f = |field: &str| format!("pipelines[{i}].{field}");
    let name = cx.name(&f("name"), &p.name);
    if let Some(s) = &p.schedule {
        if let Err(e) = crate::cron::check_schedule(s) {
            cx.err_help(f("schedule"), e.message, e.help);
        }
    }
    let max_concurrency = p.max_concurrency.unwrap_or(4);
    if !(1..=64).contains(&max_concurrency) {
        cx.err_help(
            f("max_concurrency"),
            format!("{max_concurrency} is out of range"),
            "use 1 to 64",
        );
    }
    for (ei, e) in p.alert_emails.iter().enumerate() {
        let valid = e.split_once('@').is_some_and(|(a, b)| !a.is_empty() && b.contains('.'));
        if !valid {
            cx.err_help(
                f(&format!("alert_emails[{ei}]")),
                format!("`{e}` is not an email address"),
                "use name@example.com",
            );
        }
    }
    if p.steps.is_empty() {
        cx.err_help(
            f("steps"),
            "the pipeline has no steps",
            "add [[pipelines.steps]] entries with job = \"…\"",
        );
    }

    let mut steps: Vec<Step> = Vec::new();
    for (si, s) in p.steps.iter().enumerate() {
        if let Some(step) = check_step(cx, i, si, s, jobs, tables, declared) {
            if steps.iter().any(|x| x.name == step.name) {
                cx.err_help(
                    format!("pipelines[{i}].steps[{si}].name"),
                    format!("step `{}` appears twice", step.name),
                    "give the second one a different `name`",
                );
            }
            steps.push(step);
        }
    }
    if cx.diags.len() > before {
        return None;
    }
    // References and cycles, only once every step parsed.
    check_dependencies(cx, i, &steps);
    if cx.diags.len() > before {
        return None;
    }
    let steps = match topo_sort(&steps) {
        Ok(s) => s,
        Err(cycle) => {
            cx.err_help(
                f("steps"),
                format!("the steps form a cycle: {}", cycle.join(" → ")),
                "remove one of these depends_on links",
            );
            return None;
        }
    };
    Some(Pipeline {
        name: name?,
        description: p.description.clone(),
        schedule: p.schedule.clone(),
        max_concurrency,
        alert_emails: p.alert_emails.clone(),
        steps,
    })
}

/// Step `si` of pipeline `i`: its action, name (the job's, or `optimize_<table>`), retries and
/// dependency names.
fn check_step(
    cx: &mut FileCx<'_>,
    i: usize,
    si: usize,
    s: &UncheckedStep,
    jobs: &[UncheckedJob],
    tables: &[Table],
    declared: &[UncheckedTable],
) -> Option<Step> {
    let sf = |field: &str| format!("pipelines[{i}].steps[{si}].{field}");
    let action = match (&s.job, &s.optimize) {
        (Some(job), None) => {
            if jobs.iter().any(|j| &j.name == job) {
                Name::parse(job).ok().map(StepAction::Job)
            } else {
                let help = did_you_mean(job, jobs.iter().map(|j| j.name.as_str()))
                    .unwrap_or_else(|| "declare the job in [[jobs]] first".into());
                cx.err_help(sf("job"), format!("job `{job}` is not declared in this project"), help);
                None
            }
        }
        (None, Some(target)) => check_optimize_target(cx, sf("optimize"), target, tables, declared),
        (Some(_), Some(_)) => {
            cx.err_help(
                sf("job"),
                "a step has both `job` and `optimize`",
                "split it into two steps",
            );
            None
        }
        (None, None) => {
            cx.err_help(
                format!("pipelines[{i}].steps[{si}]"),
                "a step needs `job` or `optimize`",
                "add job = \"name\"",
            );
            None
        }
    };
    let step_name = s.name.clone().or_else(|| match &action {
        Some(StepAction::Job(j)) => Some(j.to_string()),
        Some(StepAction::Optimize(t)) => Some(format!("optimize_{}", t.table)),
        None => None,
    });
    let step_name = step_name.and_then(|n| cx.name(&sf("name"), &n));
    let retries = s.retries.unwrap_or(0);
    if retries > 10 {
        cx.err_help(
            sf("retries"),
            format!("{retries} retries is out of range"),
            "use 0 to 10",
        );
    }
    let mut depends_on = Vec::new();
    for (di, d) in s.depends_on.iter().enumerate() {
        if let Some(n) = cx.name(&sf(&format!("depends_on[{di}]")), d) {
            depends_on.push(n);
        }
    }
    Some(Step {
        name: step_name?,
        action: action?,
        depends_on,
        retries,
        retry_backoff_seconds: s.retry_backoff_seconds.unwrap_or(30),
    })
}

/// An `optimize` step's `layer.table`: a declared Iceberg table of the project.
fn check_optimize_target(
    cx: &mut FileCx<'_>,
    field: String,
    target: &str,
    tables: &[Table],
    declared: &[UncheckedTable],
) -> Option<StepAction> {
    let found = target
        .split_once('.')
        .and_then(|(l, t)| tables.iter().find(|x| x.layer.as_str() == l && x.name.as_str() == t));
    match found {
        Some(t) if t.layer.is_iceberg() => Some(StepAction::Optimize(t.reference())),
        Some(t) => {
            cx.err_help(
                field,
                format!(
                    "`{}` is a raw (Hive) table; only Iceberg tables are optimized",
                    t.reference()
                ),
                "optimize a refined or curated table",
            );
            None
        }
        // Declared but invalid tables were already reported; don't pile on.
        None if declared
            .iter()
            .any(|t| Some((t.layer.as_str(), t.name.as_str())) == target.split_once('.')) =>
        {
            None
        }
        None => {
            let known: Vec<String> = tables
                .iter()
                .filter(|t| t.layer.is_iceberg())
                .map(|t| t.reference().to_string())
                .collect();
            let help = did_you_mean(target, known.iter().map(String::as_str))
                .unwrap_or_else(|| "write `layer.table` of an Iceberg table of this project".into());
            cx.err_help(field, format!("table `{target}` is not declared in this project"), help);
            None
        }
    }
}

/// Every `depends_on` names another step of the pipeline.
fn check_dependencies(cx: &mut FileCx<'_>, i: usize, steps: &[Step]) {
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    for (si, s) in steps.iter().enumerate() {
        for (di, d) in s.depends_on.iter().enumerate() {
            if !names.contains(&d.as_str()) {
                let help = did_you_mean(d.as_str(), names.iter().copied())
                    .unwrap_or_else(|| format!("steps are: {}", names.join(", ")));
                cx.err_help(
                    format!("pipelines[{i}].steps[{si}].depends_on[{di}]"),
                    format!("step `{d}` does not exist in this pipeline"),
                    help,
                );
            }
            if d == &s.name {
                cx.err_help(
                    format!("pipelines[{i}].steps[{si}].depends_on[{di}]"),
                    format!("step `{d}` depends on itself"),
                    "remove it from depends_on",
                );
            }
        }
    }
}

/// An EventBridge Scheduler expression as EventBridge reads it, and one that fires at least
/// once after now (see [`crate::cron`]); the error is the message, the fix is in
/// [`crate::cron::check_schedule`]'s help.
pub fn check_schedule(expr: &str) -> Result<(), String> {
    crate::cron::check_schedule(expr).map(|_| ()).map_err(|e| e.message)
}

/// Orders steps so dependencies come first (stable: declaration order among ready steps),
/// or returns one cycle.
fn topo_sort(steps: &[Step]) -> Result<Vec<Step>, Vec<String>> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    while out.len() < steps.len() {
        let ready = steps
            .iter()
            .find(|s| !done.contains(s.name.as_str()) && s.depends_on.iter().all(|d| done.contains(d.as_str())));
        match ready {
            Some(s) => {
                done.insert(s.name.as_str());
                out.push(s.clone());
            }
            None => {
                // Follow unmet dependencies from any blocked step until a name repeats.
                let mut path: Vec<String> = Vec::new();
                let mut cur = steps
                    .iter()
                    .find(|s| !done.contains(s.name.as_str()))
                    .map(|s| s.name.as_str());
                while let Some(c) = cur {
                    if let Some(pos) = path.iter().position(|p| p == c) {
                        let mut cycle = path[pos..].to_vec();
                        cycle.push(c.to_string());
                        return Err(cycle);
                    }
                    path.push(c.to_string());
                    cur = steps
                        .iter()
                        .find(|s| s.name.as_str() == c)
                        .and_then(|s| s.depends_on.iter().find(|d| !done.contains(d.as_str())))
                        .map(Name::as_str);
                }
                return Err(path);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, deps: &[&str]) -> Step {
        Step {
            name: Name::parse(name).unwrap(),
            action: StepAction::Job(Name::parse(name).unwrap()),
            depends_on: deps.iter().map(|d| Name::parse(d).unwrap()).collect(),
            retries: 0,
            retry_backoff_seconds: 1,
        }
    }

    #[test]
    fn topo_orders_dependencies_first() {
        let s = topo_sort(&[step("c", &["b"]), step("a", &[]), step("b", &["a"])]).unwrap();
        let names: Vec<_> = s.iter().map(|s| s.name.to_string()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn topo_reports_a_cycle() {
        let cycle = topo_sort(&[step("a", &["c"]), step("b", &["a"]), step("c", &["b"]), step("d", &[])]).unwrap_err();
        assert_eq!(cycle.first(), cycle.last());
        assert!(cycle.len() == 4, "{cycle:?}");
    }

    #[test]
    fn schedules() {
        assert!(check_schedule("cron(0 6 * * ? *)").is_ok());
        assert!(check_schedule("rate(1 hour)").is_ok());
        assert!(check_schedule("cron(0 6 * * *)").is_err());
        assert!(check_schedule("cron(0 6 1 * MON *)").is_err());
        assert!(check_schedule("0 6 * * *").is_err());
        assert!(check_schedule("cron(0 6 31 2 ? *)")
            .unwrap_err()
            .contains("never fires"));
        assert!(check_schedule("cron(0 25 * * ? *)").unwrap_err().contains("hours"));
    }
}

#[cfg(test)]
mod edge_tests {
    use super::super::testing::{diagnostics, one_at};

    fn manifest(schedule: &str) -> String {
        format!(
            r#"name = "shop"
project_slug = "pj01"
owner = "team"
classification = "internal"

[[tables]]
name = "orders"
layer = "curated"
columns = [{{ name = "id", type = "long" }}]

[[jobs]]
name = "load"
sql = "sql/load.sql"
output = "curated.orders"
mode = "overwrite"

[[pipelines]]
name = "main"
schedule = {schedule:?}
steps = [{{ job = "load" }}]
"#
        )
    }

    #[test]
    fn schedules_eventbridge_refuses_or_that_never_fire_are_reported_at_the_field() {
        for (schedule, wanted) in [
            ("cron(0 25 * * ? *)", "hours: 25"),
            ("cron(60 6 * * ? *)", "minutes: 60"),
            ("cron(0 6 * * ? 1969)", "year: 1969"),
            ("cron(0 6 * * ? 2200)", "year: 2200"),
            ("cron(0 6 ? * 8 *)", "day-of-week: 8"),
            ("cron(0 6 32W * ? *)", "day-of-month: 32"),
            ("cron(0 6 ? * ? *)", "both `?`"),
            ("cron(0 6 31 2 ? *)", "never fires"),
            ("cron(0 6 31 SEP,NOV ? *)", "never fires"),
            ("rate(1 days)", "singular"),
        ] {
            let d = one_at(
                &diagnostics(&manifest(schedule), &[("sql/load.sql", "SELECT 1 AS id")]),
                "pipelines[0].schedule",
                &[schedule, wanted],
            );
            assert_eq!(d.location.line, Some(19), "{d}");
        }
        let d = diagnostics(&manifest("cron(0 6 L 2 ? *)"), &[("sql/load.sql", "SELECT 1 AS id")]);
        assert!(d.is_empty(), "{d:#?}");
    }
}
