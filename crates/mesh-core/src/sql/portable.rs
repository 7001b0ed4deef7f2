//! Portable SQL: every job runs on two engines, DataFusion locally and Spark 3.5 on Glue. This
//! check parses each job's SQL as Spark SQL and flags what one of them cannot run: syntax that
//! does not parse, and functions missing from either engine's function list.
//!
//! The local engine's functions come from the very session `mesh run` uses (DataFusion
//! built-ins plus datafusion-spark); Spark's from `data/spark-3.5-functions.txt`, generated from
//! PySpark (see the file's header).

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::Path;

use crate::sql_check::neutralise_params;
use datafusion::sql::sqlparser::ast::{visit_expressions, Expr, Spanned};
use datafusion::sql::sqlparser::dialect::DatabricksDialect;
use datafusion::sql::sqlparser::parser::Parser;
use mesh_domain::{Diagnostic, Diagnostics, Domain, Env, Naming};

/// Spark 3.5's built-in functions (`SHOW SYSTEM FUNCTIONS`, identifiers only).
const SPARK_FUNCTIONS: &str = include_str!("../../data/spark-3.5-functions.txt");

/// The two engines' function names, lowercase.
pub struct FunctionLists {
    pub local: BTreeSet<String>,
    pub spark: BTreeSet<String>,
}

impl FunctionLists {
    /// Reads the local engine's registry from a fresh session (a few milliseconds).
    pub fn load(domain: &Domain) -> FunctionLists {
        let spark = SPARK_FUNCTIONS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        let mut local = BTreeSet::new();
        if let Ok(ctx) = crate::session::new_context(&Naming::for_domain(domain, Env::Local)) {
            let state = ctx.state();
            local.extend(state.scalar_functions().keys().cloned());
            local.extend(state.aggregate_functions().keys().cloned());
            local.extend(state.window_functions().keys().cloned());
        }
        let local = local.into_iter().map(|n| n.to_ascii_lowercase()).collect();
        FunctionLists { local, spark }
    }
}

/// A function call found in SQL, with its 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCall {
    pub name: String,
    pub line: usize,
}

fn error_line(message: &str) -> Option<usize> {
    let at = message.find("Line: ")?;
    message[at + 6..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .ok()
}

/// Parses Spark SQL and lists its function calls; `Err((message, line))` when it does not parse.
pub fn function_calls(sql: &str) -> Result<Vec<FunctionCall>, (String, Option<usize>)> {
    let statements = Parser::parse_sql(&DatabricksDialect {}, &neutralise_params(sql)).map_err(|e| {
        let message = e.to_string();
        let line = error_line(&message);
        (message, line)
    })?;
    let mut calls = Vec::new();
    for s in &statements {
        let _ = visit_expressions(s, |e| {
            if let Expr::Function(f) = e {
                if let Some(last) = f.name.0.last() {
                    let name = last.to_string().trim_matches('`').to_ascii_lowercase();
                    let line = f.name.span().start.line as usize;
                    calls.push(FunctionCall {
                        name,
                        line: line.max(1),
                    });
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }
    Ok(calls)
}

/// Problems of one SQL text (`file` is how diagnostics name it).
pub fn check_sql(file: &Path, sql: &str, lists: &FunctionLists) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let calls = match function_calls(sql) {
        Ok(c) => c,
        Err((message, line)) => {
            diags.push(
                Diagnostic::new(file, "", format!("does not parse as Spark SQL: {message}"))
                    .at_line(line)
                    .with_help("job SQL runs on Spark (Glue) and DataFusion (local); write one SELECT in Spark SQL"),
            );
            return diags;
        }
    };
    let mut seen = BTreeSet::new();
    for c in calls {
        if !seen.insert(c.name.clone()) {
            continue;
        }
        let (spark, local) = (lists.spark.contains(&c.name), lists.local.contains(&c.name));
        let problem = match (spark, local) {
            (true, true) => continue,
            (false, false) => format!("`{}` is a function of neither Spark 3.5 nor the local engine", c.name),
            (false, true) => format!(
                "`{}` is not a Spark 3.5 function: the job would run locally and fail on Glue",
                c.name
            ),
            (true, false) => format!(
                "`{}` is not a function of the local engine (DataFusion + datafusion-spark): the job would run on Glue and fail in `mesh run`",
                c.name
            ),
        };
        let known = lists.spark.intersection(&lists.local).map(String::as_str);
        let help = mesh_domain::diagnostic::did_you_mean(&c.name, known)
            .map(|h| format!("{h} (a function both engines have)"))
            .unwrap_or_else(|| "use a function both engines have, or an expression of portable SQL".into());
        diags.push(Diagnostic::new(file, "", problem).at_line(Some(c.line)).with_help(help));
    }
    diags
}

/// Checks the SQL of every job of the domain. Missing files are reported by validation itself.
pub fn check_domain(domain: &Domain, root: &Path) -> Diagnostics {
    let lists = FunctionLists::load(domain);
    let mut diags = Diagnostics::default();
    for p in &domain.projects {
        for j in &p.jobs {
            // Missing files and links out of the project are reported by validation itself.
            let Ok(bytes) = std::fs::read(root.join(&j.sql)) else {
                continue;
            };
            // Exactly one query, or nothing else is worth checking.
            if let Err(e) = crate::sql_check::check_job_sql(&bytes) {
                diags.push(
                    Diagnostic::new(&j.sql, "", e.message)
                        .at_line(e.line)
                        .with_help("a job's SQL is exactly one query (SELECT or WITH … SELECT) in Spark SQL; the job's mode writes the result"),
                );
                continue;
            }
            let sql = String::from_utf8_lossy(crate::sql_check::strip_bom(&bytes));
            diags.extend(check_sql(&j.sql, &sql, &lists));
        }
    }
    diags.sorted()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists() -> FunctionLists {
        FunctionLists {
            local: ["count", "sum", "upper", "trim", "only_local"].map(String::from).into(),
            spark: ["count", "sum", "upper", "trim", "only_spark"].map(String::from).into(),
        }
    }

    #[test]
    fn finds_calls_with_lines_and_params() {
        let calls =
            function_calls("SELECT\n  upper(x),\n  COUNT(*)\nFROM t WHERE d = '${run_date}' AND n > ${n}").unwrap();
        assert_eq!(
            calls,
            vec![
                FunctionCall {
                    name: "upper".into(),
                    line: 2
                },
                FunctionCall {
                    name: "count".into(),
                    line: 3
                }
            ]
        );
    }

    #[test]
    fn flags_functions_one_engine_lacks() {
        let d = check_sql(
            Path::new("q.sql"),
            "SELECT only_local(a),\n only_spark(b), upper(c), nowhere(d) FROM t",
            &lists(),
        );
        let text = d.to_string();
        assert!(
            text.contains("q.sql:1: `only_local` is not a Spark 3.5 function"),
            "{text}"
        );
        assert!(
            text.contains("q.sql:2: `only_spark` is not a function of the local engine"),
            "{text}"
        );
        assert!(text.contains("`nowhere` is a function of neither"), "{text}");
        assert!(!text.contains("`upper`"), "{text}");
        assert_eq!(d.len(), 3);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let d = check_sql(Path::new("q.sql"), "SELECT a,\nFROM FROM t", &lists());
        let text = d.to_string();
        assert!(text.contains("q.sql:2: does not parse as Spark SQL"), "{text}");
    }
}
