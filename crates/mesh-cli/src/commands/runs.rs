//! `mesh runs`: the runs recorded under .mesh/runs, newest first.

use std::path::Path;

use mesh_core::layout::RUNS_DIR;
use mesh_core::record::{RunRecord, StepStatus};

use crate::cli::Format;
use crate::common::print_json;
use crate::exit::Failure;

#[derive(serde::Serialize)]
struct RunRow {
    run_id: String,
    /// RFC 3339, UTC.
    started_at: String,
    env: String,
    /// `succeeded` or `failed`.
    status: &'static str,
    seconds: f64,
    steps: usize,
    steps_failed: usize,
    steps_skipped: usize,
    /// `project/pipeline/step` of each failed step.
    failed: Vec<String>,
    rows_rejected: u64,
    /// Every run parameter (`run_date`, an interval).
    params: std::collections::BTreeMap<String, String>,
}

fn row(r: &RunRecord) -> RunRow {
    let steps = r.pipelines.iter().flat_map(|p| p.steps.iter().map(move |s| (p, s)));
    let failed: Vec<String> = steps
        .clone()
        .filter(|(_, s)| s.status == StepStatus::Failed)
        .map(|(p, s)| format!("{}/{}/{}", p.project, p.pipeline, s.name))
        .collect();
    RunRow {
        run_id: r.run_id.clone(),
        started_at: r.started_at.clone(),
        env: r.env.clone(),
        status: if r.succeeded { "succeeded" } else { "failed" },
        seconds: r.seconds,
        steps: steps.clone().count(),
        steps_failed: failed.len(),
        steps_skipped: steps.clone().filter(|(_, s)| s.status == StepStatus::Skipped).count(),
        failed,
        rows_rejected: steps
            .filter_map(|(_, s)| s.metrics.job())
            .map(|j| j.rows_rejected)
            .sum(),
        params: r.params.clone(),
    }
}

/// Lists the last `limit` runs (all with 0), newest first.
pub fn run(root: &Path, limit: usize, format: Format) -> Result<(), Failure> {
    let dir = root.join(RUNS_DIR);
    let limit = if limit == 0 { usize::MAX } else { limit };
    let (runs, unreadable) = mesh_core::record::recent_runs(&dir, limit, None);
    let rows: Vec<RunRow> = runs.iter().rev().map(row).collect();
    match format {
        Format::Json => print_json(&rows),
        Format::Text => {
            if rows.is_empty() {
                println!("no runs in {RUNS_DIR} yet; `mesh run` records one");
                return Ok(());
            }
            let header = ["run", "started (UTC)", "env", "status", "steps", "failed", "seconds"];
            let cells: Vec<[String; 7]> = rows
                .iter()
                .map(|r| {
                    [
                        r.run_id.clone(),
                        chrono::DateTime::parse_from_rfc3339(&r.started_at)
                            .map(|t| t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_else(|_| r.started_at.clone()),
                        r.env.clone(),
                        r.status.to_string(),
                        r.steps.to_string(),
                        if r.failed.is_empty() {
                            "0".to_string()
                        } else {
                            format!("{} ({})", r.steps_failed, r.failed.join(", "))
                        },
                        format!("{:.1}", r.seconds),
                    ]
                })
                .collect();
            let widths: Vec<usize> = (0..header.len())
                .map(|i| {
                    cells
                        .iter()
                        .map(|c| c[i].chars().count())
                        .max()
                        .unwrap_or(0)
                        .max(header[i].len())
                })
                .collect();
            let line = |c: &[&str]| {
                let padded: Vec<String> = c.iter().zip(&widths).map(|(s, w)| format!("{s:<w$}")).collect();
                println!("{}", padded.join("  ").trim_end());
            };
            line(&header);
            for c in &cells {
                line(&c.iter().map(String::as_str).collect::<Vec<_>>());
            }
            println!("report of one: mesh report {}", rows[0].run_id);
        }
    }
    if unreadable > 0 {
        eprintln!("{unreadable} run record(s) in {RUNS_DIR} could not be read and are not listed");
    }
    Ok(())
}
