//! `mesh validate` reads each job's SQL against the manifest: the query is planned (not run) by
//! the local engine over empty tables of the declared schemas, so a column the SQL reads that
//! its input does not declare, a declared output column the result lacks, a result column the
//! output does not declare and a result type the declared one cannot hold are all found before
//! any data is read, with the rules `mesh run` applies (`job::output_columns`) and the Glue runner
//! mirrors. What cannot be planned without data (a parameter without a value, a function
//! the local engine lacks) is left to the other checks and to the run.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::common::SchemaError;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use mesh_domain::param::ParamType;
use mesh_domain::{Diagnostic, Diagnostics, Domain, Env, Job, Naming};

use crate::job::JobError;

/// A value of each parameter for planning only: the job's defaults, then a value of the
/// parameter's type for the run's own parameters (`run_date`, the interval's bounds).
fn planning_params(job: &Job) -> BTreeMap<String, String> {
    let mut params = job.params.clone();
    for (name, value) in [
        ("run_date", "2026-01-01"),
        ("interval_start", "2026-01-01"),
        ("interval_end", "2026-01-02"),
    ] {
        params.entry(name.to_string()).or_insert_with(|| value.to_string());
    }
    for (name, ty) in &job.param_types {
        params.entry(name.clone()).or_insert_with(|| {
            match ty {
                ParamType::String => "x",
                ParamType::Int => "0",
                ParamType::Date => "2026-01-01",
                ParamType::Timestamp => "2026-01-01 00:00:00",
            }
            .to_string()
        });
    }
    params
}

/// The first 1-based line of `sql` where `word` appears as a whole word (case-insensitive).
fn line_of(sql: &str, word: &str) -> Option<usize> {
    let word = word.to_ascii_lowercase();
    sql.lines()
        .position(|l| {
            let l = l.to_ascii_lowercase();
            l.match_indices(&word).any(|(i, _)| {
                let before = l[..i].chars().next_back();
                let after = l[i + word.len()..].chars().next();
                let edge = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                edge(before) && edge(after)
            })
        })
        .map(|i| i + 1)
}

/// The message and help of a job error as a diagnostic of the SQL file.
fn diagnostic(file: &Path, sql: &str, column: &str, text: &str) -> Diagnostic {
    let (message, help) = match text.split_once("\n  help: ") {
        Some((m, h)) => (m, Some(h)),
        None => (text, None),
    };
    let d = Diagnostic::new(file, "", message).at_line(line_of(sql, column));
    match help {
        Some(h) => d.with_help(h),
        None => d,
    }
}

/// Checks every job's SQL against the declared input and output tables (see the module docs).
pub fn check_domain(domain: &Domain, root: &Path) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let naming = Naming::for_domain(domain, Env::Local);
    let Ok(ctx) = crate::session::new_context(&naming) else {
        return diags;
    };
    for p in &domain.projects {
        for t in &p.tables {
            let schema = crate::translate::arrow_schema(t);
            if let Ok(mem) = MemTable::try_new(schema, vec![vec![]]) {
                let _ =
                    crate::session::register_provider(&ctx, &naming.database(t.layer), t.name.as_str(), Arc::new(mem));
            }
        }
    }
    // Other domains' products, as pinned by `mesh pull`.
    crate::products::register_pinned_schemas(&ctx, root);
    for p in &domain.projects {
        for j in &p.jobs {
            let Ok(bytes) = std::fs::read(root.join(&j.sql)) else {
                continue;
            };
            if crate::sql_check::check_job_sql(&bytes).is_err() {
                continue; // reported by the portable-SQL check
            }
            let sql = String::from_utf8_lossy(crate::sql_check::strip_bom(&bytes)).into_owned();
            let Ok(bound) = crate::params::bind(&sql, &planning_params(j), &j.param_types) else {
                continue;
            };
            let Some(out) = p.table(&j.output) else { continue };
            let file = j.sql.display().to_string();
            let plan = futures::executor::block_on(ctx.state().create_logical_plan(&bound));
            match plan {
                Ok(plan) => {
                    // The analyzer's checks (types that do not compare or add up) fail the run
                    // before any row is read, whatever the data: so they fail validation too.
                    let state = ctx.state();
                    if let Err(e) = state
                        .analyzer()
                        .execute_and_check(plan.clone(), state.config_options(), |_, _| {})
                    {
                        let message = format!(
                            "job `{}`: the query fails: {}",
                            j.name,
                            crate::type_names::in_message(&e.find_root().to_string())
                        );
                        diags.push(Diagnostic::new(&j.sql, "", message).with_help(format!(
                            "fix the expression in {file}: compare and compute values of one type, CAST(… AS type) where they differ"
                        )));
                        continue;
                    }
                    let schema = plan.schema().as_arrow().clone();
                    if let Err(e) = crate::job::output_columns(j, out, &schema, &file) {
                        let column = match &e {
                            JobError::MissingColumn { column, .. }
                            | JobError::UnknownColumn { column, .. }
                            | JobError::ColumnType { column, .. } => column.clone(),
                            _ => String::new(),
                        };
                        diags.push(diagnostic(&j.sql, &sql, &column, &e.to_string()));
                    }
                }
                // A column the SQL reads that no input declares: the run would fail the same way.
                Err(e) => {
                    // The planner wraps the schema error in a diagnostic or a context.
                    let DataFusionError::SchemaError(e, _) = e.find_root() else {
                        continue;
                    };
                    let text = e.to_string();
                    let column = match e.as_ref() {
                        SchemaError::FieldNotFound { field, .. } => field.name.clone(),
                        _ => String::new(),
                    };
                    let message = format!(
                        "job `{}`: the SQL reads a column its inputs do not declare: {text}",
                        j.name
                    );
                    diags.push(
                        Diagnostic::new(&j.sql, "", message)
                            .at_line(line_of(&sql, &column))
                            .with_help(format!(
                                "declare the column in the input table of {}/project.toml, or fix the name in {file}",
                                p.dir.display()
                            )),
                    );
                }
            }
        }
    }
    diags.sorted()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_found_by_whole_word() {
        let sql = "SELECT\n  revenue_total,\n  SUM(x) AS revenue\nFROM t";
        assert_eq!(line_of(sql, "revenue"), Some(3));
        assert_eq!(line_of(sql, "REVENUE_TOTAL"), Some(2));
        assert_eq!(line_of(sql, "missing"), None);
    }
}
